package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fillLog appends n batches of 3 records across several segments and
// returns the sizes of the batches.
func fillLog(t *testing.T, l *Log, n int) []int {
	t.Helper()
	var sizes []int
	for i := 0; i < n; i++ {
		b := makeBatch(t, batchSpec{n: 3, valueSize: 40, ts: int64(i)})
		sizes = append(sizes, len(b))
		mustAppend(t, l, b)
	}
	return sizes
}

func activeLogPath(t *testing.T, l *Log) (string, int64) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.mu.segments[len(l.mu.segments)-1]
	return filepath.Join(l.Dir(), segmentName(s.base, logSuffix)), s.base
}

func TestLogRecoverAfterKill(t *testing.T) {
	const batches = 30
	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T, path string, batchSize int)
		wantLEO int64 // log end offset after recovery
	}{
		{"intact", func(*testing.T, string, int) {}, batches * 3},
		{"torn mid batch", func(t *testing.T, p string, bs int) { truncateBy(t, p, int64(bs/2)) }, batches*3 - 3},
		{"torn in header", func(t *testing.T, p string, bs int) { truncateBy(t, p, int64(bs-20)) }, batches*3 - 3},
		{"garbage tail", func(t *testing.T, p string, _ int) { appendFile(t, p, bytes.Repeat([]byte{0xAB}, 100)) }, batches * 3},
		{"zero tail", func(t *testing.T, p string, _ int) { appendFile(t, p, make([]byte, 4096)) }, batches * 3},
		{"crc damage in last batch", func(t *testing.T, p string, _ int) { flipLastByte(t, p) }, batches*3 - 3},
		{"missing indexes", func(t *testing.T, p string, _ int) {
			base := p[:len(p)-len(logSuffix)]
			os.Remove(base + indexSuffix)
			os.Remove(base + timeIndexSuffix)
		}, batches * 3},
		{"garbage index", func(t *testing.T, p string, _ int) {
			base := p[:len(p)-len(logSuffix)]
			os.WriteFile(base+indexSuffix, bytes.Repeat([]byte{0xff}, 24), 0o644)
		}, batches * 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			m := openTestManager(t, dir, nil)
			l, _ := m.CreateLog("t", 0, [16]byte{9}, Config{SegmentBytes: 2048, IndexIntervalBytes: 200})
			sizes := fillLog(t, l, batches)
			path, _ := activeLogPath(t, l)
			m.abandon()
			tc.damage(t, path, sizes[len(sizes)-1])

			m = openTestManager(t, dir, nil)
			defer m.Close()
			l, ok := m.Log("t", 0)
			if !ok {
				t.Fatal("log not opened")
			}
			if l.LogEndOffset() != tc.wantLEO {
				t.Fatalf("log end offset %d, want %d", l.LogEndOffset(), tc.wantLEO)
			}
			hs := readAll(t, l, 0)
			if int64(len(hs))*3 != tc.wantLEO {
				t.Fatalf("read %d batches", len(hs))
			}
			// The log is usable: offsets continue from the recovered end.
			info := mustAppend(t, l, makeBatch(t, batchSpec{n: 1, ts: 999}))
			if info.FirstOffset != tc.wantLEO {
				t.Fatalf("next append at %d", info.FirstOffset)
			}
			if off, _, found, err := l.OffsetForTimestamp(10); err != nil || !found || off != 26 {
				t.Fatalf("OffsetForTimestamp after recovery: %d %v %v", off, found, err)
			}
		})
	}
}

