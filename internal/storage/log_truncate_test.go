package storage

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// prefixFor returns how many ops of a history with ends survive a
// truncation to offset, and the log end offset after it.
func prefixFor(ends []int64, offset int64) (int, int64) {
	n, leo := 0, int64(0)
	for i, e := range ends {
		if e <= offset {
			n, leo = i+1, e
		}
	}
	return n, leo
}

// dropEmptyTail removes a trailing empty segment starting at the log
// end (kept by a truncation to a segment's base, as Kafka keeps it).
func dropEmptyTail(t *testing.T, st logState) logState {
	t.Helper()
	if n := len(st.Segments); n > 1 {
		if last := st.Segments[n-1]; last.Base == st.LEO && last.Size == 0 {
			st.Segments = st.Segments[:n-1]
		}
	}
	return st
}

func TestLogTruncateTo(t *testing.T) {
	ops := history()
	// Offsets of the script (computed once on a scratch log).
	m0 := openHistManager(t, t.TempDir())
	l0 := createHistLog(t, m0, "scratch")
	ends := applyHistory(t, l0, ops)
	l0.mu.Lock()
	secondSeg := l0.mu.segments[2].base
	l0.mu.Unlock()
	m0.Close()
	leo := ends[len(ends)-1]
	firstEpoch1, lastTxnOpen := int64(-1), int64(-1)
	midBatch := int64(-1)
	for i, op := range ops {
		if op.epoch == 1 && firstEpoch1 < 0 {
			firstEpoch1 = ends[i-1]
		}
		if op.kind == histTxnData && i+1 < len(ops) && ops[i+1].kind == histAbort && op.epoch == 0 {
			lastTxnOpen = ends[i] // between the aborted txn's data and its marker
		}
		if op.n >= 3 && midBatch < 0 && i > 10 {
			midBatch = ends[i-1] + 1
		}
	}
	cases := []struct {
		name   string
		offset int64
	}{
		{"zero", 0},
		{"inside the first segment", 3},
		{"segment base", secondSeg},
		{"inside a batch: the whole batch goes", midBatch},
		{"epoch boundary: the next epoch's entry goes", firstEpoch1},
		{"before an abort marker: the transaction is open again", lastTxnOpen},
		{"last batch boundary", ends[len(ends)-2]},
		{"log end offset: no change", leo},
		{"past the log end offset: no change", leo + 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			m := openHistManager(t, dir)
			l := createHistLog(t, m, "a")
			applyHistory(t, l, ops)
			l.SetHighWatermark(l.LogEndOffset())
			if err := l.TruncateTo(c.offset); err != nil {
				t.Fatal(err)
			}
			n, wantLEO := prefixFor(ends, c.offset)
			if got := l.LogEndOffset(); got != wantLEO {
				t.Fatalf("log end offset %d, want %d", got, wantLEO)
			}
			if hw := l.HighWatermark(); hw != min(wantLEO, leo) {
				t.Fatalf("high watermark %d, want %d", hw, wantLEO)
			}
			if rp := l.RecoveryPoint(); rp > wantLEO {
				t.Fatalf("recovery point %d past the log end %d", rp, wantLEO)
			}
			for _, e := range l.mu.epochs {
				if e.startOffset >= wantLEO && wantLEO < leo {
					t.Fatalf("epoch entry %+v at or past the new end %d", e, wantLEO)
				}
			}
			ref := createHistLog(t, m, "ref")
			applyHistory(t, ref, ops[:n])
			diffStates(t, "after truncation", dropEmptyTail(t, stateOf(t, l)), stateOf(t, ref))
			if got, want := l.AbortedTransactions(0, wantLEO+1), ref.AbortedTransactions(0, wantLEO+1); len(got)+len(want) > 0 && !equalAborted(got, want) {
				t.Fatalf("aborted transactions %v, want %v", got, want)
			}
			if got, want := l.OngoingTransactions(), ref.OngoingTransactions(); !equalOngoing(got, want) {
				t.Fatalf("ongoing transactions %v, want %v", got, want)
			}
			// Every record kept reads back; nothing past the end does.
			if hs := readAll(t, l, 0); len(hs) != n {
				t.Fatalf("read %d batches, want %d", len(hs), n)
			}
			if _, err := l.Read(wantLEO+1, 1000, wantLEO+10, true); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("read past the end: %v", err)
			}
			// Restart: the same state comes back.
			m, l = reopenHist(t, m, dir, "a")
			defer m.Close()
			ref, _ = m.Log("ref", 0)
			diffStates(t, "after restart", dropEmptyTail(t, stateOf(t, l)), stateOf(t, ref))
			if l.HighWatermark() > wantLEO {
				t.Fatalf("high watermark %d after restart", l.HighWatermark())
			}
			// The log takes appends at its new end.
			info := mustAppend(t, l, makeBatch(t, batchSpec{n: 2, ts: 99_999}))
			if info.FirstOffset != wantLEO {
				t.Fatalf("append after truncation at %d, want %d", info.FirstOffset, wantLEO)
			}
		})
	}
}

