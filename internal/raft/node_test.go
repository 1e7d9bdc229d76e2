package raft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func wantData(n int, prefix string) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

func TestNodeSingleVoterCommitsAndSurvivesRestart(t *testing.T) {
	c := newCluster(t, 1, 0, 0)
	var last uint64
	for i, d := range wantData(5, "a") {
		idx := c.propose(d)
		if idx <= last {
			t.Fatalf("proposal %d: index %d after %d", i, idx, last)
		}
		last = idx
		// Propose returns after the entry is applied locally.
		if got := c.fsms[0].get(); len(got) != i+1 || got[i] != d {
			t.Fatalf("after propose %d fsm = %q", i, got)
		}
	}
	if id, term := c.nodes[0].Leader(); id != 0 || term == 0 {
		t.Fatalf("Leader() = %d, %d", id, term)
	}
	c.stop(0)
	c.start(0)
	// The new process replays the committed log into a fresh state
	// before Open returns.
	if got := c.fsms[0].get(); !slices.Equal(got, wantData(5, "a")) {
		t.Fatalf("after restart fsm = %q", got)
	}
	if idx := c.propose("b0"); idx <= last {
		t.Fatalf("index after restart %d <= %d", idx, last)
	}
	if got := c.fsms[0].get(); !slices.Equal(got, append(wantData(5, "a"), "b0")) {
		t.Fatalf("fsm = %q", got)
	}
}

func TestNodeThreeVotersReplicate(t *testing.T) {
	c := newCluster(t, 3, 0, 0)
	leader := c.waitLeader()
	want := wantData(10, "x")
	for _, d := range want {
		c.propose(d)
	}
	for id, f := range c.fsms {
		if got := f.waitLen(t, len(want)); !slices.Equal(got, want) {
			t.Fatalf("node %d fsm = %q", id, got)
		}
	}
	// A proposal on a follower names another node as leader. Under load
	// CheckQuorum may move the leadership meanwhile: the answer must then
	// name the new leader, never the follower itself.
	for try := 0; ; try++ {
		follower := (leader + 1) % 3
		_, err := c.nodes[follower].Propose(context.Background(), []byte("no"))
		var nl ErrNotLeader
		if errors.As(err, &nl) && nl.LeaderID != follower {
			break
		}
		if try >= 5 {
			t.Fatalf("propose on follower %d: %v, want ErrNotLeader naming another node (leader was %d)", follower, err, leader)
		}
		leader = c.waitLeader()
	}
}

func TestNodeLeaderFailover(t *testing.T) {
	c := newCluster(t, 3, 0, 0)
	old := c.waitLeader()
	c.propose("before")
	_, oldTerm := c.nodes[old].Leader()
	c.stop(old)
	rest := c.ids()
	newLeader := c.waitLeader(rest...)
	if newLeader == old {
		t.Fatalf("stopped node %d still leader", old)
	}
	if _, term := c.nodes[newLeader].Leader(); term <= oldTerm {
		t.Fatalf("new term %d <= old %d", term, oldTerm)
	}
	// The new leader announced itself only with every earlier entry
	// applied.
	f := c.fsms[newLeader]
	f.mu.Lock()
	ledAt := slices.Clone(f.ledAt)
	f.mu.Unlock()
	if len(ledAt) == 0 || ledAt[len(ledAt)-1] < 1 {
		t.Fatalf("new leader announced with %v entries applied, want >= 1", ledAt)
	}
	c.propose("after", rest...)
	c.start(old)
	want := []string{"before", "after"}
	for id, f := range c.fsms {
		if got := f.waitLen(t, 2); !slices.Equal(got, want) {
			t.Fatalf("node %d fsm = %q", id, got)
		}
	}
	c.propose("again")
	for id, f := range c.fsms {
		if got := f.waitLen(t, 3); !slices.Equal(got, append(want, "again")) {
			t.Fatalf("node %d fsm = %q", id, got)
		}
	}
}

func TestNodeLearnerReceivesLogNeverLeads(t *testing.T) {
	c := newCluster(t, 3, 1, 0)
	const learner = 3
	var leaders []int32
	// Record every leader the learner ever sees.
	seen := make(chan int32, 100)
	go func() {
		n := c.nodes[learner]
		for {
			ch := n.LeaderChanged()
			id, _ := n.Leader()
			seen <- id
			select {
			case <-ch:
			case <-n.done:
				close(seen)
				return
			}
		}
	}()
	first := c.waitLeader()
	c.propose("l0")
	c.stop(first)
	var voters []int32
	for _, id := range c.ids() {
		if id != learner {
			voters = append(voters, id)
		}
	}
	c.propose("l1", voters...)
	if got := c.fsms[learner].waitLen(t, 2); !slices.Equal(got, []string{"l0", "l1"}) {
		t.Fatalf("learner fsm = %q", got)
	}
	_, err := c.nodes[learner].Propose(context.Background(), []byte("no"))
	if !errors.As(err, new(ErrNotLeader)) {
		t.Fatalf("propose on learner: %v", err)
	}
	c.stop(learner)
	for id := range seen {
		leaders = append(leaders, id)
	}
	if slices.Contains(leaders, learner) {
		t.Fatalf("learner saw itself as leader: %v", leaders)
	}
}

