package storage

import (
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeMoveClock is a clock that only the throttle's waits move: after(d)
// advances it by d and fires at once, and calls observe first.
type fakeMoveClock struct {
	mu      sync.Mutex
	cur     time.Time
	observe func(elapsed time.Duration) // called by after, before advancing; may be nil
	start   time.Time
}

func newFakeMoveClock() *fakeMoveClock {
	t0 := time.Unix(1_000_000, 0)
	return &fakeMoveClock{cur: t0, start: t0}
}

func (c *fakeMoveClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

func (c *fakeMoveClock) elapsed() time.Duration { return c.now().Sub(c.start) }

func (c *fakeMoveClock) after(d time.Duration) <-chan time.Time {
	if c.observe != nil {
		c.observe(c.elapsed())
	}
	c.mu.Lock()
	c.cur = c.cur.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.cur
	c.mu.Unlock()
	return ch
}

// fillMoveLog creates t-0 in dir a with about size bytes of 3-record
// batches of 1000-byte values, returns it.
func fillMoveLog(t *testing.T, m *Manager, size int64) *Log {
	t.Helper()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 64 << 10
	l, err := m.CreateLog("t", 0, [16]byte{1}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; l.Size() < size; i++ {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 3, valueSize: 1000, ts: int64(i), pid: 7, seq: int32(3 * i)}))
	}
	l.SetHighWatermark(l.LogEndOffset())
	return l
}

