package txn

import (
	"errors"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/coordinator"
	"samsa/internal/record"
)

// Marker retry backoff (Kafka's TransactionMarkerChannelManager retries
// on every inter-broker send; we back off so an offline partition does
// not spin).
const (
	markerBackoffMin = 20 * time.Millisecond
	markerBackoffMax = time.Second
)

// completeLocked starts (or joins) writing the markers of tm's ending
// transaction and then storing its Complete state. tm is in
// PrepareCommit or PrepareAbort. The returned channel is closed when that
// is done or abandoned (unload, close, fenced). Caller holds ps.mu.
func (ps *partition) completeLocked(tm *txnMeta) <-chan struct{} {
	if tm.done != nil {
		return tm.done
	}
	done := make(chan struct{})
	m := Marker{
		ProducerID:       tm.producerID,
		ProducerEpoch:    tm.producerEpoch,
		Commit:           tm.state == kmsg.TransactionStatePrepareCommit,
		CoordinatorEpoch: ps.coordinatorEpoch,
		Partitions:       tm.sortedPartitions(),
	}
	if !ps.c.parts.Enter() {
		close(done)
		return done
	}
	tm.done = done
	go func() {
		defer ps.c.parts.Done()
		defer close(done)
		ps.finish(tm, m)
		ps.mu.Lock()
		if tm.done == done {
			tm.done = nil
		}
		ps.mu.Unlock()
	}()
	return done
}

// finish writes m's markers until each is written (or its partition is
// gone), then stores the Complete state.
func (ps *partition) finish(tm *txnMeta, m Marker) {
	backoff := markerBackoffMin
	sleep := func() bool {
		t := time.NewTimer(backoff)
		defer t.Stop()
		backoff = min(2*backoff, markerBackoffMax)
		select {
		case <-t.C:
			return true
		case <-ps.ctx.Done():
			return false
		}
	}
	remaining := m.Partitions
	for len(remaining) > 0 {
		if ps.ctx.Err() != nil {
			return
		}
		if ps.c.cfg.Markers == nil {
			ps.c.log.Error("txn: no marker writer; transaction left in prepare state", "transactional.id", tm.id)
			return
		}
		mm := m
		mm.Partitions = remaining
		errs := ps.c.cfg.Markers.WriteTxnMarkers(ps.ctx, mm)
		var retry []TopicPartition
		for i, tp := range remaining {
			var err error
			if i < len(errs) {
				err = errs[i]
			} else {
				err = kerr.UnknownServerError
			}
			switch {
			case err == nil:
			case errors.Is(err, kerr.UnknownTopicOrPartition):
				ps.c.log.Info("txn: partition gone, no marker written", "transactional.id", tm.id,
					"topic", tp.Topic, "partition", tp.Partition)
			case errors.Is(err, kerr.TransactionCoordinatorFenced):
				ps.c.log.Warn("txn: coordinator fenced while writing markers", "transactional.id", tm.id)
				return
			default:
				ps.c.log.Debug("txn: marker not written, retrying", "transactional.id", tm.id,
					"topic", tp.Topic, "partition", tp.Partition, "err", err)
				retry = append(retry, tp)
			}
		}
		remaining = retry
		if len(remaining) > 0 && !sleep() {
			return
		}
	}
	want := kmsg.TransactionStateCompleteAbort
	if m.Commit {
		want = kmsg.TransactionStateCompleteCommit
	}
	backoff = markerBackoffMin
	for {
		ps.mu.Lock()
		if ps.state != coordinator.Loaded || ps.txns[tm.id] != tm || tm.producerEpoch != m.ProducerEpoch ||
			tm.producerID != m.ProducerID || tm.pending ||
			(tm.state != kmsg.TransactionStatePrepareCommit && tm.state != kmsg.TransactionStatePrepareAbort) {
			ps.mu.Unlock()
			return
		}
		next := tm.clone()
		next.state = want
		clear(next.partitions)
		next.lastUpdate = ps.c.now().UnixMilli()
		tm.pending = true
		ps.mu.Unlock()
		code := ps.transit(ps.ctx, tm, next)
		if code == nil || code == kerr.NotCoordinator {
			return
		}
		ps.c.log.Warn("txn: cannot store completed transaction, retrying", "transactional.id", tm.id, "err", code)
		if !sleep() {
			return
		}
	}
}

