package replica

import (
	"fmt"
)

// This file is the follower's side of a partition: the methods the
// fetcher (internal/replication, its Follower interface) calls on a
// partition this broker follows. Each holds roleMu for reading, so none
// runs across a role change, and refuses when this broker leads the
// partition (or it was removed): a fetcher that missed a role change must
// never write into a leader's log. The fetcher compares LeaderEpoch with
// the epoch it fetches in before writing, as Kafka's fetcher threads do.

// TopicPartition names the partition.
func (p *Partition) TopicPartition() (topic string, topicID [16]byte, partition int32) {
	return p.topic, p.topicID, p.index
}

// LogStartOffset is the local log start offset (sent to the leader in
// the follower's fetches).
func (p *Partition) LogStartOffset() int64 { return p.log.LogStartOffset() }

// LogEndOffset is the local log end offset (the next offset to fetch).
func (p *Partition) LogEndOffset() int64 { return p.log.LogEndOffset() }

// LatestEpoch is the latest leader epoch in the local log's epoch cache
// (the follower's last fetched epoch, KIP-320), -1 none.
func (p *Partition) LatestEpoch() int32 { return p.log.LatestEpoch() }

// EndOffsetForEpoch is the local log's answer to OffsetForLeaderEpoch
// (storage.Log.EndOffsetForEpoch), for truncating to min(the leader's end
// offset, ours) of a diverging epoch.
func (p *Partition) EndOffsetForEpoch(epoch int32) (int32, int64) {
	return p.log.EndOffsetForEpoch(epoch)
}

// followerCheck is the role check of every follower write. Caller holds
// roleMu (read).
func (p *Partition) followerCheck(op string) error {
	st := p.state.Load()
	if st.isLeader || st.removed {
		return fmt.Errorf("%w: %s on %s-%d, which this broker does not follow (leader %d, epoch %d)", ErrNotLeader, op, p.topic, p.index, st.leader, st.leaderEpoch)
	}
	return nil
}

// TruncateTo drops the local records at offset and above (the divergence
// point after a leader change; Kafka's Partition.truncateTo). The high
// watermark is clamped by the log.
func (p *Partition) TruncateTo(offset int64) error {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if err := p.followerCheck("truncate"); err != nil {
		return err
	}
	if err := p.log.TruncateTo(offset); err != nil {
		return err
	}
	p.wakeFetchers()
	return nil
}

// TruncateFullyAndStartAt empties the local log and restarts it at offset
// (the leader's log start offset, when the follower's fetch offset is out
// of the leader's range).
func (p *Partition) TruncateFullyAndStartAt(offset int64) error {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if err := p.followerCheck("truncate fully"); err != nil {
		return err
	}
	if err := p.log.TruncateFullyAndStartAt(offset); err != nil {
		return err
	}
	p.wakeFetchers()
	return nil
}

// AppendAsFollower stores batches fetched from the leader byte-for-byte
// (storage.Log.AppendAsFollower: no offset assignment, the leader-epoch
// cache follows the batches' epochs), then takes the leader's high
// watermark as far as this log has the records — follower HW =
// min(leaderHW, own LEO), which may be lower than before after a leader
// change, as Kafka's UnifiedLog.updateHighWatermark — and moves the log
// start offset up to the leader's (never back; the leader's DeleteRecords
// and retention reach the follower so). An empty records only updates the
// high watermark and log start offset. A partial batch at the end (a
// fetch cut by its size limit) is ignored by storage.
func (p *Partition) AppendAsFollower(records []byte, leaderHW, leaderLogStart int64) error {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if err := p.followerCheck("append"); err != nil {
		return err
	}
	if len(records) > 0 {
		if _, err := p.log.AppendAsFollower(records); err != nil {
			return err
		}
	}
	p.leaderHW.Store(leaderHW)
	p.log.SetHighWatermark(min(leaderHW, p.log.LogEndOffset()))
	// Kafka's UnifiedLog.maybeIncrementLogStartOffset: never back;
	// bounded by the log end offset (the follower has every record from
	// its fetch offset, at or above the leader's log start, so the clamp
	// only guards odd answers).
	if start := min(leaderLogStart, p.log.LogEndOffset()); start > p.log.LogStartOffset() {
		if err := p.log.MaybeIncrementLogStartOffset(start); err != nil {
			return err
		}
	}
	p.wakeFetchers()
	return nil
}
