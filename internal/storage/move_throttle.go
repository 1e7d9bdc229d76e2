package storage

import (
	"math"
	"sync"
	"time"
)

// This file bounds the bytes per second the copier (future.go) moves
// between log dirs: replica.alter.log.dirs.io.max.bytes.per.second, one
// limit for all the broker's moves, as Kafka's alter-log-dirs quota is.
// It is a token bucket that may go into debt: a step waits until the
// bucket holds a byte, copies at most moveThrottle.chunk bytes (a single
// batch larger than that still goes whole) and pays for what it copied.
// Over any span the copier thus moves at most the rate times the span,
// plus one burst (a tenth of a second's worth) and one step. A rate of 0
// copies nothing (Kafka's quota with a bound of 0 is exceeded by the
// first byte); math.MaxInt64, the default, is unlimited.

const (
	// moveBurstDiv sets the bucket's size: rate/moveBurstDiv bytes (a
	// tenth of a second), at least 1. It is also a step's chunk.
	moveBurstDiv = 10
	// moveMaxWait bounds one wait of the copier for tokens; the bucket
	// is looked at again after it (a rate change also wakes the wait).
	moveMaxWait = time.Second
)

// moveThrottle is the copier's rate limit. Safe for concurrent use: the
// copier waits and pays, SetLogDirMoveRate changes the rate.
type moveThrottle struct {
	// changed (cap 1) wakes a wait when the rate changes.
	changed chan struct{}

	mu struct {
		sync.Mutex
		// rate is the limit in bytes/s; math.MaxInt64: unlimited; 0:
		// nothing is copied.
		rate int64
		// tokens is the bytes that may be copied now; negative: the
		// debt of a step that copied more. At most the burst.
		tokens float64
		// last is when tokens was last brought up to date.
		last time.Time
		// now and after are the clock (tests inject a fake one).
		now   func() time.Time
		after func(time.Duration) <-chan time.Time
	}
}

func newMoveThrottle() *moveThrottle {
	t := &moveThrottle{changed: make(chan struct{}, 1)}
	t.mu.rate = math.MaxInt64
	t.mu.now = time.Now
	t.mu.after = time.After
	t.mu.last = time.Now()
	return t
}

// setClock replaces the clock (tests).
func (t *moveThrottle) setClock(now func() time.Time, after func(time.Duration) <-chan time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.now, t.mu.after = now, after
	t.mu.last = now()
}

func moveBurst(rate int64) float64 { return float64(max(rate/moveBurstDiv, 1)) }

// refillLocked adds the tokens earned since last. Caller holds t.mu; the
// rate is limited.
func (t *moveThrottle) refillLocked() {
	now := t.mu.now()
	if el := now.Sub(t.mu.last); el > 0 {
		t.mu.tokens = min(t.mu.tokens+el.Seconds()*float64(t.mu.rate), moveBurst(t.mu.rate))
	}
	t.mu.last = now
}

// setRate sets the limit in bytes/s (< 0 is taken as 0). It applies to
// the copier's next wait, including one in progress.
func (t *moveThrottle) setRate(rate int64) {
	rate = max(rate, 0)
	t.mu.Lock()
	if t.mu.rate != math.MaxInt64 {
		t.refillLocked() // what was earned at the old rate stays
	} else {
		t.mu.tokens, t.mu.last = 0, t.mu.now()
	}
	t.mu.rate = rate
	if rate != math.MaxInt64 {
		t.mu.tokens = min(t.mu.tokens, moveBurst(rate))
	}
	t.mu.Unlock()
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

func (t *moveThrottle) rate() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.rate
}

// chunk is the most bytes one copy step may ask for.
func (t *moveThrottle) chunk() int32 {
	r := t.rate()
	if r == math.MaxInt64 {
		return futureChunkBytes
	}
	return int32(min(moveBurst(r), futureChunkBytes))
}

// take pays for n copied bytes.
func (t *moveThrottle) take(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.rate == math.MaxInt64 || n <= 0 {
		return
	}
	t.refillLocked()
	t.mu.tokens -= float64(n)
}

// wait blocks until a byte may be copied; false when stop was closed
// first. Each wait is at most moveMaxWait before the bucket is looked at
// again; a rate change wakes it at once.
func (t *moveThrottle) wait(stop <-chan struct{}) bool {
	for {
		t.mu.Lock()
		if t.mu.rate == math.MaxInt64 {
			t.mu.Unlock()
			return true
		}
		t.refillLocked()
		if t.mu.tokens > 0 {
			t.mu.Unlock()
			return true
		}
		d := moveMaxWait
		if r := t.mu.rate; r > 0 {
			// Until the bucket holds a byte: the debt and one byte.
			// Compared as floats: a large debt at a low rate would
			// overflow a Duration.
			if need := math.Ceil((1 - t.mu.tokens) / float64(r) * float64(time.Second)); need < float64(d) {
				d = time.Duration(need)
			}
		}
		after := t.mu.after
		t.mu.Unlock()
		select {
		case <-stop:
			return false
		case <-t.changed:
		case <-after(d):
		}
	}
}

// SetLogDirMoveRate sets the bytes per second that moves of logs
// between log dirs (AlterLogDir) may copy, all together
// (replica.alter.log.dirs.io.max.bytes.per.second): math.MaxInt64 is
// unlimited (the default), 0 stops the copy until the rate is raised.
// It applies at once, to moves in progress too.
func (m *Manager) SetLogDirMoveRate(bytesPerSec int64) { m.moveThrottle.setRate(bytesPerSec) }

// LogDirMoveRate is the rate SetLogDirMoveRate set (math.MaxInt64:
// unlimited).
func (m *Manager) LogDirMoveRate() int64 { return m.moveThrottle.rate() }
