package raft

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	etcdraft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
)

// ErrClosed is returned by calls on a closed node.
var ErrClosed = errors.New("raft: node closed")

// ErrRejected is wrapped by an Apply error that rejects one entry
// without stopping the node: the entry stays in the log but changes
// nothing, and Propose returns the error to its proposer. Apply must be
// deterministic so every node rejects the same entries.
var ErrRejected = errors.New("raft: entry rejected by the state machine")

// ErrNotLeader is returned by Propose on a node that is not the leader,
// and when a proposal was lost to a leader change (the entry at its index
// was replaced, so it will never commit). LeaderID is the leader this node
// knows, or -1.
type ErrNotLeader struct {
	LeaderID int32
}

func (e ErrNotLeader) Error() string {
	if e.LeaderID < 0 {
		return "raft: not the leader (leader unknown)"
	}
	return fmt.Sprintf("raft: not the leader (leader is node %d)", e.LeaderID)
}

// Entry is one committed log entry as the caller proposed it.
type Entry struct {
	Index uint64 // raft log index, increasing, with gaps (raft's own entries are not delivered)
	Term  uint64
	Data  []byte
}

// Config configures a Node.
type Config struct {
	// NodeID is this node's node.id (>= 0).
	NodeID int32
	// Voters maps each controller's node id to the host:port its raft
	// transport listens on (controller.quorum.voters).
	Voters map[int32]string
	// Learners maps broker-only node ids to their raft address. They
	// receive the log but never vote; the leader must know them to push
	// to them (etcd raft replicates by push). More are added at run time
	// with AddLearner, which the log and snapshots remember.
	Learners map[int32]string
	// Learner says this node is a learner: one of Learners, or a
	// broker-only node that waits for the leader to AddLearner it (until
	// then it hears nothing; it never campaigns).
	Learner bool
	// ClusterID authenticates transport connections: a peer whose hello
	// names another cluster is refused (at most 255 bytes).
	ClusterID string
	// Dir holds the raft files (the __cluster_metadata-0 directory).
	Dir    string
	Logger *slog.Logger

	TickInterval   time.Duration // default 100ms
	ElectionTicks  int           // default 10
	HeartbeatTicks int           // default 1
	// A snapshot is taken (and the log compacted) once any of these
	// holds for the entries applied since the last snapshot:
	//
	// SnapshotBytes: their payload bytes reach it. Kafka's
	// metadata.log.max.record.bytes.between.snapshots; default 20 MiB,
	// negative disables. It also bounds the log held in memory.
	SnapshotBytes int64
	// SnapshotInterval: at least one entry was applied and this long has
	// passed since the last snapshot (or Open). Kafka's
	// metadata.log.max.snapshot.interval.ms; default 1 h, negative
	// disables.
	SnapshotInterval time.Duration
	// SnapshotEvery: their number reaches it. 0 (the default) disables.
	SnapshotEvery uint64

	// Apply is called on the raft goroutine with every committed entry, in
	// order, exactly once per process lifetime: after a restart it
	// continues from the snapshot Restore was given. An error wrapping
	// ErrRejected rejects that entry only; any other error stops the
	// node (the state machine can no longer follow the log). It must not
	// block on the node (no Propose from inside it), and must not modify
	// Entry.Data, which raft still holds.
	Apply func(Entry) error
	// Snapshot serializes the state after the last applied entry. Called
	// on the raft goroutine.
	Snapshot func() ([]byte, error)
	// Restore replaces the state with a snapshot: at Open when one is on
	// disk, and when the leader sends one to a node that lags behind the
	// compacted log.
	Restore func([]byte) error
	// OnLeaderChange, if set, is called on the raft goroutine when the
	// known leader or term changes; leader is -1 while unknown. A node
	// is told it leads only once it has applied every entry of earlier
	// terms, so state it reads then is complete (Kafka's active
	// controller waits the same way before it writes). It must not block.
	OnLeaderChange func(leader int32, term uint64)
}

