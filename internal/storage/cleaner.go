package storage

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"samsa/internal/record"
)

// The log cleaner compacts logs whose cleanup.policy contains "compact"
// (Kafka's LogCleaner, LogCleanerManager and Cleaner): it keeps the latest
// record of every key, as of a prefix of the log. See docs/storage.md.
//
// One cleaning of a log:
//
//  1. Plan (under appendMu and mu, no I/O): the dirty section runs from
//     the cleaner checkpoint (clamped to the log start offset) to the
//     first uncleanable offset = min(active segment base, last stable
//     offset, base of the first dirty segment younger than
//     min.compaction.lag.ms), rounded down to a segment boundary, so every
//     transaction with data in the section is decided. dirty ratio = dirty bytes /
//     (clean + dirty bytes). The log is cleanable when the ratio reaches
//     min.cleanable.dirty.ratio, when the first dirty batch is older than
//     max.compaction.lag.ms, or when a tombstone's delete horizon passed.
//  2. Offset map: key -> offset of its latest record in the dirty section,
//     not counting records of aborted transactions.
//  3. For every non-active segment below the end of the dirty section,
//     oldest first: filter its batches into "<base>.log.cleaned" (with
//     both indexes), then swap it in (see swapCleaned). A segment nothing
//     was removed from is left alone.
//  4. The cleaner checkpoint moves to the end of the dirty section and
//     cleaner-offset-checkpoint is written.

// maxOffsetMapEntries bounds the offset map (Kafka bounds it by
// log.cleaner.dedupe.buffer.size): when a segment pushes the map past it,
// the dirty section ends before the next segment and the rest waits for
// the next cleaning. A variable for tests.
var maxOffsetMapEntries = 1 << 22

// Suffixes of the cleaner's swap protocol (Kafka's CleanedFileSuffix and
// SwapFileSuffix), appended to a segment's file names.
const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"
)

// errCleanerStopped: the Manager is closing; the cleaning was abandoned.
var errCleanerStopped = errors.New("storage: cleaner stopped")

// cleanerState is the cleaner's memory of a log. Guarded by
// Manager.cleanMu.
type cleanerState struct {
	// horizon is the earliest delete horizon (ms) of a batch the last
	// cleaning kept tombstones in; 0 when none. Once it passes, the log is
	// cleaned again to drop them even if nothing else is dirty.
	horizon int64
	// failed: cleaning hit a corrupt batch or an I/O error; the log is
	// not cleaned again until restart (Kafka's uncleanable partitions).
	failed bool
}

// cleanPlan is one cleaning of a log.
type cleanPlan struct {
	l   *Log
	cfg *Config
	// segs are the non-active segments to rewrite, oldest first, each
	// acquired; sizes are their sizes (immutable: they are not active).
	segs  []*segment
	sizes []int64
	// Offsets: [firstDirty, cleanTo) is the dirty section; segs[dirtyIdx]
	// is the first segment holding dirty offsets.
	firstDirty, cleanTo int64
	dirtyIdx            int
	dirtyBytes          int64
	ratio               float64
	urgent              bool
	// producers maps each producer id to the last offset of its last
	// batch: that batch is kept, if need be empty, so the producer's
	// sequence numbers survive compaction (Kafka's
	// Cleaner.lastRecordsOfActiveProducers).
	producers map[int64]int64
	// aborted maps producer ids to the aborted transactions (from the
	// transaction indexes) that start below cleanTo.
	aborted abortedTxns
}

// abortedTxns maps a producer id to its aborted transactions' offsets
// [first, marker].
type abortedTxns map[int64][]abortedEntry

// has reports whether the data batch h belongs to an aborted
// transaction.
func (a abortedTxns) has(h *record.Header) bool {
	if !h.Transactional() || h.Control() || h.ProducerID < 0 {
		return false
	}
	for _, e := range a[h.ProducerID] {
		if e.first <= h.BaseOffset && h.BaseOffset <= e.last {
			return true
		}
	}
	return false
}

func (p *cleanPlan) release() {
	for _, s := range p.segs {
		_ = s.release()
	}
	p.segs = nil
}

