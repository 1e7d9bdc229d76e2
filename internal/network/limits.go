package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"samsa/internal/metrics"
)

// Errors of the broker-wide limits.
var (
	ErrBudgetTimeout = errors.New("network: no request budget before the frame's read deadline")
	ErrTooManyForIP  = errors.New("network: too many connections from one address")
)

// Defaults of the limits when LimitsConfig leaves them zero. The keys are
// Kafka's; Kafka leaves each unbounded by default, Samsa bounds them (see
// docs/config.md for the reasons).
const (
	// DefaultQueuedMaxRequestBytes is queued.max.request.bytes: 128 MiB,
	// socket.request.max.bytes (100 MiB) plus room for small requests.
	DefaultQueuedMaxRequestBytes = 128 << 20
	// DefaultMaxConnections is max.connections.
	DefaultMaxConnections = 10000
	// DefaultMaxConnectionsPerIP is max.connections.per.ip.
	DefaultMaxConnectionsPerIP = 1000
)

// smallFrameBytes is the largest frame that counts as small: small frames
// (ApiVersions, Metadata, heartbeats, commits, most fetches and many
// produces) may use the budget's reserve and pass large frames waiting
// for budget, so that control traffic never queues behind a large frame.
const smallFrameBytes = 64 << 10

// LimitsConfig configures the limits shared by every listener of a broker.
type LimitsConfig struct {
	// QueuedMaxRequestBytes bounds the bytes of request frames being read
	// or served (queued.max.request.bytes); <= 0: the default.
	QueuedMaxRequestBytes int64
	// MaxConnections bounds open connections over all listeners
	// (max.connections); at the limit listeners stop accepting until a
	// connection closes. <= 0: the default.
	MaxConnections int
	// MaxConnectionsPerIP bounds connections from one address
	// (max.connections.per.ip); a connection over it is closed right after
	// accept. <= 0: the default.
	MaxConnectionsPerIP int
	// MaxConnectionsPerIPOverrides replaces MaxConnectionsPerIP for some
	// addresses (max.connections.per.ip.overrides).
	MaxConnectionsPerIPOverrides map[netip.Addr]int
	// Metrics records the budget and rejections; nil records nothing.
	Metrics *metrics.Network
}

// Limits are the broker-wide bounds on connections and request memory,
// shared by every listener (Kafka's ConnectionQuotas and MemoryPool). The
// connection limits change at run time (SetConnectionLimits: dynamic
// max.connections, max.connections.per.ip and its overrides); connections
// already open stay open when a limit drops below their count, as in
// Kafka.
type Limits struct {
	budget  *Budget
	metrics *metrics.Network

	mu struct {
		sync.Mutex
		// open counts connections holding a slot (waitSlot to
		// releaseSlot). Guarded by mu.
		open int
		// maxConns is max.connections: waitSlot waits while open >=
		// maxConns. Guarded by mu.
		maxConns int
		// perIP is max.connections.per.ip; overrides replace it per
		// address. Guarded by mu; overrides is never modified, only
		// replaced.
		perIP     int
		overrides map[netip.Addr]int
		// wake is closed (and replaced) when a slot frees or the limit
		// rises, waking every waitSlot. Guarded by mu.
		wake chan struct{}
		// byIP counts open connections per client address; an address
		// with none has no entry. Guarded by mu.
		byIP map[netip.Addr]int
	}
}

// NewLimits builds the limits of a broker.
func NewLimits(cfg LimitsConfig) *Limits {
	if cfg.QueuedMaxRequestBytes <= 0 {
		cfg.QueuedMaxRequestBytes = DefaultQueuedMaxRequestBytes
	}
	l := &Limits{
		budget:  NewBudget(cfg.QueuedMaxRequestBytes, cfg.Metrics),
		metrics: cfg.Metrics,
	}
	l.mu.byIP = map[netip.Addr]int{}
	l.mu.wake = make(chan struct{})
	l.SetConnectionLimits(cfg.MaxConnections, cfg.MaxConnectionsPerIP, cfg.MaxConnectionsPerIPOverrides)
	return l
}