// Node is one member of the metadata quorum: it owns a RawNode driven by
// one goroutine (Tick, Step, Ready, Advance), its storage and transport.
type Node struct {
	cfg Config
	rn  *etcdraft.RawNode // owned by the run goroutine
	st  *diskStorage      // owned by the run goroutine
	tr  *transport

	propc     chan *proposal
	statusc   chan chan Status
	learnerc  chan learnerRequest
	recvc     chan *pb.Message
	reportc   chan report
	transferc chan int32
	stopc     chan struct{}
	done      chan struct{} // closed when run returns
	closeOnce sync.Once
	err       error // why run stopped; written before done closes

	seq atomic.Uint64 // proposal ids

	// Owned by the run goroutine.
	pending   map[uint64]*proposal
	applied   uint64
	snapIndex uint64
	// snapBytes counts payload bytes applied since the last snapshot;
	// snapAt is when it was taken (or Open). They trigger snapshots.
	snapBytes uint64
	snapAt    time.Time
	// snapNow asks for a snapshot at the next check: a learner was
	// added. The stored snapshot is what raft sends a node that needs
	// the compacted log, and etcd raft refuses one whose ConfState does
	// not list the receiver: without a fresh one, a learner added after
	// the last snapshot could not catch up until the next (up to
	// SnapshotInterval later).
	snapNow bool
	// lastContact is, per peer, when the leader last received a message
	// from it; caughtUp when such a message found its log matching the
	// leader's last index (DescribeQuorum's LastFetchTimestamp and
	// LastCaughtUpTimestamp). Reset when this node loses the lead.
	lastContact map[int32]time.Time
	caughtUp    map[int32]time.Time
	// learners maps every learner this node knows to its raft address
	// (configured, from the snapshot, from applied ConfChanges).
	learners map[int32]string
	lead     int32 // raft's view of the leader, -1 if unknown
	term     uint64
	// readyTerm is the term in which this node, as leader, applied an
	// entry of that term: only then is every entry of earlier terms
	// applied, so the caller's state is complete and it may validate new
	// proposals against it. The leader is ready while readyTerm == term.
	readyTerm uint64

	mu struct {
		sync.Mutex
		leader  int32
		term    uint64
		changed chan struct{} // closed and replaced on every leader/term change
		// learners is a copy of the run goroutine's learners;
		// learnersChanged is closed and replaced when it changes.
		learners        map[int32]string
		learnersChanged chan struct{}
	}
}

// learnerRequest asks the raft goroutine to propose adding a learner,
// or removing one.
type learnerRequest struct {
	id     int32
	addr   string // empty when remove is set
	remove bool
	done   chan error
}

type proposal struct {
	id    uint64
	data  []byte
	index uint64 // set once the entry is in the leader's log
	done  chan proposeResult
}

type proposeResult struct {
	index uint64
	err   error
}

// raft ids are node ids + 1: etcd raft reserves 0 for "none" and Kafka
// node ids start at 0.
func toRaftID(id int32) uint64 { return uint64(id) + 1 }

func fromRaftIDs(ids []uint64) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = fromRaftID(id)
	}
	return out
}

func fromRaftID(id uint64) int32 {
	if id == 0 || id > 1<<31 {
		return -1
	}
	return int32(id - 1)
}

