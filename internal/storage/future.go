package storage

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// This file moves a partition's log to another log dir of the same broker
// (AlterReplicaLogDirs, KIP-113), as Kafka's ReplicaAlterLogDirsThread and
// LogManager.replaceCurrentWithFutureLog do:
//
//   - AlterLogDir creates an empty "future" log in the destination dir,
//     "<topic>-<partition>.<id>-future" (id: 32 hex digits, Kafka's
//     UUID without dashes).
//   - One copier goroutine per Manager copies the current log's batches
//     into the future log, at most futureChunkBytes per step, round-robin
//     over the moving partitions, like a follower fetching from its own
//     broker: byte-for-byte follower appends (AppendAsFollower), epoch-based
//     truncation when the current log was truncated, log start offset and
//     high watermark carried over.
//   - Once the future log has caught up, the swap runs with the current
//     log's appends blocked (Log.appendMu) and the cleaner excluded: the
//     last batches are copied, the future log is closed (everything
//     fsynced), the current dir is renamed to
//     "<topic>-<partition>.<id>-delete", the future dir to
//     "<topic>-<partition>", the moved files are opened and put in place
//     of the old segments inside the same *Log, and the old dir is
//     removed. Callers keep their *Log: nothing above storage sees the
//     move except Log.Dir().
//
// Crash safety (the current log is never written by a move, only renamed
// after the future one is complete and durable). At open:
//
//   - a future dir whose partition has a current log: the copy resumes
//     (the future log is recovered by a full scan: futures are not in the
//     checkpoint files);
//   - a future dir without a current log but with a "-delete" dir of the
//     same id: the node stopped between the two renames of a swap; the
//     future log was complete, so the swap is finished (renamed to
//     "<topic>-<partition>");
//   - any other future dir is an orphan and removed; "-delete" dirs (a
//     moved log's old dir, a deleted partition's) are removed by the
//     storage loop's first round.
//
// The copy is throttled by replica.alter.log.dirs.io.max.bytes.per.second
// (move_throttle.go): the copier waits for the rate before each step and
// every copied byte is paid for, the swap's last chunks included (they
// are not waited for: appends are blocked then).

const (
	futureDirSuffix = "-future"
	deleteDirSuffix = "-delete"

	// futureChunkBytes bounds one copy step: the buffer read from the
	// current log and appended to the future one.
	futureChunkBytes = 1 << 20
	// futureIdle is how often the copier looks at moving partitions that
	// had nothing to copy (the current log did not grow).
	futureIdle = 50 * time.Millisecond
	// maxFutureTruncations bounds the epoch walk of one divergence check.
	maxFutureTruncations = 64
)

var (
	// ErrLogDirNotFound: the destination is not one of log.dirs
	// (LOG_DIR_NOT_FOUND).
	ErrLogDirNotFound = errors.New("storage: log dir not found")
)

// futureLog is a partition's log being moved to another log dir.
type futureLog struct {
	tp     TopicPartition
	id     string // 32 hex digits: the dir name's "<id>"
	dest   string // cleaned destination log dir
	source *Log   // the current log; immutable

	// mu is held by the copier during a step (and the swap) and by
	// cancel, so a cancelled future is never stepped again.
	mu sync.Mutex
	// log is the future log. Guarded by mu; nil once swapped or
	// cancelled.
	log       *Log
	cancelled bool   // guarded by mu
	from      string // the log dir moved from, set by a successful swap; guarded by mu
}

// futureErr marks an error of the future log (the move is abandoned), as
// opposed to one of the current log or a race with it (retried).
type futureErr struct{ err error }

func (e futureErr) Error() string { return "future log: " + e.err.Error() }
func (e futureErr) Unwrap() error { return e.err }

func dstErr(err error) error {
	if err == nil {
		return nil
	}
	return futureErr{err}
}

// FutureInfo describes a log being moved (DescribeLogDirs: IsFuture).
type FutureInfo struct {
	Topic     string
	Partition int32
	// Dir is the destination log dir.
	Dir string
	// Size is the future log's size in bytes; LogEndOffset its end.
	Size         int64
	LogEndOffset int64
	// OffsetLag is the current log's end offset minus the future's
	// (Kafka's ReplicaManager.getLogEndOffsetLag for a future log).
	OffsetLag int64
}

