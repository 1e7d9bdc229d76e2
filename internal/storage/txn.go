package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"samsa/internal/record"
)

// Transactions (KIP-98) on the partition log, as Kafka's
// ProducerStateManager, ProducerAppendInfo and TransactionIndex do it:
//
//   - A transactional data batch opens a transaction for its producer id
//     if none is open; its base offset is the transaction's first offset.
//     A non-transactional batch from a producer with an open transaction
//     is ErrInvalidTxnState.
//   - WriteTxnMarker appends the coordinator's control batch and closes
//     the transaction. An aborted transaction is recorded in the
//     transaction index (.txnindex) of the segment holding its marker.
//   - The last stable offset is the first offset of the earliest
//     transaction that is still open, or completed by a marker not yet
//     below the high watermark; the high watermark when there is none.
//
// Open transactions are part of the producer snapshots, so they survive a
// restart; after a crash the log is replayed from a snapshot at or below
// the first segment being recovered, which also rebuilds the transaction
// indexes of the recovered segments.

// appendOrigin is who appends (Kafka's AppendOrigin).
type appendOrigin uint8

const (
	originClient      appendOrigin = iota // a producer: sequence numbers checked
	originCoordinator                     // a coordinator: epochs only
)

// completedTxn is a transaction ended by a marker (Kafka's CompletedTxn):
// its producer, its first offset and the marker's offset.
type completedTxn struct {
	producerID  int64
	first, last int64
	commit      bool
}

// abortedEntry is one entry of a transaction index (Kafka's AbortedTxn):
// an aborted transaction's producer, first offset, last offset (its
// marker) and the last stable offset right after the marker was written.
type abortedEntry struct {
	producerID, first, last, lastStable int64
}

// Transaction index file: 34-byte entries, big-endian (see doc.go).
const (
	txnIndexSuffix  = ".txnindex"
	txnEntrySize    = 34
	txnEntryVersion = 0
)

var errBadTxnIndex = errors.New("storage: bad transaction index")

func encodeAbortedEntries(dst []byte, es []abortedEntry) []byte {
	for _, e := range es {
		dst = binary.BigEndian.AppendUint16(dst, txnEntryVersion)
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.producerID))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.first))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.last))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.lastStable))
	}
	return dst
}

// decodeTxnIndex decodes a whole .txnindex file. Every entry must have
// version 0, a producer id >= 0, 0 <= firstOffset <= lastOffset, and a
// lastStableOffset above firstOffset (the LSO after an abort is past the
// aborted transaction's start).
func decodeTxnIndex(b []byte) ([]abortedEntry, error) {
	if len(b)%txnEntrySize != 0 {
		return nil, fmt.Errorf("%w: size %d is not a multiple of %d", errBadTxnIndex, len(b), txnEntrySize)
	}
	es := make([]abortedEntry, 0, len(b)/txnEntrySize)
	for ; len(b) > 0; b = b[txnEntrySize:] {
		if v := int16(binary.BigEndian.Uint16(b)); v != txnEntryVersion {
			return nil, fmt.Errorf("%w: entry version %d", errBadTxnIndex, v)
		}
		e := abortedEntry{
			producerID: int64(binary.BigEndian.Uint64(b[2:])),
			first:      int64(binary.BigEndian.Uint64(b[10:])),
			last:       int64(binary.BigEndian.Uint64(b[18:])),
			lastStable: int64(binary.BigEndian.Uint64(b[26:])),
		}
		if e.producerID < 0 || e.first < 0 || e.last < e.first || e.lastStable <= e.first {
			return nil, fmt.Errorf("%w: entry %+v", errBadTxnIndex, e)
		}
		es = append(es, e)
	}
	return es, nil
}

// txnIndexPath is the segment's "<base>.txnindex".
func txnIndexPath(dir string, base int64) string {
	return filepath.Join(dir, segmentName(base, txnIndexSuffix))
}

// appendTxnIndex writes es after the segment's entries (page cache only),
// creating the file on the first abort (Kafka creates it lazily too).
// created reports a new file (the directory needs an fsync). Caller holds
// appendMu; it adds es to s.aborted under mu afterwards.
func (s *segment) appendTxnIndex(dir string, es []abortedEntry) (created bool, err error) {
	f := s.txn.Load()
	if f == nil {
		// A segment made active again by a truncation may have entries
		// (its file was closed after the roll): keep them.
		flags := os.O_RDWR | os.O_CREATE
		if len(s.aborted) == 0 {
			flags |= os.O_TRUNC
		}
		if f, err = os.OpenFile(txnIndexPath(dir, s.base), flags, 0o644); err != nil {
			return false, err
		}
		s.txn.Store(f)
		created = true
	}
	var buf [txnEntrySize]byte
	_, err = f.WriteAt(encodeAbortedEntries(buf[:0], es), int64(len(s.aborted))*txnEntrySize)
	s.txnDirty.Store(true)
	return created, err
}

