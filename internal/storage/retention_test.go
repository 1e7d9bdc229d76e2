package storage

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"samsa/internal/record"
)

// testClock is an injectable clock for ManagerOptions.Now.
type testClock struct{ ms atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ms.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	return c
}
func (c *testClock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *testClock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// segmentBases returns the base offsets of the log's segments.
func segmentBases(l *Log) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var bs []int64
	for _, s := range l.mu.segments {
		bs = append(bs, s.base)
	}
	return bs
}

// oneBatchPerSegment returns a SegmentBytes that makes every append of a
// batch of size n roll a new segment.
func oneBatchPerSegment(n int) int64 { return int64(n) + int64(n)/2 }

func filesWithSuffix(t *testing.T, dir, suffix string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestRetentionByTime(t *testing.T) {
	clk := newTestClock()
	m := openTestManager(t, t.TempDir(), func(o *ManagerOptions) { o.Now = clk.now })
	defer m.Close()
	sample := makeBatch(t, batchSpec{valueSize: 100})
	l, err := m.CreateLog("t", 0, [16]byte{}, Config{
		SegmentBytes: oneBatchPerSegment(len(sample)), RetentionMs: 60_000, FileDeleteDelayMs: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	now := clk.now().UnixMilli()
	// Segments 0 and 1 are two minutes old, 2 is fresh, 3 is old but
	// after a fresh one (retention only takes a prefix), 4 is active.
	for _, ts := range []int64{now - 120_000, now - 120_000, now, now - 120_000, now - 120_000} {
		mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 100, ts: ts}))
	}
	if got := segmentBases(l); len(got) != 5 {
		t.Fatalf("segments %v, want 5", got)
	}
	// Nothing is below the high watermark yet.
	if n := m.RunRetention(); n != 0 {
		t.Fatalf("deleted %d segments above the high watermark", n)
	}
	l.SetHighWatermark(l.LogEndOffset())
	if n := m.RunRetention(); n != 2 {
		t.Fatalf("deleted %d segments, want 2", n)
	}
	if got := segmentBases(l); len(got) != 3 || got[0] != 2 {
		t.Fatalf("segments after retention %v", got)
	}
	if l.LogStartOffset() != 2 {
		t.Fatalf("log start offset %d, want 2", l.LogStartOffset())
	}
	if _, err := l.Read(1, 1<<20, l.LogEndOffset(), true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below log start: %v", err)
	}
	if hs := readAll(t, l, 2); len(hs) != 3 {
		t.Fatalf("read %d batches after retention, want 3", len(hs))
	}
	// The files linger as *.deleted for file.delete.delay.ms.
	if got := filesWithSuffix(t, l.Dir(), ".log.deleted"); len(got) != 2 {
		t.Fatalf("deleted log files %v", got)
	}
	m.purgeDeleted(clk.now(), false)
	if got := filesWithSuffix(t, l.Dir(), deletedSuffix); len(got) != 6 {
		t.Fatalf("files removed before file.delete.delay.ms: %v", got)
	}
	clk.advance(2 * time.Second)
	m.purgeDeleted(clk.now(), false)
	if got := filesWithSuffix(t, l.Dir(), deletedSuffix); len(got) != 0 {
		t.Fatalf("files left after file.delete.delay.ms: %v", got)
	}

	// Everything expires: the active segment stays.
	clk.advance(10 * time.Minute)
	if n := m.RunRetention(); n != 2 {
		t.Fatalf("deleted %d segments, want 2 (never the active one)", n)
	}
	if got := segmentBases(l); len(got) != 1 || got[0] != 4 || l.LogStartOffset() != 4 {
		t.Fatalf("segments %v, log start %d", got, l.LogStartOffset())
	}
	// retention.ms=-1 keeps everything; compact-only never deletes by time.
	mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 100, ts: 1}))
	mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 100, ts: 1}))
	l.SetHighWatermark(l.LogEndOffset())
	for _, cfg := range []Config{
		{SegmentBytes: oneBatchPerSegment(len(sample)), RetentionMs: -1},
		{SegmentBytes: oneBatchPerSegment(len(sample)), RetentionMs: 1, CleanupPolicy: "compact"},
	} {
		l.SetConfig(cfg)
		if n := m.RunRetention(); n != 0 {
			t.Fatalf("%+v: deleted %d segments", cfg, n)
		}
	}
	l.SetConfig(Config{SegmentBytes: oneBatchPerSegment(len(sample)), RetentionMs: 1, CleanupPolicy: "compact,delete"})
	if n := m.RunRetention(); n != 2 {
		t.Fatalf("compact,delete: deleted %d segments, want 2", n)
	}
}