func futureDirName(tp TopicPartition, id string) string {
	return tp.String() + "." + id + futureDirSuffix
}

func deleteDirName(tp TopicPartition, id string) string {
	return tp.String() + "." + id + deleteDirSuffix
}

// parseMoveDir splits "<topic>-<partition>.<id>-future" (or -delete)
// into the partition and id.
func parseMoveDir(name, suffix string) (TopicPartition, string, bool) {
	rest, ok := strings.CutSuffix(name, suffix)
	if !ok {
		return TopicPartition{}, "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 || len(rest)-i-1 != 32 {
		return TopicPartition{}, "", false
	}
	id := rest[i+1:]
	if _, err := hex.DecodeString(id); err != nil {
		return TopicPartition{}, "", false
	}
	tp, ok := parseTopicPartitionDir(rest[:i])
	return tp, id, ok
}

// resolveLogDir returns the configured log dir that dir names (compared
// as absolute, cleaned paths), or ErrLogDirNotFound.
func (m *Manager) resolveLogDir(dir string) (string, error) {
	want := absDir(dir)
	for _, d := range m.dirs {
		if absDir(d) == want {
			return filepath.Clean(d), nil
		}
	}
	return "", fmt.Errorf("%w: %s", ErrLogDirNotFound, dir)
}

func absDir(d string) string {
	if a, err := filepath.Abs(d); err == nil {
		return a
	}
	return filepath.Clean(d)
}

// AlterLogDir moves the partition's log to the log dir dir (one of
// log.dirs), in the background (Kafka's ReplicaManager.alterReplicaLogDirs):
//
//   - dir not configured: ErrLogDirNotFound;
//   - no log of the partition here: ErrLogNotFound, and dir is kept as
//     the partition's preferred dir should its log be created later
//     (Kafka's maybeUpdatePreferredLogDir; REPLICA_NOT_AVAILABLE);
//   - the partition or dir is offline: ErrStorage;
//   - dir is where the log is: nothing to do (a move in progress to
//     another dir is cancelled);
//   - a move to another dir in progress is cancelled and a new one
//     starts; a move to the same dir continues.
func (m *Manager) AlterLogDir(topic string, partition int32, dir string) error {
	tp := TopicPartition{topic, partition}
	dest, err := m.resolveLogDir(dir)
	if err != nil {
		return err
	}
	var cancel *futureLog
	defer func() {
		if cancel != nil {
			m.cancelFuture(cancel)
		}
	}()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return ErrClosed
	}
	if f, ok := m.mu.failed[tp]; ok {
		return fmt.Errorf("storage: partition %s offline: %w: %w", tp, ErrStorage, f.err)
	}
	l, ok := m.mu.logs[tp]
	if !ok {
		m.mu.preferred[tp] = dest
		return fmt.Errorf("%w: %s", ErrLogNotFound, tp)
	}
	if l.Offline() {
		return fmt.Errorf("%s: %w", tp, ErrStorage)
	}
	if !m.dirOnline(dest) {
		return fmt.Errorf("storage: log dir %s: %w: %w", dest, ErrStorage, ErrLogDirOffline)
	}
	if f := m.mu.futures[tp]; f != nil {
		if f.dest == dest {
			return nil
		}
		delete(m.mu.futures, tp)
		cancel = f
	}
	if filepath.Dir(l.dirPath()) == dest {
		return nil
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fmt.Errorf("storage: move %s: %w", tp, err)
	}
	id := hex.EncodeToString(raw[:])
	fdir := filepath.Join(dest, futureDirName(tp, id))
	fl, err := createFutureLog(m, fdir, tp, l)
	if err != nil {
		return fmt.Errorf("storage: move %s: %w: %w", tp, ErrStorage, err)
	}
	m.mu.futures[tp] = &futureLog{tp: tp, id: id, dest: dest, source: l, log: fl}
	m.logger.Info("moving partition log to another log dir", "partition", tp, "from", filepath.Dir(l.dirPath()), "to", dest)
	m.wakeCopier()
	return nil
}