// Open recovers the node's raft state from cfg.Dir, restores the caller's
// state from the snapshot there (if any) and starts the raft goroutine and
// the outbound transport. Inbound connections arrive through Serve or
// HandleConn. Committed entries after the snapshot are delivered to Apply
// again as the log is re-read.
func Open(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 100 * time.Millisecond
	}
	if cfg.ElectionTicks <= 0 {
		cfg.ElectionTicks = 10
	}
	if cfg.HeartbeatTicks <= 0 {
		cfg.HeartbeatTicks = 1
	}
	if cfg.SnapshotBytes == 0 {
		cfg.SnapshotBytes = 20 << 20
	}
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = time.Hour
	}
	if len(cfg.Voters) > maxHelloVoters {
		return nil, fmt.Errorf("raft: %d voters (at most %d)", len(cfg.Voters), maxHelloVoters)
	}
	if len(cfg.ClusterID) > maxClusterIDLen {
		return nil, fmt.Errorf("raft: cluster id of %d bytes (at most %d)", len(cfg.ClusterID), maxClusterIDLen)
	}
	if cfg.Apply == nil {
		return nil, errors.New("raft: Config.Apply is required")
	}
	if cfg.NodeID < 0 {
		return nil, fmt.Errorf("raft: node id %d", cfg.NodeID)
	}
	if len(cfg.Voters) == 0 {
		return nil, errors.New("raft: no voters")
	}
	addrs := map[int32]string{}
	cs := &pb.ConfState{}
	for id, a := range cfg.Voters {
		if id < 0 {
			return nil, fmt.Errorf("raft: voter id %d", id)
		}
		addrs[id] = a
		cs.Voters = append(cs.Voters, toRaftID(id))
	}
	for id, a := range cfg.Learners {
		if _, ok := cfg.Voters[id]; ok || id < 0 {
			return nil, fmt.Errorf("raft: node %d cannot be a learner", id)
		}
		addrs[id] = a
		cs.Learners = append(cs.Learners, toRaftID(id))
	}
	slices.Sort(cs.Voters)
	slices.Sort(cs.Learners)
	_, isVoter := cfg.Voters[cfg.NodeID]
	switch {
	case cfg.Learner && isVoter:
		return nil, fmt.Errorf("raft: node %d is a voter, not a learner", cfg.NodeID)
	case !cfg.Learner && !isVoter:
		return nil, fmt.Errorf("raft: node %d is not a voter", cfg.NodeID)
	}
	for id, a := range cfg.Learners {
		if len(a) > maxAddrLen {
			return nil, fmt.Errorf("raft: address of learner %d longer than %d bytes", id, maxAddrLen)
		}
	}

	st, snap, err := openStorage(cfg.Dir, cs)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, st: st,
		propc: make(chan *proposal), statusc: make(chan chan Status), learnerc: make(chan learnerRequest),
		recvc:   make(chan *pb.Message, 256),
		reportc: make(chan report, 256), transferc: make(chan int32),
		stopc: make(chan struct{}), done: make(chan struct{}),
		pending: map[uint64]*proposal{}, lead: -1, snapAt: time.Now(),
		lastContact: map[int32]time.Time{}, caughtUp: map[int32]time.Time{},
		learners: maps.Clone(cfg.Learners),
	}
	if n.learners == nil {
		n.learners = map[int32]string{}
	}
	n.mu.leader = -1
	n.mu.changed = make(chan struct{})
	if snap != nil {
		if cfg.Restore == nil {
			st.close()
			return nil, errors.New("raft: snapshot on disk but Config.Restore is nil")
		}
		learners, data, err := decodeSnapData(snap.GetData())
		if err != nil {
			st.close()
			return nil, err
		}
		if err := cfg.Restore(data); err != nil {
			st.close()
			return nil, fmt.Errorf("raft: restore snapshot %d: %w", snap.GetMetadata().GetIndex(), err)
		}
		maps.Copy(n.learners, learners)
		n.applied = snap.GetMetadata().GetIndex()
		n.snapIndex = n.applied
	}
	n.rn, err = etcdraft.NewRawNode(&etcdraft.Config{
		ID:              toRaftID(cfg.NodeID),
		ElectionTick:    cfg.ElectionTicks,
		HeartbeatTick:   cfg.HeartbeatTicks,
		Storage:         st,
		Applied:         n.applied,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		// CheckQuorum makes a leader cut off from a majority step down;
		// PreVote keeps a node returning from a partition from forcing
		// an election with its inflated term.
		CheckQuorum:               true,
		PreVote:                   true,
		DisableProposalForwarding: true,
		Logger:                    &raftLogger{l: cfg.Logger},
	})
	if err != nil {
		st.close()
		return nil, fmt.Errorf("raft: %w", err)
	}
	maps.Copy(addrs, n.learners)
	n.publishLearners()
	n.tr = newTransport(cfg.NodeID, cfg.ClusterID, fromRaftIDs(cs.Voters), addrs, n.recvc, n.reportc, cfg.Logger)
	// Deliver what was committed before the restart now, so the caller's
	// state is as complete as this node's log when Open returns (what
	// metadata.Log.Replay did).
	if err := n.handleReady(); err != nil {
		n.tr.close()
		st.close()
		return nil, err
	}
	go n.run()
	return n, nil
}

// Serve accepts raft connections on l until l or the node is closed. The
// node closes l on Close.
func (n *Node) Serve(l net.Listener) error { return n.tr.serve(l) }

// HandleConn serves one inbound raft connection (one that starts with
// HelloMagic) and returns when it ends. A listener shared with another
// protocol peeks at the first bytes and hands raft connections here; the
// bytes it peeked must still be readable from c.
func (n *Node) HandleConn(c net.Conn) { n.tr.handleConn(c) }