func TestLogRecoverDropsSegmentsAfterTornOne(t *testing.T) {
	dir := t.TempDir()
	m := openTestManager(t, dir, nil)
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: 1024})
	fillLog(t, l, 30)
	l.mu.Lock()
	segs := append([]*segment(nil), l.mu.segments...)
	l.mu.Unlock()
	if len(segs) < 4 {
		t.Fatalf("%d segments", len(segs))
	}
	m.abandon()
	// Tear the second segment: everything after it goes.
	p := filepath.Join(l.Dir(), segmentName(segs[1].base, logSuffix))
	truncateBy(t, p, 10)
	m = openTestManager(t, dir, nil)
	defer m.Close()
	l, _ = m.Log("t", 0)
	l.mu.Lock()
	n := len(l.mu.segments)
	l.mu.Unlock()
	if n != 2 || l.LogEndOffset() >= segs[2].base || l.LogEndOffset() <= segs[1].base {
		t.Fatalf("%d segments, log end offset %d (segment bases %d %d)", n, l.LogEndOffset(), segs[1].base, segs[2].base)
	}
	for _, s := range segs[2:] {
		if _, err := os.Stat(filepath.Join(l.Dir(), segmentName(s.base, logSuffix))); !os.IsNotExist(err) {
			t.Fatalf("segment %d still there: %v", s.base, err)
		}
	}
}

func TestManagerCorruptionBelowRecoveryPointTakesPartitionOffline(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, l *Log, segs []*segment) string // returns the damaged file
	}{
		{"crc in the recovery point's segment", func(t *testing.T, l *Log, segs []*segment) string {
			p := filepath.Join(l.Dir(), segmentName(segs[len(segs)-1].base, logSuffix))
			b, _ := os.ReadFile(p)
			b[100] ^= 0xff
			os.WriteFile(p, b, 0o644)
			return p
		}},
		{"sealed segment cut short", func(t *testing.T, l *Log, segs []*segment) string {
			p := filepath.Join(l.Dir(), segmentName(0, logSuffix))
			truncateBy(t, p, 300)
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			m := openTestManager(t, dir, nil)
			l, _ := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: 1024, IndexIntervalBytes: 100})
			good, _ := m.CreateLog("t", 1, [16]byte{}, Config{})
			fillLog(t, l, 20)
			fillLog(t, good, 5)
			if err := errors.Join(l.Flush(), good.Flush(), m.Checkpoint()); err != nil {
				t.Fatal(err)
			}
			l.mu.Lock()
			segs := append([]*segment(nil), l.mu.segments...)
			l.mu.Unlock()
			m.abandon()
			p := tc.damage(t, l, segs)
			st, _ := os.Stat(p)

			m = openTestManager(t, dir, nil)
			if _, ok := m.Log("t", 0); ok {
				t.Fatal("corrupt log opened")
			}
			if _, err := m.CreateLog("t", 0, [16]byte{}, Config{}); !isErr(err, ErrCorruptLog) {
				t.Fatalf("CreateLog: %v", err)
			}
			if g, ok := m.Log("t", 1); !ok || g.LogEndOffset() != 15 {
				t.Fatal("healthy partition not opened")
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			// Nothing was truncated, and the recovery point survived the restart.
			if st2, _ := os.Stat(p); st2.Size() != st.Size() {
				t.Fatalf("corrupt segment truncated to %d", st2.Size())
			}
			cp, _ := os.ReadFile(filepath.Join(dir, recoveryPointFile))
			if !bytes.Contains(cp, []byte("t 0 60\n")) {
				t.Fatalf("recovery points %q", cp)
			}
			m = openTestManager(t, dir, nil)
			defer m.Close()
			if _, ok := m.Log("t", 0); ok {
				t.Fatal("corrupt log opened on second restart")
			}
			if err := m.DeleteLog("t", 0); err != nil {
				t.Fatal(err)
			}
			if _, err := m.CreateLog("t", 0, [16]byte{}, Config{}); err != nil {
				t.Fatalf("recreate after delete: %v", err)
			}
		})
	}
}

func TestManagerCleanShutdownMarker(t *testing.T) {
	dir := t.TempDir()
	m := openTestManager(t, dir, nil)
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{})
	fillLog(t, l, 3)
	marker := filepath.Join(dir, cleanShutdownFile)
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatal("marker while running")
	}
	m.Close()
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("no marker after Close")
	}
	m = openTestManager(t, dir, nil)
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatal("marker not removed at open")
	}
	l, _ = m.Log("t", 0)
	if l.LogEndOffset() != 9 || l.HighWatermark() != 0 {
		t.Fatalf("leo %d hw %d", l.LogEndOffset(), l.HighWatermark())
	}
	m.Close()
}

