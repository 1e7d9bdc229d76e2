package raft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"samsa/internal/metadata"
)

// MetadataLog is the cluster's metadata.Quorum on a raft Node: entries
// are metadata.EncodeEntry payloads, snapshots are the image written as
// records (metadata.EncodeSnapshot), and every node, leader included,
// builds its images only from committed entries, on the raft goroutine,
// and hands them to its Publisher's publishing goroutine (Offer), so
// listeners never run on the raft goroutine and a slow one cannot delay
// heartbeats.
//
// Image.Offset is the raft index of the last applied entry and
// Image.ControllerID follows the raft leader. The active controller is
// the raft leader once it is ready (Node.Leader) and its publisher has
// published the image of that moment: only then does Active report true.
type MetadataLog struct {
	node   *Node
	pub    *metadata.Publisher
	stop   func() // stops the publishing goroutine
	self   int32
	logger *slog.Logger

	// applied is the image after the last applied entry, with the
	// current ControllerID. Written on the raft goroutine (Apply,
	// Restore, OnLeaderChange); read there by Snapshot and anywhere by
	// Applied.
	applied atomic.Pointer[metadata.Image]

	mu struct {
		sync.Mutex
		// leader and term are raft's, as last told to OnLeaderChange.
		leader int32
		term   uint64
		// activeSeq is the publisher sequence number of the image
		// offered when this node became leader in term: Active once it
		// is published. Guarded by mu, which is held across that Offer.
		activeSeq uint64
		closed    bool
	}
}

var _ metadata.Quorum = (*MetadataLog)(nil)

// OpenMetadataLog opens the raft node described by cfg (cfg.Apply,
// Snapshot, Restore and OnLeaderChange must be unset: the log sets them),
// replays the snapshot and the committed entries on disk and publishes the
// resulting image before it returns.
func OpenMetadataLog(cfg Config) (*MetadataLog, error) {
	if cfg.Apply != nil || cfg.Snapshot != nil || cfg.Restore != nil || cfg.OnLeaderChange != nil {
		return nil, errors.New("raft: OpenMetadataLog sets the Config callbacks itself")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &MetadataLog{self: cfg.NodeID, logger: cfg.Logger}
	l.mu.leader = -1
	empty := metadata.Empty(cfg.ClusterID)
	l.applied.Store(empty)
	l.pub = metadata.NewPublisher(empty)
	l.stop = l.pub.Start()
	cfg.Apply = l.apply
	cfg.Snapshot = func() ([]byte, error) { return metadata.EncodeSnapshot(l.applied.Load()) }
	cfg.Restore = l.restore
	cfg.OnLeaderChange = l.leaderChanged
	n, err := Open(cfg)
	if err != nil {
		l.stop()
		return nil, err
	}
	l.node = n
	// Open applied what was committed on disk; publish it before
	// returning, as LocalLog.Replay did. Nobody else can subscribe yet,
	// so this takes no longer than the offers themselves.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.pub.WaitOffset(ctx, l.applied.Load().Offset); err != nil {
		l.Close()
		return nil, fmt.Errorf("raft: publish the replayed image: %w", err)
	}
	return l, nil
}

// apply runs on the raft goroutine for every committed entry.
func (l *MetadataLog) apply(e Entry) error {
	recs, err := metadata.DecodeEntry(e.Data)
	if err != nil {
		// Written by a leader, so not a torn write: this node cannot
		// follow the log (a newer format, or damage raft did not catch).
		return fmt.Errorf("entry %d: %w", e.Index, err)
	}
	next, err := l.applied.Load().ApplyEntry(int64(e.Index), recs)
	if err != nil {
		// Deterministic: every node rejects this entry alike. The
		// controller validates first, so this is a race or a bug.
		l.logger.Warn("raft: metadata entry rejected: it does not apply to the image", "index", e.Index, "err", err)
		return fmt.Errorf("%w: %w: entry %d: %w", ErrRejected, metadata.ErrRejected, e.Index, err)
	}
	l.applied.Store(next)
	l.pub.Offer(next)
	return nil
}