// waitMovedWithin is waitMoved with a longer bound (a throttled move).
func waitMovedWithin(t *testing.T, l *Log, dir string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for filepath.Dir(l.Dir()) != filepath.Clean(dir) {
		if time.Now().After(deadline) {
			t.Fatalf("log still in %s after %v, want %s", l.Dir(), limit, dir)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func futureSize(m *Manager) int64 {
	var n int64
	for _, f := range m.Futures() {
		n += f.Size
	}
	return n
}

// TestCopierStaysAtRateFakeClock: with a clock only the throttle moves,
// the copier never gets ahead of rate × elapsed (plus one burst and one
// batch) at any of its waits, and the whole move takes size/rate of that
// clock.
func TestCopierStaysAtRateFakeClock(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	m := openTwoDirManager(t, a, b)
	defer m.Close()
	const rate = 64 << 10
	l := fillMoveLog(t, m, 640<<10)
	size := l.Size()
	const slack = rate/moveBurstDiv + 4<<10 // one burst, one batch (~3 KiB)
	clk := newFakeMoveClock()
	var mu sync.Mutex
	var waits int
	var worst float64 // bytes copied beyond rate × elapsed, at worst
	clk.observe = func(el time.Duration) {
		got := futureSize(m) // the copier holds no lock while it waits
		mu.Lock()
		defer mu.Unlock()
		waits++
		worst = max(worst, float64(got)-el.Seconds()*rate)
	}
	m.moveThrottle.setClock(clk.now, clk.after)
	m.SetLogDirMoveRate(rate)
	if got := m.LogDirMoveRate(); got != rate {
		t.Fatalf("LogDirMoveRate = %d", got)
	}
	if err := m.AlterLogDir("t", 0, b); err != nil {
		t.Fatal(err)
	}
	waitMovedWithin(t, l, b, 60*time.Second)
	mu.Lock()
	defer mu.Unlock()
	el := clk.elapsed()
	want := time.Duration(float64(size) / rate * float64(time.Second))
	t.Logf("moved %d bytes at %d B/s in %v of the fake clock (size/rate %v), %d waits, worst lead %.0f bytes", size, rate, el, want, waits, worst)
	if worst > slack {
		t.Fatalf("copier got %.0f bytes ahead of the rate (allowed %d)", worst, slack)
	}
	// Everything copied was paid for: the clock covers all but the
	// first burst; it waited no longer than one wait past the end.
	if lo := time.Duration(float64(size-slack) / rate * float64(time.Second)); el < lo {
		t.Fatalf("move took %v of the fake clock, want >= %v", el, lo)
	}
	if hi := want + moveMaxWait; el > hi {
		t.Fatalf("move took %v of the fake clock, want <= %v", el, hi)
	}
	if l.Size() != size {
		t.Fatalf("moved log has %d bytes, had %d", l.Size(), size)
	}
}

// TestMoveThrottledTakesSizeOverRate: a move at a low rate on the real
// clock takes at least about half of size/rate, and completes.
func TestMoveThrottledTakesSizeOverRate(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	m := openTwoDirManager(t, a, b)
	defer m.Close()
	const rate = 128 << 10
	l := fillMoveLog(t, m, 384<<10)
	size := l.Size()
	leo := l.LogEndOffset()
	m.SetLogDirMoveRate(rate)
	start := time.Now()
	if err := m.AlterLogDir("t", 0, b); err != nil {
		t.Fatal(err)
	}
	waitMovedWithin(t, l, b, 60*time.Second)
	took := time.Since(start)
	ideal := time.Duration(float64(size) / rate * float64(time.Second))
	t.Logf("moved %d bytes at %d B/s in %v (size/rate %v)", size, rate, took, ideal)
	if took < ideal/2 {
		t.Fatalf("throttled move took %v, want >= %v", took, ideal/2)
	}
	if l.LogEndOffset() != leo || l.Size() != size {
		t.Fatalf("moved log: end %d size %d, want %d %d", l.LogEndOffset(), l.Size(), leo, size)
	}
}

// TestMoveRateChangesLive: a rate of 0 holds a move; raising it lets it
// copy at once; making it unlimited finishes it; Close does not wait for
// a held move.
func TestMoveRateChangesLive(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	m := openTwoDirManager(t, a, b)
	l := fillMoveLog(t, m, 512<<10)
	m.SetLogDirMoveRate(0)
	if err := m.AlterLogDir("t", 0, b); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := futureSize(m); n != 0 {
		t.Fatalf("future log has %d bytes at rate 0", n)
	}
	m.SetLogDirMoveRate(16 << 10) // 512 KiB would take 32 s
	deadline := time.Now().Add(30 * time.Second)
	for futureSize(m) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("raised rate not applied: nothing copied")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if filepath.Dir(l.Dir()) == filepath.Clean(b) {
		t.Fatal("move finished at 16 KiB/s already")
	}
	m.SetLogDirMoveRate(math.MaxInt64)
	waitMovedWithin(t, l, b, 30*time.Second)

	// A move held at rate 0 does not hold up Close.
	m.SetLogDirMoveRate(0)
	if err := m.AlterLogDir("t", 0, a); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close blocked by a held move")
	}
}

// TestMoveThrottleWaitStops: a wait at rate 0 ends when stop closes;
// one in debt ends after the debt is earned back, on the fake clock.
func TestMoveThrottleWaitStops(t *testing.T) {
	th := newMoveThrottle()
	clk := newFakeMoveClock()
	th.setClock(clk.now, clk.after)
	th.setRate(0)
	stop := make(chan struct{})
	close(stop)
	if th.wait(stop) {
		t.Fatal("wait at rate 0 returned true")
	}
	th.setRate(1000)
	if th.chunk() != 100 {
		t.Fatalf("chunk = %d, want 100 (a tenth of a second)", th.chunk())
	}
	th.take(5000)
	before := clk.elapsed()
	if !th.wait(make(chan struct{})) {
		t.Fatal("wait in debt returned false")
	}
	if got := clk.elapsed() - before; got < 5*time.Second || got > 6*time.Second {
		t.Fatalf("waited %v for 5000 bytes of debt at 1000 B/s", got)
	}
	th.setRate(math.MaxInt64)
	if th.chunk() != futureChunkBytes {
		t.Fatalf("unlimited chunk = %d", th.chunk())
	}
}
