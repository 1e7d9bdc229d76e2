package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metrics"
)

// Handler serves decoded requests.
type Handler interface {
	// Handle serves one decoded request. A nil response means send
	// nothing (Produce acks=0). A non-nil error closes the connection.
	// ctx is canceled when the connection closes.
	Handle(ctx context.Context, c *Conn, req kmsg.Request) (kmsg.Response, error)
}

// Waiter is optionally implemented by a Handler whose requests may block
// for a long time (a long-poll fetch). Such a request is served on its own
// goroutine so the connection keeps reading; every other request is
// served in order on the reading goroutine.
type Waiter interface {
	MayWait(req kmsg.Request) bool
}

// Releaser is optionally implemented by a Handler whose responses hold
// pooled memory: Release(resp) is called once resp has been written to
// the connection or dropped, and nothing touches resp after.
type Releaser interface {
	Release(resp kmsg.Response)
}

// FrameKeeper is optionally implemented by a Handler that holds on to
// nothing of some requests once Handle returned: for those, FrameFree(req)
// returns true and the frame req was decoded from (its byte fields alias
// it) goes back to a pool for the next frame. Large frames are the bulk of
// a broker's allocations under produce load: reusing them keeps the GC
// out of the produce path.
type FrameKeeper interface {
	FrameFree(req kmsg.Request) bool
}

// Options configure a listener.
type Options struct {
	Listener        string       // listener name, e.g. "PLAINTEXT"; Conn.Listener() returns it
	MaxRequestBytes int32        // socket.request.max.bytes: larger frames close the connection before allocating; <= 0: 100 MiB
	Logger          *slog.Logger // nil: slog.Default()
	// Metrics records request and connection metrics; nil records
	// nothing. Several listeners may share one.
	Metrics *metrics.Network
	// Limits are the broker-wide connection and request memory limits,
	// shared by every listener of a broker; nil: limits of this listener
	// alone, with the defaults. MaxRequestBytes must not exceed its
	// budget.
	Limits *Limits
	// IdleTimeout closes a connection with no request read, no response
	// pending and nothing written for this long (connections.max.idle.ms);
	// <= 0: 10 minutes.
	IdleTimeout time.Duration
	// RequestReadTimeout bounds reading a frame once its size prefix has
	// arrived, waiting for request budget included
	// (socket.request.read.timeout.ms); <= 0: 30 seconds.
	RequestReadTimeout time.Duration
	// Divert, when set, sees the first bytes of every connection (the
	// 4-byte size prefix plus whatever the reader buffered) before the
	// frame-size check, and may take the connection over: it returns
	// true once it has served c until the end (the metadata quorum's
	// raft transport shares the CONTROLLER listener this way; its
	// hello's size prefix is far above any Kafka frame), false at once
	// for a Kafka connection. nil: Kafka only.
	Divert func(peeked []byte, c net.Conn) bool
}

// Defaults of Options.
const (
	// defaultMaxRequestBytes is Kafka's socket.request.max.bytes default.
	defaultMaxRequestBytes = 100 * 1024 * 1024
	// DefaultIdleTimeout is Kafka's connections.max.idle.ms default.
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultRequestReadTimeout is socket.request.read.timeout.ms's
	// default: Kafka clients' request.timeout.ms, after which the client
	// has given up on the request anyway.
	DefaultRequestReadTimeout = 30 * time.Second
)

// Accept backoff after a failed accept, as net/http's Server.Serve does:
// from acceptBackoffMin doubling to acceptBackoffMax, reset by a
// successful accept.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	// acceptLogInterval is the least time between two log lines about
	// failed accepts; the failures in between are counted in the next line.
	acceptLogInterval = 5 * time.Second
)

// Server is one listening socket and its connections.
type Server struct {
	ln       net.Listener
	handler  Handler
	versions Versions    // nil when the handler does not restrict versions
	waiter   Waiter      // nil when no request waits
	keeper   FrameKeeper // nil: no frame is reused
	releaser Releaser    // nil when responses hold no pooled memory
	opts     Options
	logger   *slog.Logger

	// ctx is canceled by Close; every connection's context derives from it.
	ctx    context.Context
	cancel context.CancelFunc

	mu struct {
		sync.Mutex
		// conns holds the open connections. Guarded by mu.
		conns map[*Conn]struct{}
		// closed is set by Close; no connection is added after. Guarded by mu.
		closed bool
		// serving is set once Serve started the accept loop.
		serving bool
	}
	// wg counts the accept loop and every connection's serve goroutine.
	wg sync.WaitGroup
	// stallLogs rate-limits the lines about stalled connections, which
	// a client can cause at will.
	stallLogs lockedLimiter
}

// Listen binds the TCP address addr (port 0 picks a free port) and starts
// serving connections with h.
func Listen(addr string, h Handler, opts Options) (*Server, error) {
	s, err := Bind(addr, h, opts)
	if err != nil {
		return nil, err
	}
	s.Serve()
	return s, nil
}

