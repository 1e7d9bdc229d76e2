package storage

import (
	"testing"
	"time"
)

func segmentCount(l *Log) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.mu.segments)
}

// TestLogSegmentJitter: with segment.jitter.ms each segment rolls once it
// is segment.ms minus its own random jitter old (Kafka's
// LogConfig.randomSegmentJitter, drawn per segment in
// [0, min(segment.jitter.ms, segment.ms))). Of 60 logs created together,
// about half roll at half segment.ms, all at segment.ms; without jitter
// none rolls before segment.ms.
func TestLogSegmentJitter(t *testing.T) {
	clock := newTestClock()
	m := openTestManager(t, t.TempDir(), func(o *ManagerOptions) { o.Now = clock.now })
	defer m.Close()
	const n = 60
	var jittered, plain []*Log
	for i := 0; i < n; i++ {
		l, err := m.CreateLog("jitter", int32(i), [16]byte{}, Config{SegmentMs: 10_000, SegmentJitterMs: 60_000})
		if err != nil {
			t.Fatal(err)
		}
		jittered = append(jittered, l)
		p, err := m.CreateLog("plain", int32(i), [16]byte{}, Config{SegmentMs: 10_000})
		if err != nil {
			t.Fatal(err)
		}
		plain = append(plain, p)
	}
	appendAll := func(ls []*Log) {
		for _, l := range ls {
			mustAppend(t, l, makeBatch(t, batchSpec{n: 1}))
		}
	}
	rolled := func(ls []*Log) int {
		k := 0
		for _, l := range ls {
			if segmentCount(l) > 1 {
				k++
			}
		}
		return k
	}
	appendAll(jittered)
	appendAll(plain)
	clock.advance(5 * time.Second)
	appendAll(jittered)
	appendAll(plain)
	// The jitter is capped by segment.ms (10 s): uniform in [0, 10 s), so
	// a segment rolls at 5 s with probability 1/2.
	if k := rolled(jittered); k < 10 || k > 50 {
		t.Fatalf("%d of %d jittered logs rolled at half segment.ms; want about half", k, n)
	}
	if k := rolled(plain); k != 0 {
		t.Fatalf("%d logs without jitter rolled before segment.ms", k)
	}
	clock.advance(5 * time.Second)
	appendAll(jittered)
	appendAll(plain)
	if k := rolled(jittered); k != n {
		t.Fatalf("%d of %d jittered logs rolled at segment.ms", k, n)
	}
	if k := rolled(plain); k != n {
		t.Fatalf("%d of %d logs rolled at segment.ms", k, n)
	}
	// Every new segment draws its own jitter.
	seen := map[time.Duration]bool{}
	for _, l := range jittered {
		l.mu.Lock()
		for _, s := range l.mu.segments {
			if s.jitter < 0 || s.jitter >= 10*time.Second {
				t.Errorf("jitter %v outside [0, segment.ms)", s.jitter)
			}
			seen[s.jitter] = true
		}
		l.mu.Unlock()
	}
	if len(seen) < n {
		t.Fatalf("only %d distinct jitters over %d logs", len(seen), n)
	}
}