// planClean computes what cleaning l would cover; nil when the log is not
// compacted, not open, or has nothing to clean. Caller holds cleanMu.
func (m *Manager) planClean(l *Log, now time.Time) *cleanPlan {
	cfg := l.config()
	if !cfg.hasPolicy(CleanupPolicyCompact) || l.clean.failed {
		return nil
	}
	l.appendMu.Lock()
	l.mu.Lock()
	if l.stateErrLocked() != nil {
		l.mu.Unlock()
		l.appendMu.Unlock()
		return nil
	}
	all := l.mu.segments
	lso, hw := l.mu.logStartOffset, l.mu.hw
	activeBase := all[len(all)-1].base
	firstDirty := l.mu.cleanerOffset
	if firstDirty < lso || firstDirty > activeBase {
		// Never cleaned, or the checkpoint is out of range (the log was
		// replaced, or records were deleted past it): start over, as
		// LogCleanerManager.cleanableOffsets does.
		firstDirty = lso
	}
	// Never past the last stable offset (itself <= the high watermark):
	// an undecided transaction's records must not shadow committed ones
	// (Kafka's LogCleanerManager.cleanableOffsets).
	uncleanable := min(activeBase, hw, l.lastStableOffsetLocked())
	if lag := cfg.MinCompactionLagMs; lag > 0 {
		cutoff := now.UnixMilli() - lag
		for _, s := range all[:len(all)-1] {
			if s.next > firstDirty && s.maxTimestamp > cutoff {
				uncleanable = min(uncleanable, s.base)
				break
			}
		}
	}
	p := &cleanPlan{l: l, cfg: cfg, firstDirty: firstDirty, cleanTo: -1}
	for i := 0; i+1 < len(all); i++ {
		upper := all[i+1].base
		if upper > uncleanable {
			break
		}
		if upper <= lso {
			continue // retention deletes it
		}
		p.segs = append(p.segs, all[i])
		p.sizes = append(p.sizes, all[i].size)
		p.cleanTo = upper
	}
	if len(p.segs) == 0 {
		l.mu.Unlock()
		l.appendMu.Unlock()
		return nil
	}
	p.dirtyIdx = len(p.segs)
	var cleanBytes int64
	for j := range p.segs {
		upper := p.cleanTo
		if j+1 < len(p.segs) {
			upper = p.segs[j+1].base
		}
		if p.dirtyIdx == len(p.segs) && upper > firstDirty {
			p.dirtyIdx = j
		}
		if j >= p.dirtyIdx {
			p.dirtyBytes += p.sizes[j]
		} else {
			cleanBytes += p.sizes[j]
		}
	}
	if p.cleanTo <= firstDirty {
		p.dirtyBytes, cleanBytes = 0, cleanBytes+p.dirtyBytes
	}
	if total := cleanBytes + p.dirtyBytes; total > 0 {
		p.ratio = float64(p.dirtyBytes) / float64(total)
	}
	for _, s := range p.segs {
		s.acquire()
	}
	for _, s := range all {
		for _, e := range s.aborted {
			if e.first < p.cleanTo {
				if p.aborted == nil {
					p.aborted = abortedTxns{}
				}
				p.aborted[e.producerID] = append(p.aborted[e.producerID], e)
			}
		}
	}
	l.mu.Unlock()
	p.producers = make(map[int64]int64, len(l.producers.entries))
	for id, e := range l.producers.entries {
		if n := len(e.batches); n > 0 {
			p.producers[id] = e.batches[n-1].lastOffset
		}
	}
	l.appendMu.Unlock()

	if l.clean.horizon > 0 && now.UnixMilli() >= l.clean.horizon {
		p.urgent = true
	}
	if p.dirtyBytes > 0 && cfg.MaxCompactionLagMs < math.MaxInt64 {
		// The first dirty batch's timestamp, as Kafka's
		// LogCleanerManager.maxCompactionDelay uses.
		s := p.segs[p.dirtyIdx]
		var h record.Header
		f, err := s.file()
		if err == nil {
			hs := newHeaderScanner(f, p.sizes[p.dirtyIdx])
			h, err = hs.header(0)
			hs.release()
		}
		if err == nil && h.BaseTimestamp >= 0 && now.UnixMilli()-h.BaseTimestamp > cfg.MaxCompactionLagMs {
			p.urgent = true
		}
	}
	if !p.urgent && (p.dirtyBytes == 0 || p.ratio < cfg.MinCleanableDirtyRatio) {
		p.release()
		return nil
	}
	return p
}

