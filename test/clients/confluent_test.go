package clients

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfluentKafkaPythonRoundTrip produces with confluent-kafka-python
// (librdkafka) using each codec and acks=all, and consumes by explicit
// assignment from OFFSET_BEGINNING (no consumer group).
func TestConfluentKafkaPythonRoundTrip(t *testing.T) {
	requirePythonModule(t, "confluent_kafka")
	script, err := filepath.Abs(filepath.Join("python", "confluent_roundtrip.py"))
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t)
	codecs := []struct {
		name string
		code uint8
	}{{"none", 0}, {"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}}
	for _, codec := range codecs {
		t.Run(codec.name, func(t *testing.T) {
			topic := topicName(t)
			createTopic(t, b.Addr, topic, 2)
			const n = 200
			run := runClient(t, 90*time.Second, nil, pythonPath, script, b.Addr, topic, codec.name, fmt.Sprint(n))

			// Every record exactly once, and per partition in offset
			// order starting at 0.
			seen := map[string]bool{}
			next := map[string]int{}
			for _, line := range strings.Split(strings.TrimSpace(run.Stdout), "\n") {
				var p, off int
				var kv string
				if _, err := fmt.Sscanf(line, "%d %d %s", &p, &off, &kv); err != nil {
					t.Fatalf("unparsable consumer line %q: %v", line, err)
				}
				if pk := fmt.Sprint(p); off != next[pk] {
					t.Errorf("partition %d: offset %d, want %d", p, off, next[pk])
				} else {
					next[pk]++
				}
				k, v, _ := strings.Cut(kv, "=")
				var i int
				if _, err := fmt.Sscanf(k, "key-%d", &i); err != nil {
					t.Fatalf("bad key in %q", line)
				}
				if want := fmt.Sprintf("value-%d-%s", i, strings.Repeat("samsa", 20)); v != want {
					t.Errorf("%s: value %q, want %q", k, v, want)
				}
				if seen[k] {
					t.Errorf("%s read twice", k)
				}
				seen[k] = true
			}
			if len(seen) != n {
				t.Fatalf("read %d distinct records, want %d", len(seen), n)
			}
			for _, r := range consumeAll(t, b.Addr, topic) {
				if got := r.Attrs.CompressionType(); got != codec.code {
					t.Fatalf("record %s/%d@%d stored with %s, want %s", r.Topic, r.Partition, r.Offset, compressionName(got), codec.name)
				}
			}
		})
	}
}
