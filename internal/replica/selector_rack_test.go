package replica

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"samsa/internal/config"
	"samsa/internal/metadata"
	"samsa/internal/record"
	"samsa/internal/storage"
)

// TestRackSelectorChoices: Kafka's RackAwareReplicaSelector over views:
// no client rack or no replica in it selects the leader; the leader wins
// when in the rack; otherwise the largest log end offset, then the most
// recently caught up, then the largest broker id; a replica that is not
// reachable (fenced, no endpoint on the listener) never matches.
func TestRackSelectorChoices(t *testing.T) {
	v := func(id int32, rack string, leo, since int64) replicaView {
		return replicaView{id: id, rack: rack, reachable: true, logEndOffset: leo, sinceCaughtUpMs: since}
	}
	leaderA := v(1, "a", 100, 0)
	for _, tc := range []struct {
		name   string
		rack   string
		leader replicaView
		views  []replicaView
		want   int32
	}{
		{"no client rack", "", leaderA, []replicaView{leaderA, v(2, "b", 100, 0)}, 1},
		{"no replica in rack", "z", leaderA, []replicaView{leaderA, v(2, "b", 100, 0)}, 1},
		{"leader in rack", "a", leaderA, []replicaView{leaderA, v(2, "a", 100, 0)}, 1},
		{"follower in rack", "b", leaderA, []replicaView{leaderA, v(2, "b", 90, 0), v(3, "c", 100, 0)}, 2},
		{"largest log end offset", "b", leaderA, []replicaView{leaderA, v(2, "b", 100, 0), v(3, "b", 90, 0)}, 2},
		{"most recently caught up", "b", leaderA, []replicaView{leaderA, v(2, "b", 100, 500), v(3, "b", 100, 20)}, 3},
		{"largest broker id", "b", leaderA, []replicaView{leaderA, v(3, "b", 100, 20), v(2, "b", 100, 20)}, 3},
		{"unreachable skipped", "b", leaderA, []replicaView{leaderA, {id: 2, rack: "b", logEndOffset: 100}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := selectRackAware(tc.rack, tc.leader, tc.views); got != tc.want {
				t.Fatalf("selected %d, want %d", got, tc.want)
			}
		})
	}
}

// TestRackSelectorConfig: replica.selector.class accepts nothing but
// unset and Kafka's RackAwareReplicaSelector class name.
func TestRackSelectorConfig(t *testing.T) {
	for _, v := range []string{"", config.RackAwareReplicaSelector} {
		cfg, err := config.Load("", []string{"replica.selector.class=" + v}, nil)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if got := newReadSelector(cfg).rackAware; got != (v != "") {
			t.Fatalf("%q: rack aware %v", v, got)
		}
	}
	for _, v := range []string{"org.apache.kafka.common.replica.ReplicaSelector", "RackAwareReplicaSelector", "com.example.Mine"} {
		_, err := config.Load("", []string{"replica.selector.class=" + v}, nil)
		if err == nil || !strings.Contains(err.Error(), "replica.selector.class") {
			t.Fatalf("%q accepted (%v)", v, err)
		}
	}
}

// rackBrokers are brokers 1 (rack a), 2 and 3 (rack b) on PLAINTEXT.
func rackBrokers() map[int32]metadata.Broker {
	ep := []metadata.Endpoint{{Listener: "PLAINTEXT", Host: "127.0.0.1", Port: 9092, SecurityProtocol: "PLAINTEXT"}}
	return map[int32]metadata.Broker{
		1: {ID: 1, Rack: "a", Endpoints: ep},
		2: {ID: 2, Rack: "b", Endpoints: ep},
		3: {ID: 3, Rack: "b", Endpoints: ep},
	}
}

// consumerFetch is a consumer's Fetch v11+ from rack at offset on
// PLAINTEXT.
func consumerFetch(p *Partition, rack string, offset int64, isolation int8) (FetchResult, error) {
	res, err := p.Fetch(context.Background(), FetchParams{
		ReplicaID: -1, ReplicaEpoch: -1, FetchOffset: offset, CurrentLeaderEpoch: p.LeaderEpoch(),
		LastFetchedEpoch: -1, LogStartOffset: -1, MaxBytes: 1 << 20, MinOneMessage: true, Isolation: isolation,
		ClientMetadata: true, ClientRack: rack, Listener: "PLAINTEXT",
	})
	release(res)
	return res, err
}

