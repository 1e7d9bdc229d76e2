package group

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/coordinator/coordtest"
)

const week = 7 * 24 * time.Hour

// expiryBroker is a test broker whose coordinator runs on clk, with Kafka's
// default retention (7 days) and a sweep that never fires on its own.
func expiryBroker(t *testing.T) (*testBroker, *coordtest.Clock) {
	clk := coordtest.NewClock(time.UnixMilli(time.Now().UnixMilli()))
	cfg := testConfig()
	cfg.Now = clk.Now
	cfg.OffsetsRetention = week
	cfg.OffsetsRetentionCheckInterval = time.Hour
	return newTestBroker(t, cfg), clk
}

// simpleCommit commits one offset without group membership (generation -1)
// at the given OffsetCommit version; mutate may adjust the request.
func simpleCommit(t *testing.T, c *Coordinator, group, topic string, partition int32, offset int64, version int16, mutate func(*kmsg.OffsetCommitRequest)) {
	t.Helper()
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = version
	r.Group = group
	r.Generation = -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition = partition
	p.Offset = offset
	rt.Partitions = append(rt.Partitions, p)
	r.Topics = append(r.Topics, rt)
	if mutate != nil {
		mutate(r)
	}
	resp := c.OffsetCommit(context.Background(), r)
	if err := errOf(resp.Topics[0].Partitions[0].ErrorCode); err != nil {
		t.Fatalf("commit %s/%s-%d: %v", group, topic, partition, err)
	}
}

// committed returns every committed offset of group as "topic-partition" ->
// offset.
func committed(t *testing.T, c *Coordinator, group string) map[topicPartition]int64 {
	t.Helper()
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 9
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = group
	r.Groups = append(r.Groups, g)
	resp := c.OffsetFetch(context.Background(), r)
	if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
		t.Fatalf("fetch: %+v", resp)
	}
	out := make(map[topicPartition]int64)
	for _, rt := range resp.Groups[0].Topics {
		for _, p := range rt.Partitions {
			out[topicPartition{rt.Topic, p.Partition}] = p.Offset
		}
	}
	return out
}

func stateOf(t *testing.T, c *Coordinator, group string) string {
	t.Helper()
	return describe(t, c, group).State
}

func expectState(t *testing.T, c *Coordinator, group, want string) {
	t.Helper()
	if s := stateOf(t, c, group); s != want {
		t.Fatalf("group %s is %s, want %s", group, s, want)
	}
}

// joined returns cl once it is a member of a stable generation.
func joined(t *testing.T, ctx context.Context, cl *client) *client {
	t.Helper()
	if err := cl.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	return cl
}

// expectExpired runs a sweep and checks how many offsets it expired.
func expectExpired(t *testing.T, c *Coordinator, want int) {
	t.Helper()
	if n := c.ExpireOffsetsNow(); n != want {
		t.Fatalf("ExpireOffsetsNow = %d, want %d", n, want)
	}
}

// expectTombstones checks that the last record of each key in the log is a
// tombstone.
func expectTombstones(t *testing.T, p Partition, keys ...[]byte) {
	t.Helper()
	recs := logRecords(t, p)
	for _, k := range keys {
		v, found := lastRecordOf(recs, k)
		if !found || v != nil {
			t.Fatalf("key %q: found %v, last value %q; want a tombstone", k, found, v)
		}
	}
}

func TestGroupExpireEmptyGroupFromWhenItBecameEmpty(t *testing.T) {
	b, clk := expiryBroker(t)
	ctx := testCtx(t)
	cl := joined(t, ctx, newClient(b.c, "g", "c"))
	if err := cl.commit("t", 0, 10); err != nil {
		t.Fatal(err)
	}
	if err := cl.commit("t", 1, 11); err != nil {
		t.Fatal(err)
	}
	// The group stays Stable for 5 days: nothing expires while it has a
	// member subscribed to t.
	clk.Advance(5 * 24 * time.Hour)
	expectExpired(t, b.c, 0)
	if err := leave(b.c, "g", cl.memberID); err != nil {
		t.Fatal(err)
	}
	expectState(t, b.c, "g", "Empty")
	// 7 days after the commits, but only 2 since the group became Empty.
	clk.Advance(2 * 24 * time.Hour)
	expectExpired(t, b.c, 0)
	// The restart keeps the time the group became Empty.
	b.restart()
	clk.Advance(week - 2*24*time.Hour - time.Millisecond)
	expectExpired(t, b.c, 0)
	if got := committed(t, b.c, "g"); len(got) != 2 {
		t.Fatalf("offsets before expiry: %v", got)
	}
	clk.Advance(time.Millisecond)
	expectExpired(t, b.c, 2)
	if got := committed(t, b.c, "g"); len(got) != 0 {
		t.Fatalf("offsets after expiry: %v", got)
	}
	// Empty without offsets: the group died, and its metadata is gone.
	expectState(t, b.c, "g", "Dead")
	expectTombstones(t, b.part,
		offsetKey("g", topicPartition{"t", 0}), offsetKey("g", topicPartition{"t", 1}), groupKey("g"))
	b.restart()
	if got := committed(t, b.c, "g"); len(got) != 0 {
		t.Fatalf("offsets after restart: %v", got)
	}
	expectState(t, b.c, "g", "Dead")
	expectExpired(t, b.c, 0)
}

