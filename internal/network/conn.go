package network

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// maxInFlight bounds the responses queued for the writer per
	// connection; the reader stops reading when it is reached (back
	// pressure instead of unbounded memory).
	maxInFlight = 128
	// readBufferBytes and writeBufferBytes size the buffered reader and
	// writer of a connection: small requests and responses cost one
	// syscall per batch of them.
	readBufferBytes  = 32 << 10
	writeBufferBytes = 64 << 10
	// keepEncodeBuffer is the largest encode buffer a connection keeps
	// between responses; a bigger one (a large fetch) is dropped so an
	// idle connection does not pin it.
	keepEncodeBuffer = 1 << 20
	// frameChunkBytes is the first allocation for a frame whose body has
	// not arrived yet; the buffer then doubles as bytes arrive, up to the
	// declared size, so memory follows the bytes received rather than
	// the size a client claims.
	frameChunkBytes = 64 << 10
	// frameWholeBytes: a frame up to this size is allocated at its
	// declared size at once. Growing by doubling costs a copy and a zeroed
	// allocation per step, which showed up as ~15% of the server's CPU in
	// sustained produce runs (kgo sends produce frames of several MiB). A
	// client that declares this much and sends nothing pins at most this
	// per connection, and queued.max.request.bytes bounds the sum: the
	// resident worst case is the budget, not connections x declared size.
	frameWholeBytes = 16 << 20
)

// Conn is one client connection.
type Conn struct {
	srv    *Server
	nc     net.Conn
	remote net.Addr

	// ctx is canceled when the connection ends (or the server closes).
	ctx    context.Context
	cancel context.CancelFunc

	// clientID is the client id of the latest request read; nil before
	// the first. Written by the reading goroutine only.
	clientID atomic.Pointer[string]

	// queue carries responses to the writer in request order. Closed by
	// the reading goroutine when it stops.
	queue chan pending
	// unanswered counts requests read whose response the writer has not
	// finished with; a connection with any is not idle.
	unanswered atomic.Int32
	// lastWrite is when the writer last wrote to the socket, Unix
	// nanoseconds (0: never); connections.max.idle.ms counts from the
	// later of it and the last request read.
	lastWrite atomic.Int64
	// waiting counts the goroutines serving requests that may wait.
	waiting sync.WaitGroup
	// deferred is set by Defer during an inline Handle call and taken
	// by the reading goroutine right after it; only that goroutine
	// touches it.
	deferred func() (kmsg.Response, error)
}

// Defer, called by a handler serving a request inline (not one its
// Waiter let wait on its own goroutine), makes the request's response
// come from finish instead of Handle's return values: Handle returns
// (nil, nil) and finish runs on its own goroutine, so the connection
// reads and serves the next requests meanwhile, and the responses still
// go out in request order. It lets a handler do the ordered part of a
// request inline (a produce's append) and wait for the rest (its
// replication) without holding up the connection. finish must return by
// itself in bounded time (the connection's context ends when it
// closes) and must not touch the request's bytes: the frame may be
// reused once Handle returned.
func (c *Conn) Defer(finish func() (kmsg.Response, error)) {
	c.deferred = finish
}

// pending is one request's place in the response order.
type pending struct {
	correlationID int32
	key           int16
	resp          kmsg.Response // inline requests: the response (nil: none)
	err           error         // inline requests: a handler error
	wait          *waitResult   // requests served on their own goroutine
	// received is when the request's last byte was read (zero without
	// metrics): the start of its latency, as Kafka's RequestMetrics
	// TotalTimeMs counts it.
	received time.Time
}

// waitResult is the outcome of a request served on its own goroutine;
// resp and err are written before done is closed.
type waitResult struct {
	done chan struct{}
	resp kmsg.Response
	err  error
}

func newConn(s *Server, nc net.Conn) *Conn {
	c := &Conn{srv: s, nc: nc, remote: nc.RemoteAddr(), queue: make(chan pending, maxInFlight)}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	return c
}

// Listener is the name of the listener the connection came in on.
func (c *Conn) Listener() string { return c.srv.opts.Listener }

