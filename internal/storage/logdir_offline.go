package storage

import (
	"errors"
	"path/filepath"
	"sort"
)

// A failed log dir (Kafka's LogDirFailureChannel / LogManager.handleLogDirFailure).
// Any I/O error that takes a log offline (Log.ioFailure: EIO, a failed
// fsync, a file that cannot be created, ...) takes its whole log dir
// offline, as Kafka does: the disk is suspect. From then on every log in
// the dir answers ErrStorage wrapping ErrLogDirOffline (KAFKA_STORAGE_ERROR)
// for reads and writes; no new log is placed there, no move goes there,
// and its checkpoint files are no longer written. The logs of the other
// dirs are not touched. The state lasts until restart (a dir that is
// still unusable then fails OpenManager, as in Kafka with every dir
// gone; an operator removes it from log.dirs).
//
// A full disk is not a failure (see logdir.go): it never takes a dir
// offline.
//
// The broker learns of it through OfflineDirs and reports it to the
// controller, which moves the leaderships of the partitions in the dir
// (internal/server, internal/controller; docs/storage.md).

// ErrLogDirOffline: the log's dir failed (always wrapped together with
// ErrStorage).
var ErrLogDirOffline = errors.New("storage: log dir offline")

func (d *logDir) isOffline() bool { return LogDirState(d.state.Load()) == LogDirOffline }

// failLogDir takes d offline after cause. Lock-free (an atomic state):
// it is called from Log.ioFailure, whatever locks the caller holds.
func (m *Manager) failLogDir(d *logDir, cause error) {
	for {
		old := d.state.Load()
		if LogDirState(old) == LogDirOffline {
			return
		}
		if d.state.CompareAndSwap(old, int32(LogDirOffline)) {
			break
		}
	}
	d.since.Store(m.now().UnixMilli())
	m.logger.Error("log dir failed: every partition in it is offline until restart; the other log dirs keep serving",
		"dir", d.path, "err", cause)
	select {
	case m.dirFailed <- struct{}{}:
	default:
	}
}

// DirFailed returns a channel that receives a value after a log dir
// failed (coalesced: read OfflineDirs for the set).
func (m *Manager) DirFailed() <-chan struct{} { return m.dirFailed }

// OfflineDirs lists the failed log dirs, sorted.
func (m *Manager) OfflineDirs() []string {
	var out []string
	for _, d := range m.logDirs {
		if d.isOffline() {
			out = append(out, d.path)
		}
	}
	sort.Strings(out)
	return out
}

// dirOnline reports whether the log dir dir (cleaned) can take new logs.
func (m *Manager) dirOnline(dir string) bool {
	d := m.logDirs[filepath.Clean(dir)]
	return d == nil || !d.isOffline()
}
