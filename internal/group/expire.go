package group

import (
	"sort"
	"time"

	"samsa/internal/coordinator"
	"samsa/internal/record"
)

// Offset expiry, Kafka's after KIP-211 (GroupMetadataManager.cleanupGroupMetadata,
// OffsetMetadataManager.cleanupExpiredOffsets, ClassicGroup.offsetExpirationCondition):
// every offsets.retention.check.interval.ms each loaded partition sweeps
// its groups. Which offsets of a group may expire, and from when:
//
//   - a group with a protocol type that is Empty: every offset, retention
//     after the group became Empty (its current state timestamp; the
//     commit timestamp when that is unknown);
//   - a "consumer" group that is Stable: the offsets of topics no member
//     subscribes to, retention after their commit timestamp (none when a
//     subscription does not parse);
//   - a group without protocol type (standalone commits, no membership
//     ever): every offset, retention after its commit timestamp;
//   - any other group (rebalancing, or Stable with another protocol
//     type): none.
//
// An offset with an explicit expire timestamp (OffsetCommit v2-v4
// retention time, value version 1) expires at that time instead. Expired
// offsets get tombstones, written before they leave memory. An Empty
// group left without offsets (and without KIP-394 member ids being handed
// out) dies: its metadata gets a tombstone in the same batch and it leaves
// the partition.

// ExpireOffsetsNow runs the offset expiry sweep on every loaded partition
// at once (the periodic sweep does the same every
// offsets.retention.check.interval.ms) and returns how many committed
// offsets expired. It returns when the tombstones are written.
func (c *Coordinator) ExpireOffsetsNow() int {
	n := 0
	for _, ps := range c.partitionsSnapshot() {
		n += ps.expireOffsets()
	}
	return n
}

// expireLoop sweeps the partition every check interval until it is
// unloaded or the coordinator closes.
func (ps *partition) expireLoop() {
	t := time.NewTicker(ps.c.cfg.OffsetsRetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ps.ctx.Done():
			return
		case <-t.C:
			if n := ps.expireOffsets(); n > 0 {
				ps.c.log.Info("group: expired committed offsets", "partition", ps.id, "offsets", n)
			}
		}
	}
}

// expiring is what a sweep removes from one group.
type expiring struct {
	g    *group
	tps  []topicPartition
	dies bool // the group dies with its group metadata tombstone
}

// expireOffsets writes the tombstones of the partition's expired offsets
// (and dead groups) as one batch, then drops them from memory. It returns
// the number of offsets removed. Holding writeSem throughout means no
// commit or deletion interleaves; members may join meanwhile, which only
// matters for a group about to die (see applyExpiryLocked).
func (ps *partition) expireOffsets() int {
	if err := ps.lockWrite(ps.ctx); err != nil {
		return 0
	}
	ps.mu.Lock()
	if ps.state != coordinator.Loaded {
		ps.unlockWrite()
		ps.mu.Unlock()
		return 0
	}
	now := ps.c.now()
	plan, recs := ps.planExpiryLocked(now)
	if len(recs) == 0 {
		ps.unlockWrite()
		ps.mu.Unlock()
		return 0
	}
	ps.mu.Unlock()
	err := ps.appendRecords(ps.ctx, recs)
	ps.mu.Lock()
	n := 0
	switch {
	case ps.state != coordinator.Loaded:
	case err != nil:
		ps.c.log.Warn("group: cannot write expired offsets' tombstones; will retry at the next sweep",
			"partition", ps.id, "err", err)
	default:
		n = ps.applyExpiryLocked(plan)
	}
	ps.unlockWrite()
	ps.unlock()
	return n
}

// planExpiryLocked returns what expires at now and the tombstones that
// say so, group by group in id order.
func (ps *partition) planExpiryLocked(now time.Time) ([]expiring, []record.Record) {
	ids := make([]string, 0, len(ps.groups))
	for id := range ps.groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var plan []expiring
	var recs []record.Record
	for _, id := range ids {
		g := ps.groups[id]
		tps, all := g.expiredOffsetsLocked(now.UnixMilli(), ps.c.cfg.OffsetsRetention)
		dies := all && g.canDieLocked()
		if len(tps) == 0 && !dies {
			continue
		}
		for _, tp := range tps {
			recs = append(recs, offsetTombstone(id, tp, now))
		}
		if dies {
			recs = append(recs, groupTombstone(id, now))
		}
		plan = append(plan, expiring{g, tps, dies})
	}
	return plan, recs
}

// applyExpiryLocked drops what plan's tombstones deleted. A group that
// gained a member (or a pending member id) while its tombstone was being
// written stays, and its metadata is written again after the tombstone.
func (ps *partition) applyExpiryLocked(plan []expiring) int {
	n := 0
	for _, e := range plan {
		for _, tp := range e.tps {
			delete(e.g.offsets, tp)
		}
		n += len(e.tps)
		if !e.dies || !e.g.alive() {
			continue
		}
		if len(e.g.offsets) == 0 && e.g.canDieLocked() {
			e.g.ps.c.log.Info("group: removing Empty group without offsets", "group", e.g.id)
			ps.removeGroupLocked(e.g)
		} else {
			ps.markDirtyLocked(e.g)
		}
	}
	return n
}

// canDieLocked reports whether g may be removed once it has no offsets:
// it is Empty, has no offsets of an open transaction, and is handing out
// no KIP-394 member ids (a deviation from
// Kafka, which would remove it and make that member join again).
func (g *group) canDieLocked() bool {
	return g.state == stateEmpty && len(g.members) == 0 && len(g.pending) == 0 && len(g.txnOffsets) == 0
}

// expiredOffsetsLocked returns g's offsets expired at now (ms), sorted,
// and whether every offset of g expired (true too when g has none).
func (g *group) expiredOffsetsLocked(now int64, retention time.Duration) (expired []topicPartition, all bool) {
	if len(g.offsets) == 0 {
		return nil, true
	}
	commitTime := func(v offsetValue) int64 { return v.commitTimestamp }
	base := commitTime
	var subscribed map[string]bool // topics that never expire
	switch {
	case g.protocolType == "":
		// Standalone: commit timestamps.
	case g.state == stateEmpty:
		if !g.stateTimestamp.IsZero() {
			emptySince := g.stateTimestamp.UnixMilli()
			base = func(offsetValue) int64 { return emptySince }
		}
	case g.protocolType == "consumer" && g.state == stateStable:
		if subscribed = g.subscribedTopicsLocked(); subscribed == nil {
			return nil, false
		}
	default:
		return nil, false
	}
	all = true
	for _, tp := range sortedTopicPartitions(g.offsets) {
		v := g.offsets[tp]
		// An offset with a pending transactional one does not expire
		// yet (OffsetMetadataManager.cleanupExpiredOffsets).
		if subscribed[tp.topic] || !v.expiredAt(now, base(v), retention) || g.hasTxnOffsetLocked(tp) {
			all = false
			continue
		}
		expired = append(expired, tp)
	}
	return expired, all
}
