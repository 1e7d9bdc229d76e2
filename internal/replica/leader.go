package replica

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/storage"
)

// This file is the leader's side of replication (Kafka's Partition):
// appends, the high watermark as the minimum log end offset over the
// (maximal) ISR, and ISR changes through AlterPartition.

// ISRUpdater sends AlterPartition (56) to the active controller. An error
// means the request got no answer (no controller, connection lost,
// NOT_CONTROLLER, ctx done): the manager retries with backoff. A
// partition-level error is an answer (AlterISRResult.ErrorCode).
type ISRUpdater interface {
	AlterPartition(ctx context.Context, req AlterISR) (AlterISRResult, error)
}

// AlterISR is one partition's AlterPartition request.
type AlterISR struct {
	TopicID        [16]byte
	Topic          string
	Partition      int32
	LeaderID       int32 // this broker (AlterPartition's BrokerID)
	BrokerEpoch    int64 // this broker's epoch (AlterPartition v1+), -1 unknown
	LeaderEpoch    int32
	PartitionEpoch int32 // the partition epoch the proposal is based on
	NewISR         []ISRMember
}

// ISRMember is one replica of a proposed ISR with its broker epoch
// (AlterPartition v3+ NewIsrWithEpochs; -1 when unknown).
type ISRMember struct {
	BrokerID    int32
	BrokerEpoch int64
}

// AlterISRResult is the controller's answer for the partition.
type AlterISRResult struct {
	ErrorCode      int16 // kerr code, 0 for success
	LeaderID       int32
	LeaderEpoch    int32
	PartitionEpoch int32
	ISR            []int32
}

