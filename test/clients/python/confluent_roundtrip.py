#!/usr/bin/python3
"""confluent-kafka-python (librdkafka) round trip against a Samsa broker, run
by the Go test in test/clients.

    confluent_roundtrip.py BOOTSTRAP TOPIC CODEC COUNT

Produces COUNT keyed records (key-I = value-I-<padding>) with
compression.type=CODEC and acks=all, waits for every delivery report, then
reads the topic back from the beginning of every partition by explicit
assignment (no consumer group: Samsa has no group coordinator yet; the
group.id is a dummy that never commits) and prints one line per record:

    PARTITION OFFSET KEY=VALUE

Exits non-zero on any delivery error or if COUNT records are not read back
within 30 seconds. Runs under Debian's /usr/bin/python3
(python3-confluent-kafka).
"""
import sys
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaException,
                             Producer, TopicPartition)


def main(argv):
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap, topic, codec, count = argv[1], argv[2], argv[3], int(argv[4])

    errors = []
    delivered = [0]

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            delivered[0] += 1

    producer = Producer({
        'bootstrap.servers': bootstrap,
        'compression.type': codec,
        'acks': 'all',
        'linger.ms': 50,
        'message.timeout.ms': 30000,
    })
    for i in range(count):
        # Repetitive values compress well, so librdkafka keeps the
        # compressed batch (it sends uncompressed when that is smaller).
        value = 'value-%d-%s' % (i, 'samsa' * 20)
        producer.produce(topic, key='key-%d' % i, value=value, on_delivery=on_delivery)
        producer.poll(0)
    left = producer.flush(30)
    if left or errors or delivered[0] != count:
        print('produce: delivered %d/%d, %d left in queue, errors: %s'
              % (delivered[0], count, left, errors), file=sys.stderr)
        return 1
    print('produced %d records with %s' % (count, codec), file=sys.stderr)

    consumer = Consumer({
        'bootstrap.servers': bootstrap,
        'group.id': 'samsa-test-never-commits',
        'enable.auto.commit': False,
        'enable.auto.offset.store': False,
    })
    md = consumer.list_topics(topic, timeout=10)
    tmd = md.topics[topic]
    if tmd.error is not None:
        raise KafkaException(tmd.error)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(tmd.partitions)])
    got = 0
    deadline = time.time() + 30
    while got < count and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            print('consume error: %s' % msg.error(), file=sys.stderr)
            continue
        print('%d %d %s=%s' % (msg.partition(), msg.offset(),
                               msg.key().decode('utf-8'), msg.value().decode('utf-8')))
        got += 1
    consumer.close()
    if got != count:
        print('consume: read %d/%d records' % (got, count), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