// createFutureLog makes the future log's dir with the current log's topic
// id and opens it (empty).
func createFutureLog(m *Manager, fdir string, tp TopicPartition, src *Log) (*Log, error) {
	if err := os.MkdirAll(fdir, 0o755); err != nil {
		return nil, err
	}
	fail := func(err error) (*Log, error) {
		_ = os.RemoveAll(fdir)
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(fdir, partitionMetadataFile), encodePartitionMetadata(src.TopicID()), true); err != nil {
		return fail(err)
	}
	fl, err := openLog(m, fdir, tp, false, 0, 0, 0, *src.config())
	if err != nil {
		return fail(err)
	}
	if err := syncDir(filepath.Dir(fdir)); err != nil {
		_ = fl.close()
		return fail(err)
	}
	return fl, nil
}

// cancelFuture stops a move that left m.mu.futures: waits for the copier's
// step on it, closes the future log and removes its dir. The current log
// is untouched.
func (m *Manager) cancelFuture(f *futureLog) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = true
	if f.log == nil {
		return
	}
	dir := f.log.dirPath()
	if err := f.log.close(); err != nil {
		m.logger.Warn("close cancelled future log", "partition", f.tp, "err", err)
	}
	f.log = nil
	if err := os.RemoveAll(dir); err != nil {
		m.logger.Warn("remove cancelled future log", "partition", f.tp, "dir", dir, "err", err)
	}
	m.logger.Info("log dir move cancelled", "partition", f.tp, "to", f.dest)
}

// takeFutureLocked removes the partition's move from the map; the caller
// cancels it after releasing m.mu. Caller holds m.mu.
func (m *Manager) takeFutureLocked(tp TopicPartition) *futureLog {
	f := m.mu.futures[tp]
	delete(m.mu.futures, tp)
	return f
}

