#!/usr/bin/python3
"""The kafka-python producer and consumer from our users' starting point (the
seed notes), pointed at a Samsa broker by the Go test in test/clients.

    kafka_python_seed.py produce BOOTSTRAP TOPIC ACKS [COUNT]
    kafka_python_seed.py consume BOOTSTRAP TOPIC
    kafka_python_seed.py consume-group BOOTSTRAP TOPIC GROUP

The producer is the seed's JSON producer (gzip, value_serializer); the only
change is that it waits for every send future, so an error fails the run
instead of being dropped. The consumer is the seed's consumer without
group_id: consumer groups need the group coordinator, which Samsa does not
have yet, and kafka-python then assigns itself every partition of the topic.
consume-group is the seed's consumer exactly (group_id, auto commit), for a
broker with a group coordinator.
Runs under Debian's /usr/bin/python3, where python3-kafka (2.0.2) lives.
"""
import sys
import time
from json import dumps

from kafka import KafkaConsumer, KafkaProducer


def produce(bootstrap, topic, acks, count):
    if acks != 'all':
        acks = int(acks)
    producer = KafkaProducer(
        acks=acks,
        compression_type='gzip',
        bootstrap_servers=[bootstrap],
        value_serializer=lambda x: dumps(x).encode('utf-8'),
    )
    start = time.time()
    futures = []
    for i in range(count):
        data = {'str': 'result' + str(i)}
        futures.append(producer.send(topic, value=data))
    producer.flush()
    for f in futures:
        f.get(timeout=30)
    print("elapsed :", time.time() - start)
    producer.close(timeout=10)


def consume(bootstrap, topic, group_id=None):
    if group_id is None:
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=[bootstrap],
            auto_offset_reset='earliest',
            value_deserializer=lambda x: x.decode('utf-8'),
            consumer_timeout_ms=10000,
        )
    else:
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=[bootstrap],
            auto_offset_reset='earliest',
            enable_auto_commit=True,
            group_id=group_id,
            value_deserializer=lambda x: x.decode('utf-8'),
            consumer_timeout_ms=10000,
        )
    print('[begin] get consumer list')
    for message in consumer:
        print("Topic: %s, Partition: %d, Offset: %d, Key: %s, Value: %s" % (
            message.topic, message.partition, message.offset, message.key, message.value))
    print('[end] get consumer list')
    consumer.close()


def main(argv):
    if len(argv) >= 5 and argv[1] == 'produce':
        count = int(argv[5]) if len(argv) > 5 else 100
        produce(argv[2], argv[3], argv[4], count)
    elif len(argv) == 4 and argv[1] == 'consume':
        consume(argv[2], argv[3])
    elif len(argv) == 5 and argv[1] == 'consume-group':
        consume(argv[2], argv[3], argv[4])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