func equalAborted(a, b []AbortedTxn) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalOngoing(a, b []OngoingTxn) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLogTruncateToDeletesSegmentsLikeRetention: dropped segments are
// renamed *.deleted and removed after file.delete.delay.ms; the cut
// segment keeps its name.
func TestLogTruncateToDeletesSegmentsLikeRetention(t *testing.T) {
	dir := t.TempDir()
	m := openHistManager(t, dir)
	defer m.Close()
	l := createHistLog(t, m, "a")
	applyHistory(t, l, history())
	l.mu.Lock()
	nseg := len(l.mu.segments)
	cutBase := l.mu.segments[1].base
	l.mu.Unlock()
	if err := l.TruncateTo(cutBase + 1); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(l.Dir())
	deleted, logs := 0, 0
	for _, e := range ents {
		switch {
		case strings.HasSuffix(e.Name(), ".log.deleted"):
			deleted++
		case strings.HasSuffix(e.Name(), ".log"):
			logs++
		}
	}
	if logs != 2 || deleted != nseg-2 {
		t.Fatalf("%d .log and %d .log.deleted files, want 2 and %d", logs, deleted, nseg-2)
	}
	m.purgeDeleted(histClock, true)
	if ms, _ := filepath.Glob(filepath.Join(l.Dir(), "*.deleted")); len(ms) != 0 {
		t.Fatalf("left after the delay: %v", ms)
	}
}

func TestLogTruncateToBelowFirstSegment(t *testing.T) {
	dir := t.TempDir()
	m := openHistManager(t, dir)
	l := createHistLog(t, m, "a")
	applyHistory(t, l, history())
	l.SetHighWatermark(l.LogEndOffset())
	l.mu.Lock()
	second := l.mu.segments[1].base
	l.mu.Unlock()
	if _, err := l.DeleteRecordsBefore(second + 2); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(second - 5); err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != second-5 || l.LogStartOffset() != second-5 || l.HighWatermark() != second-5 || l.LatestEpoch() != -1 {
		t.Fatalf("leo %d start %d hw %d epoch %d, want all at %d and no epoch", l.LogEndOffset(), l.LogStartOffset(), l.HighWatermark(), l.LatestEpoch(), second-5)
	}
	m, l = reopenHist(t, m, dir, "a")
	defer m.Close()
	if l.LogEndOffset() != second-5 || l.LogStartOffset() != second-5 {
		t.Fatalf("after restart: leo %d start %d", l.LogEndOffset(), l.LogStartOffset())
	}
}

