package replica

import (
	"context"
	"fmt"
	"time"

	"samsa/internal/record"
	"samsa/internal/storage"
)

// This file is the partition's one read path for consumers and followers
// (Kafka's Partition.fetchRecords / readFromLocalLog) and
// OffsetForLeaderEpoch (Partition.lastOffsetForLeaderEpoch).

// Isolation levels of a fetch (Fetch v4+, KIP-98).
const (
	ReadUncommitted int8 = 0
	ReadCommitted   int8 = 1
)

// FetchParams is one partition of a Fetch request.
type FetchParams struct {
	// ReplicaID is the fetching follower's broker id; -1 for a consumer.
	ReplicaID int32
	// ReplicaEpoch is the follower broker's epoch (Fetch v15
	// ReplicaState, KIP-903), -1 unknown.
	ReplicaEpoch int64
	FetchOffset  int64
	// CurrentLeaderEpoch is the leader epoch the fetcher knows (v9+,
	// KIP-320), -1 none.
	CurrentLeaderEpoch int32
	// LastFetchedEpoch is the epoch of the last batch the fetcher has
	// (v12+): the leader answers a diverging epoch when its log differs
	// there. -1 none.
	LastFetchedEpoch int32
	// LogStartOffset is the follower's log start offset, -1 for consumers.
	LogStartOffset int64
	// MaxBytes bounds the records returned, except that MinOneMessage
	// returns at least one whole batch (KIP-74: the first partition of a
	// response with data).
	MaxBytes      int32
	MinOneMessage bool
	Isolation     int8 // ReadUncommitted or ReadCommitted (consumers)
	// ClientMetadata is set for a consumer's Fetch v11+ (KIP-392: it
	// carries a rack id, possibly empty): such a consumer may read from
	// a follower, and a leader with the rack-aware selector may direct
	// it to one. Without it (older versions) only the leader serves
	// consumers (Kafka's FetchParams.fetchOnlyLeader).
	ClientMetadata bool
	// ClientRack is the consumer's client.rack (Fetch v11 RackID), ""
	// none; Listener the listener it fetches on ("" any), whose
	// endpoints a preferred read replica must have.
	ClientRack, Listener string
}

// EpochEndOffset is a leader epoch and the offset where it ends (the
// start of the next epoch, or the log end offset for the latest); -1, -1
// when undefined.
type EpochEndOffset struct {
	Epoch     int32
	EndOffset int64
}

// FetchResult is the answer for one partition.
type FetchResult struct {
	// Records are whole batches from FetchOffset; nil when none. A
	// buffer of the storage pool: hand it back with
	// storage.ReleaseBuffer once written.
	Records          []byte
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
	LogEndOffset     int64
	// DivergingEpoch is set (not -1) when the follower's log diverges
	// from the leader's at LastFetchedEpoch: it must truncate to
	// EndOffset (or below) first; no records come with it.
	DivergingEpoch EpochEndOffset
	// AbortedTransactions overlapping Records, read_committed only
	// (non-nil, possibly empty, then).
	AbortedTransactions []storage.AbortedTxn
	// PreferredReadReplica is the follower a consumer should fetch the
	// partition from instead (KIP-392, selector.go), -1 none; when set,
	// no records come with it.
	PreferredReadReplica int32
	// Throttled is set when the leader's replication throttle held the
	// follower's records back (quota.go): the quota lets them through
	// again in about this long. A long poll waits no longer than that
	// before reading again.
	Throttled time.Duration
}

