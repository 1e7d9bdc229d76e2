package network_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// bigTopicName makes the answer to a Metadata request for topic "big"
// about 32 KiB.
var bigTopicName = strings.Repeat("x", 32000)

// fakeHandler serves ApiVersions (v0-v4), Metadata (v0-v12) and Fetch
// (v4-v12); a Fetch parks until release is closed (or the connection
// closes), a Metadata whose first topic is "fail" returns an error, one
// named "none" returns no response and one named "big" a 32 KiB one.
type fakeHandler struct {
	release chan struct{}
	parked  atomic.Int32 // fetches currently parked
	served  atomic.Int32 // metadata requests served
	clients sync.Map     // client ids seen
}

func newFakeHandler() *fakeHandler { return &fakeHandler{release: make(chan struct{})} }

func (h *fakeHandler) VersionRange(key int16) (int16, int16, bool) {
	switch key {
	case 18:
		return 0, 4, true
	case 3:
		return 0, 12, true
	case 1:
		return 4, 12, true
	}
	return 0, 0, false
}

func (h *fakeHandler) MayWait(req kmsg.Request) bool { return req.Key() == 1 }

func (h *fakeHandler) Handle(ctx context.Context, c *network.Conn, req kmsg.Request) (kmsg.Response, error) {
	h.clients.Store(c.ClientID(), c.Listener())
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
		if r.Version > 4 {
			resp.Version, resp.ErrorCode = 0, kerr.UnsupportedVersion.Code
		}
		resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MinVersion: 0, MaxVersion: 4}}
		return resp, nil
	case *kmsg.MetadataRequest:
		h.served.Add(1)
		if len(r.Topics) > 0 && r.Topics[0].Topic != nil {
			switch *r.Topics[0].Topic {
			case "fail":
				return nil, errors.New("fake: fail")
			case "none":
				return nil, nil
			case "panic":
				panic("fake: panic")
			case "defer":
				resp := r.ResponseKind()
				c.Defer(func() (kmsg.Response, error) {
					select {
					case <-h.release:
					case <-ctx.Done():
					}
					return resp, nil
				})
				return nil, nil
			case "big":
				resp := r.ResponseKind().(*kmsg.MetadataResponse)
				rt := kmsg.NewMetadataResponseTopic()
				rt.Topic = &bigTopicName
				resp.Topics = append(resp.Topics, rt)
				return resp, nil
			}
		}
		return r.ResponseKind(), nil
	case *kmsg.FetchRequest:
		h.parked.Add(1)
		defer h.parked.Add(-1)
		select {
		case <-h.release:
		case <-ctx.Done():
		}
		return r.ResponseKind(), nil
	}
	return nil, errors.New("fake: unexpected request")
}

func listen(t *testing.T, h network.Handler, maxBytes int32) *network.Server {
	t.Helper()
	s, err := network.Listen("127.0.0.1:0", h, network.Options{Listener: "PLAINTEXT", MaxRequestBytes: maxBytes, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// rawConn is a test client writing frames by hand.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
	f  *kmsg.RequestFormatter
}

func dial(t testing.TB, s *network.Server) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc), f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw-test"))}
}

func (c *rawConn) send(req kmsg.Request, corr int32) {
	c.t.Helper()
	if _, err := c.nc.Write(c.f.AppendRequest(nil, req, corr)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// recv reads one response frame into resp (whose version must be set)
// and returns its correlation id.
func (c *rawConn) recv(resp kmsg.Response) (int32, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		return 0, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.br, body); err != nil {
		return 0, err
	}
	r := kbin.Reader{Src: body}
	corr := r.Int32()
	if resp.IsFlexible() && resp.Key() != 18 {
		kmsg.SkipTags(&r)
	}
	return corr, resp.ReadFrom(r.Src)
}

// expectClosed asserts the server closes the connection without answering.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	var b [1]byte
	n, err := c.br.Read(b[:])
	if err == nil {
		c.t.Fatalf("connection still open: read %d bytes", n)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("connection not closed: %v", err)
	}
}

func metadataReq(version int16, topic string) *kmsg.MetadataRequest {
	r := kmsg.NewPtrMetadataRequest()
	r.Version = version
	if topic != "" {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = &topic
		r.Topics = append(r.Topics, rt)
	}
	return r
}

