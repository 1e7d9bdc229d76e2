package raft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

// snapLearners returns the learners listed in the snapshot in dir (nil
// when there is none).
func snapLearners(t testing.TB, dir string) map[int32]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, snapFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	snap, err := decodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	learners, _, err := decodeSnapData(snap.GetData())
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(snap.GetMetadata().GetConfState().GetLearners(), toRaftID(3)) != (learners[3] != "") {
		t.Fatalf("snapshot in %s: ConfState learners %v disagree with its data %v", dir, snap.GetMetadata().GetConfState().GetLearners(), learners)
	}
	return learners
}

// addedLearnerCluster is three voters and learner 3, added at run time
// (not configured) and caught up with the first entries.
func addedLearnerCluster(t *testing.T, every uint64) (*cluster, []string) {
	c := newClusterOpts(t, 3, 1, clusterOpts{every: every, configure: func(_ int32, cfg *Config) { cfg.Learners = nil }})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	want := wantData(6, "a")
	for _, d := range want {
		c.propose(d, 0, 1, 2)
	}
	if err := c.nodes[c.waitLeader(0, 1, 2)].AddLearner(ctx, 3, c.learners[3]); err != nil {
		t.Fatal(err)
	}
	c.fsms[3].waitLen(t, len(want))
	return c, want
}

// TestNodeRemoveLearner: the leader removes a learner; every voter
// forgets it, the leader's transport ends its peer, it receives nothing
// more, and it stays forgotten across restarts (log replay) and in
// snapshots, also on a voter that catches up by snapshot. Removing a
// voter fails, on a follower gives ErrNotLeader, removing an unknown id
// succeeds. The same id can be added again and catches up.
func TestNodeRemoveLearner(t *testing.T) {
	c, want := addedLearnerCluster(t, 5)
	const learner = 3
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	leader := c.waitLeader(0, 1, 2)
	if err := c.nodes[leader].RemoveLearner(ctx, (leader+1)%3); err == nil {
		t.Fatal("a voter was removed")
	}
	if err := c.nodes[(leader+1)%3].RemoveLearner(ctx, learner); !errors.As(err, new(ErrNotLeader)) {
		t.Fatalf("remove on a follower: %v", err)
	}
	if err := c.nodes[leader].RemoveLearner(ctx, 42); err != nil {
		t.Fatalf("remove of an unknown id: %v", err)
	}
	p := c.nodes[leader].tr.peer(learner)
	if p == nil {
		t.Fatal("leader has no transport peer for the learner")
	}
	// Voter 2 (a follower) misses the removal and catches up by
	// snapshot later.
	lagging := int32(2)
	if leader == lagging {
		lagging = 1
	}
	c.stop(lagging)
	up := []int32{}
	for id := range int32(3) {
		if id != lagging {
			up = append(up, id)
		}
	}
	if err := c.nodes[leader].RemoveLearner(ctx, learner); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.nodes[leader].Learners()[learner]; ok {
		t.Fatal("leader still lists the learner after RemoveLearner returned")
	}
	select {
	case <-p.done:
	case <-time.After(testTimeout):
		t.Fatal("the leader's peer goroutine for the removed learner did not end")
	}
	if c.nodes[leader].tr.peer(learner) != nil {
		t.Fatal("leader's transport still has the removed learner")
	}
	if s := status(t, c.nodes[leader]); len(s.Learners) != 0 {
		t.Fatalf("leader status lists learners %+v", s.Learners)
	}
	for _, id := range up {
		waitFor(t, "voters to forget the learner", func() bool {
			_, ok := c.nodes[id].Learners()[learner]
			return !ok
		})
	}
	before := len(c.fsms[learner].get())
	// Enough entries that every running node snapshots after the removal.
	for _, d := range wantData(12, "b") {
		c.propose(d, up...)
		want = append(want, d)
	}
	for _, id := range up {
		c.fsms[id].waitLen(t, len(want))
		if l := snapLearners(t, c.dirs[id]); len(l) != 0 {
			t.Fatalf("node %d's snapshot still lists learners %v", id, l)
		}
	}
	if got := len(c.fsms[learner].get()); got != before {
		t.Fatalf("the removed learner received %d entries after its removal", got-before)
	}

	// The lagging voter catches up from the leader's snapshot, which
	// no longer lists the learner, and drops it.
	c.start(lagging)
	c.fsms[lagging].waitLen(t, len(want))
	waitFor(t, "the lagging voter to drop the learner", func() bool {
		_, ok := c.nodes[lagging].Learners()[learner]
		return !ok
	})

	// Every voter restarts: the removal survives (snapshot and replay).
	for id := range int32(3) {
		c.stop(id)
		c.start(id)
		if _, ok := c.nodes[id].Learners()[learner]; ok {
			t.Fatalf("voter %d knows the removed learner after a restart", id)
		}
	}

	// The same node joins again and catches up, also with what it
	// missed; it applies its own removal on the way without harm.
	c.propose("c0", 0, 1, 2)
	want = append(want, "c0")
	if err := c.nodes[c.waitLeader(0, 1, 2)].AddLearner(ctx, learner, c.learners[learner]); err != nil {
		t.Fatal(err)
	}
	if got := c.fsms[learner].waitLen(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("re-added learner fsm %q", got)
	}
	waitFor(t, "the leader to report the re-added learner", func() bool {
		s := status(t, c.nodes[c.waitLeader(0, 1, 2)])
		return len(s.Learners) == 1 && s.Learners[0].NodeID == learner
	})
	if c.nodes[learner].Err() != nil {
		t.Fatalf("re-added learner stopped: %v", c.nodes[learner].Err())
	}
}

