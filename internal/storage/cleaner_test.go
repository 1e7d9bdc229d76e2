package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"samsa/internal/record"
)

// kv is a record for kvBatch; a nil value is a tombstone, a nil key a
// keyless record.
type kv struct {
	key, value []byte
}

func kvs(pairs ...string) []kv {
	var out []kv
	for _, p := range pairs {
		k, v, _ := bytes.Cut([]byte(p), []byte("="))
		e := kv{key: k, value: v}
		if len(v) == 0 {
			e.value = nil
		}
		if len(k) == 0 {
			e.key = nil
		}
		out = append(out, e)
	}
	return out
}

func kvBatch(t testing.TB, codec record.Compression, ts int64, o record.BuildOptions, recs []kv) []byte {
	t.Helper()
	rs := make([]record.Record, len(recs))
	for i, r := range recs {
		rs[i] = record.Record{Timestamp: ts + int64(i), Key: r.key, Value: r.value,
			Headers: []record.RecordHeader{{Key: "h", Value: []byte(fmt.Sprint(i))}}}
	}
	o.Compression = codec
	b, err := record.Build(o, rs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logRecord is a record read back, with its batch.
type logRecord struct {
	offset    int64
	timestamp int64
	key       string
	value     []byte
	batch     record.Header
}

// readRecords decodes every record from the log start to the end.
func readRecords(t *testing.T, l *Log) []logRecord {
	t.Helper()
	var out []logRecord
	from := l.LogStartOffset()
	for from < l.LogEndOffset() {
		b, err := l.Read(from, 1<<20, l.LogEndOffset(), true)
		if err != nil {
			t.Fatalf("read %d: %v", from, err)
		}
		if len(b) == 0 {
			t.Fatalf("read %d: no bytes before the end %d", from, l.LogEndOffset())
		}
		for len(b) > 0 {
			raw, h, rest, err := record.Next(b)
			if err != nil {
				t.Fatal(err)
			}
			bt, err := record.DecodeBatch(raw)
			if err != nil {
				t.Fatalf("batch at %d: %v", h.BaseOffset, err)
			}
			for _, r := range bt.Records {
				if r.Offset >= from {
					out = append(out, logRecord{r.Offset, r.Timestamp, string(r.Key), bytes.Clone(r.Value), bt.Header})
				}
			}
			from = h.NextOffset()
			b = rest
		}
	}
	return out
}

func compactConfig(segBytes int64) Config {
	return Config{CleanupPolicy: "compact", SegmentBytes: segBytes, MinCleanableDirtyRatio: 0.5, DeleteRetentionMs: 1000, FileDeleteDelayMs: 0}
}

func cleanerManager(t *testing.T, dir string, clk *testClock) *Manager {
	return openTestManager(t, dir, func(o *ManagerOptions) {
		o.CleanerDisabled = true
		if clk != nil {
			o.Now = clk.now
		}
	})
}

// activeBytes returns the bytes of the active segment.
func activeBytes(t *testing.T, l *Log) (int64, []byte) {
	t.Helper()
	l.mu.Lock()
	s := l.mu.segments[len(l.mu.segments)-1]
	l.mu.Unlock()
	b, err := os.ReadFile(filepath.Join(l.Dir(), segmentName(s.base, logSuffix)))
	if err != nil {
		t.Fatal(err)
	}
	return s.base, b
}

func TestCleanerKeepsLatestPerKey(t *testing.T) {
	for _, codec := range []record.Compression{record.CompressionNone, record.CompressionGzip, record.CompressionSnappy, record.CompressionLZ4, record.CompressionZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			clk := newTestClock()
			m := cleanerManager(t, t.TempDir(), clk)
			defer func() { m.Close() }()
			l, err := m.CreateLog("c", 0, [16]byte{}, compactConfig(512))
			if err != nil {
				t.Fatal(err)
			}
			for round := 0; round < 20; round++ {
				var recs []kv
				for k := 0; k < 5; k++ {
					recs = append(recs, kv{[]byte(fmt.Sprintf("key-%d", (round+k)%7)), []byte(fmt.Sprintf("value-%d-%d", round, k))})
				}
				recs = append(recs, kv{nil, []byte("keyless")})
				mustAppend(t, l, kvBatch(t, codec, clk.now().UnixMilli(), record.BuildOptions{}, recs))
			}
			// A last batch in the active segment, which must stay as is.
			mustAppend(t, l, kvBatch(t, codec, clk.now().UnixMilli(), record.BuildOptions{}, kvs("key-0=late", "=keyless")))
			l.SetHighWatermark(l.LogEndOffset())
			before := readRecords(t, l)
			activeBase, activeBefore := activeBytes(t, l)
			if len(segmentBases(l)) < 4 {
				t.Fatalf("segments %v: want several", segmentBases(l))
			}
			// The latest record of each key below the active segment.
			latest := map[string]int64{}
			for _, r := range before {
				if r.offset < activeBase && r.key != "" {
					latest[r.key] = r.offset
				}
			}

			n, err := m.CleanNow()
			if err != nil || n != 1 {
				t.Fatalf("CleanNow = %d, %v", n, err)
			}
			if _, after := activeBytes(t, l); !bytes.Equal(after, activeBefore) {
				t.Fatal("the active segment changed")
			}
			after := readRecords(t, l)
			seen := map[string]int{}
			for _, r := range after {
				if r.offset >= activeBase {
					continue
				}
				if r.key == "" {
					t.Fatalf("keyless record at %d kept", r.offset)
				}
				seen[r.key]++
				if latest[r.key] != r.offset {
					t.Fatalf("key %s kept at %d, latest is %d", r.key, r.offset, latest[r.key])
				}
				if r.batch.Compression() != codec {
					t.Fatalf("batch at %d rewritten with %s", r.batch.BaseOffset, r.batch.Compression())
				}
			}
			for k, c := range seen {
				if c != 1 {
					t.Fatalf("key %s kept %d times", k, c)
				}
			}
			if len(seen) != len(latest) || len(seen) < 5 {
				t.Fatalf("%d keys kept, want %d", len(seen), len(latest))
			}
			// Every kept record has its original offset, timestamp and value.
			orig := map[int64]logRecord{}
			for _, r := range before {
				orig[r.offset] = r
			}
			for _, r := range after {
				o := orig[r.offset]
				if o.key != r.key || !bytes.Equal(o.value, r.value) || o.timestamp != r.timestamp {
					t.Fatalf("record at %d changed: %+v -> %+v", r.offset, o, r)
				}
			}
			// Reading from an offset compacted away returns the next batch.
			out, err := l.Read(0, 1<<20, l.LogEndOffset(), true)
			if err != nil || len(out) == 0 {
				t.Fatalf("read from a compacted offset: %v", err)
			}
			// A second run has nothing to do.
			if n, err := m.CleanNow(); err != nil || n != 0 {
				t.Fatalf("second CleanNow = %d, %v", n, err)
			}
			// Reopening (indexes from the rewritten files) reads the same.
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			m = cleanerManager(t, filepath.Dir(l.Dir()), clk)
			l, _ = m.Log("c", 0)
			if again := readRecords(t, l); len(again) != len(after) {
				t.Fatalf("after reopen %d records, want %d", len(again), len(after))
			}
		})
	}
}

