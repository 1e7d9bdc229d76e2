package network_test

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

// FuzzNetworkParseRequest feeds arbitrary frames to the header and body
// decoder: it must never panic, and whatever it accepts must carry the
// header it was given.
func FuzzNetworkParseRequest(f *testing.F) {
	fm := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	for _, req := range []kmsg.Request{
		func() kmsg.Request { r := kmsg.NewPtrApiVersionsRequest(); r.Version = 3; return r }(),
		func() kmsg.Request { r := kmsg.NewPtrMetadataRequest(); r.Version = 12; return r }(),
		func() kmsg.Request {
			r := kmsg.NewPtrProduceRequest()
			r.Version = 9
			t := kmsg.NewProduceRequestTopic()
			t.Topic = "t"
			p := kmsg.NewProduceRequestTopicPartition()
			p.Records = []byte{1, 2, 3}
			t.Partitions = append(t.Partitions, p)
			r.Topics = append(r.Topics, t)
			return r
		}(),
		func() kmsg.Request { r := kmsg.NewPtrFetchRequest(); r.Version = 13; return r }(),
	} {
		f.Add(fm.AppendRequest(nil, req, 1)[4:])
	}
	f.Add([]byte{0, 18, 0, 9, 0, 0, 0, 1, 255, 255})
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, req, err := network.ParseRequest(frame, nil)
		if err != nil {
			return
		}
		if req == nil {
			t.Fatal("nil request without error")
		}
		if req.Key() != h.APIKey || req.GetVersion() != h.APIVersion {
			t.Fatalf("request %d v%d for header %+v", req.Key(), req.GetVersion(), h)
		}
		if got := int32(binary.BigEndian.Uint32(frame[4:])); got != h.CorrelationID {
			t.Fatalf("correlation id %d, frame says %d", h.CorrelationID, got)
		}
	})
}

// pipeListener hands the server ends of in-memory pipes to a Server.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// FuzzNetworkConnStream feeds an arbitrary byte stream to a connection:
// size prefixes, partial frames, several frames in a row. The connection
// must never panic, must end when the client leaves, and must give back
// every byte of request budget it took.
func FuzzNetworkConnStream(f *testing.F) {
	fm := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	meta := fm.AppendRequest(nil, func() kmsg.Request { r := kmsg.NewPtrMetadataRequest(); r.Version = 1; return r }(), 1)
	f.Add(meta)
	f.Add(append(append([]byte{}, meta...), meta...))
	f.Add(meta[:len(meta)-2])
	f.Add([]byte{0, 0x10, 0, 0, 0, 3, 0, 1})       // 1 MiB declared, a few bytes sent
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0}) // above the limit
	f.Fuzz(func(t *testing.T, stream []byte) {
		limits := network.NewLimits(network.LimitsConfig{QueuedMaxRequestBytes: 2 << 20})
		pl := newPipeListener()
		s, err := network.NewServer(pl, newFakeHandler(), network.Options{
			Listener: "PLAINTEXT", MaxRequestBytes: 1 << 20, Logger: quiet, Limits: limits,
			RequestReadTimeout: time.Second, IdleTimeout: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Serve()
		client, server := net.Pipe()
		pl.conns <- server
		go func() { _, _ = io.Copy(io.Discard, client) }()
		_ = client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = client.Write(stream)
		client.Close()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if n := limits.Budget().InUse(); n != 0 {
			t.Fatalf("%d bytes of request budget still held after the connection ended", n)
		}
	})
}
