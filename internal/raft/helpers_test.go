package raft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 30 * time.Second

// testClusterID is the cluster id of test clusters.
const testClusterID = "raft-test-cluster-id-1"

// fsm is the caller's state machine in tests: the list of applied
// payloads. One fsm lives as long as one Node (one process lifetime).
type fsm struct {
	mu       sync.Mutex
	data     []string
	last     uint64
	restores int
	// ledAt records, each time this node was told it leads, how many
	// payloads it had applied then.
	ledAt   []int
	changed chan struct{}
}

func newFSM() *fsm { return &fsm{changed: make(chan struct{})} }

func (f *fsm) apply(e Entry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e.Index <= f.last {
		return fmt.Errorf("entry %d applied after %d", e.Index, f.last)
	}
	if strings.HasPrefix(string(e.Data), "reject") {
		f.last = e.Index
		return fmt.Errorf("%w: %q", ErrRejected, e.Data)
	}
	f.last = e.Index
	f.data = append(f.data, string(e.Data))
	close(f.changed)
	f.changed = make(chan struct{})
	return nil
}

type fsmSnapshot struct {
	Data []string
	Last uint64
}

func (f *fsm) snapshot() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return json.Marshal(fsmSnapshot{Data: f.data, Last: f.last})
}

func (f *fsm) restore(b []byte) error {
	var s fsmSnapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data, f.last = s.Data, s.Last
	f.restores++
	close(f.changed)
	f.changed = make(chan struct{})
	return nil
}

func (f *fsm) get() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.data)
}

// waitLen waits until the fsm holds at least n payloads.
func (f *fsm) waitLen(t testing.TB, n int) []string {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		f.mu.Lock()
		got, ch := slices.Clone(f.data), f.changed
		f.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("fsm has %d entries, want %d: %q", len(got), n, got)
		}
	}
}

// cluster is an in-process quorum over real TCP on 127.0.0.1.
type cluster struct {
	t        testing.TB
	voters   map[int32]string
	learners map[int32]string
	dirs     map[int32]string
	nodes    map[int32]*Node // running nodes
	fsms     map[int32]*fsm
	closers  map[int32]func() // stop a custom opts.serve
	opts     clusterOpts
	drop     atomic.Pointer[func(from, to int32) bool]
}

// clusterOpts vary a test cluster.
type clusterOpts struct {
	every uint64 // Config.SnapshotEvery
	// configure, if set, adjusts a node's config before Open.
	configure func(id int32, cfg *Config)
	// serve, if set, accepts on the node's listener instead of Node.Serve
	// and owns l (it must return once l is closed).
	serve func(n *Node, l net.Listener)
}

func newCluster(t testing.TB, voters, learners int, snapshotEvery uint64) *cluster {
	return newClusterOpts(t, voters, learners, clusterOpts{every: snapshotEvery})
}

func newClusterOpts(t testing.TB, voters, learners int, opts clusterOpts) *cluster {
	c := &cluster{t: t, voters: map[int32]string{}, learners: map[int32]string{}, dirs: map[int32]string{},
		nodes: map[int32]*Node{}, fsms: map[int32]*fsm{}, closers: map[int32]func(){}, opts: opts}
	ls := map[int32]net.Listener{}
	for id := int32(0); id < int32(voters+learners); id++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls[id] = l
		if id < int32(voters) {
			c.voters[id] = l.Addr().String()
		} else {
			c.learners[id] = l.Addr().String()
		}
		c.dirs[id] = filepath.Join(t.TempDir(), "__cluster_metadata-0")
	}
	for id, l := range ls {
		c.startWith(id, l)
	}
	t.Cleanup(func() {
		for id := range c.nodes {
			c.stop(id)
		}
	})
	return c
}

