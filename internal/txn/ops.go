package txn

import (
	"context"
	"math"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/coordinator"
)

// endTxnWait bounds how long EndTxn waits for the markers after the
// Prepare state is stored. Kafka answers right after the Prepare write and
// lets the client's next AddPartitionsToTxn retry on
// CONCURRENT_TRANSACTIONS until the markers are written; waiting for them
// (they are local on one node) spares clients that retry and its backoff.
// A marker that cannot be written within the bound keeps being retried in
// the background.
const endTxnWait = 5 * time.Second

// epochExhausted is TransactionMetadata.isEpochExhausted: the epoch may
// not be bumped again (one value is kept for fencing).
func epochExhausted(epoch int16) bool { return epoch >= math.MaxInt16-1 }

// InitProducerID serves InitProducerID for a transactional id
// (TransactionCoordinator.handleInitProducerId): it returns the producer
// id and the bumped epoch to use. expectedPID/expectedEpoch are the
// client's current ones (v3+, KIP-360), -1 when it has none. The error is
// PRODUCER_FENCED for a stale producer (the caller maps it to
// INVALID_PRODUCER_EPOCH for versions before 4).
func (c *Coordinator) InitProducerID(ctx context.Context, id string, timeoutMs int32, expectedPID int64, expectedEpoch int16) (int64, int16, *kerr.Error) {
	if id == "" {
		return -1, -1, kerr.InvalidRequest
	}
	if timeoutMs <= 0 || time.Duration(timeoutMs)*time.Millisecond > c.cfg.MaxTimeout {
		return -1, -1, kerr.InvalidTransactionTimeout
	}
	spare := int64(-1) // a producer id allocated for this call, not yet used
	for {
		ps, code := c.lookup(id)
		if code != nil {
			return -1, -1, code
		}
		now := c.now().UnixMilli()
		tm := ps.txns[id]
		if spare < 0 && (tm == nil || (epochExhausted(tm.producerEpoch) && !tm.pending)) {
			// A new producer id is needed: allocate it without the lock
			// and decide again.
			ps.mu.Unlock()
			pid, err := c.cfg.AllocateProducerID(ctx)
			if err != nil {
				c.log.Warn("txn: allocate producer id", "err", err)
				return -1, -1, kerr.CoordinatorNotAvailable
			}
			spare = pid
			continue
		}
		if tm == nil {
			tm = &txnMeta{
				id: id, producerID: spare, previousProducerID: -1,
				producerEpoch: noProducerEpoch, lastProducerEpoch: noProducerEpoch,
				timeoutMs: timeoutMs, state: kmsg.TransactionStateEmpty,
				partitions: map[TopicPartition]struct{}{}, startTimestamp: -1, lastUpdate: now,
			}
			spare = -1
			ps.txns[id] = tm
		}
		if tm.pending {
			ps.mu.Unlock()
			return -1, -1, kerr.ConcurrentTransactions
		}
		if expectedPID >= 0 && !(tm.producerEpoch == noProducerEpoch || expectedPID == tm.producerID ||
			(expectedPID == tm.previousProducerID && epochExhausted(expectedEpoch))) {
			ps.mu.Unlock()
			return -1, -1, kerr.ProducerFenced
		}
		switch tm.state {
		case kmsg.TransactionStateOngoing:
			// Fence the current producer and abort its transaction; the
			// caller retries and gets a second bump once it is over.
			ps.fenceAndAbortLocked(tm)
			ps.mu.Unlock()
			return -1, -1, kerr.ConcurrentTransactions
		case kmsg.TransactionStateEmpty, kmsg.TransactionStateCompleteCommit, kmsg.TransactionStateCompleteAbort:
		default:
			ps.mu.Unlock()
			return -1, -1, kerr.ConcurrentTransactions
		}
		if expectedPID >= 0 && expectedPID == tm.previousProducerID && expectedPID != tm.producerID {
			// A retry after a rotation whose answer was lost.
			pid, epoch := tm.producerID, tm.producerEpoch
			ps.mu.Unlock()
			return pid, epoch, nil
		}
		next := tm.clone()
		if epochExhausted(tm.producerEpoch) {
			if spare < 0 {
				ps.mu.Unlock()
				continue
			}
			next.previousProducerID, next.producerID = tm.producerID, spare
			next.producerEpoch, next.lastProducerEpoch = 0, noProducerEpoch
		} else {
			switch {
			case expectedPID < 0:
				next.producerEpoch, next.lastProducerEpoch = tm.producerEpoch+1, noProducerEpoch
			case expectedEpoch == noProducerEpoch || expectedEpoch == tm.producerEpoch:
				next.producerEpoch, next.lastProducerEpoch = tm.producerEpoch+1, tm.producerEpoch
			case expectedEpoch == tm.lastProducerEpoch:
				// A retry of a bump that succeeded: same answer again.
			default:
				ps.mu.Unlock()
				return -1, -1, kerr.ProducerFenced
			}
		}
		next.state = kmsg.TransactionStateEmpty
		clear(next.partitions)
		next.timeoutMs = timeoutMs
		next.startTimestamp = -1
		next.lastUpdate = now
		tm.pending = true
		ps.mu.Unlock()
		if code := ps.transit(ctx, tm, next); code != nil {
			return -1, -1, code
		}
		return next.producerID, next.producerEpoch, nil
	}
}

