package server_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// leaders returns partition -> leader of topic as node id's Metadata
// answers it.
func (c *testCluster) leaders(ctx context.Context, id int32, topic string) map[int32]int32 {
	c.t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = &topic
	req.Topics = append(req.Topics, rt)
	var resp *kmsg.MetadataResponse
	// A topic created through another broker reaches this one's
	// metadata a moment later (Kafka's metadata is eventually
	// consistent across brokers): wait for it, boundedly.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if resp, err = req.RequestWith(ctx, c.client(id)); err != nil {
			c.t.Fatal(err)
		}
		if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || time.Now().After(deadline) {
			break
		}
	}
	out := map[int32]int32{}
	for _, p := range resp.Topics[0].Partitions {
		out[p.Partition] = p.Leader
	}
	return out
}

// TestClusterPlacementOverRacks: 8 partitions on 4 brokers in two racks
// give every broker 2 leaders, consecutive partitions on different racks.
func TestClusterPlacementOverRacks(t *testing.T) {
	var sp []nodeSpec
	racks := map[int32]string{1: "r1", 2: "r1", 3: "r2", 4: "r2"}
	for id := int32(1); id <= 4; id++ {
		sp = append(sp, nodeSpec{id: id, extra: []string{"broker.rack=" + racks[id]}})
	}
	c := startCluster(t, sp)
	ctx := ctxFor(t, 60*time.Second)
	adm := kadm.NewClient(c.client(2))
	if r, err := adm.CreateTopic(ctx, 8, 1, nil, "placed"); err != nil || r.Err != nil {
		t.Fatalf("%v %v", err, r.Err)
	}
	ls := c.leaders(ctx, 3, "placed")
	count := map[int32]int{}
	for p := int32(0); p < 8; p++ {
		count[ls[p]]++
		if p > 0 && racks[ls[p]] == racks[ls[p-1]] {
			t.Errorf("partitions %d and %d on the same rack (%v)", p-1, p, ls)
		}
	}
	for id := int32(1); id <= 4; id++ {
		if count[id] != 2 {
			t.Fatalf("leaders per broker %v, want 2 each", count)
		}
	}
	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, c.client(4))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range dc.Brokers {
		if b.Rack == nil || *b.Rack != racks[b.NodeID] {
			t.Errorf("broker %d rack %v, want %s", b.NodeID, b.Rack, racks[b.NodeID])
		}
	}
}

// TestClusterGroupAndTransactions: a consumer group and an exactly-once
// consume-transform-produce loop over topics whose partitions (and the
// coordinators' partitions) are spread over three brokers.
func TestClusterGroupAndTransactions(t *testing.T) {
	c := startCluster(t, specs(3))
	ctx := ctxFor(t, 90*time.Second)
	adm := kadm.NewClient(c.client(1))
	for _, name := range []string{"in", "out"} {
		if r, err := adm.CreateTopic(ctx, 3, 1, nil, name); err != nil || r.Err != nil {
			t.Fatalf("%v %v", err, r.Err)
		}
	}
	if ls := c.leaders(ctx, 1, "in"); len(ls) != 3 || ls[0] == ls[1] || ls[1] == ls[2] || ls[0] == ls[2] {
		t.Fatalf("partitions of in not on three brokers: %v", ls)
	}
	const n = 300
	prod := c.client(2, kgo.DefaultProduceTopic("in"))
	var rs []*kgo.Record
	for i := 0; i < n; i++ {
		rs = append(rs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))})
	}
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(c.nodes[3].plain),
		kgo.TransactionalID("eos-cluster"),
		kgo.ConsumerGroup("eos-group"), kgo.ConsumeTopics("in"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DefaultProduceTopic("out"),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	done := 0
	for done < n {
		fs := sess.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		k := 0
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Key: r.Key, Value: append([]byte("x"), r.Value...)}, nil)
			k++
		})
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			t.Fatal(err)
		}
		if committed {
			done += k
		}
	}
	// Every output record is committed and seen once by read_committed.
	cons := c.client(1, kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	seen := map[string]bool{}
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if seen[string(r.Value)] {
				t.Fatalf("duplicate %s", r.Value)
			}
			seen[string(r.Value)] = true
		})
	}
	// The group's offsets are committed for every partition.
	offs, err := adm.FetchOffsets(ctx, "eos-group")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	offs.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != n {
		t.Fatalf("committed offsets sum to %d, want %d", total, n)
	}
	// The coordinators live on the leaders of their partitions.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKeys = []string{"eos-group"}
	fc.Version = 4
	resp, err := fc.RequestWith(ctx, c.client(2))
	if err != nil || resp.Coordinators[0].ErrorCode != 0 {
		t.Fatalf("find coordinator: %+v %v", resp, err)
	}
}

