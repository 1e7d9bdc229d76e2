package coordinator

import (
	"context"
	"sort"
	"sync"
)

// Registry is the set of partitions one coordinator serves, by number,
// with the context and the wait group of the coordinator's background
// work (loads, timers, writers). P is the coordinator's own partition
// type; the zero P means none. All methods are safe for concurrent use.
type Registry[P comparable] struct {
	// ctx is cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts background work: Wait waits for it.
	wg sync.WaitGroup

	mu     sync.Mutex
	closed bool        // guarded by mu
	parts  map[int32]P // loaded or loading; guarded by mu
}

// NewRegistry returns an empty registry.
func NewRegistry[P comparable]() *Registry[P] {
	r := &Registry[P]{parts: make(map[int32]P)}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Context is cancelled by Close: partitions derive theirs from it.
func (r *Registry[P]) Context() context.Context { return r.ctx }

// Get returns partition p, or the zero P.
func (r *Registry[P]) Get(p int32) P {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.parts[p]
}

// Start installs ps as partition p in place of old (the zero P: none) and
// runs load on a goroutine Wait waits for. It does nothing and returns
// false once closed or when p is no longer old.
func (r *Registry[P]) Start(p int32, old, ps P, load func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.parts[p] != old {
		return false
	}
	r.parts[p] = ps
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		load()
	}()
	return true
}

// StartNow is Start with load run on the calling goroutine before it
// returns, for a partition with nothing to replay (an empty log: a new
// internal topic). Such a partition then serves from the moment the
// metadata change that made it ours is applied, so a FindCoordinator that
// created the topic is followed by requests the coordinator answers:
// clients such as kafka-go do not retry COORDINATOR_LOAD_IN_PROGRESS.
func (r *Registry[P]) StartNow(p int32, old, ps P, load func()) bool {
	r.mu.Lock()
	if r.closed || r.parts[p] != old {
		r.mu.Unlock()
		return false
	}
	r.parts[p] = ps
	r.wg.Add(1)
	r.mu.Unlock()
	defer r.wg.Done()
	load()
	return true
}

// Remove takes partition p out of the registry and returns it (the zero P
// if there was none).
func (r *Registry[P]) Remove(p int32) P {
	r.mu.Lock()
	defer r.mu.Unlock()
	ps := r.parts[p]
	delete(r.parts, p)
	return ps
}

// All returns the partitions in the registry, by number.
func (r *Registry[P]) All() []P {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sortedLocked()
}

func (r *Registry[P]) sortedLocked() []P {
	nums := make([]int32, 0, len(r.parts))
	for p := range r.parts {
		nums = append(nums, p)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	out := make([]P, len(nums))
	for i, p := range nums {
		out[i] = r.parts[p]
	}
	return out
}

// Enter registers a unit of background work; false once closed. The
// caller calls Done when it is finished.
func (r *Registry[P]) Enter() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.wg.Add(1)
	return true
}

// Done ends a unit of work Enter registered.
func (r *Registry[P]) Done() { r.wg.Done() }

// Go runs fn on a goroutine Wait waits for, unless closed.
func (r *Registry[P]) Go(fn func()) {
	if !r.Enter() {
		return
	}
	go func() {
		defer r.wg.Done()
		fn()
	}()
}

// Close refuses new partitions and work, cancels the context and returns
// the partitions it held (by number), now removed; the caller shuts them
// down and then calls Wait.
func (r *Registry[P]) Close() []P {
	r.mu.Lock()
	r.closed = true
	parts := r.sortedLocked()
	r.parts = make(map[int32]P)
	r.mu.Unlock()
	r.cancel()
	return parts
}

// Wait waits for every load and unit of work to end.
func (r *Registry[P]) Wait() { r.wg.Wait() }
