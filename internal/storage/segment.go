package storage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"samsa/internal/record"
)

// File suffixes of a segment and its companions, as in Kafka.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	snapshotSuffix  = ".snapshot"

	offsetEntrySize = 8  // relative offset int32 + position int32
	timeEntrySize   = 12 // timestamp int64 + relative offset int32
	noTimestamp     = -1 // Kafka's RecordBatch.NO_TIMESTAMP
)

// segmentName is the base offset zero-padded to 20 digits plus suffix.
func segmentName(base int64, suffix string) string {
	return fmt.Sprintf("%020d%s", base, suffix)
}

// offsetEntry is one entry of the sparse offset index: the batch whose
// last offset is base+relOffset starts at byte position.
type offsetEntry struct {
	relOffset int32
	position  int32
}

// timeEntry is one entry of the time index: every record up to offset
// base+relOffset has a timestamp <= timestamp (ms).
type timeEntry struct {
	timestamp int64
	relOffset int32
}

// segment is one "<base>.log" file with its two indexes. Files are opened
// at load, roll or cleaner swap and closed when the last reference goes.
type segment struct {
	base int64 // offset of the first batch (file name); immutable
	log  *os.File
	idx  *os.File
	tidx *os.File

	// refs counts the holders of the open files: 1 for Log.mu.segments
	// while the segment is listed there, plus 1 per reader (Read, the
	// flusher, the cleaner) that picked it under Log.mu. The files are
	// closed when it drops to 0, so a segment deleted by retention or
	// replaced by the cleaner stays readable for whoever holds it: its
	// files are renamed or unlinked, the descriptors stay valid.
	refs atomic.Int32
	// rebuild: the indexes must be rebuilt at open (an interrupted cleaner
	// swap was completed). Only used while loading.
	rebuild bool

	// size is the number of bytes of whole batches in log; bytes below it
	// never change. Guarded by Log.mu (written with appendMu held too).
	size int64
	// next is the offset after the segment's last batch (base if empty).
	// Guarded by Log.mu.
	next int64
	// offsets and times mirror the index files. Guarded by Log.mu
	// (appended with appendMu held too).
	offsets []offsetEntry
	times   []timeEntry
	// maxTimestamp and offsetOfMaxTimestamp: the largest batch
	// maxTimestamp in the segment and that batch's last offset ("shallow"
	// offset, as Kafka's LogSegment keeps). noTimestamp/-1 when empty.
	// Guarded by Log.mu.
	maxTimestamp         int64
	offsetOfMaxTimestamp int64

	// txn is the transaction index file, nil until the segment's first
	// aborted transaction (created lazily, as Kafka does). Set under
	// appendMu; atomic because the flusher reads it without appendMu.
	txn atomic.Pointer[os.File]
	// aborted mirrors the transaction index: the aborted transactions
	// whose markers are in this segment, in marker order. Guarded by
	// Log.mu (appended with appendMu held too).
	aborted []abortedEntry
	// txnDirty: entries were appended since the last fsync of txn.
	txnDirty atomic.Bool
	// rebuildTxn: the segment was recovered; the entries of its
	// transaction index from the producer-state replay's start on are
	// rebuilt by the replay. txnBad: the index did not load; it is
	// rebuilt whole. Only used while loading.
	rebuildTxn, txnBad bool

	// Guarded by Log.appendMu:
	bytesSinceIndex int64     // bytes appended since the last offset-index entry
	created         time.Time // first append (or load) time, for segment.ms
}

