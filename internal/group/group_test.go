package group

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/storage"
)

func TestGroupPartitionFor(t *testing.T) {
	for _, tc := range []struct {
		group string
		want  int32
	}{
		{"", 0},
		{"polygenelubricants", 0}, // hashCode is MinInt32: Utils.abs gives 0
		{"my-group", 12},          // negative hashCode -1906497762
		{"console-consumer-12345", 6},
		{"test", 48},
		{"gén😀", 25}, // non-ASCII and a surrogate pair
	} {
		if got := PartitionFor(tc.group, 50); got != tc.want {
			t.Errorf("PartitionFor(%q) = %d, want %d", tc.group, got, tc.want)
		}
	}
}

func TestGroupSingleMemberLifecycle(t *testing.T) {
	b := newTestBroker(t, testConfig())
	ctx := testCtx(t)

	// KIP-394: the first join only hands out a member id.
	resp := b.c.JoinGroup(WithClient(ctx, "cli", "h"), joinReq("g", "", 9, 10*time.Second))
	if !errors.Is(errOf(resp.ErrorCode), kerr.MemberIDRequired) || !strings.HasPrefix(resp.MemberID, "cli-") {
		t.Fatalf("first join: %v %q", errOf(resp.ErrorCode), resp.MemberID)
	}
	if resp.Version != 9 {
		t.Fatalf("version not copied: %d", resp.Version)
	}
	// The member comes back with its id. (A pending id that never comes back
	// would hold the rebalance until it expires, as in Kafka.)
	cl := newClient(b.c, "g", "cli")
	cl.memberID = resp.MemberID
	if err := cl.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	if !cl.leader || cl.members != 1 || cl.generation != 1 || string(cl.assignment) != "a:"+cl.memberID {
		t.Fatalf("unexpected member state %+v", cl)
	}
	if err := cl.heartbeat(); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	if err := cl.commit("t", 0, 42); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if off, md := fetchOffset(t, b.c, "g", "t", 0); off != 42 || md != "md-42" {
		t.Fatalf("fetch = %d %q", off, md)
	}
	if off, _ := fetchOffset(t, b.c, "g", "t", 1); off != -1 {
		t.Fatalf("never committed partition: %d", off)
	}
	if off, _ := fetchOffset(t, b.c, "nogroup", "t", 0); off != -1 {
		t.Fatalf("unknown group: %d", off)
	}

	// Null topics: every committed offset, old (v1 shape, v3) and new versions.
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 3
	r.Group = "g"
	fr := b.c.OffsetFetch(ctx, r)
	if fr.ErrorCode != 0 || len(fr.Topics) != 1 || fr.Topics[0].Partitions[0].Offset != 42 {
		t.Fatalf("fetch all v3: %+v", fr)
	}
	r = kmsg.NewPtrOffsetFetchRequest()
	r.Version = 8
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = "g"
	r.Groups = append(r.Groups, g)
	fr = b.c.OffsetFetch(ctx, r)
	if len(fr.Groups) != 1 || len(fr.Groups[0].Topics) != 1 || fr.Groups[0].Topics[0].Partitions[0].LeaderEpoch != 7 {
		t.Fatalf("fetch all v8: %+v", fr)
	}

	d := describe(t, b.c, "g")
	if d.State != "Stable" || d.Protocol != "range" || d.ProtocolType != "consumer" || len(d.Members) != 1 ||
		d.Members[0].ClientID != "cli" || d.Members[0].ClientHost != "127.0.0.1" ||
		string(d.Members[0].MemberAssignment) != "a:"+cl.memberID {
		t.Fatalf("describe: %+v", d)
	}

	if err := leave(b.c, "g", cl.memberID); err != nil {
		t.Fatalf("leave: %v", err)
	}
	eventually(t, 5*time.Second, "Empty", func() bool { return describe(t, b.c, "g").State == "Empty" })
}

func TestGroupThreeMembersRebalance(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 100 * time.Millisecond
	b := newTestBroker(t, cfg)
	ctx := testCtx(t)

	clients := make([]*client, 3)
	for i := range clients {
		clients[i] = newClient(b.c, "g3", "c")
	}
	runUntilStable(t, ctx, clients)
	leaders := 0
	ids := map[string]bool{}
	for _, cl := range clients {
		if cl.leader {
			leaders++
			if cl.members != 3 {
				t.Fatalf("leader saw %d members", cl.members)
			}
		}
		if string(cl.assignment) != "a:"+cl.memberID {
			t.Fatalf("member %s got assignment %q", cl.memberID, cl.assignment)
		}
		ids[cl.memberID] = true
	}
	if leaders != 1 || len(ids) != 3 {
		t.Fatalf("leaders %d, distinct ids %d", leaders, len(ids))
	}
	if d := describe(t, b.c, "g3"); d.State != "Stable" || len(d.Members) != 3 {
		t.Fatalf("describe: %+v", d)
	}
}

