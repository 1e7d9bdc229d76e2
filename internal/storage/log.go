package storage

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"samsa/internal/record"
)

// Log is one partition's log. All methods are safe for concurrent use.
//
// Lock order: appendMu, then flusher.mu, then mu (see docs/storage.md).
// mu is held only for in-memory work, never across file I/O; appendMu is
// held across the write(2) of an append but never across an fsync.
type Log struct {
	topic     string
	partition int32
	m         *Manager // clock, logger, counters
	// loc is the partition's directory and the state of the log dir
	// holding it. Replaced only by a log-dir move (AlterReplicaLogDirs,
	// future.go), with appendMu, flusher.mu and mu held; readable
	// anywhere.
	loc atomic.Pointer[logLoc]

	cfg atomic.Pointer[Config] // normalized; replaced whole by SetConfig

	// appendMu serializes appends, segment rolls, epoch-cache writes,
	// snapshots and close.
	appendMu sync.Mutex
	// producers is the idempotent-producer state. Guarded by appendMu.
	producers producerState
	// snapshots are the offsets of the producer snapshot files on disk,
	// ascending (kept in memory so a roll does not list the directory).
	// Guarded by appendMu.
	snapshots []int64

	flusher flusher

	// clean is the log cleaner's state. Guarded by Manager.cleanMu.
	clean cleanerState
	// cleaning is held by the cleaner while it works on this log;
	// cleanAbort asks it to stop (the log is being deleted). DeleteLog
	// sets cleanAbort and then waits on cleaning.
	cleaning   sync.Mutex
	cleanAbort atomic.Bool

	// fsyncs counts fdatasync rounds of this log (tests, metrics).
	fsyncs atomic.Int64

	mu struct {
		sync.Mutex
		topicID [16]byte
		// segments, sorted by base offset; the last one is active.
		// Replaced (not mutated in place) on roll so readers may keep a
		// copy of the slice header.
		segments []*segment
		// logStartOffset <= hw <= leo.
		logStartOffset int64
		hw             int64 // high watermark, set by the replica manager
		leo            int64 // log end offset: next offset to assign
		// recoveryPoint: every offset below it is fsynced (with the
		// indexes of the segments fully below it).
		recoveryPoint int64
		unflushed     int64     // messages appended since the last fsync began
		lastFlush     time.Time // start of the last fsync round
		rollPending   bool      // a segment rolled since the last fsync
		// changed is closed, and set to nil, when the high watermark or
		// log end offset moves, the log goes offline or closes. It is made
		// only when a waiter asks for it (Changed): an append nobody
		// waits for allocates nothing.
		changed chan struct{}
		// maxTimestamp over the log and the (shallow) offset of its batch.
		maxTimestamp         int64
		offsetOfMaxTimestamp int64
		epochs               []epochEntry // leader-epoch cache, ascending
		// cleanerOffset is the cleaner checkpoint: offsets below it were
		// compacted (the "clean" section); -1 when never cleaned.
		cleanerOffset int64
		// ongoing maps the producer id of every open transaction to its
		// first offset (written with appendMu held too).
		ongoing map[int64]int64
		// unreplicated are the transactions completed by a marker at or
		// above the high watermark, in marker order: they stay unstable
		// until the high watermark passes their marker (Kafka's
		// ProducerStateManager.unreplicatedTxns).
		unreplicated []completedTxn
		// truncations counts follower truncations: a reader whose read
		// of a segment failed checks it to tell a segment cut under it
		// (no data, retry) from an I/O error.
		truncations int64
		offline     error // non-nil after an I/O error
		closed      bool
	}
}

// flusher implements group commit: while one fdatasync runs, appenders
// that need durability wait; the next round covers all of them.
type flusher struct {
	mu      sync.Mutex
	cond    sync.Cond // on mu; broadcast at the end of every round
	running bool      // a round is in progress. Guarded by mu.
	durable int64     // offsets below are fsynced. Guarded by mu.
}

func (l *Log) config() *Config { return l.cfg.Load() }

// Topic, Partition and TopicID identify the log.
func (l *Log) Topic() string    { return l.topic }
func (l *Log) Partition() int32 { return l.partition }
func (l *Log) TopicID() [16]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.topicID
}

// logLoc is where a log lives: see Log.loc.
type logLoc struct {
	dir string  // "<log dir>/<topic>-<partition>"
	ld  *logDir // the log dir holding dir: its online/full state
}

func (l *Log) dirPath() string { return l.loc.Load().dir }
func (l *Log) logDir() *logDir { return l.loc.Load().ld }

// Dir is the partition's directory (it changes when AlterReplicaLogDirs
// moves the log to another log dir).
func (l *Log) Dir() string { return l.dirPath() }

// FsyncCount is the number of fdatasync rounds so far.
func (l *Log) FsyncCount() int64 { return l.fsyncs.Load() }

// SetConfig changes the log's config (segment roll, flush, max size...).
func (l *Log) SetConfig(cfg Config) {
	c := cfg.withDefaults(l.m.defaultCfg)
	l.cfg.Store(&c)
}

// Config returns the log's effective config.
func (l *Log) Config() Config { return *l.config() }

// Size is the log's size in bytes: the whole batches of every segment
// (Kafka's UnifiedLog.size, what DescribeLogDirs reports).
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, s := range l.mu.segments {
		n += s.size
	}
	return n
}

// LogStartOffset, LogEndOffset and HighWatermark are the partition's
// offsets. Invariant: LogStartOffset <= HighWatermark <= LogEndOffset.
func (l *Log) LogStartOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.logStartOffset
}

func (l *Log) LogEndOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.leo
}

func (l *Log) HighWatermark() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.hw
}

// RecoveryPoint is the offset below which everything is fsynced.
func (l *Log) RecoveryPoint() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.recoveryPoint
}