func TestCleanerTombstonesExpireAfterDeleteRetention(t *testing.T) {
	clk := newTestClock()
	dir := t.TempDir()
	m := cleanerManager(t, dir, clk)
	defer func() { m.Close() }()
	b := kvBatch(t, record.CompressionNone, 0, record.BuildOptions{}, kvs("a=1", "b=1"))
	l, _ := m.CreateLog("c", 0, [16]byte{}, compactConfig(oneBatchPerSegment(len(b))))
	ts := clk.now().UnixMilli()
	mustAppend(t, l, kvBatch(t, record.CompressionNone, ts, record.BuildOptions{}, kvs("a=1", "b=1")))
	mustAppend(t, l, kvBatch(t, record.CompressionNone, ts, record.BuildOptions{}, kvs("a=", "c=1")))
	mustAppend(t, l, kvBatch(t, record.CompressionNone, ts, record.BuildOptions{}, kvs("d=1")))
	l.SetHighWatermark(l.LogEndOffset())
	if n, err := m.CleanNow(); err != nil || n != 1 {
		t.Fatalf("CleanNow = %d, %v", n, err)
	}
	keys := func() map[string][]byte {
		out := map[string][]byte{}
		for _, r := range readRecords(t, l) {
			out[r.key] = r.value
		}
		return out
	}
	got := keys()
	if v, ok := got["a"]; !ok || v != nil {
		t.Fatalf("tombstone for a: %q %v (records %v)", v, ok, got)
	}
	if len(got) != 4 {
		t.Fatalf("records %v", got)
	}
	// The tombstone's batch carries the delete horizon.
	for _, r := range readRecords(t, l) {
		if r.key == "a" {
			if h, ok := r.batch.DeleteHorizon(); !ok || h != ts+1000 {
				t.Fatalf("delete horizon %d %v, want %d", h, ok, ts+1000)
			}
		}
	}
	// Before delete.retention.ms nothing is cleanable.
	clk.advance(500 * time.Millisecond)
	if n, _ := m.CleanNow(); n != 0 {
		t.Fatalf("cleaned %d before the horizon", n)
	}
	// The cleaner checkpoint survives a restart, and so does the horizon
	// (in the batch).
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	cp, err := os.ReadFile(filepath.Join(dir, cleanerOffsetFile))
	if err != nil {
		t.Fatal(err)
	}
	offs, err := ParseOffsetCheckpoint(cp)
	if err != nil || offs[TopicPartition{"c", 0}] != 4 {
		t.Fatalf("cleaner-offset-checkpoint %q (%v), want c 0 4", cp, err)
	}
	m = cleanerManager(t, dir, clk)
	l, _ = m.Log("c", 0)
	// As internal/replica does when it takes the partition back.
	l.SetConfig(Config{CleanupPolicy: "compact", SegmentBytes: oneBatchPerSegment(len(b)), MinCleanableDirtyRatio: 0.01, DeleteRetentionMs: 1000})
	l.mu.Lock()
	co := l.mu.cleanerOffset
	l.mu.Unlock()
	if co != 4 {
		t.Fatalf("cleaner offset after reopen %d", co)
	}
	clk.advance(time.Second)
	// After a restart the horizon is not in memory: new dirty data
	// triggers the cleaning, which drops the expired tombstone.
	mustAppend(t, l, kvBatch(t, record.CompressionNone, ts, record.BuildOptions{}, kvs("d=2")))
	mustAppend(t, l, kvBatch(t, record.CompressionNone, ts, record.BuildOptions{}, kvs("e=1")))
	l.SetHighWatermark(l.LogEndOffset())
	if n, err := m.CleanNow(); err != nil || n != 1 {
		t.Fatalf("CleanNow = %d, %v", n, err)
	}
	got = keys()
	if _, ok := got["a"]; ok {
		t.Fatalf("expired tombstone kept: %v", got)
	}
	if string(got["d"]) != "2" || string(got["b"]) != "1" {
		t.Fatalf("records %v", got)
	}
}