// TestNodeRemoveLearnerReplay: without snapshots, a restart replays the
// add and the removal from the log and ends with the learner gone; the
// removed learner itself, once it applies its removal (it does when it
// is added back), keeps running.
func TestNodeRemoveLearnerReplay(t *testing.T) {
	c, _ := addedLearnerCluster(t, 0)
	const learner = 3
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.nodes[c.waitLeader(0, 1, 2)].RemoveLearner(ctx, learner); err != nil {
		t.Fatal(err)
	}
	c.propose("x", 0, 1, 2)
	for id := range int32(3) {
		c.fsms[id].waitLen(t, 7)
		c.stop(id)
		c.start(id)
		if _, ok := c.nodes[id].Learners()[learner]; ok {
			t.Fatalf("voter %d knows the removed learner after replaying its log", id)
		}
		if l := snapLearners(t, c.dirs[id]); l != nil {
			t.Fatalf("node %d took a snapshot with SnapshotEvery 0: %v", id, l)
		}
	}
	// Back in: the learner applies its own removal, then its new add.
	if err := c.nodes[c.waitLeader(0, 1, 2)].AddLearner(ctx, learner, c.learners[learner]); err != nil {
		t.Fatal(err)
	}
	c.propose("y", 0, 1, 2)
	c.fsms[learner].waitLen(t, 8)
	waitFor(t, "the learner to know itself as a learner again", func() bool {
		return c.nodes[learner].Learners()[learner] == c.learners[learner]
	})
	// And its own log replays the same way.
	c.stop(learner)
	c.start(learner)
	if a := c.nodes[learner].Learners()[learner]; a != c.learners[learner] {
		t.Fatalf("restarted learner knows itself at %q", a)
	}
}

// TestNodeRemoveLearnerConcurrent removes and re-adds a learner while
// entries are proposed and the status and learners are read from other
// goroutines (run with -race); the learner ends with every entry.
func TestNodeRemoveLearnerConcurrent(t *testing.T) {
	c, want := addedLearnerCluster(t, 4)
	const learner = 3
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	leader := c.waitLeader(0, 1, 2)
	n := c.nodes[leader]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = n.Learners()
			if _, err := n.Status(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	})
	proposed := make(chan []string, 1)
	wg.Go(func() {
		var got []string
		defer func() { proposed <- got }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			d := fmt.Sprintf("p%d", i)
			if _, err := n.Propose(ctx, []byte(d)); err != nil {
				t.Error(err)
				return
			}
			got = append(got, d)
		}
	})
	for range 4 {
		if err := n.RemoveLearner(ctx, learner); err != nil {
			t.Fatal(err)
		}
		if err := n.AddLearner(ctx, learner, c.learners[learner]); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	want = append(want, <-proposed...)
	if got := c.fsms[learner].waitLen(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("learner fsm has %d entries, want %d", len(got), len(want))
	}
}

// TestTransportRemovePeerEndsBlockedWrite: removing a peer whose
// connection is stuck in a write (the peer accepts but never reads) ends
// its goroutine at once, not at the write deadline, and closes the
// connection the removed node dialled to us.
func TestTransportRemovePeerEndsBlockedWrite(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c // never read
		}
	}()
	t.Cleanup(func() {
		for {
			select {
			case c := <-accepted:
				c.Close()
			default:
				return
			}
		}
	})
	recvc := make(chan *pb.Message, 16)
	reportc := make(chan report, 16)
	tr := newTransport(0, testClusterID, []int32{0}, map[int32]string{5: l.Addr().String()}, recvc, reportc, slog.New(slog.DiscardHandler))
	defer tr.close()

	// Node 5 also dialled us.
	in, out := net.Pipe()
	defer out.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		tr.handleConn(in)
	}()
	go func() {
		_, _ = out.Write(appendHello(nil, helloMsg{from: 5, clusterID: testClusterID, voters: []int32{0}}))
	}()
	waitFor(t, "the inbound connection to be accepted", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.mu.conns[in] == 5
	})

	big := testMessage()
	big.To = new(toRaftID(5))
	big.Entries = []*pb.Entry{testEntry(8, 3, string(bytes.Repeat([]byte("z"), 1<<20)))}
	msgs := make([]*pb.Message, 64)
	for i := range msgs {
		msgs[i] = big
	}
	tr.send(msgs)
	p := tr.peer(5)
	waitFor(t, "the write to block", func() bool { return len(p.q) < len(msgs)-2 && len(accepted) > 0 })
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	tr.removePeer(5)
	select {
	case <-p.done:
	case <-time.After(writeTimeout):
		t.Fatal("peer goroutine still running at the write deadline")
	}
	if d := time.Since(start); d > writeTimeout/2 {
		t.Fatalf("peer goroutine took %v to end", d)
	}
	select {
	case <-served:
	case <-time.After(testTimeout):
		t.Fatal("the removed node's inbound connection was not closed")
	}
	if tr.peer(5) != nil {
		t.Fatal("peer still known")
	}
	// A message to it is now dropped, and it can be added again.
	tr.send(msgs[:1])
	tr.setPeer(5, l.Addr().String())
	if q := tr.peer(5); q == nil || q == p {
		t.Fatal("setPeer after removePeer did not start a new peer")
	}
}