func TestGroupRebalanceWhenMemberJoins(t *testing.T) {
	b := newTestBroker(t, testConfig())
	ctx := testCtx(t)
	c1 := newClient(b.c, "g", "c1")
	if err := c1.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	gen1 := c1.generation

	c2 := newClient(b.c, "g", "c2")
	done := make(chan error, 1)
	go func() { done <- c2.joinAndSync(ctx) }()

	// c1 learns about the rebalance from its heartbeat, then rejoins.
	eventually(t, 5*time.Second, "REBALANCE_IN_PROGRESS", func() bool {
		return errors.Is(c1.heartbeat(), kerr.RebalanceInProgress)
	})
	if err := c1.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	runUntilStable(t, ctx, []*client{c1, c2})
	if c1.generation <= gen1 || c1.generation != c2.generation {
		t.Fatalf("generations %d %d (before %d)", c1.generation, c2.generation, gen1)
	}
	if d := describe(t, b.c, "g"); len(d.Members) != 2 {
		t.Fatalf("members: %+v", d.Members)
	}
	// A commit from the old generation is refused.
	if err := commitAs(b.c, "g", c1.memberID, gen1, nil, "t", 0, 1); !errors.Is(err, kerr.IllegalGeneration) {
		t.Fatalf("stale commit: %v", err)
	}
}

func TestGroupSessionTimeoutRemovesMember(t *testing.T) {
	b := newTestBroker(t, testConfig())
	ctx := testCtx(t)
	alive := newClient(b.c, "g", "alive")
	dead := newClient(b.c, "g", "dead")
	dead.session = 100 * time.Millisecond
	runUntilStable(t, ctx, []*client{alive, dead})
	gen := alive.generation

	// dead stops heartbeating; alive keeps going and must be told to rejoin.
	eventually(t, 5*time.Second, "rebalance after session timeout", func() bool {
		return errors.Is(alive.heartbeat(), kerr.RebalanceInProgress)
	})
	if err := alive.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	if alive.generation <= gen || alive.members != 1 {
		t.Fatalf("generation %d (was %d), members %d", alive.generation, gen, alive.members)
	}
	if err := dead.heartbeat(); !errors.Is(err, kerr.UnknownMemberID) && !errors.Is(err, kerr.IllegalGeneration) {
		t.Fatalf("expired member heartbeat: %v", err)
	}
}

func TestGroupMemberIDRequired(t *testing.T) {
	b := newTestBroker(t, testConfig())
	ctx := testCtx(t)

	// v3: a new member joins directly.
	r := b.c.JoinGroup(WithClient(ctx, "old", ""), joinReq("g-old", "", 3, time.Second))
	if r.ErrorCode != 0 || r.MemberID == "" || r.Generation != 1 {
		t.Fatalf("v3 join: %v %+v", errOf(r.ErrorCode), r)
	}

	// v4+: MEMBER_ID_REQUIRED; the id expires after the session timeout.
	r = b.c.JoinGroup(WithClient(ctx, "new", ""), joinReq("g-new", "", 4, 50*time.Millisecond))
	if !errors.Is(errOf(r.ErrorCode), kerr.MemberIDRequired) || r.Generation != -1 {
		t.Fatalf("v4 join: %v", errOf(r.ErrorCode))
	}
	id := r.MemberID
	eventually(t, 5*time.Second, "pending member expiry", func() bool {
		ps := b.c.parts.Get(0)
		ps.mu.Lock()
		defer ps.mu.Unlock()
		return len(ps.groups["g-new"].pending) == 0
	})
	r = b.c.JoinGroup(ctx, joinReq("g-new", id, 4, time.Second))
	if !errors.Is(errOf(r.ErrorCode), kerr.UnknownMemberID) {
		t.Fatalf("expired pending id: %v", errOf(r.ErrorCode))
	}

	// Rejoining in time works.
	r = b.c.JoinGroup(ctx, joinReq("g-new", "", 4, time.Second))
	r2 := b.c.JoinGroup(ctx, joinReq("g-new", r.MemberID, 4, time.Second))
	if r2.ErrorCode != 0 || r2.MemberID != r.MemberID || r2.LeaderID != r.MemberID {
		t.Fatalf("rejoin with id: %v %+v", errOf(r2.ErrorCode), r2)
	}
}

