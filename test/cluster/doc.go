// Package cluster holds process-level tests of multi-node Samsa clusters:
// N nodes of the built binary (SAMSA_BIN, see test/brokerproc) started
// from generated Kafka-style server.properties files with reserved
// loopback ports, driven with franz-go, kcat and the samsa CLI, and hurt
// with kill -9 and SIGSTOP.
//
// The tests cover: the cluster forms (every node's Metadata lists every
// broker, DescribeQuorum shows a leader and every voter), CreateTopics
// sent to a node that is not the controller, produce and consume across
// brokers, kcat -L, controller failover after kill -9 (timed; rounds from
// SAMSA_FAILOVER_ROUNDS, 2 by default, many in `make failover`), a paused
// broker fenced and serving again, `samsa cluster info/health`, the
// example configs of config/ and `samsa dev cluster`; and replication:
// partition leader failover by SIGTERM and kill -9 under an idempotent
// acks=all producer (timed; rounds from
// SAMSA_REPLICATION_FAILOVER_ROUNDS, 2 by default, many in `make
// failover-replication`; nothing acknowledged lost or duplicated), and
// unclean leader election with kcat -L showing replicas and ISR.
package cluster