// checkProducerLocked validates the producer of a request for tm
// (TransactionCoordinator's checks before a transition).
func checkProducerLocked(tm *txnMeta, pid int64, epoch int16) *kerr.Error {
	switch {
	case tm == nil || tm.producerID != pid:
		return kerr.InvalidProducerIDMapping
	case tm.producerEpoch != epoch:
		return kerr.ProducerFenced
	case tm.pending:
		return kerr.ConcurrentTransactions
	}
	return nil
}

// lookupProducer returns the partition and state of id with ps.mu held,
// once the request's producer passes checkProducerLocked; otherwise the
// code the request answers.
func (c *Coordinator) lookupProducer(id string, pid int64, epoch int16) (*partition, *txnMeta, *kerr.Error) {
	ps, code := c.lookup(id)
	if code != nil {
		return nil, nil, code
	}
	tm := ps.txns[id]
	if code := checkProducerLocked(tm, pid, epoch); code != nil {
		ps.mu.Unlock()
		return nil, nil, code
	}
	return ps, tm, nil
}

// AddPartitions adds partitions to the transaction of id
// (handleAddPartitionsToTransaction), starting it if none is ongoing.
// PRODUCER_FENCED is mapped by the caller for old versions.
func (c *Coordinator) AddPartitions(ctx context.Context, id string, pid int64, epoch int16, tps []TopicPartition) *kerr.Error {
	ps, tm, code := c.lookupProducer(id, pid, epoch)
	if code != nil {
		return code
	}
	switch tm.state {
	case kmsg.TransactionStatePrepareCommit, kmsg.TransactionStatePrepareAbort:
		ps.mu.Unlock()
		return kerr.ConcurrentTransactions
	case kmsg.TransactionStateOngoing:
		all := true
		for _, tp := range tps {
			if _, ok := tm.partitions[tp]; !ok {
				all = false
				break
			}
		}
		if all {
			ps.mu.Unlock()
			return nil
		}
	case kmsg.TransactionStateEmpty, kmsg.TransactionStateCompleteCommit, kmsg.TransactionStateCompleteAbort:
	default:
		ps.mu.Unlock()
		return kerr.InvalidTxnState
	}
	now := c.now().UnixMilli()
	next := tm.clone()
	if tm.state != kmsg.TransactionStateOngoing {
		clear(next.partitions)
		next.startTimestamp = now
	}
	next.state = kmsg.TransactionStateOngoing
	for _, tp := range tps {
		next.partitions[tp] = struct{}{}
	}
	next.lastUpdate = now
	tm.pending = true
	ps.mu.Unlock()
	return ps.transit(ctx, tm, next)
}

