package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// metadataLogDir is the KRaft metadata log's directory, owned by
// internal/metadata; like Kafka's LogManager we never load it as a
// partition log.
const metadataLogDir = "__cluster_metadata-0"

// Manager owns every partition log in log.dirs: recovery at open,
// checkpoint files, background flush (flush.ms / log.flush.interval.ms),
// retention, the log cleaner and the clean-shutdown marker.
type Manager struct {
	dirs            []string
	logger          *slog.Logger
	now             func() time.Time
	defaultCfg      Config // normalized
	flushEvery      time.Duration
	ckptEvery       time.Duration
	retentionEvery  time.Duration
	cleanerBackoff  time.Duration
	cleanerDisabled bool
	diskFullCheck   time.Duration // how often a full log dir is probed
	diskFullResume  int64         // free bytes that bring a full log dir back online

	// files bounds the open .log files of inactive segments.
	files *fileCache
	// logDirs is the state of each log dir, by cleaned path; the map is
	// immutable after OpenManager.
	logDirs map[string]*logDir

	// delMu guards pending, the *.deleted files awaiting
	// file.delete.delay.ms.
	delMu   sync.Mutex
	pending []pendingDelete

	// cleanMu serializes cleaning (the cleaner goroutine and CleanNow):
	// one log is cleaned at a time. It guards the cleaner fields of every
	// Log (Log.clean). Taken before any Log lock, never under ckptMu.
	cleanMu sync.Mutex

	fsyncs atomic.Int64 // fdatasync rounds over all logs

	// ckptMu serializes checkpoint writers (background loop, Close, tests).
	ckptMu sync.Mutex

	mu struct {
		sync.Mutex
		logs map[TopicPartition]*Log
		// failed holds partitions that could not be opened (corruption,
		// I/O errors) with the checkpoint values read for them, so the
		// checkpoint files keep them and a restart does not mistake the
		// damage for a torn tail.
		failed map[TopicPartition]*failedLog
		// futures are the logs being moved to another log dir
		// (future.go).
		futures map[TopicPartition]*futureLog
		// preferred is the log dir AlterReplicaLogDirs chose for a
		// partition whose log does not exist yet; CreateLog uses it.
		preferred map[TopicPartition]string
		closed    bool
	}

	dirFailed  chan struct{} // cap 1: a log dir failed (logdir_offline.go)
	copierWake chan struct{} // cap 1: wakes the copier (future.go)
	// copierPaused stops the copier between steps (tests that stop a
	// node in the middle of a move).
	copierPaused atomic.Bool
	copierDone   chan struct{} // closed when the copier returned
	// moveThrottle bounds the copier's bytes/s
	// (replica.alter.log.dirs.io.max.bytes.per.second; move_throttle.go).
	moveThrottle *moveThrottle

	stop        chan struct{} // closed by Close to stop the background goroutines
	done        chan struct{} // closed when the background loop returned
	cleanerDone chan struct{} // closed when the cleaner goroutine returned
}

type failedLog struct {
	dir                               string
	err                               error
	recoveryPoint, hw, logStartOffset int64
	cleanerOffset                     int64 // -1: none
}

// dirCheckpoints are the checkpoint files of one log dir, read at open.
type dirCheckpoints struct {
	clean                           bool
	recoveryPoint, hw, logStartOffs map[TopicPartition]int64
	cleaner                         map[TopicPartition]int64
}