func TestNetworkRoundTripFlexibleAndNot(t *testing.T) {
	h := newFakeHandler()
	s := listen(t, h, 0)
	c := dial(t, s)
	for i, v := range []int16{0, 1, 9, 12} { // v9+ is flexible: header tags both ways
		c.send(metadataReq(v, ""), int32(100+i))
		resp := &kmsg.MetadataResponse{Version: v}
		corr, err := c.recv(resp)
		if err != nil || corr != int32(100+i) {
			t.Fatalf("v%d: corr %d err %v", v, corr, err)
		}
	}
	if v, ok := h.clients.Load("raw-test"); !ok || v != "PLAINTEXT" {
		t.Fatalf("handler saw client ids/listeners %v %v", v, ok)
	}
}

func TestNetworkApiVersionsTooNewAnswersV0(t *testing.T) {
	s := listen(t, newFakeHandler(), 0)
	c := dial(t, s)
	// v7 is unknown to kmsg and to the handler: KIP-511 answer in v0.
	for _, v := range []int16{5, 7} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
		b := c.f.AppendRequest(nil, req, 7)
		if v == 7 {
			// kmsg cannot encode v7: patch the version of a v4 request.
			req.Version = 4
			b = c.f.AppendRequest(nil, req, 7)
			binary.BigEndian.PutUint16(b[6:], 7)
		}
		c.write(b)
		resp := &kmsg.ApiVersionsResponse{Version: 0}
		corr, err := c.recv(resp)
		if err != nil || corr != 7 {
			t.Fatalf("v%d: corr %d err %v", v, corr, err)
		}
		if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != 1 || resp.ApiKeys[0].MaxVersion != 4 {
			t.Fatalf("v%d: got %+v", v, resp)
		}
	}
	// The connection stays usable with a supported version.
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	c.send(req, 8)
	resp := &kmsg.ApiVersionsResponse{Version: 3}
	if corr, err := c.recv(resp); err != nil || corr != 8 || resp.ErrorCode != 0 {
		t.Fatalf("v3 after KIP-511: corr %d err %v code %d", corr, err, resp.ErrorCode)
	}
}

func TestNetworkBadFramesClose(t *testing.T) {
	h := newFakeHandler()
	valid := kmsg.NewRequestFormatter().AppendRequest(nil, metadataReq(1, "a"), 1)
	frame := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	header := func(key, version int16) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, 1)
		return binary.BigEndian.AppendUint16(b, 0xffff) // null client id
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"size above max", binary.BigEndian.AppendUint32(nil, 1<<20+1)},
		{"size 2 GiB", binary.BigEndian.AppendUint32(nil, 0x7fffffff)},
		{"negative size", binary.BigEndian.AppendUint32(nil, 0xffffffff)},
		{"size too small for a header", frame([]byte{0, 3, 0})},
		{"unknown api key", frame(header(9999, 0))},
		{"known key not served", frame(header(0, 3))},
		{"version above served", frame(header(3, 13))},
		{"version below served", frame(header(1, 3))},
		{"client id longer than frame", frame(append(header(3, 1)[:8], 0, 50, 'a'))},
		{"truncated body", frame(valid[4 : len(valid)-1])},
		{"flexible header tags truncated", frame(append(header(3, 9), 3, 1))},
		{"handler error", kmsg.NewRequestFormatter().AppendRequest(nil, metadataReq(1, "fail"), 1)},
		{"handler panic", kmsg.NewRequestFormatter().AppendRequest(nil, metadataReq(1, "panic"), 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := listen(t, h, 1<<20)
			c := dial(t, s)
			c.write(tc.b)
			c.expectClosed()
			// The server keeps serving other connections.
			ok := dial(t, s)
			ok.send(metadataReq(1, ""), 2)
			if corr, err := ok.recv(&kmsg.MetadataResponse{Version: 1}); err != nil || corr != 2 {
				t.Fatalf("healthy connection: corr %d err %v", corr, err)
			}
		})
	}
}

func TestNetworkNilResponseSendsNothing(t *testing.T) {
	s := listen(t, newFakeHandler(), 0)
	c := dial(t, s)
	c.send(metadataReq(1, "none"), 1)
	c.send(metadataReq(1, ""), 2)
	if corr, err := c.recv(&kmsg.MetadataResponse{Version: 1}); err != nil || corr != 2 {
		t.Fatalf("corr %d err %v, want the second request's answer only", corr, err)
	}
}

