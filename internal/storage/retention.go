package storage

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"
)

// deletedSuffix marks the files of a segment deleted by retention,
// DeleteRecords or the cleaner; they are removed file.delete.delay.ms
// later, and at the next open if the broker stopped meanwhile (Kafka's
// LogFileUtils.DELETED_FILE_SUFFIX).
const deletedSuffix = ".deleted"

// DeleteRecordsBefore moves the log start offset to offset (Kafka's
// DeleteRecords, UnifiedLog.maybeIncrementLogStartOffset): offset -1 means
// the high watermark; an offset above the high watermark, or negative other
// than -1, is ErrOffsetOutOfRange; an offset at or below the current log
// start offset changes nothing. The new start may fall inside a segment:
// reads below it fail with ErrOffsetOutOfRange, and the segments that end
// at or below it are deleted before returning. The active segment is
// never deleted, even when the new start is its end: the start just moves
// (Kafka does the same, its log-start predicate never selects the active
// segment). log-start-offset-checkpoint is written and fsynced before
// returning, so the new start survives kill -9.
func (l *Log) DeleteRecordsBefore(offset int64) (logStartOffset int64, err error) {
	return l.moveLogStart(offset, false)
}

// MaybeIncrementLogStartOffset moves a follower's log start offset up to
// the leader's (the log start offset of a fetch response; Kafka's
// UnifiedLog.maybeIncrementLogStartOffset with reason
// LeaderOffsetIncremented). It never moves backwards: an offset at or
// below the current start is a no-op. The bound is the follower's log end
// offset (above it: ErrOffsetOutOfRange, nothing changes); Kafka bounds it
// by the high watermark instead, which the fetcher moves first anyway, so
// the high watermark is raised to the new start if it lags. Otherwise as
// DeleteRecordsBefore: epoch cache truncated from the start,
// log-start-offset-checkpoint written and fsynced, segments ending at or
// below the new start deleted, before returning.
func (l *Log) MaybeIncrementLogStartOffset(offset int64) error {
	_, err := l.moveLogStart(offset, true)
	return err
}

// moveLogStart is DeleteRecordsBefore (the new start bounded by the high
// watermark, -1 meaning the high watermark) or, for a follower, the same
// bounded by the log end offset.
func (l *Log) moveLogStart(offset int64, follower bool) (logStartOffset int64, err error) {
	l.appendMu.Lock()
	l.mu.Lock()
	if err := l.stateErrLocked(); err != nil {
		l.mu.Unlock()
		l.appendMu.Unlock()
		return -1, err
	}
	hw, lso := l.mu.hw, l.mu.logStartOffset
	limit, what := hw, "high watermark"
	if follower {
		limit, what = l.mu.leo, "log end offset"
	} else if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > limit {
		l.mu.Unlock()
		l.appendMu.Unlock()
		return -1, fmt.Errorf("%w: log start offset %d: %s %d", ErrOffsetOutOfRange, offset, what, limit)
	}
	if offset <= lso {
		l.mu.Unlock()
		l.appendMu.Unlock()
		return lso, nil
	}
	l.mu.logStartOffset = offset
	l.mu.hw = max(l.mu.hw, offset)
	l.notifyLocked()
	l.mu.Unlock()
	err = l.truncateEpochsFromStartLocked(offset)
	l.appendMu.Unlock()
	if err != nil {
		return -1, err
	}
	// Checkpoint before deleting anything (ckptMu comes before appendMu
	// in the lock order, so appendMu is released first).
	if err := l.m.writeCheckpointFiles(filepath.Dir(l.dirPath()), ckptLogStart); err != nil {
		return -1, l.writeFailure("write log-start-offset-checkpoint", err)
	}
	if _, err := l.deleteOldSegments(false); err != nil {
		return -1, err
	}
	return offset, nil
}

// DeleteOldSegments applies retention to the log once (Kafka's
// UnifiedLog.deleteOldSegments) and returns the number of segments
// deleted. Segments wholly below the log start offset are always deleted;
// with cleanup.policy containing "delete" so are the oldest segments whose
// largest timestamp is more than retention.ms old and, while the log is
// larger than retention.bytes by at least a segment's size, the oldest
// segments. Only a prefix of the log goes: the active segment never, and
// a segment only once it lies wholly below the high watermark. The log
// start offset then moves to the first remaining segment's base.
func (l *Log) DeleteOldSegments() (int, error) { return l.deleteOldSegments(true) }

