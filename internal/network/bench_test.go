package network_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metrics"
	"samsa/internal/network"
)

// echoHandler answers every request with its empty response.
type echoHandler struct{}

func (echoHandler) Handle(_ context.Context, _ *network.Conn, req kmsg.Request) (kmsg.Response, error) {
	return req.ResponseKind(), nil
}

func BenchmarkNetworkParseRequest(b *testing.B) {
	r := kmsg.NewPtrProduceRequest()
	r.Version = 9
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "bench"
	p := kmsg.NewProduceRequestTopicPartition()
	p.Records = make([]byte, 16<<10)
	t.Partitions = append(t.Partitions, p)
	r.Topics = append(r.Topics, t)
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("bench")).AppendRequest(nil, r, 1)[4:]
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, _, err := network.ParseRequest(frame, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNetworkPipelinedRoundTrip measures the per-request cost of the
// connection machinery: 64 pipelined ApiVersions requests per write.
func BenchmarkNetworkPipelinedRoundTrip(b *testing.B) {
	benchPipelined(b, network.Options{Listener: "PLAINTEXT", Logger: quiet})
}

// BenchmarkNetworkPipelinedRoundTripMetrics is the same with request
// metrics recorded: the difference is their per-request cost.
func BenchmarkNetworkPipelinedRoundTripMetrics(b *testing.B) {
	benchPipelined(b, network.Options{Listener: "PLAINTEXT", Logger: quiet, Metrics: metrics.NewNetwork(prometheus.NewRegistry())})
}

func benchPipelined(b *testing.B, opts network.Options) {
	s, err := network.Listen("127.0.0.1:0", echoHandler{}, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := dial(b, s)
	_ = c.nc.SetDeadline(time.Time{})
	const depth = 64
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	var batch []byte
	for i := 0; i < depth; i++ {
		// AppendRequest sizes the frame from the start of dst: build
		// each frame on its own.
		batch = append(batch, c.f.AppendRequest(nil, req, int32(i))...)
	}
	resp := &kmsg.ApiVersionsResponse{Version: 3}
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if _, err := c.nc.Write(batch); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < depth; i++ {
			if _, err := c.recv(resp); err != nil {
				b.Fatal(err)
			}
		}
	}
}
