package storage

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// Follower truncation (KIP-101/279): a follower whose log diverged from
// the leader's cuts it back (TruncateTo), or throws it away and restarts
// it at the leader's offsets (TruncateFullyAndStartAt), Kafka's
// UnifiedLog.truncateTo and truncateFullyAndStartAt.
//
// Both run under appendMu (no append, roll, retention or cleaner swap
// meanwhile) and with the flusher idle (flusher.mu held, no round
// running: a round would otherwise move the recovery point past the new
// log end). The new state is published under mu first, so readers stop
// seeing the dropped offsets; then the files are cut. A reader still
// holding a dropped segment keeps reading it (reference count, files
// renamed to *.deleted and removed file.delete.delay.ms later, as for
// retention); a reader of the cut segment whose snapshot of its size is
// now past the end gets a short read, which Read reports as "no data"
// (see Log.mu.truncations), never as an I/O error.

// TruncateTo drops every batch holding offset or any later offset
// (Kafka's UnifiedLog.truncateTo). A batch that straddles offset is
// dropped whole (LogSegment.truncateTo cuts at a batch boundary), so the
// new log end offset is the base offset of the first dropped batch, at
// most offset. Segments starting above offset are deleted, the segment
// holding offset is cut and its offset, time and transaction indexes
// trimmed; leader-epoch entries starting at or after the new end are
// removed (leader-epoch-checkpoint rewritten); producer and transaction
// state are rebuilt from the newest producer snapshot at or below the new
// end (later snapshots deleted); high watermark, log start offset,
// recovery point and cleaner checkpoint are clamped to the new end, and
// every checkpoint file of the log dir is rewritten before returning, so
// the result survives a crash.
//
// offset >= LogEndOffset truncates nothing but still drops epoch entries
// starting at or after the log end offset (a leader that assigned an
// epoch and appended nothing before losing leadership; Kafka does the
// same). When offset is below the first segment's base offset the log is
// truncated fully and starts at offset. A negative offset is
// ErrOffsetOutOfRange.
func (l *Log) TruncateTo(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("%w: truncate to negative offset %d", ErrOffsetOutOfRange, offset)
	}
	l.appendMu.Lock()
	changed, err := l.truncateToLocked(offset)
	l.appendMu.Unlock()
	if err != nil || !changed {
		return err
	}
	return l.checkpointAfterTruncation()
}

// TruncateFullyAndStartAt deletes every segment and restarts the log,
// empty, at offset (Kafka's UnifiedLog.truncateFullyAndStartAt): log
// start offset = log end offset = high watermark = recovery point =
// offset, an empty leader-epoch cache (the checkpoint is rewritten with no
// entries), no producer state (every producer snapshot deleted), no
// transactions. Checkpoint files are rewritten before returning. A
// negative offset is ErrOffsetOutOfRange.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("%w: start log at negative offset %d", ErrOffsetOutOfRange, offset)
	}
	l.appendMu.Lock()
	err := l.stateErr()
	if err == nil {
		err = l.truncateFullyLocked(offset)
	}
	l.appendMu.Unlock()
	if err != nil {
		return err
	}
	return l.checkpointAfterTruncation()
}

func (l *Log) stateErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stateErrLocked()
}

// checkpointAfterTruncation writes the recovery-point, high-watermark,
// log-start and cleaner checkpoints of the log's dir: each may hold a
// value past the new log end, which a restart must not use (a recovery
// point past the end would let recovery skip the segments appended after
// the truncation). Called without appendMu (ckptMu comes first).
func (l *Log) checkpointAfterTruncation() error {
	if err := l.m.writeCheckpointFiles(filepath.Dir(l.dirPath()), ckptAll); err != nil {
		return l.writeFailure("write checkpoints after truncation", err)
	}
	return nil
}

// waitFlusherIdleLocked takes flusher.mu and waits until no fsync round
// runs; the caller releases flusher.mu. Caller holds appendMu.
func (l *Log) waitFlusherIdleLocked() {
	l.flusher.mu.Lock()
	for l.flusher.running {
		l.flusher.cond.Wait()
	}
}