// OpenManager recovers every "<topic>-<partition>" directory found in the
// dirs (scanning past the recovery point after an unclean stop, truncating
// a torn tail, rebuilding indexes) and returns the manager. A partition
// that cannot be recovered is kept offline (CreateLog returns its error);
// only an unusable log dir fails OpenManager.
func OpenManager(opts ManagerOptions) (*Manager, error) {
	if len(opts.Dirs) == 0 {
		return nil, errors.New("storage: no log dirs")
	}
	defaults := opts.DefaultConfig
	if defaults == (Config{}) {
		// Nothing given: Kafka's defaults throughout (the compaction
		// fields would otherwise keep their zeros).
		defaults = DefaultConfig()
	}
	m := &Manager{
		dirs:            opts.Dirs,
		logger:          opts.Logger,
		now:             opts.Now,
		defaultCfg:      defaults.withDefaults(DefaultConfig()),
		flushEvery:      opts.FlushCheckInterval,
		ckptEvery:       opts.CheckpointInterval,
		retentionEvery:  opts.RetentionCheckInterval,
		cleanerBackoff:  opts.CleanerBackoff,
		cleanerDisabled: opts.CleanerDisabled,
		diskFullCheck:   opts.DiskFullCheckInterval,
		diskFullResume:  opts.DiskFullResumeBytes,
		files:           newFileCache(opts.MaxOpenSegmentFiles),
		logDirs:         map[string]*logDir{},
		stop:            make(chan struct{}),
		done:            make(chan struct{}),
		cleanerDone:     make(chan struct{}),
		copierWake:      make(chan struct{}, 1),
		dirFailed:       make(chan struct{}, 1),
		copierDone:      make(chan struct{}),
		moveThrottle:    newMoveThrottle(),
	}
	if m.logger == nil {
		m.logger = slog.Default()
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.flushEvery <= 0 {
		m.flushEvery = time.Second
	}
	if m.ckptEvery <= 0 {
		m.ckptEvery = 60 * time.Second
	}
	if m.retentionEvery <= 0 {
		m.retentionEvery = 5 * time.Minute
	}
	if m.cleanerBackoff <= 0 {
		m.cleanerBackoff = 15 * time.Second
	}
	if m.diskFullCheck <= 0 {
		m.diskFullCheck = defaultDiskFullCheck
	}
	if m.diskFullResume <= 0 {
		m.diskFullResume = defaultDiskFullResume
	}
	for _, d := range m.dirs {
		c := filepath.Clean(d)
		m.logDirs[c] = &logDir{path: c}
	}
	m.mu.logs = map[TopicPartition]*Log{}
	m.mu.failed = map[TopicPartition]*failedLog{}
	m.mu.futures = map[TopicPartition]*futureLog{}
	m.mu.preferred = map[TopicPartition]string{}
	var moves moveDirs
	for _, dir := range m.dirs {
		if err := m.openDir(dir, &moves); err != nil {
			m.closeLogs()
			return nil, err
		}
	}
	m.recoverMoves(moves)
	go m.loop()
	go m.copierLoop()
	if m.cleanerDisabled {
		close(m.cleanerDone)
	} else {
		go m.cleanerLoop()
	}
	return m, nil
}

func (m *Manager) openDir(dir string, moves *moveDirs) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("storage: log dir: %w", err)
	}
	ck := dirCheckpoints{}
	_, err := os.Stat(filepath.Join(dir, cleanShutdownFile))
	ck.clean = err == nil
	read := func(name string) map[TopicPartition]int64 {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				m.logger.Warn("read checkpoint", "file", name, "dir", dir, "err", err)
			}
			return nil
		}
		cp, err := ParseOffsetCheckpoint(b)
		if err != nil {
			m.logger.Warn("ignoring malformed checkpoint", "file", name, "dir", dir, "err", err)
			return nil
		}
		return cp
	}
	ck.recoveryPoint = read(recoveryPointFile)
	ck.hw = read(replicationOffsetFile)
	ck.logStartOffs = read(logStartOffsetFile)
	ck.cleaner = read(cleanerOffsetFile)
	if ck.recoveryPoint == nil {
		// Without recovery points every segment is scanned.
		ck.clean = false
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("storage: log dir: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() || e.Name() == metadataLogDir {
			continue
		}
		if tp, id, ok := parseMoveDir(e.Name(), futureDirSuffix); ok {
			moves.futures = append(moves.futures, moveDir{tp: tp, id: id, path: filepath.Join(dir, e.Name())})
			continue
		}
		if tp, id, ok := parseMoveDir(e.Name(), deleteDirSuffix); ok {
			moves.deletes = append(moves.deletes, moveDir{tp: tp, id: id, path: filepath.Join(dir, e.Name()), hw: ck.hw[tp], logStart: ck.logStartOffs[tp]})
			continue
		}
		tp, ok := parseTopicPartitionDir(e.Name())
		if !ok {
			continue
		}
		if _, dup := m.mu.logs[tp]; dup {
			m.logger.Error("partition found in two log dirs; keeping the first", "partition", tp, "dir", dir)
			continue
		}
		pdir := filepath.Join(dir, e.Name())
		rp, hasRP := ck.recoveryPoint[tp]
		if !hasRP {
			rp = 0
		}
		start := time.Now()
		l, err := openLog(m, pdir, tp, ck.clean && hasRP, rp, ck.hw[tp], ck.logStartOffs[tp], m.defaultCfg)
		if err != nil {
			m.logger.Error("cannot open partition log; partition offline", "partition", tp, "dir", pdir, "err", err)
			co, ok := ck.cleaner[tp]
			if !ok {
				co = -1
			}
			m.mu.failed[tp] = &failedLog{dir: pdir, err: err, recoveryPoint: rp, hw: ck.hw[tp], logStartOffset: ck.logStartOffs[tp], cleanerOffset: co}
			continue
		}
		if co, ok := ck.cleaner[tp]; ok && co >= 0 {
			l.mu.cleanerOffset = co
		}
		m.logger.Debug("loaded log", "partition", tp, "clean", ck.clean, "log_end_offset", l.LogEndOffset(), "took", time.Since(start))
		m.mu.logs[tp] = l
	}
	if err := os.Remove(filepath.Join(dir, cleanShutdownFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("storage: remove clean-shutdown marker: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("storage: log dir: %w", err)
	}
	return nil
}

// Log returns the open log of a partition.
func (m *Manager) Log(topic string, partition int32) (*Log, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.mu.logs[TopicPartition{topic, partition}]
	return l, ok
}

// Logs returns every open log, sorted by topic and partition.
func (m *Manager) Logs() []*Log {
	m.mu.Lock()
	ls := make([]*Log, 0, len(m.mu.logs))
	for _, l := range m.mu.logs {
		ls = append(ls, l)
	}
	m.mu.Unlock()
	sort.Slice(ls, func(i, j int) bool {
		if ls[i].topic != ls[j].topic {
			return ls[i].topic < ls[j].topic
		}
		return ls[i].partition < ls[j].partition
	})
	return ls
}

// FsyncCount is the number of fdatasync rounds over all logs.
func (m *Manager) FsyncCount() int64 { return m.fsyncs.Load() }

// CreateLog creates the partition's log, or returns the existing one
// (then it only updates its config). topicID is written to
// partition.metadata. A log found on disk with a different non-zero topic
// id belongs to a deleted topic of the same name: it is removed and a new
// log created (Kafka treats it as stray). A partition that failed to open
// returns its error.
func (m *Manager) CreateLog(topic string, partition int32, topicID [16]byte, cfg Config) (*Log, error) {
	tp := TopicPartition{topic, partition}
	if topic == "" || partition < 0 {
		return nil, fmt.Errorf("storage: bad partition %q %d", topic, partition)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return nil, ErrClosed
	}
	if f, ok := m.mu.failed[tp]; ok {
		return nil, fmt.Errorf("storage: partition %s offline: %w", tp, f.err)
	}
	if l, ok := m.mu.logs[tp]; ok {
		old := l.TopicID()
		if old == topicID || topicID == ([16]byte{}) {
			l.SetConfig(cfg)
			return l, nil
		}
		if old != ([16]byte{}) {
			m.logger.Warn("log on disk belongs to another topic id; replacing it", "partition", tp)
			// Not waiting for a cleaning here: it may need Manager.mu,
			// which we hold. It stops at its next batch, finds the log
			// closed and writes nothing more.
			l.abortCleaning(false)
			delete(m.mu.logs, tp)
			if err := errors.Join(l.close(), os.RemoveAll(l.dirPath())); err != nil {
				return nil, fmt.Errorf("storage: replace stray log %s: %w", tp, err)
			}
		} else {
			if err := writeFileAtomic(filepath.Join(l.dirPath(), partitionMetadataFile), encodePartitionMetadata(topicID), true); err != nil {
				return nil, fmt.Errorf("storage: %s: %w", tp, err)
			}
			l.mu.Lock()
			l.mu.topicID = topicID
			l.mu.Unlock()
			l.SetConfig(cfg)
			return l, nil
		}
	}
	dir := m.pickDirLocked()
	if d, ok := m.mu.preferred[tp]; ok {
		if m.dirOnline(d) {
			dir = d
		}
		delete(m.mu.preferred, tp)
	}
	if dir == "" {
		return nil, fmt.Errorf("storage: create %s: %w: %w", tp, ErrStorage, ErrLogDirOffline)
	}
	pdir := filepath.Join(dir, tp.String())
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", tp, err)
	}
	if err := writeFileAtomic(filepath.Join(pdir, partitionMetadataFile), encodePartitionMetadata(topicID), true); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", tp, err)
	}
	l, err := openLog(m, pdir, tp, false, 0, 0, 0, cfg.withDefaults(m.defaultCfg))
	if err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", tp, err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", tp, err)
	}
	m.mu.logs[tp] = l
	return l, nil
}