func (l *Log) deleteOldSegments(retention bool) (int, error) {
	cfg := l.config()
	retention = retention && cfg.hasPolicy(CleanupPolicyDelete)
	now := l.m.now()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	// The segment list only changes under appendMu, which we hold; mu
	// is needed for the offsets and sizes only.
	l.mu.Lock()
	if err := l.stateErrLocked(); err != nil {
		l.mu.Unlock()
		return 0, err
	}
	segs := l.mu.segments
	lso, hw := l.mu.logStartOffset, l.mu.hw
	var total int64
	sizes := make([]int64, len(segs))
	maxTs := make([]int64, len(segs))
	for i, s := range segs {
		sizes[i], maxTs[i] = s.size, s.maxTimestamp
		total += s.size
	}
	l.mu.Unlock()

	diff := int64(-1)
	if cfg.RetentionBytes >= 0 {
		diff = total - cfg.RetentionBytes
	}
	n := 0
	for ; n < len(segs)-1; n++ {
		upper := segs[n+1].base
		if upper <= lso {
			continue
		}
		if !retention || upper > hw {
			break
		}
		expired := false
		if cfg.RetentionMs >= 0 {
			ts := maxTs[n]
			if ts < 0 {
				// No timestamps: the file's modification time, as
				// Kafka's LogSegment.largestTimestamp.
				if st, err := os.Stat(segs[n].path(logSuffix)); err == nil {
					ts = st.ModTime().UnixMilli()
				} else {
					ts = now.UnixMilli()
				}
			}
			expired = now.UnixMilli()-ts > cfg.RetentionMs
		}
		oversize := cfg.RetentionBytes >= 0 && diff-sizes[n] >= 0
		if !expired && !oversize {
			break
		}
		diff -= sizes[n]
	}
	if n == 0 {
		return 0, nil
	}
	gone := segs[:n]
	l.mu.Lock()
	kept := make([]*segment, len(segs)-n)
	copy(kept, segs[n:])
	l.mu.segments = kept
	newStart := max(l.mu.logStartOffset, kept[0].base)
	l.mu.logStartOffset = newStart
	l.mu.hw = max(l.mu.hw, newStart)
	l.mu.recoveryPoint = max(l.mu.recoveryPoint, kept[0].base)
	l.recomputeMaxTimestampLocked()
	l.mu.Unlock()
	for _, s := range gone {
		l.m.logger.Info("deleting segment", "partition", l.name(), "segment", s.base, "log_start_offset", newStart)
	}
	err := l.retireSegments(gone, cfg)
	if eerr := l.truncateEpochsFromStartLocked(newStart); err == nil {
		err = eerr
	}
	return n, err
}