func TestNodeSnapshotCompactionAndCatchUp(t *testing.T) {
	c := newCluster(t, 3, 0, 5)
	leader := c.waitLeader()
	lagging := (leader + 1) % 3
	c.propose("s0")
	c.fsms[lagging].waitLen(t, 1)
	c.stop(lagging)
	want := []string{"s0"}
	for _, d := range wantData(30, "s")[1:] {
		c.propose(d)
		want = append(want, d)
	}
	// The leader snapshotted and compacted: its log no longer holds the
	// entries the lagging node misses.
	n := c.nodes[c.waitLeader()]
	first, _ := n.st.FirstIndex()
	if first <= 5 {
		t.Fatalf("leader log starts at %d, want compaction", first)
	}
	if _, err := os.Stat(filepath.Join(c.dirs[leader], snapFile)); err != nil {
		t.Fatalf("no snapshot file: %v", err)
	}
	c.start(lagging)
	if got := c.fsms[lagging].waitLen(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("lagging node fsm = %q", got)
	}
	c.fsms[lagging].mu.Lock()
	restores := c.fsms[lagging].restores
	c.fsms[lagging].mu.Unlock()
	if restores == 0 {
		t.Fatal("lagging node caught up without a snapshot")
	}
	// And restarting the caught-up node restores from its own snapshot.
	c.stop(lagging)
	c.start(lagging)
	if got := c.fsms[lagging].waitLen(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("restarted node fsm = %q", got)
	}
}

func TestNodePartitionMinorityCannotCommit(t *testing.T) {
	c := newCluster(t, 3, 0, 0)
	old := c.waitLeader()
	c.propose("p0")
	c.isolate(old)
	var majority []int32
	for _, id := range c.ids() {
		if id != old {
			majority = append(majority, id)
		}
	}
	// The isolated leader cannot commit. Its proposal is refused at once
	// if it already stepped down for lack of a quorum, or else stays
	// pending until the healed node learns that another leader's entry
	// took its index.
	minority := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_, err := c.nodes[old].Propose(ctx, []byte("minority"))
		minority <- err
	}()
	c.propose("p1", majority...)
	var err error
	answered := false
	select {
	case err = <-minority:
		answered = true
	default: // still pending
	}
	c.isolate() // heal
	if !answered {
		err = <-minority
	}
	if !errors.As(err, new(ErrNotLeader)) {
		t.Fatalf("isolated leader's proposal: %v, want ErrNotLeader", err)
	}
	want := []string{"p0", "p1"}
	for id, f := range c.fsms {
		if got := f.waitLen(t, 2); !slices.Equal(got, want) {
			t.Fatalf("node %d fsm = %q", id, got)
		}
	}
	c.propose("p2")
	for id, f := range c.fsms {
		if got := f.waitLen(t, 3); !slices.Equal(got, append(want, "p2")) {
			t.Fatalf("node %d fsm = %q, the minority entry must never apply", id, got)
		}
	}
}

func TestNodeTransferLeadership(t *testing.T) {
	c := newCluster(t, 3, 0, 0)
	leader := c.waitLeader()
	to := (leader + 2) % 3
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.nodes[leader].TransferLeadership(ctx, to); err != nil {
		t.Fatal(err)
	}
	if got := c.waitLeader(); got != to {
		t.Fatalf("leader %d after transfer to %d", got, to)
	}
	c.propose("t0")
}

func TestNodeApplyErrorStopsNode(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	n, err := Open(Config{
		NodeID: 4, Voters: map[int32]string{4: l.Addr().String()}, Dir: t.TempDir(),
		Logger: slog.New(slog.DiscardHandler), TickInterval: 10 * time.Millisecond,
		Apply: func(e Entry) error {
			if string(e.Data) == "bad" {
				return boom
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go n.Serve(l)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if id, err := n.WaitLeader(ctx); err != nil || id != 4 {
		t.Fatalf("WaitLeader = %d, %v", id, err)
	}
	if _, err := n.Propose(ctx, []byte("good")); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Propose(ctx, []byte("bad")); !errors.Is(err, boom) {
		t.Fatalf("propose: %v, want %v", err, boom)
	}
	if !errors.Is(n.Err(), boom) {
		t.Fatalf("Err() = %v", n.Err())
	}
	if _, err := n.Propose(ctx, []byte("after")); !errors.Is(err, boom) {
		t.Fatalf("propose after failure: %v", err)
	}
	if err := n.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close() = %v", err)
	}
}
