package replica

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
	p.log.SetHighWatermark(min(leaderHW, p.log.LogEndOffset()))
	// Kafka's UnifiedLog.maybeIncrementLogStartOffset, which storage
	// implements as DeleteRecordsBefore: never back, never past the high
	// watermark (the leader's log start is at most its HW, and the
	// follower has every record from its fetch offset, at or above the
	// leader's log start, so the clamp only guards odd answers).
	if start := min(leaderLogStart, p.log.HighWatermark()); start > p.log.LogStartOffset() {
		if _, err := p.log.DeleteRecordsBefore(start); err != nil {
			return err
		}
	}
	p.wakeFetchers()
	return nil
}