// Fetch reads one partition for a consumer or a follower. Errors:
// ErrFencedLeaderEpoch / ErrUnknownLeaderEpoch when CurrentLeaderEpoch is
// older / newer than ours; ErrNotLeader when this broker does not lead (or
// the follower is stale) and the read must come from the leader;
// UNKNOWN_LEADER_EPOCH also for a follower not in the assignment while
// naming our epoch (a reassignment's new replica, Kafka's
// followerReplicaOrThrow); storage.ErrOffsetOutOfRange outside
// [LogStartOffset, LogEndOffset]; storage's errors for an offline log.
//
// A consumer reads below the high watermark (read_committed: the last
// stable offset), a follower up to the log end offset. A follower's fetch
// that does not diverge records its position: its log end offset is the
// fetch offset, which may advance the high watermark (waking the
// produces waiting for it) and add it to the ISR.
//
// Follower fetching (KIP-392), as Kafka's ReplicaManager.readFromLog: a
// consumer's fetch with ClientMetadata to a leader with the rack-aware
// selector may get a PreferredReadReplica instead of records (the offsets
// are answered, nothing is read). The same fetch to a follower of the
// partition is served by it, whatever the selector and the consumer's
// rack: up to the follower's high watermark (min of the leader's, as of
// its last fetch, and its log end offset; read_committed: its last stable
// offset), never with a preferred read replica (-1). A fetch offset past
// the follower's log end is ErrOffsetOutOfRange, one between its high
// watermark and log end reads nothing. Epoch checks apply as on the
// leader. A consumer that the follower no longer suits (it left the ISR,
// the consumer moved racks) goes back to the leader by itself: on an
// error, or when its preferred replica expires (Java's
// metadata.max.age.ms, franz-go's RecheckPreferredReplicaInterval), and
// the leader then selects again.
//
// ctx is not used for waiting (Fetch never waits: long polls use a
// FetchWaiter); it is there for the read's future deadlines.
func (p *Partition) Fetch(_ context.Context, fp FetchParams) (FetchResult, error) {
	res := FetchResult{DivergingEpoch: EpochEndOffset{-1, -1}, PreferredReadReplica: -1}
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	st := p.state.Load()
	if err := checkEpoch(st, fp.CurrentLeaderEpoch); err != nil {
		return res, err
	}
	follower := fp.ReplicaID >= 0
	if !st.isLeader && (follower || !fp.ClientMetadata || st.removed) {
		return res, p.notLeader(st)
	}
	if follower {
		if err := p.checkFollower(st, fp); err != nil {
			return res, err
		}
	}

	// Offsets before the read, as Kafka's readFromLocalLog takes them.
	hw := p.log.HighWatermark()
	lso := min(p.log.LastStableOffset(), hw)
	res.HighWatermark, res.LastStableOffset = hw, lso
	res.LogStartOffset = p.log.LogStartOffset()
	res.LogEndOffset = p.log.LogEndOffset()

	if st.isLeader && !follower && fp.ClientMetadata {
		if id := p.preferredReadReplica(fp.ClientRack, fp.Listener, fp.FetchOffset, p.m.nowMs()); id >= 0 {
			// KIP-392: the consumer reads from id; nothing is read here.
			res.PreferredReadReplica = id
			return res, nil
		}
	}
	if !st.isLeader {
		p.m.sel.followerReads.Add(1)
	}

	if fp.LastFetchedEpoch >= 0 {
		// KIP-320/595: does the fetcher's log end in an epoch we agree on?
		epoch, end := p.log.EndOffsetForEpoch(fp.LastFetchedEpoch)
		if epoch < fp.LastFetchedEpoch || end < fp.FetchOffset {
			res.DivergingEpoch = EpochEndOffset{epoch, end}
			return res, nil
		}
	}

	upper := hw
	switch {
	case follower:
		upper = res.LogEndOffset
	case fp.Isolation == ReadCommitted:
		upper = lso
	}
	// The leader's replication throttle (quota.go): an out-of-ISR
	// follower of a throttled partition gets no records while the rate
	// is over the limit; its fetch still records its position below.
	throttled := follower && st.isLeader && p.m.leaderQuota.Throttled(p.topic, p.index)
	var data []byte
	if throttled {
		res.Throttled = p.leaderThrottles(fp.ReplicaID)
	}
	if res.Throttled == 0 {
		var err error
		if data, err = p.log.Read(fp.FetchOffset, max(fp.MaxBytes, 0), upper, fp.MinOneMessage); err != nil {
			return res, err
		}
		if throttled {
			p.m.leaderQuota.Record(len(data))
		}
	}
	res.Records = data
	if !follower && fp.Isolation == ReadCommitted {
		res.AbortedTransactions = []storage.AbortedTxn{}
		if len(data) > 0 {
			res.AbortedTransactions = append(res.AbortedTransactions, p.log.AbortedTransactions(fp.FetchOffset, batchesEnd(data))...)
		}
	}
	if follower {
		p.mu.Lock()
		if f := p.mu.followers[fp.ReplicaID]; f != nil {
			p.updateFollowerLocked(f, fp.ReplicaID, fp.FetchOffset, fp.LogStartOffset, res.LogEndOffset, p.m.nowMs(), fp.ReplicaEpoch)
		}
		p.mu.Unlock()
	}
	return res, nil
}

