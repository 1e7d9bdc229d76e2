#!/usr/bin/python3
"""confluent-kafka-python (librdkafka) AdminClient against a Samsa broker, run
by the Go test in test/clients.

    confluent_admin_configs.py BOOTSTRAP TOPIC

Creates TOPIC (one partition), then with alter_configs (AlterConfigs; the
1.7.0 client has neither incremental_alter_configs nor delete_records):
validate_only sets retention.ms=1000 and stores nothing, a real call sets
retention.ms=3600000 and cleanup.policy=compact,delete, and a bad value is
refused. After each step describe_configs prints

    STEP KEY=VALUE(SOURCE) ...

for retention.ms and cleanup.policy; the refused call prints

    refused ERROR-NAME

Exits non-zero on any unexpected error. Runs under Debian's /usr/bin/python3
(python3-confluent-kafka).
"""
import sys

from confluent_kafka import KafkaException
from confluent_kafka.admin import (AdminClient, ConfigResource, ConfigSource,
                                   NewTopic)

KEYS = ("retention.ms", "cleanup.policy")


def describe(admin, topic, step):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([res])[res].result(timeout=30)
    cells = []
    for key in KEYS:
        e = entries[key]
        cells.append("%s=%s(%s)" % (key, e.value, ConfigSource(e.source).name))
    print(step, " ".join(cells), flush=True)


def alter(admin, topic, configs, validate_only):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config=configs)
    admin.alter_configs([res], validate_only=validate_only, request_timeout=30)[res].result(timeout=30)


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap, topic = argv[1], argv[2]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    describe(admin, topic, "created")

    alter(admin, topic, {"retention.ms": "1000"}, True)
    describe(admin, topic, "validated")

    alter(admin, topic, {"retention.ms": "3600000", "cleanup.policy": "compact,delete"}, False)
    describe(admin, topic, "altered")

    try:
        alter(admin, topic, {"retention.ms": "soon"}, False)
        print("refused nothing", flush=True)
    except KafkaException as e:
        print("refused", e.args[0].name(), flush=True)
    describe(admin, topic, "after-refusal")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