func TestGroupStaticMemberReplacement(t *testing.T) {
	b := newTestBroker(t, testConfig())
	ctx := testCtx(t)
	inst := "instance-1"
	a := newClient(b.c, "g", "app")
	a.instance = &inst
	if err := a.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.memberID, inst+"-") {
		t.Fatalf("static member id %q", a.memberID)
	}
	oldID, gen := a.memberID, a.generation

	// The same instance restarts: new member id, no rebalance.
	a2 := newClient(b.c, "g", "app")
	a2.instance = &inst
	a2.version = 8
	if err := a2.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	if a2.memberID == oldID || a2.generation != gen {
		t.Fatalf("replacement: id %q gen %d (old %q gen %d)", a2.memberID, a2.generation, oldID, gen)
	}
	if string(a2.assignment) != "a:"+oldID {
		t.Fatalf("replacement keeps the assignment, got %q", a2.assignment)
	}
	if err := a.heartbeat(); !errors.Is(err, kerr.FencedInstanceID) {
		t.Fatalf("old member heartbeat: %v", err)
	}
	if err := commitAs(b.c, "g", oldID, gen, &inst, "t", 0, 5); !errors.Is(err, kerr.FencedInstanceID) {
		t.Fatalf("old member commit: %v", err)
	}
	if err := a2.heartbeat(); err != nil {
		t.Fatalf("new member heartbeat: %v", err)
	}
	if d := describe(t, b.c, "g"); d.State != "Stable" || len(d.Members) != 1 || d.Members[0].InstanceID == nil || *d.Members[0].InstanceID != inst {
		t.Fatalf("describe: %+v", d)
	}

	// The replacement is persisted: it survives a restart.
	b.restart()
	a2.c = b.c
	if err := a2.heartbeat(); err != nil {
		t.Fatalf("heartbeat after restart: %v", err)
	}

	// Static members leave by instance id (v3+ batch).
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Version = 3
	lr.Group = "g"
	m := kmsg.NewLeaveGroupRequestMember()
	m.InstanceID = &inst
	m.MemberID = oldID // stale member id: fenced
	unknownInst := "nope"
	m2 := kmsg.NewLeaveGroupRequestMember()
	m2.InstanceID = &unknownInst
	lr.Members = []kmsg.LeaveGroupRequestMember{m, m2}
	resp := b.c.LeaveGroup(ctx, lr)
	if resp.ErrorCode != 0 || len(resp.Members) != 2 ||
		!errors.Is(errOf(resp.Members[0].ErrorCode), kerr.FencedInstanceID) ||
		!errors.Is(errOf(resp.Members[1].ErrorCode), kerr.UnknownMemberID) {
		t.Fatalf("leave with stale id: %+v", resp)
	}
	lr.Members = lr.Members[:1]
	lr.Members[0].MemberID = ""
	resp = b.c.LeaveGroup(ctx, lr)
	if resp.ErrorCode != 0 || resp.Members[0].ErrorCode != 0 {
		t.Fatalf("leave: %+v", resp)
	}
	eventually(t, 5*time.Second, "Empty", func() bool { return describe(t, b.c, "g").State == "Empty" })
}

func TestGroupLeaveTriggersRebalance(t *testing.T) {
	b := newTestBroker(t, testConfig())
	ctx := testCtx(t)
	c1, c2 := newClient(b.c, "g", "c1"), newClient(b.c, "g", "c2")
	runUntilStable(t, ctx, []*client{c1, c2})
	if err := leave(b.c, "g", c2.memberID); err != nil {
		t.Fatal(err)
	}
	if err := leave(b.c, "g", c2.memberID); !errors.Is(err, kerr.UnknownMemberID) {
		t.Fatalf("second leave: %v", err)
	}
	if err := c1.heartbeat(); !errors.Is(err, kerr.RebalanceInProgress) {
		t.Fatalf("heartbeat after leave: %v", err)
	}
	if err := c1.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	if c1.members != 1 {
		t.Fatalf("members after leave: %d", c1.members)
	}
}