// Propose replicates data and returns its log index once it is committed
// and applied on this node (Apply has returned for it). On a node that is
// not the leader it fails with ErrNotLeader, and so it does as soon as
// this node stops leading before the entry is applied (the entry may
// still commit, if it reached a majority). If ctx ends first the
// proposal may still commit later.
func (n *Node) Propose(ctx context.Context, data []byte) (uint64, error) {
	p := &proposal{id: n.seq.Add(1), data: data, done: make(chan proposeResult, 1)}
	select {
	case n.propc <- p:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-n.done:
		return 0, n.closedErr()
	}
	select {
	case r := <-p.done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Leader returns the leader this node knows (-1 if none) and the term.
// A node reports itself as leader only once it has applied every entry
// of earlier terms (its state is complete): from then on Propose works.
func (n *Node) Leader() (id int32, term uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.leader, n.mu.term
}

// LeaderChanged returns a channel closed at the next change of Leader().
func (n *Node) LeaderChanged() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.changed
}

// WaitLeader waits until this node knows a leader (for the leader itself:
// until it is ready to take proposals) and returns it. The server uses it
// at startup before its first Propose.
func (n *Node) WaitLeader(ctx context.Context) (int32, error) {
	for {
		ch := n.LeaderChanged()
		if id, _ := n.Leader(); id >= 0 {
			return id, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-n.done:
			return -1, n.closedErr()
		}
	}
}

// TransferLeadership asks the leader to hand leadership to node to (a
// follower forwards the request to the leader) and waits until this node
// sees to as leader or ctx ends.
func (n *Node) TransferLeadership(ctx context.Context, to int32) error {
	if _, ok := n.cfg.Voters[to]; !ok {
		return fmt.Errorf("raft: node %d is not a voter", to)
	}
	select {
	case n.transferc <- to:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return n.closedErr()
	}
	for {
		ch := n.LeaderChanged()
		if id, _ := n.Leader(); id == to {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.done:
			return n.closedErr()
		}
	}
}

// Err returns why the node stopped on its own (an Apply, Restore or disk
// error), or nil while it runs.
func (n *Node) Err() error {
	select {
	case <-n.done:
		if errors.Is(n.err, ErrClosed) {
			return nil
		}
		return n.err
	default:
		return nil
	}
}

func (n *Node) closedErr() error {
	<-n.done
	return n.err
}

// Close stops the node: the raft goroutine, the transport (including
// listeners given to Serve) and the files. Pending proposals fail with
// ErrClosed. It returns the error that stopped the node earlier, if any.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { close(n.stopc) })
	<-n.done
	n.tr.close()
	if errors.Is(n.err, ErrClosed) {
		return nil
	}
	return n.err
}

// run is the raft goroutine.
func (n *Node) run() {
	err := n.loop()
	if err == nil {
		err = ErrClosed
	} else {
		n.cfg.Logger.Error("raft: node stopped", "err", err)
	}
	if cerr := n.st.close(); cerr != nil && errors.Is(err, ErrClosed) {
		err = cerr
	}
	n.err = err
	close(n.done)
	// After done closes, so a failed proposer finds Err() set.
	for _, p := range n.pending {
		p.done <- proposeResult{err: err}
	}
	n.pending = nil
}

func (n *Node) loop() error {
	t := time.NewTicker(n.cfg.TickInterval)
	defer t.Stop()
	// A lone voter need not wait an election timeout.
	if len(n.cfg.Voters) == 1 && !n.cfg.Learner {
		if err := n.rn.Campaign(); err != nil {
			return err
		}
	}
	for {
		if err := n.handleReady(); err != nil {
			return err
		}
		select {
		case <-n.stopc:
			return nil
		case <-t.C:
			n.rn.Tick()
			// Time-driven snapshots need no new Ready.
			if err := n.maybeSnapshot(); err != nil {
				return err
			}
		case m := <-n.recvc:
			now := time.Now()
			n.step(m, now)
			// Take what else has arrived, so one Ready (one fsync)
			// covers a burst of appends.
			for range 64 {
				select {
				case m := <-n.recvc:
					n.step(m, now)
					continue
				default:
				}
				break
			}
			n.trackCaughtUp()
		case p := <-n.propc:
			n.propose(p)
		case c := <-n.statusc:
			c <- n.status()
		case r := <-n.learnerc:
			r.done <- n.proposeLearner(r)
		case r := <-n.reportc:
			switch {
			case r.snapshot && r.failed:
				n.rn.ReportSnapshot(r.to, etcdraft.SnapshotFailure)
			case r.snapshot:
				n.rn.ReportSnapshot(r.to, etcdraft.SnapshotFinish)
			default:
				n.rn.ReportUnreachable(r.to)
			}
		case to := <-n.transferc:
			n.rn.TransferLeader(toRaftID(to))
		}
	}
}

