package storage

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"samsa/internal/record"
)

// openLog loads (or, for an empty dir, creates) the log in dir.
//
// clean: the log dir was shut down cleanly and has a recovery point for
// this log; the files are trusted (indexes are sanity-checked and the
// active segment's tail is walked from its last index entry). Otherwise
// every segment from the one holding recoveryPoint on is scanned batch by
// batch (Kafka's LogLoader.recoverLog): a batch that fails validation at
// or past the recovery point is a torn write and the log is truncated
// there (later segments deleted); a failure below the recovery point is
// damage to data that was fsynced, and the log is not opened
// (ErrCorruptLog) so nothing is thrown away automatically.
func openLog(m *Manager, dir string, tp TopicPartition, clean bool, recoveryPoint, hw, logStartOffset int64, cfg Config) (*Log, error) {
	l := &Log{topic: tp.Topic, partition: tp.Partition, m: m}
	l.loc.Store(&logLoc{dir: dir, ld: m.logDirOf(dir)})
	l.cfg.Store(&cfg)
	l.flusher.cond.L = &l.flusher.mu
	l.producers.entries = map[int64]*producerEntry{}
	l.mu.maxTimestamp, l.mu.offsetOfMaxTimestamp = noTimestamp, -1
	l.mu.cleanerOffset = -1
	l.mu.ongoing = map[int64]int64{}

	if b, err := os.ReadFile(filepath.Join(dir, partitionMetadataFile)); err == nil {
		if id, err := parsePartitionMetadata(b); err == nil {
			l.mu.topicID = id
		} else {
			m.logger.Warn("ignoring partition.metadata", "partition", tp, "err", err)
		}
	}

	segs, err := l.openSegments(logStartOffset)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			for _, s := range segs {
				s.close()
			}
		}
	}()
	if segs, err = l.recoverSegments(segs, clean, recoveryPoint); err != nil {
		return nil, err
	}
	now := m.now()
	last := segs[len(segs)-1]
	last.jitter = cfg.randomJitter()
	leo := last.next
	for _, s := range segs {
		s.created = now
		if s.maxTimestamp > l.mu.maxTimestamp {
			l.mu.maxTimestamp, l.mu.offsetOfMaxTimestamp = s.maxTimestamp, s.offsetOfMaxTimestamp
		}
	}
	l.mu.segments = segs
	l.mu.leo = leo
	l.mu.logStartOffset = min(max(logStartOffset, segs[0].base), leo)
	// The high watermark comes from replication-offset-checkpoint, clamped
	// (Kafka's UnifiedLog). After an unclean stop it may lag the log end
	// offset; a single-replica leader moves it to the log end offset when
	// it takes leadership (internal/replica).
	l.mu.hw = min(max(hw, l.mu.logStartOffset), leo)
	// Everything loaded is fsynced: at clean shutdown by Close, after
	// recovery by recoverSegments.
	l.mu.recoveryPoint = leo
	l.flusher.durable = leo
	l.mu.lastFlush = now

	if err := l.loadEpochs(leo); err != nil {
		return nil, err
	}
	if err := l.loadProducerState(); err != nil {
		return nil, err
	}
	ok = true
	return l, nil
}

