package interbroker

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// apiHandler serves ApiVersions and Metadata (a node id in the answer).
type apiHandler struct{}

func (apiHandler) Handle(_ context.Context, _ *network.Conn, req kmsg.Request) (kmsg.Response, error) {
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
		for _, k := range []int16{3, 18} {
			ak := kmsg.NewApiVersionsResponseApiKey()
			ak.ApiKey, ak.MaxVersion = k, kmsg.NewPtrMetadataRequest().MaxVersion()
			if k == 18 {
				ak.MaxVersion = 3
			}
			resp.ApiKeys = append(resp.ApiKeys, ak)
		}
		return resp, nil
	case *kmsg.MetadataRequest:
		if len(r.Topics) > 0 {
			return nil, io.ErrUnexpectedEOF // closes the connection
		}
		resp := r.ResponseKind().(*kmsg.MetadataResponse)
		resp.ControllerID = 7
		if r.IncludeTopicAuthorizedOperations { // a large answer
			for i := range int32(2000) {
				b := kmsg.NewMetadataResponseBroker()
				b.NodeID, b.Host, b.Port = i, "broker-host-name", 9092
				resp.Brokers = append(resp.Brokers, b)
			}
		}
		return resp, nil
	}
	return nil, io.EOF
}

func (apiHandler) VersionRange(key int16) (int16, int16, bool) {
	switch key {
	case 18:
		return 0, 3, true
	case 3:
		return 0, kmsg.NewPtrMetadataRequest().MaxVersion(), true
	}
	return 0, 0, false
}

func TestClientRequestAndReconnect(t *testing.T) {
	srv, err := network.Bind("127.0.0.1:0", apiHandler{}, network.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	addr := srv.Addr().String()
	c := New(Options{ClientID: "t", Logger: quiet, RequestTimeout: 5 * time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		resp, err := c.Request(ctx, addr, kmsg.NewPtrMetadataRequest())
		if err != nil {
			t.Fatal(err)
		}
		if resp.(*kmsg.MetadataResponse).ControllerID != 7 {
			t.Fatalf("response %+v", resp)
		}
	}
	// Unsupported key: refused before sending.
	if _, err := c.Request(ctx, addr, kmsg.NewPtrCreateTopicsRequest()); err == nil {
		t.Fatal("unsupported api sent")
	}
	// The peer drops the connection: the request fails, and the next
	// one dials again.
	drop := kmsg.NewPtrMetadataRequest()
	drop.Topics = append(drop.Topics, kmsg.NewMetadataRequestTopic())
	if _, err := c.Request(ctx, addr, drop); err == nil {
		t.Fatal("request on a dropped connection succeeded")
	}
	if _, err := c.Request(ctx, addr, kmsg.NewPtrMetadataRequest()); err != nil {
		t.Fatalf("after reconnect: %v", err)
	}
	srv.Close()
	if _, err := c.Request(ctx, addr, kmsg.NewPtrMetadataRequest()); err == nil {
		t.Fatal("request to a closed server succeeded")
	}
}

func TestClientTimesOutOnSilentPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // never answers
		}
	}()
	c := New(Options{Logger: quiet, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	began := time.Now()
	if _, err := c.Request(context.Background(), ln.Addr().String(), kmsg.NewPtrMetadataRequest()); err == nil {
		t.Fatal("answered")
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Fatalf("took %v with a 200ms dial timeout", d)
	}
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 1, 1, 0, 2, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, req := range []kmsg.Request{kmsg.NewPtrMetadataRequest(), kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrBrokerHeartbeatRequest()} {
			req.SetVersion(req.MaxVersion())
			_, _ = decodeResponse(req, 1, b)
		}
	})
}

func TestClientRequestReusingKeepsItsBuffer(t *testing.T) {
	srv, err := network.Bind("127.0.0.1:0", apiHandler{}, network.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	defer srv.Close()
	addr := srv.Addr().String()
	c := New(Options{ClientID: "t", Logger: quiet, RequestTimeout: 5 * time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var buf []byte
	large := kmsg.NewPtrMetadataRequest()
	large.IncludeTopicAuthorizedOperations = true
	resp, err := c.RequestReusing(ctx, addr, large, &buf)
	if err != nil {
		t.Fatal(err)
	}
	first := resp.(*kmsg.MetadataResponse)
	if len(first.Brokers) != 2000 || cap(buf) < 2000*16 {
		t.Fatalf("large answer: %d brokers, buffer capacity %d", len(first.Brokers), cap(buf))
	}
	backing := &buf[:1][0]
	for range 3 {
		resp, err := c.RequestReusing(ctx, addr, kmsg.NewPtrMetadataRequest(), &buf)
		if err != nil {
			t.Fatal(err)
		}
		if m := resp.(*kmsg.MetadataResponse); m.ControllerID != 7 || len(m.Brokers) != 0 {
			t.Fatalf("small answer %+v", m)
		}
		if &buf[:1][0] != backing {
			t.Fatal("a smaller answer replaced the buffer instead of reusing it")
		}
	}
	// Decoded strings are copies: the first answer's survive the reuse.
	if h := first.Brokers[1999].Host; h != "broker-host-name" {
		t.Fatalf("a decoded string changed with the buffer: %q", h)
	}
}
