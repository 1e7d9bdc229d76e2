// Package clients tests Samsa with real third-party Kafka clients: the
// kafka-python producer/consumer from our users' starting point, kcat and
// confluent-kafka-python (librdkafka), kafkajs (npm), sarama, segmentio
// kafka-go and franz-go. Each test starts its own broker process (package
// samsa/test/brokerproc) on 127.0.0.1:0 and a fresh topic, runs the client
// as a separate process where the client is not a Go library, and checks
// exactly what comes back.
//
// The external clients are installed by scripts/install-test-deps.sh. A test
// whose client is missing is skipped, unless SAMSA_REQUIRE_CLIENTS=1 (set by
// make test), where it fails. See docs/testing.md.
package clients