// truncateToLocked is TruncateTo; changed reports that the log was cut
// (checkpoints must be rewritten). Caller holds appendMu.
func (l *Log) truncateToLocked(offset int64) (changed bool, err error) {
	l.mu.Lock()
	if err := l.stateErrLocked(); err != nil {
		l.mu.Unlock()
		return false, err
	}
	leo := l.mu.leo
	segs := l.mu.segments
	l.mu.Unlock()
	if offset >= leo {
		return false, l.truncateEpochsFromEndLocked(leo)
	}
	if segs[0].base > offset {
		return true, l.truncateFullyLocked(offset)
	}
	l.waitFlusherIdleLocked()
	defer l.flusher.mu.Unlock()

	cfg := l.config()
	k := sort.Search(len(segs), func(i int) bool { return segs[i].base > offset })
	s, gone := segs[k-1], segs[k:]
	c, err := l.findCut(s, offset)
	if err != nil {
		return false, err
	}
	newLEO := c.next
	for _, g := range gone {
		g.truncated = true
	}
	s.truncated = true

	now := l.m.now()
	l.mu.Lock()
	s.size, s.next = c.pos, newLEO
	s.offsets, s.times = s.offsets[:c.offsets], s.times[:c.times]
	s.idxWritten, s.timeWritten = min(s.idxWritten, c.offsets), min(s.timeWritten, c.times)
	s.maxTimestamp, s.offsetOfMaxTimestamp = c.maxTimestamp, c.offsetOfMaxTimestamp
	// As if the kept batches had just been appended: the next index
	// entry comes where it would have come (Kafka resets the count).
	s.bytesSinceIndex = c.pos
	if c.offsets > 0 {
		s.bytesSinceIndex = c.pos - int64(s.offsets[c.offsets-1].position)
	}
	if s.size == 0 {
		s.created = now
	}
	txnChanged := false
	if n := abortedBefore(s.aborted, newLEO); n < len(s.aborted) {
		s.aborted = append([]abortedEntry(nil), s.aborted[:n]...)
		txnChanged = true
	}
	kept := make([]*segment, k) // a fresh array: readers may hold the old one
	copy(kept, segs[:k])
	l.mu.segments = kept
	l.mu.leo = newLEO
	l.mu.hw = min(l.mu.hw, newLEO)
	l.mu.logStartOffset = min(l.mu.logStartOffset, newLEO)
	l.mu.recoveryPoint = min(l.mu.recoveryPoint, newLEO)
	if l.mu.cleanerOffset > newLEO {
		l.mu.cleanerOffset = newLEO
	}
	var unrep []completedTxn
	for _, t := range l.mu.unreplicated {
		if t.last < newLEO {
			unrep = append(unrep, t)
		}
	}
	l.mu.unreplicated = unrep
	l.recomputeMaxTimestampLocked()
	l.mu.truncations++
	l.notifyLocked()
	hw := l.mu.hw
	l.mu.Unlock()
	l.flusher.durable = min(l.flusher.durable, newLEO)
	l.m.logger.Info("truncated log", "partition", l.name(), "offset", offset, "log_end_offset", newLEO, "segments_deleted", len(gone))

	// The files. Later segments go first (renamed, the rename made
	// durable), then s is cut: a crash in between leaves a prefix of the
	// old log, never a cut segment followed by the old later ones.
	if len(gone) > 0 {
		if err := l.retireSegments(gone, cfg); err != nil {
			return true, err
		}
		if err := syncDir(l.dirPath()); err != nil {
			return true, l.ioFailure("truncate: fsync dir", err)
		}
	}
	s.acquire()
	f, err := s.file()
	if err == nil {
		if err = f.Truncate(c.pos); err == nil {
			err = fdatasync(f)
		}
	}
	_ = s.release()
	if err != nil {
		return true, l.ioFailure("truncate segment", err)
	}
	if err := s.closeIndexFiles(); err != nil {
		l.m.logger.Warn("close index files", "partition", l.name(), "segment", s.base, "err", err)
	}
	if err := s.writeIndexFiles(""); err != nil {
		return true, l.ioFailure("truncate index", err)
	}
	if txnChanged {
		if err := s.rewriteTxnIndex(l.dirPath()); err != nil {
			return true, l.ioFailure("truncate transaction index", err)
		}
		s.txnDirty.Store(false)
	}
	if err := l.truncateEpochsFromEndLocked(newLEO); err != nil {
		return true, err
	}
	r, err := l.replayProducerState(kept, newLEO, hw)
	if err != nil {
		return true, l.ioFailure("truncate: rebuild producer state", err)
	}
	l.producers.entries, l.producers.dirty = r.entries, true
	l.mu.Lock()
	l.mu.ongoing = r.ongoing
	l.mu.Unlock()
	return true, nil
}