// Futures describes the logs being moved, sorted by topic and partition.
func (m *Manager) Futures() []FutureInfo {
	m.mu.Lock()
	fs := make([]*futureLog, 0, len(m.mu.futures))
	for _, f := range m.mu.futures {
		fs = append(fs, f)
	}
	m.mu.Unlock()
	out := make([]FutureInfo, 0, len(fs))
	for _, f := range fs {
		f.mu.Lock()
		fl := f.log
		f.mu.Unlock()
		if fl == nil {
			continue
		}
		leo := fl.LogEndOffset()
		out = append(out, FutureInfo{
			Topic: f.tp.Topic, Partition: f.tp.Partition, Dir: f.dest,
			Size: fl.Size(), LogEndOffset: leo, OffsetLag: max(f.source.LogEndOffset()-leo, 0),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// wakeCopier makes the copier look at the moves now.
func (m *Manager) wakeCopier() {
	select {
	case m.copierWake <- struct{}{}:
	default:
	}
}

// copierLoop copies every moving partition's log, a bounded step at a
// time, and swaps those that caught up. Close stops it.
func (m *Manager) copierLoop() {
	defer close(m.copierDone)
	idle := time.NewTimer(futureIdle)
	defer idle.Stop()
	for {
		m.mu.Lock()
		fs := make([]*futureLog, 0, len(m.mu.futures))
		for _, f := range m.mu.futures {
			fs = append(fs, f)
		}
		m.mu.Unlock()
		busy := false
		if m.copierPaused.Load() {
			fs = nil
		}
		for _, f := range fs {
			select {
			case <-m.stop:
				return
			default:
			}
			if !m.moveThrottle.wait(m.stop) {
				return
			}
			if m.stepFuture(f) {
				busy = true
			}
		}
		if busy {
			continue
		}
		var tick <-chan time.Time
		if len(fs) > 0 || m.copierPaused.Load() {
			idle.Reset(futureIdle)
			tick = idle.C
		}
		select {
		case <-m.stop:
			return
		case <-m.copierWake:
		case <-tick:
		}
	}
}

// stepFuture copies one chunk into f's future log, or swaps it in when it
// caught up; it reports whether bytes were copied. An error of the future
// log ends the move (the future is removed, the current log stays); an
// error of the current log (offline, closed) leaves the move waiting.
func (m *Manager) stepFuture(f *futureLog) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cancelled || f.log == nil {
		return false
	}
	n, err := m.copyChunk(f.source, f.log, m.moveThrottle.chunk())
	if err == nil && n == 0 && f.log.LogEndOffset() == f.source.LogEndOffset() {
		err = m.swapFuture(f)
		if err == nil {
			m.mu.Lock()
			if m.mu.futures[f.tp] == f {
				delete(m.mu.futures, f.tp)
			}
			m.mu.Unlock()
			m.checkpointDirs(f.from, f.dest)
			return true
		}
	}
	if err != nil {
		var fe futureErr
		if !errors.As(err, &fe) {
			// The current log is offline or closed, or changed under
			// the step (truncation): try again later.
			m.logger.Debug("log dir move step", "partition", f.tp, "err", err)
			return false
		}
		m.logger.Error("log dir move failed; the future log is removed", "partition", f.tp, "to", f.dest, "err", err)
		m.mu.Lock()
		if m.mu.futures[f.tp] == f {
			delete(m.mu.futures, f.tp)
		}
		m.mu.Unlock()
		dir := f.log.dirPath()
		_ = f.log.close()
		f.log = nil
		f.cancelled = true
		_ = os.RemoveAll(dir)
		return false
	}
	return n > 0
}

// copyChunk brings dst (a future log) one step closer to src: it cuts
// dst where it diverges from src (src was truncated: Kafka's
// ReplicaAlterLogDirsThread truncates by leader epoch like a follower),
// restarts it at src's log start when it fell below it, then appends up
// to maxBytes of src's batches and carries over the log start offset and
// high watermark. Returns the bytes appended.
func (m *Manager) copyChunk(src, dst *Log, maxBytes int32) (int, error) {
	dst.cfg.Store(src.config())
	if err := m.alignFuture(src, dst); err != nil {
		return 0, dstErr(err)
	}
	from := dst.LogEndOffset()
	data, err := src.Read(from, maxBytes, src.LogEndOffset(), true)
	if err != nil {
		return 0, err
	}
	n := len(data)
	if n > 0 {
		m.moveThrottle.take(n)
		_, err = dst.AppendAsFollower(data)
		ReleaseBuffer(data)
		if errors.Is(err, ErrNotContiguous) {
			return 0, err // src changed between the alignment and the read
		}
		if err != nil {
			return 0, dstErr(err)
		}
	}
	dleo := dst.LogEndOffset()
	if start := min(src.LogStartOffset(), dleo); start > dst.LogStartOffset() {
		if err := dst.MaybeIncrementLogStartOffset(start); err != nil {
			return n, dstErr(err)
		}
	}
	dst.SetHighWatermark(min(src.HighWatermark(), dleo))
	return n, nil
}

// alignFuture truncates dst to its common prefix with src.
func (m *Manager) alignFuture(src, dst *Log) error {
	for range maxFutureTruncations {
		sleo, slso := src.LogEndOffset(), src.LogStartOffset()
		dleo, dlso := dst.LogEndOffset(), dst.LogStartOffset()
		if dleo < slso || dlso > sleo {
			return dst.TruncateFullyAndStartAt(slso)
		}
		cut := min(dleo, sleo)
		// A log without epochs (written before any leader epoch was
		// assigned) has no divergence point to look up: lengths only.
		if e := dst.LatestEpoch(); e >= 0 && src.LatestEpoch() >= 0 {
			found, end := src.EndOffsetForEpoch(e)
			if found < 0 {
				return dst.TruncateFullyAndStartAt(slso)
			}
			cut = min(cut, end)
		}
		if cut >= dleo {
			return nil
		}
		if cut < dlso {
			return dst.TruncateFullyAndStartAt(slso)
		}
		if err := dst.TruncateTo(cut); err != nil {
			return err
		}
	}
	return nil
}

// swapFuture puts f's caught-up future log in place of the current one
// (Kafka's Partition.maybeReplaceCurrentWithFutureReplica and
// LogManager.replaceCurrentWithFutureLog). Caller holds f.mu.
func (m *Manager) swapFuture(f *futureLog) error {
	src := f.source
	// The cleaner writes files in the current dir: let it finish.
	src.cleaning.Lock()
	defer src.cleaning.Unlock()
	src.appendMu.Lock()
	defer src.appendMu.Unlock()
	if err := src.stateErr(); err != nil {
		return err
	}
	// Appends are blocked: copy what arrived since the last step.
	for {
		n, err := m.copyChunk(src, f.log, futureChunkBytes)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	leo := src.LogEndOffset()
	if got := f.log.LogEndOffset(); got != leo {
		return fmt.Errorf("storage: move %s: future log ends at %d, current at %d", f.tp, got, leo)
	}
	fdir := f.log.dirPath()
	// close fsyncs the future log whole: data, indexes, producer
	// snapshot. Nothing is renamed before this.
	if err := f.log.close(); err != nil {
		return dstErr(err)
	}
	f.log = nil
	f.cancelled = true // a failure below leaves nothing to resume in memory
	cfg := *src.config()
	src.mu.Lock()
	hw, lso := src.mu.hw, src.mu.logStartOffset
	src.mu.Unlock()
	srcDir := src.dirPath()
	name := filepath.Base(srcDir)
	newDir := filepath.Join(f.dest, name)
	n, err := openLog(m, fdir, f.tp, true, leo, hw, lso, cfg)
	if err != nil {
		_ = os.RemoveAll(fdir)
		return dstErr(err)
	}
	for _, s := range n.mu.segments {
		s.dir = newDir // n is private: its segments are not shared yet
	}
	delDir := filepath.Join(filepath.Dir(srcDir), deleteDirName(f.tp, f.id))

	src.waitFlusherIdleLocked()
	defer src.flusher.mu.Unlock()
	src.mu.Lock()
	old := src.mu.segments
	// A reader holding an old segment must not reopen it by name once
	// the dir is renamed: retire opens those in use. No new reader can
	// take one while mu is held.
	var errs []error
	for _, s := range old {
		if err := s.retireListed(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		src.mu.Unlock()
		for _, s := range n.mu.segments {
			_ = s.close()
		}
		_ = os.RemoveAll(fdir)
		return src.ioFailure("move: open old segments", err)
	}
	if err := os.Rename(srcDir, delDir); err != nil {
		src.mu.Unlock()
		for _, s := range n.mu.segments {
			_ = s.close()
		}
		_ = os.RemoveAll(fdir)
		return src.ioFailure("move: rename current dir", err)
	}
	if err := os.Rename(fdir, newDir); err != nil {
		rerr := os.Rename(delDir, srcDir)
		src.mu.Unlock()
		for _, s := range n.mu.segments {
			_ = s.close()
		}
		if rerr != nil {
			return src.ioFailure("move: restore current dir", errors.Join(err, rerr))
		}
		_ = os.RemoveAll(fdir)
		return dstErr(err)
	}
	src.mu.segments = n.mu.segments
	src.loc.Store(&logLoc{dir: newDir, ld: n.logDir()})
	src.mu.recoveryPoint = leo
	src.mu.unflushed, src.mu.rollPending = 0, false
	src.mu.truncations++ // a read that failed on an old segment retries
	epochs := append([]epochEntry(nil), src.mu.epochs...)
	src.notifyLocked()
	src.mu.Unlock()
	src.flusher.durable = leo
	src.snapshots = append(src.snapshots[:0], n.snapshots...)
	for _, s := range old {
		if s.files != nil {
			s.files.remove(s) // fileCache.mu: never under Log.mu
		}
		if err := s.release(); err != nil {
			m.logger.Warn("close moved segment", "partition", f.tp, "segment", s.base, "err", err)
		}
	}
	if err := src.writeEpochsLocked(epochs); err != nil {
		return err
	}
	for _, d := range []string{filepath.Dir(srcDir), f.dest} {
		if err := syncDir(d); err != nil {
			return src.ioFailure("move: fsync log dir", err)
		}
	}
	if err := os.RemoveAll(delDir); err != nil {
		m.logger.Warn("remove moved log's old dir", "dir", delDir, "err", err)
	}
	m.logger.Info("partition log moved", "partition", f.tp, "dir", newDir, "log_end_offset", leo)
	f.from = filepath.Dir(srcDir)
	return nil
}

// checkpointDirs rewrites the checkpoint files of two log dirs after a
// move (the partition's entries change dirs). Called by the copier after
// the swap released the moved log's locks (ckptMu comes before them).
func (m *Manager) checkpointDirs(dirs ...string) {
	m.ckptMu.Lock()
	defer m.ckptMu.Unlock()
	m.mu.Lock()
	closed := m.mu.closed
	m.mu.Unlock()
	if closed {
		return
	}
	logs := m.Logs()
	for _, d := range dirs {
		if err := m.writeCheckpointsLocked(logs, filepath.Clean(d), ckptAll); err != nil {
			m.logger.Warn("write checkpoints after a log dir move", "dir", d, "err", err)
		}
	}
}

// moveDirs are the move dirs found in a log dir at open.
type moveDirs struct {
	futures []moveDir
	deletes []moveDir
}

type moveDir struct {
	tp   TopicPartition
	id   string
	path string // full path
	// hw and logStart are the checkpointed values of a -delete dir's
	// partition (its log dir's checkpoint files still hold them).
	hw, logStart int64
}

// recoverMoves handles the future and delete dirs found at open (see the
// file comment). Called by OpenManager after every log dir was loaded.
func (m *Manager) recoverMoves(found moveDirs) {
	deleted := map[string]moveDir{}
	for _, d := range found.deletes {
		deleted[d.tp.String()+"."+d.id] = d
	}
	for _, fd := range found.futures {
		dest := filepath.Dir(fd.path)
		if cur, ok := m.mu.logs[fd.tp]; ok {
			if _, dup := m.mu.futures[fd.tp]; dup || filepath.Dir(cur.dirPath()) == dest {
				m.logger.Warn("removing stray future log", "dir", fd.path)
				_ = os.RemoveAll(fd.path)
				continue
			}
			fl, err := openLog(m, fd.path, fd.tp, false, 0, 0, 0, m.defaultCfg)
			if err != nil {
				m.logger.Warn("future log cannot be opened; move abandoned", "dir", fd.path, "err", err)
				_ = os.RemoveAll(fd.path)
				continue
			}
			m.mu.futures[fd.tp] = &futureLog{tp: fd.tp, id: fd.id, dest: dest, source: cur, log: fl}
			m.logger.Info("resuming log dir move", "partition", fd.tp, "to", dest)
			continue
		}
		if del, ok := deleted[fd.tp.String()+"."+fd.id]; ok && m.mu.failed[fd.tp] == nil {
			// Stopped between the swap's two renames: the future log
			// was complete and durable before the first.
			newDir := filepath.Join(dest, fd.tp.String())
			if err := os.Rename(fd.path, newDir); err == nil {
				if err = syncDir(dest); err == nil {
					var l *Log
					if l, err = openLog(m, newDir, fd.tp, false, 0, del.hw, del.logStart, m.defaultCfg); err == nil {
						m.mu.logs[fd.tp] = l
						m.logger.Info("finished an interrupted log dir move", "partition", fd.tp, "dir", newDir)
						continue
					}
				}
			}
			m.logger.Error("cannot finish an interrupted log dir move; partition offline", "dir", fd.path)
			m.mu.failed[fd.tp] = &failedLog{dir: newDir, err: fmt.Errorf("%w: interrupted log dir move", ErrStorage), hw: del.hw, logStartOffset: del.logStart, cleanerOffset: -1}
			continue
		}
		if _, failed := m.mu.failed[fd.tp]; failed {
			continue // the current log is damaged: keep the future for the operator
		}
		m.logger.Warn("removing orphan future log", "dir", fd.path)
		_ = os.RemoveAll(fd.path)
	}
	// The rest (a moved log's old dir, a deleted partition's dir) go at
	// the storage loop's first round, not here: removing gigabytes would
	// hold up the start for seconds.
	for _, d := range found.deletes {
		m.removeAt([]string{d.path}, time.Time{})
	}
}

// closeFutures closes the future logs at Close (they stay on disk and the
// moves resume at the next open). The copier has stopped.
func (m *Manager) closeFutures() {
	m.mu.Lock()
	fs := make([]*futureLog, 0, len(m.mu.futures))
	for _, f := range m.mu.futures {
		fs = append(fs, f)
	}
	m.mu.Unlock()
	for _, f := range fs {
		f.mu.Lock()
		if f.log != nil {
			if err := f.log.close(); err != nil {
				m.logger.Warn("close future log", "partition", f.tp, "err", err)
			}
			f.log = nil
		}
		f.cancelled = true
		f.mu.Unlock()
	}
}

// retireListed is segment.retire without leaving the file cache (which
// takes fileCache.mu, never taken under Log.mu): the swap calls it under
// Log.mu, before renaming the segment's dir, and removes the segment
// from the cache after releasing Log.mu (the cache never closes a
// retired segment's file meanwhile).
func (s *segment) retireListed() error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.retired = true
	if s.f == nil && s.refs.Load() > 1 {
		var err error
		s.f, err = os.OpenFile(s.path(logSuffix), os.O_RDWR, 0)
		return err
	}
	return nil
}