// SetConnectionLimits changes max.connections, max.connections.per.ip
// and max.connections.per.ip.overrides (<= 0: the default). A raised
// max.connections admits waiting accepts at once; lowered limits apply
// to new connections only. overrides must not be modified afterwards.
func (l *Limits) SetConnectionLimits(maxConns, perIP int, overrides map[netip.Addr]int) {
	if maxConns <= 0 {
		maxConns = DefaultMaxConnections
	}
	if perIP <= 0 {
		perIP = DefaultMaxConnectionsPerIP
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.maxConns, l.mu.perIP, l.mu.overrides = maxConns, perIP, overrides
	l.wakeLocked()
}

// wakeLocked wakes every waitSlot.
func (l *Limits) wakeLocked() {
	close(l.mu.wake)
	l.mu.wake = make(chan struct{})
}

// Budget is the request memory budget.
func (l *Limits) Budget() *Budget { return l.budget }

// waitSlot takes a connection slot, waiting while max.connections
// connections are open. It fails only when ctx ends.
func (l *Limits) waitSlot(ctx context.Context) error {
	var began time.Time
	for {
		l.mu.Lock()
		if l.mu.open < l.mu.maxConns {
			l.mu.open++
			l.mu.Unlock()
			if !began.IsZero() {
				l.metrics.AcceptBlocked(time.Since(began))
			}
			return nil
		}
		wake := l.mu.wake
		l.mu.Unlock()
		if began.IsZero() {
			began = time.Now()
		}
		select {
		case <-wake:
		case <-ctx.Done():
			l.metrics.AcceptBlocked(time.Since(began))
			return ctx.Err()
		}
	}
}

// releaseSlot gives back a slot taken by waitSlot.
func (l *Limits) releaseSlot() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.open--
	l.wakeLocked()
}

// openIP counts a connection from addr, or fails with ErrTooManyForIP
// when addr already has its maximum open (Kafka's ConnectionQuotas.inc
// throws TooManyConnectionsException then).
func (l *Limits) openIP(addr netip.Addr) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	limit := l.mu.perIP
	if o, ok := l.mu.overrides[addr]; ok {
		limit = o
	}
	n := l.mu.byIP[addr]
	if n >= limit {
		return fmt.Errorf("%w: %s has %d (max.connections.per.ip %d)", ErrTooManyForIP, addr, n, limit)
	}
	l.mu.byIP[addr] = n + 1
	return nil
}

// closeIP uncounts a connection counted by openIP.
func (l *Limits) closeIP(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.mu.byIP[addr]; n > 1 {
		l.mu.byIP[addr] = n - 1
	} else {
		delete(l.mu.byIP, addr)
	}
}

// remoteIP is the client address of a connection, without port and with
// an IPv4-mapped IPv6 address unmapped; the zero Addr when unknown.
func remoteIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// Budget bounds the bytes of request frames being read or served across
// every connection (queued.max.request.bytes). A connection acquires a
// frame's declared size before reading its body and releases it once the
// request has been handled, so the frames alive at any time add up to at
// most the limit.
//
// Reserving the whole declared size up front (rather than growing the
// reservation as bytes arrive) keeps the budget deadlock-free: a frame
// that holds budget never waits for more, so it always completes or
// times out. Memory is still allocated only as bytes arrive (see
// readFrame), so a client that declares a large frame and stalls holds
// budget, not memory, and only until socket.request.read.timeout.ms.
//
// Large frames wait in FIFO order (none starves). Small frames
// (<= smallFrameBytes) pass waiting large ones, and the last eighth of the
// limit is kept for them: a large frame is admitted only while it leaves
// that reserve free, or when no other frame holds budget (so any frame up
// to the limit can be read).
type Budget struct {
	// limit is the budget in bytes; reserve the part only small frames
	// may take. Constant; 0 < reserve < limit.
	limit, reserve int64
	metrics        *metrics.Network

	mu struct {
		sync.Mutex
		// inUse is the bytes held. Invariant: 0 <= inUse <= limit.
		// Guarded by mu.
		inUse int64
		// waiters are the frames waiting for budget, in arrival order.
		// Guarded by mu.
		waiters []*budgetWaiter
	}
}

