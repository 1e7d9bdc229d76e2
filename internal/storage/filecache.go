package storage

import (
	"container/list"
	"sync"
	"sync/atomic"
	"syscall"
)

// Open files of inactive segments.
//
// Kafka keeps every segment's .log, .index and .timeindex open (the
// indexes mmapped), so a partition with many small segments exhausts
// RLIMIT_NOFILE, and a broker that wrote such a log may not be able to
// open it again. Here a segment holds at most one descriptor, its .log,
// and only while it is used: the active segment's .log stays open (appends
// go to it), index files are opened for a write or an fsync and closed
// again (their entries are mirrored in memory), and the .log of a segment
// is opened on demand and closed by a per-Manager LRU once more than
// fileCache.limit of them are open. Active segments are in the LRU too
// (an append holds a reference while it writes), so a broker with many
// idle partitions is bounded as well. The node can thus start
// on, and serve, a data dir holding any number of segments under any
// descriptor limit above a few hundred.
//
// Safety with concurrent readers rests on the segment reference count:
// a reader takes a reference under Log.mu, then calls segment.file; the
// cache closes a file only when the segment is listed (not retired) and
// holds no reference but the list's. A reader
// that took its reference after the cache closed the file reopens it. A
// segment that leaves the list (retention, cleaner swap) is retired: its
// file is opened first if a reader still holds it (the path is renamed
// next) and never closed by the cache; the last release closes it.

// fileCache bounds the open .log descriptors of segments. Its
// lock is taken before segment.fmu.
//
// It is a CLOCK approximation of LRU, so that a read of a segment whose
// file is open takes no global lock: a hit only sets the segment's
// referenced bit; eviction scans from the back of the list and gives a
// referenced entry a second chance (to the front, bit cleared) instead of
// closing it. Only opening a file (a miss) takes mu.
type fileCache struct {
	mu    sync.Mutex
	limit int       // most inactive .log files open at once; constant
	lru   list.List // of *segment, most recently used first. Guarded by mu.
	// opens counts .log opens by the cache's segments (tests, metrics).
	opens int64 // guarded by mu
	// over: the last touch left more than limit files open because some
	// were in use; the release of a segment then trims the cache.
	over atomic.Bool
}

// defaultOpenSegmentFiles derives the cache limit from RLIMIT_NOFILE:
// half of the soft limit (the rest is for sockets, active segments and
// checkpoints), at least 64 and at most 100,000.
func defaultOpenSegmentFiles() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur == 0 {
		return 1024
	}
	return int(min(max(r.Cur/2, 64), 100_000))
}

func newFileCache(limit int) *fileCache {
	if limit <= 0 {
		limit = defaultOpenSegmentFiles()
	}
	return &fileCache{limit: limit}
}

// touch marks s as just used (its file is open) and closes the least
// recently used idle files beyond the limit. A file in use (a reader or
// the flusher holds its segment) is moved to the front instead: it is
// being used. Each entry is looked at once at most, so when every file
// is busy the cache overshoots its limit until they are released.
func (c *fileCache) touch(s *segment, opened bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if opened {
		c.opens++
	}
	if s.lru != nil {
		c.lru.MoveToFront(s.lru)
	} else {
		s.lru = c.lru.PushFront(s)
		s.inCache.Store(true)
	}
	c.trimLocked(s)
}

// maxTrimScan bounds the entries one trim looks at.
const maxTrimScan = 256

// trimLocked closes idle files from the back until at most limit are
// open, looking at each entry once; keep is never closed. Caller holds
// mu.
func (c *fileCache) trimLocked(keep *segment) {
	// Each entry is looked at twice at most: once to clear its referenced
	// bit, once to close it; and at most maxTrimScan entries per call, so
	// that a cache full of busy files costs a bounded scan (the release
	// of each busy file trims again).
	for budget := min(2*c.lru.Len(), maxTrimScan); c.lru.Len() > c.limit && budget > 0; budget-- {
		e := c.lru.Back()
		v := e.Value.(*segment)
		if v == keep || v.referenced.Swap(false) {
			c.lru.MoveToFront(e)
			continue
		}
		if v.closeIfIdle() {
			c.lru.Remove(e)
			v.lru = nil
			v.inCache.Store(false)
		} else {
			c.lru.MoveToFront(e)
		}
	}
	c.over.Store(c.lru.Len() > c.limit)
}

// released is called when a reader released a segment of the cache: if
// the cache is over its limit (files were busy at the last touch), it is
// trimmed now.
func (c *fileCache) released() {
	if c.over.Load() {
		c.mu.Lock()
		c.trimLocked(nil)
		c.mu.Unlock()
	}
}

// remove takes s out of the cache (retired or closed).
func (c *fileCache) remove(s *segment) {
	c.mu.Lock()
	if s.lru != nil {
		c.lru.Remove(s.lru)
		s.lru = nil
		s.inCache.Store(false)
	}
	c.mu.Unlock()
}

// openCount is the number of inactive segments with an open .log in the
// cache.
func (c *fileCache) openCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