// AddLearner makes node id, at raft address addr, a learner: the leader
// proposes a ConfChange and this returns once this node has applied it
// (the controller calls it when a broker-only node registers). Adding a
// known learner at a new address moves it. Only the ready leader may add
// (ErrNotLeader); raft drops a change proposed while another is in
// flight, in which case ctx ends first and the caller retries.
func (n *Node) AddLearner(ctx context.Context, id int32, addr string) error {
	switch _, voter := n.cfg.Voters[id]; {
	case id < 0 || voter:
		return fmt.Errorf("raft: node %d cannot be a learner", id)
	case addr == "" || len(addr) > maxAddrLen:
		return fmt.Errorf("raft: learner address %q (1 to %d bytes)", addr, maxAddrLen)
	}
	r := learnerRequest{id: id, addr: addr, done: make(chan error, 1)}
	return n.changeLearner(ctx, r, func(got string, ok bool) bool { return ok && got == addr })
}

// RemoveLearner drops learner id from the quorum: the leader proposes a
// RemoveNode ConfChange and this returns once this node has applied it
// (the controller calls it once a broker-only node is unregistered).
// Every node that applies the change forgets the learner: the leader
// stops replicating to it, each transport ends its peer and closes its
// connections, snapshots no longer list it. Removing an id that is not a
// learner succeeds and changes nothing; a voter, or a learner given in
// Config.Learners (re-added at every Open), cannot be removed. Only the
// ready leader may remove (ErrNotLeader); as with AddLearner, a change
// proposed while another is in flight is dropped by raft and ctx ends
// first. The removed node, if still running, keeps its log and hears
// nothing more; AddLearner makes it a learner again.
func (n *Node) RemoveLearner(ctx context.Context, id int32) error {
	_, voter := n.cfg.Voters[id]
	_, static := n.cfg.Learners[id]
	switch {
	case id < 0 || voter:
		return fmt.Errorf("raft: node %d is not a learner and cannot be removed", id)
	case static:
		return fmt.Errorf("raft: learner %d is configured (Config.Learners) and cannot be removed", id)
	}
	r := learnerRequest{id: id, remove: true, done: make(chan error, 1)}
	return n.changeLearner(ctx, r, func(_ string, ok bool) bool { return !ok })
}

// changeLearner hands r to the raft goroutine and waits until this
// node's learners show the change: applied gets r.id's address and
// whether it is a learner.
func (n *Node) changeLearner(ctx context.Context, r learnerRequest, applied func(addr string, ok bool) bool) error {
	select {
	case n.learnerc <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return n.closedErr()
	}
	select {
	case err := <-r.done:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		n.mu.Lock()
		ch := n.mu.learnersChanged
		addr, ok := n.mu.learners[r.id]
		n.mu.Unlock()
		if applied(addr, ok) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.done:
			return n.closedErr()
		}
	}
}

// Learners returns the learners this node knows, with their addresses.
func (n *Node) Learners() map[int32]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return maps.Clone(n.mu.learners)
}

// proposeLearner runs on the raft goroutine for AddLearner and
// RemoveLearner.
func (n *Node) proposeLearner(r learnerRequest) error {
	if !n.ready() {
		return ErrNotLeader{LeaderID: n.lead}
	}
	cc := &pb.ConfChange{Type: new(pb.ConfChangeAddLearnerNode), NodeId: new(toRaftID(r.id)), Context: []byte(r.addr)}
	if _, known := n.learners[r.id]; r.remove {
		if !known {
			return nil
		}
		cc = &pb.ConfChange{Type: new(pb.ConfChangeRemoveNode), NodeId: new(toRaftID(r.id))}
	} else if known && n.learners[r.id] == r.addr {
		return nil
	}
	if err := n.rn.ProposeConfChange(cc); err != nil {
		return ErrNotLeader{LeaderID: -1}
	}
	return nil
}

// applyConfChange applies a committed ConfChange: AddLearnerNode and
// RemoveNode of a learner are the only ones proposed. It runs on every
// node, and again for entries after the snapshot when the log is
// replayed at Open, so the membership it leaves is a function of the log.
func (n *Node) applyConfChange(cc *pb.ConfChange) {
	id := fromRaftID(cc.GetNodeId())
	_, voter := n.cfg.Voters[id]
	typ := cc.GetType()
	if typ != pb.ConfChangeAddLearnerNode && typ != pb.ConfChangeRemoveNode || id < 0 || voter {
		// Never proposed by this package; applying it could demote or
		// remove a configured voter.
		n.cfg.Logger.Warn("raft: conf change ignored", "type", typ.String(), "node", id)
		return
	}
	// RemoveNode of an id raft does not know is a no-op for raft.
	n.st.setConfState(n.rn.ApplyConfChange(cc))
	if typ == pb.ConfChangeRemoveNode {
		n.dropLearner(id)
		return
	}
	n.setLearner(id, string(cc.GetContext()))
	n.snapNow = true
}

