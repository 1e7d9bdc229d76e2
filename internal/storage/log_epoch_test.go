package storage

import (
	"testing"
)

// epochLog creates a log whose epochs 2@0, 4@10 and 7@25 cover data up
// to offset 30 (one record per batch).
func epochLog(t *testing.T, dir string) (*Manager, *Log) {
	t.Helper()
	m := openTestManager(t, dir, nil)
	l, err := m.CreateLog("ep", 0, [16]byte{9}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		epoch int32
		until int64
	}{{2, 10}, {4, 25}, {7, 30}} {
		if err := l.AssignEpochStartOffset(step.epoch, l.LogEndOffset()); err != nil {
			t.Fatal(err)
		}
		for l.LogEndOffset() < step.until {
			if _, err := l.AppendAsLeader(makeBatch(t, batchSpec{ts: 1000}), step.epoch); err != nil {
				t.Fatal(err)
			}
		}
	}
	return m, l
}

func TestLogEndOffsetForEpoch(t *testing.T) {
	dir := t.TempDir()
	m, l := epochLog(t, dir)
	cases := []struct {
		name      string
		epoch     int32
		wantEpoch int32
		wantEnd   int64
	}{
		{"undefined epoch", -1, -1, -1},
		{"below the first epoch: requested epoch, first start", 1, 1, 0},
		{"below the first epoch: zero", 0, 0, 0},
		{"first epoch", 2, 2, 10},
		{"between first and second", 3, 2, 10},
		{"second epoch", 4, 4, 25},
		{"between second and latest", 6, 4, 25},
		{"latest epoch: log end offset", 7, 7, 30},
		{"above the latest", 8, -1, -1},
		{"far above the latest", 1 << 30, -1, -1},
	}
	check := func(l *Log, when string) {
		t.Helper()
		for _, c := range cases {
			e, off := l.EndOffsetForEpoch(c.epoch)
			if e != c.wantEpoch || off != c.wantEnd {
				t.Errorf("%s: %s: EndOffsetForEpoch(%d) = (%d, %d), want (%d, %d)", when, c.name, c.epoch, e, off, c.wantEpoch, c.wantEnd)
			}
		}
	}
	check(l, "before restart")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = openTestManager(t, dir, nil)
	defer m.Close()
	l2, ok := m.Log("ep", 0)
	if !ok {
		t.Fatal("log not loaded")
	}
	check(l2, "after restart")
}

func TestLogEndOffsetForEpochEmptyCache(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, err := m.CreateLog("ep", 0, [16]byte{9}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, makeBatch(t, batchSpec{n: 3}))
	for _, epoch := range []int32{-1, 0, 5} {
		if e, off := l.EndOffsetForEpoch(epoch); e != -1 || off != -1 {
			t.Errorf("empty cache: EndOffsetForEpoch(%d) = (%d, %d), want (-1, -1)", epoch, e, off)
		}
	}
}

// TestEndOffsetFor covers the pure function on caches the log cannot
// easily produce (a single entry, a cache starting above zero).
func TestEndOffsetFor(t *testing.T) {
	es := []epochEntry{{5, 100}}
	cases := []struct {
		epoch   int32
		wantE   int32
		wantEnd int64
	}{{4, 4, 100}, {5, 5, 150}, {6, -1, -1}, {-1, -1, -1}, {-2, -2, 100}}
	for _, c := range cases {
		if e, off := endOffsetFor(es, c.epoch, 150); e != c.wantE || off != c.wantEnd {
			t.Errorf("endOffsetFor(%v, %d) = (%d, %d), want (%d, %d)", es, c.epoch, e, off, c.wantE, c.wantEnd)
		}
	}
}
