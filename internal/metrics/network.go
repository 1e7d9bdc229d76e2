// Package metrics holds the Prometheus instruments that hot paths update
// directly. Each instrument is resolved once (per API key on first use),
// so recording a request costs a pointer load, a few atomic adds and one
// histogram observe: no label lookup by string, no allocation.
//
// Values read at scrape time (log offsets, group lag) are not here: their
// collectors live next to the components they read (internal/server).
// docs/metrics.md lists every metric with its Kafka JMX equivalent.
package metrics

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LatencyBuckets are the request latency histogram bounds in seconds,
// from 100µs (an in-memory ApiVersions) to 10s (a slow disk, or a long
// fetch.max.wait.ms).
var LatencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// apiMetrics are one API key's instruments, resolved from the vectors on
// the key's first request.
type apiMetrics struct {
	requests prometheus.Counter
	errors   prometheus.Counter
	latency  prometheus.Observer
}

// unknownKey indexes the instruments of request frames whose API key is
// not one kmsg knows (counted as errors only).
const unknownKey = kmsg.MaxKey + 1

// Network records the request metrics of every listener of a broker
// (Kafka's kafka.network:type=RequestMetrics and SocketServer metrics).
// A nil *Network records nothing. Safe for concurrent use.
type Network struct {
	// api holds each API key's resolved instruments; nil until the key's
	// first request. Index unknownKey is for keys kmsg does not know.
	api [unknownKey + 1]atomic.Pointer[apiMetrics]

	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	bytesIn             prometheus.Counter
	bytesOut            prometheus.Counter
	activeConnections   prometheus.Gauge
	connectionsAccepted prometheus.Counter

	// Limits and failures of the listeners (issue 9): see docs/metrics.md.
	acceptErrors       prometheus.Counter
	acceptBlocked      prometheus.Counter // seconds
	rejected           *prometheus.CounterVec
	rejectedPerIP      prometheus.Counter // rejected{reason="max_connections_per_ip"}
	timedOut           *prometheus.CounterVec
	timedOutIdle       prometheus.Counter // timedOut{reason="idle"}
	timedOutStalled    prometheus.Counter // timedOut{reason="stalled"}
	requestBytesInUse  prometheus.Gauge
	requestBytesLimit  prometheus.Gauge
	requestBudgetWaits prometheus.Counter
}

// NewNetwork creates the request metrics and registers them with reg.
func NewNetwork(reg prometheus.Registerer) *Network {
	n := &Network{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_requests_total",
			Help: "Requests served, by API (response written, or dropped for acks=0 Produce).",
		}, []string{"request"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_request_errors_total",
			Help: "Requests that closed their connection (undecodable frame or handler error), by API.",
		}, []string{"request"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "samsa_request_duration_seconds",
			Help:    "Time from a request's last byte read to its response's last byte written, by API.",
			Buckets: LatencyBuckets,
		}, []string{"request"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "samsa_network_received_bytes_total",
			Help: "Bytes of request frames read, size prefix included.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "samsa_network_sent_bytes_total",
			Help: "Bytes of response frames written, size prefix included.",
		}),
		activeConnections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "samsa_network_connections",
			Help: "Open client connections.",
		}),
		connectionsAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "samsa_network_connections_accepted_total",
			Help: "Client connections accepted.",
		}),
	}
	n.acceptErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "samsa_network_accept_errors_total",
		Help: "Failed accepts on a listener (EMFILE, ENFILE, ENOBUFS, ECONNABORTED, ...); the listener backs off and keeps accepting.",
	})
	n.acceptBlocked = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "samsa_network_accept_blocked_seconds_total",
		Help: "Time listeners spent not accepting because max.connections connections were open.",
	})
	n.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "samsa_network_connections_rejected_total",
		Help: "Connections closed right after accept, by reason (max_connections_per_ip).",
	}, []string{"reason"})
	n.timedOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "samsa_network_connections_timed_out_total",
		Help: "Connections closed by the broker for inactivity, by reason: idle (connections.max.idle.ms) or stalled (a frame not read within socket.request.read.timeout.ms).",
	}, []string{"reason"})
	n.requestBytesInUse = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "samsa_network_request_bytes_in_use",
		Help: "Bytes of queued.max.request.bytes held by request frames being read or served.",
	})
	n.requestBytesLimit = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "samsa_network_request_bytes_limit",
		Help: "queued.max.request.bytes: the bound on bytes of request frames being read or served.",
	})
	n.requestBudgetWaits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "samsa_network_request_budget_waits_total",
		Help: "Request frames that waited for queued.max.request.bytes before being read.",
	})
	n.rejectedPerIP = n.rejected.WithLabelValues("max_connections_per_ip")
	n.timedOutIdle = n.timedOut.WithLabelValues("idle")
	n.timedOutStalled = n.timedOut.WithLabelValues("stalled")
	reg.MustRegister(n.requests, n.errors, n.latency, n.bytesIn, n.bytesOut, n.activeConnections, n.connectionsAccepted,
		n.acceptErrors, n.acceptBlocked, n.rejected, n.timedOut, n.requestBytesInUse, n.requestBytesLimit, n.requestBudgetWaits)
	return n
}

