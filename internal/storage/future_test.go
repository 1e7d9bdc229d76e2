package storage

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTwoDirManager(t *testing.T, a, b string) *Manager {
	t.Helper()
	return openTestManager(t, a, func(o *ManagerOptions) { o.Dirs = []string{a, b} })
}

// waitMoved polls until l lives in dir (a log dir), at most 10 s.
func waitMoved(t *testing.T, l *Log, dir string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for filepath.Dir(l.Dir()) != filepath.Clean(dir) {
		if time.Now().After(deadline) {
			t.Fatalf("log still in %s, want %s", l.Dir(), dir)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func moveEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestFutureLogMoveUnderLoad(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	m := openTwoDirManager(t, a, b)
	defer m.Close()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 8 << 10 // many segments
	l, err := m.CreateLog("t", 0, [16]byte{1}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(l.Dir()) != filepath.Clean(a) {
		t.Fatalf("log created in %s", l.Dir())
	}
	for i := range 200 {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 3, valueSize: 100, ts: int64(i), pid: 7, seq: int32(3 * i)}))
	}
	l.SetHighWatermark(l.LogEndOffset())
	// Appends and reads go on during the move.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var appendErr error
	var next int32 = 600
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 200; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := l.AppendAsLeader(makeBatch(t, batchSpec{n: 3, valueSize: 100, ts: int64(i), pid: 7, seq: next}), 1); err != nil {
				appendErr = err
				return
			}
			next += 3
			l.SetHighWatermark(l.LogEndOffset())
			time.Sleep(200 * time.Microsecond)
		}
	}()
	if err := m.AlterLogDir("t", 0, b); err != nil {
		t.Fatal(err)
	}
	waitMoved(t, l, b)
	// Keep appending into the moved log for a moment.
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	if appendErr != nil {
		t.Fatalf("append during move: %v", appendErr)
	}
	hs := readAll(t, l, 0)
	var want int64
	for _, h := range hs {
		if h.BaseOffset != want {
			t.Fatalf("batch at %d, want %d", h.BaseOffset, want)
		}
		want = h.NextOffset()
	}
	if want != l.LogEndOffset() || want < 600 {
		t.Fatalf("read to %d, log end %d", want, l.LogEndOffset())
	}
	if got := moveEntries(t, a); len(got) != 0 {
		t.Fatalf("source log dir still holds %v", got)
	}
	if got := moveEntries(t, b); len(got) != 1 || got[0] != "t-0" {
		t.Fatalf("destination log dir holds %v", got)
	}
	if len(m.Futures()) != 0 {
		t.Fatalf("futures left: %+v", m.Futures())
	}
	// The producer state moved too: the next sequence is accepted, a
	// retry of the last batch is a duplicate.
	info := mustAppend(t, l, makeBatch(t, batchSpec{n: 3, valueSize: 100, pid: 7, seq: next}))
	if info.Duplicate {
		t.Fatal("fresh batch taken for a duplicate")
	}
	leo := l.LogEndOffset()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := openTwoDirManager(t, a, b)
	defer m2.Close()
	l2, ok := m2.Log("t", 0)
	if !ok {
		t.Fatal("log lost across restart")
	}
	if filepath.Dir(l2.Dir()) != filepath.Clean(b) || l2.LogEndOffset() != leo {
		t.Fatalf("after restart: dir %s leo %d, want %s %d", l2.Dir(), l2.LogEndOffset(), b, leo)
	}
	if n := len(readAll(t, l2, 0)); n != len(hs)+1 {
		t.Fatalf("after restart %d batches, want %d", n, len(hs)+1)
	}
}

