package txn

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/coordinator"
	"samsa/internal/record"
)

// partition is one __transaction_state partition coordinated here.
type partition struct {
	c                *Coordinator
	id               int32
	part             Partition
	coordinatorEpoch int32

	// ctx is cancelled when the partition is unloaded or the coordinator
	// closes: writes and marker writers stop.
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	state coordinator.State   // guarded by mu
	txns  map[string]*txnMeta // by transactional id; guarded by mu
}

func newPartition(c *Coordinator, id int32, part Partition, coordinatorEpoch int32) *partition {
	ps := &partition{c: c, id: id, part: part, coordinatorEpoch: coordinatorEpoch, txns: make(map[string]*txnMeta)}
	ps.ctx, ps.cancel = context.WithCancel(c.parts.Context())
	return ps
}

func (ps *partition) stateErrorLocked() *kerr.Error { return ps.state.Err() }

func (ps *partition) shutdown() {
	ps.cancel()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.state = coordinator.Unloaded
	ps.txns = make(map[string]*txnMeta)
}

// persist writes tm's record. The caller holds no lock and has marked the
// id pending.
func (ps *partition) persist(ctx context.Context, tm *txnMeta) error {
	return ps.appendRecords(ctx, []record.Record{tm.record(ps.c.now().UnixMilli())})
}

// appendRecords writes recs as one uncompressed batch and returns once it
// is committed; it stops when ctx ends or the partition is unloaded.
func (ps *partition) appendRecords(ctx context.Context, recs []record.Record) error {
	_, err := coordinator.Append(ctx, ps.ctx, ps.part, record.BuildOptions{}, recs)
	return err
}

// transit writes next as the new state of the id cur belongs to and
// installs it on success. cur is pending (set by the caller under mu);
// the caller holds no lock. A nil error means next is installed.
func (ps *partition) transit(ctx context.Context, cur, next *txnMeta) *kerr.Error {
	err := ps.persist(ctx, next)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	cur.pending = false
	if err != nil {
		return ps.c.appendErrorCode(err)
	}
	if ps.state != coordinator.Loaded || ps.txns[cur.id] != cur {
		return kerr.NotCoordinator
	}
	cur.install(next)
	return nil
}

// load replays the partition and starts serving it; transactions found
// half-ended get their markers written again.
func (ps *partition) load() {
	start := time.Now()
	txns, err := ps.replay()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.state != coordinator.Loading {
		return
	}
	if err != nil {
		ps.state = coordinator.Failed
		ps.c.log.Error("txn: loading __transaction_state failed", "partition", ps.id, "err", err)
		return
	}
	ps.txns = txns
	ps.state = coordinator.Loaded
	resumed := 0
	for _, tm := range txns {
		if tm.state == kmsg.TransactionStatePrepareCommit || tm.state == kmsg.TransactionStatePrepareAbort {
			ps.completeLocked(tm)
			resumed++
		}
	}
	ps.c.log.Info("txn: loaded __transaction_state partition", "partition", ps.id,
		"transactional.ids", len(txns), "resumed", resumed, "took", time.Since(start))
}

// replay reads every record to the log end (see coordinator.Replay); the
// last record of each id wins and tombstones delete.
func (ps *partition) replay() (map[string]*txnMeta, error) {
	txns := make(map[string]*txnMeta)
	err := coordinator.Replay(ps.ctx, ps.part, func(batch []byte, h *record.Header) {
		if h.Control() {
			return
		}
		err := record.ForEachRecord(batch, func(_ *record.Header, r *record.Record) error {
			if err := replayRecord(txns, r.Key, r.Value); err != nil {
				ps.c.log.Error("txn: skipping undecodable __transaction_state record",
					"partition", ps.id, "offset", r.Offset, "err", err)
			}
			return nil
		})
		if err != nil {
			ps.c.log.Error("txn: skipping undecodable __transaction_state batch",
				"partition", ps.id, "offset", h.BaseOffset, "err", err)
		}
	})
	if err != nil {
		return nil, err
	}
	return txns, nil
}
