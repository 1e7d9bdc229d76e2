package sim

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"samsa/internal/record"
	"samsa/internal/replica"
	"samsa/internal/replication"
	"samsa/internal/storage"
)

// The data path of the simulation: the brokers' replica fetchers, the
// producers and their acknowledgements.

// fetchRound plays b's replica fetcher once: one fetch per partition it
// follows from the leader it knows, applied as internal/replication does.
func (w *world) fetchRound(b *broker) {
	for i := range w.o.partitions {
		p, err := b.rm.Replica(topicName, int32(i))
		if err != nil || p.IsLeader() || p.Leader() < 0 || p.Leader() == b.id || w.fetching(b, int32(i)) {
			continue
		}
		lb := w.brokers[p.Leader()-1]
		if !lb.alive || !lb.serving || !w.reachable(b.id, lb.id) {
			continue
		}
		lp, err := lb.rm.Replica(topicName, int32(i))
		if err != nil {
			continue
		}
		lastEpoch := p.LatestEpoch()
		if w.o.brokenNoTruncate {
			lastEpoch = -1
		}
		maxBytes := int32(1 << 20)
		if w.rng.Intn(4) == 0 {
			maxBytes = int32(1 + w.rng.Intn(300)) // one batch (KIP-74), sometimes a few
		}
		fp := replica.FetchParams{
			ReplicaID: b.id, ReplicaEpoch: b.epoch, FetchOffset: p.LogEndOffset(), CurrentLeaderEpoch: p.LeaderEpoch(),
			LastFetchedEpoch: lastEpoch, LogStartOffset: p.LogStartOffset(), MaxBytes: maxBytes, MinOneMessage: true,
		}
		res, err := lp.Fetch(context.Background(), fp)
		if errors.Is(err, storage.ErrOffsetOutOfRange) {
			w.outOfRange(b, p, lp)
			continue
		}
		if err != nil {
			w.stats["fetch errors"]++
			continue
		}
		if w.chance(1, 5) {
			// The answer is delayed by the network.
			pooled := res.Records
			res.Records = slices.Clone(pooled)
			storage.ReleaseBuffer(pooled)
			w.inflight = append(w.inflight, &heldFetch{b: b, inc: b.inc, i: int32(i), p: p, leader: lb.id, epoch: fp.CurrentLeaderEpoch,
				offset: fp.FetchOffset, res: res, due: w.step + 1 + w.rng.Intn(10)})
			continue
		}
		w.applyFetch(b, int32(i), p, res)
		storage.ReleaseBuffer(res.Records)
	}
	w.syncMirrors(b)
}

// fetching reports whether b has a fetch answer of partition i in flight.
func (w *world) fetching(b *broker, i int32) bool {
	for _, h := range w.inflight {
		if h.b == b && h.inc == b.inc && h.i == i {
			return true
		}
	}
	return false
}

// deliverFetches applies the delayed fetch answers that are due, each
// only if its partition is still in the state it was asked in (same
// leader, leader epoch and log end offset), as the fetcher does.
func (w *world) deliverFetches() {
	keep := w.inflight[:0]
	for _, h := range w.inflight {
		switch {
		case h.b.inc != h.inc || !h.b.alive:
		case h.due > w.step:
			keep = append(keep, h)
		case h.p.IsLeader() || h.p.Leader() != h.leader || h.p.LeaderEpoch() != h.epoch || h.p.LogEndOffset() != h.offset:
			w.stats["late fetch answers dropped"]++
		default:
			w.stats["late fetch answers applied"]++
			w.applyFetch(h.b, h.i, h.p, h.res)
			w.syncMirror(h.b, h.i)
		}
	}
	w.inflight = keep
}

// applyFetch applies a fetch answer as internal/replication does.
func (w *world) applyFetch(b *broker, i int32, p *replica.Partition, res replica.FetchResult) {
	a, err := replication.ApplyAnswer(p, res.DivergingEpoch.Epoch, res.DivergingEpoch.EndOffset, res.Records, res.HighWatermark, res.LogStartOffset)
	switch {
	case err != nil:
		w.event("broker %d p%d: apply failed: %v", b.id, i, err)
	case a.Diverged:
		w.event("broker %d p%d: diverging epoch %d end %d: truncated %d -> %d", b.id, i, res.DivergingEpoch.Epoch, res.DivergingEpoch.EndOffset, a.LogEndOffset, a.TruncateTo)
		w.stats["truncations"]++
	}
}