// TestClusterFencingAndReturn: a broker that stops heartbeating is fenced
// (its partitions answer leader -1 on every node) and serves again once
// it returns; a broker that shuts down cleanly is fenced at once
// (controlled shutdown).
func TestClusterFencingAndReturn(t *testing.T) {
	c := startCluster(t, specs(3))
	ctx := ctxFor(t, 90*time.Second)
	ctrl := c.controllerID(ctx, 1)
	victim := ctrl%3 + 1
	asker := victim%3 + 1
	if asker == victim {
		asker = ctrl
	}
	adm := kadm.NewClient(c.client(asker))
	if r, err := adm.CreateTopic(ctx, 3, 1, nil, "f"); err != nil || r.Err != nil {
		t.Fatalf("%v %v", err, r.Err)
	}
	// The asker's metadata may still lag the create for a moment (its
	// publisher runs off the raft goroutine): poll until the victim leads
	// a partition.
	var victimPart int32 = -1
	for began := time.Now(); victimPart < 0 && time.Since(began) < 10*time.Second; {
		for p, l := range c.leaders(ctx, asker, "f") {
			if l == victim {
				victimPart = p
			}
		}
		if victimPart < 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if victimPart < 0 {
		t.Fatalf("no partition on the victim %d: %v", victim, c.leaders(ctx, asker, "f"))
	}
	waitLeader := func(want int32, within time.Duration) time.Duration {
		t.Helper()
		began := time.Now()
		for time.Since(began) < within {
			if c.leaders(ctx, asker, "f")[victimPart] == want {
				return time.Since(began)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("partition %d leader is not %d after %v: %v", victimPart, want, within, c.leaders(ctx, asker, "f"))
		return 0
	}

	// Silent stop: fenced after broker.session.timeout.ms (1.5 s here).
	if err := c.nodes[victim].s.Crash(); err != nil {
		t.Fatal(err)
	}
	c.nodes[victim].s = nil
	took := waitLeader(-1, 10*time.Second)
	t.Logf("fenced after %v", took)
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Topics = []kmsg.MetadataRequestTopic{}
	if m, err := mreq.RequestWith(ctx, c.client(asker)); err != nil || len(m.Brokers) != 2 {
		t.Fatalf("brokers while fenced: %+v %v", m, err)
	}
	// It returns and serves its partition again.
	c.restart(victim)
	waitLeader(victim, 10*time.Second)
	prod := c.client(asker, kgo.DefaultProduceTopic("f"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := prod.ProduceSync(ctx, &kgo.Record{Partition: victimPart, Value: []byte("back")}).FirstErr(); err != nil {
		t.Fatalf("produce after return: %v", err)
	}

	// Controlled shutdown: fenced before the node stops.
	if err := c.nodes[victim].s.Close(); err != nil {
		t.Fatal(err)
	}
	c.nodes[victim].s = nil
	if l := c.leaders(ctx, asker, "f")[victimPart]; l != -1 {
		// The fence is committed before Close returns; the asker
		// applies it within moments.
		waitLeader(-1, time.Second)
	}
	c.restart(victim)
	waitLeader(victim, 10*time.Second)

	// Crashed and restarted at once: the new process's registration
	// waits for the old one's session to expire, then serves.
	if err := c.nodes[victim].s.Crash(); err != nil {
		t.Fatal(err)
	}
	c.nodes[victim].s = nil
	c.restart(victim)
	waitLeader(victim, 10*time.Second)
}

// TestClusterControllerFailover kills (Crash) the active controller
// repeatedly: another voter takes over, admin requests through a
// surviving node work again, and nothing committed is lost. It logs the
// time from the kill to the first successful CreateTopics (p50, max);
// SAMSA_FAILOVER_KILLS sets the number of kills (default 3).
func TestClusterControllerFailover(t *testing.T) {
	kills := 3
	if v, err := strconv.Atoi(os.Getenv("SAMSA_FAILOVER_KILLS")); err == nil && v > 0 {
		kills = v
	}
	c := startCluster(t, specs(3))
	ctx := ctxFor(t, time.Duration(kills)*30*time.Second+30*time.Second)
	var times []time.Duration
	pids := map[int64]bool{}
	for k := 0; k < kills; k++ {
		var ctrl int32 = -1
		for id, n := range c.nodes {
			if n.s != nil {
				ctrl = c.controllerID(ctx, id)
				break
			}
		}
		survivor := ctrl%3 + 1
		adm := kadm.NewClient(c.client(survivor, kgo.RetryTimeout(0), kgo.RequestRetries(0)))
		pidBefore := initProducerID(t, ctx, c.client(survivor))
		if pids[pidBefore] {
			t.Fatalf("kill %d: producer id %d handed out twice", k, pidBefore)
		}
		name := fmt.Sprintf("before-%d", k)
		if r, err := adm.CreateTopic(ctx, 1, 1, nil, name); err != nil || r.Err != nil {
			t.Fatalf("kill %d: create before: %v %v", k, err, r.Err)
		}
		began := time.Now()
		if err := c.nodes[ctrl].s.Crash(); err != nil {
			t.Fatal(err)
		}
		c.nodes[ctrl].s = nil
		for i := 0; ; i++ {
			r, err := adm.CreateTopic(ctx, 1, 1, nil, fmt.Sprintf("after-%d", k))
			if err == nil && (r.Err == nil || errors.Is(r.Err, kerr.TopicAlreadyExists)) {
				break
			}
			if time.Since(began) > 20*time.Second {
				t.Fatalf("kill %d: admin not working 20 s after the kill: %v %v", k, err, r.Err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		times = append(times, time.Since(began))
		// Producer ids stay unique across the takeover (the new
		// controller reserves a fresh block).
		if pid := initProducerID(t, ctx, c.client(survivor)); pid == pidBefore || pids[pid] {
			t.Fatalf("kill %d: producer id %d handed out twice", k, pid)
		} else {
			pids[pid], pids[pidBefore] = true, true
		}
		td, err := kadm.NewClient(c.client(survivor)).ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j <= k; j++ {
			if !td.Has(fmt.Sprintf("before-%d", j)) {
				t.Fatalf("kill %d: committed topic before-%d lost", k, j)
			}
		}
		c.restart(ctrl)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	t.Logf("admin works again after a controller kill: p50 %v, p99 %v, max %v over %d kills (%v)",
		times[len(times)/2], times[min(len(times)-1, len(times)*99/100)], times[len(times)-1], len(times), times)
}
