package replica

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"samsa/internal/metadata"
	"samsa/internal/storage"
)

// This file is one partition's replication state and its role changes
// (Kafka's Partition.makeLeader / makeFollower). The leader side (follower
// states, high watermark, ISR changes) is in leader.go, reads in fetch.go,
// the waiting produces and fetches in purgatory.go, the follower's writes
// in follower.go.

// partitionState is the snapshot of a partition's role the hot paths read
// with one atomic load (Append, Fetch, WaitReplicated's fast path).
// Immutable; replaced as a whole under Partition.mu (and roleMu for
// role changes), so it always agrees with mu's fields.
type partitionState struct {
	leader         int32 // broker id of the leader, -1 none
	leaderEpoch    int32
	partitionEpoch int32 // of the assignment and ISR this broker applied last
	isLeader       bool  // leader == this broker and the partition is not removed
	// isrSize is the committed ISR's size (not the maximal ISR): what
	// acks=all checks against minISR, as Kafka's Partition.inSyncReplicaIds.
	isrSize int
	minISR  int // the topic's min.insync.replicas
	// sole is set on a leader that is the partition's only replica: the
	// high watermark follows the log end offset after every append, with
	// no follower to look at (the single-node fast path).
	sole    bool
	removed bool // the partition left this broker (topic deleted, reassigned)
}

// followerState is the leader's view of one follower replica, updated by
// the follower's fetches (Kafka's Replica/ReplicaState). Guarded by
// Partition.mu.
type followerState struct {
	// logEndOffset is the follower's log end offset: the offset of its
	// last fetch. -1 when unknown (no fetch in this leader epoch).
	logEndOffset int64
	// logStartOffset is the follower's log start offset from its last
	// fetch, -1 when unknown.
	logStartOffset int64
	// lastFetchLeaderLogEndOffset is the leader's log end offset when the
	// follower fetched last; lastFetchTimeMs when that was (ms).
	lastFetchLeaderLogEndOffset int64
	lastFetchTimeMs             int64
	// lastCaughtUpTimeMs is the last time (ms) the follower had every
	// record the leader had at some fetch (Kafka's lastCaughtUpTimeMs:
	// a follower fetching offset >= the leader's log end offset at its
	// previous fetch was caught up at that previous fetch).
	lastCaughtUpTimeMs int64
	// brokerEpoch is the follower broker's epoch from its fetches
	// (Fetch v15 ReplicaState, KIP-903), -1 unknown.
	brokerEpoch int64
}

// caughtUp reports whether the follower counts as in sync at nowMs:
// it has the leader's whole log, or was caught up within lagMs (Kafka's
// ReplicaState.isCaughtUp).
func (f *followerState) caughtUp(leaderEndOffset, nowMs, lagMs int64) bool {
	return f.logEndOffset == leaderEndOffset || nowMs-f.lastCaughtUpTimeMs <= lagMs
}

// resetFollower is a follower's state when this broker becomes leader
// (Kafka's Replica.resetReplicaState): a member of the ISR counts as
// caught up now (it gets a whole lag time to fetch), any other replica as
// never caught up. Its log end offset is unknown until it fetches.
func resetFollower(inISR bool, nowMs, leaderEndOffset int64) *followerState {
	f := &followerState{logEndOffset: -1, logStartOffset: -1, lastFetchLeaderLogEndOffset: -1, brokerEpoch: -1}
	if inISR {
		f.lastCaughtUpTimeMs, f.lastFetchTimeMs, f.lastFetchLeaderLogEndOffset = nowMs, nowMs, leaderEndOffset
	}
	return f
}

// pendingISR is an AlterPartition in flight (Kafka's PendingExpandIsr /
// PendingShrinkIsr).
type pendingISR struct {
	isr []int32 // the ISR proposed to the controller
	// maximal is the committed ISR united with the proposed one: the
	// high watermark waits for all of them while the change is in flight
	// (Kafka's "maximal ISR"), so neither an expansion nor a shrink can
	// expose a record that the ISR finally agreed on does not hold.
	maximal []int32
}