// SetHighWatermark moves the high watermark (clamped to
// [LogStartOffset, LogEndOffset]) and wakes waiters on Changed.
func (l *Log) SetHighWatermark(hw int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	hw = min(max(hw, l.mu.logStartOffset), l.mu.leo)
	if hw != l.mu.hw {
		l.mu.hw = hw
		l.pruneUnreplicatedLocked()
		l.notifyLocked()
	}
}

// Changed returns a channel that is closed the next time the high
// watermark or log end offset moves (for long-poll fetches).
func (l *Log) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.changed == nil {
		l.mu.changed = make(chan struct{})
	}
	return l.mu.changed
}

// notifyLocked wakes the waiters on Changed, if any. With none it costs
// nothing: appends and high watermark moves of a partition nobody
// long-polls do not allocate (an eager channel per notification cost two
// allocations per produce, append and HW).
func (l *Log) notifyLocked() {
	if l.mu.changed != nil {
		close(l.mu.changed)
		l.mu.changed = nil
	}
}

// Offline reports whether an I/O error took the log offline.
func (l *Log) Offline() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.offline != nil || l.logDir().isOffline()
}

// stateErrLocked is the error every operation returns once the log is
// offline or closed.
func (l *Log) stateErrLocked() error {
	if l.mu.offline != nil {
		return fmt.Errorf("%s: %w", l.name(), ErrStorage)
	}
	if l.logDir().isOffline() {
		return fmt.Errorf("%s: %w: %w", l.name(), ErrStorage, ErrLogDirOffline)
	}
	if l.mu.closed {
		return ErrClosed
	}
	return nil
}

func (l *Log) name() string { return fmt.Sprintf("%s-%d", l.topic, l.partition) }

// ioFailure takes the log offline after an I/O error (Kafka's
// LogDirFailureChannel, per partition here) and returns ErrStorage. If
// the log was closed meanwhile it returns ErrClosed.
//
// Running out of descriptors (EMFILE, ENFILE) is not an I/O error of the
// log: the operation fails with ErrStorage but the log stays online, so
// an exhausted descriptor limit does not poison partitions until restart
// (the file cache closes idle files as others are released).
func (l *Log) ioFailure(op string, err error) error {
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		l.m.logger.Warn("out of file descriptors", "partition", l.name(), "op", op, "err", err)
		return fmt.Errorf("%s: %s: %w: %v", l.name(), op, ErrStorage, err)
	}
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if l.mu.offline == nil {
		l.mu.offline = err
		l.m.logger.Error("storage I/O error; partition offline", "partition", l.name(), "op", op, "err", err)
		l.notifyLocked()
	}
	l.mu.Unlock()
	// Kafka's LogDirFailureChannel: the whole log dir goes offline.
	l.m.failLogDir(l.logDir(), fmt.Errorf("%s: %s: %w", l.name(), op, err))
	return fmt.Errorf("%s: %s: %w: %v", l.name(), op, ErrStorage, err)
}

// batchRef is a validated batch of an append request.
type batchRef struct {
	pos int // position in the request
	h   record.Header
}

// AppendAsLeader validates records (one or more magic-v2 batches as a
// producer sent them: header, length, CRC-32C, max.message.bytes, magic,
// producer id/epoch/sequence for idempotent batches), assigns offsets by
// rewriting each batch's base offset and partition leader epoch IN PLACE
// in records, and appends them. Nothing is stored when any batch is
// rejected. When the flush policy requires it (flush.messages reached), it
// returns only after the data is fsynced; concurrent appenders share one
// fdatasync (group commit). The high watermark is NOT moved: the caller
// does that.
//
// With message.timestamp.type=LogAppendTime each batch's timestamp type
// and maxTimestamp are rewritten and its CRC recomputed, as Kafka's
// LogValidator does.
//
// Control batches are rejected with ErrInvalidRecord, as Kafka's
// LogValidator does for clients: transaction markers are written by
// WriteTxnMarker only.
func (l *Log) AppendAsLeader(records []byte, leaderEpoch int32) (AppendInfo, error) {
	return l.appendAsLeader(records, leaderEpoch, originClient)
}

// AppendAsCoordinator is AppendAsLeader for the records a coordinator
// writes to its own internal partition (Kafka's AppendOrigin.COORDINATOR),
// such as the transactional offset commits of the group coordinator:
// producer epochs and transactions are checked and tracked, but sequence
// numbers are neither checked nor used to detect duplicates.
func (l *Log) AppendAsCoordinator(records []byte, leaderEpoch int32) (AppendInfo, error) {
	return l.appendAsLeader(records, leaderEpoch, originCoordinator)
}

// AppendValidatedAsLeader is AppendAsLeader for records whose every batch
// the caller has just checked with record.Validate (length and CRC-32C)
// and not modified since, except through record functions that keep the
// CRC right (SetMaxTimestamp, Recompress): replica.Partition.Append, whose
// full record validation walks every batch anyway. Each batch's CRC is
// then computed once per produce instead of twice (the second pass was
// about 7% of the broker's produce path). Everything else AppendAsLeader
// checks (framing, lengths, magic, record counts, control and producer
// fields, max.message.bytes) is checked again here, from the bytes: it
// costs a header parse per batch, and a caller that got it wrong cannot
// store a batch that would not split. Only a CRC mismatch would go
// unnoticed, which is why other callers (followers, coordinators, tests)
// use AppendAsLeader.
func (l *Log) AppendValidatedAsLeader(records []byte, leaderEpoch int32) (AppendInfo, error) {
	return l.appendAsLeaderChecked(records, leaderEpoch, originClient, false)
}

func (l *Log) appendAsLeader(records []byte, leaderEpoch int32, origin appendOrigin) (AppendInfo, error) {
	return l.appendAsLeaderChecked(records, leaderEpoch, origin, true)
}

