package cli

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestClusterConfig: set, get and delete dynamic broker configs at both
// levels through the CLI, text (golden) and JSON, and Kafka's error for a
// key that cannot be updated dynamically.
func TestClusterConfig(t *testing.T) {
	c := newCluster(t)
	out := c.mustRun(t, "", "cluster", "config", "set", "--broker-defaults", "log.retention.ms=86400000", "log.segment.bytes=268435456")
	golden(t, "cluster_config_set", out)
	c.mustRun(t, "", "cluster", "config", "set", "--broker", "1", "log.segment.bytes=536870912", "max.connections.per.ip=500")
	c.mustRun(t, "", "cluster", "config", "set", "--broker", "1", "log.retention.bytes=1", "--dry-run")

	out = c.mustRun(t, "", "cluster", "config", "get")
	golden(t, "cluster_config_get", out)
	out = c.mustRun(t, "", "cluster", "config", "get", "--broker", "1", "--all", "log.segment.bytes", "log.retention.ms", "log.retention.bytes", "num.partitions")
	golden(t, "cluster_config_get_all", out)

	var views []brokerConfigView
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "cluster", "config", "get", "--broker", "1", "--format", "json")), &views); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range views[0].Configs {
		got[e.Key] = *e.Value + " " + e.Source
	}
	want := map[string]string{
		"log.segment.bytes":      "536870912 DYNAMIC_BROKER_CONFIG",
		"max.connections.per.ip": "500 DYNAMIC_BROKER_CONFIG",
		"log.retention.ms":       "86400000 DYNAMIC_DEFAULT_BROKER_CONFIG",
	}
	if len(views) != 1 || views[0].Resource != "1" || len(got) != len(want) {
		t.Fatalf("views %+v", views)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}

	c.mustRun(t, "", "cluster", "config", "delete", "--broker", "1", "log.segment.bytes", "max.connections.per.ip")
	out = c.mustRun(t, "", "cluster", "config", "get", "--broker", "1", "--format", "json")
	if strings.Contains(out, "DYNAMIC_BROKER_CONFIG") || !strings.Contains(out, "DYNAMIC_DEFAULT_BROKER_CONFIG") {
		t.Errorf("after delete: %s", out)
	}

	out, _, err := c.run(t, "", "cluster", "config", "set", "--broker", "1", "log.dirs=/elsewhere")
	if !errors.Is(err, errReported) {
		t.Fatalf("read-only key: err = %v", err)
	}
	golden(t, "cluster_config_set_error", out)
	for _, args := range [][]string{
		{"cluster", "config", "set", "log.retention.ms=1"},                                       // no level
		{"cluster", "config", "set", "--broker", "1", "--broker-defaults", "log.retention.ms=1"}, // both
		{"cluster", "config", "set", "--broker", "1", "log.retention.ms"},                        // no value
		{"cluster", "config", "delete", "--broker", "1", "log.retention.ms=1"},                   // a value
		{"cluster", "config", "get", "--all"},                                                    // --all without a broker
	} {
		if _, _, err := c.run(t, "", args...); err == nil || errors.Is(err, errReported) {
			t.Errorf("%v: err = %v", args, err)
		}
	}
}
