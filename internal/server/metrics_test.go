package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"

	"samsa/internal/server"
)

// scrape fetches /metrics from s and parses it.
func scrape(t *testing.T, s *server.Server) map[string]*dto.MetricFamily {
	t.Helper()
	if s.HTTPAddr() == "" {
		t.Fatal("no HTTP listener")
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + s.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// metricValue returns the value of the series of family name whose labels
// include every pair of labels, and whether there is one.
func metricValue(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func mustValue(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	v, ok := metricValue(mfs, name, labels...)
	if !ok {
		t.Fatalf("no series %s%v", name, labels)
	}
	return v
}

func TestServerMetricsScrape(t *testing.T) {
	s := start(t, t.TempDir(), "http.listener=127.0.0.1:0")
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, s))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "metered"); err != nil {
		t.Fatal(err)
	}
	const n = 10
	produce(t, client(t, s), "metered", n, "m")
	consumeAll(t, s.KafkaAddr(), "metered", n)
	const committed = 4
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: "metered", Partition: 0, At: committed, LeaderEpoch: -1})
	if r, err := adm.CommitOffsets(ctx, "lagging", offs); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}

	mfs := scrape(t, s)
	for _, api := range []string{"Produce", "Fetch", "Metadata", "ApiVersions", "OffsetCommit"} {
		if v := mustValue(t, mfs, "samsa_requests_total", "request", api); v < 1 {
			t.Errorf("samsa_requests_total{request=%q} = %v, want >= 1", api, v)
		}
		reqs := mustValue(t, mfs, "samsa_requests_total", "request", api)
		if obs := mustValue(t, mfs, "samsa_request_duration_seconds", "request", api); obs != reqs {
			t.Errorf("%s: %v latency observations for %v requests", api, obs, reqs)
		}
	}
	if v, ok := metricValue(mfs, "samsa_request_errors_total"); ok && v != 0 {
		t.Errorf("samsa_request_errors_total = %v, want 0", v)
	}
	for _, name := range []string{"samsa_network_received_bytes_total", "samsa_network_sent_bytes_total", "samsa_network_connections_accepted_total", "samsa_network_connections"} {
		if v := mustValue(t, mfs, name); v < 1 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	for name, want := range map[string]float64{
		"samsa_log_end_offset":         n,
		"samsa_log_high_watermark":     n,
		"samsa_log_last_stable_offset": n,
		"samsa_log_start_offset":       0,
	} {
		if v := mustValue(t, mfs, name, "topic", "metered", "partition", "0"); v != want {
			t.Errorf("%s{metered-0} = %v, want %v", name, v, want)
		}
	}
	parts := mustValue(t, mfs, "samsa_partitions")
	if leaders := mustValue(t, mfs, "samsa_leader_partitions"); parts < 1 || leaders != parts {
		t.Errorf("partitions %v, leaders %v: want equal and >= 1", parts, leaders)
	}
	for name, want := range map[string]float64{
		"samsa_under_replicated_partitions": 0,
		"samsa_offline_partitions":          0,
		"samsa_active_controller":           1,
	} {
		if v := mustValue(t, mfs, name); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if v := mustValue(t, mfs, "samsa_consumer_group_committed_offset", "group", "lagging", "topic", "metered", "partition", "0"); v != committed {
		t.Errorf("committed offset = %v, want %d", v, committed)
	}
	if v := mustValue(t, mfs, "samsa_consumer_group_lag", "group", "lagging", "topic", "metered", "partition", "0"); v != n-committed {
		t.Errorf("lag = %v, want %d", v, n-committed)
	}
	if v := mustValue(t, mfs, "samsa_consumer_groups", "state", "Empty"); v != 1 {
		t.Errorf("groups in state Empty = %v, want 1", v)
	}
	if _, ok := mfs["go_goroutines"]; !ok {
		t.Error("Go runtime metrics missing")
	}
}

// TestServerMetricsTwoNodesInOneProcess checks that each node has its own
// registry: a second node starts (no duplicate registration panic) and
// counts only its own requests.
func TestServerMetricsTwoNodesInOneProcess(t *testing.T) {
	a := start(t, t.TempDir(), "http.listener=127.0.0.1:0")
	defer a.Close()
	b := start(t, t.TempDir(), "http.listener=127.0.0.1:0")
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(client(t, a)).ListTopics(ctx); err != nil {
		t.Fatal(err)
	}
	if v := mustValue(t, scrape(t, a), "samsa_requests_total", "request", "Metadata"); v < 1 {
		t.Errorf("node a Metadata requests = %v, want >= 1", v)
	}
	if v, ok := metricValue(scrape(t, b), "samsa_requests_total", "request", "Metadata"); ok && v != 0 {
		t.Errorf("node b Metadata requests = %v, want 0", v)
	}
}
