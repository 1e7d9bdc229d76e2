package api_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupNode starts a node whose new groups rebalance at once.
func groupNode(t *testing.T, extra ...string) *node {
	return startNode(t, append([]string{"group.initial.rebalance.delay.ms=0"}, extra...)...)
}

func produceN(t *testing.T, n *node, topic string, from, count int) {
	t.Helper()
	cl := n.client(kgo.DefaultProduceTopic(topic))
	var rs []*kgo.Record
	for i := from; i < from+count; i++ {
		rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))})
	}
	if err := cl.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestAPIGroupMembersShareAndResume: two members of one group split a
// topic's partitions and together read every record; their commits are
// what a later member of the group resumes from.
func TestAPIGroupMembersShareAndResume(t *testing.T) {
	n := groupNode(t)
	n.createTopic("shared", 4, nil)
	produceN(t, n, "shared", 0, 400)
	ctx := ctxT(t)

	var mu sync.Mutex
	seen := map[string]bool{}
	members := make([]*kgo.Client, 2)
	for i := range members {
		members[i] = n.client(kgo.ConsumerGroup("g-shared"), kgo.ConsumeTopics("shared"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	}
	var wg sync.WaitGroup
	pollCtx, stop := context.WithCancel(ctx)
	defer stop()
	for _, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pollCtx.Err() == nil {
				fs := m.PollFetches(pollCtx)
				fs.EachRecord(func(r *kgo.Record) {
					mu.Lock()
					seen[string(r.Value)] = true
					if len(seen) == 400 {
						stop()
					}
					mu.Unlock()
				})
				if err := m.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
					t.Errorf("commit: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("read %d of 400 records before the deadline", len(seen))
	}
	for _, m := range members {
		if err := m.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatal(err)
		}
		m.Close()
	}

	adm := n.admin()
	committed, err := adm.FetchOffsets(ctx, "g-shared")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil {
			t.Errorf("%s-%d: %v", o.Topic, o.Partition, o.Err)
		}
		if end := n.endOffset("shared", o.Partition); o.At != end {
			t.Errorf("partition %d committed at %d, end offset %d", o.Partition, o.At, end)
		}
		sum += o.At
	})
	if sum != 400 {
		t.Fatalf("commits sum to %d, want 400", sum)
	}

	// A new member resumes at the commits: it reads only the new records.
	produceN(t, n, "shared", 400, 20)
	later := n.client(kgo.ConsumerGroup("g-shared"), kgo.ConsumeTopics("shared"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < 20 {
		fs := later.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("resumed member read %d of 20", got)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var i int
			fmt.Sscan(string(r.Value), &i)
			if i < 400 {
				t.Fatalf("resumed member re-read record %d", i)
			}
			got++
		})
	}
}

// TestAPIGroupOffsetsSurviveRestart: commits are in __consumer_offsets and
// come back after a restart.
func TestAPIGroupOffsetsSurviveRestart(t *testing.T) {
	dir := "log.dirs=" + t.TempDir()
	n := groupNode(t, dir)
	n.createTopic("kept", 2, nil)
	produceN(t, n, "kept", 0, 10)
	ctx := ctxT(t)
	offs := kadm.Offsets{}
	offs.AddOffset("kept", 0, 3, -1)
	offs.AddOffset("kept", 1, 5, -1)
	resp, err := n.admin().CommitOffsets(ctx, "g-kept", offs)
	if err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	n.s.Close()

	n2 := groupNode(t, dir)
	got, err := n2.admin().FetchOffsets(ctx, "g-kept")
	if err != nil || got.Error() != nil {
		t.Fatalf("fetch offsets: %v %v", err, got.Error())
	}
	for p, want := range map[int32]int64{0: 3, 1: 5} {
		if o, ok := got.Lookup("kept", p); !ok || o.At != want {
			t.Errorf("partition %d: committed %+v after restart, want %d", p, o, want)
		}
	}
}