func TestGroupSimpleCommit(t *testing.T) {
	cfg := testConfig()
	cfg.TopicPartitionExists = func(topic string, partition int32) bool { return topic != "missing" }
	b := newTestBroker(t, cfg)
	ctx := testCtx(t)

	// Generation -1 and no member id on a group that does not exist: it is
	// created Empty and the commit is accepted.
	if err := commitAs(b.c, "simple", "", -1, nil, "t", 3, 100); err != nil {
		t.Fatalf("simple commit: %v", err)
	}
	if off, _ := fetchOffset(t, b.c, "simple", "t", 3); off != 100 {
		t.Fatalf("fetch: %d", off)
	}
	if d := describe(t, b.c, "simple"); d.State != "Empty" || d.ProtocolType != "" {
		t.Fatalf("describe: %+v", d)
	}
	if err := commitAs(b.c, "simple", "", -1, nil, "missing", 0, 1); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("missing topic: %v", err)
	}
	if err := commitAs(b.c, "nogroup", "m", 3, nil, "t", 0, 1); !errors.Is(err, kerr.IllegalGeneration) {
		t.Fatalf("generation on a missing group: %v", err)
	}

	// v0 commit (no generation at all) is a simple commit too.
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = 0
	r.Group = "simple"
	tp := kmsg.NewOffsetCommitRequestTopic()
	tp.Topic = "t"
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition = 3
	p.Offset = 101
	big := strings.Repeat("x", 5000)
	p2 := p
	p2.Partition = 4
	p2.Metadata = &big
	tp.Partitions = []kmsg.OffsetCommitRequestTopicPartition{p, p2}
	r.Topics = append(r.Topics, tp)
	cr := b.c.OffsetCommit(ctx, r)
	if cr.Topics[0].Partitions[0].ErrorCode != 0 || !errors.Is(errOf(cr.Topics[0].Partitions[1].ErrorCode), kerr.OffsetMetadataTooLarge) {
		t.Fatalf("v0 commit: %+v", cr)
	}

	// Once the group has members, a simple commit is refused.
	cl := newClient(b.c, "simple", "c")
	if err := cl.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := commitAs(b.c, "simple", "", -1, nil, "t", 3, 200); !errors.Is(err, kerr.UnknownMemberID) {
		t.Fatalf("simple commit on Stable group: %v", err)
	}
	if err := commitAs(b.c, "simple", cl.memberID, cl.generation+1, nil, "t", 3, 200); !errors.Is(err, kerr.IllegalGeneration) {
		t.Fatalf("wrong generation: %v", err)
	}
	if err := commitAs(b.c, "simple", "stranger", cl.generation, nil, "t", 3, 200); !errors.Is(err, kerr.UnknownMemberID) {
		t.Fatalf("unknown member: %v", err)
	}
	if err := cl.commit("t", 3, 200); err != nil {
		t.Fatalf("member commit: %v", err)
	}
	if off, _ := fetchOffset(t, b.c, "simple", "t", 3); off != 200 {
		t.Fatalf("fetch: %d", off)
	}
}

func TestGroupCommitWriteFailureKeepsNothing(t *testing.T) {
	b := newTestBroker(t, testConfig())
	if err := commitAs(b.c, "g", "", -1, nil, "t", 0, 1); err != nil {
		t.Fatal(err)
	}
	b.part.SetFail(storage.ErrStorage)
	if err := commitAs(b.c, "g", "", -1, nil, "t", 0, 2); !errors.Is(err, kerr.NotCoordinator) {
		t.Fatalf("commit on failing log: %v", err)
	}
	b.part.SetFail(kerr.NotEnoughReplicas)
	if err := commitAs(b.c, "g", "", -1, nil, "t", 0, 3); !errors.Is(err, kerr.CoordinatorNotAvailable) {
		t.Fatalf("commit without replicas: %v", err)
	}
	b.part.SetFail(nil)
	if off, _ := fetchOffset(t, b.c, "g", "t", 0); off != 1 {
		t.Fatalf("failed commits leaked into memory: %d", off)
	}
}

func TestGroupPersistenceAcrossRestart(t *testing.T) {
	b := newTestBroker(t, testConfig())
	ctx := testCtx(t)
	c1, c2 := newClient(b.c, "g", "c1"), newClient(b.c, "g", "c2")
	runUntilStable(t, ctx, []*client{c1, c2})
	for i := int64(0); i < 5; i++ {
		if err := c1.commit("t", 0, 10+i); err != nil {
			t.Fatal(err)
		}
	}
	if err := c2.commit("t", 1, 77); err != nil {
		t.Fatal(err)
	}
	if err := commitAs(b.c, "other", "", -1, nil, "u", 0, 5); err != nil {
		t.Fatal(err)
	}
	before := describe(t, b.c, "g")

	b.restart()
	c1.c, c2.c = b.c, b.c
	if off, md := fetchOffset(t, b.c, "g", "t", 0); off != 14 || md != "md-14" {
		t.Fatalf("offset after restart: %d %q", off, md)
	}
	if off, _ := fetchOffset(t, b.c, "g", "t", 1); off != 77 {
		t.Fatalf("offset after restart: %d", off)
	}
	if off, _ := fetchOffset(t, b.c, "other", "u", 0); off != 5 {
		t.Fatalf("offset after restart: %d", off)
	}
	after := describe(t, b.c, "g")
	if after.State != "Stable" || after.Protocol != before.Protocol || len(after.Members) != 2 {
		t.Fatalf("group after restart: %+v", after)
	}
	for i := range after.Members {
		bm, am := before.Members[i], after.Members[i]
		if bm.MemberID != am.MemberID || string(bm.MemberAssignment) != string(am.MemberAssignment) ||
			string(bm.ProtocolMetadata) != string(am.ProtocolMetadata) || bm.ClientID != am.ClientID {
			t.Fatalf("member %d: before %+v after %+v", i, bm, am)
		}
	}
	// Members carry on without a rebalance.
	for _, cl := range []*client{c1, c2} {
		if err := cl.heartbeat(); err != nil {
			t.Fatalf("heartbeat after restart: %v", err)
		}
	}
	if err := c1.commit("t", 0, 15); err != nil {
		t.Fatal(err)
	}
}