// batchErr maps an error of walking a request's batches to storage's:
// the record package's format errors become the codes Kafka answers
// (UNSUPPORTED_FOR_MESSAGE_FORMAT, CORRUPT_MESSAGE); the others are
// storage's already.
func batchErr(err error) error {
	switch {
	case errors.Is(err, record.ErrUnsupportedMagic):
		return fmt.Errorf("%w: %v", ErrUnsupportedMagic, err)
	case errors.Is(err, record.ErrCorrupt):
		return fmt.Errorf("%w: %v", ErrCorruptMessage, err)
	}
	return err
}

// appendAsLeaderChecked splits records into batches, checking each
// batch's CRC when checkCRC is set (see AppendValidatedAsLeader), and
// appends them.
func (l *Log) appendAsLeaderChecked(records []byte, leaderEpoch int32, origin appendOrigin, checkCRC bool) (AppendInfo, error) {
	cfg := l.config()
	var stack [4]batchRef
	refs := stack[:0]
	pos := 0
	var count int64
	var err error
	for rest := records; len(rest) > 0; {
		var batch []byte
		var h record.Header
		if batch, h, rest, err = record.Next(rest); err != nil {
			break
		}
		// Next checked the magic, the minimum length and that the batch
		// is whole; CheckProduced below implies Validate's count checks.
		if checkCRC {
			if h, err = record.Validate(batch); err != nil {
				break
			}
		}
		if len(batch) > int(cfg.MaxMessageBytes) {
			err = fmt.Errorf("%w: batch of %d bytes > max.message.bytes %d", ErrMessageTooLarge, len(batch), cfg.MaxMessageBytes)
			break
		}
		if err = h.CheckProduced(); err != nil {
			break
		}
		if h.Control() {
			err = fmt.Errorf("%w: clients are not allowed to write control records", ErrInvalidRecord)
			break
		}
		if h.ProducerID >= 0 && h.BaseSequence < 0 {
			err = fmt.Errorf("%w: idempotent batch without a sequence", ErrInvalidRecord)
			break
		}
		refs = append(refs, batchRef{pos, h})
		pos += len(batch)
		count += int64(h.RecordCount)
	}
	switch {
	case err != nil:
		return AppendInfo{}, batchErr(err)
	case len(refs) == 0:
		return AppendInfo{}, fmt.Errorf("%w: no record batch", ErrInvalidRecord)
	}

	l.appendMu.Lock()
	info, flushTo, err := l.appendLocked(records, refs, count, leaderEpoch, cfg, origin, nil)
	l.appendMu.Unlock()
	if err != nil || flushTo < 0 {
		return info, err
	}
	if err := l.flushTo(flushTo); err != nil {
		return AppendInfo{}, err
	}
	return info, nil
}

// appendLocked does the part of a leader's append that must be
// serialized: offsets, producer checks, then the write step shared with
// followers (writeAppendLocked). It returns the offset the caller must
// wait to be durable, or -1.
func (l *Log) appendLocked(records []byte, refs []batchRef, count int64, leaderEpoch int32, cfg *Config, origin appendOrigin, marker *record.EndTxnMarker) (AppendInfo, int64, error) {
	leo, active, activeSize, err := l.beginAppendLocked()
	if err != nil {
		return AppendInfo{}, -1, err
	}

	// Offsets the batches will get (written into records only once every
	// check passed).
	next := leo
	for i := range refs {
		refs[i].h.BaseOffset, refs[i].h.PartitionLeaderEpoch = next, leaderEpoch
		next = refs[i].h.NextOffset()
	}
	if next <= leo {
		return AppendInfo{}, -1, fmt.Errorf("%w: offset overflow", ErrInvalidRecord)
	}

	// Producer checks, against scratch copies of the touched entries so a
	// rejected request changes nothing (ProducerStateManager's
	// ProducerAppendInfo). Transactions: see txn.go.
	now := l.m.now()
	w := appendWrite{records: records, refs: refs, count: count, leo: leo, next: next}
	for i := range refs {
		h := &refs[i].h
		if h.ProducerID < 0 {
			continue
		}
		e, isPending := w.pending[h.ProducerID]
		if !isPending {
			e = l.producers.entries[h.ProducerID]
		}
		if h.Control() {
			// Only WriteTxnMarker builds control batches (AppendAsLeader
			// rejects them).
			if err := e.checkMarker(h, marker); err != nil {
				return AppendInfo{}, -1, err
			}
		} else {
			if e != nil && origin == originClient {
				if dup, ok := e.duplicateOf(h); ok {
					l.mu.Lock()
					lso := l.mu.logStartOffset
					l.mu.Unlock()
					return AppendInfo{FirstOffset: dup.firstOffset, LastOffset: dup.lastOffset, LogAppendTime: -1, LogStartOffset: lso, Duplicate: true}, -1, nil
				}
			}
			if err := e.check(h, origin != originClient); err != nil {
				return AppendInfo{}, -1, err
			}
		}
		switch {
		case e == nil:
			e = newProducerEntry(h.ProducerEpoch)
		case !isPending:
			e = e.clone()
		}
		e.update(h, h.BaseOffset)
		if h.Transactional() || e.txnFirst >= 0 {
			if err := w.txn.apply(e, h, marker); err != nil {
				return AppendInfo{}, -1, err
			}
		}
		if w.pending == nil {
			w.pending = make(map[int64]*producerEntry, 1)
		}
		w.pending[h.ProducerID] = e
	}

	logAppendTime := int64(-1)
	if cfg.MessageTimestampType == TimestampLogAppendTime {
		logAppendTime = now.UnixMilli()
	}
	for i := range refs {
		r := &refs[i]
		b := records[r.pos : r.pos+r.h.Size()]
		record.SetBaseOffset(b, r.h.BaseOffset)
		record.SetPartitionLeaderEpoch(b, leaderEpoch)
		if logAppendTime >= 0 {
			record.SetLogAppendTime(b, logAppendTime)
			r.h.MaxTimestamp = logAppendTime
		}
	}

	lso, flushTo, err := l.writeAppendLocked(&w, active, activeSize, cfg, now)
	if err != nil {
		return AppendInfo{}, -1, err
	}
	return AppendInfo{
		FirstOffset: leo, LastOffset: next - 1, LogAppendTime: logAppendTime, LogStartOffset: lso,
	}, flushTo, nil
}