// restore runs on the raft goroutine with a snapshot (at Open, or from
// the leader when this node lagged behind the compacted log).
func (l *MetadataLog) restore(b []byte) error {
	cur := l.applied.Load()
	im, err := metadata.DecodeSnapshot(cur.ClusterID, b)
	if err != nil {
		return err
	}
	im.ControllerID = cur.ControllerID
	l.applied.Store(im)
	l.pub.Offer(im)
	return nil
}

// leaderChanged runs on the raft goroutine (or in Open) when raft's
// leader or term changes. The image follows the leader; a node that now
// leads becomes active once that image is published, after every earlier
// one.
func (l *MetadataLog) leaderChanged(leader int32, term uint64) {
	cur := l.applied.Load()
	if cur.ControllerID != leader {
		next := *cur
		next.ControllerID = leader
		cur = &next
		l.applied.Store(cur)
	}
	// Offer under mu: whoever wakes on the publication and calls Active
	// must find the leader and activeSeq it belongs to (lock order: mu,
	// then the publisher's).
	l.mu.Lock()
	defer l.mu.Unlock()
	seq := l.pub.Offer(cur)
	l.mu.leader, l.mu.term = leader, term
	if leader == l.self {
		l.mu.activeSeq = seq
	}
}

// Append implements metadata.Quorum.
func (l *MetadataLog) Append(ctx context.Context, recs []metadata.Record) (int64, error) {
	off, err := l.Commit(ctx, recs)
	if err != nil {
		return off, err
	}
	return off, l.pub.WaitOffset(ctx, off)
}

// Commit implements metadata.Quorum: Propose returns once the entry is
// committed and applied on this node (Applied includes it).
func (l *MetadataLog) Commit(ctx context.Context, recs []metadata.Record) (int64, error) {
	l.mu.Lock()
	closed, leader := l.mu.closed, l.mu.leader
	l.mu.Unlock()
	if closed {
		return 0, metadata.ErrClosed
	}
	if ok, _ := l.Active(); !ok {
		if leader == l.self {
			leader = -1 // elected, not active yet
		}
		return 0, &metadata.NotControllerError{ControllerID: leader}
	}
	if len(recs) == 0 {
		return l.applied.Load().Offset, nil
	}
	data, err := metadata.EncodeEntry(recs)
	if err != nil {
		return 0, err
	}
	idx, err := l.node.Propose(ctx, data)
	var nl ErrNotLeader
	switch {
	case errors.As(err, &nl):
		return 0, &metadata.NotControllerError{ControllerID: nl.LeaderID}
	case errors.Is(err, ErrClosed):
		return 0, metadata.ErrClosed
	case err != nil:
		return 0, err
	}
	return int64(idx), nil
}

// Active implements metadata.Quorum.
func (l *MetadataLog) Active() (bool, int32) {
	l.mu.Lock()
	leader, term, seq, closed := l.mu.leader, l.mu.term, l.mu.activeSeq, l.mu.closed
	l.mu.Unlock()
	epoch := int32(min(term, 1<<31-1))
	if closed || leader != l.self || (l.node != nil && l.node.Err() != nil) {
		return false, epoch
	}
	return l.pub.PublishedSeq() >= seq, epoch
}

// Publisher implements metadata.Quorum.
func (l *MetadataLog) Publisher() *metadata.Publisher { return l.pub }

// Applied returns the image after the last applied entry, which the
// publisher may not have published yet.
func (l *MetadataLog) Applied() *metadata.Image { return l.applied.Load() }

// Node returns the raft node: for Status (DescribeQuorum), Divert and
// HandleConn (the CONTROLLER listener), Serve, TransferLeadership.
func (l *MetadataLog) Node() *Node { return l.node }

// Close implements metadata.Quorum: it stops the raft node, then the
// publishing goroutine (after publishing what was applied).
func (l *MetadataLog) Close() error {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return nil
	}
	l.mu.closed = true
	l.mu.Unlock()
	var err error
	if l.node != nil {
		err = l.node.Close()
	}
	l.stop()
	return err
}
