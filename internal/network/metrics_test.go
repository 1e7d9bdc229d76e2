package network_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metrics"
	"samsa/internal/network"
)

// gathered returns the value of family name's series whose labels include
// label=value ("" label: the only series); histograms give their count.
func gathered(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					match = true
				}
			}
			if !match {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

func TestNetworkMetricsCountRequestsBytesAndErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := network.Listen("127.0.0.1:0", newFakeHandler(), network.Options{Listener: "PLAINTEXT", Logger: quiet, Metrics: metrics.NewNetwork(reg)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	c := dial(t, s)
	var sentBytes int
	for i := 0; i < 3; i++ {
		frame := c.f.AppendRequest(nil, metadataReq(9, ""), int32(i))
		sentBytes += len(frame)
		c.write(frame)
		if _, err := c.recv(&kmsg.MetadataResponse{Version: 9}); err != nil {
			t.Fatal(err)
		}
	}
	if v := gathered(t, reg, "samsa_requests_total", "request", "Metadata"); v != 3 {
		t.Errorf("Metadata requests = %v, want 3", v)
	}
	if v := gathered(t, reg, "samsa_request_duration_seconds", "request", "Metadata"); v != 3 {
		t.Errorf("Metadata latency observations = %v, want 3", v)
	}
	if v := gathered(t, reg, "samsa_network_received_bytes_total", "", ""); v != float64(sentBytes) {
		t.Errorf("received bytes = %v, want %d", v, sentBytes)
	}
	if v := gathered(t, reg, "samsa_network_sent_bytes_total", "", ""); v <= 0 {
		t.Errorf("sent bytes = %v, want > 0", v)
	}
	if v := gathered(t, reg, "samsa_network_connections", "", ""); v != 1 {
		t.Errorf("open connections = %v, want 1", v)
	}

	// A frame with an API key nobody knows closes the connection and
	// counts as an error of the "Unknown" API.
	bad := make([]byte, 4+10)
	binary.BigEndian.PutUint32(bad, 10)
	binary.BigEndian.PutUint16(bad[4:], 200) // api key
	binary.BigEndian.PutUint32(bad[8:], 7)   // correlation id
	binary.BigEndian.PutUint16(bad[12:], 0xffff)
	c.write(bad)
	c.expectClosed()

	deadline := time.Now().Add(10 * time.Second)
	for gathered(t, reg, "samsa_network_connections", "", "") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("open connections gauge did not return to 0")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if v := gathered(t, reg, "samsa_request_errors_total", "request", "Unknown"); v != 1 {
		t.Errorf("Unknown errors = %v, want 1", v)
	}
	if v := gathered(t, reg, "samsa_network_connections_accepted_total", "", ""); v != 1 {
		t.Errorf("accepted = %v, want 1", v)
	}
}

// TestNetworkMetricsHandlerErrorCounts checks a handler error (which
// closes the connection) counts against the request's API.
func TestNetworkMetricsHandlerErrorCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := network.Listen("127.0.0.1:0", failingHandler{}, network.Options{Listener: "PLAINTEXT", Logger: quiet, Metrics: metrics.NewNetwork(reg)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := dial(t, s)
	c.send(metadataReq(9, ""), 1)
	c.expectClosed()
	if v := gathered(t, reg, "samsa_request_errors_total", "request", "Metadata"); v != 1 {
		t.Errorf("Metadata errors = %v, want 1", v)
	}
	if v := gathered(t, reg, "samsa_requests_total", "request", "Metadata"); v != 0 {
		t.Errorf("Metadata requests = %v, want 0 (failed ones count as errors only)", v)
	}
}

type failingHandler struct{}

func (failingHandler) Handle(context.Context, *network.Conn, kmsg.Request) (kmsg.Response, error) {
	return nil, errTestHandler
}

var errTestHandler = errors.New("test: handler failed")

// TestNetworkMetricsShortFrameIsUnknown checks a frame too short for a
// header (rejected by its size prefix) counts as an error of the "Unknown"
// API, not of Produce (key 0).
func TestNetworkMetricsShortFrameIsUnknown(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := network.Listen("127.0.0.1:0", newFakeHandler(), network.Options{Listener: "PLAINTEXT", Logger: quiet, Metrics: metrics.NewNetwork(reg)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := dial(t, s)
	c.write([]byte{0, 0, 0, 3, 0, 0, 0})
	c.expectClosed()
	if v := gathered(t, reg, "samsa_request_errors_total", "request", "Unknown"); v != 1 {
		t.Errorf("Unknown errors = %v, want 1", v)
	}
	if v := gathered(t, reg, "samsa_request_errors_total", "request", "Produce"); v != 0 {
		t.Errorf("Produce errors = %v, want 0", v)
	}
}
