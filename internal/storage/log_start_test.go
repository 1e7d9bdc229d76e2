package storage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLogTruncateFullyAndStartAt(t *testing.T) {
	ends := func() []int64 {
		m := openHistManager(t, t.TempDir())
		defer m.Close()
		return applyHistory(t, createHistLog(t, m, "scratch"), history())
	}()
	leo := ends[len(ends)-1]
	cases := []struct {
		name   string
		offset func(segBases []int64) int64
	}{
		{"past the log end (a follower behind the leader's start)", func([]int64) int64 { return leo + 1000 }},
		{"at the log end", func([]int64) int64 { return leo }},
		{"inside the log", func([]int64) int64 { return leo / 2 }},
		{"at a segment's base: its name is reused", func(b []int64) int64 { return b[1] }},
		{"zero: the first segment's name", func([]int64) int64 { return 0 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			m := openHistManager(t, dir)
			l := createHistLog(t, m, "a")
			applyHistory(t, l, history())
			l.SetHighWatermark(l.LogEndOffset())
			if err := m.Checkpoint(); err != nil { // producer snapshots on disk
				t.Fatal(err)
			}
			l.mu.Lock()
			var bases []int64
			for _, s := range l.mu.segments {
				bases = append(bases, s.base)
			}
			l.mu.Unlock()
			off := c.offset(bases)
			// A reader holding the old segments while they go.
			l.mu.Lock()
			held := append([]*segment{}, l.mu.segments...)
			for _, s := range held {
				s.acquire()
			}
			l.mu.Unlock()
			ch := l.Changed()
			if err := l.TruncateFullyAndStartAt(off); err != nil {
				t.Fatal(err)
			}
			select {
			case <-ch:
			default:
				t.Fatal("Changed not fired")
			}
			for _, s := range held {
				f, err := s.file()
				if err != nil {
					t.Fatalf("held segment %d: %v", s.base, err)
				}
				if _, err := f.ReadAt(make([]byte, 10), 0); err != nil {
					t.Fatalf("held segment %d unreadable: %v", s.base, err)
				}
				s.release()
			}
			check := func(l *Log, when string) {
				t.Helper()
				if l.LogEndOffset() != off || l.LogStartOffset() != off || l.HighWatermark() != off || l.RecoveryPoint() != off {
					t.Fatalf("%s: leo %d start %d hw %d rp %d, want all %d", when, l.LogEndOffset(), l.LogStartOffset(), l.HighWatermark(), l.RecoveryPoint(), off)
				}
				if l.LatestEpoch() != -1 {
					t.Fatalf("%s: epochs %v", when, l.mu.epochs)
				}
				if e, o := l.EndOffsetForEpoch(0); e != -1 || o != -1 {
					t.Fatalf("%s: end offset for epoch 0: (%d, %d)", when, e, o)
				}
				if len(l.OngoingTransactions()) != 0 || len(l.AbortedTransactions(0, off+1)) != 0 || l.LastStableOffset() != off {
					t.Fatalf("%s: transactions left", when)
				}
				l.appendMu.Lock()
				np := len(l.producers.entries)
				l.appendMu.Unlock()
				if np != 0 {
					t.Fatalf("%s: %d producers left", when, np)
				}
				st := stateOf(t, l)
				if len(st.Segments) != 1 || st.Segments[0].Base != off || st.Segments[0].Size != 0 {
					t.Fatalf("%s: segments %+v", when, st.Segments)
				}
				if b, err := l.Read(off, 100, off+10, true); err != nil || len(b) != 0 {
					t.Fatalf("%s: read at start: %d bytes, %v", when, len(b), err)
				}
				if off > 0 {
					if _, err := l.Read(off-1, 100, off+10, true); !errors.Is(err, ErrOffsetOutOfRange) {
						t.Fatalf("%s: read below start: %v", when, err)
					}
				}
			}
			check(l, "after")
			snaps, _ := filepath.Glob(filepath.Join(l.Dir(), "*.snapshot"))
			if len(snaps) != 0 {
				t.Fatalf("producer snapshots left: %v", snaps)
			}
			if b, err := os.ReadFile(filepath.Join(l.Dir(), leaderEpochFile)); err != nil || string(b) != "0\n0\n" {
				t.Fatalf("leader-epoch-checkpoint %q, %v", b, err)
			}
			// Restart, clean and after kill -9.
			m, l = reopenHist(t, m, dir, "a")
			check(l, "after restart")
			m.abandon()
			m = openHistManager(t, dir)
			defer m.Close()
			l, _ = m.Log("a", 0)
			check(l, "after kill -9")
			// The log takes a follower's batches from there.
			info := mustAppend(t, l, makeBatch(t, batchSpec{n: 2}))
			if info.FirstOffset != off {
				t.Fatalf("append at %d, want %d", info.FirstOffset, off)
			}
		})
	}
}

func TestLogMaybeIncrementLogStartOffset(t *testing.T) {
	dir := t.TempDir()
	m := openHistManager(t, dir)
	l := createHistLog(t, m, "a")
	ends := applyHistory(t, l, history())
	leo := ends[len(ends)-1]
	l.SetHighWatermark(ends[10])
	l.mu.Lock()
	nseg := len(l.mu.segments)
	second := l.mu.segments[1].base
	l.mu.Unlock()
	steps := []struct {
		name      string
		offset    int64
		wantErr   error
		wantStart int64
	}{
		{"below the current start: no-op", 0, nil, 0},
		{"forward, below the high watermark", 3, nil, 3},
		{"backwards: no-op", 2, nil, 3},
		{"past the high watermark, up to the log end (follower)", second + 1, nil, second + 1},
		{"past the log end", leo + 1, ErrOffsetOutOfRange, second + 1},
		{"negative", -1, ErrOffsetOutOfRange, second + 1},
	}
	for _, s := range steps {
		err := l.MaybeIncrementLogStartOffset(s.offset)
		if !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: err %v, want %v", s.name, err, s.wantErr)
		}
		if got := l.LogStartOffset(); got != s.wantStart {
			t.Fatalf("%s: log start %d, want %d", s.name, got, s.wantStart)
		}
		if hw := l.HighWatermark(); hw < l.LogStartOffset() {
			t.Fatalf("%s: high watermark %d below the log start", s.name, hw)
		}
	}
	l.mu.Lock()
	left := len(l.mu.segments)
	first := l.mu.epochs[0]
	l.mu.Unlock()
	if left != nseg-1 {
		t.Fatalf("%d segments left, want %d (the first deleted)", left, nseg-1)
	}
	if first.startOffset != second+1 {
		t.Fatalf("first epoch entry %+v, want start %d", first, second+1)
	}
	m.abandon() // the start was checkpointed before returning
	m = openHistManager(t, dir)
	defer m.Close()
	l, _ = m.Log("a", 0)
	if l.LogStartOffset() != second+1 {
		t.Fatalf("after kill -9: log start %d, want %d", l.LogStartOffset(), second+1)
	}
}