// RemoteAddr is the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr is the address the client connected to.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// ClientID is the client id of the latest request on the connection ("" if
// none or null).
func (c *Conn) ClientID() string {
	if p := c.clientID.Load(); p != nil {
		return *p
	}
	return ""
}

// serve runs the connection until the client goes away, a request is
// invalid or the server closes, then waits for its goroutines.
func (c *Conn) serve() {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	c.readLoop()
	close(c.queue)
	// Parked requests end now: nobody reads their answers after the
	// writer drains.
	c.cancel()
	<-writerDone
	c.waiting.Wait()
	c.nc.Close()
}

// readLoop reads and serves frames until the client goes away, a frame
// is invalid, the connection has been idle for connections.max.idle.ms or
// a frame is not read within socket.request.read.timeout.ms.
func (c *Conn) readLoop() {
	logger := c.srv.logger
	m := c.srv.opts.Metrics
	idle := c.srv.opts.IdleTimeout
	budget := c.srv.opts.Limits.budget
	br := bufio.NewReaderSize(c.nc, readBufferBytes)
	dl := deadline{setter: c.nc.SetReadDeadline}
	var size [4]byte
	prevClientID := ""
	// idleSince is when the reader last found no frame waiting; zero
	// while frames keep arriving.
	var idleSince time.Time
	// first is true until the first size prefix is read (Options.Divert).
	first := true
	for {
		if br.Buffered() < len(size) {
			if idleSince.IsZero() {
				idleSince = time.Now()
			}
			dl.setLazily(idleSince.Add(idle), idle/16)
		}
		if k, err := io.ReadFull(br, size[:]); err != nil {
			if k == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
				if again, ok := c.stillActive(idleSince, idle); ok {
					idleSince = again
					dl.set(again.Add(idle)) // the deadline that fired is past: re-arm it
					continue
				}
				logger.Debug("closing idle connection", "remote", c.remote, "idle", idle)
				m.TimedOutIdle()
				return
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				logger.Debug("connection read", "remote", c.remote, "err", err)
			}
			return
		}
		idleSince = time.Time{}
		if first && c.srv.opts.Divert != nil {
			first = false
			buffered, _ := br.Peek(br.Buffered())
			peeked := append(size[:len(size):len(size)], buffered...)
			if c.srv.opts.Divert(peeked, c.nc) {
				return // served by another protocol until it ended
			}
		}
		first = false
		n := int32(binary.BigEndian.Uint32(size[:]))
		if err := CheckFrameSize(n, c.srv.opts.MaxRequestBytes); err != nil {
			logger.Info("closing connection", "remote", c.remote, "err", err)
			m.Failed(-1) // no header read: the API is unknown
			return
		}
		frame, err := c.readFrame(br, &dl, budget, n)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, ErrBudgetTimeout) {
				if ok, suppressed := c.srv.stallLogs.allow(time.Now(), acceptLogInterval); ok {
					logger.Info("closing stalled connection", "remote", c.remote, "frame_bytes", n, "timeout", c.srv.opts.RequestReadTimeout, "err", err, "suppressed", suppressed)
				}
				m.TimedOutStalled()
			} else {
				logger.Debug("connection read", "remote", c.remote, "err", err)
			}
			return
		}
		held := int64(n) // budget to give back once the request is served
		var received time.Time
		if m != nil {
			received = time.Now()
			m.Received(4 + int(n))
		}
		h, req, err := parseRequest(frame, c.srv.versions, prevClientID)
		if err != nil {
			budget.Release(held)
			logger.Info("closing connection", "remote", c.remote, "client_id", h.ClientID, "err", err)
			m.Failed(h.APIKey)
			return
		}
		if h.ClientID != prevClientID || c.clientID.Load() == nil {
			id := h.ClientID
			c.clientID.Store(&id)
			prevClientID = id
		}
		p := pending{correlationID: h.CorrelationID, key: h.APIKey, received: received}
		c.unanswered.Add(1)
		if c.srv.waiter != nil && c.srv.waiter.MayWait(req) {
			w := &waitResult{done: make(chan struct{})}
			p.wait = w
			c.waiting.Add(1)
			go func() {
				defer c.waiting.Done()
				w.resp, w.err = c.call(req)
				c.srv.freeFrame(req, frame)
				budget.Release(held)
				close(w.done)
			}()
			c.queue <- p
			continue
		}
		p.resp, p.err = c.call(req)
		c.srv.freeFrame(req, frame)
		budget.Release(held)
		if finish := c.deferred; finish != nil {
			c.deferred = nil
			if p.err == nil {
				w := &waitResult{done: make(chan struct{})}
				p.wait = w
				c.waiting.Add(1)
				go func() {
					defer c.waiting.Done()
					w.resp, w.err = c.finish(req, finish)
					close(w.done)
				}()
			}
		}
		c.queue <- p
		if p.err != nil {
			return
		}
	}
}