// syncTxnIndex fdatasyncs the transaction index if entries were appended
// since its last fsync. Unlike the offset and time indexes, it is synced
// with the log even for the active segment: recovery cannot tell a lost
// entry from no entry (a missing file means "no aborts"), so the entries
// of markers below the recovery point must be durable. With inactive
// (the segment rolled: no entry can be appended any more) the file is
// closed afterwards. Called by the flusher, which holds a reference.
func (s *segment) syncTxnIndex(inactive bool) error {
	var err error
	if s.txnDirty.Swap(false) {
		f := s.txn.Load()
		if f == nil {
			// Closed meanwhile (a cleaner swap hands the dirty flag to
			// the new segment): sync by name.
			if f, err = os.Open(txnIndexPath(s.dir, s.base)); err == nil {
				err = errors.Join(fdatasync(f), f.Close())
			} else if errors.Is(err, os.ErrNotExist) {
				err = nil
			}
		} else {
			err = fdatasync(f)
		}
		if err != nil {
			s.txnDirty.Store(true)
		}
	}
	if inactive && err == nil {
		if f := s.txn.Swap(nil); f != nil {
			err = f.Close()
		}
	}
	return err
}

// truncateTxnIndex cuts a partial entry a failed append may have left at
// the end of the open transaction index. Caller holds appendMu.
func (s *segment) truncateTxnIndex() error {
	if f := s.txn.Load(); f != nil {
		return f.Truncate(int64(len(s.aborted)) * txnEntrySize)
	}
	return nil
}

// loadTxnIndex reads "<base>.txnindex" if it exists; false means it must
// be rebuilt (unreadable, malformed, or an entry whose marker lies outside
// [base, limit)). The file is not kept open. Only used while loading.
func (s *segment) loadTxnIndex(dir string, limit int64) bool {
	b, err := os.ReadFile(txnIndexPath(dir, s.base))
	if errors.Is(err, os.ErrNotExist) {
		s.aborted = nil
		return true
	}
	if err != nil {
		return false
	}
	es, err := decodeTxnIndex(b)
	if err != nil {
		return false
	}
	for _, e := range es {
		if e.last < s.base || e.last >= limit {
			return false
		}
	}
	s.aborted = es
	return true
}