// beginAppendLocked checks that the log takes appends and returns its
// end offset and active segment with its size. Caller holds appendMu
// (which keeps all three as they are until it is released).
func (l *Log) beginAppendLocked() (leo int64, active *segment, activeSize int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.stateErrLocked(); err != nil {
		return 0, nil, 0, err
	}
	if l.logDir().isFull() {
		// Back-pressure: fail fast until the checker sees free space.
		return 0, nil, 0, l.fullErr()
	}
	active = l.mu.segments[len(l.mu.segments)-1]
	return l.mu.leo, active, active.size, nil
}

// appendWrite is an append ready to be written: batches with their final
// offsets (records[refs[i].pos:] is batch i, offsets leo <= first base,
// last offset next-1) and the producer and transaction state they lead
// to. Built on the appender's stack.
type appendWrite struct {
	records   []byte
	refs      []batchRef
	count     int64 // records, for flush.messages
	leo, next int64 // log end offset before and after
	// pending holds the new state of every producer the batches touch
	// (clones: committed only once the write succeeded).
	pending map[int64]*producerEntry
	// txn: the transactions the request touched; a leader's request
	// completes at most one (its marker, in txn.completed).
	txn txnChanges
	// completed and aborts (followers): every transaction completed by a
	// marker of the request, in order, and the transaction-index entries
	// of the aborted ones.
	completed []completedTxn
	aborts    []abortedEntry
}

// writeAppendLocked is the write step shared by leader and follower
// appends: roll if the active segment cannot take the batches, one pwrite
// of all of them, the aborted transactions to the transaction index, then
// a short mu section publishing size, indexes, log end offset and
// transactions (waking Changed waiters), the index files, and the
// producer state. The high watermark does not move. It returns the log
// start offset and the offset to wait durable for (flush.messages), or
// -1. Caller holds appendMu; active and activeSize come from
// beginAppendLocked.
func (l *Log) writeAppendLocked(w *appendWrite, active *segment, activeSize int64, cfg *Config, now time.Time) (lso, flushTo int64, err error) {
	// The reference keeps the file cache from closing the active
	// segment's .log during the write (idle partitions' active segments
	// are in the cache too, so a broker with many partitions is bounded).
	active.acquire()
	defer func() { active.release() }()
	records := w.records

	// Roll if the active segment cannot take the request.
	if activeSize > 0 && (activeSize+int64(len(records)) > cfg.SegmentBytes ||
		activeSize+int64(len(records)) > math.MaxInt32 ||
		now.Sub(active.created) >= cfg.segmentAge()-active.jitter ||
		len(active.offsets) >= cfg.maxIndexEntries() || len(active.times) >= cfg.maxTimeIndexEntries() ||
		w.next-1-active.base > math.MaxInt32) {
		// Named after the first batch (the log end offset, unless a
		// follower's batches start past it: Kafka's maybeRoll).
		seg, err := l.rollLocked(w.refs[0].h.BaseOffset, now)
		if err != nil {
			return 0, -1, err
		}
		seg.acquire() // appendMu is held: no one can retire it meanwhile
		active.release()
		active, activeSize = seg, 0
	}

	f, err := active.file()
	if err != nil {
		return 0, -1, l.ioFailure("append", err)
	}
	if _, err := f.WriteAt(records, activeSize); err != nil {
		return 0, -1, l.undoAppend(active, "append", activeSize, err)
	}
	aborts := w.aborts
	var one [1]abortedEntry
	if w.txn.ended && !w.txn.completed.commit {
		// The aborted transaction goes to the transaction index of the
		// segment holding its marker (Kafka's LogSegment.updateTxnIndex).
		one[0] = l.abortedEntryFor(&w.txn.completed)
		aborts = one[:]
	}
	created := false
	if len(aborts) > 0 {
		var err error
		if created, err = active.appendTxnIndex(l.dirPath(), aborts); err != nil {
			return 0, -1, l.undoAppend(active, "write transaction index", activeSize, err)
		}
	}

	l.mu.Lock()
	p := activeSize
	if active.size == 0 {
		active.created = now
	}
	for i := range w.refs {
		h := &w.refs[i].h
		active.indexBatch(h, p, h.Size(), cfg.IndexIntervalBytes)
		p += int64(h.Size())
		if h.MaxTimestamp > l.mu.maxTimestamp {
			l.mu.maxTimestamp, l.mu.offsetOfMaxTimestamp = h.MaxTimestamp, h.LastOffset()
		}
	}
	active.size = p
	if w.txn.touched {
		l.publishTxnsLocked(w, active, aborts, created)
	}
	l.mu.leo = w.next
	l.mu.unflushed += w.count
	flushTo = -1
	if l.mu.unflushed >= cfg.FlushMessages {
		flushTo = w.next
	}
	lso = l.mu.logStartOffset
	l.notifyLocked()
	l.mu.Unlock()

	if err := active.writeIndexTails(); err != nil {
		if !isNoSpace(err) {
			return 0, -1, l.ioFailure("write index", err)
		}
		// The batches are in the log and visible: the append stands.
		// The entries stay in memory and are written with the next
		// append or at roll or close (recovery rebuilds them if never).
		l.logDir().setFull(l.m, err)
	}

	// Commit the producer state.
	for id, e := range w.pending {
		l.producers.entries[id] = e
		l.producers.dirty = true
	}
	return lso, flushTo, nil
}