// Request is r as an AlterPartition (56) v3 request, the one the active
// controller answers (NewEpochISR carries each member's broker epoch).
func (r AlterISR) Request() *kmsg.AlterPartitionRequest {
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version = 3
	req.BrokerID, req.BrokerEpoch = r.LeaderID, r.BrokerEpoch
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.TopicID, rt.Topic = r.TopicID, r.Topic
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = r.Partition, r.LeaderEpoch, r.PartitionEpoch
	for _, m := range r.NewISR {
		rp.NewISR = append(rp.NewISR, m.BrokerID)
		e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		e.BrokerID, e.BrokerEpoch = m.BrokerID, m.BrokerEpoch
		rp.NewEpochISR = append(rp.NewEpochISR, e)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// Result extracts r's partition from the controller's answer: a
// top-level error is the result's error code; ok is false when the
// answer does not hold the partition.
func (r AlterISR) Result(resp *kmsg.AlterPartitionResponse) (res AlterISRResult, ok bool) {
	if resp.ErrorCode != 0 {
		return AlterISRResult{ErrorCode: resp.ErrorCode}, true
	}
	for _, t := range resp.Topics {
		if t.TopidID != r.TopicID && t.Topic != r.Topic { // (sic: kmsg spells it TopidID)
			continue
		}
		for _, p := range t.Partitions {
			if p.Partition == r.Partition {
				return AlterISRResult{ErrorCode: p.ErrorCode, LeaderID: p.LeaderID, LeaderEpoch: p.LeaderEpoch,
					PartitionEpoch: p.PartitionEpoch, ISR: p.ISR}, true
			}
		}
	}
	return AlterISRResult{}, false
}

// Append appends records as leader with the producer's acks (0, 1, -1)
// and advances the high watermark as replication allows (right away when
// this broker is the only replica). With acks=-1 it returns
// ErrNotEnoughReplicas when the committed ISR is smaller than
// min.insync.replicas (nothing is appended then); the caller then waits
// with WaitReplicated(ctx, info.LastOffset+1).
//
// Every record of every batch is validated first (validate.go); a batch
// that fails rejects the whole request for this partition and nothing is
// stored. records may be rewritten in place (see validateProduce).
func (p *Partition) Append(records []byte, acks int16) (storage.AppendInfo, error) {
	// The role is checked before validating (Kafka answers
	// NOT_ENOUGH_REPLICAS before looking at the records) and again under
	// roleMu, which validation must not hold: it can take long.
	if err := p.checkAppend(p.state.Load(), acks); err != nil {
		return storage.AppendInfo{}, err
	}
	cfg := p.log.Config()
	records, err := validateProduce(records, &cfg, nowMs())
	if err != nil {
		return storage.AppendInfo{}, err
	}
	p.roleMu.RLock()
	st := p.state.Load()
	if err := p.checkAppend(st, acks); err != nil {
		p.roleMu.RUnlock()
		return storage.AppendInfo{}, err
	}
	// validateProduce checked every batch's CRC (and fixed it where it
	// rewrote a header): storage does not check it a second time.
	info, err := p.log.AppendValidatedAsLeader(records, st.leaderEpoch)
	if err == nil {
		p.afterLeaderAppend(st)
	}
	p.roleMu.RUnlock()
	return info, err
}

// checkAppend is the role and min ISR check of a leader append.
func (p *Partition) checkAppend(st *partitionState, acks int16) error {
	if !st.isLeader {
		return p.notLeader(st)
	}
	if acks == -1 && st.isrSize < st.minISR {
		return fmt.Errorf("%w: ISR of %s-%d has %d replicas, min.insync.replicas is %d", ErrNotEnoughReplicas, p.topic, p.index, st.isrSize, st.minISR)
	}
	return nil
}

// afterLeaderAppend moves the high watermark after an append and wakes the
// long-poll fetches. Caller holds roleMu (read).
//
// Reading the log end offset and setting the high watermark must be one
// step under mu even for a single replica: two concurrent appends could
// otherwise set it back (A reads 10, B appends and sets 12, A sets 10),
// and a produce that saw 12 would wait for a move that never comes.
func (p *Partition) afterLeaderAppend(st *partitionState) {
	p.mu.Lock()
	if st.sole {
		// The single-replica fast path: no follower to look at.
		if leo := p.log.LogEndOffset(); leo > p.log.HighWatermark() {
			p.log.SetHighWatermark(leo)
			p.wakeProducesLocked(leo)
		}
	} else {
		p.maybeIncrementHighWatermarkLocked(p.m.nowMs())
	}
	p.mu.Unlock()
	p.wakeFetchers()
}

// WriteTxnMarker writes a transaction marker (a control batch ending
// producer m.ProducerID's transaction) as leader, stamped with the current
// leader epoch, and advances the high watermark as Append does. Like
// Kafka's markers (appended with acks=-1) it answers ErrNotEnoughReplicas
// when the ISR is smaller than min.insync.replicas; the coordinator
// retries. The caller waits for replication with WaitReplicated(offset+1).
func (p *Partition) WriteTxnMarker(m storage.TxnMarker) (int64, error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	st := p.state.Load()
	if err := p.checkAppend(st, -1); err != nil {
		return -1, err
	}
	m.LeaderEpoch = st.leaderEpoch
	off, err := p.log.WriteTxnMarker(m)
	if err == nil {
		p.afterLeaderAppend(st)
	}
	return off, err
}

// DeleteRecords advances the log start offset to offset (-1: the high
// watermark) as leader and returns the new log start offset (the low
// watermark). Records below it are no longer readable; whole segments
// below it are deleted by the storage engine. A topic whose
// cleanup.policy lacks "delete" answers ErrPolicyViolation, as Kafka's
// ReplicaManager.deleteRecordsOnLocalLog does; an offset above the high
// watermark or below -1 storage.ErrOffsetOutOfRange.
//
// Followers learn the new log start offset from their next fetch; the
// caller waits for them with WaitLowWatermark (Kafka's
// DelayedDeleteRecords).
func (p *Partition) DeleteRecords(offset int64) (int64, error) {
	if pol := p.log.Config().CleanupPolicy; !HasCleanupPolicy(pol, "delete") {
		return -1, fmt.Errorf("%w: records of %s-%d cannot be deleted: cleanup.policy=%s", ErrPolicyViolation, p.log.Topic(), p.log.Partition(), pol)
	}
	if offset < -1 {
		return -1, fmt.Errorf("%w: offset %d is negative", storage.ErrOffsetOutOfRange, offset)
	}
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if st := p.state.Load(); !st.isLeader {
		return -1, p.notLeader(st)
	}
	return p.log.DeleteRecordsBefore(offset)
}

// maximalISRLocked is the ISR the high watermark waits for. Caller holds mu.
func (p *Partition) maximalISRLocked() []int32 {
	if p.mu.pending != nil {
		return p.mu.pending.maximal
	}
	return p.mu.isr
}

// eligible reports whether a replica may join the ISR: its broker is
// registered and not fenced in the image (Kafka's isReplicaIsrEligible;
// the image has no controlled-shutdown state or broker epochs yet).
func (p *Partition) eligible(id int32) bool {
	im := p.m.published.Load()
	if im == nil {
		return false
	}
	b, ok := im.Brokers[id]
	return ok && !b.Fenced
}

// maybeIncrementHighWatermarkLocked moves the high watermark to the
// smallest log end offset among the leader and the followers it must wait
// for (Kafka's Partition.maybeIncrementLeaderHW): members of the maximal
// ISR, and followers caught up within the lag time that may join the ISR
// (so a follower about to join does not find the high watermark past
// records it lacks). The high watermark never moves back. It wakes the
// produces and fetches waiting for it and reports whether it moved.
// Caller holds mu, on a leader.
func (p *Partition) maybeIncrementHighWatermarkLocked(nowMs int64) bool {
	if p.mu.followers == nil {
		return false
	}
	leo := p.log.LogEndOffset()
	hw := leo
	maximal := p.maximalISRLocked()
	lag := p.m.lagTimeMaxMs()
	for id, f := range p.mu.followers {
		if f.logEndOffset >= hw {
			continue
		}
		if slices.Contains(maximal, id) || (f.caughtUp(leo, nowMs, lag) && p.eligible(id)) {
			hw = f.logEndOffset
		}
	}
	if hw <= p.log.HighWatermark() {
		return false
	}
	p.log.SetHighWatermark(hw)
	p.wakeProducesLocked(hw)
	p.wakeFetchers()
	return true
}

// updateFollowerLocked records a follower's fetch at fetchOffset (Kafka's
// Replica.updateFetchStateOrThrow), then expands the ISR and moves the
// high watermark as it allows. Caller holds mu, on a leader.
func (p *Partition) updateFollowerLocked(f *followerState, id int32, fetchOffset, logStartOffset, leaderEndOffset, nowMs, brokerEpoch int64) {
	switch {
	case fetchOffset >= leaderEndOffset:
		f.lastCaughtUpTimeMs = max(f.lastCaughtUpTimeMs, nowMs)
	case fetchOffset >= f.lastFetchLeaderLogEndOffset:
		f.lastCaughtUpTimeMs = max(f.lastCaughtUpTimeMs, f.lastFetchTimeMs)
	}
	if logStartOffset != f.logStartOffset && len(p.mu.lowWaiters) > 0 {
		defer p.wakeLowWaitersLocked()
	}
	f.logStartOffset = logStartOffset
	f.logEndOffset = fetchOffset
	f.lastFetchLeaderLogEndOffset = max(leaderEndOffset, f.lastFetchLeaderLogEndOffset)
	f.lastFetchTimeMs = nowMs
	if brokerEpoch >= 0 {
		f.brokerEpoch = brokerEpoch
	}
	p.maybeExpandISRLocked(id, f)
	p.maybeIncrementHighWatermarkLocked(nowMs)
}

// maybeExpandISRLocked proposes adding a follower to the ISR once it has
// every record below the high watermark and has fetched in this leader
// epoch (Kafka's Partition.maybeExpandIsr / isFollowerInSync). Caller
// holds mu, on a leader.
func (p *Partition) maybeExpandISRLocked(id int32, f *followerState) {
	if p.mu.pending != nil || slices.Contains(p.mu.isr, id) || !p.eligible(id) {
		return
	}
	if f.logEndOffset < p.log.HighWatermark() || p.mu.leaderEpochStartOffset < 0 || f.logEndOffset < p.mu.leaderEpochStartOffset {
		return
	}
	proposed := append(slices.Clone(p.mu.isr), id)
	p.alterISRLocked(proposed, slices.Clone(proposed))
}

// maybeShrinkISR proposes removing the ISR members that have not been
// caught up for replica.lag.time.max.ms (Kafka's Partition.maybeShrinkIsr)
// and re-evaluates the high watermark (a follower's eligibility to hold it
// back expires with time too).
func (p *Partition) maybeShrinkISR() {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.state.Load().isLeader || p.mu.followers == nil {
		return
	}
	now := p.m.nowMs()
	if p.mu.pending == nil {
		leo := p.log.LogEndOffset()
		lag := p.m.lagTimeMaxMs()
		var out []int32
		for _, id := range p.mu.isr {
			if f := p.mu.followers[id]; f != nil && !f.caughtUp(leo, now, lag) {
				out = append(out, id)
			}
		}
		if len(out) > 0 {
			proposed := slices.DeleteFunc(slices.Clone(p.mu.isr), func(id int32) bool { return slices.Contains(out, id) })
			p.m.logger.Info("shrinking ISR: followers behind for replica.lag.time.max.ms", "topic", p.topic, "partition", p.index, "out", out, "isr", proposed)
			// The maximal ISR is the current one: records stay
			// unexposed until the controller agreed.
			p.alterISRLocked(proposed, slices.Clone(p.mu.isr))
		}
	}
	p.maybeIncrementHighWatermarkLocked(now)
}

// alterISRLocked marks an ISR change in flight and has the manager send
// it. Without an ISRUpdater (a single node) the ISR cannot change: nothing
// is proposed. Caller holds mu, on a leader, with no change in flight.
func (p *Partition) alterISRLocked(proposed, maximal []int32) {
	u := p.m.isrUpdater()
	if u == nil {
		return
	}
	st := p.state.Load()
	pend := &pendingISR{isr: proposed, maximal: maximal}
	p.mu.pending = pend
	req := AlterISR{
		TopicID: p.topicID, Topic: p.topic, Partition: p.index,
		LeaderID: p.m.nodeID, BrokerEpoch: p.m.brokerEpoch(), LeaderEpoch: st.leaderEpoch, PartitionEpoch: st.partitionEpoch,
	}
	for _, id := range proposed {
		epoch := int64(-1)
		if id == p.m.nodeID {
			epoch = p.m.brokerEpoch()
		} else if f := p.mu.followers[id]; f != nil {
			epoch = f.brokerEpoch
		}
		req.NewISR = append(req.NewISR, ISRMember{BrokerID: id, BrokerEpoch: epoch})
	}
	p.m.sendAlterISR(p, pend, req, u)
}

// alterISRAnswer applies the controller's answer to the change pend
// (Kafka's Partition.handleAlterPartitionUpdate / handleAlterPartitionError)
// and reports whether to send it again.
func (p *Partition) alterISRAnswer(pend *pendingISR, req AlterISR, res AlterISRResult) (retry bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.pending != pend {
		// The image replaced the partition's state meanwhile: it is the
		// truth, whatever the controller answered.
		return false
	}
	st := p.state.Load()
	log := p.m.logger.With("topic", p.topic, "partition", p.index, "proposed", pend.isr)
	switch code := res.ErrorCode; code {
	case 0:
		if res.LeaderEpoch != st.leaderEpoch || res.PartitionEpoch < st.partitionEpoch || st.partitionEpoch != req.PartitionEpoch {
			// Answered for another state than ours; the image decides.
			log.Info("ignoring AlterPartition answer for another partition state", "leaderEpoch", res.LeaderEpoch, "partitionEpoch", res.PartitionEpoch)
			return false
		}
		p.mu.isr = slices.Clone(res.ISR)
		p.mu.pending = nil
		p.storeStateLocked(st.leader, st.leaderEpoch, res.PartitionEpoch, st.minISR, false)
		log.Info("ISR changed", "isr", res.ISR, "partitionEpoch", res.PartitionEpoch)
		p.maybeIncrementHighWatermarkLocked(p.m.nowMs())
		// A produce whose record is under the high watermark re-checks
		// the ISR size (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
		p.wakeProducesLocked(p.log.HighWatermark())
		return false
	case kerr.OperationNotAttempted.Code, kerr.IneligibleReplica.Code:
		// Not applied: back to the committed ISR; a later fetch or check
		// proposes again.
		log.Info("AlterPartition refused; keeping the committed ISR", "err", kerr.ErrorForCode(code))
		p.mu.pending = nil
		return false
	case kerr.FencedLeaderEpoch.Code, kerr.InvalidUpdateVersion.Code, kerr.UnknownTopicOrPartition.Code,
		kerr.UnknownTopicID.Code, kerr.NewLeaderElected.Code, kerr.InvalidRequest.Code, kerr.InvalidReplicaAssignment.Code:
		// Our state is stale: the change stays pending until the image
		// brings the partition's new state.
		log.Info("AlterPartition refused; waiting for the metadata update", "err", kerr.ErrorForCode(code))
		return false
	default:
		log.Warn("AlterPartition failed; retrying", "err", kerr.ErrorForCode(code))
		return true
	}
}

// stillPending reports whether pend is the partition's change in flight.
func (p *Partition) stillPending(pend *pendingISR) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.pending == pend
}

// Backoff between AlterPartition attempts, and each attempt's timeout.
var (
	alterISRBackoffMin = 100 * time.Millisecond
	alterISRBackoffMax = 2 * time.Second
	alterISRTimeout    = 30 * time.Second
)