func TestGroupExpireStandaloneCommits(t *testing.T) {
	b, clk := expiryBroker(t)
	simpleCommit(t, b.c, "s", "t", 0, 5, 9, nil)
	clk.Advance(3 * 24 * time.Hour)
	simpleCommit(t, b.c, "s", "t", 1, 6, 0, nil) // v0: also a simple commit
	clk.Advance(4*24*time.Hour - time.Millisecond)
	expectExpired(t, b.c, 0)
	clk.Advance(time.Millisecond)
	// t-0 is 7 days old, t-1 only 4: the group lives on with t-1.
	expectExpired(t, b.c, 1)
	if got := committed(t, b.c, "s"); len(got) != 1 || got[topicPartition{"t", 1}] != 6 {
		t.Fatalf("offsets: %v", got)
	}
	expectState(t, b.c, "s", "Empty")
	b.restart()
	if got := committed(t, b.c, "s"); len(got) != 1 || got[topicPartition{"t", 1}] != 6 {
		t.Fatalf("offsets after restart: %v", got)
	}
	clk.Advance(3 * 24 * time.Hour)
	expectExpired(t, b.c, 1)
	expectState(t, b.c, "s", "Dead")
	expectTombstones(t, b.part, offsetKey("s", topicPartition{"t", 0}),
		offsetKey("s", topicPartition{"t", 1}), groupKey("s"))
	b.restart()
	if got := committed(t, b.c, "s"); len(got) != 0 {
		t.Fatalf("offsets after second restart: %v", got)
	}
}

func TestGroupExpireUnsubscribedTopicsOfStableGroup(t *testing.T) {
	b, clk := expiryBroker(t)
	ctx := testCtx(t)
	cl := newClient(b.c, "g", "c")
	cl.topics = []string{"t", "u"}
	if err := cl.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"t", "u", "old"} {
		if err := cl.commit(topic, 0, 1); err != nil {
			t.Fatal(err)
		}
	}
	// A group of another protocol type keeps all its offsets while it has
	// members.
	other := newClient(b.c, "connect", "c")
	other.protocolType = "connect"
	if err := other.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.commit("old", 0, 1); err != nil {
		t.Fatal(err)
	}
	if d := describe(t, b.c, "connect"); d.ProtocolType != "connect" {
		t.Fatalf("connect group: %+v", d)
	}

	clk.Advance(week)
	for _, cl := range []*client{cl, other} {
		if err := cl.heartbeat(); err != nil {
			t.Fatal(err)
		}
	}
	expectExpired(t, b.c, 1)
	want := map[topicPartition]int64{{"t", 0}: 1, {"u", 0}: 1}
	if got := committed(t, b.c, "g"); len(got) != 2 || got[topicPartition{"t", 0}] != 1 || got[topicPartition{"u", 0}] != 1 {
		t.Fatalf("offsets %v, want %v", got, want)
	}
	if got := committed(t, b.c, "connect"); len(got) != 1 {
		t.Fatalf("connect group offsets %v", got)
	}
	expectState(t, b.c, "g", "Stable")
	expectTombstones(t, b.part, offsetKey("g", topicPartition{"old", 0}))
	b.restart()
	if got := committed(t, b.c, "g"); len(got) != 2 {
		t.Fatalf("offsets after restart %v, want %v", got, want)
	}
}

func TestGroupExpireExplicitExpireTimestamp(t *testing.T) {
	b, clk := expiryBroker(t)
	t0 := clk.Now().UnixMilli()
	// v2-v4: a retention time gives an explicit expiry, stored as value v1.
	simpleCommit(t, b.c, "x", "t", 0, 7, 2, func(r *kmsg.OffsetCommitRequest) { r.RetentionTimeMillis = 3_600_000 })
	// v1: the partition's commit timestamp is the one stored.
	simpleCommit(t, b.c, "x", "t", 1, 8, 1, func(r *kmsg.OffsetCommitRequest) {
		r.Topics[0].Partitions[0].Timestamp = t0 - (week - 2*time.Hour).Milliseconds()
	})
	v, _ := lastRecordOf(logRecords(t, b.part), offsetKey("x", topicPartition{"t", 0}))
	var val kmsg.OffsetCommitValue
	if err := val.ReadFrom(v); err != nil || val.Version != 1 || val.ExpireTimestamp != t0+3_600_000 || val.CommitTimestamp != t0 {
		t.Fatalf("stored value %+v (err %v)", val, err)
	}
	v, _ = lastRecordOf(logRecords(t, b.part), offsetKey("x", topicPartition{"t", 1}))
	if err := val.ReadFrom(v); err != nil || val.Version != 3 || val.CommitTimestamp != t0-(week-2*time.Hour).Milliseconds() {
		t.Fatalf("stored v1 commit %+v (err %v)", val, err)
	}
	b.restart() // the expiry survives the replay
	clk.Advance(time.Hour - time.Millisecond)
	expectExpired(t, b.c, 0)
	clk.Advance(time.Millisecond)
	expectExpired(t, b.c, 1)
	if got := committed(t, b.c, "x"); len(got) != 1 || got[topicPartition{"t", 1}] != 8 {
		t.Fatalf("offsets %v", got)
	}
	clk.Advance(time.Hour)
	expectExpired(t, b.c, 1)
	expectState(t, b.c, "x", "Dead")
}

