package raft

import (
	"context"
	"slices"
	"time"

	etcdraft "go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"
)

// Status is a node's view of the quorum, shaped for DescribeQuorum (API
// 55). Raft index i is Kafka offset i-1, so a replica's log end offset is
// the index of its last entry and the high watermark is the commit index.
type Status struct {
	NodeID   int32
	LeaderID int32  // -1 while unknown (or while this node leads but is not ready)
	Term     uint64 // the leader epoch
	// HighWatermark is this node's commit index: every entry at or
	// below it is committed.
	HighWatermark uint64
	Applied       uint64 // index of the last entry applied here
	SnapshotIndex uint64 // index of the newest snapshot (0: none); the log starts after it
	// Voters and Learners are sorted by node id. Only the leader knows
	// its peers' progress: elsewhere a peer's LogEndOffset is -1 and its
	// times are zero; this node's own entry is always filled in.
	Voters   []ReplicaStatus
	Learners []ReplicaStatus
}

// ReplicaStatus is one member's replication progress.
type ReplicaStatus struct {
	NodeID int32
	// LogEndOffset is the index of the last entry known to be on the
	// replica (raft's Match); -1 when unknown.
	LogEndOffset int64
	// LastFetch is when the leader last heard from the replica (Kafka's
	// LastFetchTimestamp); zero when unknown.
	LastFetch time.Time
	// LastCaughtUp is the last such time at which the replica held the
	// leader's last entry (Kafka's LastCaughtUpTimestamp); zero when
	// unknown.
	LastCaughtUp time.Time
}

// Status returns the node's view of the quorum. It is answered by the
// raft goroutine; ctx bounds the wait.
func (n *Node) Status(ctx context.Context) (Status, error) {
	c := make(chan Status, 1)
	select {
	case n.statusc <- c:
	case <-ctx.Done():
		return Status{}, ctx.Err()
	case <-n.done:
		return Status{}, n.closedErr()
	}
	select {
	case s := <-c:
		return s, nil
	case <-ctx.Done():
		return Status{}, ctx.Err()
	}
}

// status builds Status on the raft goroutine.
func (n *Node) status() Status {
	bs := n.rn.BasicStatus()
	lead := n.lead
	if lead == n.cfg.NodeID && !n.ready() {
		lead = -1
	}
	s := Status{NodeID: n.cfg.NodeID, LeaderID: lead, Term: n.term, HighWatermark: bs.HardState.GetCommit(), Applied: n.applied, SnapshotIndex: n.snapIndex}
	last, _ := n.st.LastIndex()
	now := time.Now()
	progress := map[int32]tracker.Progress{}
	if n.lead == n.cfg.NodeID {
		n.rn.WithProgress(func(id uint64, _ etcdraft.ProgressType, pr tracker.Progress) {
			progress[fromRaftID(id)] = pr
		})
	}
	member := func(id int32) ReplicaStatus {
		r := ReplicaStatus{NodeID: id, LogEndOffset: -1}
		switch pr, ok := progress[id]; {
		case id == n.cfg.NodeID:
			r.LogEndOffset, r.LastFetch, r.LastCaughtUp = int64(last), now, now
		case ok:
			r.LogEndOffset = int64(pr.Match)
			r.LastFetch, r.LastCaughtUp = n.lastContact[id], n.caughtUp[id]
		}
		return r
	}
	for id := range n.cfg.Voters {
		s.Voters = append(s.Voters, member(id))
	}
	for id := range n.learners {
		s.Learners = append(s.Learners, member(id))
	}
	byID := func(a, b ReplicaStatus) int { return int(a.NodeID) - int(b.NodeID) }
	slices.SortFunc(s.Voters, byID)
	slices.SortFunc(s.Learners, byID)
	return s
}
