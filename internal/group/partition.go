package group

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/internal/coordinator"
	"samsa/internal/record"
)

// partition is one __consumer_offsets partition coordinated here and the
// groups that map to it.
type partition struct {
	c    *Coordinator
	id   int32
	part Partition

	// ctx is cancelled when the partition is unloaded or the coordinator
	// closes; background appends and the replay use it.
	ctx    context.Context
	cancel context.CancelFunc

	// writeSem (capacity 1) serializes appends: whoever holds it snapshots
	// state under mu, appends without mu, then applies under mu, so memory
	// changes in log order. Lock order: writeSem before mu.
	writeSem chan struct{}

	mu sync.Mutex
	// state is guarded by mu.
	state coordinator.State
	// groups by id. Guarded by mu.
	groups map[string]*group
	// dirty are groups whose metadata must be written after mu is
	// released (see unlock). Guarded by mu.
	dirty map[string]struct{}

	// txnGroups indexes group.txnOffsets: producer id -> ids of the groups
	// holding offsets of its open transaction. Guarded by mu.
	txnGroups map[int64]map[string]struct{}
	// producers are the epoch and next sequence of every producer that
	// wrote a batch here (see txnSequenceLocked). Guarded by mu.
	producers map[int64]producerSeq
	// loadingTxns are transaction ends (CompleteTxn) reported while the
	// partition was loading, applied once it is. Guarded by mu.
	loadingTxns []txnEnd
}

func newPartition(c *Coordinator, id int32, part Partition) *partition {
	ps := &partition{
		c:        c,
		id:       id,
		part:     part,
		writeSem: make(chan struct{}, 1),
		groups:   make(map[string]*group),
		dirty:    make(map[string]struct{}),

		txnGroups: make(map[int64]map[string]struct{}),
		producers: make(map[int64]producerSeq),
	}
	ps.ctx, ps.cancel = context.WithCancel(c.parts.Context())
	return ps
}

func (ps *partition) stateErrorLocked() *kerr.Error { return ps.state.Err() }

// lockWrite takes the write semaphore, giving up when ctx or the partition
// is done.
func (ps *partition) lockWrite(ctx context.Context) error {
	select {
	case ps.writeSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-ps.ctx.Done():
		return errNotCoordinator
	}
}

func (ps *partition) unlockWrite() { <-ps.writeSem }

// beginWrite takes writeSem and then mu for a request that writes to the
// partition. On success the caller holds both; on failure it holds
// neither, and the code says why (the request or the partition ended, or
// the partition is not loaded).
func (ps *partition) beginWrite(ctx context.Context) *kerr.Error {
	if err := ps.lockWrite(ctx); err != nil {
		return ps.c.appendErrorCode(err)
	}
	ps.mu.Lock()
	if code := ps.stateErrorLocked(); code != nil {
		ps.unlockWrite()
		ps.mu.Unlock()
		return code
	}
	return nil
}

// appendRecords appends recs as one batch. The caller holds writeSem. ctx
// is the request's; the append also stops when the partition is unloaded.
func (ps *partition) appendRecords(ctx context.Context, recs []record.Record) error {
	_, err := ps.appendBatch(ctx, record.BuildOptions{}, recs)
	return err
}

// appendBatch appends recs as one batch built with opts and returns its
// base offset: record i of recs is at base offset + i. The caller holds
// writeSem.
func (ps *partition) appendBatch(ctx context.Context, opts record.BuildOptions, recs []record.Record) (int64, error) {
	return coordinator.Append(ctx, ps.ctx, ps.part, opts, recs)
}

// appendForGroupLocked appends recs for g as appendBatch does, releasing mu
// during the append; it fails with errNotCoordinator when the partition
// was unloaded or g removed meanwhile. The caller holds writeSem and mu.
func (ps *partition) appendForGroupLocked(ctx context.Context, g *group, opts record.BuildOptions, recs []record.Record) (int64, error) {
	ps.mu.Unlock()
	base, err := ps.appendBatch(ctx, opts, recs)
	ps.mu.Lock()
	if err == nil && (ps.state != coordinator.Loaded || !g.alive()) {
		err = errNotCoordinator
	}
	return base, err
}