// rollLocked closes the active segment for appends and creates a new one
// at offset base (the log end offset); it writes a producer snapshot named
// after base. Caller holds appendMu.
//
// Its cost does not depend on the number of segments: the list grows in
// place (readers hold their own slice header, and elements below its
// length never change), the snapshot offsets are kept in memory, and the
// old segment's index files are closed (the flusher fsyncs them by name).
func (l *Log) rollLocked(base int64, now time.Time) (*segment, error) {
	l.mu.Lock()
	old := l.mu.segments[len(l.mu.segments)-1]
	old.maybeAppendTime() // the final entry, as LogSegment.onBecomeInactiveSegment
	l.mu.Unlock()
	if err := old.writeIndexTails(); err != nil {
		return nil, l.writeFailure("roll", err)
	}
	seg, err := createSegment(l.dirPath(), base, l.m.files)
	if err != nil {
		// Out of space or descriptors: the append fails, the log stays
		// as it was (base is the log end offset: no file of an existing
		// segment is named after it).
		_ = removeSegmentFiles(l.dirPath(), base)
		return nil, l.writeFailure("roll", err)
	}
	if err := old.closeIndexFiles(); err != nil {
		l.m.logger.Warn("close index files", "partition", l.name(), "segment", old.base, "err", err)
	}
	seg.created = now
	seg.jitter = l.config().randomJitter()
	if err := l.writeSnapshotLocked(base, false); err != nil {
		l.m.logger.Warn("write producer snapshot", "partition", l.name(), "err", err)
	}
	l.mu.Lock()
	l.mu.segments = append(l.mu.segments, seg)
	l.mu.rollPending = true
	l.mu.Unlock()
	return seg, nil
}

// undoAppend handles a failed write of an append to the active segment
// at size (the log end before the append): with the disk full, the
// partial write is cut so the log ends at the last complete batch, the
// log dir enters the full state and the log stays online; any other error
// takes the log offline.
func (l *Log) undoAppend(active *segment, op string, size int64, err error) error {
	if !isNoSpace(err) {
		return l.ioFailure(op, err)
	}
	f, ferr := active.file()
	if ferr == nil {
		ferr = f.Truncate(size)
	}
	if ferr == nil {
		ferr = active.truncateTxnIndex()
	}
	if ferr != nil {
		return l.ioFailure(op+": cut partial write", ferr)
	}
	return l.diskFull(op, err)
}

// Flush fsyncs everything appended so far.
func (l *Log) Flush() error {
	l.mu.Lock()
	leo := l.mu.leo
	l.mu.Unlock()
	return l.flushTo(leo)
}

// flushTo returns once every offset below target is fsynced. Rounds
// started by other callers count: this is the group commit.
func (l *Log) flushTo(target int64) error {
	return l.flushRounds(target, math.MaxInt64, false)
}

// flushRolled is the flush of a roll, as Kafka's: one round of its own
// up to end, the active segment's base offset, which fsyncs the segments
// before it (the rolled one with its indexes) and the directory, and
// moves the recovery point to end. The active segment is left to
// flush.ms and flush.messages (and to recovery): fsyncing it would write
// back its last page while the appender writes into that page, and the
// appender would wait for the write-back (with a rolled gigabyte ahead of
// it in the device's queue, for a second and more).
func (l *Log) flushRolled(end int64) error {
	return l.flushRounds(end, end, true)
}

// flushRounds runs rounds of syncRound(end) until every offset below
// target is durable, and at least one round of its own when own is set.
func (l *Log) flushRounds(target, end int64, own bool) error {
	f := &l.flusher
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.durable < target || own {
		if f.running {
			f.cond.Wait()
			continue
		}
		own = false
		f.running = true
		f.mu.Unlock()
		reached, err := l.syncRound(end)
		f.mu.Lock()
		f.running = false
		f.cond.Broadcast()
		if err != nil {
			return err
		}
		f.durable = max(f.durable, reached)
		if reached < target && l.LogEndOffset() < target {
			// A follower truncation cut the log below target meanwhile:
			// what is left is durable.
			return nil
		}
		if reached < target {
			// Cannot happen: a round covers the log end offset at its start.
			return fmt.Errorf("%s: flush reached %d < %d: %w", l.name(), reached, target, ErrStorage)
		}
	}
	return nil
}

// syncRound fdatasyncs the segments holding data past the recovery point
// and below end (the log end offset if lower) and the indexes of those no
// longer active, then advances the recovery point to that offset, which
// it returns. No lock is held during the fsyncs.
func (l *Log) syncRound(end int64) (int64, error) {
	l.mu.Lock()
	if err := l.stateErrLocked(); err != nil {
		l.mu.Unlock()
		return 0, err
	}
	leo, rp := l.mu.leo, l.mu.recoveryPoint
	end = min(end, leo)
	all := l.mu.segments
	active := all[len(all)-1]
	// From the segment holding offset rp-1: when the last round ended
	// exactly where a segment later rolled, the rolled segment's indexes
	// (written while it was active, so never fsynced) still need a round.
	// Up to the last segment starting below end.
	i := max(sort.Search(len(all), func(i int) bool { return all[i].base >= rp })-1, 0)
	j := max(sort.Search(len(all), func(i int) bool { return all[i].base >= end }), i)
	segs := all[i:j]
	dirDirty := l.mu.rollPending
	l.mu.rollPending = false
	if end == leo {
		l.mu.unflushed, l.mu.lastFlush = 0, l.m.now()
	}
	if end <= rp && !dirDirty {
		l.mu.Unlock()
		return end, nil
	}
	for _, s := range segs {
		s.acquire()
	}
	l.mu.Unlock()
	// Each segment is released once synced, so the flusher holds (and
	// keeps open in the file cache) one segment at a time.
	done := 0
	defer func() {
		for _, s := range segs[done:] {
			s.release()
		}
	}()
	l.fsyncs.Add(1)
	l.m.fsyncs.Add(1)
	for _, s := range segs {
		f, err := s.file()
		if err == nil {
			err = fdatasync(f)
		}
		if err != nil {
			return 0, l.ioFailure("fsync", err)
		}
		inactive := s != active
		if err := s.syncTxnIndex(inactive); err != nil {
			return 0, l.ioFailure("fsync transaction index", err)
		}
		if inactive {
			if err := s.syncIndexFiles(); err != nil {
				return 0, l.ioFailure("fsync index", err)
			}
		}
		s.release()
		done++
	}
	if dirDirty {
		if err := syncDir(l.dirPath()); err != nil {
			return 0, l.ioFailure("fsync dir", err)
		}
	}
	l.mu.Lock()
	l.mu.recoveryPoint = max(l.mu.recoveryPoint, end)
	l.mu.Unlock()
	return end, nil
}