// budgetWaiter is one frame waiting for n bytes; ready is closed once
// they are granted (by the releaser, which also removed it from waiters).
type budgetWaiter struct {
	n     int64
	ready chan struct{}
}

// NewBudget builds a budget of limit bytes (> 0).
func NewBudget(limit int64, m *metrics.Network) *Budget {
	if limit <= 0 {
		limit = DefaultQueuedMaxRequestBytes
	}
	b := &Budget{limit: limit, reserve: max(limit/8, 1), metrics: m}
	m.RequestBytesLimit(limit)
	return b
}

// Limit is the budget in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// InUse is the bytes currently held.
func (b *Budget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.inUse
}

// fitsLocked reports whether n bytes may be granted now.
func (b *Budget) fitsLocked(n int64) bool {
	if n <= smallFrameBytes {
		return b.mu.inUse+n <= b.limit
	}
	return b.mu.inUse == 0 || b.mu.inUse+n <= b.limit-b.reserve
}

// TryAcquire takes n bytes if they can be granted without waiting.
func (b *Budget) TryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.limit {
		return false
	}
	if (n <= smallFrameBytes || len(b.mu.waiters) == 0) && b.fitsLocked(n) {
		b.mu.inUse += n
		b.metrics.RequestBytes(n)
		return true
	}
	return false
}

// Acquire takes n bytes, waiting until they are free or ctx ends (then
// ErrBudgetTimeout, wrapping ctx's error). n must not exceed the limit
// (socket.request.max.bytes <= queued.max.request.bytes is checked when
// the config is read); a larger n fails at once.
func (b *Budget) Acquire(ctx context.Context, n int64) error {
	if n > b.limit {
		return fmt.Errorf("network: frame of %d bytes exceeds queued.max.request.bytes %d", n, b.limit)
	}
	if b.TryAcquire(n) {
		return nil
	}
	b.metrics.RequestBudgetWaited()
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.mu.Lock()
	// Checked again under the lock: a release between TryAcquire and
	// here would otherwise not see this waiter.
	if (n <= smallFrameBytes || len(b.mu.waiters) == 0) && b.fitsLocked(n) {
		b.mu.inUse += n
		b.mu.Unlock()
		b.metrics.RequestBytes(n)
		return nil
	}
	b.mu.waiters = append(b.mu.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-w.ready:
			// Granted while timing out: give it back.
			b.mu.Unlock()
			b.Release(n)
		default:
			for i, o := range b.mu.waiters {
				if o == w {
					b.mu.waiters = append(b.mu.waiters[:i], b.mu.waiters[i+1:]...)
					break
				}
			}
			// This waiter may have been the head holding back others.
			b.grantLocked()
			b.mu.Unlock()
		}
		return fmt.Errorf("%w: %w", ErrBudgetTimeout, ctx.Err())
	}
}

// Release gives back n bytes taken by TryAcquire or Acquire.
func (b *Budget) Release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.mu.inUse -= n
	if b.mu.inUse < 0 {
		b.mu.inUse = 0 // a bug elsewhere must not wedge the budget
	}
	b.metrics.RequestBytes(-n)
	b.grantLocked()
	b.mu.Unlock()
}

// grantLocked admits waiters that now fit: large ones strictly in order,
// small ones whenever they fit.
func (b *Budget) grantLocked() {
	kept := b.mu.waiters[:0]
	headBlocked := false
	for _, w := range b.mu.waiters {
		small := w.n <= smallFrameBytes
		if (small || !headBlocked) && b.fitsLocked(w.n) {
			b.mu.inUse += w.n
			b.metrics.RequestBytes(w.n)
			close(w.ready)
			continue
		}
		if !small {
			headBlocked = true
		}
		kept = append(kept, w)
	}
	for i := len(kept); i < len(b.mu.waiters); i++ {
		b.mu.waiters[i] = nil
	}
	b.mu.waiters = kept
}