// TestNetworkPipelineKeepsOrderWhileParked sends a parked fetch followed by
// metadata requests: they are served while the fetch waits, and the
// answers still come back in request order.
func TestNetworkPipelineKeepsOrderWhileParked(t *testing.T) {
	h := newFakeHandler()
	s := listen(t, h, 0)
	c := dial(t, s)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 11
	fetch.MaxWaitMillis = 60_000
	fetch.MinBytes = 1
	c.send(fetch, 1)
	const n = 50
	for i := 0; i < n; i++ {
		c.send(metadataReq(12, ""), int32(2+i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.served.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d requests served while a fetch was parked", h.served.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	// The fetch's goroutine may not have run yet on a loaded machine.
	for h.parked.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d fetches parked, want 1", h.parked.Load())
		}
		time.Sleep(time.Millisecond)
	}
	close(h.release)
	if corr, err := c.recv(&kmsg.FetchResponse{Version: 11}); err != nil || corr != 1 {
		t.Fatalf("first answer: corr %d err %v", corr, err)
	}
	for i := 0; i < n; i++ {
		if corr, err := c.recv(&kmsg.MetadataResponse{Version: 12}); err != nil || corr != int32(2+i) {
			t.Fatalf("answer %d: corr %d err %v", i, corr, err)
		}
	}
}

// TestNetworkDeferredResponseKeepsOrder: a request whose handler deferred
// its response does not hold up the next requests, and the answers still
// leave in request order.
func TestNetworkDeferredResponseKeepsOrder(t *testing.T) {
	h := newFakeHandler()
	s := listen(t, h, 0)
	c := dial(t, s)
	c.send(metadataReq(12, "defer"), 1)
	const n = 20
	for i := range n {
		c.send(metadataReq(12, ""), int32(2+i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.served.Load() < n+1 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d requests served behind a deferred one", h.served.Load(), n+1)
		}
		time.Sleep(time.Millisecond)
	}
	close(h.release)
	for i := range n + 1 {
		if corr, err := c.recv(&kmsg.MetadataResponse{Version: 12}); err != nil || corr != int32(1+i) {
			t.Fatalf("answer %d: corr %d err %v", i, corr, err)
		}
	}
}

// TestNetworkCloseEndsParkedRequests checks Close cancels parked requests
// and waits for every goroutine.
func TestNetworkCloseEndsParkedRequests(t *testing.T) {
	h := newFakeHandler()
	s, err := network.Listen("127.0.0.1:0", h, network.Options{Listener: "PLAINTEXT", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 4
	fetch.MaxWaitMillis = 60_000
	fetch.MinBytes = 1
	c.send(fetch, 1)
	for h.parked.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with a parked fetch")
	}
	if h.parked.Load() != 0 {
		t.Fatal("a fetch is still parked after Close")
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		t.Fatal("still accepting after Close")
	}
}

// TestNetworkClientGoneEndsParkedRequest: a client that disconnects
// cancels its parked fetch.
func TestNetworkClientGoneEndsParkedRequest(t *testing.T) {
	h := newFakeHandler()
	s := listen(t, h, 0)
	c := dial(t, s)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 4
	fetch.MaxWaitMillis = 60_000
	fetch.MinBytes = 1
	c.send(fetch, 1)
	for h.parked.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	c.nc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for h.parked.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("fetch still parked after the client left")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNetworkParseRequestHeader(t *testing.T) {
	req := metadataReq(9, "t")
	b := kmsg.NewRequestFormatter(kmsg.FormatterClientID("cid")).AppendRequest(nil, req, 42)
	h, got, err := network.ParseRequest(b[4:], nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.APIKey != 3 || h.APIVersion != 9 || h.CorrelationID != 42 || h.ClientID != "cid" {
		t.Fatalf("header %+v", h)
	}
	m := got.(*kmsg.MetadataRequest)
	if len(m.Topics) != 1 || *m.Topics[0].Topic != "t" {
		t.Fatalf("body %+v", m)
	}
}

func TestNetworkCheckFrameSize(t *testing.T) {
	for _, tc := range []struct {
		size, max int32
		ok        bool
	}{
		{10, 100, true}, {100, 100, true}, {101, 100, false}, {-1, 100, false}, {9, 100, false}, {0, 100, false},
	} {
		if err := network.CheckFrameSize(tc.size, tc.max); (err == nil) != tc.ok {
			t.Errorf("CheckFrameSize(%d, %d) = %v", tc.size, tc.max, err)
		}
	}
}
