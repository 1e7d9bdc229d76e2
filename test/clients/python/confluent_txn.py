#!/usr/bin/python3
"""confluent-kafka-python (librdkafka) transactional producer and
read_committed / read_uncommitted consumers, run by the Go test in
test/clients.

    confluent_txn.py BOOTSTRAP TOPIC TRANSACTIONAL_ID

Produces to partition 0 of TOPIC in three transactions: c-0..c-4
committed, a-0..a-2 aborted, c-5 committed (init_transactions,
begin_transaction, commit_transaction, abort_transaction). Then reads the
partition from the beginning to its end twice, with
isolation.level=read_committed and read_uncommitted, and prints one line
per record:

    LEVEL OFFSET VALUE

Exits non-zero on any error or if a read does not reach the end within 60
seconds. Runs under Debian's /usr/bin/python3 (python3-confluent-kafka).
"""
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition


def transaction(producer, topic, values, commit):
    producer.begin_transaction()
    for v in values:
        producer.produce(topic, value=v.encode(), partition=0)
    producer.flush(30)
    if commit:
        producer.commit_transaction(30)
    else:
        producer.abort_transaction(30)


def read_all(bootstrap, topic, level):
    consumer = Consumer({
        'bootstrap.servers': bootstrap,
        'group.id': 'unused-' + level,
        'isolation.level': level,
        'enable.partition.eof': True,
        'enable.auto.commit': False,
    })
    consumer.assign([TopicPartition(topic, 0, 0)])
    deadline = time.time() + 60
    try:
        while time.time() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return True
                print('consume error: %s' % msg.error(), file=sys.stderr)
                return False
            print('%s %d %s' % (level, msg.offset(), msg.value().decode()))
        print('%s: end not reached' % level, file=sys.stderr)
        return False
    finally:
        consumer.close()


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap, topic, txn_id = argv[1], argv[2], argv[3]
    producer = Producer({
        'bootstrap.servers': bootstrap,
        'transactional.id': txn_id,
        'transaction.timeout.ms': 60000,
    })
    producer.init_transactions(30)
    transaction(producer, topic, ['c-%d' % i for i in range(5)], True)
    transaction(producer, topic, ['a-%d' % i for i in range(3)], False)
    transaction(producer, topic, ['c-5'], True)
    ok = read_all(bootstrap, topic, 'read_committed')
    ok = read_all(bootstrap, topic, 'read_uncommitted') and ok
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv))
