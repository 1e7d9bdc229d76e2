package group

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/coordinator"
	"samsa/internal/record"
	"samsa/internal/storage"
)

// Transactional offset commits (KIP-98, KIP-447), as Kafka 4.x's
// OffsetMetadataManager serves them for classic groups.
//
// TxnOffsetCommit writes the offsets to __consumer_offsets as one
// transactional batch carrying the producer's id and epoch, and keeps them
// pending per producer id (group.txnOffsets, indexed by
// partition.txnGroups). OffsetFetch does not see pending offsets; with
// RequireStable (v7+) a partition with a pending offset answers
// UNSTABLE_OFFSET_COMMIT. When the transaction coordinator has written the
// transaction's marker to the partition it calls CompleteTxn: commit makes
// the offsets committed, abort drops them. The replay of a partition does
// the same from the log (records.go): transactional offsets are pending
// until their producer's control batch.

// producerSeq is what the log holds about one producer id: its epoch and
// the base sequence its next batch must carry, following the storage
// engine's producer state (storage.producerEntry: a new epoch starts at 0,
// a control batch adds no sequence).
//
// Kafka's coordinator writes every transactional batch with base sequence
// 0 and appends it with AppendOrigin.COORDINATOR, which checks the epoch
// but not the sequence. Our Partition.Append checks sequences as for any
// producer, so the coordinator numbers its batches itself; an
// implementation that skips the check (as Kafka does) accepts them too.
type producerSeq struct {
	seen  bool
	epoch int16
	next  int32
}

// after returns the state once batch h of this producer is in the log.
func (s producerSeq) after(h *record.Header) producerSeq {
	if !s.seen || h.ProducerEpoch != s.epoch {
		s = producerSeq{seen: true, epoch: h.ProducerEpoch}
	}
	if !h.Control() {
		s.next = record.IncrementSequence(h.LastSequence(), 1)
	}
	return s
}

// sequenceFor is the base sequence of producerID's next batch at epoch.
func (s producerSeq) sequenceFor(epoch int16) int32 {
	if s.seen && s.epoch == epoch {
		return s.next
	}
	return 0
}

// txnEnd is a transaction marker reported by CompleteTxn.
type txnEnd struct {
	producerID    int64
	producerEpoch int16
	commit        bool
}

// TxnOffsetCommit serves TxnOffsetCommit v0-v4 (v4 only adds
// TRANSACTION_ABORTABLE, which we never answer: the transaction is not
// verified with the transaction coordinator, KIP-890). The offsets are
// written as one transactional batch with the request's producer id and
// epoch and acknowledged once it is committed; they become visible when
// the transaction commits (CompleteTxn).
func (c *Coordinator) TxnOffsetCommit(ctx context.Context, req *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	resp.Version = req.Version
	codes := newCodeGrid(req.Topics, func(t kmsg.TxnOffsetCommitRequestTopic) int { return len(t.Partitions) })
	c.txnOffsetCommit(ctx, req, codes)
	for i, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codes.code(i, j)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// txnOffsetCommit fills codes.
func (c *Coordinator) txnOffsetCommit(ctx context.Context, req *kmsg.TxnOffsetCommitRequest, codes codeGrid) {
	setAll := codes.setUnset
	gen, memberID, instanceID := req.Generation, req.MemberID, req.InstanceID
	if req.Version < 3 {
		gen, memberID, instanceID = -1, "", nil
	}
	if req.Group == "" {
		setAll(kerr.InvalidGroupID)
		return
	}
	ps, code := c.beginGroupWrite(ctx, req.Group)
	if code != nil {
		setAll(code)
		return
	}
	now := c.now()
	g, created, code := ps.commitGroupLocked(req.Group, gen, now, func(g *group) *kerr.Error {
		return g.validateTxnCommitLocked(memberID, instanceID, gen)
	})
	if code != nil {
		setAll(code)
		return
	}

	pend, recs := c.pendingCommits(req.Group, codes, func(i, j int) (topicPartition, *string, offsetValue) {
		t := &req.Topics[i]
		p := &t.Partitions[j]
		v := offsetValue{offset: p.Offset, leaderEpoch: -1,
			commitTimestamp: now.UnixMilli(), expireTimestamp: noExpireTimestamp}
		if req.Version >= 2 {
			v.leaderEpoch = p.LeaderEpoch
		}
		return topicPartition{t.Topic, p.Partition}, p.Metadata, v
	})
	if len(pend) == 0 {
		ps.dropCreatedLocked(g, created)
		ps.unlockWrite()
		ps.unlock()
		return
	}
	opts := record.BuildOptions{
		Idempotent:    true,
		Transactional: true,
		ProducerID:    req.ProducerID,
		ProducerEpoch: req.ProducerEpoch,
		BaseSequence:  ps.producers[req.ProducerID].sequenceFor(req.ProducerEpoch),
	}
	base, err := ps.appendForGroupLocked(ctx, g, opts, recs)
	if err != nil {
		pend.fail(codes, c.txnAppendErrorCode(err))
		ps.dropCreatedLocked(g, created)
	} else {
		ps.producers[req.ProducerID] = ps.producers[req.ProducerID].after(&record.Header{
			ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch,
			BaseSequence: opts.BaseSequence, LastOffsetDelta: int32(len(recs) - 1),
		})
		for k, pc := range pend {
			pc.v.recordOffset = base + int64(k)
			ps.addTxnOffsetLocked(g, req.ProducerID, pc.tp, pc.v)
		}
	}
	ps.unlockWrite()
	ps.unlock()
}

// txnAppendErrorCode maps the failure of a transactional append: a fenced
// producer epoch answers INVALID_PRODUCER_EPOCH (the client's
// ProducerFencedException), as Kafka's coordinator passes it on; the rest
// as for any append.
func (c *Coordinator) txnAppendErrorCode(err error) *kerr.Error {
	if errors.Is(err, storage.ErrInvalidProducerEpoch) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.ProducerFenced) {
		return kerr.InvalidProducerEpoch
	}
	return c.appendErrorCode(err)
}