// fdatasync is syscall.Fdatasync, falling back to fsync where the file
// has no descriptor usable for it.
func fdatasync(f *os.File) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := sc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}

// flushIfDue flushes everything when flush.ms elapsed with unflushed
// messages, or up to the active segment when a segment rolled (so the
// recovery point moves past it, as Kafka flushes a rolled segment).
// Called by the Manager's background loop.
func (l *Log) flushIfDue(now time.Time) error {
	cfg := l.config()
	l.mu.Lock()
	open := l.mu.offline == nil && !l.mu.closed
	aged := l.mu.unflushed > 0 && now.Sub(l.mu.lastFlush) >= cfg.flushAge()
	rolled := l.mu.rollPending
	activeBase := l.mu.segments[len(l.mu.segments)-1].base
	l.mu.Unlock()
	switch {
	case !open:
		return nil
	case aged:
		return l.Flush()
	case rolled:
		return l.flushRolled(activeBase)
	}
	return nil
}

// Read returns whole batches starting with the batch containing offset,
// up to maxBytes (but at least one whole batch if minOneMessage), and never
// any batch whose base offset is >= maxOffset (pass the high watermark).
// Returns ErrOffsetOutOfRange when offset < LogStartOffset or > LogEndOffset.
// Reading at LogEndOffset returns no bytes and no error. In a compacted
// log, an offset the cleaner removed reads from the next batch after it. The caller may
// hand the returned buffer back with ReleaseBuffer when done with it.
func (l *Log) Read(offset int64, maxBytes int32, maxOffset int64, minOneMessage bool) ([]byte, error) {
	l.mu.Lock()
	if err := l.stateErrLocked(); err != nil {
		l.mu.Unlock()
		return nil, err
	}
	if offset < l.mu.logStartOffset || offset > l.mu.leo {
		lso, leo := l.mu.logStartOffset, l.mu.leo
		l.mu.Unlock()
		return nil, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, lso, leo)
	}
	if offset == l.mu.leo || offset >= maxOffset {
		l.mu.Unlock()
		return nil, nil
	}
	gen := l.mu.truncations
	segs := l.mu.segments
	i := sort.Search(len(segs), func(i int) bool { return segs[i].base > offset }) - 1
	i = max(i, 0)
	type view struct {
		s    *segment
		pos  int64
		size int64
	}
	var views [2]view
	nv := 0
	for ; i < len(segs) && nv < len(views); i++ {
		v := view{s: segs[i], size: segs[i].size}
		if nv == 0 {
			v.pos = segs[i].lookupLocked(offset)
		}
		// A reference keeps the files open should retention or the
		// cleaner drop the segment while we read it.
		v.s.acquire()
		views[nv] = v
		nv++
	}
	l.mu.Unlock()

	var (
		b     []byte
		found bool
		err   error
	)
	for j := range views[:nv] {
		if !found && err == nil {
			v := &views[j]
			b, found, err = l.readSegment(v.s, v.pos, v.size, offset, maxBytes, maxOffset, minOneMessage, gen)
		}
		views[j].s.release()
	}
	if errors.Is(err, errTruncatedMeanwhile) {
		return nil, nil // cut by a follower truncation: nothing to read now
	}
	if err != nil || found {
		return b, err
	}
	// offset lies past the batches of the first two segments: only
	// possible with gaps (compaction); continue through the rest.
	lastBase := views[nv-1].s.base
	for {
		l.mu.Lock()
		if err := l.stateErrLocked(); err != nil {
			l.mu.Unlock()
			return nil, err
		}
		segs = l.mu.segments
		k := sort.Search(len(segs), func(i int) bool { return segs[i].base > lastBase })
		if k == len(segs) {
			l.mu.Unlock()
			return nil, nil
		}
		s := segs[k]
		size := s.size
		s.acquire()
		l.mu.Unlock()
		b, found, err := l.readSegment(s, 0, size, offset, maxBytes, maxOffset, minOneMessage, gen)
		s.release()
		if errors.Is(err, errTruncatedMeanwhile) {
			return nil, nil
		}
		if err != nil || found {
			return b, err
		}
		lastBase = s.base
	}
}

