package storage

import (
	"bufio"
	"container/list"
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

// segment is one "<base>.log" file with its indexes. It holds at most one
// descriptor at rest, its .log, opened on demand (see filecache.go).
type segment struct {
	base  int64      // offset of the first batch (file name); immutable
	dir   string     // the partition's directory; immutable
	files *fileCache // bounds the open .log files; nil for a cleaner's output until it is swapped in

	// fmu guards f and retired.
	fmu sync.Mutex
	// f is the .log, nil while closed. Use it through file(), holding a
	// reference (appends take one on the active segment too).
	f *os.File
	// retired: the segment left Log.mu.segments; its path may be renamed
	// or replaced, so f stays open until the last reference goes.
	retired bool
	// lru is the segment's entry in files.lru, nil when not in it.
	// Guarded by files.mu.
	lru *list.Element
	// inCache mirrors lru != nil for the lock-free hit path of file();
	// written under files.mu. referenced: used since the cache last
	// looked at the entry (CLOCK's bit).
	inCache, referenced atomic.Bool

	// idx and tidx are the index files, open only while the active
	// segment writes entries (closed at roll and close). Guarded by
	// appendMu.
	idx, tidx *os.File
	// idxWritten and timeWritten count the index entries written to the
	// files (page cache): a write that failed (disk full) is retried from
	// there with the next one. Guarded by appendMu.
	idxWritten, timeWritten int

	// refs counts the holders of the segment: 1 for Log.mu.segments
	// while the segment is listed there, plus 1 per reader (Read, the
	// flusher, the cleaner, recovery) that picked it under Log.mu. The
	// files are closed when it drops to 0, so a segment deleted by
	// retention or replaced by the cleaner stays readable for whoever
	// holds it: its files are renamed or unlinked, the descriptor stays
	// valid.
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

	// txn is the transaction index file while open: from the segment's
	// first aborted transaction (created lazily, as Kafka does) until the
	// flusher synced it after the segment stopped being active. Set under
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
	// truncated: a follower truncation cut the segment or dropped it;
	// a cleaner's output made from it before must not be swapped in.
	truncated       bool
	bytesSinceIndex int64         // bytes appended since the last offset-index entry
	created         time.Time     // first append (or load) time, for segment.ms
	jitter          time.Duration // segment.jitter.ms draw subtracted from segment.ms for this segment
}

func newSegment(dir string, base int64, files *fileCache) *segment {
	s := &segment{base: base, dir: dir, files: files, next: base, maxTimestamp: noTimestamp, offsetOfMaxTimestamp: -1}
	s.refs.Store(1)
	return s
}

func (s *segment) path(suffix string) string {
	return filepath.Join(s.dir, segmentName(s.base, suffix))
}

// createSegment creates the files of a new segment at base, replacing
// any stale ones (an empty .index and .timeindex, as Kafka has them, and
// no .txnindex), and returns it with its .log open and in the file cache.
func createSegment(dir string, base int64, files *fileCache) (*segment, error) {
	s := newSegment(dir, base, files)
	var err error
	if s.f, err = os.OpenFile(s.path(logSuffix), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644); err != nil {
		return nil, err
	}
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		f, err := os.OpenFile(s.path(suf), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err == nil {
			err = f.Close()
		}
		if err != nil {
			s.close()
			return nil, err
		}
	}
	// A stale transaction index of an earlier segment at this base must
	// not describe the new one.
	if err := os.Remove(s.path(txnIndexSuffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.close()
		return nil, err
	}
	s.enterCache()
	return s, nil
}

// file returns the open .log, opening it if the cache closed it. The
// caller holds a reference and uses the file only until it releases it.
func (s *segment) file() (*os.File, error) {
	s.fmu.Lock()
	f := s.f
	opened := false
	if f == nil {
		var err error
		if f, err = os.OpenFile(s.path(logSuffix), os.O_RDWR, 0); err != nil {
			s.fmu.Unlock()
			return nil, err
		}
		s.f, opened = f, true
	}
	cached := !s.retired && s.files != nil
	s.fmu.Unlock()
	switch {
	case !cached:
	case !opened && s.inCache.Load():
		// A hit: no global lock.
		if !s.referenced.Load() {
			s.referenced.Store(true)
		}
	default:
		s.files.touch(s, opened)
	}
	return f, nil
}

// closeIfIdle is the cache's eviction: it closes f if no reader holds the
// segment. true means the segment leaves the cache (closed, or retired,
// which the cache does not manage). Caller holds files.mu.
func (s *segment) closeIfIdle() bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.retired || s.f == nil {
		return true
	}
	if s.refs.Load() > 1 {
		return false
	}
	_ = s.f.Close()
	s.f = nil
	return true
}

// enterCache puts a segment whose .log is open (new, or a cleaner's
// output just swapped in) in the file cache, so its bound covers it.
func (s *segment) enterCache() {
	s.fmu.Lock()
	open := s.f != nil && !s.retired
	s.fmu.Unlock()
	if open && s.files != nil {
		s.files.touch(s, false)
	}
}

// retire is called when the segment leaves the log's list, before its
// files are renamed or replaced: a reader still holding it keeps an open
// .log, which the cache no longer closes. Caller holds appendMu.
func (s *segment) retire() error {
	s.fmu.Lock()
	s.retired = true
	var err error
	if s.f == nil && s.refs.Load() > 1 {
		s.f, err = os.OpenFile(s.path(logSuffix), os.O_RDWR, 0)
	}
	s.fmu.Unlock()
	if s.files != nil {
		s.files.remove(s)
	}
	return err
}

// retireOpen is retire for a segment whose files are renamed while it is
// still listed (a full truncation creating a segment of the same base):
// its .log is opened if closed, whoever holds a reference, so no reader
// ever reopens it by name. Caller holds appendMu.
func (s *segment) retireOpen() error {
	s.fmu.Lock()
	s.retired = true
	var err error
	if s.f == nil {
		s.f, err = os.OpenFile(s.path(logSuffix), os.O_RDWR, 0)
	}
	s.fmu.Unlock()
	if s.files != nil {
		s.files.remove(s)
	}
	return err
}

// acquire takes a reference; the caller holds Log.mu and found s in
// Log.mu.segments (so the count is not 0), or holds appendMu while s is
// listed (nothing can retire it then), or owns s (loading).
func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference and closes the files with the last one.
func (s *segment) release() error {
	switch s.refs.Add(-1) {
	case 0:
		return s.close()
	case 1:
		if s.files != nil {
			s.files.released()
		}
	}
	return nil
}

func (s *segment) close() error {
	var errs []error
	s.fmu.Lock()
	f := s.f
	s.f = nil
	s.fmu.Unlock()
	if s.files != nil {
		s.files.remove(s)
	}
	for _, f := range []*os.File{f, s.idx, s.tidx, s.txn.Swap(nil)} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	s.idx, s.tidx = nil, nil
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
// increasing. A false return means "rebuild" (also for a missing file).
// The files are not kept open.
func (s *segment) loadIndexes(logSize int64) bool {
	ib, err := os.ReadFile(s.path(indexSuffix))
	if err != nil || len(ib)%offsetEntrySize != 0 {
		return false
	}
	tb, err := os.ReadFile(s.path(timeIndexSuffix))
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
	s.idxWritten, s.timeWritten = len(s.offsets), len(s.times)
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

// writeIndexTails writes the index entries not yet in the files (page
// cache only), opening the files if needed; they stay open until
// closeIndexFiles. Caller holds appendMu.
func (s *segment) writeIndexTails() error {
	var buf [256]byte
	if s.idxWritten < len(s.offsets) {
		if s.idx == nil {
			f, err := os.OpenFile(s.path(indexSuffix), os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				return err
			}
			s.idx = f
		}
		es := s.offsets[s.idxWritten:]
		if len(es) > len(buf)/offsetEntrySize {
			es = es[:len(buf)/offsetEntrySize]
		}
		if _, err := s.idx.WriteAt(encodeOffsetEntries(buf[:0], es), int64(s.idxWritten)*offsetEntrySize); err != nil {
			return err
		}
		s.idxWritten += len(es)
		if s.idxWritten < len(s.offsets) {
			return s.writeIndexTails()
		}
	}
	if s.timeWritten < len(s.times) {
		if s.tidx == nil {
			f, err := os.OpenFile(s.path(timeIndexSuffix), os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				return err
			}
			s.tidx = f
		}
		es := s.times[s.timeWritten:]
		if len(es) > len(buf)/timeEntrySize {
			es = es[:len(buf)/timeEntrySize]
		}
		if _, err := s.tidx.WriteAt(encodeTimeEntries(buf[:0], es), int64(s.timeWritten)*timeEntrySize); err != nil {
			return err
		}
		s.timeWritten += len(es)
		if s.timeWritten < len(s.times) {
			return s.writeIndexTails()
		}
	}
	return nil
}

// closeIndexFiles closes the index files opened by writeIndexTails.
// Caller holds appendMu.
func (s *segment) closeIndexFiles() error {
	var errs []error
	for _, f := range []*os.File{s.idx, s.tidx} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	s.idx, s.tidx = nil, nil
	return errors.Join(errs...)
}

// syncIndexFiles fdatasyncs both index files, opened by name (an fsync
// covers the inode, whichever descriptor wrote it). A missing file (the
// segment was deleted meanwhile) is not an error.
func (s *segment) syncIndexFiles() error {
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		f, err := os.Open(s.path(suf))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		err = fdatasync(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// writeIndexFiles replaces both index files ("<base>.index<extra>",
// "<base>.timeindex<extra>") with the in-memory entries, fsyncs them and
// closes them. Used by recovery and the cleaner, never concurrently with
// appends to s.
func (s *segment) writeIndexFiles(extra string) error {
	for _, ix := range []struct {
		suf string
		b   []byte
	}{
		{indexSuffix, encodeOffsetEntries(nil, s.offsets)},
		{timeIndexSuffix, encodeTimeEntries(nil, s.times)},
	} {
		f, err := os.OpenFile(s.path(ix.suf+extra), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, err = f.Write(ix.b)
		if err == nil {
			err = fdatasync(f)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	s.idxWritten, s.timeWritten = len(s.offsets), len(s.times)
	return nil
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
	f, err := s.file()
	if err != nil {
		return recoverResult{}, err
	}
	st, err := f.Stat()
	if err != nil {
		return recoverResult{}, err
	}
	fileSize := st.Size()
	s.offsets, s.times = s.offsets[:0], s.times[:0]
	s.maxTimestamp, s.offsetOfMaxTimestamp, s.bytesSinceIndex = noTimestamp, -1, 0
	// The buffer is no larger than the file: a new log's empty segment
	// must not cost a 1 MiB allocation (creating 10,000 partitions
	// zeroed and collected 10 GB of them).
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, fileSize), int(min(fileSize, 1<<20)))
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