// filthiestLocked plans every compacted log not in skip and returns the
// most urgent plan (max.compaction.lag.ms or an expired delete horizon
// first, then the highest dirty ratio), or nil. Caller holds cleanMu.
func (m *Manager) filthiestLocked(skip map[*Log]bool) *cleanPlan {
	now := m.now()
	var best *cleanPlan
	for _, l := range m.Logs() {
		if skip[l] {
			continue
		}
		p := m.planClean(l, now)
		if p == nil {
			continue
		}
		if best == nil || (p.urgent && !best.urgent) || (p.urgent == best.urgent && p.ratio > best.ratio) {
			if best != nil {
				best.release()
			}
			best = p
		} else {
			p.release()
		}
	}
	return best
}

// CleanNow cleans, once each, every compacted log that is cleanable now
// (dirty ratio, compaction lags and delete horizons as the background
// cleaner judges them), most urgent first, and returns how many it
// cleaned. It works even with CleanerDisabled. Errors of individual logs
// are joined; such a log is not cleaned again until restart.
func (m *Manager) CleanNow() (cleanedLogs int, err error) {
	m.cleanMu.Lock()
	defer m.cleanMu.Unlock()
	done := map[*Log]bool{}
	for {
		p := m.filthiestLocked(done)
		if p == nil {
			return cleanedLogs, err
		}
		done[p.l] = true
		if cerr := m.cleanLogLocked(p); cerr != nil {
			if errors.Is(cerr, errCleanerStopped) {
				return cleanedLogs, errors.Join(err, ErrClosed)
			}
			if !errors.Is(cerr, ErrClosed) { // else deleted meanwhile
				err = errors.Join(err, cerr)
			}
			continue
		}
		cleanedLogs++
	}
}

// cleanerLoop is the background cleaner; Close stops it. It cleans the
// filthiest log, and sleeps CleanerBackoff when none is cleanable.
func (m *Manager) cleanerLoop() {
	defer close(m.cleanerDone)
	t := time.NewTimer(m.cleanerBackoff)
	defer t.Stop()
	for {
		m.cleanMu.Lock()
		p := m.filthiestLocked(nil)
		var err error
		if p != nil {
			err = m.cleanLogLocked(p)
		}
		m.cleanMu.Unlock()
		if p != nil && err == nil {
			select {
			case <-m.stop:
				return
			default:
				continue
			}
		}
		t.Reset(m.cleanerBackoff)
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
	}
}

// abortCleaning makes a cleaning of l stop at its next batch and, with
// wait, waits for it to end. The log is being deleted.
func (l *Log) abortCleaning(wait bool) {
	l.cleanAbort.Store(true)
	if wait {
		l.cleaning.Lock()
		//lint:ignore SA2001 an empty critical section waits for the cleaner
		l.cleaning.Unlock()
	}
}

// cleanStopped reports why a cleaning of l must stop, or nil.
func (l *Log) cleanStopped() error {
	if l.cleanAbort.Load() {
		return ErrClosed
	}
	if l.m.stopping() {
		return errCleanerStopped
	}
	return nil
}

func (m *Manager) stopping() bool {
	select {
	case <-m.stop:
		return true
	default:
		return false
	}
}

// cleanLogLocked runs a plan and releases it. A failure other than the
// log closing or the Manager stopping marks the log uncleanable. Caller
// holds cleanMu.
func (m *Manager) cleanLogLocked(p *cleanPlan) error {
	l := p.l
	start := time.Now()
	l.cleaning.Lock()
	var stats cleanStats
	err := ErrClosed
	if !l.cleanAbort.Load() {
		stats, err = l.cleanPlanned(p)
	}
	l.cleaning.Unlock()
	p.release()
	switch {
	case err == nil:
		m.logger.Info("cleaned log", "partition", l.name(), "dirty_ratio", p.ratio,
			"segments_rewritten", stats.rewritten, "bytes_before", stats.bytesIn, "bytes_after", stats.bytesOut,
			"clean_to", p.cleanTo, "took", time.Since(start))
		return nil
	case errors.Is(err, errCleanerStopped), errors.Is(err, ErrClosed):
		return err
	}
	l.mu.Lock()
	closed := l.mu.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	l.clean.failed = true
	m.logger.Error("cleaning failed; log not cleaned again until restart", "partition", l.name(), "err", err)
	return fmt.Errorf("clean %s: %w", l.name(), err)
}

