// Package gctune keeps the Go garbage collector from running on a tiny
// heap: a broker's live heap is a few MiB, so with Go's default
// (GOGC=100: collect when the heap doubles) it collected about ten
// times a second per broker under a 10 MiB/s replicated load, and each
// cycle took one of two cores' worth of mark work and wake-ups at
// random points of the replication path. That showed as the tail of
// end-to-end latency (docs/config.md, gc.min.heap.bytes; docs/cli.md, the
// bench's cluster group).
//
// The tuner sets a floor under the heap goal: after each collection it
// sets the GC percentage so the next goal is at least MinHeap
// (live × (1 + percent/100) ≥ MinHeap), and never below the base of
// 100, so a heap above MinHeap/2 is collected exactly as with GOGC=100.
// It is the documented runtime/debug knob, moved at run time; Go's own
// memory limit is left alone.
//
// An operator who sets GOGC or GOMEMLIMIT in the environment keeps
// full control: the tuner does not start. One tuner serves the whole
// process (the GC is process-wide); several servers in one process (the
// tests) share it, and the last Stop restores the base percentage.
package gctune

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

const (
	// basePercent is Go's default GOGC: the percentage the tuner never
	// goes below, and restores when it stops.
	basePercent = 100
	// maxPercent bounds the percentage for an almost empty heap.
	maxPercent = 10_000
)

var (
	mu     sync.Mutex // guards active, users and every tuner's state
	active *tuner     // the process's tuner, nil when none runs
	users  int        // Start calls not yet stopped, while active != nil
)

// tuner adjusts the GC percentage after every collection. Its fields
// other than minHeap are guarded by mu.
type tuner struct {
	minHeap uint64
	stopped bool  // set by the last stop; the cleanup chain then ends
	percent int64 // the percentage last set
}

// Start makes the process's GC keep a heap goal of at least minHeap
// bytes and returns the function that undoes it. It does nothing (and
// returns a no-op) when minHeap <= 0 or when GOGC or GOMEMLIMIT is set in
// the environment. While a tuner runs, later calls share it (the first
// call's minHeap stays).
func Start(minHeap int64) (stop func()) {
	if minHeap <= 0 || os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	mu.Lock()
	defer mu.Unlock()
	if active == nil {
		t := &tuner{minHeap: uint64(minHeap), percent: basePercent}
		active = t
		t.adjustLocked()
		t.arm()
	}
	users++
	t := active
	var once sync.Once
	return func() { once.Do(func() { release(t) }) }
}

// release drops one user of t; the last one stops it.
func release(t *tuner) {
	mu.Lock()
	defer mu.Unlock()
	if active != t {
		return
	}
	if users--; users > 0 {
		return
	}
	active = nil
	t.stopped = true
	debug.SetGCPercent(basePercent)
}

// Percent is the GC percentage the running tuner last set, or 0 when no
// tuner runs.
func Percent() int {
	mu.Lock()
	defer mu.Unlock()
	if active == nil {
		return 0
	}
	return int(active.percent)
}

// sentinel is an object allocated only to learn that a collection ran:
// its cleanup runs after the cycle that found it unreachable.
type sentinel struct{ _ [16]byte }

// arm allocates the next sentinel; its cleanup adjusts the percentage
// and arms the one after, until the tuner stops.
func (t *tuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *tuner) {
		if t.adjust() {
			t.arm()
		}
	}, t)
}

// liveMetric is the heap the last collection marked live.
const liveMetric = "/gc/heap/live:bytes"

// adjust sets the percentage from the live heap of the last cycle,
// unless the tuner stopped meanwhile; it says whether it still runs.
func (t *tuner) adjust() bool {
	mu.Lock()
	defer mu.Unlock()
	if t.stopped {
		return false
	}
	t.adjustLocked()
	return true
}

func (t *tuner) adjustLocked() {
	s := []metrics.Sample{{Name: liveMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	p := percentFor(s[0].Value.Uint64(), t.minHeap)
	// Small moves are not worth the call (each recomputes the pacer),
	// but reaching the base exactly is.
	if old := t.percent; p == old || (p != basePercent && abs(p-old) < old/8) {
		return
	}
	t.percent = p
	debug.SetGCPercent(int(p))
}

// percentFor is the GC percentage that makes the heap goal of a live
// heap at least minHeap, within [basePercent, maxPercent].
func percentFor(live, minHeap uint64) int64 {
	if live == 0 {
		return maxPercent
	}
	if live >= minHeap {
		return basePercent
	}
	// In floating point: the ratio of two byte counts cannot overflow,
	// and rounding up keeps the goal on or above the floor.
	p := math.Ceil(float64(minHeap)/float64(live)*100) - 100
	return int64(min(max(p, basePercent), maxPercent))
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