func (c *cluster) ids() []int32 {
	var ids []int32
	for id := range c.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (c *cluster) addr(id int32) string {
	if a, ok := c.voters[id]; ok {
		return a
	}
	return c.learners[id]
}

// start reopens node id on its old address and directory.
func (c *cluster) start(id int32) {
	c.t.Helper()
	var l net.Listener
	var err error
	deadline := time.Now().Add(testTimeout)
	for {
		// The port was ours a moment ago; rebinding can briefly fail.
		if l, err = net.Listen("tcp", c.addr(id)); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	c.startWith(id, l)
}

func (c *cluster) startWith(id int32, l net.Listener) {
	c.t.Helper()
	f := newFSM()
	_, learner := c.learners[id]
	cfg := Config{
		NodeID: id, Voters: c.voters, Learners: c.learners, Learner: learner, Dir: c.dirs[id], ClusterID: testClusterID,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", id),
		TickInterval: 10 * time.Millisecond, SnapshotEvery: c.opts.every,
		Apply: f.apply, Snapshot: f.snapshot, Restore: f.restore,
		OnLeaderChange: func(leader int32, _ uint64) {
			if leader == id {
				f.mu.Lock()
				f.ledAt = append(f.ledAt, len(f.data))
				f.mu.Unlock()
			}
		},
	}
	if c.opts.configure != nil {
		c.opts.configure(id, &cfg)
	}
	n, err := Open(cfg)
	if err != nil {
		l.Close()
		c.t.Fatalf("open node %d: %v", id, err)
	}
	filter := func(from, to int32) bool {
		d := c.drop.Load()
		return d != nil && (*d)(from, to)
	}
	n.tr.drop.Store(&filter)
	if c.opts.serve != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.opts.serve(n, l)
		}()
		c.closers[id] = func() {
			l.Close()
			<-done
		}
	} else {
		go n.Serve(l)
	}
	c.nodes[id], c.fsms[id] = n, f
}

func (c *cluster) stop(id int32) {
	c.t.Helper()
	if err := c.nodes[id].Close(); err != nil {
		c.t.Errorf("close node %d: %v", id, err)
	}
	if f := c.closers[id]; f != nil {
		f()
		delete(c.closers, id)
	}
	delete(c.nodes, id)
}

// isolate drops every message to and from the given nodes; nil heals.
func (c *cluster) isolate(ids ...int32) {
	if len(ids) == 0 {
		c.drop.Store(nil)
		return
	}
	f := func(from, to int32) bool { return slices.Contains(ids, from) != slices.Contains(ids, to) }
	c.drop.Store(&f)
}

// waitLeader waits until every node in among agrees on one leader that is
// itself in among, and returns it.
func (c *cluster) waitLeader(among ...int32) int32 {
	c.t.Helper()
	if len(among) == 0 {
		among = c.ids()
	}
	deadline := time.After(testTimeout)
	for {
		var chans []<-chan struct{}
		leader, agreed := int32(-1), true
		for i, id := range among {
			n := c.nodes[id]
			chans = append(chans, n.LeaderChanged())
			l, _ := n.Leader()
			if i == 0 {
				leader = l
			}
			agreed = agreed && l == leader
		}
		if agreed && slices.Contains(among, leader) {
			return leader
		}
		// Wake on any change.
		any := make(chan struct{})
		stop := make(chan struct{})
		for _, ch := range chans {
			go func() {
				select {
				case <-ch:
					select {
					case any <- struct{}{}:
					case <-stop:
					}
				case <-stop:
				}
			}()
		}
		select {
		case <-any:
			close(stop)
		case <-deadline:
			close(stop)
			c.t.Fatalf("no agreed leader among %v", among)
		}
	}
}

// propose proposes on whichever node of among leads, retrying through
// elections (only on ErrNotLeader, which means the entry did not and will
// not commit), and returns the committed index.
func (c *cluster) propose(data string, among ...int32) uint64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		leader := c.waitLeader(among...)
		idx, err := c.nodes[leader].Propose(ctx, []byte(data))
		if err == nil {
			return idx
		}
		var nl ErrNotLeader
		if !errors.As(err, &nl) || ctx.Err() != nil {
			c.t.Fatalf("propose %q on %d: %v", data, leader, err)
		}
	}
}