// setLearner records learner id at addr and tells the transport.
func (n *Node) setLearner(id int32, addr string) {
	if n.learners[id] == addr {
		return
	}
	n.learners[id] = addr
	n.tr.setPeer(id, addr)
	n.publishLearners()
	n.cfg.Logger.Info("raft: learner added", "node", id, "addr", addr)
}

// dropLearner forgets learner id: the transport ends its peer and
// closes its connections, DescribeQuorum stops listing it.
func (n *Node) dropLearner(id int32) {
	if _, ok := n.learners[id]; !ok {
		return
	}
	delete(n.learners, id)
	delete(n.lastContact, id)
	delete(n.caughtUp, id)
	n.tr.removePeer(id)
	n.publishLearners()
	if id == n.cfg.NodeID {
		// Harmless: raft no longer counts this node, it hears nothing
		// more and never campaigns (it is not promotable).
		n.cfg.Logger.Warn("raft: this node was removed from the quorum's learners", "node", id)
		return
	}
	n.cfg.Logger.Info("raft: learner removed", "node", id)
}

func (n *Node) publishLearners() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.learners = maps.Clone(n.learners)
	if n.mu.learnersChanged != nil {
		close(n.mu.learnersChanged)
	}
	n.mu.learnersChanged = make(chan struct{})
}

// step hands m to raft and notes the contact for DescribeQuorum.
func (n *Node) step(m *pb.Message, now time.Time) {
	if n.lead == n.cfg.NodeID {
		n.lastContact[fromRaftID(m.GetFrom())] = now
	}
	// Errors here are stale or foreign messages raft ignores.
	_ = n.rn.Step(m)
}

// trackCaughtUp records, on the leader, which peers matched its last
// index when they last answered.
func (n *Node) trackCaughtUp() {
	if n.lead != n.cfg.NodeID {
		return
	}
	last, _ := n.st.LastIndex()
	n.rn.WithProgress(func(id uint64, _ etcdraft.ProgressType, pr tracker.Progress) {
		peer := fromRaftID(id)
		if at, ok := n.lastContact[peer]; ok && pr.Match >= last {
			n.caughtUp[peer] = at
		}
	})
}

// ready reports whether this node leads and may take proposals.
func (n *Node) ready() bool { return n.lead == n.cfg.NodeID && n.readyTerm == n.term }

func (n *Node) propose(p *proposal) {
	if n.lead != n.cfg.NodeID {
		p.done <- proposeResult{err: ErrNotLeader{LeaderID: n.lead}}
		return
	}
	if !n.ready() {
		p.done <- proposeResult{err: ErrNotLeader{LeaderID: -1}}
		return
	}
	if err := n.rn.Propose(encodeEnvelope(n.cfg.NodeID, p.id, p.data)); err != nil {
		// Dropped: a leadership transfer is under way or we just lost
		// the lead.
		p.done <- proposeResult{err: ErrNotLeader{LeaderID: -1}}
		return
	}
	n.pending[p.id] = p
}