func TestGroupRestoredMembersExpire(t *testing.T) {
	b := newTestBroker(t, testConfig())
	ctx := testCtx(t)
	cl := newClient(b.c, "g", "c")
	cl.session = 100 * time.Millisecond
	if err := cl.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	b.restart()
	// Nobody heartbeats: the restored member expires and the group becomes
	// Empty, which is persisted.
	eventually(t, 5*time.Second, "Empty", func() bool { return describe(t, b.c, "g").State == "Empty" })
	b.restart()
	if d := describe(t, b.c, "g"); d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("after second restart: %+v", d)
	}
}

func TestGroupDeleteGroups(t *testing.T) {
	b := newTestBroker(t, testConfig())
	ctx := testCtx(t)
	cl := newClient(b.c, "g", "c")
	if err := cl.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cl.commit("t", 0, 9); err != nil {
		t.Fatal(err)
	}
	del := func(groups ...string) []error {
		r := kmsg.NewPtrDeleteGroupsRequest()
		r.Version = 2
		r.Groups = groups
		resp := b.c.DeleteGroups(ctx, r)
		var out []error
		for _, g := range resp.Groups {
			out = append(out, errOf(g.ErrorCode))
		}
		return out
	}
	if errs := del("g", "nope"); !errors.Is(errs[0], kerr.NonEmptyGroup) || !errors.Is(errs[1], kerr.GroupIDNotFound) {
		t.Fatalf("delete non-empty: %v", errs)
	}
	if err := leave(b.c, "g", cl.memberID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "Empty", func() bool { return describe(t, b.c, "g").State == "Empty" })
	if errs := del("g"); errs[0] != nil {
		t.Fatalf("delete: %v", errs)
	}
	if d := describe(t, b.c, "g"); d.State != "Dead" {
		t.Fatalf("after delete: %+v", d)
	}
	if off, _ := fetchOffset(t, b.c, "g", "t", 0); off != -1 {
		t.Fatalf("offset after delete: %d", off)
	}
	b.restart()
	if d := describe(t, b.c, "g"); d.State != "Dead" {
		t.Fatalf("deleted group back after restart: %+v", d)
	}
	if off, _ := fetchOffset(t, b.c, "g", "t", 0); off != -1 {
		t.Fatalf("offset back after restart: %d", off)
	}
	// v6 describes a missing group with GROUP_ID_NOT_FOUND.
	r := kmsg.NewPtrDescribeGroupsRequest()
	r.Version = 6
	r.Groups = []string{"g"}
	if resp := b.c.DescribeGroups(ctx, r); !errors.Is(errOf(resp.Groups[0].ErrorCode), kerr.GroupIDNotFound) {
		t.Fatalf("describe v6: %+v", resp)
	}
}

func TestGroupOffsetDelete(t *testing.T) {
	b := newTestBroker(t, testConfig())
	ctx := testCtx(t)
	cl := newClient(b.c, "g", "c")
	cl.topics = []string{"sub"}
	if err := cl.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"sub", "gone"} {
		if err := cl.commit(topic, 0, 3); err != nil {
			t.Fatal(err)
		}
	}
	od := func(topics ...string) *kmsg.OffsetDeleteResponse {
		r := kmsg.NewPtrOffsetDeleteRequest()
		r.Group = "g"
		for _, topic := range topics {
			rt := kmsg.NewOffsetDeleteRequestTopic()
			rt.Topic = topic
			p := kmsg.NewOffsetDeleteRequestTopicPartition()
			rt.Partitions = append(rt.Partitions, p)
			r.Topics = append(r.Topics, rt)
		}
		return b.c.OffsetDelete(ctx, r)
	}
	resp := od("sub", "gone")
	if resp.ErrorCode != 0 || !errors.Is(errOf(resp.Topics[0].Partitions[0].ErrorCode), kerr.GroupSubscribedToTopic) ||
		resp.Topics[1].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete: %+v", resp)
	}
	if off, _ := fetchOffset(t, b.c, "g", "gone", 0); off != -1 {
		t.Fatalf("deleted offset: %d", off)
	}
	if off, _ := fetchOffset(t, b.c, "g", "sub", 0); off != 3 {
		t.Fatalf("kept offset: %d", off)
	}
	b.restart()
	if off, _ := fetchOffset(t, b.c, "g", "gone", 0); off != -1 {
		t.Fatalf("deleted offset back after restart: %d", off)
	}
	r := kmsg.NewPtrOffsetDeleteRequest()
	r.Group = "nope"
	if resp := b.c.OffsetDelete(ctx, r); !errors.Is(errOf(resp.ErrorCode), kerr.GroupIDNotFound) {
		t.Fatalf("unknown group: %v", errOf(resp.ErrorCode))
	}
}

