// Package quorumtest is the contract suite of metadata.Quorum: one suite,
// run against every implementation (metadata.LocalQuorum in package
// metadata's tests, raft.MetadataLog with one voter and with three voters
// and a learner in package raft's tests).
package quorumtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"samsa/internal/metadata"
)

// Timeout bounds every wait of the suite.
const Timeout = 30 * time.Second

// Deployment is a set of nodes sharing one metadata log: one node, or a
// quorum with learners.
type Deployment interface {
	// Members returns every node's Quorum (voters first).
	Members() []metadata.Quorum
	// Restart closes every member and reopens it from its data.
	Restart(t *testing.T)
}

// Open starts a fresh deployment; its cleanup is registered on t.
type Open func(t *testing.T) Deployment

// Run runs the contract suite, each test on a fresh deployment.
func Run(t *testing.T, open Open) {
	t.Run("AppendPublishesEverywhere", func(t *testing.T) { testAppendPublishes(t, open(t)) })
	t.Run("OnlyTheActiveControllerAppends", func(t *testing.T) { testOnlyActiveAppends(t, open(t)) })
	t.Run("RejectedRecordsChangeNothing", func(t *testing.T) { testRejected(t, open(t)) })
	t.Run("ListenersSeeImagesInOrder", func(t *testing.T) { testOrdered(t, open(t)) })
	t.Run("SlowListenerStallsNothingElse", func(t *testing.T) { testSlowListener(t, open(t)) })
	t.Run("CommitDoesNotWaitForListeners", func(t *testing.T) { testCommit(t, open(t)) })
	t.Run("RestartKeepsTheImage", func(t *testing.T) { testRestart(t, open(t)) })
	t.Run("ClosedQuorumRefusesAppends", func(t *testing.T) { testClosed(t, open(t)) })
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// TopicRecords creates topic name (id from the name) with parts
// partitions led by node 0.
func TopicRecords(name string, parts int) []metadata.Record {
	var id metadata.UUID
	copy(id[:], name)
	id[15] = 1
	recs := []metadata.Record{{Type: metadata.TypeTopic, Topic: &metadata.TopicRecord{Name: name, TopicID: id}}}
	for p := range parts {
		recs = append(recs, metadata.Record{Type: metadata.TypePartition, Partition: &metadata.PartitionRecord{
			TopicID: id, PartitionID: int32(p), Replicas: []int32{0}, ISR: []int32{0}, Leader: 0,
		}})
	}
	return recs
}

// Active waits until exactly one member is active and returns it.
func Active(t *testing.T, d Deployment) metadata.Quorum {
	t.Helper()
	q, err := activeErr(d, time.Now().Add(Timeout))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func activeErr(d Deployment, deadline time.Time) (metadata.Quorum, error) {
	for {
		var active []metadata.Quorum
		var chans []<-chan struct{}
		for _, q := range d.Members() {
			chans = append(chans, q.Publisher().Changed())
			if ok, _ := q.Active(); ok {
				active = append(active, q)
			}
		}
		if len(active) == 1 {
			return active[0], nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d active members", len(active))
		}
		waitAny(chans, 50*time.Millisecond)
	}
}

// waitAny waits until one of chans closes or d passes.
func waitAny(chans []<-chan struct{}, d time.Duration) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(done)
	hit := make(chan struct{}, len(chans))
	for _, ch := range chans {
		wg.Go(func() {
			select {
			case <-ch:
				hit <- struct{}{}
			case <-done:
			}
		})
	}
	select {
	case <-hit:
	case <-time.After(d):
	}
}

// WaitImage waits until q's published image satisfies cond.
func WaitImage(t *testing.T, q metadata.Quorum, what string, cond func(*metadata.Image) bool) *metadata.Image {
	t.Helper()
	deadline := time.After(Timeout)
	for {
		ch := q.Publisher().Changed()
		if im := q.Publisher().Image(); cond(im) {
			return im
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for an image with %s; have offset %d", what, q.Publisher().Image().Offset)
		}
	}
}

// Append appends recs on the active member, retrying only while no
// member is active (NotControllerError: the entry did not commit).
func Append(t *testing.T, d Deployment, recs []metadata.Record) (metadata.Quorum, int64) {
	t.Helper()
	q, off, err := appendErr(d, recs)
	if err != nil {
		t.Fatal(err)
	}
	return q, off
}

// appendErr is Append for goroutines other than the test's.
func appendErr(d Deployment, recs []metadata.Record) (metadata.Quorum, int64, error) {
	deadline := time.Now().Add(Timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for {
		q, err := activeErr(d, deadline)
		if err != nil {
			return nil, 0, err
		}
		off, err := q.Append(ctx, recs)
		if err == nil {
			return q, off, nil
		}
		if !errors.Is(err, metadata.ErrNotController) || ctx.Err() != nil {
			return nil, 0, fmt.Errorf("append: %w", err)
		}
	}
}

func testAppendPublishes(t *testing.T, d Deployment) {
	var last int64 = -1
	for i := range 3 {
		q, off := Append(t, d, TopicRecords(fmt.Sprintf("t%d", i), 2))
		if off <= last {
			t.Fatalf("offset %d after %d", off, last)
		}
		last = off
		// Published before Append returned, with the entry's offset.
		im := q.Publisher().Image()
		if _, ok := im.Topic(fmt.Sprintf("t%d", i)); !ok || im.Offset != off {
			t.Fatalf("after append %d: offset %d, topics %d", off, im.Offset, len(im.Topics))
		}
		if ok, epoch := q.Active(); !ok || epoch < 1 {
			t.Fatalf("active %v epoch %d", ok, epoch)
		}
	}
	want := Active(t, d).Publisher().Image()
	for i, q := range d.Members() {
		im := WaitImage(t, q, "3 topics", func(im *metadata.Image) bool { return im.Offset >= last })
		if !im.SameState(want) || im.Offset != want.Offset {
			t.Fatalf("member %d image differs from the controller's", i)
		}
		if im.ControllerID != want.ControllerID || im.ControllerID < 0 {
			t.Fatalf("member %d controller %d, want %d", i, im.ControllerID, want.ControllerID)
		}
	}
}

func testOnlyActiveAppends(t *testing.T, d Deployment) {
	active := Active(t, d)
	id := active.Publisher().Image().ControllerID
	Append(t, d, TopicRecords("a", 1))
	for _, q := range d.Members() {
		if q == active {
			continue
		}
		if ok, _ := q.Active(); ok {
			t.Fatal("two active members")
		}
		WaitImage(t, q, "the controller id", func(im *metadata.Image) bool { return im.ControllerID == id })
		_, err := q.Append(ctxT(t), TopicRecords("b", 1))
		var nc *metadata.NotControllerError
		if !errors.As(err, &nc) || !errors.Is(err, metadata.ErrNotController) || nc.ControllerID != id {
			t.Fatalf("append on a non-controller: %v, want NotControllerError{%d}", err, id)
		}
	}
	if _, ok := active.Publisher().Image().Topic("b"); ok {
		t.Fatal("a refused append committed")
	}
}

func testRejected(t *testing.T, d Deployment) {
	q, _ := Append(t, d, TopicRecords("a", 1))
	before := q.Publisher().Image()
	_, err := q.Append(ctxT(t), TopicRecords("a", 3))
	if !errors.Is(err, metadata.ErrRejected) {
		t.Fatalf("duplicate topic: %v, want ErrRejected", err)
	}
	_, off := Append(t, d, TopicRecords("b", 1))
	for i, m := range d.Members() {
		im := WaitImage(t, m, "topic b", func(im *metadata.Image) bool { return im.Offset >= off })
		if len(im.Topics["a"].Partitions) != 1 || len(im.Topics) != 2 {
			t.Fatalf("member %d: rejected entry changed the image", i)
		}
	}
	if len(before.Topics) != 1 {
		t.Fatal("published image modified in place")
	}
}

// recorder is a listener that checks delivery order.
type recorder struct {
	mu     sync.Mutex
	last   *metadata.Image
	n      int
	errors []string
}

func (r *recorder) listen(prev, next *metadata.Image) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.last == nil && prev != nil:
		r.errors = append(r.errors, "first call has a prev image")
	case r.last != nil && prev != r.last:
		r.errors = append(r.errors, fmt.Sprintf("prev (offset %d) is not the last image delivered (offset %d)", prev.Offset, r.last.Offset))
	case r.last != nil && next.Offset < r.last.Offset:
		r.errors = append(r.errors, fmt.Sprintf("offset went back from %d to %d", r.last.Offset, next.Offset))
	}
	r.last = next
	r.n++
}