// outOfRange is the fetcher's OFFSET_OUT_OF_RANGE handling (ListOffsets
// as a replica: truncate to the leader's end when it is below ours).
func (w *world) outOfRange(b *broker, p, lp *replica.Partition) {
	end, _, _, err := lp.ListOffset(-1, 0, b.id, p.LeaderEpoch())
	if err != nil {
		return
	}
	if leo := p.LogEndOffset(); end < leo {
		w.event("broker %d p%d: out of range, leader ends at %d below %d: truncating", b.id, lp.LeaderEpoch(), end, leo)
		_ = p.TruncateTo(end)
		return
	}
	start, _, _, err := lp.ListOffset(-2, 0, b.id, p.LeaderEpoch())
	if err == nil && start > p.LogEndOffset() {
		_ = p.TruncateFullyAndStartAt(start)
	}
}

// produce appends one acks=all batch on a broker that believes it leads
// partition i (several may: a zombie too).
func (w *world) produce(i int32) {
	var cands []*broker
	for _, b := range w.brokers {
		if !b.alive || !b.serving {
			continue
		}
		if p, err := b.rm.Partition(topicName, i); err == nil && p.IsLeader() {
			cands = append(cands, b)
		}
	}
	if len(cands) == 0 {
		return
	}
	b := cands[w.rng.Intn(len(cands))]
	p, _ := b.rm.Partition(topicName, i)
	n := 1 + w.rng.Intn(3)
	recs := make([]record.Record, n)
	values := make([]string, n)
	now := time.Now().UnixMilli()
	for k := range recs {
		w.nextValue++
		values[k] = "v" + strconv.Itoa(w.nextValue)
		recs[k] = record.Record{Timestamp: now, Value: []byte(values[k])}
	}
	batch, err := record.Build(record.BuildOptions{}, recs)
	if err != nil {
		w.t.Fatal(err)
	}
	epoch := p.LeaderEpoch()
	info, err := p.Append(batch, -1)
	if err != nil {
		w.stats["produce errors"]++
		return
	}
	w.stats["produced"]++
	w.pending = append(w.pending, &pendingAck{broker: b, inc: b.inc, p: p, partition: i, epoch: epoch, first: info.FirstOffset, values: values, sent: w.step})
	w.syncMirror(b, i)
}

// checkAcks answers the pending produces: acknowledged once the leader's
// high watermark passed the batch while it still leads in the same epoch
// with an ISR of at least min.insync.replicas; failed when the leader
// changed or died, or after the request timeout.
func (w *world) checkAcks() {
	keep := w.pending[:0]
	for _, pa := range w.pending {
		last := pa.first + int64(len(pa.values)) - 1
		switch {
		case !pa.broker.alive || pa.broker.inc != pa.inc || !pa.p.IsLeader() || pa.p.LeaderEpoch() != pa.epoch:
			w.stats["produces failed (leader change)"]++
		case pa.p.HighWatermark() > last:
			if len(pa.p.ISR()) < minISR {
				w.stats["produces failed (NOT_ENOUGH_REPLICAS_AFTER_APPEND)"]++
				continue
			}
			for k, v := range pa.values {
				off := pa.first + int64(k)
				if old := w.acked[pa.partition].get(off); old != "" {
					w.violate("lost", "partition %d: offset %d acknowledged twice: %q, then %q", pa.partition, off, old, v)
				}
				w.acked[pa.partition].set(off, v)
			}
			w.stats["acked records"] += len(pa.values)
			w.event("ack p%d offsets %d-%d from broker %d epoch %d", pa.partition, pa.first, last, pa.broker.id, pa.epoch)
		case w.step-pa.sent > ackTimeoutSteps:
			w.stats["produces failed (timeout)"]++
		default:
			keep = append(keep, pa)
		}
	}
	w.pending = keep
}
