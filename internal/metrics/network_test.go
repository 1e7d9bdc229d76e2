package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestNetworkNilRecordsNothing(t *testing.T) {
	var n *Network
	n.Received(10)
	n.Done(0, time.Millisecond, 10)
	n.Failed(0)
	n.Opened()
	n.Closed()
}

func TestNetworkKeysResolveOnceAndOutOfRangeIsUnknown(t *testing.T) {
	n := NewNetwork(prometheus.NewRegistry())
	n.Done(3, time.Millisecond, 100)
	n.Done(3, time.Millisecond, 0)
	first := n.forKey(3)
	if again := n.forKey(3); again != first {
		t.Fatal("key 3 resolved twice")
	}
	if got := value(t, n.requests.WithLabelValues("Metadata")); got != 2 {
		t.Errorf("Metadata requests = %v, want 2", got)
	}
	if got := value(t, n.bytesOut); got != 100 {
		t.Errorf("sent bytes = %v, want 100", got)
	}
	n.Failed(-1)
	n.Failed(30000)
	if got := value(t, n.errors.WithLabelValues("Unknown")); got != 2 {
		t.Errorf("Unknown errors = %v, want 2", got)
	}
	if n.forKey(-1) != n.forKey(30000) {
		t.Error("out-of-range keys do not share the Unknown instruments")
	}
}

// BenchmarkNetworkDone is the per-request cost of recording a served
// request (instruments already resolved).
func BenchmarkNetworkDone(b *testing.B) {
	n := NewNetwork(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		n.Received(100)
		n.Done(1, 1500*time.Microsecond, 1000)
	}
}

func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