func TestGroupExpireEmptyGroupWithoutOffsetsDies(t *testing.T) {
	b, _ := expiryBroker(t)
	ctx := testCtx(t)
	cl := joined(t, ctx, newClient(b.c, "g", "c"))
	expectExpired(t, b.c, 0)
	expectState(t, b.c, "g", "Stable")
	if err := leave(b.c, "g", cl.memberID); err != nil {
		t.Fatal(err)
	}
	// No retention applies to a group without offsets.
	expectExpired(t, b.c, 0)
	expectState(t, b.c, "g", "Dead")
	expectTombstones(t, b.part, groupKey("g"))
	b.restart()
	expectState(t, b.c, "g", "Dead")
}

// A member joining while the tombstone of its Empty group is being written
// keeps the group, whose metadata is written again after the tombstone.
func TestGroupExpireRacingJoinKeepsGroup(t *testing.T) {
	b, _ := expiryBroker(t)
	ctx := testCtx(t)
	cl := joined(t, ctx, newClient(b.c, "g", "c"))
	if err := leave(b.c, "g", cl.memberID); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	b.part.SetBeforeAppend(func() {
		b.part.SetBeforeAppend(nil)
		close(entered)
		<-release
	})
	done := make(chan int)
	go func() { done <- b.c.ExpireOffsetsNow() }()
	<-entered
	// The join completes without writing (the group is stored at sync).
	cl2 := newClient(b.c, "g", "c2")
	jr := joinReq("g", "", 3, 10*time.Second) // v3: no MEMBER_ID_REQUIRED
	resp := b.c.JoinGroup(WithClient(ctx, "c2", "h"), jr)
	if err := errOf(resp.ErrorCode); err != nil {
		t.Fatal(err)
	}
	close(release)
	if n := <-done; n != 0 {
		t.Fatalf("expired %d offsets", n)
	}
	cl2.memberID = resp.MemberID
	if err := cl2.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	expectState(t, b.c, "g", "Stable")
	b.restart()
	if d := describe(t, b.c, "g"); d.State != "Stable" || len(d.Members) != 1 {
		t.Fatalf("after restart: %+v", d)
	}
}

// A failed tombstone write keeps everything; the next sweep retries.
func TestGroupExpireWriteFailureKeepsOffsets(t *testing.T) {
	b, clk := expiryBroker(t)
	simpleCommit(t, b.c, "s", "t", 0, 5, 9, nil)
	clk.Advance(week)
	b.part.SetFail(kerr.NotEnoughReplicas)
	expectExpired(t, b.c, 0)
	if got := committed(t, b.c, "s"); len(got) != 1 {
		t.Fatalf("offsets %v", got)
	}
	b.part.SetFail(nil)
	expectExpired(t, b.c, 1)
}

func TestGroupExpirePeriodicSweep(t *testing.T) {
	clk := coordtest.NewClock(time.UnixMilli(time.Now().UnixMilli()))
	cfg := testConfig()
	cfg.Now = clk.Now
	cfg.OffsetsRetention = time.Minute
	cfg.OffsetsRetentionCheckInterval = 5 * time.Millisecond
	b := newTestBroker(t, cfg)
	simpleCommit(t, b.c, "s", "t", 0, 5, 9, nil)
	clk.Advance(time.Minute)
	eventually(t, 10*time.Second, "the sweep to expire the offset", func() bool {
		return stateOf(t, b.c, "s") == "Dead"
	})
	expectTombstones(t, b.part, offsetKey("s", topicPartition{"t", 0}), groupKey("s"))
}

func TestGroupExpireDefaults(t *testing.T) {
	c := New(Config{})
	defer c.Close()
	if c.cfg.OffsetsRetention != 10080*time.Minute || c.cfg.OffsetsRetentionCheckInterval != 600000*time.Millisecond {
		t.Fatalf("defaults: retention %v, check interval %v", c.cfg.OffsetsRetention, c.cfg.OffsetsRetentionCheckInterval)
	}
	if c.now().IsZero() {
		t.Fatal("no default clock")
	}
}