// abortedBefore is the number of leading entries of es (marker order)
// whose marker is below end.
func abortedBefore(es []abortedEntry, end int64) int {
	n := 0
	for n < len(es) && es[n].last < end {
		n++
	}
	return n
}

// truncCut is where a truncation cuts a segment.
type truncCut struct {
	pos                  int64 // bytes kept
	next                 int64 // the new log end offset
	offsets, times       int   // index entries kept
	maxTimestamp         int64 // of the batches kept
	offsetOfMaxTimestamp int64
}

// findCut finds the first batch of s whose last offset is >= offset: the
// segment is cut at its position, and the new log end offset is the end
// of the batch before it (its base offset, unless a compacted log has a
// gap there; Kafka sets the log end to offset, which a restart would not
// find again). With no such batch nothing of s is dropped and the log
// ends after its last batch. It
// also works out the indexes and the max timestamp of what is kept:
// the time index entries below the new end, and a header walk from the
// batch of the last of them (so the walk is short, not the whole
// segment). Caller holds appendMu.
func (l *Log) findCut(s *segment, offset int64) (truncCut, error) {
	l.mu.Lock()
	size := s.size
	// Time entries are appended with offset entries (and one at roll),
	// so the last one below offset is close to the cut.
	nt := sort.Search(len(s.times), func(i int) bool { return s.base+int64(s.times[i].relOffset) >= offset })
	c := truncCut{pos: size, next: offset, maxTimestamp: noTimestamp, offsetOfMaxTimestamp: -1}
	from := int64(0)
	if nt > 0 {
		e := s.times[nt-1]
		c.maxTimestamp, c.offsetOfMaxTimestamp = e.timestamp, s.base+int64(e.relOffset)
		from = s.lookupLocked(c.offsetOfMaxTimestamp)
	}
	l.mu.Unlock()

	s.acquire()
	defer s.release()
	f, err := s.file()
	if err != nil {
		return c, l.ioFailure("truncate: open segment", err)
	}
	hs := newHeaderScanner(f, size)
	defer hs.release()
	// The walk starts at a batch below offset (the one an index entry
	// at or below the time entry's offset records), or at 0: lastNext is
	// the end of the last batch kept, s.base when none is.
	lastNext := s.base
	for pos := from; ; {
		h, err := hs.header(pos)
		if err == io.EOF {
			break
		}
		if err != nil {
			return c, fmt.Errorf("%w: %s: truncate: segment %d at byte %d: %v", ErrCorruptLog, l.name(), s.base, pos, err)
		}
		if h.LastOffset() >= offset {
			c.pos = pos
			break
		}
		if h.MaxTimestamp > c.maxTimestamp {
			c.maxTimestamp, c.offsetOfMaxTimestamp = h.MaxTimestamp, h.LastOffset()
		}
		lastNext = h.NextOffset()
		pos += int64(h.Size())
	}
	// Not offset itself when the batches kept end below it (a compacted
	// log's gap): the end a restart finds by walking the segment.
	c.next = lastNext
	l.mu.Lock()
	c.offsets = sort.Search(len(s.offsets), func(i int) bool { return int64(s.offsets[i].position) >= c.pos })
	c.times = sort.Search(len(s.times), func(i int) bool { return s.base+int64(s.times[i].relOffset) >= c.next })
	l.mu.Unlock()
	return c, nil
}