type cleanStats struct {
	rewritten         int
	bytesIn, bytesOut int64
}

// cleanPlanned does steps 2 to 4 of a cleaning. Caller holds cleanMu.
func (l *Log) cleanPlanned(p *cleanPlan) (cleanStats, error) {
	var st cleanStats
	now := l.m.now().UnixMilli()
	// Offset map over the dirty section.
	offsets := make(map[string]int64)
	for j := p.dirtyIdx; j < len(p.segs); j++ {
		if err := l.cleanStopped(); err != nil {
			return st, err
		}
		if j > p.dirtyIdx && len(offsets) >= maxOffsetMapEntries {
			// The map is full: clean up to here now, the rest next time.
			p.cleanTo = p.segs[j].base
			for _, s := range p.segs[j:] {
				_ = s.release()
			}
			p.segs, p.sizes = p.segs[:j], p.sizes[:j]
			break
		}
		err := forEachBatch(p.segs[j], p.sizes[j], func(raw []byte, h *record.Header) error {
			if err := l.cleanStopped(); err != nil {
				return err
			}
			if h.Control() || h.NextOffset() <= p.firstDirty || p.aborted.has(h) {
				return nil
			}
			bt, err := record.DecodeBatch(raw)
			if err != nil {
				return err
			}
			for i := range bt.Records {
				r := &bt.Records[i]
				if r.Key != nil && r.Offset >= p.firstDirty {
					offsets[string(r.Key)] = r.Offset
				}
			}
			return nil
		})
		if err != nil {
			if serr := l.cleanStopped(); serr != nil {
				return st, serr
			}
			return st, fmt.Errorf("segment %d: build offset map: %w", p.segs[j].base, err)
		}
	}

	f := batchFilter{offsets: offsets, producers: p.producers, aborted: p.aborted, now: now, deleteRetentionMs: p.cfg.DeleteRetentionMs}
	for j, s := range p.segs {
		if err := l.cleanStopped(); err != nil {
			return st, err
		}
		rewritten, out, err := l.cleanSegment(s, p.sizes[j], &f, p.cfg)
		if err != nil {
			if serr := l.cleanStopped(); serr != nil {
				return st, serr
			}
			return st, fmt.Errorf("segment %d: %w", s.base, err)
		}
		st.bytesIn += p.sizes[j]
		st.bytesOut += out
		if rewritten {
			st.rewritten++
		}
	}
	l.clean.horizon = f.minHorizon

	l.mu.Lock()
	if err := l.stateErrLocked(); err != nil {
		l.mu.Unlock()
		return st, err
	}
	// Never past the log end: a follower truncation may have cut the log
	// below the cleaned section meanwhile (its segments were not swapped).
	l.mu.cleanerOffset = min(max(p.cleanTo, p.firstDirty), l.mu.leo)
	l.mu.Unlock()
	if err := l.m.writeCheckpointFiles(filepath.Dir(l.dirPath()), ckptCleaner); err != nil {
		return st, fmt.Errorf("write %s: %w", cleanerOffsetFile, err)
	}
	return st, nil
}

// batchFilter decides, record by record, what a cleaning keeps (Kafka's
// Cleaner.shouldRetainRecord and MemoryRecords.filterTo).
type batchFilter struct {
	offsets           map[string]int64
	producers         map[int64]int64
	aborted           abortedTxns
	now               int64 // ms
	deleteRetentionMs int64
	// minHorizon is the earliest delete horizon of the batches kept with
	// tombstones; 0 when none.
	minHorizon int64
}

