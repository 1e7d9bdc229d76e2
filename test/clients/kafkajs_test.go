package clients

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkajsStep is one JSON line printed by kafkajs_client.js produce.
type kafkajsStep struct {
	Step    string `json:"step"`
	Created bool   `json:"created"`
	Topics  []struct {
		Name       string `json:"name"`
		Partitions []struct {
			Partition int32 `json:"partition"`
			Leader    int32 `json:"leader"`
		} `json:"partitions"`
	} `json:"topics"`
	Results []struct {
		TopicName string `json:"topicName"`
		Partition int32  `json:"partition"`
		ErrorCode int16  `json:"errorCode"`
	} `json:"results"`
	Offsets []struct {
		Partition int32  `json:"partition"`
		Offset    string `json:"offset"`
		High      string `json:"high"`
		Low       string `json:"low"`
	} `json:"offsets"`
}

// TestKafkaJSProducerAdmin drives kafkajs (npm) as a separate node process:
// admin createTopics, fetchTopicMetadata and fetchTopicOffsets, and a
// producer sending plain and gzip batches with acks=-1. franz-go checks what
// was stored.
func TestKafkaJSProducerAdmin(t *testing.T) {
	node := requireNodeModules(t)
	script, err := filepath.Abs(filepath.Join("node", "kafkajs_client.js"))
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t)
	topic := topicName(t)
	const n, partitions = 100, 3
	run := runClient(t, 90*time.Second, nil, node, script, "produce", b.Addr, topic, fmt.Sprint(n), fmt.Sprint(partitions))

	steps := map[string]kafkajsStep{}
	for _, line := range strings.Split(strings.TrimSpace(run.Stdout), "\n") {
		var s kafkajsStep
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("unparsable kafkajs line %q: %v", line, err)
		}
		steps[s.Step] = s
	}
	if s, ok := steps["createTopics"]; !ok || !s.Created {
		t.Errorf("createTopics: %+v, want created=true", s)
	}
	md := steps["fetchTopicMetadata"]
	if len(md.Topics) != 1 || md.Topics[0].Name != topic || len(md.Topics[0].Partitions) != partitions {
		t.Errorf("fetchTopicMetadata: %+v, want topic %s with %d partitions", md, topic, partitions)
	}
	for _, r := range steps["send"].Results {
		if r.ErrorCode != 0 || r.TopicName != topic {
			t.Errorf("send result %+v", r)
		}
	}

	// fetchTopicOffsets must agree with what the broker stored.
	ends := endOffsets(t, b.Addr, topic)
	offs := steps["fetchTopicOffsets"].Offsets
	if len(offs) != partitions {
		t.Errorf("fetchTopicOffsets returned %d partitions, want %d", len(offs), partitions)
	}
	var total int64
	for _, o := range offs {
		if o.High != fmt.Sprint(ends[o.Partition]) || o.Low != "0" {
			t.Errorf("fetchTopicOffsets partition %d: high %s low %s, want high %d low 0", o.Partition, o.High, o.Low, ends[o.Partition])
		}
	}
	for _, e := range ends {
		total += e
	}
	if total != n {
		t.Errorf("end offsets %v sum to %d, want %d", ends, total, n)
	}

	recs := consumeAll(t, b.Addr, topic)
	seen := map[string]bool{}
	for _, r := range recs {
		var i int
		if _, err := fmt.Sscanf(string(r.Key), "key-%d", &i); err != nil {
			t.Fatalf("unexpected key %q", r.Key)
		}
		if want := fmt.Sprintf("value-%d", i); string(r.Value) != want {
			t.Errorf("key %s: value %q, want %q", r.Key, r.Value, want)
		}
		// kafkajs sent the second half gzip-compressed.
		wantCodec := uint8(0)
		if i >= n/2 {
			wantCodec = 1
		}
		if c := r.Attrs.CompressionType(); c != wantCodec {
			t.Errorf("key %s stored with %s, want %s", r.Key, compressionName(c), compressionName(wantCodec))
		}
		if seen[string(r.Key)] {
			t.Errorf("key %s stored twice", r.Key)
		}
		seen[string(r.Key)] = true
	}
	if len(seen) != n {
		t.Errorf("stored %d distinct records, want %d", len(seen), n)
	}
}

// TestKafkaJSConsumerGroup consumes with a kafkajs consumer, which always
// joins a consumer group.
func TestKafkaJSConsumerGroup(t *testing.T) {
	node := requireNodeModules(t)
	script, err := filepath.Abs(filepath.Join("node", "kafkajs_client.js"))
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t)
	requireGroupCoordinator(t, b.Addr)
	topic := topicName(t)
	const n = 40
	runClient(t, 90*time.Second, nil, node, script, "produce", b.Addr, topic, fmt.Sprint(n), "2")
	run := runClient(t, 90*time.Second, nil, node, script, "consume", b.Addr, topic, fmt.Sprint(n), "kafkajs-"+topic)
	seen := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(run.Stdout), "\n") {
		var rec struct{ Key, Value string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("unparsable kafkajs line %q: %v", line, err)
		}
		seen[rec.Key] = rec.Value
	}
	for i := range n {
		if v := seen[fmt.Sprintf("key-%d", i)]; v != fmt.Sprintf("value-%d", i) {
			t.Errorf("key-%d: got value %q", i, v)
		}
	}
}

// requireGroupCoordinator fails the test unless the broker advertises the
// classic consumer group APIs the group clients need.
func requireGroupCoordinator(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vs, err := kadm.NewClient(newKgo(t, addr)).ApiVersions(ctx)
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	var missing []string
	vs.Each(func(v kadm.BrokerApiVersions) {
		for _, key := range []int16{10, 11, 12, 13, 14, 8, 9} { // FindCoordinator JoinGroup Heartbeat LeaveGroup SyncGroup OffsetCommit OffsetFetch
			if _, _, ok := v.KeyVersions(key); !ok {
				missing = append(missing, kmsg.NameForKey(key))
			}
		}
	})
	if len(missing) > 0 {
		t.Fatalf("broker does not advertise %v: no group coordinator", missing)
	}
}