func TestRetentionByBytes(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	b := makeBatch(t, batchSpec{valueSize: 100, ts: time.Now().UnixMilli()})
	n := int64(len(b))
	l, err := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: oneBatchPerSegment(len(b)), RetentionBytes: 2*n + n/2, FileDeleteDelayMs: 0})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 100, ts: time.Now().UnixMilli()}))
	}
	l.SetHighWatermark(l.LogEndOffset())
	// 5 segments of n bytes, 2.5n allowed: deleting two leaves 3n, and a
	// third would go below the limit (Kafka's rule).
	if got, err := l.DeleteOldSegments(); err != nil || got != 2 {
		t.Fatalf("deleted %d segments (%v), want 2", got, err)
	}
	if got := segmentBases(l); len(got) != 3 || got[0] != 2 || l.LogStartOffset() != 2 {
		t.Fatalf("segments %v, log start %d", got, l.LogStartOffset())
	}
	if got := filesWithSuffix(t, l.Dir(), deletedSuffix); len(got) != 0 {
		t.Fatalf("file.delete.delay.ms=0 left %v", got)
	}
	if got, _ := l.DeleteOldSegments(); got != 0 {
		t.Fatalf("second run deleted %d", got)
	}
}

func TestRetentionBackgroundLoop(t *testing.T) {
	m := openTestManager(t, t.TempDir(), func(o *ManagerOptions) { o.RetentionCheckInterval = 10 * time.Millisecond })
	defer m.Close()
	b := makeBatch(t, batchSpec{valueSize: 100, ts: 1})
	l, err := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: oneBatchPerSegment(len(b)), RetentionMs: 1000, FileDeleteDelayMs: 0})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 100, ts: 1}))
	}
	l.SetHighWatermark(l.LogEndOffset())
	deadline := time.Now().Add(10 * time.Second)
	for l.LogStartOffset() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("background retention did not run: segments %v", segmentBases(l))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeleteRecordsBefore(t *testing.T) {
	dir := t.TempDir()
	m := openTestManager(t, dir, nil)
	b := makeBatch(t, batchSpec{n: 2, valueSize: 100, ts: 1000})
	l, err := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: oneBatchPerSegment(len(b)), FileDeleteDelayMs: 0})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 100, ts: int64(1000 + 10*i)}))
	}
	if err := l.AssignEpochStartOffset(1, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.AssignEpochStartOffset(2, 5); err != nil {
		t.Fatal(err)
	}
	l.SetHighWatermark(8)
	for _, off := range []int64{9, 10, -2} {
		if _, err := l.DeleteRecordsBefore(off); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("DeleteRecordsBefore(%d): %v, want ErrOffsetOutOfRange", off, err)
		}
	}
	lso, err := l.DeleteRecordsBefore(3)
	if err != nil || lso != 3 {
		t.Fatalf("DeleteRecordsBefore(3) = %d, %v", lso, err)
	}
	// The segment [0,2) went; [2,4) stays with the start inside it.
	if got := segmentBases(l); len(got) != 4 || got[0] != 2 {
		t.Fatalf("segments %v", got)
	}
	// The checkpoint is on disk before the call returned.
	cp, err := os.ReadFile(filepath.Join(dir, logStartOffsetFile))
	if err != nil {
		t.Fatal(err)
	}
	if offs, err := ParseOffsetCheckpoint(cp); err != nil || offs[TopicPartition{"t", 0}] != 3 {
		t.Fatalf("log-start-offset-checkpoint %q: %v", cp, err)
	}
	if got, err := l.DeleteRecordsBefore(1); err != nil || got != 3 {
		t.Fatalf("DeleteRecordsBefore below start = %d, %v", got, err)
	}
	if _, err := l.Read(2, 1<<20, 8, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	if out, err := l.Read(3, 1<<20, 8, true); err != nil || len(out) == 0 {
		t.Fatalf("read at start: %v", err)
	}
	if off, _, ok, err := l.OffsetForTimestamp(0); err != nil || !ok || off != 3 {
		t.Fatalf("OffsetForTimestamp(0) = %d %v %v, want 3", off, ok, err)
	}
	if s, ok := l.EpochStartOffset(1); !ok || s != 3 {
		t.Fatalf("epoch 1 starts at %d %v, want 3 (truncated from start)", s, ok)
	}
	if info := mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 1, ts: 2000})); info.LogStartOffset != 3 {
		t.Fatalf("AppendInfo.LogStartOffset %d", info.LogStartOffset)
	}

	// kill -9 right after the call returned: the start survives.
	m.abandon()
	m = openTestManager(t, dir, nil)
	l, _ = m.Log("t", 0)
	if l.LogStartOffset() != 3 {
		t.Fatalf("after kill -9: log start %d, want 3", l.LogStartOffset())
	}
	// -1 is the high watermark; past all closed segments the active one
	// stays and only the start moves.
	l.SetHighWatermark(l.LogEndOffset())
	leo := l.LogEndOffset()
	if got, err := l.DeleteRecordsBefore(-1); err != nil || got != leo {
		t.Fatalf("DeleteRecordsBefore(-1) = %d, %v; want %d", got, err, leo)
	}
	if got := segmentBases(l); len(got) != 1 {
		t.Fatalf("segments %v, want only the active one", got)
	}
	if out, err := l.Read(leo, 1<<20, leo, true); err != nil || len(out) != 0 {
		t.Fatalf("read at end: %d bytes, %v", len(out), err)
	}
	if _, err := l.Read(leo-1, 1<<20, leo, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = openTestManager(t, dir, nil)
	defer m.Close()
	l, _ = m.Log("t", 0)
	if l.LogStartOffset() != leo || l.LogEndOffset() != leo {
		t.Fatalf("after reopen: start %d end %d, want %d", l.LogStartOffset(), l.LogEndOffset(), leo)
	}
	info := mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 1, ts: 2000}))
	if info.FirstOffset != leo || info.LogStartOffset != leo {
		t.Fatalf("append after deleting everything: %+v", info)
	}
}