// readSegment reads whole batches from segment s starting with the first
// batch at or after pos whose last offset is >= offset. found is false
// when the segment has no such batch.
//
// gen is Log.mu.truncations when the caller picked s: a failed read of a
// segment truncated since then is errTruncatedMeanwhile, not an I/O error.
func (l *Log) readSegment(s *segment, pos, size, offset int64, maxBytes int32, maxOffset int64, minOne bool, gen int64) ([]byte, bool, error) {
	f, err := s.file()
	if err != nil {
		return nil, false, l.readFailureSince(gen, err)
	}
	hs := newHeaderScanner(f, size)
	var first record.Header
	for {
		h, err := hs.header(pos)
		if err == io.EOF {
			hs.release()
			return nil, false, nil
		}
		if err != nil {
			hs.release()
			return nil, false, l.readFailureSince(gen, err)
		}
		if h.LastOffset() >= offset {
			first = h
			break
		}
		pos += int64(h.Size())
	}
	hs.release()
	if first.BaseOffset >= maxOffset {
		return nil, true, nil
	}
	n := min(int64(max(maxBytes, 0)), size-pos)
	if int64(first.Size()) > n {
		if !minOne {
			return nil, true, nil
		}
		n = int64(first.Size())
	}
	buf := getBuffer(int(n))
	if _, err := f.ReadAt(buf, pos); err != nil {
		ReleaseBuffer(buf)
		return nil, true, l.readFailureSince(gen, err)
	}
	// Keep whole batches below maxOffset.
	end := 0
	for end < len(buf) {
		_, h, _, err := record.Next(buf[end:])
		if err != nil || h.BaseOffset >= maxOffset {
			break
		}
		end += h.Size()
	}
	if end == 0 {
		ReleaseBuffer(buf)
		return nil, true, nil
	}
	return buf[:end], true, nil
}

// errTruncatedMeanwhile: a read failed on a segment that a follower
// truncation cut after the reader picked it (a short read past the new
// end). Readers report "no data"; the log stays online.
var errTruncatedMeanwhile = errors.New("storage: segment truncated during the read")

// readFailureSince is readFailure for a read that started when
// Log.mu.truncations was gen.
func (l *Log) readFailureSince(gen int64, err error) error {
	l.mu.Lock()
	cut := l.mu.truncations != gen
	l.mu.Unlock()
	if cut {
		return errTruncatedMeanwhile
	}
	return l.readFailure(err)
}

func (l *Log) readFailure(err error) error {
	if errors.Is(err, record.ErrCorrupt) {
		return fmt.Errorf("%s: read: %w: %v", l.name(), ErrCorruptLog, err)
	}
	if errors.Is(err, os.ErrClosed) {
		return ErrClosed
	}
	return l.ioFailure("read", err)
}

// OffsetForTimestamp returns the first offset whose timestamp is >= ts,
// using the time index, and that record's timestamp; found is false when
// no such record exists.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	l.mu.Lock()
	if err := l.stateErrLocked(); err != nil {
		l.mu.Unlock()
		return -1, -1, false, err
	}
	type view struct {
		s         *segment
		pos, size int64
		from      int64
	}
	var views []view
	gen := l.mu.truncations
	for _, s := range l.mu.segments {
		if s.maxTimestamp < ts {
			continue
		}
		if s.next <= l.mu.logStartOffset {
			continue // wholly below the log start offset
		}
		from := max(s.lookupTimeLocked(ts)+1, s.base, l.mu.logStartOffset)
		s.acquire()
		views = append(views, view{s, s.lookupLocked(from), s.size, from})
	}
	l.mu.Unlock()
	defer func() {
		for _, v := range views {
			v.s.release()
		}
	}()
	for _, v := range views {
		off, t, ok, err := l.searchTimestamp(v.s, v.pos, v.size, v.from, ts, gen)
		if errors.Is(err, errTruncatedMeanwhile) {
			return -1, -1, false, nil
		}
		if err != nil || ok {
			return off, t, ok, err
		}
	}
	return -1, -1, false, nil
}