// validateTxnCommitLocked is validateCommitLocked for a transactional
// commit (ClassicGroup.validateOffsetCommit with isTransactional): a
// commit without member id and generation is accepted whatever the state
// (v0-v2 requests carry neither), and no commit is refused because the
// group is rebalancing.
func (g *group) validateTxnCommitLocked(memberID string, instanceID *string, gen int32) *kerr.Error {
	if gen < 0 && memberID == "" && instanceID == nil {
		return nil
	}
	if code := g.validateMemberLocked(memberID, instanceID); code != nil {
		return code
	}
	if gen != g.generation {
		return kerr.IllegalGeneration
	}
	return nil
}

// CompleteTxn tells the coordinator that a transaction marker of
// producerID (at producerEpoch) was written to __consumer_offsets
// partition partition: on commit the producer's pending offsets for the
// groups of that partition become committed (each replacing the committed
// offset only if that one was written before it, as
// OffsetMetadataManager.replayEndTransactionMarker does), on abort they
// are dropped. It returns once memory is updated; it waits for a
// TxnOffsetCommit being written to finish first. A partition not
// coordinated here is ignored (its next load replays the marker); one
// still loading applies the end once loaded.
func (c *Coordinator) CompleteTxn(partition int32, producerID int64, producerEpoch int16, commit bool) {
	ps := c.parts.Get(partition)
	if ps == nil {
		return
	}
	if err := ps.lockWrite(ps.ctx); err != nil {
		return
	}
	ps.mu.Lock()
	e := txnEnd{producerID, producerEpoch, commit}
	switch ps.state {
	case coordinator.Loading:
		ps.loadingTxns = append(ps.loadingTxns, e)
	case coordinator.Loaded:
		ps.endTxnLocked(e)
	}
	ps.mu.Unlock()
	ps.unlockWrite()
}

// endTxnLocked applies a transaction marker to memory.
func (ps *partition) endTxnLocked(e txnEnd) {
	ps.producers[e.producerID] = ps.producers[e.producerID].after(&record.Header{
		ProducerID: e.producerID, ProducerEpoch: e.producerEpoch, Attributes: controlAttributes,
	})
	ids := ps.txnGroups[e.producerID]
	delete(ps.txnGroups, e.producerID)
	for id := range ids {
		g := ps.groups[id]
		if g == nil {
			continue
		}
		offs := g.txnOffsets[e.producerID]
		delete(g.txnOffsets, e.producerID)
		if !e.commit {
			continue
		}
		for tp, v := range offs {
			if cur, ok := g.offsets[tp]; ok && cur.recordOffset > v.recordOffset {
				continue // a later non-transactional commit wins
			}
			g.offsets[tp] = v
		}
	}
}

// controlAttributes are the attributes of a transaction marker batch
// (transactional and control bits).
const controlAttributes = 0x30

// addTxnOffsetLocked records v as producerID's pending offset of tp in g.
func (ps *partition) addTxnOffsetLocked(g *group, producerID int64, tp topicPartition, v offsetValue) {
	if g.txnOffsets == nil {
		g.txnOffsets = make(map[int64]map[topicPartition]offsetValue)
	}
	m := g.txnOffsets[producerID]
	if m == nil {
		m = make(map[topicPartition]offsetValue)
		g.txnOffsets[producerID] = m
	}
	m[tp] = v
	ids := ps.txnGroups[producerID]
	if ids == nil {
		ids = make(map[string]struct{})
		ps.txnGroups[producerID] = ids
	}
	ids[g.id] = struct{}{}
}

// dropTxnOffsetsLocked drops every pending offset of tp in g, as a
// tombstone of tp does when it is replayed.
func (ps *partition) dropTxnOffsetsLocked(g *group, tp topicPartition) {
	for pid, m := range g.txnOffsets {
		delete(m, tp)
		if len(m) == 0 {
			delete(g.txnOffsets, pid)
			ps.untrackTxnLocked(pid, g.id)
		}
	}
}

// dropGroupTxnOffsetsLocked drops every pending offset of g.
func (ps *partition) dropGroupTxnOffsetsLocked(g *group) {
	for pid := range g.txnOffsets {
		ps.untrackTxnLocked(pid, g.id)
	}
	g.txnOffsets = nil
}

func (ps *partition) untrackTxnLocked(producerID int64, id string) {
	if ids := ps.txnGroups[producerID]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(ps.txnGroups, producerID)
		}
	}
}

// hasTxnOffsetLocked reports whether an open transaction holds an offset
// of tp in g (OffsetMetadataManager.hasPendingTransactionalOffsets).
func (g *group) hasTxnOffsetLocked(tp topicPartition) bool {
	for _, m := range g.txnOffsets {
		if _, ok := m[tp]; ok {
			return true
		}
	}
	return false
}

// txnOnlyTopicPartitionsLocked returns the partitions with pending offsets
// in g that have no committed offset.
func (g *group) txnOnlyTopicPartitionsLocked() map[topicPartition]offsetValue {
	out := make(map[topicPartition]offsetValue)
	for _, m := range g.txnOffsets {
		for tp, v := range m {
			if _, ok := g.offsets[tp]; !ok {
				out[tp] = v
			}
		}
	}
	return out
}