func TestFutureLogAlterErrors(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	m := openTwoDirManager(t, a, b)
	defer m.Close()
	l, err := m.CreateLog("t", 0, [16]byte{1}, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AlterLogDir("t", 0, t.TempDir()); !errors.Is(err, ErrLogDirNotFound) {
		t.Fatalf("unknown dir: %v", err)
	}
	if err := m.AlterLogDir("t", 0, a); err != nil || len(m.Futures()) != 0 {
		t.Fatalf("move to its own dir: %v, futures %v", err, m.Futures())
	}
	// Unknown partition: REPLICA_NOT_AVAILABLE, and the dir is remembered.
	if err := m.AlterLogDir("t", 1, b); !errors.Is(err, ErrLogNotFound) {
		t.Fatalf("unknown partition: %v", err)
	}
	// Fill dir b so the next log would go to a without the preference.
	if _, err := m.CreateLog("t", 1, [16]byte{1}, DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	l1, _ := m.Log("t", 1)
	if filepath.Dir(l1.Dir()) != filepath.Clean(b) {
		t.Fatalf("preferred dir ignored: %s", l1.Dir())
	}
	// A move cancelled by a move back.
	m.copierPaused.Store(true)
	mustAppend(t, l, makeBatch(t, batchSpec{n: 1}))
	if err := m.AlterLogDir("t", 0, b); err != nil {
		t.Fatal(err)
	}
	fs := m.Futures()
	if len(fs) != 1 || fs[0].OffsetLag != 1 || fs[0].Dir != filepath.Clean(b) {
		t.Fatalf("futures: %+v", fs)
	}
	if err := m.AlterLogDir("t", 0, a); err != nil {
		t.Fatal(err)
	}
	if len(m.Futures()) != 0 {
		t.Fatal("move not cancelled")
	}
	for _, n := range moveEntries(t, b) {
		if strings.HasSuffix(n, futureDirSuffix) {
			t.Fatalf("future dir left: %s", n)
		}
	}
	// DeleteLog cancels a move.
	if err := m.AlterLogDir("t", 0, b); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteLog("t", 0); err != nil {
		t.Fatal(err)
	}
	if got := moveEntries(t, b); len(got) != 1 {
		t.Fatalf("after delete, dir b holds %v", got)
	}
}

// TestFutureLogCrashMidCopy stops the node while a copy is half done: the
// source is untouched and the move resumes at the next open.
func TestFutureLogCrashMidCopy(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	m := openTwoDirManager(t, a, b)
	cfg := DefaultConfig()
	cfg.SegmentBytes = 4 << 10
	l, err := m.CreateLog("t", 0, [16]byte{1}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 200}))
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	leo := l.LogEndOffset()
	m.copierPaused.Store(true)
	if err := m.AlterLogDir("t", 0, b); err != nil {
		t.Fatal(err)
	}
	f := m.mu.futures[TopicPartition{"t", 0}]
	if n, err := m.copyChunk(l, f.log, 10<<10); err != nil || n == 0 {
		t.Fatalf("copy: %d %v", n, err)
	}
	if got := f.log.LogEndOffset(); got == 0 || got >= leo {
		t.Fatalf("future at %d of %d", got, leo)
	}
	m.abandon()

	m2 := openTwoDirManager(t, a, b)
	defer m2.Close()
	l2, ok := m2.Log("t", 0)
	if !ok || l2.LogEndOffset() != leo {
		t.Fatalf("source after crash: ok %v", ok)
	}
	waitMoved(t, l2, b)
	if got := len(readAll(t, l2, 0)); got != 100 {
		t.Fatalf("%d batches after the resumed move", got)
	}
}

// TestFutureLogCrashBetweenRenames stops the node after the current dir
// was renamed aside and before the future took its name: the next open
// finishes the swap.
func TestFutureLogCrashBetweenRenames(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	m := openTwoDirManager(t, a, b)
	l, err := m.CreateLog("t", 0, [16]byte{1}, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 50}))
	}
	l.SetHighWatermark(l.LogEndOffset())
	if err := m.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	leo := l.LogEndOffset()
	m.copierPaused.Store(true)
	if err := m.AlterLogDir("t", 0, b); err != nil {
		t.Fatal(err)
	}
	f := m.mu.futures[TopicPartition{"t", 0}]
	for {
		n, err := m.copyChunk(l, f.log, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if err := f.log.close(); err != nil {
		t.Fatal(err)
	}
	f.log = nil
	m.abandon()
	src := filepath.Join(a, "t-0")
	if err := os.Rename(src, filepath.Join(a, deleteDirName(TopicPartition{"t", 0}, f.id))); err != nil {
		t.Fatal(err)
	}

	m2 := openTwoDirManager(t, a, b)
	defer m2.Close()
	l2, ok := m2.Log("t", 0)
	if !ok {
		t.Fatal("log lost")
	}
	if filepath.Dir(l2.Dir()) != filepath.Clean(b) || l2.LogEndOffset() != leo || l2.HighWatermark() != leo {
		t.Fatalf("dir %s leo %d hw %d, want %s %d", l2.Dir(), l2.LogEndOffset(), l2.HighWatermark(), b, leo)
	}
	// The old dir goes at the storage loop's first round.
	for deadline := time.Now().Add(10 * time.Second); len(moveEntries(t, a)) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("dir a holds %v", moveEntries(t, a))
		}
	}
	if got := len(readAll(t, l2, 0)); got != 50 {
		t.Fatalf("%d batches", got)
	}
}