func TestGroupListAndDescribe(t *testing.T) {
	b := newTestBroker(t, testConfig())
	ctx := testCtx(t)
	cl := newClient(b.c, "active", "c")
	if err := cl.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := commitAs(b.c, "idle", "", -1, nil, "t", 0, 1); err != nil {
		t.Fatal(err)
	}
	list := func(version int16, states ...string) map[string]kmsg.ListGroupsResponseGroup {
		r := kmsg.NewPtrListGroupsRequest()
		r.Version = version
		r.StatesFilter = states
		resp := b.c.ListGroups(ctx, r)
		if resp.ErrorCode != 0 {
			t.Fatalf("list: %v", errOf(resp.ErrorCode))
		}
		out := map[string]kmsg.ListGroupsResponseGroup{}
		for _, g := range resp.Groups {
			out[g.Group] = g
		}
		return out
	}
	all := list(5)
	if len(all) != 2 || all["active"].GroupState != "Stable" || all["active"].ProtocolType != "consumer" ||
		all["idle"].GroupState != "Empty" || all["active"].GroupType != "classic" {
		t.Fatalf("list: %+v", all)
	}
	if stable := list(4, "stable"); len(stable) != 1 || stable["active"].Group == "" {
		t.Fatalf("list stable: %+v", stable)
	}
	r := kmsg.NewPtrListGroupsRequest()
	r.Version = 5
	r.TypesFilter = []string{"consumer"}
	if resp := b.c.ListGroups(ctx, r); len(resp.Groups) != 0 {
		t.Fatalf("type filter: %+v", resp.Groups)
	}

	dr := kmsg.NewPtrDescribeGroupsRequest()
	dr.Version = 5
	dr.Groups = []string{"active", "idle", "missing"}
	dr.IncludeAuthorizedOperations = true
	resp := b.c.DescribeGroups(ctx, dr)
	if len(resp.Groups) != 3 {
		t.Fatalf("describe: %+v", resp)
	}
	a, i, m := resp.Groups[0], resp.Groups[1], resp.Groups[2]
	if a.State != "Stable" || len(a.Members) != 1 || a.Members[0].MemberID != cl.memberID ||
		string(a.Members[0].ProtocolMetadata) != string(subscription("t")) || a.AuthorizedOperations == 0 {
		t.Fatalf("describe active: %+v", a)
	}
	if i.State != "Empty" || len(i.Members) != 0 {
		t.Fatalf("describe idle: %+v", i)
	}
	if m.State != "Dead" || m.ErrorCode != 0 {
		t.Fatalf("describe missing: %+v", m)
	}
}

func TestGroupJoinValidation(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSize = 1
	b := newTestBroker(t, cfg)
	ctx := testCtx(t)
	check := func(name string, req *kmsg.JoinGroupRequest, want error) {
		t.Helper()
		if got := errOf(b.c.JoinGroup(ctx, req).ErrorCode); !errors.Is(got, want) {
			t.Fatalf("%s: got %v, want %v", name, got, want)
		}
	}
	check("empty group id", joinReq("", "", 9, time.Second), kerr.InvalidGroupID)
	check("session too short", joinReq("g", "", 9, time.Millisecond), kerr.InvalidSessionTimeout)
	check("session too long", joinReq("g", "", 9, time.Hour), kerr.InvalidSessionTimeout)
	noProto := joinReq("g", "", 9, time.Second)
	noProto.Protocols = nil
	check("no protocols", noProto, kerr.InconsistentGroupProtocol)
	check("unknown member of missing group", joinReq("g", "ghost", 9, time.Second), kerr.UnknownMemberID)

	cl := newClient(b.c, "g", "c")
	if err := cl.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	other := joinReq("g", "", 3, time.Second)
	other.ProtocolType = "connect"
	check("other protocol type", other, kerr.InconsistentGroupProtocol)
	otherProto := joinReq("g", "", 3, time.Second)
	otherProto.Protocols[0].Name = "sticky"
	check("no common protocol", otherProto, kerr.InconsistentGroupProtocol)
	check("group full", joinReq("g", "", 3, time.Second), kerr.GroupMaxSizeReached)

	// Heartbeat and sync errors.
	hb := func(member string, gen int32) error {
		r := kmsg.NewPtrHeartbeatRequest()
		r.Group, r.MemberID, r.Generation = "g", member, gen
		return errOf(b.c.Heartbeat(ctx, r).ErrorCode)
	}
	if err := hb("ghost", cl.generation); !errors.Is(err, kerr.UnknownMemberID) {
		t.Fatalf("heartbeat unknown: %v", err)
	}
	if err := hb(cl.memberID, cl.generation+5); !errors.Is(err, kerr.IllegalGeneration) {
		t.Fatalf("heartbeat generation: %v", err)
	}
	if err := hb(cl.memberID, cl.generation); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	sr := kmsg.NewPtrSyncGroupRequest()
	sr.Group, sr.MemberID, sr.Generation = "g", cl.memberID, cl.generation+1
	if err := errOf(b.c.SyncGroup(ctx, sr).ErrorCode); !errors.Is(err, kerr.IllegalGeneration) {
		t.Fatalf("sync generation: %v", err)
	}
}