// pickDirLocked chooses the log dir holding the fewest partitions (Kafka's
// LogManager.nextLogDirs). With one log dir there is no choice: counting
// every open log for each new one made creating P partitions cost O(P²)
// (a fifth of the CPU of creating 10,000).
// Failed (offline) dirs are skipped; "" when every dir failed.
func (m *Manager) pickDirLocked() string {
	if len(m.dirs) == 1 {
		if !m.dirOnline(m.dirs[0]) {
			return ""
		}
		return m.dirs[0]
	}
	count := map[string]int{}
	for _, l := range m.mu.logs {
		count[filepath.Dir(l.dirPath())]++
	}
	best := ""
	for _, d := range m.dirs {
		if !m.dirOnline(d) {
			continue
		}
		if best == "" || count[filepath.Clean(d)] < count[filepath.Clean(best)] {
			best = d
		}
	}
	return best
}

// DeleteLog closes the log and takes its directory out of the log dir:
// renamed at once, its files removed file.delete.delay.ms later by the
// background loop (removeLogDir).
func (m *Manager) DeleteLog(topic string, partition int32) error {
	tp := TopicPartition{topic, partition}
	m.mu.Lock()
	fut := m.takeFutureLocked(tp)
	delete(m.mu.preferred, tp)
	m.mu.Unlock()
	if fut != nil {
		m.cancelFuture(fut)
	}
	m.mu.Lock()
	l, ok := m.mu.logs[tp]
	f, failed := m.mu.failed[tp]
	delete(m.mu.logs, tp)
	delete(m.mu.failed, tp)
	m.mu.Unlock()
	switch {
	case ok:
		l.abortCleaning(true)
		err := l.close()
		if err != nil {
			m.logger.Warn("close deleted log", "partition", tp, "err", err)
		}
		return m.removeLogDir(tp, l.dirPath(), l.config().FileDeleteDelayMs)
	case failed:
		return os.RemoveAll(f.dir)
	}
	return fmt.Errorf("%w: %s", ErrLogNotFound, tp)
}