// forKey returns key's instruments, resolving them on first use. Two
// goroutines racing on the first request of a key both resolve the same
// children (the vectors dedupe), so the race is harmless.
func (n *Network) forKey(key int16) *apiMetrics {
	i := int(key)
	if i < 0 || i > kmsg.MaxKey {
		i = unknownKey
	}
	if m := n.api[i].Load(); m != nil {
		return m
	}
	name := "Unknown"
	if i != unknownKey {
		name = kmsg.NameForKey(key)
		if name == "" {
			name = "Unknown" + strconv.Itoa(i)
		}
	}
	m := &apiMetrics{
		requests: n.requests.WithLabelValues(name),
		errors:   n.errors.WithLabelValues(name),
		latency:  n.latency.WithLabelValues(name),
	}
	n.api[i].Store(m)
	return m
}

// Received records a request frame of size bytes (size prefix included)
// read off a connection.
func (n *Network) Received(bytes int) {
	if n == nil {
		return
	}
	n.bytesIn.Add(float64(bytes))
}

// Done records a request of API key served: took is the time from its
// last byte read to its response's last byte written, sent the response
// frame's bytes (0 when there is no response).
func (n *Network) Done(key int16, took time.Duration, sent int) {
	if n == nil {
		return
	}
	m := n.forKey(key)
	m.requests.Inc()
	m.latency.Observe(took.Seconds())
	if sent > 0 {
		n.bytesOut.Add(float64(sent))
	}
}

// Failed records a request of API key (any value, from an undecodable
// header too) that closed its connection.
func (n *Network) Failed(key int16) {
	if n == nil {
		return
	}
	n.forKey(key).errors.Inc()
}

// Opened records an accepted connection.
func (n *Network) Opened() {
	if n == nil {
		return
	}
	n.connectionsAccepted.Inc()
	n.activeConnections.Inc()
}

// Closed records a connection's end.
func (n *Network) Closed() {
	if n == nil {
		return
	}
	n.activeConnections.Dec()
}

// AcceptFailed records a failed accept (the listener backs off and retries).
func (n *Network) AcceptFailed() {
	if n == nil {
		return
	}
	n.acceptErrors.Inc()
}

// AcceptBlocked records time a listener did not accept because the broker
// had max.connections connections open.
func (n *Network) AcceptBlocked(d time.Duration) {
	if n == nil {
		return
	}
	n.acceptBlocked.Add(d.Seconds())
}

// RejectedPerIP records a connection closed right after accept because its
// address had max.connections.per.ip connections open.
func (n *Network) RejectedPerIP() {
	if n == nil {
		return
	}
	n.rejectedPerIP.Inc()
}

// TimedOutIdle records a connection closed after connections.max.idle.ms
// without traffic.
func (n *Network) TimedOutIdle() {
	if n == nil {
		return
	}
	n.timedOutIdle.Inc()
}

// TimedOutStalled records a connection closed because a frame whose size
// had arrived was not read (or given budget) in time.
func (n *Network) TimedOutStalled() {
	if n == nil {
		return
	}
	n.timedOutStalled.Inc()
}

// RequestBytesLimit sets the request memory budget reported.
func (n *Network) RequestBytesLimit(limit int64) {
	if n == nil {
		return
	}
	n.requestBytesLimit.Set(float64(limit))
}

// RequestBytes records delta bytes taken from (> 0) or given back to (< 0)
// the request memory budget.
func (n *Network) RequestBytes(delta int64) {
	if n == nil {
		return
	}
	n.requestBytesInUse.Add(float64(delta))
}

// RequestBudgetWaited records a frame that had to wait for budget.
func (n *Network) RequestBudgetWaited() {
	if n == nil {
		return
	}
	n.requestBudgetWaits.Inc()
}