func TestCleanerHorizonTriggersCleaning(t *testing.T) {
	clk := newTestClock()
	m := cleanerManager(t, t.TempDir(), clk)
	defer m.Close()
	b := kvBatch(t, record.CompressionNone, 0, record.BuildOptions{}, kvs("a=1"))
	l, _ := m.CreateLog("c", 0, [16]byte{}, compactConfig(oneBatchPerSegment(len(b))))
	ts := clk.now().UnixMilli()
	mustAppend(t, l, kvBatch(t, record.CompressionNone, ts, record.BuildOptions{}, kvs("a=1")))
	mustAppend(t, l, kvBatch(t, record.CompressionNone, ts, record.BuildOptions{}, kvs("a=")))
	mustAppend(t, l, kvBatch(t, record.CompressionNone, ts, record.BuildOptions{}, kvs("b=1")))
	l.SetHighWatermark(l.LogEndOffset())
	if n, _ := m.CleanNow(); n != 1 {
		t.Fatalf("first clean %d", n)
	}
	if got := readRecords(t, l); len(got) != 2 || got[0].key != "a" || got[0].value != nil {
		t.Fatalf("records after the first cleaning %+v", got)
	}
	clk.advance(1001 * time.Millisecond)
	if n, _ := m.CleanNow(); n != 1 {
		t.Fatalf("the passed delete horizon did not trigger a cleaning: %d", n)
	}
	if got := readRecords(t, l); len(got) != 1 || got[0].key != "b" {
		t.Fatalf("records after the horizon %+v", got)
	}
}