// TestAPIGroupDescribeListDelete: an empty group is listed and described,
// and deleting it removes its offsets.
func TestAPIGroupDescribeListDelete(t *testing.T) {
	n := groupNode(t)
	n.createTopic("gone", 1, nil)
	produceN(t, n, "gone", 0, 5)
	ctx := ctxT(t)
	m := n.client(kgo.ConsumerGroup("g-gone"), kgo.ConsumeTopics("gone"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for got := 0; got < 5; {
		fs := m.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		got += fs.NumRecords()
	}
	adm := n.admin()
	described, err := adm.DescribeGroups(ctx, "g-gone")
	if err != nil {
		t.Fatal(err)
	}
	if g := described["g-gone"]; g.State != "Stable" || len(g.Members) != 1 || g.ProtocolType != "consumer" {
		t.Errorf("described %+v", g)
	}
	if del, err := adm.DeleteGroups(ctx, "g-gone"); err != nil || del["g-gone"].Err == nil {
		t.Errorf("deleting a group with a member: %v %+v", err, del)
	}
	if err := m.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	m.Close() // leaves the group

	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := listed["g-gone"]; !ok || g.State != "Empty" {
		t.Errorf("listed %+v", listed)
	}
	del, err := adm.DeleteGroups(ctx, "g-gone")
	if err != nil || del["g-gone"].Err != nil {
		t.Fatalf("delete: %v %+v", err, del)
	}
	offs, err := adm.FetchOffsets(ctx, "g-gone")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("gone", 0); ok && o.At >= 0 {
		t.Errorf("offsets of a deleted group: %+v", o)
	}
}

// TestAPIGroupOffsetsExpire: a commit made with OffsetCommit v2's
// retention time expires once that time has passed (the sweep runs every
// offsets.retention.check.interval.ms), and stays gone after a restart;
// a commit without one is kept (offsets.retention.minutes is 7 days).
func TestAPIGroupOffsetsExpire(t *testing.T) {
	dir := "log.dirs=" + t.TempDir()
	n := groupNode(t, dir, "offsets.retention.check.interval.ms=50")
	n.createTopic("exp", 1, nil)
	produceN(t, n, "exp", 0, 10)
	ctx := ctxT(t)
	offs := kadm.Offsets{}
	offs.AddOffset("exp", 0, 4, -1)
	if resp, err := n.admin().CommitOffsets(ctx, "g-keep", offs); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}

	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(2)
	req.Group, req.Generation, req.RetentionTimeMillis = "g-exp", -1, 300
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "exp"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 7
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	c := n.raw()
	for tries := 0; ; tries++ {
		// The group's __consumer_offsets partition may still be loading
		// (COORDINATOR_LOAD_IN_PROGRESS, 14).
		code := c.do(req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
		if code == 0 {
			break
		}
		if code != 14 || tries == 100 {
			t.Fatalf("OffsetCommit v2: error %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}

	committed := func(n *node, group string) int64 {
		t.Helper()
		got, err := n.admin().FetchOffsets(ctx, group)
		if err != nil || got.Error() != nil {
			t.Fatalf("fetch offsets of %s: %v %v", group, err, got.Error())
		}
		if o, ok := got.Lookup("exp", 0); ok {
			return o.At
		}
		return -1
	}
	if at := committed(n, "g-exp"); at != 7 {
		t.Fatalf("g-exp committed %d right after the commit, want 7", at)
	}
	deadline := time.Now().Add(15 * time.Second)
	for committed(n, "g-exp") != -1 {
		if time.Now().After(deadline) {
			t.Fatal("the offset committed with a 300 ms retention time never expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.s.Close()

	n2 := groupNode(t, dir)
	if at := committed(n2, "g-exp"); at != -1 {
		t.Errorf("expired offset back after restart: %d", at)
	}
	if at := committed(n2, "g-keep"); at != 4 {
		t.Errorf("g-keep committed %d after restart, want 4", at)
	}
}