// TestRackPreferredReadReplica: a leader with the rack-aware selector
// directs a consumer to the best in-sync follower of its rack that has
// the fetch offset (answering the offsets and no records), keeps it when
// the leader is in its rack, when it has no rack or names none of the
// replicas' racks, when the fetch has no client metadata (v10-), and once
// the follower left the ISR, is fenced or lacks the listener.
func TestRackPreferredReadReplica(t *testing.T) {
	c := newCluster(t, nil, "replica.selector.class="+config.RackAwareReplicaSelector)
	c.image.Brokers = rackBrokers()
	c.set(mp(1, 1, 1, 1, 2, 3))
	p := c.part(0)
	produce(t, p, 5, 1)
	followerFetch(t, p, 2, 5)
	followerFetch(t, p, 3, 4)
	if hw := p.HighWatermark(); hw != 4 {
		t.Fatalf("high watermark %d", hw)
	}
	want := func(rack string, offset int64, preferred int32) {
		t.Helper()
		res, err := consumerFetch(p, rack, offset, ReadUncommitted)
		if err != nil {
			t.Fatalf("rack %q offset %d: %v", rack, offset, err)
		}
		if res.PreferredReadReplica != preferred {
			t.Fatalf("rack %q offset %d: preferred %d, want %d", rack, offset, res.PreferredReadReplica, preferred)
		}
		if preferred >= 0 && (res.Records != nil || res.HighWatermark != p.HighWatermark() || res.LogEndOffset != p.LogEndOffset()) {
			t.Fatalf("redirect carries records (%d bytes) or wrong offsets %+v", len(res.Records), res)
		}
		if preferred < 0 && offset < res.HighWatermark && len(res.Records) == 0 {
			t.Fatalf("rack %q offset %d: read nothing below the high watermark %d", rack, offset, res.HighWatermark)
		}
	}
	want("b", 0, 2)  // 2 has the larger log end offset
	want("a", 0, -1) // the leader's rack
	want("", 0, -1)
	want("z", 0, -1)
	followerFetch(t, p, 3, 5)
	want("b", 0, 3) // same log end offset and catch-up time: the larger id

	res, err := p.Fetch(context.Background(), FetchParams{ReplicaID: -1, ReplicaEpoch: -1, CurrentLeaderEpoch: -1, LastFetchedEpoch: -1, MaxBytes: 1 << 20, MinOneMessage: true})
	release(res)
	if err != nil || res.PreferredReadReplica != -1 || len(res.Records) == 0 {
		t.Fatalf("fetch without client metadata: preferred %d, %d bytes, %v", res.PreferredReadReplica, len(res.Records), err)
	}

	// Past the followers' log end offsets: read from the leader.
	produce(t, p, 2, 1)
	want("b", 6, -1)

	// Broker 3 leaves the ISR: 2 it is.
	c.set(mp(1, 1, 2, 1, 2))
	want("b", 0, 2)
	// Broker 2 fenced: nobody in rack b.
	c.image.Brokers = rackBrokers()
	c.image.Brokers[2] = metadata.Broker{ID: 2, Rack: "b", Endpoints: c.image.Brokers[2].Endpoints, Fenced: true}
	c.set(mp(1, 1, 2, 1, 2))
	want("b", 0, -1)
	// Unfenced, but without an endpoint on the consumer's listener.
	c.image.Brokers = rackBrokers()
	c.image.Brokers[2] = metadata.Broker{ID: 2, Rack: "b"}
	c.set(mp(1, 1, 2, 1, 2))
	want("b", 0, -1)

	// The epoch checks come first.
	if _, err := p.Fetch(context.Background(), FetchParams{ReplicaID: -1, CurrentLeaderEpoch: 0, LastFetchedEpoch: -1, ClientMetadata: true, ClientRack: "b"}); !errors.Is(err, ErrFencedLeaderEpoch) {
		t.Fatalf("old epoch: %v", err)
	}
}