// Checkpoint writes recovery-point, replication-offset (high watermark),
// log-start-offset checkpoints and producer-state snapshots. The files are
// written atomically (tmp file, fsync, rename, fsync dir).
func (m *Manager) Checkpoint() error {
	m.ckptMu.Lock()
	defer m.ckptMu.Unlock()
	logs := m.Logs()
	var errs []error
	for _, l := range logs {
		l.appendMu.Lock()
		l.mu.Lock()
		leo, ok := l.mu.leo, l.mu.offline == nil && !l.mu.closed && !l.logDir().isOffline()
		l.mu.Unlock()
		if ok && l.producers.dirty {
			if err := l.writeSnapshotLocked(leo, false); err != nil {
				errs = append(errs, fmt.Errorf("%s: snapshot: %w", l.name(), err))
			}
		}
		l.appendMu.Unlock()
	}
	return errors.Join(append(errs, m.writeCheckpoints(logs))...)
}

// Checkpoint files, as a set for writeCheckpointFiles.
const (
	ckptRecoveryPoint = 1 << iota
	ckptHighWatermark
	ckptLogStart
	ckptCleaner
	ckptAll = ckptRecoveryPoint | ckptHighWatermark | ckptLogStart | ckptCleaner
)

func (m *Manager) writeCheckpoints(logs []*Log) error {
	return m.writeCheckpointsLocked(logs, "", ckptAll)
}

// writeCheckpointFiles writes the checkpoint files in which of one log
// dir (DeleteRecords, the cleaner).
func (m *Manager) writeCheckpointFiles(dir string, which int) error {
	m.ckptMu.Lock()
	defer m.ckptMu.Unlock()
	return m.writeCheckpointsLocked(m.Logs(), filepath.Clean(dir), which)
}