// markDirtyLocked schedules a write of g's metadata once mu is released.
func (ps *partition) markDirtyLocked(g *group) { ps.dirty[g.id] = struct{}{} }

// unlock releases mu, then writes the metadata of the groups marked dirty
// meanwhile (each record is built from the group's state at write time,
// under writeSem, so the last record is always the newest state).
func (ps *partition) unlock() {
	if len(ps.dirty) == 0 {
		ps.mu.Unlock()
		return
	}
	ids := make([]string, 0, len(ps.dirty))
	for id := range ps.dirty {
		ids = append(ids, id)
	}
	clear(ps.dirty)
	ps.mu.Unlock()
	sort.Strings(ids)
	for _, id := range ids {
		if err := ps.persistGroup(id); err != nil {
			ps.c.log.Warn("group: cannot store group metadata", "group", id, "err", err)
		}
	}
}

// persistGroup writes group id's current metadata (a tombstone is never
// written here: deletion has its own path).
func (ps *partition) persistGroup(id string) error {
	if err := ps.lockWrite(ps.ctx); err != nil {
		return err
	}
	defer ps.unlockWrite()
	ps.mu.Lock()
	g := ps.groups[id]
	if ps.state != coordinator.Loaded || g == nil {
		ps.mu.Unlock()
		return nil
	}
	rec := g.metadataRecordLocked(nil)
	ps.mu.Unlock()
	return ps.appendRecords(ps.ctx, []record.Record{rec})
}

// removeGroupLocked stops g and drops it from the partition (after its
// tombstone is written).
func (ps *partition) removeGroupLocked(g *group) {
	g.stopLocked(kerr.UnknownMemberID)
	ps.dropGroupTxnOffsetsLocked(g)
	delete(ps.groups, g.id)
}

// afterFunc runs fn under mu after d, unless the partition is no longer
// served or the coordinator closed by then.
func (ps *partition) afterFunc(d time.Duration, fn func()) *time.Timer {
	return time.AfterFunc(d, func() {
		if !ps.c.parts.Enter() {
			return
		}
		defer ps.c.parts.Done()
		ps.mu.Lock()
		if ps.state != coordinator.Loaded {
			ps.mu.Unlock()
			return
		}
		fn()
		ps.unlock()
	})
}

// goBackground runs fn on a goroutine the coordinator waits for at Close.
func (ps *partition) goBackground(fn func()) { ps.c.parts.Go(fn) }

// shutdown stops serving the partition: timers stop and parked requests
// answer code.
func (ps *partition) shutdown(code *kerr.Error) {
	ps.cancel()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.state = coordinator.Unloaded
	for _, g := range ps.groups {
		g.stopLocked(code)
	}
	ps.groups = make(map[string]*group)
	clear(ps.dirty)
	clear(ps.txnGroups)
	ps.loadingTxns = nil
}

// load replays the partition from its log start offset to its log end
// offset and starts serving.
func (ps *partition) load() {
	start := time.Now()
	rs := newReplay()
	err := ps.replay(rs)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.state != coordinator.Loading {
		return // unloaded meanwhile
	}
	if err != nil {
		ps.state = coordinator.Failed
		ps.c.log.Error("group: loading __consumer_offsets failed", "partition", ps.id, "err", err)
		return
	}
	rs.restore(ps)
	ps.state = coordinator.Loaded
	for _, e := range ps.loadingTxns {
		ps.endTxnLocked(e)
	}
	ps.loadingTxns = nil
	ps.c.log.Info("group: loaded __consumer_offsets partition", "partition", ps.id,
		"groups", len(ps.groups), "took", time.Since(start))
	ps.goBackground(ps.expireLoop)
}

// replay feeds every record of the log (to its end, see coordinator.Replay)
// to rs.
func (ps *partition) replay(rs *replay) error {
	return coordinator.Replay(ps.ctx, ps.part, func(batch []byte, h *record.Header) {
		rs.producerBatch(h)
		if err := rs.batch(batch); err != nil {
			ps.c.log.Error("group: skipping undecodable batch of __consumer_offsets",
				"partition", ps.id, "offset", h.BaseOffset, "err", err)
		}
	})
}