func TestCleanerDirtyRatioThreshold(t *testing.T) {
	clk := newTestClock()
	m := cleanerManager(t, t.TempDir(), clk)
	defer m.Close()
	b := kvBatch(t, record.CompressionNone, 0, record.BuildOptions{}, kvs("k0=v"))
	l, _ := m.CreateLog("c", 0, [16]byte{}, compactConfig(oneBatchPerSegment(len(b))))
	ts := clk.now().UnixMilli()
	add := func(n int) {
		for i := 0; i < n; i++ {
			mustAppend(t, l, kvBatch(t, record.CompressionNone, ts, record.BuildOptions{}, kvs(fmt.Sprintf("k%d=v", i%10))))
		}
		l.SetHighWatermark(l.LogEndOffset())
	}
	add(10)
	// A log without "compact" is never cleaned.
	l.SetConfig(Config{SegmentBytes: oneBatchPerSegment(len(b))})
	if n, _ := m.CleanNow(); n != 0 {
		t.Fatalf("cleaned a delete-policy log")
	}
	l.SetConfig(compactConfig(oneBatchPerSegment(len(b))))
	if n, _ := m.CleanNow(); n != 1 {
		t.Fatalf("all dirty: cleaned %d", n)
	}
	// 9 clean segments, 2 dirty ones: ratio 2/11 < 0.5.
	add(2)
	if n, _ := m.CleanNow(); n != 0 {
		t.Fatalf("ratio below min.cleanable.dirty.ratio: cleaned %d", n)
	}
	add(8) // 10 dirty of 19
	if n, _ := m.CleanNow(); n != 1 {
		t.Fatalf("ratio above min.cleanable.dirty.ratio: cleaned %d", n)
	}
	// max.compaction.lag.ms forces a cleaning below the ratio.
	add(1)
	clk.advance(time.Minute)
	cfg := compactConfig(oneBatchPerSegment(len(b)))
	cfg.MaxCompactionLagMs = 1000
	l.SetConfig(cfg)
	if n, _ := m.CleanNow(); n != 1 {
		t.Fatalf("max.compaction.lag.ms exceeded: cleaned %d", n)
	}
	// min.compaction.lag.ms holds young segments back.
	add(10)
	cfg = compactConfig(oneBatchPerSegment(len(b)))
	cfg.MinCompactionLagMs = 3_600_000
	cfg.MinCleanableDirtyRatio = 0.3
	l.SetConfig(cfg)
	if n, _ := m.CleanNow(); n != 0 {
		t.Fatalf("min.compaction.lag.ms not respected: cleaned %d", n)
	}
	clk.advance(2 * time.Hour)
	if n, _ := m.CleanNow(); n != 1 {
		t.Fatalf("after min.compaction.lag.ms: cleaned %d", n)
	}
}