// EndTxn commits or aborts the transaction of id (handleEndTransaction):
// it stores PrepareCommit/PrepareAbort, writes the markers and stores
// CompleteCommit/CompleteAbort. It answers once the markers are written
// or after endTxnWait (the Prepare state is durable either way).
func (c *Coordinator) EndTxn(ctx context.Context, id string, pid int64, epoch int16, commit bool) *kerr.Error {
	ps, tm, code := c.lookupProducer(id, pid, epoch)
	if code != nil {
		return code
	}
	switch s := tm.state; {
	case s == kmsg.TransactionStateOngoing:
	case s == kmsg.TransactionStateCompleteCommit && commit, s == kmsg.TransactionStateCompleteAbort && !commit:
		ps.mu.Unlock()
		return nil // a retry of an EndTxn that succeeded
	case s == kmsg.TransactionStatePrepareCommit && commit, s == kmsg.TransactionStatePrepareAbort && !commit:
		ps.mu.Unlock()
		return kerr.ConcurrentTransactions
	default:
		ps.mu.Unlock()
		return kerr.InvalidTxnState
	}
	next := tm.clone()
	next.state = kmsg.TransactionStatePrepareAbort
	if commit {
		next.state = kmsg.TransactionStatePrepareCommit
	}
	next.lastUpdate = c.now().UnixMilli()
	tm.pending = true
	ps.mu.Unlock()
	if code := ps.transit(ctx, tm, next); code != nil {
		return code
	}
	ps.mu.Lock()
	var done <-chan struct{}
	if ps.state == coordinator.Loaded && ps.txns[id] == tm && tm.state == next.state && tm.producerEpoch == epoch {
		done = ps.completeLocked(tm)
	}
	ps.mu.Unlock()
	if done != nil {
		t := time.NewTimer(endTxnWait)
		defer t.Stop()
		select {
		case <-done:
		case <-ctx.Done():
		case <-t.C:
		}
	}
	return nil
}

// VerifyPartition checks that a transactional batch of producer
// pid/epoch for tp belongs to an ongoing transaction of id that added tp
// (KIP-890 part 1, the broker's check before appending). Codes:
// INVALID_PRODUCER_ID_MAPPING, INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE,
// or the coordinator's own state (NOT_COORDINATOR, ...).
func (c *Coordinator) VerifyPartition(id string, pid int64, epoch int16, tp TopicPartition) *kerr.Error {
	ps, code := c.lookup(id)
	if code != nil {
		return code
	}
	defer ps.mu.Unlock()
	tm := ps.txns[id]
	switch {
	case tm == nil || tm.producerID != pid:
		return kerr.InvalidProducerIDMapping
	case tm.producerEpoch != epoch:
		return kerr.InvalidProducerEpoch
	case tm.state != kmsg.TransactionStateOngoing:
		return kerr.InvalidTxnState
	}
	if _, ok := tm.partitions[tp]; !ok {
		return kerr.InvalidTxnState
	}
	return nil
}

// Description is the state of one transactional id (DescribeTransactions,
// ListTransactions).
type Description struct {
	TransactionalID     string
	State               kmsg.TransactionState
	ProducerID          int64
	ProducerEpoch       int16
	TimeoutMillis       int32
	StartTimestamp      int64 // ms; -1 when no transaction is open
	LastUpdateTimestamp int64 // ms
	Partitions          []TopicPartition
}

func (tm *txnMeta) describe() Description {
	return Description{
		TransactionalID: tm.id, State: tm.state, ProducerID: tm.producerID, ProducerEpoch: tm.producerEpoch,
		TimeoutMillis: tm.timeoutMs, StartTimestamp: tm.startTimestamp, LastUpdateTimestamp: tm.lastUpdate,
		Partitions: tm.sortedPartitions(),
	}
}

// Describe returns the state of id; TRANSACTIONAL_ID_NOT_FOUND when it is
// unknown, or the coordinator's state code.
func (c *Coordinator) Describe(id string) (Description, *kerr.Error) {
	ps, code := c.lookup(id)
	if code != nil {
		return Description{}, code
	}
	defer ps.mu.Unlock()
	tm := ps.txns[id]
	if tm == nil {
		return Description{}, kerr.TransactionalIDNotFound
	}
	return tm.describe(), nil
}

// List returns every transactional id of the loaded partitions, by id,
// and COORDINATOR_LOAD_IN_PROGRESS when a partition is still loading.
func (c *Coordinator) List() ([]Description, *kerr.Error) {
	var out []Description
	var code *kerr.Error
	for _, ps := range c.loadedPartitions() {
		ps.mu.Lock()
		if e := ps.stateErrorLocked(); e != nil {
			if e == kerr.CoordinatorLoadInProgress {
				code = e
			}
			ps.mu.Unlock()
			continue
		}
		for _, tm := range ps.txns {
			out = append(out, tm.describe())
		}
		ps.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TransactionalID < out[j].TransactionalID })
	return out, code
}