// TestFutureLogFollowsTruncation: the current log is truncated (a
// follower after a leader change) while the future copies it.
func TestFutureLogFollowsTruncation(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	m := openTwoDirManager(t, a, b)
	defer m.Close()
	l, err := m.CreateLog("t", 0, [16]byte{1}, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.AssignEpochStartOffset(1, 0); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := l.AppendAsLeader(makeBatch(t, batchSpec{n: 1}), 1); err != nil {
			t.Fatal(err)
		}
	}
	m.copierPaused.Store(true)
	if err := m.AlterLogDir("t", 0, b); err != nil {
		t.Fatal(err)
	}
	f := m.mu.futures[TopicPartition{"t", 0}]
	if _, err := m.copyChunk(l, f.log, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(10); err != nil {
		t.Fatal(err)
	}
	if err := l.AssignEpochStartOffset(2, 10); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := l.AppendAsLeader(makeBatch(t, batchSpec{n: 1}), 2); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.copyChunk(l, f.log, 1<<20); err != nil {
		t.Fatal(err)
	}
	if f.log.LogEndOffset() != 15 || f.log.LatestEpoch() != 2 {
		t.Fatalf("future leo %d epoch %d", f.log.LogEndOffset(), f.log.LatestEpoch())
	}
	m.copierPaused.Store(false)
	m.wakeCopier()
	waitMoved(t, l, b)
	hs := readAll(t, l, 0)
	if len(hs) != 15 || hs[14].PartitionLeaderEpoch != 2 || hs[9].PartitionLeaderEpoch != 1 {
		t.Fatalf("moved log: %d batches", len(hs))
	}
}

func TestParseMoveDir(t *testing.T) {
	id := strings.Repeat("ab", 16)
	for _, c := range []struct {
		name, suffix string
		ok           bool
		tp           TopicPartition
	}{
		{"my-topic-3." + id + "-future", futureDirSuffix, true, TopicPartition{"my-topic", 3}},
		{"t.x-0." + id + "-delete", deleteDirSuffix, true, TopicPartition{"t.x", 0}},
		{"t-0." + id + "-future", deleteDirSuffix, false, TopicPartition{}},
		{"t-0.abc-future", futureDirSuffix, false, TopicPartition{}},
		{"t-x." + id + "-future", futureDirSuffix, false, TopicPartition{}},
		{"." + id + "-future", futureDirSuffix, false, TopicPartition{}},
		{"t-0." + strings.Repeat("zz", 16) + "-future", futureDirSuffix, false, TopicPartition{}},
	} {
		tp, gotID, ok := parseMoveDir(c.name, c.suffix)
		if ok != c.ok || (ok && (tp != c.tp || gotID != id)) {
			t.Errorf("%s: %v %v %q", c.name, ok, tp, gotID)
		}
	}
}

func FuzzParseMoveDir(f *testing.F) {
	f.Add("t-0." + strings.Repeat("ab", 16) + "-future")
	f.Add("a-b-1.-delete")
	f.Fuzz(func(t *testing.T, name string) {
		for _, suf := range []string{futureDirSuffix, deleteDirSuffix} {
			tp, id, ok := parseMoveDir(name, suf)
			if ok && (len(id) != 32 || tp.Partition < 0 || tp.Topic == "" || !strings.HasSuffix(futureOrDelete(tp, id, suf), id+suf)) {
				t.Fatalf("%q parsed as %v %q", name, tp, id)
			}
		}
	})
}

func futureOrDelete(tp TopicPartition, id, suf string) string {
	if suf == futureDirSuffix {
		return futureDirName(tp, id)
	}
	return deleteDirName(tp, id)
}