func TestGroupJoinReturnsOnContextCancel(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = time.Minute
	b := newTestBroker(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { done <- b.c.JoinGroup(ctx, joinReq("g", "", 3, 50*time.Second)) }()
	eventually(t, 5*time.Second, "parked join", func() bool {
		return describe(t, b.c, "g").State == "PreparingRebalance"
	})
	// While parked, the coordinator still serves other requests.
	if err := commitAs(b.c, "other", "", -1, nil, "t", 0, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case r := <-done:
		if r.ErrorCode == 0 {
			t.Fatalf("cancelled join succeeded: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("JoinGroup did not return after ctx cancel")
	}
}

func TestGroupUnloadAnswersParkedRequests(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = time.Minute
	b := newTestBroker(t, cfg)
	done := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { done <- b.c.JoinGroup(context.Background(), joinReq("g", "", 3, 50*time.Second)) }()
	eventually(t, 5*time.Second, "parked join", func() bool {
		return describe(t, b.c, "g").State == "PreparingRebalance"
	})
	b.c.Unload(0)
	select {
	case r := <-done:
		if !errors.Is(errOf(r.ErrorCode), kerr.NotCoordinator) {
			t.Fatalf("parked join after unload: %v", errOf(r.ErrorCode))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("parked JoinGroup not answered at unload")
	}
	if loaded, loading := b.c.Owns("g"); loaded || loading {
		t.Fatal("still owns after unload")
	}
	if err := commitAs(b.c, "g", "", -1, nil, "t", 0, 1); !errors.Is(err, kerr.NotCoordinator) {
		t.Fatalf("commit after unload: %v", err)
	}
	hr := kmsg.NewPtrHeartbeatRequest()
	hr.Group = "g"
	if err := errOf(b.c.Heartbeat(context.Background(), hr).ErrorCode); !errors.Is(err, kerr.NotCoordinator) {
		t.Fatalf("heartbeat after unload: %v", err)
	}
	// Loading again brings the state back.
	b.c.Load(0, b.part)
	waitLoaded(t, b.c, "g")
}

func TestGroupMemberThatNeverSyncsIsRemoved(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 200 * time.Millisecond
	b := newTestBroker(t, cfg)
	ctx := testCtx(t)
	resps := make(chan *kmsg.JoinGroupResponse, 2)
	for _, id := range []string{"c1", "c2"} {
		go func() { resps <- b.c.JoinGroup(WithClient(ctx, id, ""), joinReq("g", "", 3, 300*time.Millisecond)) }()
	}
	var c1 *kmsg.JoinGroupResponse
	var c2ID string
	for range 2 {
		r := <-resps
		if r.ErrorCode != 0 {
			t.Fatalf("join: %v", errOf(r.ErrorCode))
		}
		if strings.HasPrefix(r.MemberID, "c1-") {
			c1 = r
		} else {
			c2ID = r.MemberID
		}
	}
	if c1.Generation != 1 {
		t.Fatalf("both joins should complete generation 1 (initial delay), got %d", c1.Generation)
	}
	// Only c1 syncs; c2 is removed after the rebalance timeout.
	cl := newClient(b.c, "g", "c1")
	cl.session = 300 * time.Millisecond
	cl.memberID = c1.MemberID
	cl.generation = c1.Generation
	sr := kmsg.NewPtrSyncGroupRequest()
	sr.Group, sr.MemberID, sr.Generation = "g", c1.MemberID, c1.Generation
	if c1.LeaderID == c1.MemberID {
		for _, m := range c1.Members {
			a := kmsg.NewSyncGroupRequestGroupAssignment()
			a.MemberID = m.MemberID
			sr.GroupAssignment = append(sr.GroupAssignment, a)
		}
	}
	if err := errOf(b.c.SyncGroup(ctx, sr).ErrorCode); err != nil && !errors.Is(err, kerr.RebalanceInProgress) {
		t.Fatalf("sync: %v", err)
	}
	// c1 keeps running until the group settles without c2 (c1 may have
	// been Stable with c2 still pending before the removal).
	deadline := time.Now().Add(10 * time.Second)
	for {
		runUntilStable(t, ctx, []*client{cl})
		d := describe(t, b.c, "g")
		// (c1 itself may have been expired too, if its session ended while it
		// was not heartbeating: then it came back with a new id.)
		if len(d.Members) == 1 && d.Members[0].MemberID == cl.memberID && d.State == "Stable" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %s, members: %+v", d.State, d.Members)
		}
	}
	hr := kmsg.NewPtrHeartbeatRequest()
	hr.Group, hr.MemberID, hr.Generation = "g", c2ID, c1.Generation
	if err := errOf(b.c.Heartbeat(ctx, hr).ErrorCode); !errors.Is(err, kerr.UnknownMemberID) {
		t.Fatalf("removed member heartbeat: %v", err)
	}
}

// TestGroupResponsesEncodeAtEveryVersion drives each API at every version
// we serve and encodes the response at that version, as the API layer will.
func TestGroupResponsesEncodeAtEveryVersion(t *testing.T) {
	b := newTestBroker(t, testConfig())
	ctx := testCtx(t)
	enc := func(r kmsg.Response) {
		t.Helper()
		if r.GetVersion() < 0 {
			t.Fatalf("%T: version not set", r)
		}
		_ = r.AppendTo(nil)
	}
	for v := int16(0); v <= 9; v++ {
		group := "enc-" + string(rune('a'+v))
		jr := b.c.JoinGroup(ctx, joinReq(group, "", v, time.Second))
		enc(jr)
		if jr.ErrorCode == kerr.MemberIDRequired.Code {
			jr = b.c.JoinGroup(ctx, joinReq(group, jr.MemberID, v, time.Second))
			enc(jr)
		}
		if jr.ErrorCode != 0 || jr.Version != v {
			t.Fatalf("join v%d: %v", v, errOf(jr.ErrorCode))
		}
		for sv := int16(0); sv <= 5; sv++ {
			sr := kmsg.NewPtrSyncGroupRequest()
			sr.Version, sr.Group, sr.MemberID, sr.Generation = sv, group, jr.MemberID, jr.Generation
			enc(b.c.SyncGroup(ctx, sr))
		}
		for hv := int16(0); hv <= 4; hv++ {
			hr := kmsg.NewPtrHeartbeatRequest()
			hr.Version, hr.Group, hr.MemberID, hr.Generation = hv, group, jr.MemberID, jr.Generation
			enc(b.c.Heartbeat(ctx, hr))
		}
		cr := kmsg.NewPtrOffsetCommitRequest()
		cr.Version, cr.Group, cr.MemberID, cr.Generation = v, group, jr.MemberID, jr.Generation
		ct := kmsg.NewOffsetCommitRequestTopic()
		ct.Topic = "t"
		ct.Partitions = []kmsg.OffsetCommitRequestTopicPartition{kmsg.NewOffsetCommitRequestTopicPartition()}
		cr.Topics = []kmsg.OffsetCommitRequestTopic{ct}
		enc(b.c.OffsetCommit(ctx, cr))
		fr := kmsg.NewPtrOffsetFetchRequest()
		fr.Version, fr.Group = v, group
		fr.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group}}
		enc(b.c.OffsetFetch(ctx, fr))
		if v <= 5 {
			lr := kmsg.NewPtrLeaveGroupRequest()
			lr.Version, lr.Group, lr.MemberID = v, group, jr.MemberID
			lr.Members = []kmsg.LeaveGroupRequestMember{{MemberID: jr.MemberID}}
			enc(b.c.LeaveGroup(ctx, lr))
			enc(b.c.ListGroups(ctx, &kmsg.ListGroupsRequest{Version: v}))
		}
		if v <= 6 {
			enc(b.c.DescribeGroups(ctx, &kmsg.DescribeGroupsRequest{Version: v, Groups: []string{group, "none"}}))
		}
		if v <= 3 {
			enc(b.c.DeleteGroups(ctx, &kmsg.DeleteGroupsRequest{Version: v, Groups: []string{group}}))
		}
	}
	enc(b.c.OffsetDelete(ctx, &kmsg.OffsetDeleteRequest{Group: "enc-a"}))
}
