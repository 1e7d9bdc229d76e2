package replica

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
)

// This file holds the requests that wait on a partition (Kafka's
// purgatories): acks=all produces until the high watermark passes their
// records (DelayedProduce), long-poll fetches until the partition changes
// (DelayedFetch). Both are parked, not polling: the event that completes
// them (a high watermark move, an append, a role change) wakes them. Both
// are bounded per partition and a waiter whose ctx ends removes itself.

// Bounds of the purgatories, per partition. Requests in flight are bounded
// by the network layer (queued.max.request.bytes, connection limits) well
// below these; they keep a misbehaving client from growing a list without
// end.
const (
	maxProduceWaiters = 1 << 16
	maxFetchWaiters   = 1 << 14
)

// produceWaiter is one acks=all produce waiting for the high watermark.
type produceWaiter struct {
	offset int64         // wait until the high watermark is >= offset
	done   chan struct{} // closed (by the waker, under mu) when woken
}

// WaitReplicated waits until the high watermark reaches endOffset (the
// produced batch's last offset + 1): every ISR member has the records
// (Kafka's DelayedProduce). It returns nil once they are, or
//   - ErrNotEnoughReplicasAfterAppend when they are but the ISR shrank
//     below min.insync.replicas meanwhile (Kafka checks the same when the
//     high watermark passes);
//   - ErrNotLeader when this broker stopped leading, or a new leader epoch
//     began, before (the records may be truncated: the client retries,
//     an idempotent producer without duplicates);
//   - ErrRequestTimedOut when ctx ends first (the api's request timeout),
//     or the partition has too many waiting produces.
//
// A single-replica leader's high watermark is already past its records
// after Append: that answers at once without taking a lock.
func (p *Partition) WaitReplicated(ctx context.Context, endOffset int64) error {
	st := p.state.Load()
	if st.isLeader && p.log.HighWatermark() >= endOffset {
		return p.replicatedResult(st)
	}
	err := p.parkUntil(ctx, st.leaderEpoch, endOffset, &p.mu.produceWaiters, &p.nProduceWaiters,
		func() bool { return p.log.HighWatermark() >= endOffset }, "high watermark", "produces")
	if err != nil {
		return err
	}
	return p.replicatedResult(p.state.Load())
}

// parkUntil waits on the waiter list *list (guarded by mu; its length
// mirrored in *count when count is not nil) until reached holds (checked
// under mu), and returns nil then; ErrNotLeader when this broker stops
// leading or a leader epoch other than epoch begins; ErrRequestTimedOut
// when ctx ends first or maxProduceWaiters already wait. The wakers
// close the waiters' channels; each woken call re-checks. what and whose
// name the watermark and the waiters in errors.
func (p *Partition) parkUntil(ctx context.Context, epoch int32, offset int64, list *[]*produceWaiter, count *atomic.Int32, reached func() bool, what, whose string) error {
	for {
		p.mu.Lock()
		st := p.state.Load()
		switch {
		case !st.isLeader || st.leaderEpoch != epoch:
			p.mu.Unlock()
			return p.notLeader(st)
		case reached():
			p.mu.Unlock()
			return nil
		case ctx.Err() != nil:
			p.mu.Unlock()
			return fmt.Errorf("%w: %s of %s-%d below %d", ErrRequestTimedOut, what, p.topic, p.index, offset)
		case len(*list) >= maxProduceWaiters:
			p.mu.Unlock()
			return fmt.Errorf("%w: %d %s already wait on %s-%d", ErrRequestTimedOut, maxProduceWaiters, whose, p.topic, p.index)
		}
		w := &produceWaiter{offset: offset, done: make(chan struct{})}
		*list = append(*list, w)
		if count != nil {
			count.Store(int32(len(*list)))
		}
		p.mu.Unlock()

		select {
		case <-w.done:
		case <-ctx.Done():
			p.mu.Lock()
			if i := slices.Index(*list, w); i >= 0 {
				*list = slices.Delete(*list, i, i+1)
				if count != nil {
					count.Store(int32(len(*list)))
				}
			}
			p.mu.Unlock()
		}
	}
}

// replicatedResult is a produce's answer once the high watermark passed
// its records.
func (p *Partition) replicatedResult(st *partitionState) error {
	if st.isrSize < st.minISR {
		return fmt.Errorf("%w: ISR of %s-%d has %d replicas, min.insync.replicas is %d", ErrNotEnoughReplicasAfterAppend, p.topic, p.index, st.isrSize, st.minISR)
	}
	return nil
}

// wakeProducesLocked wakes (and removes) the produces waiting for a high
// watermark at most hw; math.MaxInt64 wakes all (a role change: each
// re-checks). Caller holds mu.
func (p *Partition) wakeProducesLocked(hw int64) {
	if len(p.mu.produceWaiters) == 0 {
		return
	}
	p.mu.produceWaiters = slices.DeleteFunc(p.mu.produceWaiters, func(w *produceWaiter) bool {
		if w.offset <= hw {
			close(w.done)
			return true
		}
		return false
	})
	p.nProduceWaiters.Store(int32(len(p.mu.produceWaiters)))
}

