package metadata

import (
	"sync"
	"sync/atomic"
)

// Listener reacts to a new image. It runs synchronously inside Publish,
// in registration order, and must not call Publish.
type Listener func(prev, next *Image)

// Publisher holds the current image and hands new ones to listeners.
type Publisher struct {
	cur atomic.Pointer[Image]

	mu        sync.Mutex // serializes Publish and Subscribe
	listeners []Listener // guarded by mu
}

// NewPublisher starts with image im.
func NewPublisher(im *Image) *Publisher {
	p := &Publisher{}
	p.cur.Store(im)
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

// Publish makes next current and runs every listener.
func (p *Publisher) Publish(next *Image) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prev := p.cur.Swap(next)
	for _, l := range p.listeners {
		l(prev, next)
	}
}