func TestRetentionOpenRemovesDeletedFiles(t *testing.T) {
	dir := t.TempDir()
	m := openTestManager(t, dir, nil)
	b := makeBatch(t, batchSpec{valueSize: 100, ts: 1})
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: oneBatchPerSegment(len(b)), RetentionMs: 1, FileDeleteDelayMs: 3_600_000})
	for i := 0; i < 3; i++ {
		mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 100, ts: 1}))
	}
	l.SetHighWatermark(l.LogEndOffset())
	if n := m.RunRetention(); n != 2 {
		t.Fatalf("deleted %d", n)
	}
	pdir := l.Dir()
	m.abandon() // the delayed deletion never ran
	if got := filesWithSuffix(t, pdir, deletedSuffix); len(got) != 6 {
		t.Fatalf("deleted files before reopen: %v", got)
	}
	m = openTestManager(t, dir, nil)
	defer m.Close()
	if got := filesWithSuffix(t, pdir, deletedSuffix); len(got) != 0 {
		t.Fatalf("open left %v", got)
	}
	l, _ = m.Log("t", 0)
	if l.LogStartOffset() != 2 {
		t.Fatalf("log start %d", l.LogStartOffset())
	}
}

// TestRetentionConcurrentReads deletes segments (retention and
// DeleteRecords, files removed at once) while readers fetch from
// everywhere: every read either returns valid batches or
// ErrOffsetOutOfRange.
func TestRetentionConcurrentReads(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	b := makeBatch(t, batchSpec{n: 2, valueSize: 200, ts: 1})
	l, err := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: 3 * int64(len(b)), RetentionMs: -1, FileDeleteDelayMs: 0})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 200, ts: 1}))
	}
	leo := l.LogEndOffset()
	l.SetHighWatermark(leo)
	var stop atomic.Bool
	var reads, outOfRange atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, seed))
			for !stop.Load() {
				off := rng.Int64N(leo)
				out, err := l.Read(off, int32(1+rng.IntN(4096)), leo, true)
				if errors.Is(err, ErrOffsetOutOfRange) {
					outOfRange.Add(1)
					continue
				}
				if err != nil {
					t.Errorf("read %d: %v", off, err)
					return
				}
				if len(out) == 0 {
					t.Errorf("read %d: no data", off)
					return
				}
				first := true
				if err := record.Split(out, func(_ []byte, h record.Header) error {
					if first && h.LastOffset() < off {
						return errors.New("first batch ends before the offset")
					}
					first = false
					return nil
				}); err != nil {
					t.Errorf("read %d: %v", off, err)
					return
				}
				ReleaseBuffer(out)
				reads.Add(1)
			}
		}(uint64(g + 1))
	}
	for start := int64(0); start < leo-20; start += 7 {
		if _, err := l.DeleteRecordsBefore(start); err != nil {
			t.Fatal(err)
		}
		l.SetConfig(Config{SegmentBytes: 3 * int64(len(b)), RetentionBytes: (leo-start)*int64(len(b))/2 + 1000, FileDeleteDelayMs: 0})
		if _, err := l.DeleteOldSegments(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if reads.Load() == 0 || outOfRange.Load() == 0 {
		t.Fatalf("reads %d, out of range %d: the race was not exercised", reads.Load(), outOfRange.Load())
	}
	if n := len(segmentBases(l)); n > 5 {
		t.Fatalf("%d segments left", n)
	}
}
