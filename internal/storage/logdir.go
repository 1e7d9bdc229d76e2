package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"syscall"
	"time"
)

// Log dir states. Beyond Kafka, which takes a log dir offline on any
// I/O error including a full disk (and keeps it offline until restart),
// a full disk here is back-pressure:
//
//   - An append that hits ENOSPC (or EDQUOT) cuts its partial write, so
//     the log ends at its last complete batch with consistent indexes, and
//     puts its log dir in the full state. The log stays online: fetches,
//     ListOffsets and everything else that reads keep working.
//   - While the dir is full every append to a log in it fails at once with
//     ErrStorage wrapping ErrLogDirFull (KAFKA_STORAGE_ERROR for
//     producers, who retry), before any byte is written.
//   - The Manager's background loop probes a full dir every
//     DiskFullCheckInterval with statfs(2); once DiskFullResumeBytes are
//     available (to this process: reserved blocks count for root) the dir
//     is online again and appends resume, without a restart.
//
// Any other I/O error (EIO, a failed fsync, ...) keeps Kafka's semantics
// for the partition: it goes offline until restart (Log.ioFailure).

// LogDirState is the state of one log dir.
type LogDirState int32

const (
	// LogDirOnline: appends and reads are served.
	LogDirOnline LogDirState = iota
	// LogDirFull: the disk is full; reads are served, appends fail fast
	// with ErrLogDirFull until space is free again.
	LogDirFull
	// LogDirOffline: an I/O error in the dir (Kafka's log dir failure):
	// every log in it is offline until restart (logdir_offline.go).
	LogDirOffline
)

func (s LogDirState) String() string {
	switch s {
	case LogDirOnline:
		return "online"
	case LogDirFull:
		return "full"
	case LogDirOffline:
		return "offline"
	}
	return fmt.Sprintf("LogDirState(%d)", int32(s))
}

// ErrLogDirFull: the log dir is out of space; the append was refused
// (always wrapped together with ErrStorage).
var ErrLogDirFull = errors.New("storage: log dir full")

// Defaults of ManagerOptions.DiskFullCheckInterval and
// DiskFullResumeBytes.
const (
	defaultDiskFullCheck  = time.Second
	defaultDiskFullResume = 1 << 20
)

// logDir is the shared state of the logs of one log dir.
type logDir struct {
	path  string       // cleaned path; immutable
	state atomic.Int32 // LogDirState
	// since is when the state last changed (unix ms).
	since atomic.Int64
	// fullEvents counts the times the dir became full.
	fullEvents atomic.Int64
}

func (d *logDir) isFull() bool { return LogDirState(d.state.Load()) == LogDirFull }

// setFull moves the dir to the full state (logged once per episode).
func (d *logDir) setFull(m *Manager, cause error) {
	if d.state.CompareAndSwap(int32(LogDirOnline), int32(LogDirFull)) {
		d.since.Store(m.now().UnixMilli())
		d.fullEvents.Add(1)
		m.logger.Error("log dir full: appends refused until space is free; reads continue", "dir", d.path, "err", cause)
	}
}

// isNoSpace reports whether err means the file system is out of space
// (or out of the user's quota).
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// fullErr is the error of an append refused because the dir is full.
func (l *Log) fullErr() error {
	return fmt.Errorf("%s: %w: %w", l.name(), ErrStorage, ErrLogDirFull)
}

// diskFull puts the log's dir in the full state after err (ENOSPC) and
// returns the append's error. The log stays online.
func (l *Log) diskFull(op string, err error) error {
	l.logDir().setFull(l.m, err)
	return fmt.Errorf("%s: %s: %w: %w: %v", l.name(), op, ErrStorage, ErrLogDirFull, err)
}

// writeFailure handles a failed write that left the log consistent (the
// write is either retried later or went through a tmp file): out of
// space, the dir becomes full and the log stays online; any other error
// takes the log offline.
func (l *Log) writeFailure(op string, err error) error {
	if isNoSpace(err) {
		return l.diskFull(op, err)
	}
	return l.ioFailure(op, err)
}

// logDirOf returns the state of the log dir holding the partition
// directory pdir.
func (m *Manager) logDirOf(pdir string) *logDir {
	parent := filepath.Clean(filepath.Dir(pdir))
	if d := m.logDirs[parent]; d != nil {
		return d
	}
	// Not one of the configured dirs (cannot happen): a private state.
	return &logDir{path: parent}
}

// freeBytes is the space this process can write in dir: the blocks
// available to unprivileged users, or all free blocks for root, which may
// write into the file system's reserved blocks (ext4's 5%) and so only
// gets ENOSPC once those are gone too.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	blocks := st.Bavail
	if os.Geteuid() == 0 {
		blocks = st.Bfree
	}
	return int64(blocks) * int64(st.Bsize), nil
}

// checkFullDirs probes every full log dir and brings it back online when
// at least DiskFullResumeBytes are available. Called by the background
// loop every DiskFullCheckInterval.
func (m *Manager) checkFullDirs() {
	for _, d := range m.logDirs {
		if !d.isFull() {
			continue
		}
		free, err := freeBytes(d.path)
		if err != nil {
			m.logger.Warn("probe full log dir", "dir", d.path, "err", err)
			continue
		}
		if free >= m.diskFullResume && d.state.CompareAndSwap(int32(LogDirFull), int32(LogDirOnline)) {
			d.since.Store(m.now().UnixMilli())
			m.logger.Info("log dir has free space again; appends resume", "dir", d.path, "free_bytes", free)
		}
	}
}

// LogDirInfo describes one log dir (metrics, /healthz).
type LogDirInfo struct {
	Dir   string
	State LogDirState
	// Since is when the dir entered State (zero: since the start).
	Since time.Time
	// FullEvents counts the times the dir filled up since the start.
	FullEvents int64
	// OfflinePartitions counts the partitions in the dir that are offline:
	// taken offline by an I/O error, or failed to open.
	OfflinePartitions int
}

// LogDirs describes every log dir, sorted by path.
func (m *Manager) LogDirs() []LogDirInfo {
	offline := map[string]int{}
	for _, l := range m.Logs() {
		if l.Offline() {
			offline[filepath.Dir(l.dirPath())]++
		}
	}
	m.mu.Lock()
	for _, f := range m.mu.failed {
		offline[filepath.Dir(f.dir)]++
	}
	m.mu.Unlock()
	out := make([]LogDirInfo, 0, len(m.logDirs))
	for _, d := range m.logDirs {
		info := LogDirInfo{Dir: d.path, State: LogDirState(d.state.Load()), FullEvents: d.fullEvents.Load(), OfflinePartitions: offline[d.path]}
		if ms := d.since.Load(); ms > 0 {
			info.Since = time.UnixMilli(ms)
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dir < out[j].Dir })
	return out
}

// OpenSegmentFiles is the number of segments whose .log is open in the
// file cache (bounded by ManagerOptions.MaxOpenSegmentFiles).
func (m *Manager) OpenSegmentFiles() int { return m.files.openCount() }