// truncateFullyLocked is TruncateFullyAndStartAt. Caller holds appendMu
// and checked the log's state.
func (l *Log) truncateFullyLocked(offset int64) error {
	l.waitFlusherIdleLocked()
	defer l.flusher.mu.Unlock()
	cfg := l.config()
	// The epoch cache is cleared first: a crash before the segments go
	// then leaves old data without epochs (the fetcher falls back to
	// truncating by high watermark), never old epochs over the new log.
	l.mu.Lock()
	old := l.mu.segments
	l.mu.epochs = nil
	l.mu.Unlock()
	if err := l.writeEpochsLocked(nil); err != nil {
		return err
	}
	for _, s := range old {
		s.truncated = true
	}
	// The new segment may take the name of an old one: that one's files
	// are renamed first, with its .log kept open for readers still
	// holding it (they must not reopen it by name).
	var clashPaths []string
	var clash *segment
	for _, s := range old {
		if s.base == offset {
			clash = s
			if err := s.retireOpen(); err != nil {
				return l.ioFailure("truncate fully", err)
			}
			paths, err := renameDeleted(l.dirPath(), s.base)
			if err != nil {
				return l.ioFailure("truncate fully", err)
			}
			clashPaths = paths
		}
	}
	ns, err := createSegment(l.dirPath(), offset, l.m.files)
	if err != nil {
		// Without a segment the log cannot go on: offline (a full disk
		// included), until a restart reloads what is on disk.
		_ = removeSegmentFiles(l.dirPath(), offset)
		return l.ioFailure("truncate fully: create segment", err)
	}
	now := l.m.now()
	ns.created = now
	ns.jitter = cfg.randomJitter()
	l.mu.Lock()
	l.mu.segments = []*segment{ns}
	l.mu.leo, l.mu.hw, l.mu.logStartOffset, l.mu.recoveryPoint = offset, offset, offset, offset
	l.mu.cleanerOffset = -1
	l.mu.ongoing = map[int64]int64{}
	l.mu.unreplicated = nil
	l.mu.unflushed = 0
	l.mu.maxTimestamp, l.mu.offsetOfMaxTimestamp = noTimestamp, -1
	l.mu.truncations++
	l.notifyLocked()
	l.mu.Unlock()
	l.flusher.durable = offset
	l.m.logger.Info("truncated log fully", "partition", l.name(), "start_offset", offset, "segments_deleted", len(old))

	rest := make([]*segment, 0, len(old))
	for _, s := range old {
		if s != clash {
			rest = append(rest, s)
		}
	}
	var retireErr error
	if len(rest) > 0 {
		retireErr = l.retireSegments(rest, cfg)
	}
	if clash != nil {
		if err := clash.release(); err != nil {
			l.m.logger.Warn("close deleted segment", "partition", l.name(), "segment", clash.base, "err", err)
		}
		l.m.scheduleDelete(clashPaths, cfg.FileDeleteDelayMs)
	}
	if retireErr != nil {
		return retireErr
	}
	l.producers.entries, l.producers.dirty = map[int64]*producerEntry{}, false
	for _, off := range l.snapshots {
		if err := os.Remove(filepath.Join(l.dirPath(), segmentName(off, snapshotSuffix))); err != nil && !os.IsNotExist(err) {
			return l.ioFailure("truncate fully: delete producer snapshot", err)
		}
	}
	l.snapshots = l.snapshots[:0]
	if err := syncDir(l.dirPath()); err != nil {
		return l.ioFailure("truncate fully: fsync dir", err)
	}
	return nil
}

// renameDeleted renames the files of the segment at base to *.deleted
// and returns the new paths.
func renameDeleted(dir string, base int64) ([]string, error) {
	var paths []string
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		p := filepath.Join(dir, segmentName(base, suf))
		if err := os.Rename(p, p+deletedSuffix); err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return paths, err
		}
		paths = append(paths, p+deletedSuffix)
	}
	return paths, nil
}