// stillActive decides, when the idle deadline fired, whether the
// connection was in fact busy: a response still pending, or a write or
// read less than idle ago. It returns the time idleness starts from
// again.
func (c *Conn) stillActive(idleSince time.Time, idle time.Duration) (time.Time, bool) {
	now := time.Now()
	if c.unanswered.Load() > 0 {
		return now, true
	}
	last := idleSince
	if w := c.lastWrite.Load(); w != 0 {
		if wt := time.Unix(0, w); wt.After(last) {
			last = wt
		}
	}
	if now.Sub(last) < idle {
		return last, true
	}
	return time.Time{}, false
}

// readFrame reads a frame body of n bytes (its size already checked)
// after taking n bytes of request budget, which the caller gives back
// once the request is served (readFrame gives it back on error). When the
// body is not all buffered yet, reading (and waiting for budget) must end
// within socket.request.read.timeout.ms, and the buffer grows as bytes
// arrive instead of being allocated at the declared size.
func (c *Conn) readFrame(br *bufio.Reader, dl *deadline, budget *Budget, n int32) ([]byte, error) {
	var deadline time.Time
	if !budget.TryAcquire(int64(n)) {
		deadline = time.Now().Add(c.srv.opts.RequestReadTimeout)
		ctx, cancel := context.WithDeadline(c.ctx, deadline)
		err := budget.Acquire(ctx, int64(n))
		cancel()
		if err != nil {
			if c.ctx.Err() != nil {
				return nil, net.ErrClosed // the connection or server closed meanwhile
			}
			return nil, err
		}
	}
	if br.Buffered() >= int(n) {
		frame := getFrame(int(n))
		_, _ = io.ReadFull(br, frame) // from the buffer: cannot fail
		return frame, nil
	}
	if deadline.IsZero() {
		deadline = time.Now().Add(c.srv.opts.RequestReadTimeout)
	}
	dl.set(deadline)
	if n <= frameWholeBytes {
		frame := getFrame(int(n))
		if _, err := io.ReadFull(br, frame); err != nil {
			putFrame(frame)
			budget.Release(int64(n))
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return frame, nil
	}
	frame := make([]byte, 0, min(int(n), max(frameChunkBytes, br.Buffered())))
	for len(frame) < int(n) {
		if len(frame) == cap(frame) {
			grown := make([]byte, len(frame), min(int(n), 2*cap(frame)))
			copy(grown, frame)
			frame = grown
		}
		k, err := br.Read(frame[len(frame):cap(frame)])
		frame = frame[:len(frame)+k]
		if err != nil && len(frame) < int(n) {
			budget.Release(int64(n))
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return frame, nil
}

// deadline is a read or write deadline of a connection as last set, so
// that setting the same one again costs no call. Owned by the goroutine
// that reads (or writes).
type deadline struct {
	setter func(time.Time) error // the conn's SetReadDeadline or SetWriteDeadline
	cur    time.Time             // the deadline set; zero: none
}

// set makes t the deadline.
func (d *deadline) set(t time.Time) {
	if !t.Equal(d.cur) {
		_ = d.setter(t)
		d.cur = t
	}
}

func (d *deadline) setLazily(t time.Time, slack time.Duration) {
	if d.cur.IsZero() || d.cur.After(t) || t.Sub(d.cur) > slack {
		d.set(t)
	}
}

// call runs the handler; a panic becomes an error that closes only this
// connection.
func (c *Conn) call(req kmsg.Request) (resp kmsg.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("network: handler panic serving %s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), r)
		}
	}()
	return c.srv.handler.Handle(c.ctx, c, req)
}

// finish runs a deferred response (Defer); a panic becomes an error that
// closes only this connection.
func (c *Conn) finish(req kmsg.Request, finish func() (kmsg.Response, error)) (resp kmsg.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("network: deferred handler panic serving %s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), r)
		}
	}()
	return finish()
}

// write encodes resp (nil: nothing) into bw, or for a large fetch sends
// what bw holds and then the frame as a vector straight to the socket.
// *buf is the reusable encode buffer. It returns the frame's size.
func (c *Conn) write(bw *bufio.Writer, sp *splicer, buf *[]byte, correlationID int32, resp kmsg.Response) (int, error) {
	if vec := sp.frame(correlationID, resp); vec != nil {
		if err := bw.Flush(); err != nil {
			return 0, err
		}
		n, err := vec.WriteTo(c.nc)
		return int(n), err
	}
	if resp == nil {
		return 0, nil
	}
	*buf = AppendResponse((*buf)[:0], correlationID, resp)
	n, err := bw.Write(*buf)
	if cap(*buf) > keepEncodeBuffer {
		*buf = nil
	}
	return n, err
}

// writeLoop writes the responses in request order. A write that makes no
// progress for connections.max.idle.ms (a client that stopped reading)
// fails and closes the connection, as Kafka's idle expiry would: without
// it such a client would pin up to maxInFlight responses forever.
func (c *Conn) writeLoop() {
	logger := c.srv.logger
	m := c.srv.opts.Metrics
	idle := c.srv.opts.IdleTimeout
	wd := deadline{setter: c.nc.SetWriteDeadline}
	bw := bufio.NewWriterSize(c.nc, writeBufferBytes)
	sp := newSplicer(rand.Uint64())
	var buf []byte
	broken := false
	fail := func(err error) {
		broken = true
		c.cancel()
		c.nc.Close() // unblocks the reader
		_ = err
	}
	for p := range c.queue {
		resp, err := p.resp, p.err
		if p.wait != nil {
			select {
			case <-p.wait.done:
			default:
				// Send what is ready before parking behind this request.
				if !broken && bw.Buffered() > 0 {
					wd.setLazily(time.Now().Add(idle), idle/16)
					if ferr := bw.Flush(); ferr != nil {
						c.writeFailed(ferr)
						fail(ferr)
					}
				}
				<-p.wait.done
			}
			resp, err = p.wait.resp, p.wait.err
		}
		if !broken {
			wd.setLazily(time.Now().Add(idle), idle/16)
			if err != nil {
				logger.Info("closing connection", "remote", c.remote, "api", kmsg.NameForKey(p.key), "err", err)
				m.Failed(p.key)
				fail(err)
			} else if sent, werr := c.write(bw, sp, &buf, p.correlationID, resp); werr != nil {
				c.writeFailed(werr)
				fail(werr)
			} else if m != nil {
				// A response still in bw counts as written: it leaves
				// with the flush made once no response is queued.
				m.Done(p.key, time.Since(p.received), sent)
			}
		}
		if resp != nil && c.srv.releaser != nil {
			c.srv.releaser.Release(resp)
		}
		if broken {
			c.unanswered.Add(-1)
			continue
		}
		if len(c.queue) == 0 {
			if bw.Buffered() > 0 {
				if ferr := bw.Flush(); ferr != nil {
					c.writeFailed(ferr)
					fail(ferr)
				}
			}
			c.lastWrite.Store(time.Now().UnixNano())
		}
		c.unanswered.Add(-1)
	}
	if !broken && bw.Buffered() > 0 {
		_ = bw.Flush()
	}
}

// writeFailed logs a failed write; one that timed out is a client that
// stopped reading for connections.max.idle.ms, closed as idle.
func (c *Conn) writeFailed(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.srv.logger.Info("closing connection: client not reading responses", "remote", c.remote, "idle", c.srv.opts.IdleTimeout)
		c.srv.opts.Metrics.TimedOutIdle()
		return
	}
	c.srv.logger.Debug("connection write", "remote", c.remote, "err", err)
}