// writeCheckpointsLocked writes the checkpoint files in which for the
// log dir onlyDir ("" for all). Caller holds ckptMu.
func (m *Manager) writeCheckpointsLocked(logs []*Log, onlyDir string, which int) error {
	type cps struct{ rp, hw, lso, cleaner map[TopicPartition]int64 }
	byDir := map[string]*cps{}
	get := func(dir string) *cps {
		c := byDir[dir]
		if c == nil {
			c = &cps{map[TopicPartition]int64{}, map[TopicPartition]int64{}, map[TopicPartition]int64{}, map[TopicPartition]int64{}}
			byDir[dir] = c
		}
		return c
	}
	for _, d := range m.dirs {
		get(filepath.Clean(d))
	}
	for _, l := range logs {
		c := get(filepath.Dir(l.dirPath()))
		tp := TopicPartition{l.topic, l.partition}
		l.mu.Lock()
		c.rp[tp], c.hw[tp], c.lso[tp] = l.mu.recoveryPoint, l.mu.hw, l.mu.logStartOffset
		if l.mu.cleanerOffset >= 0 {
			c.cleaner[tp] = l.mu.cleanerOffset
		}
		l.mu.Unlock()
	}
	m.mu.Lock()
	for tp, f := range m.mu.failed {
		c := get(filepath.Dir(f.dir))
		c.rp[tp], c.hw[tp], c.lso[tp] = f.recoveryPoint, f.hw, f.logStartOffset
		if f.cleanerOffset >= 0 {
			c.cleaner[tp] = f.cleanerOffset
		}
	}
	m.mu.Unlock()
	var errs []error
	for dir, c := range byDir {
		if (onlyDir != "" && dir != onlyDir) || !m.dirOnline(dir) {
			continue
		}
		for _, f := range []struct {
			bit  int
			name string
			cp   map[TopicPartition]int64
		}{
			{ckptRecoveryPoint, recoveryPointFile, c.rp},
			{ckptHighWatermark, replicationOffsetFile, c.hw},
			{ckptLogStart, logStartOffsetFile, c.lso},
			{ckptCleaner, cleanerOffsetFile, c.cleaner},
		} {
			if which&f.bit == 0 {
				continue
			}
			if err := writeFileAtomic(filepath.Join(dir, f.name), EncodeOffsetCheckpoint(f.cp), true); err != nil {
				errs = append(errs, fmt.Errorf("storage: write %s: %w", f.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Close flushes every log, writes checkpoints and the clean-shutdown
// marker, and closes all files. The marker is written only if every log
// closed cleanly, and not in a dir holding a partition that failed to
// open.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.mu.closed {
		m.mu.Unlock()
		return nil
	}
	m.mu.closed = true
	m.mu.Unlock()
	close(m.stop)
	<-m.done
	<-m.cleanerDone
	<-m.copierDone
	m.closeFutures()
	logs := m.Logs()
	var errs []error
	clean := true
	for _, l := range logs {
		if err := l.close(); err != nil {
			errs = append(errs, err)
			clean = false
		}
		if l.Offline() {
			clean = false
		}
	}
	m.ckptMu.Lock()
	if err := m.writeCheckpoints(logs); err != nil {
		errs = append(errs, err)
		clean = false
	}
	m.ckptMu.Unlock()
	// Every reader is gone: the segments awaiting file.delete.delay.ms
	// can go now (an open would remove them anyway).
	m.purgeDeleted(time.Time{}, true)
	// A dir holding a partition that failed to open gets no marker: the
	// next start must scan that partition again rather than trust it.
	m.mu.Lock()
	failedDirs := map[string]bool{}
	for _, f := range m.mu.failed {
		failedDirs[filepath.Dir(f.dir)] = true
	}
	m.mu.Unlock()
	if clean {
		for _, d := range m.dirs {
			if failedDirs[filepath.Clean(d)] || !m.dirOnline(d) {
				continue
			}
			if err := writeFileAtomic(filepath.Join(d, cleanShutdownFile), nil, true); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// closeLogs closes the logs opened so far (OpenManager failure path).
func (m *Manager) closeLogs() {
	for _, l := range m.Logs() {
		_ = l.close()
	}
}

// loop is the background flusher, checkpointer, retention and delayed
// file deleter; Close stops it.
func (m *Manager) loop() {
	defer close(m.done)
	flushT := time.NewTicker(m.flushEvery)
	defer flushT.Stop()
	ckptT := time.NewTicker(m.ckptEvery)
	defer ckptT.Stop()
	retT := time.NewTicker(m.retentionEvery)
	defer retT.Stop()
	fullT := time.NewTicker(m.diskFullCheck)
	defer fullT.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-fullT.C:
			m.checkFullDirs()
		case <-retT.C:
			if n := m.RunRetention(); n > 0 {
				m.logger.Info("retention deleted segments", "segments", n)
			}
		case <-flushT.C:
			now := m.now()
			for _, l := range m.Logs() {
				if err := l.flushIfDue(now); err != nil && !errors.Is(err, ErrClosed) {
					m.logger.Debug("background flush", "partition", l.name(), "err", err)
				}
			}
			m.purgeDeleted(now, false)
		case <-ckptT.C:
			if err := m.Checkpoint(); err != nil {
				m.logger.Error("write checkpoints", "err", err)
			}
		}
	}
}