// wakeAllProducesLocked wakes every waiting produce. Caller holds mu.
func (p *Partition) wakeAllProducesLocked() { p.wakeProducesLocked(math.MaxInt64) }

// LowWatermark is the smallest log start offset over this leader and the
// followers on live brokers (Kafka's Partition.lowWatermarkIfLeader): the
// offset below which DeleteRecords has removed the records everywhere. A
// follower that has not fetched in this leader epoch counts as -1.
func (p *Partition) LowWatermark() (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.state.Load(); !st.isLeader {
		return -1, p.notLeader(st)
	}
	return p.lowWatermarkLocked(), nil
}

func (p *Partition) lowWatermarkLocked() int64 {
	low := p.log.LogStartOffset()
	for id, f := range p.mu.followers {
		if f.logStartOffset < low && p.eligible(id) {
			low = f.logStartOffset
		}
	}
	return low
}

// WaitLowWatermark waits until the low watermark reaches offset: every
// live replica moved its log start offset there (Kafka's
// DelayedDeleteRecords, woken by the followers' fetches). Errors:
// ErrNotLeader when this broker stops leading or a new leader epoch
// begins, ErrRequestTimedOut when ctx ends first (or too many wait).
func (p *Partition) WaitLowWatermark(ctx context.Context, offset int64) error {
	return p.parkUntil(ctx, p.state.Load().leaderEpoch, offset, &p.mu.lowWaiters, nil,
		func() bool { return p.lowWatermarkLocked() >= offset }, "low watermark", "deletions")
}

// wakeLowWaitersLocked wakes (and removes) every WaitLowWatermark; each
// re-checks. Caller holds mu.
func (p *Partition) wakeLowWaitersLocked() {
	for _, w := range p.mu.lowWaiters {
		close(w.done)
	}
	p.mu.lowWaiters = nil
}

// FetchWaiter is one long-poll fetch parked on the partitions of its
// request (Kafka's DelayedFetch): it registers once on each partition and
// is woken by the first append, high watermark move or role change on any
// of them, through one channel, so a request of thousands of partitions
// waits on one channel rather than selecting over one per partition.
//
// Use: NewFetchWaiter, Watch every partition, then loop { read; if enough
// or done, stop; Wait }, and Close when done. Registering before reading
// means no change between the read and the wait is missed: it leaves a
// wake-up in the channel. Spurious wake-ups are possible (a change that
// brings no data for this request): re-read and wait again.
type FetchWaiter struct {
	c     chan struct{} // capacity 1: a pending wake-up
	parts []*Partition  // registered on; touched only by the owner
}

// NewFetchWaiter returns a waiter registered nowhere.
func NewFetchWaiter() *FetchWaiter {
	return &FetchWaiter{c: make(chan struct{}, 1)}
}

// Watch registers w on p. It reports false when p already has
// maxFetchWaiters long polls: w is then not woken by p (its wait ends at
// the request's timeout or by another partition). Not safe for concurrent
// use with the waiter's other methods.
func (w *FetchWaiter) Watch(p *Partition) bool {
	p.waiters.Lock()
	defer p.waiters.Unlock()
	if _, ok := p.waiters.set[w]; ok {
		return true
	}
	if len(p.waiters.set) >= maxFetchWaiters {
		return false
	}
	if p.waiters.set == nil {
		p.waiters.set = map[*FetchWaiter]struct{}{}
	}
	p.waiters.set[w] = struct{}{}
	p.nWaiters.Store(int32(len(p.waiters.set)))
	w.parts = append(w.parts, p)
	return true
}

// C receives a value when a watched partition changed since the last
// receive (for a select with the request's own timer).
func (w *FetchWaiter) C() <-chan struct{} { return w.c }

// Wait blocks until a watched partition changes or ctx ends (then it
// returns ctx's error).
func (w *FetchWaiter) Wait(ctx context.Context) error {
	select {
	case <-w.c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close unregisters w from every partition it watches. The waiter may be
// reused afterwards (a pending wake-up is dropped).
func (w *FetchWaiter) Close() {
	for _, p := range w.parts {
		p.waiters.Lock()
		delete(p.waiters.set, w)
		p.nWaiters.Store(int32(len(p.waiters.set)))
		p.waiters.Unlock()
	}
	w.parts = w.parts[:0]
	select {
	case <-w.c:
	default:
	}
}

// wakeFetchers wakes the long polls watching p. With none it costs one
// atomic load (every append calls it).
func (p *Partition) wakeFetchers() {
	if p.nWaiters.Load() == 0 {
		return
	}
	p.waiters.Lock()
	for w := range p.waiters.set {
		select {
		case w.c <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	p.waiters.Unlock()
}