// Partition is one partition this broker holds a replica of, as leader or
// follower.
//
// Lock order: roleMu, then mu, then the log's locks (storage), then
// waiters.mu. roleMu is Kafka's leaderIsrUpdateLock: appends, reads and
// follower writes hold it for reading, role changes for writing, so no
// append stamped with an old leader epoch lands after the role changed and
// no read straddles a truncation. mu guards the replication state; it is
// never held across I/O other than the log's in-memory offset calls, nor
// while waiting. state is written under mu and read without it.
//
// The high watermark lives in the log (storage clamps it: log start <= HW
// <= LEO). On a leader it only moves forward: every move is
// maybeIncrementHighWatermarkLocked under mu, which only raises it (or the
// single-replica append, under mu too). On a
// follower it is min(leader's HW, own LEO) and may go back after a leader
// change (follower.go).
type Partition struct {
	log     *storage.Log
	m       *Manager
	topic   string
	index   int32
	topicID metadata.UUID

	roleMu sync.RWMutex

	// state is the snapshot of mu's role fields (see partitionState).
	state atomic.Pointer[partitionState]
	// leaderHW is the high watermark the leader sent with the last fetch
	// this follower stored (DescribeLogDirs' OffsetLag); 0 before any.
	leaderHW atomic.Int64

	mu struct {
		sync.Mutex
		// replicas is the assignment from the image; isr the committed
		// ISR (from the image, or from an AlterPartition answer with a
		// newer partition epoch). Invariant: isr ⊆ replicas, and on a
		// leader this broker is in isr.
		replicas []int32
		isr      []int32
		// pending is the AlterPartition in flight, nil when none; at most
		// one per partition.
		pending *pendingISR
		// followers are the other replicas' states, leader only (nil on a
		// follower). Keys: replicas minus this broker.
		followers map[int32]*followerState
		// leaderEpochStartOffset is the log end offset when this broker
		// became leader in the current epoch: a follower is eligible for
		// the ISR only once it fetched past it (Kafka's
		// leaderEpochStartOffsetOpt). -1 on a follower.
		leaderEpochStartOffset int64
		// produceWaiters are the acks=all produces waiting for the high
		// watermark (purgatory.go), at most maxProduceWaiters.
		produceWaiters []*produceWaiter
		// lowWaiters are the DeleteRecords waiting for the low watermark
		// (purgatory.go), at most maxProduceWaiters.
		lowWaiters []*produceWaiter
	}
	// nProduceWaiters is len(mu.produceWaiters), for readers without mu
	// (tests, metrics).
	nProduceWaiters atomic.Int32

	// waiters are the long-poll fetches watching this partition
	// (purgatory.go). A leaf lock.
	waiters struct {
		sync.Mutex
		set map[*FetchWaiter]struct{} // at most maxFetchWaiters
	}
	// nWaiters is len(waiters.set), read without the lock by every
	// append and high watermark move.
	nWaiters atomic.Int32
}

// newPartition wraps an opened log; apply sets its role.
func newPartition(m *Manager, log *storage.Log, topicID metadata.UUID) *Partition {
	p := &Partition{log: log, m: m, topic: log.Topic(), index: log.Partition(), topicID: topicID}
	p.state.Store(&partitionState{leader: -1, leaderEpoch: -1, partitionEpoch: -1})
	p.mu.leaderEpochStartOffset = -1
	return p
}

// LeaderEpoch is the current leader epoch from the image.
func (p *Partition) LeaderEpoch() int32 { return p.state.Load().leaderEpoch }

// Leader is the broker id of the partition's leader (-1 none).
func (p *Partition) Leader() int32 { return p.state.Load().leader }

// IsLeader reports whether this broker leads the partition.
func (p *Partition) IsLeader() bool { return p.state.Load().isLeader }

// PartitionEpoch is the partition epoch of the assignment and ISR this
// broker applied last.
func (p *Partition) PartitionEpoch() int32 { return p.state.Load().partitionEpoch }

// HighWatermark is the partition's high watermark.
func (p *Partition) HighWatermark() int64 { return p.log.HighWatermark() }

// ISR returns the committed in-sync replicas (a copy).
func (p *Partition) ISR() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.mu.isr)
}

// MaximalISR returns the ISR the high watermark waits for: the committed
// ISR united with an AlterPartition's proposal while one is in flight.
func (p *Partition) MaximalISR() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.maximalISRLocked())
}

// Replicas returns the assigned replicas (a copy).
func (p *Partition) Replicas() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.mu.replicas)
}

// storeStateLocked publishes the snapshot of mu's fields. Caller holds mu.
func (p *Partition) storeStateLocked(leader, leaderEpoch, partitionEpoch int32, minISR int, removed bool) {
	self := p.m.nodeID
	isLeader := leader == self && !removed
	p.state.Store(&partitionState{
		leader: leader, leaderEpoch: leaderEpoch, partitionEpoch: partitionEpoch,
		isLeader: isLeader, isrSize: len(p.mu.isr), minISR: minISR,
		sole:    isLeader && len(p.mu.replicas) == 1 && p.mu.replicas[0] == self,
		removed: removed,
	})
}