// fenceAndAbortLocked bumps tm's epoch and aborts its ongoing transaction
// with the new epoch (TransactionMetadata.prepareFenceProducerEpoch, then
// an abort not from the client): markers carrying the bumped epoch fence
// the producer on every partition. Runs in the background; tm is pending
// until the PrepareAbort state is stored. Caller holds ps.mu.
func (ps *partition) fenceAndAbortLocked(tm *txnMeta) {
	next := tm.clone()
	if next.producerEpoch < math.MaxInt16 {
		next.producerEpoch++
	}
	next.state = kmsg.TransactionStatePrepareAbort
	next.lastUpdate = ps.c.now().UnixMilli()
	if !ps.c.parts.Enter() {
		return
	}
	tm.pending = true
	go func() {
		defer ps.c.parts.Done()
		if code := ps.transit(ps.ctx, tm, next); code != nil {
			ps.c.log.Warn("txn: cannot abort transaction", "transactional.id", tm.id, "err", code)
			return
		}
		ps.mu.Lock()
		if ps.state == coordinator.Loaded && ps.txns[tm.id] == tm && tm.state == kmsg.TransactionStatePrepareAbort {
			ps.completeLocked(tm)
		}
		ps.mu.Unlock()
	}()
}

// AbortTimedOutTransactions aborts, with an epoch bump, every ongoing
// transaction older than its timeout
// (TransactionCoordinator.abortTimedOutTransactions). The sweep loop runs
// it every transaction.abort.timed.out.transaction.cleanup.interval.ms;
// the aborts finish in the background.
func (c *Coordinator) AbortTimedOutTransactions() {
	now := c.now().UnixMilli()
	for _, ps := range c.loadedPartitions() {
		ps.mu.Lock()
		if ps.state == coordinator.Loaded {
			for _, tm := range ps.txns {
				if tm.state == kmsg.TransactionStateOngoing && !tm.pending &&
					tm.startTimestamp+int64(tm.timeoutMs) <= now {
					c.log.Info("txn: aborting timed-out transaction", "transactional.id", tm.id,
						"producer.id", tm.producerID, "producer.epoch", tm.producerEpoch,
						"timeout.ms", tm.timeoutMs)
					ps.fenceAndAbortLocked(tm)
				}
			}
		}
		ps.mu.Unlock()
	}
}

// ExpireTransactionalIDs removes the ids with no transaction in progress
// whose last update is transactional.id.expiration.ms old, writing one
// tombstone batch per partition
// (TransactionStateManager.removeExpiredTransactionalIds). The sweep loop
// runs it every transaction.remove.expired.transaction.cleanup.interval.ms.
func (c *Coordinator) ExpireTransactionalIDs() {
	now := c.now().UnixMilli()
	for _, ps := range c.loadedPartitions() {
		ps.mu.Lock()
		if ps.state != coordinator.Loaded {
			ps.mu.Unlock()
			continue
		}
		var expired []*txnMeta
		for _, tm := range ps.txns {
			switch tm.state {
			case kmsg.TransactionStateEmpty, kmsg.TransactionStateCompleteCommit, kmsg.TransactionStateCompleteAbort:
				if !tm.pending && tm.lastUpdate+c.cfg.IDExpiration.Milliseconds() <= now {
					tm.pending = true
					expired = append(expired, tm)
				}
			}
		}
		ps.mu.Unlock()
		if len(expired) == 0 {
			continue
		}
		recs := make([]record.Record, 0, len(expired))
		for _, tm := range expired {
			r := tm.record(now)
			r.Value = nil
			recs = append(recs, r)
		}
		err := ps.appendRecords(ps.ctx, recs)
		ps.mu.Lock()
		for _, tm := range expired {
			tm.pending = false
			if err == nil && ps.txns[tm.id] == tm {
				tm.state = kmsg.TransactionStateDead
				delete(ps.txns, tm.id)
			}
		}
		ps.mu.Unlock()
		if err != nil {
			c.log.Warn("txn: cannot remove expired transactional ids", "partition", ps.id, "err", err)
		} else {
			c.log.Info("txn: removed expired transactional ids", "partition", ps.id, "count", len(expired))
		}
	}
}