// rewriteTxnIndex replaces the segment's transaction index by s.aborted
// (removing the file when there is none), fsyncs and closes it. Only used
// while loading.
func (s *segment) rewriteTxnIndex(dir string) error {
	if f := s.txn.Swap(nil); f != nil {
		_ = f.Close()
	}
	if len(s.aborted) == 0 {
		if err := os.Remove(txnIndexPath(dir, s.base)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	f, err := os.OpenFile(txnIndexPath(dir, s.base), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(encodeAbortedEntries(nil, s.aborted))
	if err == nil {
		err = fdatasync(f)
	}
	return errors.Join(err, f.Close())
}

// checkMarker applies Kafka's ProducerAppendInfo checks to a marker for
// the producer of entry e (nil: unknown producer, always accepted): an
// older producer epoch is fenced, so is an older coordinator epoch.
func (e *producerEntry) checkMarker(h *record.Header, m *record.EndTxnMarker) error {
	if e == nil {
		return nil
	}
	if h.ProducerEpoch < e.epoch {
		return fmt.Errorf("%w: marker for producer %d with epoch %d older than %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, e.epoch)
	}
	if m != nil && m.CoordinatorEpoch < e.coordinatorEpoch {
		return fmt.Errorf("%w: marker for producer %d from coordinator epoch %d, already saw %d", ErrTransactionCoordinatorFenced, h.ProducerID, m.CoordinatorEpoch, e.coordinatorEpoch)
	}
	return nil
}

// endTxn closes the entry's transaction with the marker m at offset
// (Kafka's ProducerAppendInfo.appendEndTxnMarker); the epoch was already
// updated. It returns the completed transaction, or false when none was
// open: an empty transaction neither moves the LSO nor is indexed.
func (e *producerEntry) endTxn(producerID, offset int64, m record.EndTxnMarker) (completedTxn, bool) {
	first := e.txnFirst
	e.txnFirst = -1
	e.coordinatorEpoch = m.CoordinatorEpoch
	if first < 0 {
		return completedTxn{}, false
	}
	return completedTxn{producerID: producerID, first: first, last: offset, commit: m.Commit}, true
}

// txnChanges collects what an append does to transactions. It lives on
// the append's stack (no pointers into itself, which would move it to the
// heap on the hot path).
type txnChanges struct {
	touched   bool         // a transaction opened, continued or closed
	ended     bool         // completed holds the transaction the request's marker closed
	completed completedTxn // valid if ended
}

// apply applies batch h to the (scratch) entry e, whose epoch and
// sequence were checked and updated. marker is the request's marker when
// h is a control batch.
func (t *txnChanges) apply(e *producerEntry, h *record.Header, marker *record.EndTxnMarker) error {
	t.touched = true
	switch {
	case h.Control():
		if marker == nil {
			return fmt.Errorf("%w: control batch without a marker", ErrInvalidRecord)
		}
		t.completed, t.ended = e.endTxn(h.ProducerID, h.BaseOffset, *marker)
	case !h.Transactional():
		return fmt.Errorf("%w: non-transactional batch from producer %d, whose transaction started at offset %d is open", ErrInvalidTxnState, h.ProducerID, e.txnFirst)
	case e.txnFirst < 0:
		e.txnFirst = h.BaseOffset
	}
	return nil
}

// abortedEntryFor is the index entry of the aborted transaction c: its
// last stable offset is the first offset of the earliest other open
// transaction, or the offset after the marker (Kafka's
// ProducerStateManager.lastStableOffset(completedTxn)). Caller holds
// appendMu (ongoing only changes under it).
func (l *Log) abortedEntryFor(c *completedTxn) abortedEntry {
	return abortedEntryIn(l.mu.ongoing, c)
}

// abortedEntryIn is abortedEntryFor given the open transactions.
func abortedEntryIn(ongoing map[int64]int64, c *completedTxn) abortedEntry {
	lso := c.last + 1
	for id, first := range ongoing {
		if id != c.producerID && first < lso {
			lso = first
		}
	}
	return abortedEntry{producerID: c.producerID, first: c.first, last: c.last, lastStable: lso}
}

// publishTxnsLocked makes an append's transaction changes visible:
// open transactions from the producers' new state, completed ones
// (unstable until the high watermark passes their marker), aborted ones
// in the transaction index mirror of active (aborts, written to the file
// already; created: the file is new). Caller holds appendMu and mu.
func (l *Log) publishTxnsLocked(w *appendWrite, active *segment, aborts []abortedEntry, created bool) {
	for id, e := range w.pending {
		if e.txnFirst >= 0 {
			l.mu.ongoing[id] = e.txnFirst
		} else {
			delete(l.mu.ongoing, id)
		}
	}
	if c := &w.txn.completed; w.txn.ended && c.last >= l.mu.hw {
		l.mu.unreplicated = append(l.mu.unreplicated, *c)
	}
	for _, c := range w.completed {
		if c.last >= l.mu.hw {
			l.mu.unreplicated = append(l.mu.unreplicated, c)
		}
	}
	active.aborted = append(active.aborted, aborts...)
	if created {
		l.mu.rollPending = true // the new .txnindex needs a directory fsync
	}
}

// pruneUnreplicatedLocked forgets completed transactions whose marker is
// below the high watermark. Caller holds mu.
func (l *Log) pruneUnreplicatedLocked() {
	u := l.mu.unreplicated
	i := 0
	for i < len(u) && u[i].last < l.mu.hw {
		i++
	}
	if i > 0 {
		l.mu.unreplicated = append(u[:0:0], u[i:]...)
	}
}

// LastStableOffset is the offset below which every transaction is
// decided (Kafka's UnifiedLog.lastStableOffset): the first offset of the
// earliest open transaction, or of the earliest one whose marker is not
// yet below the high watermark; the high watermark when there is none.
// It is never above the high watermark nor below the log start offset.
// read_committed fetches read below it.
func (l *Log) LastStableOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastStableOffsetLocked()
}

func (l *Log) lastStableOffsetLocked() int64 {
	lso := l.mu.hw
	for _, first := range l.mu.ongoing {
		lso = min(lso, first)
	}
	for _, c := range l.mu.unreplicated {
		if c.last >= l.mu.hw {
			lso = min(lso, c.first)
		}
	}
	return max(lso, l.mu.logStartOffset)
}

// AbortedTransactions returns the aborted transactions whose offsets
// [firstOffset, marker offset] overlap [from, to), ordered by first
// offset: what Fetch returns to read_committed consumers (Kafka's
// UnifiedLog.collectAbortedTransactions). It reads the in-memory copy of
// the transaction indexes of the segments from the one holding from on,
// stopping at an entry whose last stable offset reaches to (no later
// entry can start below to).
func (l *Log) AbortedTransactions(from, to int64) []AbortedTxn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stateErrLocked() != nil || from >= to {
		return nil
	}
	segs := l.mu.segments
	i := max(sort.Search(len(segs), func(i int) bool { return segs[i].base > from })-1, 0)
	var out []AbortedTxn
scan:
	for _, s := range segs[i:] {
		for _, e := range s.aborted {
			if e.last >= from && e.first < to {
				out = append(out, AbortedTxn{ProducerID: e.producerID, FirstOffset: e.first})
			}
			if e.lastStable >= to {
				break scan
			}
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].FirstOffset < out[b].FirstOffset })
	return out
}

// OngoingTransactions lists the open transactions of the partition,
// ordered by first offset (DescribeProducers, and the coordinator's
// search for hanging transactions).
func (l *Log) OngoingTransactions() []OngoingTxn {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	out := make([]OngoingTxn, 0, len(l.mu.ongoing))
	for id, first := range l.mu.ongoing {
		t := OngoingTxn{ProducerID: id, FirstOffset: first, ProducerEpoch: -1, LastTimestamp: noTimestamp, CoordinatorEpoch: -1}
		if e := l.producers.entries[id]; e != nil {
			t.ProducerEpoch, t.LastTimestamp, t.CoordinatorEpoch = e.epoch, e.lastTimestamp, e.coordinatorEpoch
		}
		out = append(out, t)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].FirstOffset < out[b].FirstOffset })
	return out
}

