package raft

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond (state owned by other goroutines that offer no
// channel to wait on) until it holds or testTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func status(t testing.TB, n *Node) Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNodeStatusForDescribeQuorum(t *testing.T) {
	c := newCluster(t, 3, 1, 0)
	idx := c.propose("x")
	leader := c.waitLeader(0, 1, 2)
	var s Status
	waitFor(t, "every member to match the leader", func() bool {
		s = status(t, c.nodes[leader])
		for _, r := range append(append([]ReplicaStatus(nil), s.Voters...), s.Learners...) {
			if r.LogEndOffset < int64(idx) || r.LastFetch.IsZero() || r.LastCaughtUp.IsZero() {
				return false
			}
		}
		return true
	})
	if s.LeaderID != leader || s.Term == 0 || s.HighWatermark < idx || len(s.Voters) != 3 || len(s.Learners) != 1 || s.Learners[0].NodeID != 3 {
		t.Fatalf("leader status %+v", s)
	}
	follower := (leader + 1) % 3
	fs := status(t, c.nodes[follower])
	if fs.LeaderID != leader || fs.Term != s.Term {
		t.Fatalf("follower status %+v", fs)
	}
	for _, r := range fs.Voters {
		if r.NodeID == follower && r.LogEndOffset < int64(idx) || r.NodeID != follower && r.LogEndOffset != -1 {
			t.Fatalf("follower's view of %d: %+v", r.NodeID, r)
		}
	}
}

func TestNodeRejectedEntryKeepsNodeRunning(t *testing.T) {
	c := newCluster(t, 3, 0, 0)
	leader := c.waitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := c.nodes[leader].Propose(ctx, []byte("reject me")); !errors.Is(err, ErrRejected) {
		t.Fatalf("propose: %v, want ErrRejected", err)
	}
	c.propose("ok")
	for _, id := range c.ids() {
		if got := c.fsms[id].waitLen(t, 1); len(got) != 1 || got[0] != "ok" {
			t.Fatalf("node %d: %q", id, got)
		}
		if err := c.nodes[id].Err(); err != nil {
			t.Fatalf("node %d stopped: %v", id, err)
		}
	}
}

func TestNodeSnapshotTriggers(t *testing.T) {
	t.Run("bytes", func(t *testing.T) {
		c := newClusterOpts(t, 1, 0, clusterOpts{configure: func(_ int32, cfg *Config) {
			cfg.SnapshotBytes, cfg.SnapshotInterval = 300, -1
		}})
		for i := 0; i < 3; i++ {
			c.propose(strings.Repeat("b", 80))
		}
		if s := status(t, c.nodes[0]); s.SnapshotIndex != 0 {
			t.Fatalf("snapshot at %d after 240+ bytes, want none before 300", s.SnapshotIndex)
		}
		last := c.propose(strings.Repeat("b", 80))
		if s := status(t, c.nodes[0]); s.SnapshotIndex != last {
			t.Fatalf("snapshot index %d, want %d", s.SnapshotIndex, last)
		}
	})
	t.Run("interval", func(t *testing.T) {
		c := newClusterOpts(t, 1, 0, clusterOpts{configure: func(_ int32, cfg *Config) {
			cfg.SnapshotBytes, cfg.SnapshotInterval = -1, 50*time.Millisecond
		}})
		idx := c.propose("t")
		waitFor(t, "a time-driven snapshot", func() bool { return status(t, c.nodes[0]).SnapshotIndex == idx })
	})
}

// TestNodeSharesListenerWithKafka serves each node's raft traffic through
// a listener that also answers "Kafka" connections, routed by Divert.
func TestNodeSharesListenerWithKafka(t *testing.T) {
	serve := func(n *Node, l net.Listener) {
		var wg sync.WaitGroup
		defer wg.Wait()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				var size [4]byte
				_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
				if _, err := io.ReadFull(conn, size[:]); err != nil {
					return
				}
				_ = conn.SetReadDeadline(time.Time{})
				if n.Divert(size[:], conn) {
					return
				}
				conn.Write([]byte("kafka"))
			})
		}
	}
	c := newClusterOpts(t, 3, 0, clusterOpts{serve: serve})
	c.propose("shared")
	for _, id := range c.ids() {
		c.fsms[id].waitLen(t, 1)
	}
	conn, err := net.Dial("tcp", c.voters[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte{0, 0, 0, 20})
	_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
	got, _ := io.ReadAll(conn)
	if string(got) != "kafka" {
		t.Fatalf("kafka connection got %q", got)
	}
	if IsRaftPrefix([]byte{0, 0, 0, 20}) || !IsRaftPrefix(HelloMagic[:4]) || IsRaftPrefix(HelloMagic[:3]) {
		t.Fatal("IsRaftPrefix")
	}
}