// apply brings the partition in line with its image entry mp: become
// leader or follower, or only take a new assignment/ISR/min ISR. It
// reports whether this broker started following a (new) leader or stopped
// following (for the fetcher hook).
func (p *Partition) apply(mp metadata.Partition, minISR int) (follow, unfollow bool) {
	p.roleMu.Lock()
	defer p.roleMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.state.Load()
	self := p.m.nodeID
	newEpoch := mp.LeaderEpoch != old.leaderEpoch || mp.Leader != old.leader
	// The same partition epoch with other replicas is the state an
	// AlterPartition answer gave us (it carries only the ISR) when that
	// ISR change also completed a reassignment: the image has the new
	// replicas, so it is applied (Kafka's makeLeader skips only older
	// partition epochs).
	sameOrOlder := mp.PartitionEpoch < old.partitionEpoch ||
		mp.PartitionEpoch == old.partitionEpoch && slices.Equal(mp.Replicas, p.mu.replicas)
	if !newEpoch && sameOrOlder && !old.removed {
		// Nothing new for the partition (an older partition epoch: we
		// already applied a newer ISR from an AlterPartition answer and
		// the image will catch up; Kafka skips such stale states too).
		// Only min.insync.replicas may have changed; a change in flight
		// stays in flight.
		if minISR != old.minISR {
			p.storeStateLocked(old.leader, old.leaderEpoch, old.partitionEpoch, minISR, false)
		}
		return false, false
	}
	wasFollowing := !old.isLeader && old.leader >= 0 && !old.removed
	p.mu.replicas = slices.Clone(mp.Replicas)
	p.mu.isr = slices.Clone(mp.ISR)
	p.mu.pending = nil
	if mp.Leader == self {
		p.becomeLeaderLocked(mp, newEpoch || old.removed || !old.isLeader)
		p.storeStateLocked(mp.Leader, mp.LeaderEpoch, mp.PartitionEpoch, minISR, false)
		p.maybeIncrementHighWatermarkLocked(p.m.nowMs())
	} else {
		p.mu.followers = nil
		p.mu.leaderEpochStartOffset = -1
		p.storeStateLocked(mp.Leader, mp.LeaderEpoch, mp.PartitionEpoch, minISR, false)
	}
	// Every waiter re-checks: a produce learns it lost the leadership, a
	// fetch answers NOT_LEADER_OR_FOLLOWER or the new epoch's data.
	p.wakeAllProducesLocked()
	p.wakeLowWaitersLocked()
	p.wakeFetchers()
	// A replica whose log is offline (a failed log dir) does not fetch:
	// it would report a log end offset it no longer has, and the leader
	// would keep proposing it back into the ISR (Kafka removes offline
	// partitions from its fetchers).
	isFollowing := mp.Leader != self && mp.Leader >= 0 && !p.log.Offline()
	switch {
	case isFollowing && (newEpoch || !wasFollowing):
		return true, false
	case !isFollowing && wasFollowing:
		return false, true
	}
	return false, false
}

// becomeLeaderLocked is Kafka's Partition.makeLeader for this broker: a
// new leader epoch starts at the log end offset (leader-epoch-checkpoint),
// and the followers' states are reset; within the same epoch (a new
// assignment or ISR) known followers keep theirs. The high watermark is
// never lowered: the new leader's is at most what every ISR member has.
// Caller holds roleMu (write) and mu; mu.replicas and mu.isr are set.
func (p *Partition) becomeLeaderLocked(mp metadata.Partition, newEpoch bool) {
	now := p.m.nowMs()
	leo := p.log.LogEndOffset()
	if newEpoch {
		if p.log.LatestEpoch() < mp.LeaderEpoch {
			if err := p.log.AssignEpochStartOffset(mp.LeaderEpoch, leo); err != nil {
				p.m.logger.Error("record leader epoch", "topic", p.topic, "partition", p.index, "err", err)
			}
		}
		p.mu.leaderEpochStartOffset = leo
		p.mu.followers = map[int32]*followerState{}
	} else if p.mu.followers == nil {
		p.mu.followers = map[int32]*followerState{}
	}
	kept := make(map[int32]*followerState, len(mp.Replicas))
	for _, id := range mp.Replicas {
		if id == p.m.nodeID {
			continue
		}
		if f := p.mu.followers[id]; f != nil {
			kept[id] = f
			continue
		}
		kept[id] = resetFollower(slices.Contains(mp.ISR, id), now, leo)
	}
	p.mu.followers = kept
}

// remove marks the partition gone from this broker (its topic was deleted
// or it was reassigned away): every waiter is woken and answers
// NOT_LEADER_OR_FOLLOWER. It reports whether it was following.
func (p *Partition) remove() (wasFollowing bool) {
	p.roleMu.Lock()
	defer p.roleMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.state.Load()
	p.mu.followers = nil
	p.mu.pending = nil
	p.mu.leaderEpochStartOffset = -1
	p.storeStateLocked(-1, old.leaderEpoch, old.partitionEpoch, old.minISR, true)
	p.wakeAllProducesLocked()
	p.wakeLowWaitersLocked()
	p.wakeFetchers()
	return !old.isLeader && old.leader >= 0 && !old.removed
}

// checkEpoch applies Kafka's Partition.checkCurrentLeaderEpoch: a request
// naming an older leader epoch is fenced, a newer one is unknown here (our
// metadata is behind); -1 names none.
func checkEpoch(st *partitionState, current int32) error {
	switch {
	case current < 0 || current == st.leaderEpoch:
		return nil
	case current < st.leaderEpoch:
		return fmt.Errorf("%w: request epoch %d, current %d", ErrFencedLeaderEpoch, current, st.leaderEpoch)
	default:
		return fmt.Errorf("%w: request epoch %d, current %d", ErrUnknownLeaderEpoch, current, st.leaderEpoch)
	}
}

// notLeader is the error of a leader-only operation on a partition this
// broker does not lead.
func (p *Partition) notLeader(st *partitionState) error {
	return fmt.Errorf("%w: %s-%d is led by %d (epoch %d), not %d", ErrNotLeader, p.topic, p.index, st.leader, st.leaderEpoch, p.m.nodeID)
}
