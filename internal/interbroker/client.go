// Package interbroker is the Kafka-protocol client brokers use among
// themselves: registration and heartbeats to the active controller,
// admin requests forwarded to it, producer id blocks, and transaction
// markers to the leaders of other brokers' partitions. It speaks kmsg
// over plain TCP (not a full client such as kgo): one connection per
// address, ApiVersions negotiated when it opens, one request in flight at
// a time, bounded responses, and a broken or timed-out connection is
// reset (nothing still queued in it is delivered later) and dialled again
// by the next request.
package interbroker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Errors of the client.
var (
	// ErrUnsupported: the peer does not serve the request's API key, or
	// no version both sides know.
	ErrUnsupported = errors.New("interbroker: api not supported by the peer")
	// ErrResponse: the peer's response is malformed (bad correlation id,
	// size over Options.MaxResponseBytes, undecodable body). The
	// connection is dropped.
	ErrResponse = errors.New("interbroker: bad response")
	// ErrClosed is returned once the client is closed.
	ErrClosed = errors.New("interbroker: client closed")
)

// Options configure a Client.
type Options struct {
	// ClientID is sent in every request header ("samsa-broker-<id>").
	ClientID string
	// DialTimeout bounds a TCP connect plus the ApiVersions exchange;
	// <= 0: 5 s.
	DialTimeout time.Duration
	// RequestTimeout bounds one request's write and its response's read
	// when ctx has no earlier deadline; <= 0: 30 s (Kafka's
	// request.timeout.ms).
	RequestTimeout time.Duration
	// MaxResponseBytes bounds a response frame; <= 0: 100 MiB.
	MaxResponseBytes int32
	Logger           *slog.Logger // nil: slog.Default()
}

// Client sends requests to brokers by address. Safe for concurrent use;
// requests to one address are serialized on its connection.
type Client struct {
	opts      Options
	logger    *slog.Logger
	formatter *kmsg.RequestFormatter

	mu sync.Mutex
	// conns holds one connection per address; guarded by mu.
	conns map[string]*conn
	// closed is set by Close; guarded by mu.
	closed bool
	// life ends at Close: in-flight requests end with it.
	life   context.Context
	cancel context.CancelFunc
}

// New returns a Client.
func New(opts Options) *Client {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = 100 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	life, cancel := context.WithCancel(context.Background())
	return &Client{
		opts: opts, logger: opts.Logger, conns: map[string]*conn{}, life: life, cancel: cancel,
		formatter: kmsg.NewRequestFormatter(kmsg.FormatterClientID(opts.ClientID)),
	}
}

// conn is one connection to an address. mu is held for a whole request
// (write and read), so one request is in flight at a time.
type conn struct {
	mu sync.Mutex
	// nc is the TCP connection, nil until dialled and after a failure;
	// guarded by mu.
	nc net.Conn
	br *bufio.Reader
	// versions are the peer's max versions by key (ApiVersions); guarded
	// by mu.
	versions map[int16]int16
	// corr is the last correlation id used; guarded by mu.
	corr int32
}

// Request sends req to addr and returns its response. req's version is
// set to the highest both sides serve. A transport error drops the
// connection; the next request dials again.
func (c *Client) Request(ctx context.Context, addr string, req kmsg.Request) (kmsg.Response, error) {
	return c.request(ctx, addr, req, nil)
}

// RequestReusing is Request reading the response frame into *buf, grown
// as needed (up to MaxResponseBytes) and kept for the next call, instead
// of a new slice each time: the replica fetcher's responses are
// megabytes, and allocating (and zeroing) one per round cost more CPU
// than decoding it. The response's byte fields (a fetch's record
// batches) alias *buf: they are valid only until the next call with the
// same buf, which the caller must not make concurrently.
func (c *Client) RequestReusing(ctx context.Context, addr string, req kmsg.Request, buf *[]byte) (kmsg.Response, error) {
	return c.request(ctx, addr, req, buf)
}

func (c *Client) request(ctx context.Context, addr string, req kmsg.Request, buf *[]byte) (kmsg.Response, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	cn := c.conns[addr]
	if cn == nil {
		cn = &conn{}
		c.conns[addr] = cn
	}
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopLife := context.AfterFunc(c.life, cancel)
	defer stopLife()

	// Waiting for the connection is bounded by ctx: a request stuck on
	// it holds cn.mu at most RequestTimeout.
	locked := make(chan struct{})
	go func() { cn.mu.Lock(); close(locked) }()
	select {
	case <-locked:
	case <-ctx.Done():
		go func() { <-locked; cn.mu.Unlock() }()
		return nil, ctx.Err()
	}
	defer cn.mu.Unlock()
	if cn.nc == nil {
		if err := c.dialLocked(ctx, addr, cn); err != nil {
			return nil, err
		}
	}
	max, ok := cn.versions[req.Key()]
	if !ok || max < 0 {
		return nil, fmt.Errorf("%w: %s at %s", ErrUnsupported, kmsg.NameForKey(req.Key()), addr)
	}
	v := min(req.MaxVersion(), max)
	req.SetVersion(v)
	resp, err := c.roundTripLocked(ctx, cn, req, buf)
	if err != nil {
		abort(cn.nc)
		cn.nc = nil
		return nil, fmt.Errorf("interbroker: %s to %s: %w", kmsg.NameForKey(req.Key()), addr, err)
	}
	return resp, nil
}