// retireSegments renames the files of segments no longer listed to
// *.deleted, schedules their removal after file.delete.delay.ms and drops
// the list's reference (readers holding one keep the files open). Caller
// holds appendMu.
func (l *Log) retireSegments(gone []*segment, cfg *Config) error {
	var errs []error
	var paths []string
	for _, s := range gone {
		// A reader may still hold s: its .log stays open over the rename.
		if err := s.retire(); err != nil {
			errs = append(errs, err)
		}
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
			p := filepath.Join(l.dirPath(), segmentName(s.base, suf))
			if err := os.Rename(p, p+deletedSuffix); err != nil {
				if !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
				continue
			}
			paths = append(paths, p+deletedSuffix)
		}
		if err := s.release(); err != nil {
			l.m.logger.Warn("close deleted segment", "partition", l.name(), "segment", s.base, "err", err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return l.ioFailure("delete segment", err)
	}
	l.m.scheduleDelete(paths, cfg.FileDeleteDelayMs)
	return nil
}

// truncateEpochsFromStartLocked drops leader-epoch entries below the new
// log start offset, moving the latest of them to start (Kafka's
// LeaderEpochFileCache.truncateFromStart). Caller holds appendMu.
func (l *Log) truncateEpochsFromStartLocked(start int64) error {
	l.mu.Lock()
	es := l.mu.epochs
	i := 0
	for i < len(es) && es[i].startOffset < start {
		i++
	}
	if i == 0 {
		l.mu.Unlock()
		return nil
	}
	kept := make([]epochEntry, 0, len(es)-i+1)
	if i == len(es) || es[i].startOffset > start {
		kept = append(kept, epochEntry{es[i-1].epoch, start})
	}
	kept = append(kept, es[i:]...)
	l.mu.epochs = kept
	l.mu.Unlock()
	if err := writeFileAtomic(filepath.Join(l.dirPath(), leaderEpochFile), encodeLeaderEpochCheckpoint(kept), true); err != nil {
		return l.writeFailure("write leader-epoch-checkpoint", err)
	}
	return nil
}

// RunRetention applies retention to every log once (what the background
// loop does every RetentionCheckInterval) and returns the number of
// segments deleted.
func (m *Manager) RunRetention() (deletedSegments int) {
	for _, l := range m.Logs() {
		n, err := l.DeleteOldSegments()
		deletedSegments += n
		if err != nil && !errors.Is(err, ErrClosed) {
			m.logger.Warn("retention", "partition", l.name(), "err", err)
		}
	}
	return deletedSegments
}

// pendingDelete is a set of paths to remove at due: *.deleted segment
// files, or a "-delete" dir with everything in it.
type pendingDelete struct {
	paths []string
	due   time.Time
}

// removeLogDir takes a deleted partition's dir out of its log dir at once
// and removes it later, as Kafka's LogManager.asyncDelete: the dir is
// renamed to "<topic>-<partition>.<id>-delete" and removed by the
// background loop delayMs later (at its next round when 0). Removing
// gigabytes of files costs the kernel about a second per gigabyte; done
// in place, it held up the caller (the metadata image being applied) for
// that long, and at once for every partition of a deleted topic. A
// "-delete" dir left by a crash goes the same way after the next open
// (future.go). If the rename fails the dir is removed in place.
func (m *Manager) removeLogDir(tp TopicPartition, dir string, delayMs int64) error {
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand does not fail (Go 1.24+)
	del := filepath.Join(filepath.Dir(dir), deleteDirName(tp, hex.EncodeToString(raw[:])))
	if err := os.Rename(dir, del); err != nil {
		if rerr := os.RemoveAll(dir); rerr != nil {
			return fmt.Errorf("storage: delete %s: %w", tp, rerr)
		}
		return nil
	}
	m.removeAt([]string{del}, m.now().Add(msDuration(min(max(delayMs, 0), math.MaxInt64/2))))
	return nil
}

// scheduleDelete removes paths after delayMs (immediately when 0).
func (m *Manager) scheduleDelete(paths []string, delayMs int64) {
	if len(paths) == 0 {
		return
	}
	if delayMs <= 0 {
		removePaths(m, paths)
		return
	}
	m.removeAt(paths, m.now().Add(msDuration(min(delayMs, math.MaxInt64/2))))
}

// removeAt has the background loop remove paths once due has passed.
func (m *Manager) removeAt(paths []string, due time.Time) {
	m.delMu.Lock()
	m.pending = append(m.pending, pendingDelete{paths: paths, due: due})
	m.delMu.Unlock()
}

// purgeDeleted removes the scheduled paths that are due (all with
// force).
func (m *Manager) purgeDeleted(now time.Time, force bool) {
	m.delMu.Lock()
	var due []pendingDelete
	kept := m.pending[:0]
	for _, p := range m.pending {
		if force || !now.Before(p.due) {
			due = append(due, p)
		} else {
			kept = append(kept, p)
		}
	}
	m.pending = kept
	m.delMu.Unlock()
	for _, p := range due {
		removePaths(m, p.paths)
	}
}

// removePaths removes files, and dirs with everything in them; a path
// already gone is no error.
func removePaths(m *Manager, paths []string) {
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			m.logger.Warn("remove deleted file", "path", p, "err", err)
		}
	}
}
