package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"samsa/internal/record"
)

// openFilesUnder counts this process's descriptors open on files under
// dir (from /proc/self/fd).
func openFilesUnder(t testing.TB, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("list open files: %v", err)
	}
	n := 0
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, dir+"/") {
			n++
		}
	}
	return n
}

// writeTinySegments appends n one-record batches to a log whose
// segment.bytes makes every batch its own segment, and returns the values.
func writeTinySegments(t testing.TB, l *Log, n int) [][]byte {
	t.Helper()
	vals := make([][]byte, n)
	for i := range vals {
		vals[i] = fmt.Appendf(nil, "v%05d", i)
		b, err := record.Build(record.BuildOptions{}, []record.Record{{Timestamp: int64(i), Value: vals[i]}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.AppendAsLeader(b, 0); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	return vals
}

// checkValues reads the whole log and compares the record values.
func checkValues(t testing.TB, l *Log, want [][]byte) {
	t.Helper()
	var got [][]byte
	from := l.LogStartOffset()
	for from < l.LogEndOffset() {
		b, err := l.Read(from, 1<<20, l.LogEndOffset(), true)
		if err != nil {
			t.Fatalf("read %d: %v", from, err)
		}
		if len(b) == 0 {
			t.Fatalf("read %d: nothing before the log end %d", from, l.LogEndOffset())
		}
		err = record.Split(b, func(batch []byte, h record.Header) error {
			bt, err := record.DecodeBatch(batch)
			if err != nil {
				return err
			}
			for _, r := range bt.Records {
				got = append(got, bytes.Clone(r.Value)) // b goes back to its pool
			}
			from = h.NextOffset()
			return nil
		})
		ReleaseBuffer(b)
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d = %d bytes %x..., want %d bytes %x...", i, len(got[i]), got[i][:min(8, len(got[i]))], len(want[i]), want[i][:min(8, len(want[i]))])
		}
	}
}

// TestLogManySegmentsFileDescriptors writes thousands of one-batch
// segments: the log keeps at most MaxOpenSegmentFiles descriptors of
// inactive segments (before, three per segment stayed open), reads every
// record back through the LRU, and loads again after a clean and after an
// unclean stop within the same bound.
func TestLogManySegmentsFileDescriptors(t *testing.T) {
	const segments, limit = 3000, 32
	dir := t.TempDir()
	opts := func(o *ManagerOptions) { o.MaxOpenSegmentFiles = limit }
	m := openTestManager(t, dir, opts)
	l, err := m.CreateLog("tiny", 0, [16]byte{}, Config{SegmentBytes: 14})
	if err != nil {
		t.Fatal(err)
	}
	vals := writeTinySegments(t, l, segments)
	l.mu.Lock()
	nsegs := len(l.mu.segments)
	l.mu.Unlock()
	if nsegs != segments {
		t.Fatalf("%d segments, want %d", nsegs, segments)
	}
	// At rest (no flush round holding segments): the active segment
	// (.log, plus its .index/.timeindex while written) and the cached
	// inactive ones; the flusher opens index files only for the fsync.
	const slack = 4
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := openFilesUnder(t, dir); n > limit+slack {
		t.Fatalf("%d files open for %d segments; want at most %d", n, segments, limit+slack)
	}
	checkValues(t, l, vals)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := m.OpenSegmentFiles(); n > limit {
		t.Fatalf("file cache holds %d files, limit %d", n, limit)
	}
	if n := openFilesUnder(t, dir); n > limit+slack {
		t.Fatalf("%d files open after reading %d segments", n, segments)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// Clean restart: indexes trusted, every file opened once, bounded.
	m = openTestManager(t, dir, opts)
	if n := openFilesUnder(t, dir); n > limit+slack {
		t.Fatalf("%d files open after a clean open", n)
	}
	l, _ = m.Log("tiny", 0)
	checkValues(t, l, vals)
	vals = append(vals, writeTinySegments(t, l, 10)...)
	m.abandon()

	// Unclean restart: recovery from the recovery point and producer
	// state replay, within the bound too.
	m = openTestManager(t, dir, opts)
	defer m.Close()
	l, _ = m.Log("tiny", 0)
	if n := openFilesUnder(t, dir); n > limit+slack {
		t.Fatalf("%d files open after recovery", n)
	}
	// An unclean stop may lose unflushed tails of the last segments; all
	// of the rest is there.
	if leo := l.LogEndOffset(); leo < segments {
		t.Fatalf("log end %d after recovery, want >= %d", leo, segments)
	}
	checkValues(t, l, vals[:l.LogEndOffset()])
}

// TestLogReadersSurviveFileCacheEviction reads a log of many segments
// from many goroutines while retention deletes its oldest segments and
// the cache (limit 4) keeps closing files: no read may fail except with
// ErrOffsetOutOfRange below the moving log start offset.
func TestLogReadersSurviveFileCacheEviction(t *testing.T) {
	m := openTestManager(t, t.TempDir(), func(o *ManagerOptions) { o.MaxOpenSegmentFiles = 4 })
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: 14, FileDeleteDelayMs: 0})
	writeTinySegments(t, l, 400)
	l.SetHighWatermark(l.LogEndOffset())
	done := make(chan struct{})
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func(g int) {
			for i := 0; ; i++ {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				off := int64((i*37 + g*101) % 400)
				b, err := l.Read(off, 1<<10, 400, true)
				if err != nil && !isErr(err, ErrOffsetOutOfRange) {
					errs <- fmt.Errorf("read %d: %w", off, err)
					return
				}
				ReleaseBuffer(b)
			}
		}(g)
	}
	for start := int64(20); start <= 300; start += 20 {
		if _, err := l.DeleteRecordsBefore(start); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	close(done)
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if l.Offline() {
		t.Fatal("log went offline")
	}
}

// TestLogRollKeepsTwoSnapshots checks the in-memory list of producer
// snapshots (which spares each roll a directory listing) against the
// files: the two newest are kept.
func TestLogRollKeepsTwoSnapshots(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: 14})
	for i := 0; i < 50; i++ {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 1, pid: 7, seq: int32(i)}))
	}
	offs, err := listSnapshots(l.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(offs) != 2 || offs[0] != 49 || offs[1] != 48 {
		t.Fatalf("snapshots on disk %v, want [49 48]", offs)
	}
	l.appendMu.Lock()
	mem := append([]int64(nil), l.snapshots...)
	l.appendMu.Unlock()
	if len(mem) != 2 || mem[0] != 48 || mem[1] != 49 {
		t.Fatalf("snapshots in memory %v, want [48 49]", mem)
	}
}