// abort closes nc at once (SO_LINGER 0): a request still in its send
// buffer is dropped, never delivered later. Without it the kernel keeps
// retransmitting a request written into a cut-off network after the
// caller gave up, and a peer reached again when the network heals
// would still receive and execute it (say, a forwarded CreateTopics
// whose client is long gone).
func abort(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	nc.Close()
}

// dialLocked connects and negotiates versions (ApiVersions v3, falling
// back to v0 when the peer answers UNSUPPORTED_VERSION).
func (c *Client) dialLocked(ctx context.Context, addr string, cn *conn) error {
	dctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("interbroker: dial %s: %w", addr, err)
	}
	cn.nc, cn.br = nc, bufio.NewReader(nc)
	for _, v := range []int16{3, 0} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "samsa", "1"
		r, err := c.roundTripLocked(dctx, cn, req, nil)
		if err != nil {
			nc.Close()
			cn.nc = nil
			return fmt.Errorf("interbroker: api versions with %s: %w", addr, err)
		}
		resp := r.(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode == 35 && v > 0 { // UNSUPPORTED_VERSION: retry at v0
			continue
		}
		if resp.ErrorCode != 0 {
			nc.Close()
			cn.nc = nil
			return fmt.Errorf("interbroker: api versions with %s: error code %d", addr, resp.ErrorCode)
		}
		cn.versions = make(map[int16]int16, len(resp.ApiKeys))
		for _, k := range resp.ApiKeys {
			cn.versions[k.ApiKey] = k.MaxVersion
		}
		return nil
	}
	nc.Close()
	cn.nc = nil
	return fmt.Errorf("interbroker: api versions with %s: no version agreed", addr)
}

// roundTripLocked writes req and reads its response, into *reuse when
// reuse is not nil (see RequestReusing).
func (c *Client) roundTripLocked(ctx context.Context, cn *conn, req kmsg.Request, reuse *[]byte) (kmsg.Response, error) {
	deadline := time.Now().Add(c.opts.RequestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	nc := cn.nc // the callback below may run after cn.nc is reset
	_ = nc.SetDeadline(deadline)
	// ctx cancelation ends a blocked read or write.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	defer stop()
	cn.corr++
	corr := cn.corr
	if _, err := nc.Write(c.formatter.AppendRequest(nil, req, corr)); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(cn.br, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > c.opts.MaxResponseBytes {
		return nil, fmt.Errorf("%w: frame of %d bytes", ErrResponse, n)
	}
	var buf []byte
	switch {
	case reuse == nil:
		buf = make([]byte, n)
	case cap(*reuse) >= int(n):
		buf = (*reuse)[:n]
	default:
		buf = make([]byte, n)
		*reuse = buf
	}
	if _, err := io.ReadFull(cn.br, buf); err != nil {
		return nil, err
	}
	return decodeResponse(req, corr, buf)
}

// decodeResponse checks a response frame's header (correlation id;
// tagged fields of a flexible response, except ApiVersions whose header
// is never flexible) and decodes its body.
func decodeResponse(req kmsg.Request, corr int32, buf []byte) (kmsg.Response, error) {
	r := kbin.Reader{Src: buf}
	if got := r.Int32(); got != corr {
		return nil, fmt.Errorf("%w: correlation id %d, want %d", ErrResponse, got, corr)
	}
	if req.IsFlexible() && req.Key() != 18 {
		for n := r.Uvarint(); n > 0 && r.Ok(); n-- {
			r.Uvarint()
			r.Span(int(r.Uvarint()))
		}
		if !r.Ok() {
			return nil, fmt.Errorf("%w: header", ErrResponse)
		}
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(r.Src); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrResponse, err)
	}
	return resp, nil
}

// Close drops every connection; later requests fail with ErrClosed.
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	c.cancel()
	conns := c.conns
	c.conns = nil
	c.mu.Unlock()
	for _, cn := range conns {
		cn.mu.Lock()
		if cn.nc != nil {
			cn.nc.Close()
			cn.nc = nil
		}
		cn.mu.Unlock()
	}
}
