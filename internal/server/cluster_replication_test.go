package server_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partitionState is one partition as a node's Metadata shows it.
func partitionState(ctx context.Context, t *testing.T, c *testCluster, via int32, topic string, partition int32) (leader, epoch int32, isr []int32) {
	t.Helper()
	adm := kadm.NewClient(c.client(via))
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	p := md.Topics[topic].Partitions[partition]
	isr = slices.Clone(p.ISR)
	slices.Sort(isr)
	return p.Leader, p.LeaderEpoch, isr
}

// TestClusterReplicationAcksAllSurvivesLeaderLoss: a topic of replication
// factor 3 on three brokers; records produced with acks=all reach every
// replica byte for byte; the leader is stopped, another ISR member takes
// over with a new epoch, every acknowledged record is still there, and
// producing goes on; the old leader comes back, catches up and rejoins
// the ISR.
func TestClusterReplicationAcksAllSurvivesLeaderLoss(t *testing.T) {
	c := startCluster(t, specs(3), "min.insync.replicas=2")
	ctx := ctxFor(t, 90*time.Second)
	adm := kadm.NewClient(c.client(1))
	const topic = "replicated"
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	waitISR := func(via int32, want []int32) (int32, int32) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			leader, epoch, isr := partitionState(ctx, t, c, via, topic, 0)
			if leader >= 0 && slices.Equal(isr, want) {
				return leader, epoch
			}
			if time.Now().After(deadline) {
				t.Fatalf("ISR %v leader %d, want ISR %v", isr, leader, want)
			}
		}
	}
	leader, epoch := waitISR(1, []int32{1, 2, 3})

	produce := func(via int32, from, n int) {
		t.Helper()
		cl := c.client(via, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(20))
		var rs []*kgo.Record
		for i := from; i < from+n; i++ {
			rs = append(rs, &kgo.Record{Value: []byte(fmt.Sprintf("r-%06d", i))})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce %d..%d via %d: %v", from, from+n, via, err)
		}
	}
	produce(1, 0, 500)

	// Every replica holds the same bytes once the followers caught up.
	readLog := func(id int32) []byte {
		l, ok := c.nodes[id].s.LogForTest(topic, 0)
		if !ok {
			t.Fatalf("node %d has no log of %s-0", id, topic)
		}
		b, err := l.Read(0, 64<<20, l.LogEndOffset(), true)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Clone(b)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		a, b, d := readLog(1), readLog(2), readLog(3)
		if len(a) > 0 && bytes.Equal(a, b) && bytes.Equal(a, d) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica logs differ: %d, %d, %d bytes", len(a), len(b), len(d))
		}
	}

	// Stop the leader: another ISR member leads with a newer epoch.
	c.nodes[leader].s.Close()
	c.nodes[leader].s = nil
	var other int32
	for id := range c.nodes {
		if id != leader {
			other = id
			break
		}
	}
	var rest []int32
	for id := range c.nodes {
		if id != leader {
			rest = append(rest, id)
		}
	}
	slices.Sort(rest)
	newLeader, newEpoch := waitISR(other, rest)
	if newLeader == leader || newEpoch <= epoch {
		t.Fatalf("after stopping leader %d (epoch %d): leader %d epoch %d", leader, epoch, newLeader, newEpoch)
	}
	produce(other, 500, 500)

	// Every acknowledged record, once, in order.
	cons := c.client(other, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < 1000 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("r-%06d", got); string(r.Value) != want {
				t.Fatalf("offset %d holds %q, want %q", r.Offset, r.Value, want)
			}
			got++
		})
	}

	// The old leader returns, catches up and rejoins the ISR.
	c.restart(leader)
	waitISR(other, []int32{1, 2, 3})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if a, b := readLog(leader), readLog(newLeader); bytes.Equal(a, b) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("returned replica %d did not converge with leader %d", leader, newLeader)
		}
	}
}