func TestManagerSkipsMetadataLogDir(t *testing.T) {
	dir := t.TempDir()
	md := filepath.Join(dir, metadataLogDir)
	os.MkdirAll(md, 0o755)
	os.WriteFile(filepath.Join(md, "00000000000000000000.log"), []byte("not kafka"), 0o644)
	m := openTestManager(t, dir, nil)
	defer m.Close()
	if len(m.Logs()) != 0 {
		t.Fatal("metadata log loaded as a partition")
	}
	if b, _ := os.ReadFile(filepath.Join(md, "00000000000000000000.log")); string(b) != "not kafka" {
		t.Fatal("metadata log touched")
	}
}

func truncateBy(t *testing.T, path string, n int64) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()-n); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(b)
	f.Close()
}

func flipLastByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0xff
	os.WriteFile(path, b, 0o644)
}

func TestManagerDeleteLogRemovesItsDirLater(t *testing.T) {
	dir := t.TempDir()
	clk := newTestClock()
	m := openTestManager(t, dir, func(o *ManagerOptions) {
		o.Now = clk.now
		o.FlushCheckInterval = 10 * time.Millisecond
	})
	defer m.Close()
	l, err := m.CreateLog("t", 0, [16]byte{}, Config{FileDeleteDelayMs: 60_000})
	if err != nil {
		t.Fatal(err)
	}
	fillLog(t, l, 5)
	if err := m.DeleteLog("t", 0); err != nil {
		t.Fatal(err)
	}
	// Gone from the log dir at once, as a "-delete" dir.
	if _, err := os.Stat(filepath.Join(dir, "t-0")); !os.IsNotExist(err) {
		t.Fatalf("t-0 after DeleteLog: %v", err)
	}
	dels := filesWithSuffix(t, dir, deleteDirSuffix)
	if len(dels) != 1 || !strings.HasPrefix(dels[0], "t-0.") {
		t.Fatalf("delete dirs %v, want one for t-0", dels)
	}
	if _, ok := m.Log("t", 0); ok {
		t.Fatal("the deleted log is still served")
	}
	// The partition can be created again meanwhile.
	if _, err := m.CreateLog("t", 0, [16]byte{}, Config{}); err != nil {
		t.Fatalf("recreate while the old dir awaits removal: %v", err)
	}
	// Not before file.delete.delay.ms...
	time.Sleep(100 * time.Millisecond)
	if got := filesWithSuffix(t, dir, deleteDirSuffix); len(got) != 1 {
		t.Fatalf("removed before the delay: %v", got)
	}
	// ...and by the background loop after it.
	clk.advance(61 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for len(filesWithSuffix(t, dir, deleteDirSuffix)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still there 10 s after the delay: %v", filesWithSuffix(t, dir, deleteDirSuffix))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if l2, ok := m.Log("t", 0); !ok || l2.LogEndOffset() != 0 {
		t.Fatal("the new t-0 was touched by the removal")
	}
}

func TestManagerDeleteDirLeftByACrashIsRemovedAfterOpen(t *testing.T) {
	dir := t.TempDir()
	m := openTestManager(t, dir, nil)
	l, err := m.CreateLog("t", 0, [16]byte{}, Config{FileDeleteDelayMs: 60_000})
	if err != nil {
		t.Fatal(err)
	}
	fillLog(t, l, 3)
	if err := m.DeleteLog("t", 0); err != nil {
		t.Fatal(err)
	}
	m.abandon()
	if len(filesWithSuffix(t, dir, deleteDirSuffix)) != 1 {
		t.Fatalf("delete dirs before the restart: %v", filesWithSuffix(t, dir, deleteDirSuffix))
	}
	m = openTestManager(t, dir, func(o *ManagerOptions) { o.FlushCheckInterval = 10 * time.Millisecond })
	defer m.Close()
	// Removed by the storage loop's first round, not by the open.
	deadline := time.Now().Add(10 * time.Second)
	for len(filesWithSuffix(t, dir, deleteDirSuffix)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("delete dirs 10 s after the restart: %v", filesWithSuffix(t, dir, deleteDirSuffix))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := m.Log("t", 0); ok {
		t.Fatal("the deleted partition came back")
	}
}