// handleReady persists, sends and applies what raft has ready, in the
// order raft requires: snapshot and entries and hard state durable before
// messages go out and before Advance.
func (n *Node) handleReady() error {
	for n.rn.HasReady() {
		rd := n.rn.Ready()
		deposed := false
		if rd.SoftState != nil {
			lead := fromRaftID(rd.SoftState.Lead)
			if lead != n.cfg.NodeID {
				clear(n.lastContact)
				clear(n.caughtUp)
				deposed = n.lead == n.cfg.NodeID
			}
			n.lead = lead
		}
		snap := rd.Snapshot
		if !etcdraft.IsEmptySnap(snap) {
			if err := n.st.installSnapshot(snap); err != nil {
				return err
			}
		}
		if err := n.st.save(rd.HardState, rd.Entries, rd.MustSync); err != nil {
			return err
		}
		if t := rd.HardState.GetTerm(); t != 0 {
			n.term = t
		}
		for _, e := range rd.Entries {
			if from, id, _, ok := decodeEnvelope(e); ok && from == n.cfg.NodeID {
				if p := n.pending[id]; p != nil {
					p.index = e.GetIndex()
				}
			}
		}
		n.tr.send(rd.Messages)
		if !etcdraft.IsEmptySnap(snap) {
			if n.cfg.Restore == nil {
				return errors.New("raft: received a snapshot but Config.Restore is nil")
			}
			learners, data, err := decodeSnapData(snap.GetData())
			if err != nil {
				return err
			}
			if err := n.cfg.Restore(data); err != nil {
				return fmt.Errorf("raft: restore snapshot %d: %w", snap.GetMetadata().GetIndex(), err)
			}
			for id, a := range learners {
				n.setLearner(id, a)
			}
			// The snapshot's membership replaces ours: a learner
			// removed in the compacted log is gone (configured ones
			// stay, as at Open).
			for id := range n.learners {
				_, kept := learners[id]
				if _, static := n.cfg.Learners[id]; !kept && !static {
					n.dropLearner(id)
				}
			}
			n.applied = snap.GetMetadata().GetIndex()
			n.snapIndex = n.applied
			n.snapBytes, n.snapAt = 0, time.Now()
		}
		if err := n.apply(rd.CommittedEntries); err != nil {
			return err
		}
		// Leadership is published before the pending proposals fail,
		// so a proposer woken by ErrNotLeader already finds this node
		// not leading (Leader, the MetadataLog's Active).
		n.publishLeader()
		if deposed {
			n.failPending()
		}
		n.rn.Advance(rd)
		if err := n.maybeSnapshot(); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) apply(ents []*pb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	for _, e := range ents {
		if e.GetIndex() <= n.applied {
			continue
		}
		n.applied = e.GetIndex()
		n.snapBytes += uint64(len(e.GetData()))
		if n.lead == n.cfg.NodeID && e.GetTerm() == n.term {
			n.readyTerm = n.term
		}
		if e.GetType() == pb.EntryConfChange {
			cc := &pb.ConfChange{}
			if err := proto.Unmarshal(e.GetData(), cc); err != nil {
				return fmt.Errorf("%w: entry %d: conf change: %v", ErrCorrupt, e.GetIndex(), err)
			}
			n.applyConfChange(cc)
			continue
		}
		if e.GetType() != pb.EntryNormal || len(e.GetData()) == 0 {
			continue // a new leader's empty entry (ConfChangeV2 is not used)
		}
		from, id, data, ok := decodeEnvelope(e)
		if !ok {
			return fmt.Errorf("%w: entry %d has no envelope", ErrCorrupt, e.GetIndex())
		}
		res := proposeResult{index: e.GetIndex()}
		if err := n.cfg.Apply(Entry{Index: e.GetIndex(), Term: e.GetTerm(), Data: data}); err != nil {
			if !errors.Is(err, ErrRejected) {
				return fmt.Errorf("raft: apply entry %d: %w", e.GetIndex(), err)
			}
			res = proposeResult{err: err}
		}
		if from == n.cfg.NodeID {
			if p := n.pending[id]; p != nil {
				delete(n.pending, id)
				p.done <- res
			}
		}
	}
	// A proposal whose index is applied without having been matched lost
	// its slot to another leader's entry: it will never commit.
	for id, p := range n.pending {
		if p.index != 0 && p.index <= n.applied {
			delete(n.pending, id)
			p.done <- proposeResult{err: ErrNotLeader{LeaderID: n.lead}}
		}
	}
	return nil
}

// failPending fails every pending proposal with ErrNotLeader once this
// node no longer leads (CheckQuorum made an isolated leader step down,
// or a higher term arrived), after the entries committed in the same
// Ready were applied: a proposer learns at once, not when the network
// heals. Such an entry may still commit later if it reached a majority
// before (as Kafka's controller, on resigning, fails its in-flight
// writes with NOT_CONTROLLER although they may still commit).
func (n *Node) failPending() {
	for id, p := range n.pending {
		delete(n.pending, id)
		p.done <- proposeResult{err: ErrNotLeader{LeaderID: n.lead}}
	}
}

// snapshotDue reports whether the entries applied since the last
// snapshot call for a new one (see Config.SnapshotBytes).
func (n *Node) snapshotDue() bool {
	c := &n.cfg
	switch {
	case c.Snapshot == nil || n.applied <= n.snapIndex:
		return false
	case n.snapNow && n.snapIndex > 0:
		return true // a compacted log: see snapNow
	case c.SnapshotEvery > 0 && n.applied-n.snapIndex >= c.SnapshotEvery:
		return true
	case c.SnapshotBytes > 0 && n.snapBytes >= uint64(c.SnapshotBytes):
		return true
	default:
		return c.SnapshotInterval > 0 && time.Since(n.snapAt) >= c.SnapshotInterval
	}
}

func (n *Node) maybeSnapshot() error {
	if !n.snapshotDue() {
		return nil
	}
	data, err := n.cfg.Snapshot()
	if err != nil {
		return fmt.Errorf("raft: snapshot at %d: %w", n.applied, err)
	}
	if _, err := n.st.snapshot(n.applied, encodeSnapData(n.learners, data)); err != nil {
		return err
	}
	n.cfg.Logger.Debug("raft: snapshot taken, log compacted", "index", n.applied, "bytes_since_last", n.snapBytes)
	n.snapIndex = n.applied
	n.snapBytes, n.snapAt = 0, time.Now()
	n.snapNow = false
	return nil
}

// publishLeader makes the loop's view of the leader visible to Leader and
// LeaderChanged, and calls OnLeaderChange. A new leader reports itself
// only once it is ready (see Node.ready); until then it reports -1.
func (n *Node) publishLeader() {
	lead := n.lead
	if lead == n.cfg.NodeID && !n.ready() {
		lead = -1
	}
	n.mu.Lock()
	if n.mu.leader == lead && n.mu.term == n.term {
		n.mu.Unlock()
		return
	}
	n.mu.leader, n.mu.term = lead, n.term
	close(n.mu.changed)
	n.mu.changed = make(chan struct{})
	n.mu.Unlock()
	if n.cfg.OnLeaderChange != nil {
		n.cfg.OnLeaderChange(lead, n.term)
	}
}

// An entry's data is an envelope around the caller's bytes that names the
// proposing node and its proposal id, so the proposer can tell its own
// entries when they commit:
//
//	| version u8 = 1 | proposer i32BE | proposal id u64BE | data |
const envelopeLen = 13

func encodeEnvelope(from int32, id uint64, data []byte) []byte {
	b := make([]byte, envelopeLen, envelopeLen+len(data))
	b[0] = 1
	binary.BigEndian.PutUint32(b[1:5], uint32(from))
	binary.BigEndian.PutUint64(b[5:13], id)
	return append(b, data...)
}

func decodeEnvelope(e *pb.Entry) (from int32, id uint64, data []byte, ok bool) {
	b := e.GetData()
	if e.GetType() != pb.EntryNormal || len(b) < envelopeLen || b[0] != 1 {
		return 0, 0, nil, false
	}
	return int32(binary.BigEndian.Uint32(b[1:5])), binary.BigEndian.Uint64(b[5:13]), b[envelopeLen:], true
}

// raftLogger sends etcd raft's logging to slog.
type raftLogger struct{ l *slog.Logger }

func (r *raftLogger) Debug(v ...any)                 { r.l.Debug(fmt.Sprint(v...)) }
func (r *raftLogger) Debugf(format string, v ...any) { r.l.Debug(fmt.Sprintf(format, v...)) }
func (r *raftLogger) Info(v ...any)                  { r.l.Debug(fmt.Sprint(v...)) }
func (r *raftLogger) Infof(format string, v ...any)  { r.l.Debug(fmt.Sprintf(format, v...)) }
func (r *raftLogger) Warning(v ...any)               { r.l.Warn(fmt.Sprint(v...)) }
func (r *raftLogger) Warningf(format string, v ...any) {
	r.l.Warn(fmt.Sprintf(format, v...))
}
func (r *raftLogger) Error(v ...any)                 { r.l.Error(fmt.Sprint(v...)) }
func (r *raftLogger) Errorf(format string, v ...any) { r.l.Error(fmt.Sprintf(format, v...)) }
func (r *raftLogger) Fatal(v ...any)                 { r.Panic(v...) }
func (r *raftLogger) Fatalf(format string, v ...any) { r.Panicf(format, v...) }
func (r *raftLogger) Panic(v ...any) {
	s := fmt.Sprint(v...)
	r.l.Error(s)
	panic(s)
}
func (r *raftLogger) Panicf(format string, v ...any) {
	s := fmt.Sprintf(format, v...)
	r.l.Error(s)
	panic(s)
}