func TestCleanerHighWatermarkBound(t *testing.T) {
	m := cleanerManager(t, t.TempDir(), nil)
	defer m.Close()
	b := kvBatch(t, record.CompressionNone, 1, record.BuildOptions{}, kvs("a=1"))
	l, _ := m.CreateLog("c", 0, [16]byte{}, compactConfig(oneBatchPerSegment(len(b))))
	for i := 0; i < 5; i++ {
		mustAppend(t, l, kvBatch(t, record.CompressionNone, 1, record.BuildOptions{}, kvs("a=1")))
	}
	if n, _ := m.CleanNow(); n != 0 {
		t.Fatal("cleaned above the high watermark")
	}
	l.SetHighWatermark(2)
	if n, _ := m.CleanNow(); n != 1 {
		t.Fatal("not cleaned below the high watermark")
	}
	if got := readRecords(t, l); len(got) != 4 || got[0].offset != 1 {
		t.Fatalf("records %+v: only [0,2) may be compacted", got)
	}
}

func TestCleanerKeepsProducersLastBatch(t *testing.T) {
	m := cleanerManager(t, t.TempDir(), nil)
	defer m.Close()
	b := kvBatch(t, record.CompressionNone, 1, record.BuildOptions{}, kvs("a=1", "b=1"))
	l, _ := m.CreateLog("c", 0, [16]byte{}, compactConfig(oneBatchPerSegment(len(b))))
	idem := record.BuildOptions{Idempotent: true, ProducerID: 7, ProducerEpoch: 0}
	mustAppend(t, l, kvBatch(t, record.CompressionZstd, 1, idem, kvs("a=1", "b=1")))
	idem.BaseSequence = 2
	mustAppend(t, l, kvBatch(t, record.CompressionZstd, 1, idem, kvs("a=2", "b=2")))
	mustAppend(t, l, kvBatch(t, record.CompressionNone, 1, record.BuildOptions{}, kvs("a=3", "b=3")))
	mustAppend(t, l, kvBatch(t, record.CompressionNone, 1, record.BuildOptions{}, kvs("z=1")))
	l.SetHighWatermark(l.LogEndOffset())
	if n, err := m.CleanNow(); n != 1 || err != nil {
		t.Fatalf("CleanNow %d %v", n, err)
	}
	var hs []record.Header
	from := l.LogStartOffset()
	for from < l.LogEndOffset() {
		out, err := l.Read(from, 1<<20, l.LogEndOffset(), true)
		if err != nil {
			t.Fatal(err)
		}
		_ = record.Split(out, func(_ []byte, h record.Header) error { hs = append(hs, h); from = h.NextOffset(); return nil })
	}
	// The first batch of producer 7 went; its last stays, empty, with
	// its offsets and sequence.
	if len(hs) != 3 || hs[0].ProducerID != 7 || hs[0].RecordCount != 0 || hs[0].BaseOffset != 2 ||
		hs[0].LastOffset() != 3 || hs[0].BaseSequence != 2 || hs[0].Compression() != record.CompressionNone {
		t.Fatalf("batches %+v", hs)
	}
	// The producer continues at its next sequence.
	idem.BaseSequence = 4
	mustAppend(t, l, kvBatch(t, record.CompressionNone, 1, idem, kvs("a=4")))
}