// TestClusterReplicationMinInsyncReplicas: with two of three replicas
// down, the ISR shrinks to the leader alone: acks=all produces get
// NOT_ENOUGH_REPLICAS and store nothing, acks=1 ones still succeed; once
// a replica returns and catches up, acks=all works again.
func TestClusterReplicationMinInsyncReplicas(t *testing.T) {
	// Three voters keep the quorum; the topic lives on voter 3 and the
	// broker-only nodes 4 and 5, which are stopped.
	c := startCluster(t, append(specs(3), nodeSpec{id: 4, roles: "broker"}, nodeSpec{id: 5, roles: "broker"}), "min.insync.replicas=2")
	ctx := ctxFor(t, 90*time.Second)
	const topic = "minisr"
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, []int32{3, 4, 5}
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	req.Topics = append(req.Topics, rt)
	cresp, err := req.RequestWith(ctx, c.client(1))
	if err != nil || cresp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %+v", err, cresp)
	}
	const leader = int32(3)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		l, _, isr := partitionState(ctx, t, c, 1, topic, 0)
		if l == leader && len(isr) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leader %d ISR %v, want leader 3 and three in sync", l, isr)
		}
	}
	down := []int32{4, 5}
	for _, id := range down {
		c.nodes[id].s.Close()
		c.nodes[id].s = nil
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, _, isr := partitionState(ctx, t, c, leader, topic, 0); slices.Equal(isr, []int32{leader}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ISR did not shrink to the leader")
		}
	}
	// A raw request: clients retry NOT_ENOUGH_REPLICAS until their
	// delivery timeout.
	preq := kmsg.NewPtrProduceRequest()
	preq.Acks, preq.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	md, err := kadm.NewClient(c.client(leader)).Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	pt.Topic, pt.TopicID = topic, md.Topics[topic].ID // v13+ names topics by id
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = oneBatch()
	pt.Partitions = append(pt.Partitions, pp)
	preq.Topics = append(preq.Topics, pt)
	presp, err := preq.RequestWith(ctx, c.client(leader))
	if err != nil {
		t.Fatal(err)
	}
	if code := presp.Topics[0].Partitions[0].ErrorCode; code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with the ISR below min.insync.replicas: code %d, want NOT_ENOUGH_REPLICAS", code)
	}
	one := c.client(leader, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if err := one.ProduceSync(ctx, &kgo.Record{Value: []byte("accepted")}).FirstErr(); err != nil {
		t.Fatalf("acks=1: %v", err)
	}
	c.restart(down[0])
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, _, isr := partitionState(ctx, t, c, leader, topic, 0); len(isr) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the returned replica did not rejoin the ISR")
		}
	}
	all2 := c.client(leader, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err := all2.ProduceSync(ctx, &kgo.Record{Value: []byte("again")}).FirstErr(); err != nil {
		t.Fatalf("acks=all with two in sync: %v", err)
	}
	// Nothing of the refused produce was stored.
	cons := c.client(leader, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var vals []string
	for len(vals) < 2 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { vals = append(vals, string(r.Value)) })
	}
	if !slices.Equal(vals, []string{"accepted", "again"}) {
		t.Fatalf("stored %q", vals)
	}
}

// TestClusterReplicationDeleteRecordsAndMetrics: DeleteRecords on an
// RF 3 topic answers once every replica moved its log start offset, and
// the followers' fetcher metrics are exported.
func TestClusterReplicationDeleteRecordsAndMetrics(t *testing.T) {
	c := startCluster(t, specs(3))
	ctx := ctxFor(t, 60*time.Second)
	adm := kadm.NewClient(c.client(1))
	const topic = "trimmed"
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	prod := c.client(1, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	var rs []*kgo.Record
	for i := range 100 {
		rs = append(rs, &kgo.Record{Value: []byte(fmt.Sprintf("v%d", i))})
	}
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	resp, err := adm.DeleteRecords(ctx, kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: 60}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := resp.Lookup(topic, 0); r.Err != nil || r.LowWatermark != 60 {
		t.Fatalf("DeleteRecords: %+v", r)
	}
	// Answered only once every replica moved: each log starts at 60.
	for id, n := range c.nodes {
		l, ok := n.s.LogForTest(topic, 0)
		if !ok || l.LogStartOffset() != 60 {
			t.Fatalf("node %d: log start %d, want 60", id, l.LogStartOffset())
		}
	}
	// Followers' fetchers are in /metrics.
	leader, _, _ := partitionState(ctx, t, c, 1, topic, 0)
	var follower int32
	for id := range c.nodes {
		if id != leader {
			follower = id
			break
		}
	}
	text := c.nodes[follower].s.MetricsText(t)
	if !strings.Contains(text, fmt.Sprintf(`samsa_replica_fetcher_partitions{fetcher="0",leader="%d"}`, leader)) {
		t.Fatalf("no fetcher metrics for leader %d on node %d", leader, follower)
	}
}
