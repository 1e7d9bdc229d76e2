package metadata

import (
	"context"
	"sync"
	"sync/atomic"
)

// Listener reacts to a new image. It runs in Publish, in registration
// order, one image at a time and never concurrently with itself: on the
// caller's goroutine for Publish, on the publishing goroutine for Offer.
// It must not call Publish, and must not wait for a Quorum.Append (which
// waits for the publishing goroutine the listener runs on).
type Listener func(prev, next *Image)

// Publisher holds the current image and hands new ones to listeners.
//
// Images arrive two ways. Publish delivers one synchronously (the
// pre-quorum controller path). Offer hands one to the publishing
// goroutine (Start) and returns at once: the quorum's apply path runs on
// the raft goroutine, which must never wait for listeners (a replica
// manager opening many logs would delay raft heartbeats). Offers are
// coalesced: the goroutine always publishes the newest image offered, so
// the queue is one image long, a slow listener sees several entries
// applied at once (prev to next may span many entries), and images never
// go backwards. Listeners diff prev and next, so coalescing loses nothing.
// A publisher fed by Offer (a Quorum's) must not also be fed by Publish:
// the goroutine would later publish an older offered image over it.
type Publisher struct {
	cur atomic.Pointer[Image]

	mu        sync.Mutex // serializes Publish, Subscribe and the publishing goroutine's deliveries
	listeners []Listener // guarded by mu

	// wake has room for one signal: an Offer happened.
	wake chan struct{}
	// started is set by Start: one publishing goroutine at most, or two
	// could deliver offered images out of order.
	started atomic.Bool

	q struct {
		sync.Mutex
		// pending is the newest offered image not yet published (nil:
		// none); offered is its sequence number. Guarded by q.
		pending *Image
		offered uint64
		// published is the sequence number of the last offered image
		// published (listeners returned). Guarded by q.
		published uint64
		// offset is the Offset of the last image whose listeners
		// returned (by Publish or Offer). Guarded by q.
		offset int64
		// changed is closed and replaced after every publication.
		changed chan struct{}
	}
}

// NewPublisher starts with image im.
func NewPublisher(im *Image) *Publisher {
	p := &Publisher{wake: make(chan struct{}, 1)}
	p.cur.Store(im)
	p.q.changed = make(chan struct{})
	p.q.offset = im.Offset
	return p
}

// Image returns the current image; never nil.
func (p *Publisher) Image() *Image { return p.cur.Load() }

// Subscribe adds a listener and calls it once with (nil, current).
func (p *Publisher) Subscribe(l Listener) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.listeners = append(p.listeners, l)
	l(nil, p.cur.Load())
}

// Publish makes next current and runs every listener before returning.
func (p *Publisher) Publish(next *Image) {
	p.mu.Lock()
	p.publishLocked(next)
	p.mu.Unlock()
	p.q.Lock()
	p.q.offset = next.Offset
	p.notifyLocked()
	p.q.Unlock()
}

func (p *Publisher) publishLocked(next *Image) {
	prev := p.cur.Swap(next)
	for _, l := range p.listeners {
		l(prev, next)
	}
}

func (p *Publisher) notifyLocked() {
	close(p.q.changed)
	p.q.changed = make(chan struct{})
}

// Offer queues im for the publishing goroutine and returns its sequence
// number (see PublishedSeq) without waiting. It replaces an image offered
// earlier that is not published yet.
func (p *Publisher) Offer(im *Image) uint64 {
	p.q.Lock()
	p.q.pending = im
	p.q.offered++
	seq := p.q.offered
	p.q.Unlock()
	select {
	case p.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
	return seq
}

// PublishedSeq returns the sequence number of the last offered image
// that has been published: every image offered with a number at or
// below it is published or superseded by a published one.
func (p *Publisher) PublishedSeq() uint64 {
	p.q.Lock()
	defer p.q.Unlock()
	return p.q.published
}

// Changed returns a channel closed at the next publication.
func (p *Publisher) Changed() <-chan struct{} {
	p.q.Lock()
	defer p.q.Unlock()
	return p.q.changed
}

// WaitOffset waits until the current image's Offset is at least offset
// and every listener has returned for it.
func (p *Publisher) WaitOffset(ctx context.Context, offset int64) error {
	for {
		p.q.Lock()
		ch, done := p.q.changed, p.q.offset >= offset
		p.q.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Start runs the publishing goroutine for Offer and returns the function
// that stops it: stop publishes what is still pending and waits for the
// goroutine to end. The quorum that offers images owns it.
func (p *Publisher) Start() (stop func()) {
	if p.started.Swap(true) {
		panic("metadata: Publisher.Start called twice")
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-p.wake:
				p.deliverPending()
			case <-quit:
				p.deliverPending()
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}

// deliverPending publishes the newest offered image, if any.
func (p *Publisher) deliverPending() {
	p.q.Lock()
	im, seq := p.q.pending, p.q.offered
	p.q.pending = nil
	p.q.Unlock()
	if im == nil {
		return
	}
	p.mu.Lock()
	p.publishLocked(im)
	p.mu.Unlock()
	p.q.Lock()
	p.q.published, p.q.offset = seq, im.Offset
	p.notifyLocked()
	p.q.Unlock()
}