// TestCleanerSwapRecovery simulates a crash at each step of the swap
// protocol by leaving the files it would leave.
func TestCleanerSwapRecovery(t *testing.T) {
	build := func(t *testing.T, dir string) {
		m := cleanerManager(t, dir, nil)
		b := kvBatch(t, record.CompressionNone, 1, record.BuildOptions{}, kvs("a=1", "b=1", "c=1"))
		l, _ := m.CreateLog("c", 0, [16]byte{}, compactConfig(3*int64(len(b))))
		for i := 0; i < 12; i++ {
			mustAppend(t, l, kvBatch(t, record.CompressionNone, 1, record.BuildOptions{}, kvs(fmt.Sprintf("a=%d", i), "b=1", fmt.Sprintf("k%d=1", i))))
		}
		l.SetHighWatermark(l.LogEndOffset())
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// A cleaned copy of the same log gives the files a finished cleaning
	// writes.
	cleanedDir := t.TempDir()
	build(t, cleanedDir)
	m := cleanerManager(t, cleanedDir, nil)
	l, _ := m.Log("c", 0)
	l.SetConfig(compactConfig(0))
	if n, err := m.CleanNow(); n != 1 || err != nil {
		t.Fatalf("CleanNow %d %v", n, err)
	}
	want := readRecords(t, l)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	cleanedSeg := func(suf string) []byte {
		b, err := os.ReadFile(filepath.Join(cleanedDir, "c-0", segmentName(0, suf)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	cases := []struct {
		name  string
		files map[string][]byte // relative to the partition dir
		// compacted: segment 0 must be the cleaned one after open.
		compacted bool
	}{
		{"cleaned-only", map[string][]byte{
			segmentName(0, logSuffix+cleanedSuffix):   []byte("partial garbage"),
			segmentName(0, indexSuffix+cleanedSuffix): {1, 2, 3},
		}, false},
		{"swap-in-progress", map[string][]byte{
			segmentName(0, indexSuffix+swapSuffix):        cleanedSeg(indexSuffix),
			segmentName(0, logSuffix+cleanedSuffix):       cleanedSeg(logSuffix),
			segmentName(0, timeIndexSuffix+cleanedSuffix): cleanedSeg(timeIndexSuffix),
		}, false},
		{"swap-committed", map[string][]byte{
			segmentName(0, logSuffix+swapSuffix):       cleanedSeg(logSuffix),
			segmentName(0, indexSuffix+swapSuffix):     cleanedSeg(indexSuffix),
			segmentName(0, timeIndexSuffix+swapSuffix): {9, 9, 9, 9}, // damaged: must be rebuilt
		}, true},
		{"replace-half-done", map[string][]byte{
			segmentName(0, logSuffix):                  cleanedSeg(logSuffix),
			segmentName(0, timeIndexSuffix+swapSuffix): cleanedSeg(timeIndexSuffix),
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			build(t, dir)
			pdir := filepath.Join(dir, "c-0")
			orig, err := os.ReadFile(filepath.Join(pdir, segmentName(0, logSuffix)))
			if err != nil {
				t.Fatal(err)
			}
			for name, b := range tc.files {
				if err := os.WriteFile(filepath.Join(pdir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// Crash: no clean-shutdown marker.
			_ = os.Remove(filepath.Join(dir, cleanShutdownFile))
			m := cleanerManager(t, dir, nil)
			defer m.Close()
			l, ok := m.Log("c", 0)
			if !ok {
				t.Fatal("log not opened")
			}
			l.SetConfig(compactConfig(0))
			for _, suf := range []string{cleanedSuffix, swapSuffix} {
				if got := filesWithSuffix(t, pdir, suf); len(got) != 0 {
					t.Fatalf("leftover %v", got)
				}
			}
			seg, err := os.ReadFile(filepath.Join(pdir, segmentName(0, logSuffix)))
			if err != nil {
				t.Fatal(err)
			}
			if tc.compacted {
				if !bytes.Equal(seg, cleanedSeg(logSuffix)) {
					t.Fatal("segment 0 is not the cleaned one")
				}
			} else if !bytes.Equal(seg, orig) {
				t.Fatal("segment 0 changed")
			}
			got := readRecords(t, l)
			if tc.compacted {
				if n, err := m.CleanNow(); err != nil || n != 1 {
					t.Fatalf("CleanNow %d %v", n, err)
				}
				got = readRecords(t, l)
				if len(got) != len(want) {
					t.Fatalf("%d records, want %d", len(got), len(want))
				}
			} else if len(got) != 36 {
				t.Fatalf("%d records, want 36", len(got))
			}
			// The time index was rebuilt from the log: search works.
			if off, _, ok, err := l.OffsetForTimestamp(0); err != nil || !ok || off != got[0].offset {
				t.Fatalf("OffsetForTimestamp: %d %v %v", off, ok, err)
			}
		})
	}
}

func TestCleanerBackgroundGoroutine(t *testing.T) {
	m := openTestManager(t, t.TempDir(), func(o *ManagerOptions) { o.CleanerBackoff = 5 * time.Millisecond })
	defer m.Close()
	b := kvBatch(t, record.CompressionNone, 1, record.BuildOptions{}, kvs("a=1"))
	l, _ := m.CreateLog("c", 0, [16]byte{}, compactConfig(oneBatchPerSegment(len(b))))
	for i := 0; i < 6; i++ {
		mustAppend(t, l, kvBatch(t, record.CompressionNone, 1, record.BuildOptions{}, kvs("a=1")))
	}
	l.SetHighWatermark(l.LogEndOffset())
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := readRecords(t, l); len(got) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background cleaner did not compact: %d records", len(readRecords(t, l)))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCleanerConcurrentReadsAndRetention cleans while readers fetch and
// DeleteRecords removes segments.
func TestCleanerConcurrentReadsAndRetention(t *testing.T) {
	m := cleanerManager(t, t.TempDir(), nil)
	defer m.Close()
	b := kvBatch(t, record.CompressionLZ4, 1, record.BuildOptions{}, kvs("a=1", "b=2"))
	l, _ := m.CreateLog("c", 0, [16]byte{}, compactConfig(4*int64(len(b))))
	l.SetConfig(Config{CleanupPolicy: "compact", SegmentBytes: 4 * int64(len(b)), MinCleanableDirtyRatio: 0.01})
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			leo := l.LogEndOffset()
			from := l.LogStartOffset()
			out, err := l.Read(from, 1<<20, leo, true)
			if err != nil && !isErr(err, ErrOffsetOutOfRange) {
				errc <- err
				return
			}
			if err == nil {
				if err := record.Split(out, func([]byte, record.Header) error { return nil }); err != nil {
					errc <- err
					return
				}
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	for i := 0; i < 60; i++ {
		mustAppend(t, l, kvBatch(t, record.CompressionLZ4, 1, record.BuildOptions{}, kvs(fmt.Sprintf("k%d=1", i%5), "b=2")))
		l.SetHighWatermark(l.LogEndOffset())
		if i%10 == 9 {
			if _, err := m.CleanNow(); err != nil {
				t.Fatal(err)
			}
			if _, err := l.DeleteRecordsBefore(int64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	<-done
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	_ = readRecords(t, l)
}

// TestCleanerDeleteLogDuringCleaning deletes a log while it is being
// cleaned: the cleaning stops, the directory goes, nothing is left.
func TestCleanerDeleteLogDuringCleaning(t *testing.T) {
	m := cleanerManager(t, t.TempDir(), nil)
	defer m.Close()
	b := kvBatch(t, record.CompressionGzip, 1, record.BuildOptions{}, kvs("a=1", "b=1"))
	l, _ := m.CreateLog("c", 0, [16]byte{}, compactConfig(2*int64(len(b))))
	for i := 0; i < 150; i++ {
		mustAppend(t, l, kvBatch(t, record.CompressionGzip, 1, record.BuildOptions{}, kvs(fmt.Sprintf("k%d=1", i%50), "b=1")))
	}
	l.SetHighWatermark(l.LogEndOffset())
	errc := make(chan error, 1)
	go func() {
		_, err := m.CleanNow()
		errc <- err
	}()
	time.Sleep(2 * time.Millisecond)
	if err := m.DeleteLog("c", 0); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("CleanNow: %v", err)
	}
	if _, err := os.Stat(l.Dir()); !os.IsNotExist(err) {
		t.Fatalf("log dir still there: %v", err)
	}
}