// checkFollower checks that a fetching follower is one of the partition's
// replicas and not a stale incarnation of its broker. Caller holds roleMu
// (read).
func (p *Partition) checkFollower(st *partitionState, fp FetchParams) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.mu.followers[fp.ReplicaID]
	if f == nil {
		if fp.CurrentLeaderEpoch >= 0 {
			// Our epoch, but not a replica we know: a reassignment's new
			// replica whose metadata is ahead of ours; it retries.
			return fmt.Errorf("%w: broker %d is not a replica of %s-%d in epoch %d", ErrUnknownLeaderEpoch, fp.ReplicaID, p.topic, p.index, st.leaderEpoch)
		}
		return fmt.Errorf("%w: broker %d is not a replica of %s-%d", ErrNotLeader, fp.ReplicaID, p.topic, p.index)
	}
	// KIP-903: a fetch from an older incarnation of the follower's broker
	// (it restarted with a new epoch) must not move its state.
	if fp.ReplicaEpoch >= 0 && f.brokerEpoch > fp.ReplicaEpoch {
		return fmt.Errorf("%w: stale fetch from broker %d epoch %d (known %d)", ErrNotLeader, fp.ReplicaID, fp.ReplicaEpoch, f.brokerEpoch)
	}
	return nil
}

// batchesEnd is the offset after the last whole batch of data.
func batchesEnd(data []byte) int64 {
	end := int64(-1)
	for len(data) > 0 {
		_, h, rest, err := record.Next(data)
		if err != nil {
			break
		}
		end = h.NextOffset()
		data = rest
	}
	return end
}

// OffsetForLeaderEpoch answers OffsetForLeaderEpoch (23) for the
// partition, as leader (Kafka's Partition.lastOffsetForLeaderEpoch with
// fetchOnlyFromLeader): the largest epoch <= leaderEpoch this log has and
// where it ends (the start of the next epoch, or the log end offset for
// the latest); -1, -1 when leaderEpoch is -1 or newer than the latest,
// and leaderEpoch with the first known epoch's start offset when it is
// older than every epoch the log still knows (storage.Log.EndOffsetForEpoch,
// Kafka's LeaderEpochFileCache.endOffsetFor). currentLeaderEpoch (-1
// none) is checked first: ErrFencedLeaderEpoch when older than ours,
// ErrUnknownLeaderEpoch when newer; then ErrNotLeader on a follower.
func (p *Partition) OffsetForLeaderEpoch(currentLeaderEpoch, leaderEpoch int32) (epoch int32, endOffset int64, err error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	st := p.state.Load()
	if err := checkEpoch(st, currentLeaderEpoch); err != nil {
		return -1, -1, err
	}
	if !st.isLeader {
		return -1, -1, p.notLeader(st)
	}
	epoch, endOffset = p.log.EndOffsetForEpoch(leaderEpoch)
	return epoch, endOffset, nil
}
