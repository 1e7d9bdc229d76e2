package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestTopicAlterConfig(t *testing.T) {
	c := newCluster(t)
	c.mustRun(t, "", "topic", "create", "orders", "-p", "1", "-c", "retention.bytes=1000000")
	out := c.mustRun(t, "", "topic", "alter-config", "orders", "--set", "retention.ms=86400000,cleanup.policy=compact,delete", "--delete", "retention.bytes")
	golden(t, "topic_alter_config", out)
	configs := func() map[string]configEntry {
		t.Helper()
		var ds []topicDescription
		if err := json.Unmarshal([]byte(c.mustRun(t, "", "topic", "describe", "orders", "--format", "json")), &ds); err != nil {
			t.Fatal(err)
		}
		m := map[string]configEntry{}
		for _, ce := range ds[0].Configs {
			m[ce.Key] = ce
		}
		return m
	}
	want := func(cfgs map[string]configEntry, key, value, source string) {
		t.Helper()
		if ce := cfgs[key]; ce.Value == nil || *ce.Value != value || ce.Source != source {
			t.Errorf("%s = %+v, want %s from %s", key, ce, value, source)
		}
	}
	cfgs := configs()
	want(cfgs, "retention.ms", "86400000", "DYNAMIC_TOPIC_CONFIG")
	want(cfgs, "cleanup.policy", "compact,delete", "DYNAMIC_TOPIC_CONFIG")
	want(cfgs, "retention.bytes", "-1", "DEFAULT_CONFIG")

	c.mustRun(t, "", "topic", "alter-config", "orders", "--subtract", "cleanup.policy=compact")
	want(configs(), "cleanup.policy", "delete", "DYNAMIC_TOPIC_CONFIG")

	// --dry-run validates and stores nothing.
	c.mustRun(t, "", "topic", "alter-config", "orders", "--set", "retention.ms=1", "--dry-run")
	want(configs(), "retention.ms", "86400000", "DYNAMIC_TOPIC_CONFIG")

	out, _, err := c.run(t, "", "topic", "alter-config", "orders", "nope", "--set", "segment.bytes=1")
	if !errors.Is(err, errReported) {
		t.Fatalf("bad value: err = %v", err)
	}
	golden(t, "topic_alter_config_error", out)
	if _, _, err := c.run(t, "", "topic", "alter-config", "orders"); err == nil || errors.Is(err, errReported) {
		t.Errorf("no change given: err = %v", err)
	}
}

func TestTopicAlterConfigParsePairs(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want [][2]string
		bad  bool
	}{
		{in: []string{"a=1"}, want: [][2]string{{"a", "1"}}},
		{in: []string{"a=1,b=2", "c="}, want: [][2]string{{"a", "1"}, {"b", "2"}, {"c", ""}}},
		{in: []string{"cleanup.policy=compact,delete,retention.ms=5"}, want: [][2]string{{"cleanup.policy", "compact,delete"}, {"retention.ms", "5"}}},
		{in: []string{"x=a=b"}, want: [][2]string{{"x", "a=b"}}},
		{in: []string{"novalue"}, bad: true},
		{in: []string{"=1"}, bad: true},
	} {
		got, err := parseConfigPairs("--set", tc.in)
		if (err != nil) != tc.bad || (!tc.bad && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("parseConfigPairs(%q) = %q, %v", tc.in, got, err)
		}
	}
}

func TestTopicTrimPrefix(t *testing.T) {
	c := newCluster(t)
	c.mustRun(t, "", "topic", "create", "orders", "-p", "2")
	c.mustRun(t, "a\nb\nc\nd\n", "topic", "produce", "orders", "-p", "0")
	c.mustRun(t, "a\nb\n", "topic", "produce", "orders", "-p", "1")
	out := c.mustRun(t, "", "topic", "trim-prefix", "orders", "--offset", "2")
	golden(t, "topic_trim_prefix", out)

	var ds []topicDescription
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "topic", "describe", "orders", "--format", "json")), &ds); err != nil {
		t.Fatal(err)
	}
	if ps := ds[0].Partitions; len(ps) != 2 || ps[0].LogStartOffset != 2 || ps[1].LogStartOffset != 2 {
		t.Errorf("partitions after trim = %+v", ps)
	}

	var rs []trimResult
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "topic", "trim-prefix", "orders", "--offset", "-1", "-p", "0", "--format", "json")), &rs); err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Partition != 0 || rs[0].NewStartOffset != 4 || rs[0].Error != "" {
		t.Errorf("trim to the high watermark = %+v", rs)
	}

	c.mustRun(t, "", "topic", "create", "compacted", "-c", "cleanup.policy=compact")
	out, _, err := c.run(t, "", "topic", "trim-prefix", "compacted", "--offset", "0")
	if !errors.Is(err, errReported) || !strings.Contains(out, "POLICY_VIOLATION") {
		t.Errorf("compacted topic: err = %v, output:\n%s", err, out)
	}
	out, _, err = c.run(t, "", "topic", "trim-prefix", "orders", "--offset", "9", "-p", "1,7")
	if !errors.Is(err, errReported) || !strings.Contains(out, "OFFSET_OUT_OF_RANGE") || !strings.Contains(out, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("bad offset and partition: err = %v, output:\n%s", err, out)
	}
	out, _, err = c.run(t, "", "topic", "trim-prefix", "missing", "--offset", "0")
	if !errors.Is(err, errReported) || !strings.Contains(out, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("missing topic: err = %v, output:\n%s", err, out)
	}
	if _, _, err := c.run(t, "", "topic", "trim-prefix", "orders"); err == nil || errors.Is(err, errReported) {
		t.Errorf("no --offset: err = %v", err)
	}
}

// TestTopicTrimPrefixGolden renders fixed results, so the table shape is
// checked without a broker.
func TestTopicTrimPrefixGolden(t *testing.T) {
	var b bytes.Buffer
	rs := []trimResult{
		{Topic: "orders", Partition: 0, NewStartOffset: 120},
		{Topic: "orders", Partition: 1, NewStartOffset: -1, Error: "OFFSET_OUT_OF_RANGE"},
	}
	if err := printTrimResults(&b, &globals{format: "text"}, rs); !errors.Is(err, errReported) {
		t.Fatalf("err = %v, want errReported", err)
	}
	golden(t, "topic_trim_prefix_error", b.String())
}
