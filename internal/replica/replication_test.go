package replica

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/internal/config"
	"samsa/internal/metadata"
	"samsa/internal/record"
	"samsa/internal/storage"
)

// testClock is the injected clock of follower fetch times and ISR lag.
type testClock struct{ ms atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *testClock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// alterCall is one AlterPartition the test controller received; the test
// answers it.
type alterCall struct {
	req  AlterISR
	resp chan alterAnswer
}

type alterAnswer struct {
	res AlterISRResult
	err error
}

// testController plays the active controller's AlterPartition for one
// broker: every request is handed to the test, which commits it (a new
// image with the ISR and partition epoch + 1, applied to the broker's
// manager as the metadata publisher would) and/or answers it.
type testController struct {
	calls chan alterCall
}

func (c *testController) AlterPartition(ctx context.Context, req AlterISR) (AlterISRResult, error) {
	call := alterCall{req: req, resp: make(chan alterAnswer, 1)}
	select {
	case c.calls <- call:
	case <-ctx.Done():
		return AlterISRResult{}, ctx.Err()
	}
	select {
	case a := <-call.resp:
		return a.res, a.err
	case <-ctx.Done():
		return AlterISRResult{}, ctx.Err()
	}
}

// cluster is broker 1's replica manager in a three-broker cluster whose
// metadata the test writes: topic "t" with partition 0 (and 1 when asked).
type cluster struct {
	t     *testing.T
	m     *Manager
	clock *testClock
	ctl   *testController
	image *metadata.Image
	cfgs  map[string]string
	// follow and unfollow collect the FollowerHook's calls.
	follow, unfollow atomic.Int32
	// answered receives after each AlterPartition answer was applied.
	answered chan struct{}
}

func newCluster(t *testing.T, topicConfigs map[string]string, props ...string) *cluster {
	t.Helper()
	return newClusterAs(t, 1, topicConfigs, props...)
}

// newClusterAs is newCluster for broker self.
func newClusterAs(t *testing.T, self int32, topicConfigs map[string]string, props ...string) *cluster {
	t.Helper()
	cfg, err := config.Load("", props, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := storage.OpenManager(storage.ManagerOptions{Dirs: []string{t.TempDir()}, DefaultConfig: StorageConfig(cfg, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = logs.Close() })
	c := &cluster{t: t, clock: &testClock{}, ctl: &testController{calls: make(chan alterCall, 16)}, cfgs: topicConfigs}
	c.clock.ms.Store(1_700_000_000_000)
	c.m = New(self, logs, cfg, nil)
	c.m.SetReplication(ReplicationOptions{
		ISRUpdater:  c.ctl,
		BrokerEpoch: func() int64 { return 101 },
		Now:         c.clock.Now,
		FollowerHook: func(follow, unfollow []*Partition) {
			c.follow.Add(int32(len(follow)))
			c.unfollow.Add(int32(len(unfollow)))
		},
	})
	c.answered = make(chan struct{}, 64)
	c.m.answered = func() { c.answered <- struct{}{} }
	t.Cleanup(c.m.Close)
	c.image = metadata.Empty("test")
	c.image.Brokers = map[int32]metadata.Broker{1: {ID: 1}, 2: {ID: 2}, 3: {ID: 3}}
	return c
}

// set publishes an image where topic "t" has the given partitions.
func (c *cluster) set(parts ...metadata.Partition) {
	c.t.Helper()
	for i := range parts {
		parts[i].ID = int32(i)
	}
	topic := &metadata.Topic{Name: "t", ID: metadata.UUID{7}, Configs: c.cfgs, Partitions: parts}
	next := *c.image
	next.Topics = map[string]*metadata.Topic{"t": topic}
	next.TopicsByID = map[metadata.UUID]*metadata.Topic{topic.ID: topic}
	prev := c.image
	c.image = &next
	c.m.Apply(prev, &next)
}

// part returns partition i of "t" on broker 1 (leader or follower).
func (c *cluster) part(i int32) *Partition {
	c.t.Helper()
	p, err := c.m.Replica("t", i)
	if err != nil {
		c.t.Fatal(err)
	}
	return p
}

// mp is a partition entry led by leader.
func mp(leader, leaderEpoch, partitionEpoch int32, isr ...int32) metadata.Partition {
	return metadata.Partition{Replicas: []int32{1, 2, 3}, ISR: isr, Leader: leader, LeaderEpoch: leaderEpoch, PartitionEpoch: partitionEpoch}
}

// nextCall waits for the next AlterPartition.
func (c *cluster) nextCall() alterCall {
	c.t.Helper()
	select {
	case call := <-c.ctl.calls:
		return call
	case <-time.After(10 * time.Second):
		c.t.Fatal("no AlterPartition sent")
		return alterCall{}
	}
}

// noCall checks that no AlterPartition is pending.
func (c *cluster) noCall() {
	c.t.Helper()
	select {
	case call := <-c.ctl.calls:
		c.t.Fatalf("unexpected AlterPartition %+v", call.req)
	default:
	}
}

// commit commits an AlterPartition as the controller would: the new
// ISR with partition epoch + 1, answered and then published (or
// published first when imageFirst).
func (c *cluster) commit(call alterCall, imageFirst bool) {
	c.t.Helper()
	var isr []int32
	for _, m := range call.req.NewISR {
		isr = append(isr, m.BrokerID)
	}
	old := c.image.Topics["t"].Partitions
	parts := slices.Clone(old)
	cur := parts[call.req.Partition]
	cur.ISR = isr
	cur.PartitionEpoch++
	parts[call.req.Partition] = cur
	res := AlterISRResult{LeaderID: c.m.nodeID, LeaderEpoch: cur.LeaderEpoch, PartitionEpoch: cur.PartitionEpoch, ISR: isr}
	if imageFirst {
		c.set(parts...)
		c.answer(call, res, nil)
		return
	}
	p := c.part(call.req.Partition)
	c.answer(call, res, nil)
	if p.PartitionEpoch() != cur.PartitionEpoch {
		c.t.Fatalf("answer not applied: partition epoch %d", p.PartitionEpoch())
	}
	c.set(parts...)
}

// answer answers call with res (or err) and waits until the manager
// applied it.
func (c *cluster) answer(call alterCall, res AlterISRResult, err error) {
	c.t.Helper()
	call.resp <- alterAnswer{res: res, err: err}
	if err != nil {
		return // not an answer: it is sent again
	}
	select {
	case <-c.answered:
	case <-time.After(10 * time.Second):
		c.t.Fatal("answer not applied")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// produce appends n one-record batches with acks and returns the end
// offset of the last.
func produce(t *testing.T, p *Partition, n int, acks int16) int64 {
	t.Helper()
	var end int64
	for range n {
		b, err := record.Build(record.BuildOptions{}, []record.Record{{Timestamp: time.Now().UnixMilli(), Value: []byte("v")}})
		if err != nil {
			t.Fatal(err)
		}
		info, err := p.Append(b, acks)
		if err != nil {
			t.Fatal(err)
		}
		end = info.LastOffset + 1
	}
	return end
}

// followerFetch is a fetch by broker id at offset in the current epoch.
func followerFetch(t *testing.T, p *Partition, id int32, offset int64) FetchResult {
	t.Helper()
	res, err := p.Fetch(context.Background(), FetchParams{
		ReplicaID: id, ReplicaEpoch: 200 + int64(id), FetchOffset: offset, CurrentLeaderEpoch: p.LeaderEpoch(),
		LastFetchedEpoch: -1, LogStartOffset: 0, MaxBytes: 1 << 20, MinOneMessage: true,
	})
	if err != nil {
		t.Fatalf("fetch by %d at %d: %v", id, offset, err)
	}
	release(res)
	return res
}

func release(res FetchResult) {
	if len(res.Records) > 0 {
		storage.ReleaseBuffer(res.Records)
	}
}

// TestReplicationHighWatermarkAdvance: with three replicas in the ISR the
// high watermark is the smallest log end offset the followers fetched
// at; it waits for a follower that has not fetched yet; consumers read
// only below it, followers up to the log end offset.
func TestReplicationHighWatermarkAdvance(t *testing.T) {
	c := newCluster(t, nil)
	c.set(mp(1, 1, 1, 1, 2, 3))
	p := c.part(0)
	if !p.IsLeader() {
		t.Fatal("broker 1 does not lead")
	}
	leo := produce(t, p, 10, 1)
	if hw := p.HighWatermark(); hw != 0 {
		t.Fatalf("high watermark %d before any follower fetched", hw)
	}
	for _, step := range []struct {
		id     int32
		offset int64
		hw     int64
	}{
		{2, 5, 0},   // 3 has not fetched: its offset is unknown
		{3, 3, 3},   // min(5, 3)
		{2, 10, 3},  // 3 holds it back
		{3, 7, 7},   // min(10, 7)
		{3, 10, 10}, // everyone has everything
	} {
		res := followerFetch(t, p, step.id, step.offset)
		if got := p.HighWatermark(); got != step.hw {
			t.Fatalf("after %d fetched at %d: high watermark %d, want %d", step.id, step.offset, got, step.hw)
		}
		if end := batchesEnd(res.Records); step.offset < leo && end != leo {
			t.Fatalf("follower read up to %d, want the log end offset %d", end, leo)
		}
	}
	c.noCall() // everyone was in the ISR

	// Consumers stop at the high watermark.
	produce(t, p, 2, 1)
	res, err := p.Fetch(context.Background(), FetchParams{ReplicaID: -1, ReplicaEpoch: -1, FetchOffset: 0, CurrentLeaderEpoch: -1, LastFetchedEpoch: -1, LogStartOffset: -1, MaxBytes: 1 << 20, MinOneMessage: true})
	if err != nil {
		t.Fatal(err)
	}
	defer release(res)
	if end := batchesEnd(res.Records); end != 10 || res.HighWatermark != 10 || res.LogEndOffset != 12 {
		t.Fatalf("consumer read to %d, result %+v", end, res)
	}
	// A follower's fetch offset past the log end is out of range.
	if _, err := p.Fetch(context.Background(), FetchParams{ReplicaID: 2, ReplicaEpoch: -1, FetchOffset: 99, CurrentLeaderEpoch: -1, LastFetchedEpoch: -1}); !errors.Is(err, storage.ErrOffsetOutOfRange) {
		t.Fatalf("fetch past the end: %v", err)
	}
}

// TestReplicationAcksAll: an acks=all produce waits until the followers'
// fetches move the high watermark past its records; it times out with
// ErrRequestTimedOut; an ISR smaller than min.insync.replicas refuses
// acks=all before appending (acks=1 still works).
func TestReplicationAcksAll(t *testing.T) {
	c := newCluster(t, map[string]string{"min.insync.replicas": "2"})
	c.set(mp(1, 1, 1, 1, 2, 3))
	p := c.part(0)
	end := produce(t, p, 3, -1)

	done := make(chan error, 1)
	go func() { done <- p.WaitReplicated(context.Background(), end) }()
	followerFetch(t, p, 2, end)
	select {
	case err := <-done:
		t.Fatalf("answered before broker 3 had the records: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	followerFetch(t, p, 3, end-1)
	followerFetch(t, p, 3, end)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("acks=all produce not woken by the follower fetch")
	}

	// Timeout.
	end = produce(t, p, 1, -1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := p.WaitReplicated(ctx, end); !errors.Is(err, ErrRequestTimedOut) {
		t.Fatalf("wait past the deadline: %v", err)
	}
	if n := p.nProduceWaiters.Load(); n != 0 {
		t.Fatalf("%d waiters left after the timeout", n)
	}

	// ISR below min.insync.replicas: refused before the append.
	c.set(mp(1, 1, 2, 1))
	leo := p.log.LogEndOffset()
	b, _ := record.Build(record.BuildOptions{}, []record.Record{{Timestamp: time.Now().UnixMilli(), Value: []byte("v")}})
	if _, err := p.Append(b, -1); !errors.Is(err, ErrNotEnoughReplicas) {
		t.Fatalf("acks=all with ISR 1 < 2: %v", err)
	}
	if p.log.LogEndOffset() != leo {
		t.Fatal("refused produce was appended")
	}
	if _, err := p.Append(b, 1); err != nil {
		t.Fatalf("acks=1: %v", err)
	}
}

// TestReplicationNotEnoughReplicasAfterAppend: a produce waiting while
// the ISR shrinks below min.insync.replicas answers
// NOT_ENOUGH_REPLICAS_AFTER_APPEND once the high watermark passes it.
func TestReplicationNotEnoughReplicasAfterAppend(t *testing.T) {
	c := newCluster(t, map[string]string{"min.insync.replicas": "2"})
	c.set(mp(1, 1, 1, 1, 2))
	p := c.part(0)
	end := produce(t, p, 2, -1)
	done := make(chan error, 1)
	go func() { done <- p.WaitReplicated(context.Background(), end) }()

	c.clock.advance(31 * time.Second) // broker 2 never fetched
	c.m.MaybeShrinkISRs()
	call := c.nextCall()
	if got := memberIDs(call.req.NewISR); !slices.Equal(got, []int32{1}) || call.req.PartitionEpoch != 1 || call.req.LeaderEpoch != 1 {
		t.Fatalf("shrink proposal %+v", call.req)
	}
	if call.req.NewISR[0].BrokerEpoch != 101 || call.req.BrokerEpoch != 101 || call.req.LeaderID != 1 || call.req.TopicID != [16]byte{7} || call.req.Topic != "t" {
		t.Fatalf("request %+v", call.req)
	}
	c.commit(call, false)
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotEnoughReplicasAfterAppend) {
			t.Fatalf("got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting produce not answered after the shrink")
	}
	if hw := p.HighWatermark(); hw != end {
		t.Fatalf("high watermark %d, want %d", hw, end)
	}
}

func memberIDs(ms []ISRMember) []int32 {
	var ids []int32
	for _, m := range ms {
		ids = append(ids, m.BrokerID)
	}
	return ids
}

// TestReplicationISRShrinkMaximalISR: a follower behind for longer than
// replica.lag.time.max.ms leaves the ISR, not before; while the shrink
// is in flight the high watermark still waits for it (maximal ISR) and no
// second change is proposed; once committed the high watermark moves on.
func TestReplicationISRShrinkMaximalISR(t *testing.T) {
	c := newCluster(t, nil)
	c.set(mp(1, 1, 1, 1, 2, 3))
	p := c.part(0)
	leo := produce(t, p, 10, 1)
	followerFetch(t, p, 3, 4)
	followerFetch(t, p, 2, leo)
	if hw := p.HighWatermark(); hw != 4 {
		t.Fatalf("high watermark %d", hw)
	}

	c.clock.advance(20 * time.Second)
	followerFetch(t, p, 2, leo) // 2 keeps up, 3 is stuck at 4
	c.m.MaybeShrinkISRs()
	c.noCall()

	c.clock.advance(11 * time.Second) // 31 s since 3 was last caught up
	c.m.MaybeShrinkISRs()
	call := c.nextCall()
	if got := memberIDs(call.req.NewISR); !slices.Equal(got, []int32{1, 2}) {
		t.Fatalf("shrink proposal %v", got)
	}
	if got := p.MaximalISR(); !slices.Equal(got, []int32{1, 2, 3}) {
		t.Fatalf("maximal ISR while shrinking: %v", got)
	}
	followerFetch(t, p, 2, leo)
	c.m.MaybeShrinkISRs()
	if hw := p.HighWatermark(); hw != 4 {
		t.Fatalf("high watermark %d moved past broker 3 before the shrink was committed", hw)
	}
	c.noCall() // one change in flight at a time

	c.commit(call, false)
	if got := p.ISR(); !slices.Equal(got, []int32{1, 2}) {
		t.Fatalf("ISR %v", got)
	}
	if hw := p.HighWatermark(); hw != leo {
		t.Fatalf("high watermark %d after the shrink, want %d", hw, leo)
	}
	if p.PartitionEpoch() != 2 {
		t.Fatalf("partition epoch %d", p.PartitionEpoch())
	}
	// An image still at partition epoch 1 (another change of the topic
	// published before the ISR change) does not undo it.
	c.set(mp(1, 1, 1, 1, 2, 3))
	if got := p.ISR(); !slices.Equal(got, []int32{1, 2}) || p.PartitionEpoch() != 2 {
		t.Fatalf("stale image applied: ISR %v, partition epoch %d", got, p.PartitionEpoch())
	}
}

// TestReplicationISRExpand: a follower outside the ISR joins once it has
// every record below the high watermark and fetched in this leader
// epoch; the proposal's maximal ISR holds the high watermark for it;
// the image published first makes the controller's answer moot.
func TestReplicationISRExpand(t *testing.T) {
	c := newCluster(t, nil)
	c.set(mp(1, 1, 1, 1, 2))
	p := c.part(0)
	leo := produce(t, p, 6, 1)
	followerFetch(t, p, 2, leo)
	if hw := p.HighWatermark(); hw != leo {
		t.Fatalf("high watermark %d, want %d", hw, leo)
	}
	followerFetch(t, p, 3, 2) // behind the high watermark: no expansion
	c.noCall()
	followerFetch(t, p, 3, leo)
	call := c.nextCall()
	if got := memberIDs(call.req.NewISR); !slices.Equal(got, []int32{1, 2, 3}) {
		t.Fatalf("expand proposal %v", got)
	}
	if call.req.NewISR[2].BrokerEpoch != 203 {
		t.Fatalf("follower's broker epoch %d, want the one from its fetch", call.req.NewISR[2].BrokerEpoch)
	}
	// While in flight, 3 is in the maximal ISR: new records wait for it.
	leo2 := produce(t, p, 3, 1)
	followerFetch(t, p, 2, leo2)
	if hw := p.HighWatermark(); hw != leo {
		t.Fatalf("high watermark %d passed the joining follower at %d", hw, leo)
	}
	c.commit(call, true) // image first: the answer is ignored, the image agrees
	if got := p.ISR(); !slices.Equal(got, []int32{1, 2, 3}) {
		t.Fatalf("ISR %v", got)
	}
	followerFetch(t, p, 3, leo2)
	if hw := p.HighWatermark(); hw != leo2 {
		t.Fatalf("high watermark %d, want %d", hw, leo2)
	}
	c.noCall()
}

// TestReplicationAlterPartitionErrors: a stale partition epoch
// (INVALID_UPDATE_VERSION) leaves the change pending until the image
// brings the partition's state; OPERATION_NOT_ATTEMPTED drops it (the
// next check proposes again); an unanswered request and a retriable
// error are sent again.
func TestReplicationAlterPartitionErrors(t *testing.T) {
	saved := alterISRBackoffMin
	alterISRBackoffMin = time.Millisecond
	t.Cleanup(func() { alterISRBackoffMin = saved })
	c := newCluster(t, nil)
	c.set(mp(1, 1, 1, 1, 2, 3))
	p := c.part(0)
	leo := produce(t, p, 2, 1)
	followerFetch(t, p, 2, leo)
	c.clock.advance(31 * time.Second)
	followerFetch(t, p, 2, leo)

	c.m.MaybeShrinkISRs()
	call := c.nextCall()
	c.answer(call, AlterISRResult{ErrorCode: kerr.InvalidUpdateVersion.Code}, nil)
	c.m.MaybeShrinkISRs()
	c.noCall() // still pending: waits for the image
	if got := p.MaximalISR(); !slices.Equal(got, []int32{1, 2, 3}) {
		t.Fatalf("maximal ISR %v", got)
	}
	c.set(mp(1, 1, 2, 1, 2, 3)) // the image moves the partition epoch on
	c.m.MaybeShrinkISRs()
	call = c.nextCall()
	if call.req.PartitionEpoch != 2 {
		t.Fatalf("new proposal based on partition epoch %d", call.req.PartitionEpoch)
	}
	c.answer(call, AlterISRResult{ErrorCode: kerr.OperationNotAttempted.Code}, nil)
	if !p.isPendingNil() {
		t.Fatal("OPERATION_NOT_ATTEMPTED left the change pending")
	}
	c.noCall() // not sent again by itself
	c.m.MaybeShrinkISRs()
	call = c.nextCall()
	c.answer(call, AlterISRResult{}, errors.New("no controller")) // sent again
	call = c.nextCall()
	c.answer(call, AlterISRResult{ErrorCode: kerr.RequestTimedOut.Code}, nil) // sent again
	call = c.nextCall()
	c.commit(call, false)
	if got := p.ISR(); !slices.Equal(got, []int32{1, 2}) {
		t.Fatalf("ISR %v", got)
	}
}

func (p *Partition) isPendingNil() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.pending == nil
}

// TestReplicationLeaderEpochChecks: a request naming an older leader
// epoch is fenced, a newer one unknown, on Fetch and
// OffsetForLeaderEpoch; a follower not among the replicas gets
// UNKNOWN_LEADER_EPOCH with our epoch and NOT_LEADER_OR_FOLLOWER without;
// a fetch from an older incarnation of a follower's broker is refused.
func TestReplicationLeaderEpochChecks(t *testing.T) {
	c := newCluster(t, nil)
	c.set(mp(1, 5, 1, 1, 2, 3))
	p := c.part(0)
	produce(t, p, 3, 1)
	for _, tc := range []struct {
		current int32
		want    error
	}{{4, ErrFencedLeaderEpoch}, {6, ErrUnknownLeaderEpoch}, {5, nil}, {-1, nil}} {
		res, err := p.Fetch(context.Background(), FetchParams{ReplicaID: -1, ReplicaEpoch: -1, CurrentLeaderEpoch: tc.current, LastFetchedEpoch: -1, MaxBytes: 1 << 20})
		release(res)
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Fatalf("fetch with current epoch %d: %v, want %v", tc.current, err, tc.want)
		}
		_, _, err = p.OffsetForLeaderEpoch(tc.current, 5)
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Fatalf("OffsetForLeaderEpoch with current epoch %d: %v, want %v", tc.current, err, tc.want)
		}
	}
	if _, err := p.Fetch(context.Background(), FetchParams{ReplicaID: 9, ReplicaEpoch: -1, CurrentLeaderEpoch: 5, LastFetchedEpoch: -1}); !errors.Is(err, ErrUnknownLeaderEpoch) {
		t.Fatalf("unknown replica with our epoch: %v", err)
	}
	if _, err := p.Fetch(context.Background(), FetchParams{ReplicaID: 9, ReplicaEpoch: -1, CurrentLeaderEpoch: -1, LastFetchedEpoch: -1}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("unknown replica without epoch: %v", err)
	}
	followerFetch(t, p, 2, 1) // broker epoch 202 recorded
	if _, err := p.Fetch(context.Background(), FetchParams{ReplicaID: 2, ReplicaEpoch: 150, FetchOffset: 3, CurrentLeaderEpoch: 5, LastFetchedEpoch: -1}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("stale broker epoch: %v", err)
	}
	if hw := p.HighWatermark(); hw != 0 {
		t.Fatalf("stale fetch moved the high watermark to %d", hw)
	}
}

// TestReplicationDivergingEpoch: a follower whose last fetched epoch the
// leader's log does not end where the follower thinks gets the diverging
// epoch and end offset (KIP-320), no records and no state update; one
// that agrees gets records. OffsetForLeaderEpoch answers from the same
// cache.
func TestReplicationDivergingEpoch(t *testing.T) {
	c := newCluster(t, nil)
	c.set(mp(1, 1, 1, 1, 2, 3))
	p := c.part(0)
	produce(t, p, 5, 1) // epoch 1: [0, 5)
	c.set(mp(1, 3, 2, 1, 2, 3))
	produce(t, p, 5, 1) // epoch 3: [5, 10)

	for _, tc := range []struct {
		lastEpoch int32
		offset    int64
		want      EpochEndOffset
		records   bool
	}{
		{2, 7, EpochEndOffset{1, 5}, false},  // epoch 2 was never ours: it ended where 1 did
		{1, 6, EpochEndOffset{1, 5}, false},  // epoch 1 ended at 5, not after 6
		{1, 5, EpochEndOffset{-1, -1}, true}, // agrees
		{3, 8, EpochEndOffset{-1, -1}, true}, // the latest epoch
		// Newer than ours (the follower's current epoch check normally
		// catches it): undefined, so nothing is read, as Kafka.
		{4, 8, EpochEndOffset{-1, -1}, false},
	} {
		res, err := p.Fetch(context.Background(), FetchParams{ReplicaID: 2, ReplicaEpoch: -1, FetchOffset: tc.offset, CurrentLeaderEpoch: 3, LastFetchedEpoch: tc.lastEpoch, MaxBytes: 1 << 20, MinOneMessage: true})
		if err != nil {
			t.Fatal(err)
		}
		release(res)
		if res.DivergingEpoch != tc.want || (len(res.Records) > 0) != tc.records {
			t.Fatalf("last fetched epoch %d at %d: diverging %+v with %d bytes, want %+v (records %v)", tc.lastEpoch, tc.offset, res.DivergingEpoch, len(res.Records), tc.want, tc.records)
		}
	}
	// The diverging fetches did not record broker 2's position: only the
	// agreeing ones (at 5 and 8) did.
	p.mu.Lock()
	got := p.mu.followers[2].logEndOffset
	p.mu.Unlock()
	if got != 8 {
		t.Fatalf("broker 2's recorded offset %d, want 8", got)
	}

	for _, tc := range []struct {
		epoch     int32
		wantEpoch int32
		wantEnd   int64
	}{{1, 1, 5}, {2, 1, 5}, {3, 3, 10}, {4, -1, -1}, {0, 0, 0}} {
		e, end, err := p.OffsetForLeaderEpoch(-1, tc.epoch)
		if err != nil || e != tc.wantEpoch || end != tc.wantEnd {
			t.Fatalf("OffsetForLeaderEpoch(%d) = %d, %d, %v; want %d, %d", tc.epoch, e, end, err, tc.wantEpoch, tc.wantEnd)
		}
	}
}

// TestReplicationRoleChanges: becoming follower refuses produces, answers
// consumers NOT_LEADER_OR_FOLLOWER, wakes waiting produces (NOT_LEADER)
// and long-poll fetches, and tells the fetcher hook; becoming leader again
// starts a new epoch at the log end offset, keeps the high watermark and
// resets the followers (the ISR members count as caught up now).
func TestReplicationRoleChanges(t *testing.T) {
	c := newCluster(t, map[string]string{"min.insync.replicas": "2"})
	c.set(mp(1, 1, 1, 1, 2, 3))
	p := c.part(0)
	leo := produce(t, p, 4, -1)
	followerFetch(t, p, 2, 2)
	followerFetch(t, p, 3, 3)
	if hw := p.HighWatermark(); hw != 2 {
		t.Fatalf("high watermark %d", hw)
	}
	waiting := make(chan error, 1)
	go func() { waiting <- p.WaitReplicated(context.Background(), leo) }()
	w := NewFetchWaiter()
	defer w.Close()
	if !w.Watch(p) {
		t.Fatal("watch refused")
	}
	waitFor(t, "the produce to park", func() bool { return p.nProduceWaiters.Load() == 1 })

	c.set(mp(2, 2, 2, 1, 2, 3))
	if p.IsLeader() || p.Leader() != 2 || c.follow.Load() != 1 {
		t.Fatalf("leader %d, follow hook %d", p.Leader(), c.follow.Load())
	}
	select {
	case err := <-waiting:
		if !errors.Is(err, ErrNotLeader) {
			t.Fatalf("waiting produce: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting produce not woken by the role change")
	}
	select {
	case <-w.C():
	case <-time.After(10 * time.Second):
		t.Fatal("long poll not woken by the role change")
	}
	b, _ := record.Build(record.BuildOptions{}, []record.Record{{Value: []byte("v")}})
	if _, err := p.Append(b, 1); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("append on a follower: %v", err)
	}
	if _, err := p.Fetch(context.Background(), FetchParams{ReplicaID: -1, ReplicaEpoch: -1, CurrentLeaderEpoch: 2, LastFetchedEpoch: -1}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("consumer fetch on a follower: %v", err)
	}
	if _, _, err := p.OffsetForLeaderEpoch(2, 1); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("OffsetForLeaderEpoch on a follower: %v", err)
	}
	if _, err := c.m.Partition("t", 0); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Manager.Partition on a follower: %v", err)
	}

	// Leader again, in epoch 3.
	c.set(mp(1, 3, 3, 1, 2, 3))
	if !p.IsLeader() || c.unfollow.Load() != 1 {
		t.Fatalf("leader %d, unfollow hook %d", p.Leader(), c.unfollow.Load())
	}
	if start, ok := p.log.EpochStartOffset(3); !ok || start != leo {
		t.Fatalf("epoch 3 starts at %d (%v), want %d", start, ok, leo)
	}
	if hw := p.HighWatermark(); hw != 2 {
		t.Fatalf("high watermark %d after becoming leader again, want 2 (never lowered)", hw)
	}
	p.mu.Lock()
	f := p.mu.followers[3]
	reset := f.logEndOffset == -1 && f.lastCaughtUpTimeMs == c.clock.ms.Load()
	p.mu.Unlock()
	if !reset {
		t.Fatalf("follower 3 not reset: %+v", *f)
	}
	followerFetch(t, p, 2, leo)
	followerFetch(t, p, 3, leo)
	if hw := p.HighWatermark(); hw != leo {
		t.Fatalf("high watermark %d, want %d", hw, leo)
	}
}

// TestReplicationFetchPurgatory: one FetchWaiter watches the partitions of
// a request and is woken once by an append on any of them and by a high
// watermark move; Close unregisters it; a partition's waiters are bounded.
func TestReplicationFetchPurgatory(t *testing.T) {
	c := newCluster(t, nil)
	c.set(mp(1, 1, 1, 1, 2, 3), mp(1, 1, 1, 1, 2, 3))
	p0, p1 := c.part(0), c.part(1)
	w := NewFetchWaiter()
	w.Watch(p0)
	w.Watch(p1)
	w.Watch(p1) // twice is once
	if p1.nWaiters.Load() != 1 {
		t.Fatalf("%d waiters on p1", p1.nWaiters.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	if err := w.Wait(ctx); err == nil {
		t.Fatal("woken with no change")
	}
	cancel()

	leo := produce(t, p1, 2, 1) // an append on the second partition
	select {
	case <-w.C():
	default:
		t.Fatal("append did not wake the waiter")
	}
	select {
	case <-w.C():
		t.Fatal("woken twice for one change")
	default:
	}
	followerFetch(t, p1, 2, leo)
	followerFetch(t, p1, 3, leo) // the high watermark moves
	if err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}

	w.Close()
	if p0.nWaiters.Load() != 0 || p1.nWaiters.Load() != 0 {
		t.Fatal("waiter still registered after Close")
	}
	produce(t, p0, 1, 1)
	select {
	case <-w.C():
		t.Fatal("closed waiter woken")
	default:
	}

	var ws []*FetchWaiter
	for range maxFetchWaiters {
		x := NewFetchWaiter()
		if !x.Watch(p0) {
			t.Fatal("watch refused below the bound")
		}
		ws = append(ws, x)
	}
	if NewFetchWaiter().Watch(p0) {
		t.Fatal("watch accepted past the bound")
	}
	for _, x := range ws {
		x.Close()
	}
}

// TestReplicationSingleReplica: a leader that is the only replica moves
// the high watermark with every append and WaitReplicated answers at
// once; min.insync.replicas above 1 refuses acks=all.
func TestReplicationSingleReplica(t *testing.T) {
	c := newCluster(t, nil)
	c.set(metadata.Partition{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 0, PartitionEpoch: 0})
	p := c.part(0)
	end := produce(t, p, 3, -1)
	if hw := p.HighWatermark(); hw != end {
		t.Fatalf("high watermark %d, want %d", hw, end)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no waiting at all
	if err := p.WaitReplicated(ctx, end); err != nil {
		t.Fatal(err)
	}
	c.noCall()
}

// TestReplicationISRCheckLoop: Start runs the ISR check every
// replica.lag.time.max.ms/2 (here 100 ms: every 50 ms of real time; the
// lag itself is judged on the injected clock) until Close.
func TestReplicationISRCheckLoop(t *testing.T) {
	c := newCluster(t, nil, "replica.lag.time.max.ms=100")
	c.set(mp(1, 1, 1, 1, 2, 3))
	c.m.Start()
	c.m.Start() // once
	c.clock.advance(time.Second)
	call := c.nextCall()
	if got := memberIDs(call.req.NewISR); !slices.Equal(got, []int32{1}) {
		t.Fatalf("shrink proposal %v", got)
	}
	c.commit(call, false)
	c.m.Close()
	c.m.Close() // idempotent
}

// TestReplicationFollowerTruncate: a follower truncates its log at the
// divergence point and can restart it empty at the leader's log start
// offset; the epoch cache follows; a leader refuses both.
func TestReplicationFollowerTruncate(t *testing.T) {
	c := newCluster(t, nil)
	c.set(mp(1, 1, 1, 1, 2, 3))
	p := c.part(0)
	produce(t, p, 4, 1) // epoch 1: [0, 4)
	c.set(mp(1, 2, 2, 1, 2, 3))
	leo := produce(t, p, 4, 1) // epoch 2: [4, 8)
	if err := p.TruncateTo(5); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("truncate on the leader: %v", err)
	}
	if err := p.TruncateFullyAndStartAt(5); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("truncate fully on the leader: %v", err)
	}

	c.set(mp(2, 3, 3, 1, 2, 3)) // broker 2 leads epoch 3; 1 follows
	if p.LatestEpoch() != 2 || p.LogEndOffset() != leo {
		t.Fatalf("latest epoch %d, log end %d", p.LatestEpoch(), p.LogEndOffset())
	}
	// The new leader's epoch 1 ended at 4 too, but it never had epoch 2.
	e, end := p.EndOffsetForEpoch(1)
	if e != 1 || end != 4 {
		t.Fatalf("own end of epoch 1: %d, %d", e, end)
	}
	w := NewFetchWaiter()
	defer w.Close()
	w.Watch(p)
	if err := p.TruncateTo(4); err != nil {
		t.Fatal(err)
	}
	if p.LogEndOffset() != 4 || p.LatestEpoch() != 1 {
		t.Fatalf("after truncating to 4: log end %d, latest epoch %d", p.LogEndOffset(), p.LatestEpoch())
	}
	select {
	case <-w.C():
	default:
		t.Fatal("truncation did not wake the long polls")
	}
	if err := p.TruncateFullyAndStartAt(100); err != nil {
		t.Fatal(err)
	}
	if p.LogEndOffset() != 100 || p.log.LogStartOffset() != 100 || p.LatestEpoch() != -1 {
		t.Fatalf("after a full truncation: log end %d, start %d, epoch %d", p.LogEndOffset(), p.log.LogStartOffset(), p.LatestEpoch())
	}
	topic, id, part := p.TopicPartition()
	if topic != "t" || id != [16]byte{7} || part != 0 {
		t.Fatalf("TopicPartition %s %v %d", topic, id, part)
	}
}

// TestReplicationSingleReplicaConcurrentAcksAll: concurrent acks=all
// produces to a single-replica leader all complete at once, and the high
// watermark ends at the log end offset (reading the log end offset and
// setting the high watermark is one step: a late setter cannot move it
// back under a produce that already saw it pass).
func TestReplicationSingleReplicaConcurrentAcksAll(t *testing.T) {
	c := newCluster(t, nil)
	c.set(metadata.Partition{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1})
	p := c.part(0)
	const workers, each = 4, 200
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for range each {
				b, err := record.Build(record.BuildOptions{}, []record.Record{{Timestamp: time.Now().UnixMilli(), Value: []byte("v")}})
				if err == nil {
					var info storage.AppendInfo
					if info, err = p.Append(b, -1); err == nil {
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						err = p.WaitReplicated(ctx, info.LastOffset+1)
						cancel()
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if hw, leo := p.HighWatermark(), p.LogEndOffset(); hw != leo || leo != workers*each {
		t.Fatalf("high watermark %d, log end %d", hw, leo)
	}
}

// TestReplicationLeaderFollowerPair: broker 1 leads, broker 2 follows with
// its own manager and log; the follower copies the leader's batches
// byte-for-byte through Fetch and AppendAsFollower, takes min(leader HW,
// own LEO) as its HW, and the leader's HW and acks=all follow its
// fetches. After a leader change with a divergent tail, the old leader
// truncates at the diverging epoch's end offset.
func TestReplicationLeaderFollowerPair(t *testing.T) {
	leader := newCluster(t, map[string]string{"min.insync.replicas": "2"})
	follower := newClusterAs(t, 2, map[string]string{"min.insync.replicas": "2"})
	both := func(parts ...metadata.Partition) {
		leader.set(slices.Clone(parts)...)
		follower.set(slices.Clone(parts)...)
	}
	both(metadata.Partition{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1})
	lp, fp := leader.part(0), follower.part(0)
	if !lp.IsLeader() || fp.IsLeader() || follower.follow.Load() != 1 {
		t.Fatal("roles")
	}
	end := produce(t, lp, 5, -1)
	done := make(chan error, 1)
	go func() { done <- lp.WaitReplicated(context.Background(), end) }()

	// One fetcher round: fetch at the follower's LEO, append, repeat.
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
		if res.DivergingEpoch.Epoch >= 0 {
			t.Fatalf("unexpected diverging epoch %+v", res.DivergingEpoch)
		}
		if err := fp.AppendAsFollower(res.Records, res.HighWatermark, res.LogStartOffset); err != nil {
			t.Fatal(err)
		}
	}
	round() // copies [0, 5); the leader's HW is still 0
	if fp.LogEndOffset() != end || fp.HighWatermark() != 0 || lp.HighWatermark() != 0 {
		t.Fatalf("after one round: follower LEO %d HW %d, leader HW %d", fp.LogEndOffset(), fp.HighWatermark(), lp.HighWatermark())
	}
	round() // the fetch at 5 moves the leader's HW
	round() // the follower learns it (a round later, as in Kafka)
	if lp.HighWatermark() != end || fp.HighWatermark() != end {
		t.Fatalf("leader HW %d, follower HW %d, want %d", lp.HighWatermark(), fp.HighWatermark(), end)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	a, _ := lp.log.Read(0, 1<<20, end, true)
	b, _ := fp.log.Read(0, 1<<20, end, true)
	if !bytes.Equal(a, b) || fp.LatestEpoch() != 1 {
		t.Fatalf("follower's log differs from the leader's (epoch %d)", fp.LatestEpoch())
	}

	// DeleteRecords on the leader reaches the follower's log start.
	if _, err := lp.DeleteRecords(3); err != nil {
		t.Fatal(err)
	}
	round()
	if got := fp.log.LogStartOffset(); got != 3 {
		t.Fatalf("follower's log start %d, want the leader's 3", got)
	}

	// The leader appends 3 records broker 2 never gets, then broker 2
	// takes over in epoch 2 and appends 2 of its own.
	produce(t, lp, 3, 1)
	both(metadata.Partition{Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 2, PartitionEpoch: 2})
	lp, fp = follower.part(0), leader.part(0) // roles swapped
	produce(t, lp, 2, 1)
	res, err := lp.Fetch(context.Background(), FetchParams{ReplicaID: 1, ReplicaEpoch: -1, FetchOffset: fp.LogEndOffset(), CurrentLeaderEpoch: 2, LastFetchedEpoch: fp.LatestEpoch(), MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if res.DivergingEpoch != (EpochEndOffset{1, end}) {
		t.Fatalf("diverging epoch %+v, want epoch 1 ending at %d", res.DivergingEpoch, end)
	}
	if err := fp.TruncateTo(res.DivergingEpoch.EndOffset); err != nil {
		t.Fatal(err)
	}
	round2 := func() {
		res, err := lp.Fetch(context.Background(), FetchParams{ReplicaID: 1, ReplicaEpoch: -1, FetchOffset: fp.LogEndOffset(), CurrentLeaderEpoch: 2, LastFetchedEpoch: fp.LatestEpoch(), MaxBytes: 1 << 20, MinOneMessage: true})
		if err != nil || res.DivergingEpoch.Epoch >= 0 {
			t.Fatalf("%v %+v", err, res.DivergingEpoch)
		}
		defer release(res)
		if err := fp.AppendAsFollower(res.Records, res.HighWatermark, res.LogStartOffset); err != nil {
			t.Fatal(err)
		}
	}
	round2()
	round2()
	if fp.LogEndOffset() != end+2 || fp.LatestEpoch() != 2 || lp.HighWatermark() != end+2 {
		t.Fatalf("after catching up: LEO %d epoch %d, leader HW %d", fp.LogEndOffset(), fp.LatestEpoch(), lp.HighWatermark())
	}
	// Broker 1 is back in sync: it is proposed for the ISR.
	call := follower.nextCall()
	if got := memberIDs(call.req.NewISR); !slices.Equal(got, []int32{2, 1}) {
		t.Fatalf("expand proposal %v", got)
	}
}

// follower is internal/replication.Follower (branch c2-fetch), which
// *Partition must satisfy (the fetcher's package is built in parallel).
type follower interface {
	TopicPartition() (topic string, topicID [16]byte, partition int32)
	LeaderEpoch() int32
	LogStartOffset() int64
	LogEndOffset() int64
	LatestEpoch() int32
	AppendAsFollower(records []byte, leaderHW, leaderLogStart int64) error
	TruncateTo(offset int64) error
	TruncateFullyAndStartAt(offset int64) error
	EndOffsetForEpoch(epoch int32) (int32, int64)
}

var _ follower = (*Partition)(nil)

// TestReplicationDeleteRecordsLowWatermark: DeleteRecords on the leader
// completes (WaitLowWatermark) once every live follower reported the new
// log start offset in a fetch; a fenced broker is not waited for; a
// timeout answers ErrRequestTimedOut.
func TestReplicationDeleteRecordsLowWatermark(t *testing.T) {
	c := newCluster(t, nil)
	c.set(mp(1, 1, 1, 1, 2, 3))
	p := c.part(0)
	leo := produce(t, p, 6, 1)
	fetchWithStart := func(id int32, start int64) {
		t.Helper()
		res, err := p.Fetch(context.Background(), FetchParams{ReplicaID: id, ReplicaEpoch: -1, FetchOffset: leo, CurrentLeaderEpoch: 1, LastFetchedEpoch: -1, LogStartOffset: start, MaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		release(res)
	}
	fetchWithStart(2, 0)
	fetchWithStart(3, 0)
	if low, err := p.LowWatermark(); err != nil || low != 0 {
		t.Fatalf("low watermark %d, %v", low, err)
	}
	if _, err := p.DeleteRecords(4); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.WaitLowWatermark(ctx, 4); !errors.Is(err, ErrRequestTimedOut) {
		t.Fatalf("before the followers moved: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- p.WaitLowWatermark(context.Background(), 4) }()
	fetchWithStart(2, 4)
	select {
	case err := <-done:
		t.Fatalf("answered while broker 3 still starts at 0: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	fetchWithStart(3, 4)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not woken by the follower's fetch")
	}

	// A fenced broker is not waited for.
	if _, err := p.DeleteRecords(5); err != nil {
		t.Fatal(err)
	}
	fetchWithStart(2, 5)
	fenced := *c.image // images are never modified: a copy
	fenced.Brokers = map[int32]metadata.Broker{1: {ID: 1}, 2: {ID: 2}, 3: {ID: 3, Fenced: true}}
	c.image = &fenced
	c.set(mp(1, 1, 1, 1, 2, 3))
	if err := p.WaitLowWatermark(context.Background(), 5); err != nil {
		t.Fatal(err)
	}
}