// searchTimestamp scans the batches of s from pos and decodes the first
// whose maxTimestamp is >= ts to find the exact record.
//
// Like Kafka's LogSegment.findOffsetByTimestamp it decodes that one batch,
// through package record, whose decompression is bounded
// (record.MaxDecompressedSize): a compression bomb costs at most that.
func (l *Log) searchTimestamp(s *segment, pos, size, from, ts, gen int64) (int64, int64, bool, error) {
	f, err := s.file()
	if err != nil {
		return -1, -1, false, l.readFailureSince(gen, err)
	}
	hs := newHeaderScanner(f, size)
	defer hs.release()
	for {
		h, err := hs.header(pos)
		if err == io.EOF {
			return -1, -1, false, nil
		}
		if err != nil {
			return -1, -1, false, l.readFailureSince(gen, err)
		}
		if h.LastOffset() >= from && h.MaxTimestamp >= ts {
			buf := make([]byte, h.Size())
			if _, err := f.ReadAt(buf, pos); err != nil {
				return -1, -1, false, l.readFailureSince(gen, err)
			}
			bt, err := record.DecodeBatch(buf)
			if err != nil {
				return -1, -1, false, l.readFailureSince(gen, err)
			}
			for _, r := range bt.Records {
				if r.Offset >= from && r.Timestamp >= ts {
					return r.Offset, r.Timestamp, true, nil
				}
			}
		}
		pos += int64(h.Size())
	}
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (ListOffsets -3, KIP-734); offset -1 if the log is
// empty. It never decompresses anything.
//
// The timestamp and the batch holding it come from memory (the batch
// headers' maxTimestamp, tracked at append and rebuilt at open from the
// time indexes). Kafka 4 (UnifiedLog.fetchOffsetByTimestamp, then
// RecordBatch.offsetOfMaxTimestamp) iterates that batch's records, which
// inflates a compressed batch on every request: a compression bomb stored
// once would be inflated again by every ListOffsets -3. We answer the same
// offset without inflating wherever it is known without decompressing:
//
//   - LogAppendTime batch: every record carries the batch's timestamp, so
//     the first record is the first with the max: the base offset (as
//     Kafka's iteration finds);
//   - uncompressed batch: its records are read in place (no inflation,
//     bounded by the batch's size) and the first with the max timestamp
//     answers, as in Kafka 4;
//   - compressed CreateTime batch: the batch's last offset, the "shallow"
//     offset Kafka 3.0 to 3.7 answered (LogSegment's
//     shallowOffsetOfMaxTimestamp). It equals Kafka 4's answer for a
//     one-record batch and otherwise is a later offset of the same batch.
func (l *Log) MaxTimestamp() (offset, timestamp int64) {
	l.mu.Lock()
	ts, shallow := l.mu.maxTimestamp, l.mu.offsetOfMaxTimestamp
	var seg *segment
	var pos, size int64
	if shallow >= 0 && l.mu.offline == nil && !l.mu.closed {
		segs := l.mu.segments
		i := sort.Search(len(segs), func(i int) bool { return segs[i].base > shallow }) - 1
		if i >= 0 {
			seg, size = segs[i], segs[i].size
			pos = seg.lookupLocked(shallow)
			seg.acquire()
		}
	}
	l.mu.Unlock()
	if shallow < 0 {
		return -1, -1
	}
	if seg != nil {
		off, ok := l.offsetOfMaxTimestamp(seg, pos, size, shallow, ts)
		seg.release()
		if ok {
			return off, ts
		}
	}
	return shallow, ts
}

// offsetOfMaxTimestamp finds, from pos in s, the batch whose last offset
// is shallow and resolves the record with timestamp ts in it as
// MaxTimestamp describes; false if that batch is not there (a concurrent
// cleaning or deletion) or cannot be read.
func (l *Log) offsetOfMaxTimestamp(s *segment, pos, size, shallow, ts int64) (int64, bool) {
	f, err := s.file()
	if err != nil {
		return -1, false
	}
	hs := newHeaderScanner(f, size)
	defer hs.release()
	for {
		h, err := hs.header(pos)
		if err != nil || h.LastOffset() > shallow {
			return -1, false
		}
		if h.LastOffset() < shallow {
			pos += int64(h.Size())
			continue
		}
		if h.MaxTimestamp != ts {
			return -1, false
		}
		switch {
		case h.LogAppendTime():
			return h.BaseOffset, true
		case h.Compression() != record.CompressionNone:
			return shallow, true
		}
		buf := getBuffer(h.Size())
		defer ReleaseBuffer(buf)
		if _, err := f.ReadAt(buf, pos); err != nil {
			return -1, false
		}
		// Uncompressed: DecodeBatch parses the records in place.
		if bt, err := record.DecodeBatch(buf); err == nil {
			for i := range bt.Records {
				if bt.Records[i].Timestamp == ts {
					return bt.Records[i].Offset, true
				}
			}
		}
		return shallow, true
	}
}

// recomputeMaxTimestampLocked derives the log's max timestamp from its
// segments after segments were deleted or rewritten. Caller holds mu.
func (l *Log) recomputeMaxTimestampLocked() {
	l.mu.maxTimestamp, l.mu.offsetOfMaxTimestamp = noTimestamp, -1
	for _, s := range l.mu.segments {
		if s.maxTimestamp > l.mu.maxTimestamp {
			l.mu.maxTimestamp, l.mu.offsetOfMaxTimestamp = s.maxTimestamp, s.offsetOfMaxTimestamp
		}
	}
}

// AssignEpochStartOffset records in leader-epoch-checkpoint that epoch
// starts at offset (called when this broker becomes leader). An epoch not
// newer than the latest is ignored; entries starting at or after offset
// are replaced (LeaderEpochFileCache.assign).
func (l *Log) AssignEpochStartOffset(epoch int32, offset int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	if err := l.stateErrLocked(); err != nil {
		l.mu.Unlock()
		return err
	}
	es := l.mu.epochs
	if n := len(es); n > 0 && epoch <= es[n-1].epoch {
		l.mu.Unlock()
		return nil
	}
	kept := make([]epochEntry, 0, len(es)+1)
	for _, e := range es {
		if e.startOffset < offset {
			kept = append(kept, e)
		}
	}
	kept = append(kept, epochEntry{epoch, offset})
	l.mu.epochs = kept
	l.mu.Unlock()
	if err := writeFileAtomic(filepath.Join(l.dirPath(), leaderEpochFile), encodeLeaderEpochCheckpoint(kept), true); err != nil {
		return l.writeFailure("write leader-epoch-checkpoint", err)
	}
	return nil
}

// LatestEpoch returns the latest leader epoch in the epoch cache, -1 if none.
func (l *Log) LatestEpoch() int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.mu.epochs); n > 0 {
		return l.mu.epochs[n-1].epoch
	}
	return -1
}

// EpochStartOffset returns the start offset of epoch in the cache.
func (l *Log) EpochStartOffset(epoch int32) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.mu.epochs {
		if e.epoch == epoch {
			return e.startOffset, true
		}
	}
	return -1, false
}

// close flushes the log, writes the final time-index entry and a producer
// snapshot (all fsynced) and closes the files. Later calls return
// ErrClosed.
func (l *Log) close() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return nil
	}
	offline := l.mu.offline
	l.mu.Unlock()
	var errs []error
	if offline == nil {
		errs = append(errs, l.Flush())
		l.mu.Lock()
		active := l.mu.segments[len(l.mu.segments)-1]
		active.maybeAppendTime()
		leo := l.mu.leo
		l.mu.Unlock()
		errs = append(errs, active.writeIndexTails(), active.closeIndexFiles(), active.syncIndexFiles(),
			active.syncTxnIndex(true))
		if l.producers.dirty || len(l.producers.entries) > 0 {
			errs = append(errs, l.writeSnapshotLocked(leo, true))
		}
	}
	// Wait out a flush round started by the background loop.
	l.flusher.mu.Lock()
	for l.flusher.running {
		l.flusher.cond.Wait()
	}
	l.mu.Lock()
	l.mu.closed = true
	segs := l.mu.segments
	l.notifyLocked()
	l.mu.Unlock()
	l.flusher.mu.Unlock()
	for _, s := range segs {
		errs = append(errs, s.release())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close %s: %w", l.name(), err)
	}
	return nil
}