// filter returns the batch to write in place of raw: raw itself when
// nothing changes, a rewritten batch, or nil to drop it.
//
//   - Control batches (transaction markers) are kept as they are. Kafka
//     drops a marker once its transaction's data is gone and the delete
//     horizon passed; we keep them (a few bytes each).
//   - The records of an aborted transaction are dropped (Kafka's
//     Cleaner discards aborted batches). The aborted entry stays in the
//     transaction index.
//   - A record without a key is dropped (a compacted topic rejects them at
//     produce time), so is a record whose key has a later record in the
//     dirty section.
//   - A tombstone (null value) is kept until its batch's delete horizon
//     passed. A batch kept with tombstones but without a horizon gets one:
//     now + delete.retention.ms (KIP-534), so a tombstone survives at
//     least delete.retention.ms after the cleaning that first saw it.
//   - A batch left without records is dropped, unless it is the last batch
//     of a producer: then it stays as an empty batch (header only), which
//     keeps the producer's last sequence number and offset.
//   - A rewritten batch keeps its base offset, last offset delta,
//     partition leader epoch, attributes and codec, producer id, epoch and
//     base sequence, max timestamp, and every record its offset and
//     timestamp; removed records leave gaps in the offsets.
func (f *batchFilter) filter(raw []byte, h *record.Header) ([]byte, error) {
	if h.Control() {
		if _, err := record.Validate(raw); err != nil {
			return nil, err
		}
		return raw, nil
	}
	bt, err := record.DecodeBatch(raw)
	if err != nil {
		return nil, err
	}
	horizon, hasHorizon := h.DeleteHorizon()
	kept := bt.Records[:0:0]
	tombstones := false
	aborted := f.aborted.has(h)
	for i := range bt.Records {
		if aborted {
			break
		}
		r := &bt.Records[i]
		if r.Key == nil {
			continue
		}
		if o, ok := f.offsets[string(r.Key)]; ok && r.Offset < o {
			continue
		}
		if r.Value == nil {
			if hasHorizon && f.now >= horizon {
				continue
			}
			tombstones = true
		}
		kept = append(kept, *r)
	}
	nh := bt.Header
	if tombstones {
		if !hasHorizon {
			horizon = f.now + f.deleteRetentionMs
			nh.SetDeleteHorizon(horizon)
		}
		if f.minHorizon == 0 || horizon < f.minHorizon {
			f.minHorizon = max(horizon, 1)
		}
	}
	if len(kept) == len(bt.Records) && (!tombstones || hasHorizon) {
		return raw, nil
	}
	if len(kept) == 0 {
		if last, ok := f.producers[h.ProducerID]; !ok || h.ProducerID < 0 || last != h.LastOffset() {
			return nil, nil
		}
		nh.BaseTimestamp = h.MaxTimestamp
	}
	return record.Rewrite(raw, nh, kept)
}

// forEachBatch reads the batches of s below size in order and calls fn
// with each; raw is only valid during the call.
func forEachBatch(s *segment, size int64, fn func(raw []byte, h *record.Header) error) error {
	f, err := s.file()
	if err != nil {
		return err
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 256<<10)
	buf := make([]byte, 64<<10)
	for pos := int64(0); pos < size; {
		if size-pos < record.HeaderSize {
			return fmt.Errorf("%w: %d bytes at the end of the segment", record.ErrTruncated, size-pos)
		}
		if _, err := io.ReadFull(r, buf[:record.HeaderSize]); err != nil {
			return err
		}
		h, err := record.ParseHeader(buf[:record.HeaderSize])
		if err != nil {
			return err
		}
		n := int64(h.Size())
		if n > size-pos {
			return record.ErrTruncated
		}
		if int64(cap(buf)) < n {
			nb := make([]byte, n)
			copy(nb, buf[:record.HeaderSize])
			buf = nb
		}
		raw := buf[:n]
		if _, err := io.ReadFull(r, raw[record.HeaderSize:]); err != nil {
			return err
		}
		if err := fn(raw, &h); err != nil {
			return err
		}
		pos += n
	}
	return nil
}

