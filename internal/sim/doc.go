// Package sim is a deterministic simulation of the controller and ISR
// replication (issue 7): one controller.Controller over a LocalQuorum and
// several brokers, each with its own storage.Manager and replica.Manager,
// wired without sockets by one goroutine that plays every broker's
// fetcher, heartbeats, metadata delivery and AlterPartition traffic from
// a seeded math/rand, injecting crashes, controlled shutdowns, network
// cuts, metadata delays and delayed or lost AlterPartitions, and checking
// the replication invariants after every step. Everything lives in the
// tests (go test ./internal/sim); docs/testing.md describes it.
package sim