// syncBuffer is a log sink shared by goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestNodeClusterIDMismatchRefused(t *testing.T) {
	var logs syncBuffer
	c := newClusterOpts(t, 2, 0, clusterOpts{configure: func(id int32, cfg *Config) {
		if id == 1 {
			cfg.ClusterID = "another-cluster"
		} else {
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		}
	}})
	waitFor(t, "the mismatch log line", func() bool {
		s := logs.String()
		return strings.Contains(s, "peer_cluster_id=another-cluster") && strings.Contains(s, "our_cluster_id="+testClusterID) &&
			strings.Contains(s, "from=1")
	})
	// Neither side got a vote through: no leader.
	for _, id := range c.ids() {
		if l, _ := c.nodes[id].Leader(); l >= 0 {
			t.Fatalf("node %d sees leader %d across clusters", id, l)
		}
	}
}

func TestNodeVotersMismatchRefused(t *testing.T) {
	var logs syncBuffer
	c := newClusterOpts(t, 2, 0, clusterOpts{configure: func(id int32, cfg *Config) {
		if id == 1 {
			v := maps.Clone(cfg.Voters)
			v[2] = "127.0.0.1:1" // a third voter only node 1 believes in
			cfg.Voters = v
		} else {
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		}
	}})
	waitFor(t, "the voters mismatch log line", func() bool {
		s := logs.String()
		return strings.Contains(s, "controller.quorum.voters differs") && strings.Contains(s, `peer_voters="[0 1 2]"`) &&
			strings.Contains(s, `our_voters="[0 1]"`) && strings.Contains(s, "from=1")
	})
	for _, id := range c.ids() {
		if l, _ := c.nodes[id].Leader(); l >= 0 {
			t.Fatalf("node %d sees leader %d across voter sets", id, l)
		}
	}
}

// TestNodeAddLearnerAtRunTime: a broker-only node that no voter is
// configured with joins when the leader adds it, catches up (from a
// snapshot: the log is compacted every 5 entries), stays known to voters
// across their restarts (the ConfChange entry is compacted away by then:
// the snapshot carries the address), and can move to a new address.
func TestNodeAddLearnerAtRunTime(t *testing.T) {
	c := newClusterOpts(t, 3, 1, clusterOpts{every: 5, configure: func(_ int32, cfg *Config) { cfg.Learners = nil }})
	const learner = 3
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var want []string
	for _, d := range wantData(8, "a") {
		c.propose(d, 0, 1, 2)
		want = append(want, d)
	}
	if got := c.fsms[learner].get(); len(got) != 0 {
		t.Fatalf("unknown learner received %q", got)
	}
	leader := c.waitLeader(0, 1, 2)
	if err := c.nodes[leader].AddLearner(ctx, 1, "127.0.0.1:1"); err == nil {
		t.Fatal("a voter was added as a learner")
	}
	if err := c.nodes[(leader+1)%3].AddLearner(ctx, learner, c.learners[learner]); !errors.As(err, new(ErrNotLeader)) {
		t.Fatalf("add on a follower: %v", err)
	}
	if err := c.nodes[leader].AddLearner(ctx, learner, c.learners[learner]); err != nil {
		t.Fatal(err)
	}
	c.fsms[learner].waitLen(t, len(want))
	for _, d := range wantData(4, "b") {
		c.propose(d, 0, 1, 2)
		want = append(want, d)
	}
	if got := c.fsms[learner].waitLen(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("learner fsm %q", got)
	}
	waitFor(t, "the leader to report the learner", func() bool {
		s := status(t, c.nodes[c.waitLeader(0, 1, 2)])
		return len(s.Learners) == 1 && s.Learners[0].NodeID == learner && s.Learners[0].LogEndOffset > 0
	})

	// Every voter restarts; the learner is remembered.
	for id := range int32(3) {
		c.stop(id)
		c.start(id)
		if a := c.nodes[id].Learners()[learner]; a != c.learners[learner] {
			t.Fatalf("voter %d after restart knows the learner at %q", id, a)
		}
	}
	c.propose("c0", 0, 1, 2)
	want = append(want, "c0")
	c.fsms[learner].waitLen(t, len(want))

	// The learner moves to a new port.
	c.stop(learner)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.learners[learner] = l.Addr().String()
	c.startWith(learner, l)
	if err := c.nodes[c.waitLeader(0, 1, 2)].AddLearner(ctx, learner, c.learners[learner]); err != nil {
		t.Fatal(err)
	}
	c.propose("d0", 0, 1, 2)
	want = append(want, "d0")
	if got := c.fsms[learner].waitLen(t, len(want)); !slices.Equal(got[len(got)-2:], want[len(want)-2:]) {
		t.Fatalf("moved learner fsm %q", got)
	}
	// The leader a node reports is published after the entries of the
	// same raft step were applied: wait for it rather than race it.
	waitFor(t, "the moved learner to see a voter as leader", func() bool {
		l, _ := c.nodes[learner].Leader()
		return l >= 0 && l != learner
	})
}
