# Samsa build and test entry points. `make test` is exactly what CI runs
# (.ci/run); see docs/testing.md.

GO          ?= go
BIN         := bin/samsa
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Brief fuzzing per target in `make test`; longer in `make fuzz`.
FUZZTIME      ?= 5s
FUZZTIME_LONG ?= 60s
# Kill/restart rounds of the crash test: a couple in `make test`, many in
# `make soak`.
CRASH_ROUNDS ?= 2
SOAK_ROUNDS  ?= 25
# Controller kill -9 rounds of the cluster failover test: 2 in `make test`
# (the test's default), many in `make failover`, which prints p50/p99.
FAILOVER_ROUNDS ?= 25
# Partition leader failover rounds (one SIGTERM and one kill -9 of a
# leader each) of the replication failover test: 2 in `make test` (the
# test's default), FAILOVER_ROUNDS in `make failover-replication`, which
# prints p50/p99.
# Faults of the fault checker (test/cluster/chaos_test.go): 4 in `make
# test` (the test's default), CHAOS_FAULTS in `make chaos`.
CHAOS_FAULTS ?= 100
# Seeds and steps per seed of the replication simulation (internal/sim):
# 4 x 2000 in `make test` (the test's defaults), more in `make sim`.
SIM_SEEDS ?= 20
SIM_STEPS ?= 10000

.PHONY: all build test deps vet unit race fuzz-brief clients lint fuzz bench sim soak failover failover-replication chaos clean

all: build

# One static binary (DESIGN.md): no cgo, so no libc and no dynamic loader.
# Only the samsa build sets CGO_ENABLED=0; the race builds below need cgo.
# test/binary checks the result (make clients).
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/samsa

# Everything CI runs, in order of cost: install the third-party clients,
# vet, unit tests with the race detector, brief fuzzing of every fuzz
# target, then the real-client and crash tests against the built binary.
test: deps vet unit fuzz-brief clients

deps:
	scripts/install-test-deps.sh

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 20m ./internal/... ./cmd/...

fuzz-brief:
	scripts/fuzz-all.sh $(FUZZTIME)

# The client tests run the samsa binary built here (SAMSA_BIN) and fail,
# rather than skip, when a client is missing (SAMSA_REQUIRE_CLIENTS=1).
clients: build
	SAMSA_BIN=$(CURDIR)/$(BIN) SAMSA_REQUIRE_CLIENTS=1 SAMSA_CRASH_ROUNDS=$(CRASH_ROUNDS) \
		$(GO) test -count=1 -timeout 20m -v ./test/...

race:
	$(GO) test -race -count=1 -timeout 30m ./...

lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fuzz:
	scripts/fuzz-all.sh $(FUZZTIME_LONG)

bench:
	$(GO) run ./cmd/samsabench

# CreateTopics of 1,000 topics x 10 partitions on a 3-node cluster and
# start-up of a node holding 10,000 partitions, with processes of the
# built binary (docs/cluster.md, "Benchmark"). Flags: BENCH_CLUSTER_FLAGS.
.PHONY: bench-cluster
bench-cluster: build
	$(GO) run ./cmd/samsaclusterbench -bin $(CURDIR)/$(BIN) $(BENCH_CLUSTER_FLAGS)

# A 1 GiB partition moved unthrottled and at --throttle 50 MiB/s on a
# 3-node cluster of processes, with a producer's throughput and latency
# during the moves and without them (docs/cluster.md, "Reassignment
# benchmark"). Flags: BENCH_REASSIGN_FLAGS.
.PHONY: bench-reassign
bench-reassign: build
	$(GO) run ./cmd/samsaclusterbench -reassign -bin $(CURDIR)/$(BIN) $(BENCH_REASSIGN_FLAGS)

# The deterministic replication simulation (docs/testing.md): SIM_SEEDS
# seeds of SIM_STEPS steps each, under the race detector.
sim:
	$(GO) test -race -count=1 -timeout 120m -v -run '^TestSimulationNoAckedLoss$$' ./internal/sim/ \
		-sim.seeds=$(SIM_SEEDS) -sim.steps=$(SIM_STEPS)

soak: build
	SAMSA_BIN=$(CURDIR)/$(BIN) SAMSA_CRASH_ROUNDS=$(SOAK_ROUNDS) \
		$(GO) test -count=1 -timeout 90m -v -run '^TestCrash' ./test/crash/

failover: build
	SAMSA_BIN=$(CURDIR)/$(BIN) SAMSA_FAILOVER_ROUNDS=$(FAILOVER_ROUNDS) \
		$(GO) test -count=1 -timeout 60m -v -run '^TestClusterControllerFailover$$' ./test/cluster/

# Partition leader failover on 3 nodes, RF 3, min.insync.replicas=2,
# under an idempotent acks=all producer: SIGTERM and kill -9 of a leader
# FAILOVER_ROUNDS times each, then a full read (nothing acknowledged lost
# or duplicated); prints LEADER-FAILOVER lines with p50/p99
# (docs/cluster.md, "Replication and failover: measured").
failover-replication: build
	SAMSA_BIN=$(CURDIR)/$(BIN) SAMSA_REPLICATION_FAILOVER_ROUNDS=$(FAILOVER_ROUNDS) \
		$(GO) test -count=1 -timeout 60m -v -run '^TestReplicationFailoverNoAckedLoss$$' ./test/cluster/

# The fault checker: 3 nodes (in network namespaces when root), an RF 3,
# min.insync.replicas=2 topic under an idempotent acks=all producer,
# CHAOS_FAULTS faults (kill -9, SIGSTOP past the session, network cut of
# a leader), then a full read: 0 lost, 0 duplicated, order kept; plus the
# negative control (acks=1, unclean election) that must show loss.
# Prints CHAOS and CHAOS-NEGATIVE lines with the counts.
chaos: build
	SAMSA_BIN=$(CURDIR)/$(BIN) SAMSA_CHAOS_FAULTS=$(CHAOS_FAULTS) \
		$(GO) test -count=1 -timeout 120m -v -run '^TestChaos' ./test/cluster/

clean:
	rm -rf bin
