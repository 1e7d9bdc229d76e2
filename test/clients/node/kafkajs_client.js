#!/usr/bin/env node
// kafkajs programs run by the Go tests in test/clients against a Samsa broker.
//
//   node kafkajs_client.js produce BOOTSTRAP TOPIC COUNT PARTITIONS
//     admin.createTopics (PARTITIONS partitions), admin.fetchTopicMetadata,
//     producer.send of COUNT keyed records (key-I = value-I) with acks=-1, the
//     first half uncompressed and the second half gzip (the codec kafkajs
//     ships), then admin.fetchTopicOffsets. Prints one JSON object per step
//     on stdout for the Go test to check.
//
//   node kafkajs_client.js consume BOOTSTRAP TOPIC COUNT GROUP
//     a kafkajs consumer in group GROUP reading from the beginning until
//     COUNT records arrived; prints one JSON object per record. kafkajs has
//     no consumer without a group, so this needs the group coordinator.
//
//   node kafkajs_client.js admin BOOTSTRAP TOPIC COUNT
//     admin.createTopics (one partition), producer.send of COUNT keyed
//     records, admin.alterConfigs (retention.ms=3600000, validateOnly
//     first, then for real), admin.describeConfigs, admin.deleteTopicRecords
//     below offset COUNT/2 and admin.fetchTopicOffsets; one JSON object per
//     step.
//
//   node kafkajs_client.js txn BOOTSTRAP TOPIC COUNT TRANSACTIONAL_ID
//     a transactional producer (transactionalId, idempotent, one request in
//     flight): a transaction of COUNT records c-I committed, one of COUNT
//     records a-I aborted, one record c-COUNT committed, all to partition
//     0; then a read_committed consumer (group TRANSACTIONAL_ID-reader)
//     reads COUNT+1 records and prints one JSON object per record.
'use strict';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { Kafka, CompressionTypes, ConfigResourceTypes, logLevel } = require('kafkajs');

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function produce(kafka, topic, count, partitions) {
  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  out({ step: 'createTopics', created });
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  out({
    step: 'fetchTopicMetadata',
    topics: md.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partition: p.partitionId, leader: p.leader })),
    })),
  });

  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const half = Math.floor(count / 2);
  const batch = (from, to) => {
    const messages = [];
    for (let i = from; i < to; i++) {
      messages.push({ key: `key-${i}`, value: `value-${i}` });
    }
    return messages;
  };
  const r1 = await producer.send({ topic, acks: -1, messages: batch(0, half) });
  const r2 = await producer.send({
    topic, acks: -1, compression: CompressionTypes.GZIP, messages: batch(half, count),
  });
  out({ step: 'send', results: r1.concat(r2) });
  await producer.disconnect();

  const offsets = await admin.fetchTopicOffsets(topic);
  out({ step: 'fetchTopicOffsets', offsets });
  await admin.disconnect();
}

async function consume(kafka, topic, count, group) {
  const consumer = kafka.consumer({ groupId: group });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let got = 0;
  await new Promise((resolve, reject) => {
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        out({
          partition, offset: message.offset,
          key: message.key && message.key.toString(), value: message.value && message.value.toString(),
        });
        got++;
        if (got >= count) resolve();
      },
    }).catch(reject);
  });
  await consumer.disconnect();
}

async function adminSteps(kafka, topic, count) {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [{ topic, numPartitions: 1, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < count; i++) {
    messages.push({ key: `key-${i}`, value: `value-${i}`, partition: 0 });
  }
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();

  const resource = {
    type: ConfigResourceTypes.TOPIC,
    name: topic,
    configEntries: [{ name: 'retention.ms', value: '3600000' }],
  };
  const describe = async (step) => {
    const d = await admin.describeConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }],
      includeSynonyms: false,
    });
    const e = d.resources[0].configEntries[0];
    out({ step, name: e.configName, value: e.configValue, isDefault: e.isDefault });
  };
  const validated = await admin.alterConfigs({ validateOnly: true, resources: [resource] });
  out({ step: 'alterConfigsValidateOnly', errorCode: validated.resources[0].errorCode });
  await describe('describeAfterValidateOnly');
  const altered = await admin.alterConfigs({ validateOnly: false, resources: [resource] });
  out({ step: 'alterConfigs', errorCode: altered.resources[0].errorCode });
  await describe('describeAfterAlter');

  const trimTo = Math.floor(count / 2);
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: String(trimTo) }] });
  const offsets = await admin.fetchTopicOffsets(topic);
  out({ step: 'deleteTopicRecords', offsets });
  await admin.disconnect();
}

async function txn(kafka, topic, count, txnID) {
  const producer = kafka.producer({ transactionalId: txnID, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const values = (prefix, from, n) => Array.from({ length: n }, (_, i) => ({ value: `${prefix}-${from + i}`, partition: 0 }));
  let t = await producer.transaction();
  await t.send({ topic, messages: values('c', 0, count), acks: -1 });
  await t.commit();
  out({ step: 'committed', count });
  t = await producer.transaction();
  await t.send({ topic, messages: values('a', 0, count), acks: -1 });
  await t.abort();
  out({ step: 'aborted', count });
  t = await producer.transaction();
  await t.send({ topic, messages: values('c', count, 1), acks: -1 });
  await t.commit();
  out({ step: 'committed', count: 1 });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `${txnID}-reader`, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let got = 0;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${got} of ${count + 1} records`)), 60000);
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        out({ step: 'record', partition, offset: message.offset, value: message.value.toString() });
        got++;
        if (got === count + 1) {
          clearTimeout(timer);
          resolve();
        }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
}

async function main() {
  const [mode, bootstrap, topic, countArg, extra] = process.argv.slice(2);
  if (!mode || !bootstrap || !topic || !countArg) {
    process.stderr.write('usage: kafkajs_client.js produce|consume|admin|txn BOOTSTRAP TOPIC COUNT [PARTITIONS|GROUP|TRANSACTIONAL_ID]\n');
    process.exit(2);
  }
  const kafka = new Kafka({
    clientId: 'samsa-kafkajs-test',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    retry: { retries: 5 },
  });
  const count = parseInt(countArg, 10);
  if (mode === 'produce') {
    await produce(kafka, topic, count, parseInt(extra || '1', 10));
  } else if (mode === 'consume') {
    await consume(kafka, topic, count, extra || 'samsa-kafkajs-test');
  } else if (mode === 'admin') {
    await adminSteps(kafka, topic, count);
  } else if (mode === 'txn') {
    await txn(kafka, topic, count, extra || 'samsa-kafkajs-txn');
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`kafkajs: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