// WriteTxnMarker appends the coordinator's marker ending the producer's
// transaction (Kafka's UnifiedLog.appendAsLeader with origin COORDINATOR
// for WriteTxnMarkers): a control batch with one end-transaction record,
// stamped with m.LeaderEpoch and the current time. It returns the
// marker's offset. A marker from an older producer epoch is
// ErrInvalidProducerEpoch, from an older coordinator epoch than the last
// marker for the producer ErrTransactionCoordinatorFenced. A marker for
// a producer without an open transaction is still written. The
// producer's epoch becomes the marker's. The marker is durable under the
// same flush policy as appends; the caller moves the high watermark.
func (l *Log) WriteTxnMarker(m TxnMarker) (offset int64, err error) {
	if m.ProducerID < 0 || m.ProducerEpoch < 0 {
		return -1, fmt.Errorf("%w: transaction marker for producer %d epoch %d", ErrInvalidRecord, m.ProducerID, m.ProducerEpoch)
	}
	cfg := l.config()
	mk := record.EndTxnMarker{Commit: m.Commit, CoordinatorEpoch: m.CoordinatorEpoch}
	b := record.BuildEndTxnMarker(0, m.LeaderEpoch, m.ProducerID, m.ProducerEpoch, l.m.now().UnixMilli(), mk)
	h, err := record.ParseHeader(b)
	if err != nil {
		return -1, err
	}
	refs := [1]batchRef{{pos: 0, h: h}}
	l.appendMu.Lock()
	info, flushTo, err := l.appendLocked(b, refs[:], 1, m.LeaderEpoch, cfg, originCoordinator, &mk)
	l.appendMu.Unlock()
	if err != nil {
		return -1, err
	}
	if flushTo >= 0 {
		if err := l.flushTo(flushTo); err != nil {
			return -1, err
		}
	}
	return info.FirstOffset, nil
}

// readMarker reads the control batch h at pos of s and decodes its
// marker; nil when it does not decode (recovery then treats the batch as
// a bare epoch bump, as before transactions).
func readMarker(s *segment, pos int64, h *record.Header) *record.EndTxnMarker {
	f, err := s.file()
	if err != nil {
		return nil
	}
	buf := make([]byte, h.Size())
	if _, err := f.ReadAt(buf, pos); err != nil {
		return nil
	}
	m, err := record.ParseEndTxnMarkerBatch(buf)
	if err != nil {
		return nil
	}
	return &m
}