// Bind binds addr like Listen but does not accept connections until
// Serve: clients that connect meanwhile wait in the kernel's backlog.
// The composition root binds first so it can publish the bound address
// (port 0) before the first request is served.
func Bind(addr string, h Handler, opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("network: listen %s: %w", addr, err)
	}
	s, err := NewServer(ln, h, opts)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return s, nil
}

// NewServer serves connections accepted from ln (owned by the Server from
// now on) once Serve is called.
func NewServer(ln net.Listener, h Handler, opts Options) (*Server, error) {
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = defaultMaxRequestBytes
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.RequestReadTimeout <= 0 {
		opts.RequestReadTimeout = DefaultRequestReadTimeout
	}
	if opts.Limits == nil {
		opts.Limits = NewLimits(LimitsConfig{QueuedMaxRequestBytes: max(DefaultQueuedMaxRequestBytes, int64(opts.MaxRequestBytes)), Metrics: opts.Metrics})
	}
	if int64(opts.MaxRequestBytes) > opts.Limits.budget.Limit() {
		return nil, fmt.Errorf("network: socket.request.max.bytes %d exceeds queued.max.request.bytes %d", opts.MaxRequestBytes, opts.Limits.budget.Limit())
	}
	s := &Server{ln: ln, handler: h, opts: opts, logger: opts.Logger}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.logger = s.logger.With("listener", opts.Listener)
	s.versions, _ = h.(Versions)
	s.waiter, _ = h.(Waiter)
	s.keeper, _ = h.(FrameKeeper)
	s.releaser, _ = h.(Releaser)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mu.conns = map[*Conn]struct{}{}
	return s, nil
}

// Serve starts accepting connections. It is called once; Close stops it.
func (s *Server) Serve() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed || s.mu.serving {
		return
	}
	s.mu.serving = true
	s.wg.Add(1)
	go s.acceptLoop()
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// acceptLoop accepts connections until the listener is closed. A failed
// accept never ends it: it backs off (out of file descriptors, the
// pending connection stays in the kernel's backlog until one is freed)
// and tries again, as net/http's Server.Serve does.
func (s *Server) acceptLoop() {
	defer s.wg.Done()
	limits := s.opts.Limits
	var backoff time.Duration
	var acceptLogs, rejectLogs logLimiter
	for {
		// At max.connections, stop accepting (Kafka's acceptor waits
		// for a slot the same way): new clients wait in the backlog.
		if err := limits.waitSlot(s.ctx); err != nil {
			return
		}
		nc, err := s.ln.Accept()
		if err != nil {
			limits.releaseSlot()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.opts.Metrics.AcceptFailed()
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			if ok, suppressed := acceptLogs.allow(time.Now(), acceptLogInterval); ok {
				s.logger.Error("accept failed; retrying", "err", err, "backoff", backoff, "suppressed", suppressed)
			}
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		ip := remoteIP(nc.RemoteAddr())
		if err := limits.openIP(ip); err != nil {
			// Kafka closes such a connection right after accepting it.
			nc.Close()
			limits.releaseSlot()
			s.opts.Metrics.RejectedPerIP()
			if ok, suppressed := rejectLogs.allow(time.Now(), acceptLogInterval); ok {
				s.logger.Warn("connection rejected", "remote", nc.RemoteAddr(), "err", err, "suppressed", suppressed)
			}
			continue
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := newConn(s, nc)
		s.mu.Lock()
		if s.mu.closed {
			s.mu.Unlock()
			nc.Close()
			limits.closeIP(ip)
			limits.releaseSlot()
			return
		}
		s.mu.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.opts.Metrics.Opened()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.mu.conns, c)
			s.mu.Unlock()
			limits.closeIP(ip)
			limits.releaseSlot()
			s.opts.Metrics.Closed()
		}()
	}
}

// lockedLimiter is a logLimiter shared by goroutines.
type lockedLimiter struct {
	mu sync.Mutex
	l  logLimiter // guarded by mu
}

func (l *lockedLimiter) allow(now time.Time, interval time.Duration) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.l.allow(now, interval)
}

// logLimiter lets a log line through at most once per interval and counts
// the ones it held back. Owned by one goroutine.
type logLimiter struct {
	last       time.Time // when the last line went out; zero: never
	suppressed int       // lines held back since then
}

// allow reports whether a line may be logged at now, and how many were
// held back before it (reset when it returns true).
func (l *logLimiter) allow(now time.Time, interval time.Duration) (bool, int) {
	if !l.last.IsZero() && now.Sub(l.last) < interval {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}

// Close stops accepting, closes every connection (parked requests see
// their context canceled) and waits for every goroutine to end.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	err := s.ln.Close()
	for c := range s.mu.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