// TestRackSelectorUnset: without replica.selector.class the leader serves
// every consumer itself (Kafka's default).
func TestRackSelectorUnset(t *testing.T) {
	c := newCluster(t, nil)
	c.image.Brokers = rackBrokers()
	c.set(mp(1, 1, 1, 1, 2, 3))
	p := c.part(0)
	produce(t, p, 3, 1)
	followerFetch(t, p, 2, 3)
	followerFetch(t, p, 3, 3)
	res, err := consumerFetch(p, "b", 0, ReadUncommitted)
	if err != nil || res.PreferredReadReplica != -1 || res.HighWatermark != 3 {
		t.Fatalf("preferred %d, high watermark %d, %v", res.PreferredReadReplica, res.HighWatermark, err)
	}
}

// countRecords is the number of records in whole batches.
func countRecords(t *testing.T, data []byte) (n int, last int64) {
	t.Helper()
	last = -1
	for len(data) > 0 {
		_, h, rest, err := record.Next(data)
		if err != nil {
			t.Fatal(err)
		}
		n += int(h.LastOffsetDelta) + 1
		last = h.NextOffset() - 1
		data = rest
	}
	return n, last
}

// TestRackFollowerServesConsumers: a follower serves a consumer's v11+
// fetch up to its own high watermark (the leader's as of its last fetch,
// at most its log end offset), read_committed up to its last stable
// offset, nothing between its high watermark and log end offset,
// OFFSET_OUT_OF_RANGE past its log end, the epoch errors as the leader,
// never a preferred read replica; a fetch without client metadata (v10-)
// is NOT_LEADER_OR_FOLLOWER. Every such read is counted.
func TestRackFollowerServesConsumers(t *testing.T) {
	props := "replica.selector.class=" + config.RackAwareReplicaSelector
	leader := newCluster(t, nil, props)
	follower := newClusterAs(t, 2, nil, props)
	both := func(parts ...metadata.Partition) {
		for _, c := range []*cluster{leader, follower} {
			c.image.Brokers = rackBrokers()
			c.set(slices.Clone(parts)...)
		}
	}
	both(metadata.Partition{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1})
	lp, fp := leader.part(0), follower.part(0)
	round := func() {
		t.Helper()
		res, err := lp.Fetch(context.Background(), FetchParams{
			ReplicaID: 2, ReplicaEpoch: 7, FetchOffset: fp.LogEndOffset(), CurrentLeaderEpoch: fp.LeaderEpoch(),
			LastFetchedEpoch: fp.LatestEpoch(), LogStartOffset: fp.LogStartOffset(), MaxBytes: 1 << 20, MinOneMessage: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer release(res)
		if err := fp.AppendAsFollower(res.Records, res.HighWatermark, res.LogStartOffset); err != nil {
			t.Fatal(err)
		}
	}
	read := func(offset int64, isolation int8) (FetchResult, int, int64) {
		t.Helper()
		res, err := fp.Fetch(context.Background(), FetchParams{
			ReplicaID: -1, ReplicaEpoch: -1, FetchOffset: offset, CurrentLeaderEpoch: 1, LastFetchedEpoch: -1,
			LogStartOffset: -1, MaxBytes: 1 << 20, MinOneMessage: true, Isolation: isolation,
			ClientMetadata: true, ClientRack: "b", Listener: "PLAINTEXT",
		})
		if err != nil {
			t.Fatalf("follower read at %d: %v", offset, err)
		}
		defer release(res)
		if res.PreferredReadReplica != -1 {
			t.Fatalf("follower named preferred replica %d", res.PreferredReadReplica)
		}
		n, last := countRecords(t, res.Records)
		return res, n, last
	}

	produce(t, lp, 5, 1)
	round() // the follower has [0, 5) but the leader's high watermark was 0
	if res, n, _ := read(0, ReadUncommitted); n != 0 || res.HighWatermark != 0 {
		t.Fatalf("read %d records above the follower's high watermark %d", n, res.HighWatermark)
	}
	round()
	round() // the follower learns the leader's high watermark 5
	if res, n, last := read(0, ReadUncommitted); n != 5 || last != 4 || res.HighWatermark != 5 || res.LogEndOffset != 5 {
		t.Fatalf("read %d records up to %d, high watermark %d", n, last, res.HighWatermark)
	}
	before := follower.m.FollowerReads()

	// The leader moves on; the follower copies 3 more records but knows
	// the high watermark 5 only: its reads stop there.
	produce(t, lp, 3, 1)
	round()
	if res, n, last := read(0, ReadUncommitted); n != 5 || last != 4 || res.HighWatermark != 5 || res.LogEndOffset != 8 {
		t.Fatalf("read %d records up to %d, high watermark %d, log end %d", n, last, res.HighWatermark, res.LogEndOffset)
	}
	if _, n, _ := read(6, ReadUncommitted); n != 0 {
		t.Fatalf("read %d records between high watermark and log end", n)
	}
	_, err := fp.Fetch(context.Background(), FetchParams{ReplicaID: -1, FetchOffset: 9, CurrentLeaderEpoch: -1, LastFetchedEpoch: -1, MaxBytes: 1 << 20, ClientMetadata: true})
	if !errors.Is(err, storage.ErrOffsetOutOfRange) {
		t.Fatalf("read past the follower's log end: %v", err)
	}
	for _, tc := range []struct {
		epoch int32
		want  error
	}{{0, ErrFencedLeaderEpoch}, {2, ErrUnknownLeaderEpoch}} {
		_, err := fp.Fetch(context.Background(), FetchParams{ReplicaID: -1, FetchOffset: 0, CurrentLeaderEpoch: tc.epoch, LastFetchedEpoch: -1, MaxBytes: 1 << 20, ClientMetadata: true})
		if !errors.Is(err, tc.want) {
			t.Fatalf("epoch %d: %v, want %v", tc.epoch, err, tc.want)
		}
	}
	if _, err := fp.Fetch(context.Background(), FetchParams{ReplicaID: -1, FetchOffset: 0, CurrentLeaderEpoch: 1, LastFetchedEpoch: -1, MaxBytes: 1 << 20}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("v10 consumer read on a follower: %v", err)
	}
	// The two reads and the one out of range count; the refused ones not.
	if got := follower.m.FollowerReads(); got != before+3 {
		t.Fatalf("follower reads counted %d, want 3", got-before)
	}

	// read_committed stops at the follower's last stable offset: the
	// first offset of an open transaction.
	round()
	round() // high watermark 8 on both
	txn, err := record.Build(record.BuildOptions{Idempotent: true, Transactional: true, ProducerID: 4000, ProducerEpoch: 0}, []record.Record{{Timestamp: time.Now().UnixMilli(), Value: []byte("t")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lp.Append(txn, 1); err != nil {
		t.Fatal(err)
	}
	produce(t, lp, 1, 1)
	round()
	round()
	round()
	if fp.HighWatermark() != 10 {
		t.Fatalf("follower high watermark %d, want 10", fp.HighWatermark())
	}
	if res, n, last := read(0, ReadCommitted); n != 8 || last != 7 || res.LastStableOffset != 8 || res.AbortedTransactions == nil {
		t.Fatalf("read_committed: %d records up to %d, last stable offset %d", n, last, res.LastStableOffset)
	}
	if _, n, _ := read(0, ReadUncommitted); n != 10 {
		t.Fatalf("read_uncommitted: %d records, want 10", n)
	}

	// The partition moves away from broker 2: NOT_LEADER_OR_FOLLOWER.
	follower.image.Brokers = rackBrokers()
	follower.set(metadata.Partition{Replicas: []int32{1, 3}, ISR: []int32{1, 3}, Leader: 1, LeaderEpoch: 2, PartitionEpoch: 3})
	if _, err := fp.Fetch(context.Background(), FetchParams{ReplicaID: -1, FetchOffset: 0, CurrentLeaderEpoch: -1, LastFetchedEpoch: -1, MaxBytes: 1 << 20, ClientMetadata: true}); !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrUnknownTopicOrPartition) {
		t.Fatalf("read on a removed replica: %v", err)
	}
}
