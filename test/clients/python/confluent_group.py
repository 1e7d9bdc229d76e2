#!/usr/bin/python3
"""confluent-kafka-python (librdkafka) consumer-group member, run by the Go
test in test/clients.

    confluent_group.py BOOTSTRAP TOPIC GROUP COUNT

Subscribes to TOPIC as a member of GROUP (auto.offset.reset=earliest, no
auto commit), reads COUNT records, commits them synchronously, closes (which
leaves the group) and prints one line per record:

    PARTITION OFFSET VALUE

Exits non-zero if COUNT records are not read within 60 seconds or the
commit fails. Runs under Debian's /usr/bin/python3 (python3-confluent-kafka).
"""
import sys
import time

from confluent_kafka import Consumer


def main(argv):
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap, topic, group, count = argv[1], argv[2], argv[3], int(argv[4])
    consumer = Consumer({
        'bootstrap.servers': bootstrap,
        'group.id': group,
        'auto.offset.reset': 'earliest',
        'enable.auto.commit': False,
        'session.timeout.ms': 10000,
    })
    consumer.subscribe([topic])
    got = 0
    deadline = time.time() + 60
    while got < count and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            print('consume error: %s' % msg.error(), file=sys.stderr)
            continue
        print('%d %d %s' % (msg.partition(), msg.offset(), msg.value().decode()))
        got += 1
    if got < count:
        print('read %d of %d records' % (got, count), file=sys.stderr)
        return 1
    consumer.commit(asynchronous=False)
    consumer.close()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