// TestLogTruncateToAtEndDropsDanglingEpoch: a leader that assigned an
// epoch and appended nothing loses it when truncating at its log end
// (Kafka's truncateTo with targetOffset >= logEndOffset).
func TestLogTruncateToAtEndDropsDanglingEpoch(t *testing.T) {
	dir := t.TempDir()
	m := openHistManager(t, dir)
	l := createHistLog(t, m, "a")
	applyHistory(t, l, history()[:5])
	leo := l.LogEndOffset()
	if err := l.AssignEpochStartOffset(9, leo); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(leo + 3); err != nil {
		t.Fatal(err)
	}
	if l.LatestEpoch() != 0 || l.LogEndOffset() != leo {
		t.Fatalf("latest epoch %d leo %d, want 0 and %d", l.LatestEpoch(), l.LogEndOffset(), leo)
	}
	m, l = reopenHist(t, m, dir, "a")
	defer m.Close()
	if l.LatestEpoch() != 0 {
		t.Fatalf("after restart: latest epoch %d", l.LatestEpoch())
	}
}

func TestLogTruncateToUncleanRestart(t *testing.T) {
	dir := t.TempDir()
	m := openHistManager(t, dir)
	l := createHistLog(t, m, "a")
	ops := history()
	ends := applyHistory(t, l, ops)
	cut := ends[len(ends)/2]
	if err := l.TruncateTo(cut); err != nil {
		t.Fatal(err)
	}
	// Appends after the truncation, then kill -9.
	mustAppend(t, l, makeBatch(t, batchSpec{n: 3, ts: 50_000}))
	want := stateOf(t, l)
	m.abandon()
	m = openHistManager(t, dir)
	defer m.Close()
	l, _ = m.Log("a", 0)
	got := stateOf(t, l)
	if got.LEO != want.LEO || len(got.Segments) != len(want.Segments) || !equalEpochs(got.Epochs, want.Epochs) {
		t.Fatalf("after kill: leo %d, %d segments, epochs %v; want %d, %d, %v", got.LEO, len(got.Segments), got.Epochs, want.LEO, len(want.Segments), want.Epochs)
	}
	for i := range got.Segments {
		if string(got.Segments[i].LogBytes) != string(want.Segments[i].LogBytes) {
			t.Fatalf("segment %d differs after kill", i)
		}
	}
}

func equalEpochs(a, b []epochEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLogTruncateConcurrentReaders: readers racing truncations and
// re-appends never see an error other than out of range, and the log
// stays online.
func TestLogTruncateConcurrentReaders(t *testing.T) {
	dir := t.TempDir()
	m := openHistManager(t, dir)
	defer m.Close()
	l := createHistLog(t, m, "a")
	ops := history()
	applyHistory(t, l, ops)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads atomic.Int64
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			for i := int64(r); !stop.Load(); i += 7 {
				leo := l.LogEndOffset()
				if leo == 0 {
					continue
				}
				off := i % leo
				if _, err := l.Read(off, 1<<16, leo, true); err != nil && !errors.Is(err, ErrOffsetOutOfRange) {
					t.Errorf("read %d: %v", off, err)
					return
				}
				if _, _, _, err := l.OffsetForTimestamp(10_000 + off*5); err != nil {
					t.Errorf("offset for timestamp: %v", err)
					return
				}
				reads.Add(1)
			}
		}(r)
	}
	for round := 0; round < 30; round++ {
		leo := l.LogEndOffset()
		if err := l.TruncateTo(leo / 2); err != nil {
			t.Fatal(err)
		}
		for l.LogEndOffset() < leo {
			if _, err := l.AppendAsLeader(makeBatch(t, batchSpec{n: 3, valueSize: 40, ts: 20_000}), 5); err != nil {
				t.Fatal(err)
			}
		}
		if round%10 == 9 {
			if err := l.TruncateFullyAndStartAt(l.LogEndOffset() - 4); err != nil {
				t.Fatal(err)
			}
			mustAppend(t, l, makeBatch(t, batchSpec{n: 2}))
		}
	}
	stop.Store(true)
	wg.Wait()
	if l.Offline() {
		t.Fatal("log offline")
	}
	if reads.Load() == 0 {
		t.Fatal("no reads")
	}
}