// cleanSegment filters s into "<base>.log.cleaned" and its indexes and
// swaps the result in. rewritten is false when nothing changed (the
// cleaned files are then dropped). out is the size kept.
func (l *Log) cleanSegment(s *segment, size int64, f *batchFilter, cfg *Config) (rewritten bool, out int64, err error) {
	ns, err := openCleanedFiles(l.dirPath(), s.base)
	if err != nil {
		return false, 0, err
	}
	swapped := false
	defer func() {
		if !swapped {
			_ = ns.close()
			removeCleanedFiles(l.dirPath(), s.base)
		}
	}()
	w := bufio.NewWriterSize(ns.f, 256<<10)
	changed := false
	var pos int64
	err = forEachBatch(s, size, func(raw []byte, h *record.Header) error {
		if err := l.cleanStopped(); err != nil {
			return err
		}
		b, err := f.filter(raw, h)
		if err != nil {
			return err
		}
		if len(b) == 0 {
			changed = true
			return nil
		}
		if len(b) != len(raw) || &b[0] != &raw[0] {
			changed = true
		}
		oh, err := record.ParseHeader(b)
		if err != nil {
			return err
		}
		ns.indexBatch(&oh, pos, len(b), cfg.IndexIntervalBytes)
		if _, err := w.Write(b); err != nil {
			return err
		}
		pos += int64(len(b))
		return nil
	})
	if err != nil {
		return false, 0, err
	}
	if !changed {
		return false, size, nil
	}
	if err := w.Flush(); err != nil {
		return false, 0, err
	}
	ns.size = pos
	ns.maybeAppendTime()
	if err := ns.writeIndexFiles(cleanedSuffix); err != nil {
		return false, 0, err
	}
	if err := fdatasync(ns.f); err != nil {
		return false, 0, err
	}
	// The cleaned segment keeps the original's modification time, which
	// time-based retention falls back to for a segment without timestamps
	// (Kafka's Cleaner does the same).
	if st, err := os.Stat(s.path(logSuffix)); err == nil {
		_ = os.Chtimes(filepath.Join(l.dirPath(), segmentName(s.base, logSuffix+cleanedSuffix)), st.ModTime(), st.ModTime())
	}
	ok, err := l.swapCleaned(s, ns)
	if err != nil || !ok {
		return false, 0, err
	}
	swapped = true
	return true, pos, nil
}

// openCleanedFiles creates "<base>.log.cleaned" and returns the segment
// writing it: not in the file cache (files is nil) until it is swapped in;
// its index files are written whole at the end (writeIndexFiles).
func openCleanedFiles(dir string, base int64) (*segment, error) {
	s := newSegment(dir, base, nil)
	var err error
	if s.f, err = os.OpenFile(s.path(logSuffix+cleanedSuffix), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644); err != nil {
		removeCleanedFiles(dir, base)
		return nil, err
	}
	return s, nil
}

func removeCleanedFiles(dir string, base int64) {
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		_ = os.Remove(filepath.Join(dir, segmentName(base, suf+cleanedSuffix)))
	}
}