// openSegments opens every "<base>.log" in the dir (creating the first
// one for a new log) after finishing or rolling back an interrupted
// cleaner swap, and removes leftovers: orphan indexes, tmp files, segments
// awaiting their delayed deletion (*.deleted).
func (l *Log) openSegments(logStartOffset int64) ([]*segment, error) {
	rebuild, err := recoverSwapFiles(l.dirPath())
	if err != nil {
		return nil, err
	}
	for base := range rebuild {
		l.m.logger.Warn("completed an interrupted cleaner swap", "partition", l.name(), "segment", base)
	}
	ents, err := os.ReadDir(l.dirPath())
	if err != nil {
		return nil, err
	}
	var bases []int64
	logs := map[int64]bool{}
	var orphans []string
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".deleted") ||
			strings.HasSuffix(name, ".cleaned") || strings.HasSuffix(name, ".swap") {
			_ = os.Remove(filepath.Join(l.dirPath(), name))
			continue
		}
		ext := filepath.Ext(name)
		base, err := strconv.ParseInt(strings.TrimSuffix(name, ext), 10, 64)
		if err != nil || base < 0 {
			continue
		}
		switch ext {
		case logSuffix:
			bases = append(bases, base)
			logs[base] = true
		case indexSuffix, timeIndexSuffix, txnIndexSuffix:
			orphans = append(orphans, name)
		}
	}
	for _, name := range orphans {
		ext := filepath.Ext(name)
		base, _ := strconv.ParseInt(strings.TrimSuffix(name, ext), 10, 64)
		if !logs[base] {
			_ = os.Remove(filepath.Join(l.dirPath(), name))
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	if len(bases) == 0 {
		s, err := createSegment(l.dirPath(), max(logStartOffset, 0), l.m.files)
		if err != nil {
			return nil, err
		}
		return []*segment{s}, nil
	}
	// No file is opened here: recovery opens each .log in turn through
	// the Manager's file cache, so a log of any number of segments loads
	// under any descriptor limit.
	segs := make([]*segment, 0, len(bases))
	for _, b := range bases {
		s := newSegment(l.dirPath(), b, l.m.files)
		s.rebuild = rebuild[b]
		segs = append(segs, s)
	}
	return segs, nil
}

// recoverSegments loads the segments' indexes and sizes, recovering those
// that need it; it returns the segments left after a truncation.
func (l *Log) recoverSegments(segs []*segment, clean bool, recoveryPoint int64) ([]*segment, error) {
	cfg := l.config()
	first := len(segs)
	if !clean {
		first = sort.Search(len(segs), func(i int) bool { return segs[i].base > recoveryPoint }) - 1
		first = max(first, 0)
	}
	for i := 0; i < len(segs); i++ {
		s := segs[i]
		limit := int64(math.MaxInt64)
		if i+1 < len(segs) {
			limit = segs[i+1].base
		}
		// The reference keeps the file cache from closing s's .log while
		// it is recovered.
		s.acquire()
		truncated, err := l.recoverSegment(s, i == len(segs)-1, i < first, limit, recoveryPoint, cfg.IndexIntervalBytes)
		_ = s.release()
		if err != nil {
			return segs, err
		}
		if truncated {
			for _, later := range segs[i+1:] {
				later.close()
				if err := removeSegmentFiles(l.dirPath(), later.base); err != nil {
					return segs[:i+1], err
				}
			}
			segs = segs[:i+1]
		}
	}
	if err := syncDir(l.dirPath()); err != nil {
		return segs, err
	}
	return segs, nil
}

// recoverSegment loads one segment's transaction index, indexes and size
// (trusted: below the first segment to recover after an unclean stop),
// or recovers it by scanning its batches. truncated: s had a torn tail,
// which was cut; the later segments must go. Caller holds a reference.
func (l *Log) recoverSegment(s *segment, last, trusted bool, limit, recoveryPoint int64, interval int32) (truncated bool, err error) {
	if !s.loadTxnIndex(l.dirPath(), limit) {
		l.m.logger.Warn("rebuilding invalid transaction index", "partition", l.name(), "segment", s.base)
		s.rebuildTxn, s.txnBad = true, true
	}
	f, err := s.file()
	if err != nil {
		return false, err
	}
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	size := st.Size()
	if trusted && !s.rebuild && size <= math.MaxInt32 && s.loadIndexes(size) {
		s.size, s.next = size, limit
		if !last {
			return false, nil
		}
		// The active segment after a clean shutdown: walk the tail.
		if next, ok := s.walkTail(f, size); ok {
			s.next = next
			return false, nil
		}
		l.m.logger.Warn("active segment tail invalid after clean shutdown; recovering it", "partition", l.name(), "segment", s.base)
	} else if trusted && !s.rebuild {
		l.m.logger.Warn("rebuilding invalid index", "partition", l.name(), "segment", s.base)
	}
	// A recovered segment's transaction index is completed by the
	// producer-state replay (loadProducerState).
	s.rebuildTxn = true
	res, err := s.recover(interval, limit, nil)
	if err != nil {
		return false, err
	}
	if res.torn {
		if res.next < recoveryPoint || (trusted && !last) {
			return false, fmt.Errorf("%w: %s segment %d: invalid batch at byte %d (offset %d) below the recovery point %d: %v",
				ErrCorruptLog, l.name(), s.base, res.validBytes, res.next, recoveryPoint, res.reason)
		}
		l.m.logger.Warn("truncating torn log tail", "partition", l.name(), "segment", s.base,
			"position", res.validBytes, "offset", res.next, "dropped_bytes", size-res.validBytes,
			"reason", res.reason)
		if err := f.Truncate(res.validBytes); err != nil {
			return false, err
		}
		truncated = !last
	}
	s.size, s.next = res.validBytes, res.next
	if err := fdatasync(f); err != nil {
		return truncated, err
	}
	return truncated, s.writeIndexFiles("")
}

// walkTail reads batch headers from the last index entry to the end of
// the file and returns the offset after the last batch; false if a header
// is invalid or the last batch is cut.
func (s *segment) walkTail(f *os.File, size int64) (int64, bool) {
	pos := int64(0)
	next := s.base
	if n := len(s.offsets); n > 0 {
		pos = int64(s.offsets[n-1].position)
	}
	hs := newHeaderScanner(f, size)
	defer hs.release()
	for {
		h, err := hs.header(pos)
		if err == io.EOF {
			return next, true
		}
		if err != nil || h.BaseOffset < next || h.LastOffset()-s.base > math.MaxInt32 {
			return 0, false
		}
		if h.MaxTimestamp > s.maxTimestamp {
			s.maxTimestamp, s.offsetOfMaxTimestamp = h.MaxTimestamp, h.LastOffset()
		}
		next = h.NextOffset()
		pos += int64(h.Size())
		s.bytesSinceIndex += int64(h.Size())
	}
}

// loadEpochs reads leader-epoch-checkpoint, dropping epochs that start
// past the log end offset (LeaderEpochFileCache.truncateFromEnd).
func (l *Log) loadEpochs(leo int64) error {
	path := filepath.Join(l.dirPath(), leaderEpochFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	es, err := parseLeaderEpochCheckpoint(b)
	if err != nil {
		l.m.logger.Warn("ignoring malformed leader-epoch-checkpoint", "partition", l.name(), "err", err)
		return nil
	}
	kept := es[:0]
	for _, e := range es {
		if e.startOffset <= leo {
			kept = append(kept, e)
		}
	}
	l.mu.epochs = kept
	if len(kept) != len(es) {
		return writeFileAtomic(path, encodeLeaderEpochCheckpoint(kept), true)
	}
	return nil
}

// loadProducerState loads the newest valid producer snapshot at or below
// the log end offset and replays the batch headers after it (and the
// markers of control batches), restoring open transactions. The aborted
// transactions the replay completes inside recovered segments are
// written to their transaction indexes, replacing the entries from the
// replay's start on (those below it are durable: the index is fsynced
// with the log, and recovery starts at the recovery point). A
// transaction index that did not load is rebuilt whole, so the snapshot
// must then be at or below that segment's base, else the log is replayed
// from its start (Kafka's LogLoader rebuilds producer state and
// transaction indexes the same way).
func (l *Log) loadProducerState() error {
	r, err := l.replayProducerState(l.mu.segments, l.mu.leo, l.mu.hw)
	if err != nil {
		return err
	}
	l.producers.entries, l.producers.dirty = r.entries, r.dirty
	l.mu.ongoing, l.mu.unreplicated = r.ongoing, r.unreplicated
	for _, s := range l.mu.segments {
		if s.rebuildTxn {
			if err := s.rewriteTxnIndex(l.dirPath()); err != nil {
				return err
			}
			s.rebuildTxn, s.txnBad = false, false
		}
	}
	return nil
}

// producerReplay is the producer and transaction state rebuilt from a
// snapshot and the batches after it.
type producerReplay struct {
	entries      map[int64]*producerEntry
	ongoing      map[int64]int64 // producer id -> first offset of its open transaction
	unreplicated []completedTxn  // completed by a marker at or above the high watermark
	dirty        bool            // batches were replayed after the snapshot
}

// replayProducerState rebuilds the producer state of segs (the log's
// segments, ending at leo) from the newest valid snapshot at or below leo
// and the batch headers after it; snapshots above leo or below the first
// segment are removed and l.snapshots is reset to the files left. The
// transaction indexes of segments marked rebuildTxn/txnBad are rebuilt in
// s.aborted (at open only). Caller owns the log (open) or holds appendMu
// (truncation), so the segment sizes cannot change.
func (l *Log) replayProducerState(segs []*segment, leo, hw int64) (producerReplay, error) {
	r := producerReplay{entries: map[int64]*producerEntry{}, ongoing: map[int64]int64{}}
	offs, err := listSnapshots(l.dirPath())
	if err != nil {
		return r, err
	}
	txnFrom := int64(math.MaxInt64)
	for _, s := range segs {
		if s.txnBad {
			txnFrom = min(txnFrom, s.base)
		}
	}
	from := segs[0].base
	defer func() {
		// The snapshot files left, ascending, for writeSnapshotLocked.
		l.snapshots = l.snapshots[:0]
		for i := len(offs) - 1; i >= 0; i-- {
			if offs[i] >= 0 {
				l.snapshots = append(l.snapshots, offs[i])
			}
		}
	}()
	for i, off := range offs {
		path := filepath.Join(l.dirPath(), segmentName(off, snapshotSuffix))
		if off > leo || off < segs[0].base {
			_ = os.Remove(path)
			offs[i] = -1
			continue
		}
		if off > txnFrom {
			continue // too new to rebuild a transaction index from; kept
		}
		b, err := os.ReadFile(path)
		if err == nil {
			var m map[int64]*producerEntry
			if m, err = decodeProducerSnapshot(b); err == nil {
				r.entries = m
				from = off
				break
			}
		}
		l.m.logger.Warn("ignoring producer snapshot", "partition", l.name(), "file", path, "err", err)
		_ = os.Remove(path)
		offs[i] = -1
	}
	for _, s := range segs {
		if s.txnBad {
			s.aborted = nil
		} else if s.rebuildTxn {
			kept := s.aborted[:0]
			for _, e := range s.aborted {
				if e.last < from {
					kept = append(kept, e)
				}
			}
			s.aborted = kept
		}
	}
	ps := producerState{entries: r.entries}
	ongoing := r.ongoing
	for id, e := range ps.entries {
		if e.txnFirst >= 0 {
			ongoing[id] = e.txnFirst
		}
	}
	for i, s := range segs {
		if i+1 < len(segs) && segs[i+1].base <= from {
			continue
		}
		s.acquire()
		f, err := s.file()
		if err != nil {
			_ = s.release()
			return r, err
		}
		hs := newHeaderScanner(f, s.size)
		pos := s.lookupLocked(from)
		for {
			h, err := hs.header(pos)
			if err == io.EOF {
				break
			}
			if err != nil {
				hs.release()
				_ = s.release()
				return r, fmt.Errorf("%w: %s: rebuild producer state: %v", ErrCorruptLog, l.name(), err)
			}
			if h.BaseOffset >= from && h.ProducerID >= 0 {
				var marker *record.EndTxnMarker
				if h.Control() {
					if marker = readMarker(s, pos, &h); marker == nil {
						l.m.logger.Warn("control batch without a transaction marker", "partition", l.name(), "offset", h.BaseOffset)
					}
				}
				c, ok := ps.apply(&h, marker)
				if e := ps.entries[h.ProducerID]; e.txnFirst >= 0 {
					ongoing[h.ProducerID] = e.txnFirst
				} else {
					delete(ongoing, h.ProducerID)
				}
				if ok {
					if c.last >= hw {
						r.unreplicated = append(r.unreplicated, c)
					}
					if !c.commit && s.rebuildTxn {
						s.aborted = append(s.aborted, abortedEntryIn(ongoing, &c))
					}
				}
			}
			pos += int64(h.Size())
		}
		hs.release()
		_ = s.release()
	}
	r.dirty = ps.dirty
	return r, nil
}
