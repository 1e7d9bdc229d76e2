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
	// waiting counts the goroutines serving requests that may wait.
	waiting sync.WaitGroup
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

func (c *Conn) readLoop() {
	logger := c.srv.logger
	m := c.srv.opts.Metrics
	br := bufio.NewReaderSize(c.nc, readBufferBytes)
	var size [4]byte
	prevClientID := ""
	for {
		if _, err := io.ReadFull(br, size[:]); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				logger.Debug("connection read", "remote", c.remote, "err", err)
			}
			return
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		if err := CheckFrameSize(n, c.srv.opts.MaxRequestBytes); err != nil {
			logger.Info("closing connection", "remote", c.remote, "err", err)
			m.Failed(-1) // no header read: the API is unknown
			return
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(br, frame); err != nil {
			logger.Debug("connection read", "remote", c.remote, "err", err)
			return
		}
		var received time.Time
		if m != nil {
			received = time.Now()
			m.Received(4 + int(n))
		}
		h, req, err := parseRequest(frame, c.srv.versions, prevClientID)
		if err != nil {
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
		if c.srv.waiter != nil && c.srv.waiter.MayWait(req) {
			w := &waitResult{done: make(chan struct{})}
			p.wait = w
			c.waiting.Add(1)
			go func() {
				defer c.waiting.Done()
				w.resp, w.err = c.call(req)
				close(w.done)
			}()
			c.queue <- p
			continue
		}
		p.resp, p.err = c.call(req)
		c.queue <- p
		if p.err != nil {
			return
		}
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

func (c *Conn) writeLoop() {
	logger := c.srv.logger
	m := c.srv.opts.Metrics
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
					if ferr := bw.Flush(); ferr != nil {
						fail(ferr)
					}
				}
				<-p.wait.done
			}
			resp, err = p.wait.resp, p.wait.err
		}
		if !broken {
			if err != nil {
				logger.Info("closing connection", "remote", c.remote, "api", kmsg.NameForKey(p.key), "err", err)
				m.Failed(p.key)
				fail(err)
			} else if sent, werr := c.write(bw, sp, &buf, p.correlationID, resp); werr != nil {
				logger.Debug("connection write", "remote", c.remote, "err", werr)
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
			continue
		}
		if len(c.queue) == 0 && bw.Buffered() > 0 {
			if ferr := bw.Flush(); ferr != nil {
				logger.Debug("connection write", "remote", c.remote, "err", ferr)
				fail(ferr)
			}
		}
	}
	if !broken && bw.Buffered() > 0 {
		_ = bw.Flush()
	}
}