// TestLogManyPartitionsFileDescriptors: the active segments of idle
// partitions are in the file cache too, so 400 partitions with data cost
// at most MaxOpenSegmentFiles descriptors; every partition still appends
// and reads.
func TestLogManyPartitionsFileDescriptors(t *testing.T) {
	const partitions, limit = 400, 32
	dir := t.TempDir()
	m := openTestManager(t, dir, func(o *ManagerOptions) { o.MaxOpenSegmentFiles = limit })
	defer m.Close()
	var logs []*Log
	for p := 0; p < partitions; p++ {
		l, err := m.CreateLog("many", int32(p), [16]byte{}, Config{})
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, l)
	}
	for round := 0; round < 2; round++ {
		for _, l := range logs {
			mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 10}))
		}
	}
	for _, l := range logs {
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if n := openFilesUnder(t, dir); n > limit+4 {
		t.Fatalf("%d files open for %d partitions; want at most %d", n, partitions, limit+4)
	}
	for _, l := range logs {
		if hs := readAll(t, l, 0); len(hs) != 2 {
			t.Fatalf("%s: %d batches", l.name(), len(hs))
		}
	}
}

// TestLogRollCostIndependentOfSegments: an append that rolls a segment
// allocates as much with 2,000 segments as with 10 (the roll used to list
// the partition directory to prune producer snapshots and to copy the
// segment list: both grew with the number of segments, and appends went
// from 2.3 s to 16 s per 1,000 batches).
func TestLogRollCostIndependentOfSegments(t *testing.T) {
	quiet := func(o *ManagerOptions) {
		// No background flush, checkpoint or retention during the count.
		o.FlushCheckInterval, o.CheckpointInterval, o.RetentionCheckInterval = time.Hour, time.Hour, time.Hour
	}
	allocsAt := func(segments int) float64 {
		m := openTestManager(t, t.TempDir(), quiet)
		defer m.Close()
		l, _ := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: 14})
		writeTinySegments(t, l, segments)
		batch, err := record.Build(record.BuildOptions{}, []record.Record{{Timestamp: 1, Value: []byte("value")}})
		if err != nil {
			t.Fatal(err)
		}
		return testing.AllocsPerRun(200, func() {
			if _, err := l.AppendAsLeader(batch, 0); err != nil {
				t.Fatal(err)
			}
		})
	}
	few, many := allocsAt(10), allocsAt(2000)
	t.Logf("allocations per append with a roll: %.0f at 10 segments, %.0f at 2,000", few, many)
	if many > 1.5*few+5 {
		t.Fatalf("an append allocates %.0f objects at 2,000 segments, %.0f at 10: the roll does per-segment work", many, few)
	}
}

// TestLogOutOfDescriptorsStaysOnline: a read that cannot reopen an
// evicted segment because the process is out of descriptors (EMFILE)
// fails with ErrStorage, but the log stays online and serves the same
// read once descriptors are available again (an exhausted resource must
// not poison a partition until restart).
func TestLogOutOfDescriptorsStaysOnline(t *testing.T) {
	m := openTestManager(t, t.TempDir(), func(o *ManagerOptions) {
		o.MaxOpenSegmentFiles = 4
		o.FlushCheckInterval = time.Hour
	})
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: 14})
	vals := writeTinySegments(t, l, 50)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	l.SetHighWatermark(l.LogEndOffset())
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	low := orig
	low.Cur = 3 // every descriptor number in use is above: no open succeeds
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	_, readErr := l.Read(0, 1<<10, l.LogEndOffset(), true) // segment 0 was evicted
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	if !isErr(readErr, ErrStorage) || !isErr(readErr, syscall.EMFILE) && !strings.Contains(readErr.Error(), "too many open files") {
		t.Fatalf("read without descriptors: %v, want ErrStorage (EMFILE)", readErr)
	}
	if l.Offline() {
		t.Fatal("running out of descriptors took the log offline")
	}
	checkValues(t, l, vals)
	mustAppend(t, l, makeBatch(t, batchSpec{n: 1}))
}