func (r *recorder) check(t *testing.T, name string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errors) > 0 {
		t.Fatalf("%s: %v", name, r.errors)
	}
}

func testOrdered(t *testing.T, d Deployment) {
	recs := make([]*recorder, len(d.Members()))
	for i, q := range d.Members() {
		recs[i] = &recorder{}
		q.Publisher().Subscribe(recs[i].listen)
	}
	var wg sync.WaitGroup
	var last int64
	var mu sync.Mutex
	var errs []error
	for w := range 4 {
		wg.Go(func() {
			for i := range 5 {
				_, off, err := appendErr(d, TopicRecords(fmt.Sprintf("w%d-%d", w, i), 1))
				mu.Lock()
				last = max(last, off)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for i, q := range d.Members() {
		im := WaitImage(t, q, "20 topics", func(im *metadata.Image) bool { return im.Offset >= last })
		if len(im.Topics) != 20 {
			t.Fatalf("member %d has %d topics", i, len(im.Topics))
		}
		recs[i].check(t, fmt.Sprintf("member %d", i))
		recs[i].mu.Lock()
		lastSeen := recs[i].last
		recs[i].mu.Unlock()
		if lastSeen.Offset < last {
			t.Fatalf("member %d listener saw offset %d, want %d", i, lastSeen.Offset, last)
		}
	}
}

// testSlowListener blocks a listener on the last member: the others keep
// committing, the blocked member stays in the quorum (the active member
// keeps its epoch), and the blocked listener then sees the entries it
// missed in order, possibly coalesced.
func testSlowListener(t *testing.T, d Deployment) {
	ms := d.Members()
	slow := ms[len(ms)-1]
	_, epoch0 := Active(t, d).Active()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	rec := &recorder{}
	first := true
	slow.Publisher().Subscribe(func(prev, next *metadata.Image) {
		rec.listen(prev, next)
		if first {
			first = false
			return
		}
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	})
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	done := make(chan error, 1)
	go func() {
		for i := range 10 {
			// Append in a goroutine: on a single node the slow member is
			// the controller, whose Append waits for its listeners.
			if _, _, err := appendErr(d, TopicRecords(fmt.Sprintf("s%d", i), 1)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case <-entered:
	case <-time.After(Timeout):
		t.Fatal("the slow listener never ran")
	}
	if len(ms) > 1 {
		// The rest of the quorum commits all ten meanwhile.
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(Timeout):
			t.Fatal("appends stalled by another member's listener")
		}
		// Raft on the slow member kept up and nobody called an election.
		if q := Active(t, d); q == slow {
			t.Fatal("the slow member became controller")
		} else if _, epoch := q.Active(); epoch != epoch0 {
			t.Fatalf("epoch moved from %d to %d while a listener was blocked", epoch0, epoch)
		}
		close(release)
		released = true
	} else {
		close(release)
		released = true
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	want := Active(t, d).Publisher().Image()
	im := WaitImage(t, slow, "every entry", func(im *metadata.Image) bool { return im.Offset >= want.Offset })
	if len(im.Topics) != 10 {
		t.Fatalf("slow member has %d topics", len(im.Topics))
	}
	rec.check(t, "slow listener")
}

// testCommit: Commit on the active member returns once the entry is
// applied there (Applied includes it) while that member's listener is
// still blocked on the entry; the publication follows the release.
func testCommit(t *testing.T, d Deployment) {
	q := Active(t, d)
	release := make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) })
	first := true
	q.Publisher().Subscribe(func(prev, next *metadata.Image) {
		if first {
			first = false
			return
		}
		if _, ok := next.Topics["committed"]; ok {
			<-release
		}
	})
	ctx := ctxT(t)
	off, err := q.Commit(ctx, TopicRecords("committed", 2))
	if err != nil {
		t.Fatal(err)
	}
	if im := q.Applied(); im.Offset < off || len(im.Topics["committed"].Partitions) != 2 {
		t.Fatalf("applied image at %d after Commit returned %d: %v", im.Offset, off, im.Topics)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err = q.Publisher().WaitOffset(short, off)
	cancel()
	if err == nil {
		t.Fatal("publication done while its listener is blocked")
	}
	once.Do(func() { close(release) })
	if err := q.Publisher().WaitOffset(ctx, off); err != nil {
		t.Fatal(err)
	}
	if _, ok := q.Publisher().Image().Topics["committed"]; !ok {
		t.Fatal("not published after the listener returned")
	}
	if _, err := q.Commit(ctx, TopicRecords("committed", 1)); !errors.Is(err, metadata.ErrRejected) {
		t.Fatalf("a duplicate topic committed: %v", err)
	}
}

func testRestart(t *testing.T, d Deployment) {
	Append(t, d, TopicRecords("a", 2))
	v := "compact"
	q, _ := Append(t, d, []metadata.Record{{Type: metadata.TypeConfig, Config: &metadata.ConfigRecord{
		ResourceType: metadata.ResourceTopic, ResourceName: "a", Name: "cleanup.policy", Value: &v}}})
	want := q.Publisher().Image()
	for _, m := range d.Members() {
		WaitImage(t, m, "the config", func(im *metadata.Image) bool { return im.Offset >= want.Offset })
	}
	d.Restart(t)
	for i, m := range d.Members() {
		// Replayed before Open returned (a learner may also catch up).
		im := WaitImage(t, m, "the replayed state", func(im *metadata.Image) bool { return im.Offset >= want.Offset })
		if !im.SameState(want) {
			t.Fatalf("member %d after restart: %+v", i, im)
		}
	}
	_, off := Append(t, d, TopicRecords("b", 1))
	if off <= want.Offset {
		t.Fatalf("offset %d after restart, want > %d", off, want.Offset)
	}
}

func testClosed(t *testing.T, d Deployment) {
	Append(t, d, TopicRecords("a", 1))
	for _, q := range d.Members() {
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		if err := q.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
		if _, err := q.Append(ctxT(t), TopicRecords("b", 1)); !errors.Is(err, metadata.ErrClosed) {
			t.Fatalf("append after close: %v", err)
		}
		if ok, _ := q.Active(); ok {
			t.Fatal("closed member active")
		}
	}
}