// swapCleaned replaces segment old by the cleaned segment ns, whose files
// are "<base>.{log,index,timeindex}.cleaned", fsynced. The protocol
// (Kafka's LogCleaner/LocalLog.replaceSegments), crash-safe at every step
// given the recovery in recoverSwapFiles:
//
//  1. rename index.cleaned and timeindex.cleaned to .swap, then
//     log.cleaned to log.swap, and fsync the directory: from here the
//     swap is committed and recovery completes it;
//  2. rename log.swap over .log, index.swap over .index, timeindex.swap
//     over .timeindex, and fsync the directory;
//  3. publish ns in place of old; old's descriptors stay open (on the
//     replaced inodes) until its last reader releases it.
//
// false: old is gone meanwhile (retention, close); nothing was swapped.
func (l *Log) swapCleaned(old, ns *segment) (bool, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	idx := -1
	if l.stateErrLocked() == nil {
		for i, s := range l.mu.segments[:len(l.mu.segments)-1] {
			if s == old {
				idx = i
				break
			}
		}
	}
	l.mu.Unlock()
	if idx < 0 || old.truncated {
		return false, nil
	}
	// A reader may still hold old: its .log stays open over the renames.
	if err := old.retire(); err != nil {
		return false, l.ioFailure("cleaner swap", err)
	}
	name := func(suf string) string { return filepath.Join(l.dirPath(), segmentName(old.base, suf)) }
	for _, suf := range []string{indexSuffix, timeIndexSuffix, logSuffix} {
		if err := os.Rename(name(suf+cleanedSuffix), name(suf+swapSuffix)); err != nil {
			return false, l.ioFailure("cleaner swap", err)
		}
	}
	if err := syncDir(l.dirPath()); err != nil {
		return false, l.ioFailure("cleaner swap", err)
	}
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		if err := os.Rename(name(suf+swapSuffix), name(suf)); err != nil {
			return false, l.ioFailure("cleaner swap", err)
		}
	}
	if err := syncDir(l.dirPath()); err != nil {
		return false, l.ioFailure("cleaner swap", err)
	}
	ns.created = old.created
	ns.files = l.m.files // the .log is now at its final name
	l.mu.Lock()
	// The transaction index is not rewritten: offsets and markers are
	// unchanged, so it stays valid for the cleaned segment, which takes
	// over its file (old keeps its descriptor, if open, until released;
	// a pending fsync is handed over with the dirty flag).
	ns.aborted = old.aborted
	if old.txnDirty.Load() {
		ns.txnDirty.Store(true)
	}
	segs := make([]*segment, len(l.mu.segments))
	copy(segs, l.mu.segments)
	segs[idx] = ns
	l.mu.segments = segs
	l.recomputeMaxTimestampLocked()
	l.mu.Unlock()
	ns.enterCache()
	if err := old.release(); err != nil {
		l.m.logger.Warn("close replaced segment", "partition", l.name(), "segment", old.base, "err", err)
	}
	return true, nil
}

// recoverSwapFiles finishes or rolls back cleaner swaps interrupted by a
// crash (see swapCleaned) and returns the segments whose indexes must be
// rebuilt. For a base offset:
//
//   - "<base>.log.swap" exists: the swap was committed; every .swap file
//     of the base replaces its original.
//   - "<base>.log.cleaned" exists: not committed; the .cleaned and .swap
//     files of the base are removed and the original stays.
//   - only index .swap files: step 2 was under way (the log was already
//     replaced); they replace their originals.
//
// Leftover .cleaned files are removed in every case.
func recoverSwapFiles(dir string) (map[int64]bool, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type state struct{ logSwap, logCleaned bool }
	bases := map[int64]*state{}
	for _, e := range ents {
		name := e.Name()
		var rest string
		var swap bool
		switch {
		case len(name) > len(swapSuffix) && name[len(name)-len(swapSuffix):] == swapSuffix:
			rest, swap = name[:len(name)-len(swapSuffix)], true
		case len(name) > len(cleanedSuffix) && name[len(name)-len(cleanedSuffix):] == cleanedSuffix:
			rest = name[:len(name)-len(cleanedSuffix)]
		default:
			continue
		}
		base, suf, ok := parseSegmentFileName(rest)
		if !ok {
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		st := bases[base]
		if st == nil {
			st = &state{}
			bases[base] = st
		}
		if suf == logSuffix {
			if swap {
				st.logSwap = true
			} else {
				st.logCleaned = true
			}
		}
	}
	if len(bases) == 0 {
		return nil, nil
	}
	rebuild := map[int64]bool{}
	for base, st := range bases {
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			orig := filepath.Join(dir, segmentName(base, suf))
			_ = os.Remove(orig + cleanedSuffix)
			if st.logCleaned && !st.logSwap {
				_ = os.Remove(orig + swapSuffix)
				continue
			}
			if err := os.Rename(orig+swapSuffix, orig); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			rebuild[base] = true
		}
	}
	return rebuild, syncDir(dir)
}

// parseSegmentFileName splits "<20-digit base><suffix>".
func parseSegmentFileName(name string) (int64, string, bool) {
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		if len(name) == 20+len(suf) && name[20:] == suf {
			var base int64
			for _, c := range name[:20] {
				if c < '0' || c > '9' {
					return 0, "", false
				}
				if base > (math.MaxInt64-int64(c-'0'))/10 {
					return 0, "", false
				}
				base = base*10 + int64(c-'0')
			}
			return base, suf, true
		}
	}
	return 0, "", false
}