func openSegmentFiles(dir string, base int64, create bool) (*segment, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE | os.O_TRUNC
	}
	s := &segment{base: base, next: base, maxTimestamp: noTimestamp, offsetOfMaxTimestamp: -1}
	s.refs.Store(1)
	var err error
	if s.log, err = os.OpenFile(filepath.Join(dir, segmentName(base, logSuffix)), flags, 0o644); err != nil {
		return nil, err
	}
	// Indexes are always created when missing: they are rebuilt from the log.
	if s.idx, err = os.OpenFile(filepath.Join(dir, segmentName(base, indexSuffix)), flags|os.O_CREATE, 0o644); err != nil {
		s.close()
		return nil, err
	}
	if s.tidx, err = os.OpenFile(filepath.Join(dir, segmentName(base, timeIndexSuffix)), flags|os.O_CREATE, 0o644); err != nil {
		s.close()
		return nil, err
	}
	if create {
		// A stale transaction index of an earlier segment at this base
		// must not describe the new one. An existing segment's is
		// opened by loadTxnIndex.
		if err := os.Remove(txnIndexPath(dir, base)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// acquire takes a reference; the caller holds Log.mu and found s in
// Log.mu.segments (so the count is not 0).
func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference and closes the files with the last one.
func (s *segment) release() error {
	if s.refs.Add(-1) == 0 {
		return s.close()
	}
	return nil
}

func (s *segment) close() error {
	var errs []error
	for _, f := range []*os.File{s.log, s.idx, s.tidx, s.txn.Load()} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

func removeSegmentFiles(dir string, base int64) error {
	var errs []error
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		if err := os.Remove(filepath.Join(dir, segmentName(base, suf))); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// lookupLocked returns the position of the batch recorded by the largest
// index entry whose offset is <= target, or 0. Caller holds Log.mu.
func (s *segment) lookupLocked(target int64) int64 {
	rel := target - s.base
	if rel < 0 || len(s.offsets) == 0 {
		return 0
	}
	if rel > math.MaxInt32 {
		rel = math.MaxInt32
	}
	i := sort.Search(len(s.offsets), func(i int) bool { return int64(s.offsets[i].relOffset) > rel })
	if i == 0 {
		return 0
	}
	return int64(s.offsets[i-1].position)
}

// lookupTimeLocked returns the offset of the largest time-index entry
// whose timestamp is < ts: every record up to and including it is older
// than ts. -1 when there is none. Caller holds Log.mu.
func (s *segment) lookupTimeLocked(ts int64) int64 {
	i := sort.Search(len(s.times), func(i int) bool { return s.times[i].timestamp >= ts })
	if i == 0 {
		return -1
	}
	return s.base + int64(s.times[i-1].relOffset)
}

func encodeOffsetEntries(dst []byte, es []offsetEntry) []byte {
	for _, e := range es {
		dst = binary.BigEndian.AppendUint32(dst, uint32(e.relOffset))
		dst = binary.BigEndian.AppendUint32(dst, uint32(e.position))
	}
	return dst
}

func encodeTimeEntries(dst []byte, es []timeEntry) []byte {
	for _, e := range es {
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.timestamp))
		dst = binary.BigEndian.AppendUint32(dst, uint32(e.relOffset))
	}
	return dst
}

// loadIndexes reads both index files and sanity-checks them against the
// log size (Kafka's AbstractIndex.sanityCheck, extended to every entry):
// strictly increasing offsets and positions inside the file, timestamps
// increasing. A false return means "rebuild".
func (s *segment) loadIndexes(logSize int64) bool {
	ib, err := io.ReadAll(io.NewSectionReader(s.idx, 0, math.MaxInt64))
	if err != nil || len(ib)%offsetEntrySize != 0 {
		return false
	}
	tb, err := io.ReadAll(io.NewSectionReader(s.tidx, 0, math.MaxInt64))
	if err != nil || len(tb)%timeEntrySize != 0 {
		return false
	}
	s.offsets = make([]offsetEntry, 0, len(ib)/offsetEntrySize)
	for i := 0; i < len(ib); i += offsetEntrySize {
		e := offsetEntry{int32(binary.BigEndian.Uint32(ib[i:])), int32(binary.BigEndian.Uint32(ib[i+4:]))}
		if e.relOffset < 0 || e.position < 0 || int64(e.position) >= logSize {
			return false
		}
		if n := len(s.offsets); n > 0 && (e.relOffset <= s.offsets[n-1].relOffset || e.position <= s.offsets[n-1].position) {
			return false
		}
		s.offsets = append(s.offsets, e)
	}
	s.times = make([]timeEntry, 0, len(tb)/timeEntrySize)
	for i := 0; i < len(tb); i += timeEntrySize {
		e := timeEntry{int64(binary.BigEndian.Uint64(tb[i:])), int32(binary.BigEndian.Uint32(tb[i+8:]))}
		if e.relOffset < 0 {
			return false
		}
		if n := len(s.times); n > 0 && (e.timestamp <= s.times[n-1].timestamp || e.relOffset < s.times[n-1].relOffset) {
			return false
		}
		s.times = append(s.times, e)
	}
	if n := len(s.times); n > 0 {
		s.maxTimestamp = s.times[n-1].timestamp
		s.offsetOfMaxTimestamp = s.base + int64(s.times[n-1].relOffset)
	}
	return true
}

// indexBatch updates the in-memory indexes for a batch of size bytes at
// position pos (Kafka's LogSegment.append, per batch) and returns the new
// entries to write. Caller holds appendMu (and Log.mu if the segment is
// visible to readers).
func (s *segment) indexBatch(h *record.Header, pos int64, size int, interval int32) (newOffset bool, newTime bool) {
	last := h.LastOffset()
	if h.MaxTimestamp > s.maxTimestamp {
		s.maxTimestamp = h.MaxTimestamp
		s.offsetOfMaxTimestamp = last
	}
	if s.bytesSinceIndex > int64(interval) {
		s.offsets = append(s.offsets, offsetEntry{int32(last - s.base), int32(pos)})
		newOffset = true
		newTime = s.maybeAppendTime()
		s.bytesSinceIndex = 0
	}
	s.bytesSinceIndex += int64(size)
	s.next = last + 1
	return newOffset, newTime
}

// maybeAppendTime adds (maxTimestamp, offsetOfMaxTimestamp) to the time
// index if it is newer than the last entry (TimeIndex.maybeAppend).
func (s *segment) maybeAppendTime() bool {
	if s.maxTimestamp == noTimestamp {
		return false
	}
	if n := len(s.times); n > 0 && s.maxTimestamp <= s.times[n-1].timestamp {
		return false
	}
	s.times = append(s.times, timeEntry{s.maxTimestamp, int32(s.offsetOfMaxTimestamp - s.base)})
	return true
}

// writeIndexTails writes the index entries from offset-entry from and
// time-entry tfrom on to the files (page cache only).
func (s *segment) writeIndexTails(from, tfrom int) error {
	var buf [256]byte
	if from < len(s.offsets) {
		if _, err := s.idx.WriteAt(encodeOffsetEntries(buf[:0], s.offsets[from:]), int64(from)*offsetEntrySize); err != nil {
			return err
		}
	}
	if tfrom < len(s.times) {
		if _, err := s.tidx.WriteAt(encodeTimeEntries(buf[:0], s.times[tfrom:]), int64(tfrom)*timeEntrySize); err != nil {
			return err
		}
	}
	return nil
}

// rewriteIndexes replaces both index files with the in-memory entries.
func (s *segment) rewriteIndexes() error {
	if err := s.idx.Truncate(0); err != nil {
		return err
	}
	if err := s.tidx.Truncate(0); err != nil {
		return err
	}
	if _, err := s.idx.WriteAt(encodeOffsetEntries(nil, s.offsets), 0); err != nil {
		return err
	}
	_, err := s.tidx.WriteAt(encodeTimeEntries(nil, s.times), 0)
	return err
}

// recoverResult is what scanning a segment batch by batch found.
type recoverResult struct {
	validBytes int64 // size of the valid prefix
	next       int64 // offset after the last valid batch
	torn       bool  // bytes after validBytes were not a valid batch
	reason     error // why the scan stopped early (torn only)
}

// recover validates every batch of the segment (header, CRC, offsets
// increasing, below limit), rebuilds the in-memory indexes and
// maxTimestamp, and reports the valid prefix (Kafka's LogSegment.recover).
// It does not modify the files. fn, if not nil, sees every valid header.
func (s *segment) recover(interval int32, limit int64, fn func(h *record.Header)) (recoverResult, error) {
	st, err := s.log.Stat()
	if err != nil {
		return recoverResult{}, err
	}
	fileSize := st.Size()
	s.offsets, s.times = s.offsets[:0], s.times[:0]
	s.maxTimestamp, s.offsetOfMaxTimestamp, s.bytesSinceIndex = noTimestamp, -1, 0
	r := bufio.NewReaderSize(io.NewSectionReader(s.log, 0, fileSize), 1<<20)
	res := recoverResult{next: s.base}
	var buf []byte
	stop := func(err error) (recoverResult, error) {
		res.torn = res.validBytes < fileSize
		res.reason = err
		return res, nil
	}
	for res.validBytes < fileSize {
		if fileSize-res.validBytes < record.HeaderSize {
			return stop(record.ErrTruncated)
		}
		if cap(buf) < record.HeaderSize {
			buf = make([]byte, record.HeaderSize, 64<<10)
		}
		buf = buf[:record.HeaderSize]
		if _, err := io.ReadFull(r, buf); err != nil {
			return res, err
		}
		h, err := record.ParseHeader(buf)
		if err != nil {
			return stop(err)
		}
		size := int64(h.Size())
		if size > fileSize-res.validBytes {
			return stop(record.ErrTruncated)
		}
		if int64(cap(buf)) < size {
			nb := make([]byte, size)
			copy(nb, buf)
			buf = nb
		}
		buf = buf[:size]
		if _, err := io.ReadFull(r, buf[record.HeaderSize:]); err != nil {
			return res, err
		}
		if h, err = record.Validate(buf); err != nil {
			return stop(err)
		}
		if h.BaseOffset < res.next || h.LastOffset()-s.base > math.MaxInt32 || h.LastOffset() >= limit ||
			int64(res.validBytes) > math.MaxInt32 {
			return stop(fmt.Errorf("%w: batch offsets %d..%d out of place (next %d)", record.ErrCorrupt, h.BaseOffset, h.LastOffset(), res.next))
		}
		s.indexBatch(&h, res.validBytes, int(size), interval)
		if fn != nil {
			fn(&h)
		}
		res.validBytes += size
		res.next = h.NextOffset()
	}
	return res, nil
}

// headerScanner reads batch headers of a segment through a small window,
// so walking from an index entry to a target batch costs few syscalls.
type headerScanner struct {
	f      *os.File
	end    int64 // scan limit (segment size snapshot)
	buf    []byte
	bufPos int64
	n      int
}

var scanBufPool = sync.Pool{New: func() any { b := make([]byte, 8<<10); return &b }}

func newHeaderScanner(f *os.File, end int64) *headerScanner {
	bp := scanBufPool.Get().(*[]byte)
	return &headerScanner{f: f, end: end, buf: *bp, bufPos: -1}
}

func (hs *headerScanner) release() {
	b := hs.buf
	hs.buf = nil
	scanBufPool.Put(&b)
}

// header returns the batch header at pos; io.EOF at end.
func (hs *headerScanner) header(pos int64) (record.Header, error) {
	if pos >= hs.end {
		return record.Header{}, io.EOF
	}
	if hs.end-pos < record.HeaderSize {
		return record.Header{}, record.ErrTruncated
	}
	if hs.bufPos < 0 || pos < hs.bufPos || pos+record.HeaderSize > hs.bufPos+int64(hs.n) {
		n := min(int64(len(hs.buf)), hs.end-pos)
		m, err := hs.f.ReadAt(hs.buf[:n], pos)
		if m < record.HeaderSize {
			if err == nil || err == io.EOF {
				err = record.ErrTruncated
			}
			hs.bufPos = -1
			return record.Header{}, err
		}
		hs.bufPos, hs.n = pos, m
	}
	h, err := record.ParseHeader(hs.buf[pos-hs.bufPos : hs.n])
	if err == nil && int64(h.Size()) > hs.end-pos {
		err = record.ErrTruncated
	}
	return h, err
}
