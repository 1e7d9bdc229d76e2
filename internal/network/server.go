package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

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

// Options configure a listener.
type Options struct {
	Listener        string       // listener name, e.g. "PLAINTEXT"; Conn.Listener() returns it
	MaxRequestBytes int32        // socket.request.max.bytes: larger frames close the connection before allocating; <= 0: 100 MiB
	Logger          *slog.Logger // nil: slog.Default()
	// Metrics records request and connection metrics; nil records
	// nothing. Several listeners may share one.
	Metrics *metrics.Network
}

// defaultMaxRequestBytes is Kafka's socket.request.max.bytes default.
const defaultMaxRequestBytes = 100 * 1024 * 1024

// Server is one listening socket and its connections.
type Server struct {
	ln       net.Listener
	handler  Handler
	versions Versions // nil when the handler does not restrict versions
	waiter   Waiter   // nil when no request waits
	releaser Releaser // nil when responses hold no pooled memory
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
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = defaultMaxRequestBytes
	}
	s := &Server{ln: ln, handler: h, opts: opts, logger: opts.Logger}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.logger = s.logger.With("listener", opts.Listener)
	s.versions, _ = h.(Versions)
	s.waiter, _ = h.(Waiter)
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

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.logger.Error("accept", "err", err)
			return
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := newConn(s, nc)
		s.mu.Lock()
		if s.mu.closed {
			s.mu.Unlock()
			nc.Close()
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
			s.opts.Metrics.Closed()
		}()
	}
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
