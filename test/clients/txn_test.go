package clients

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// readLevel reads partition 0 of topic from the start with franz-go at the
// given isolation level, up to that level's end (the last stable offset
// for read_committed), and returns the values.
func readLevel(t *testing.T, addr, topic string, level kgo.IsolationLevel) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := newKgo(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(level), kgo.FetchMaxWait(200*time.Millisecond))
	// A non-transactional sentinel is visible at both levels: read until it.
	sentinel := fmt.Sprintf("sentinel-%d", time.Now().UnixNano())
	if err := newKgo(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner())).ProduceSync(ctx,
		&kgo.Record{Topic: topic, Partition: 0, Value: []byte(sentinel)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var vals []string
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (got %q)", topic, ctx.Err(), vals)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			switch v := string(r.Value); {
			case done:
			case v == sentinel:
				done = true
			case !strings.HasPrefix(v, "sentinel-"):
				vals = append(vals, v)
			}
		})
		if done {
			return vals
		}
	}
}

// TestConfluentKafkaPythonTransactions: librdkafka's transactional
// producer (init/begin/commit/abort) and its read_committed consumer; a
// read_uncommitted consumer sees the aborted records too.
func TestConfluentKafkaPythonTransactions(t *testing.T) {
	requirePythonModule(t, "confluent_kafka")
	script, err := filepath.Abs(filepath.Join("python", "confluent_txn.py"))
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t)
	topic := topicName(t)
	createTopic(t, b.Addr, topic, 1)
	run := runClient(t, 120*time.Second, nil, pythonPath, script, b.Addr, topic, "confluent-txn")

	byLevel := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(run.Stdout), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("unparsable line %q", line)
		}
		byLevel[f[0]] = append(byLevel[f[0]], f[2])
	}
	committed := []string{"c-0", "c-1", "c-2", "c-3", "c-4", "c-5"}
	all := []string{"c-0", "c-1", "c-2", "c-3", "c-4", "a-0", "a-1", "a-2", "c-5"}
	if got := byLevel["read_committed"]; !slices.Equal(got, committed) {
		t.Errorf("librdkafka read_committed: %q, want %q", got, committed)
	}
	if got := byLevel["read_uncommitted"]; !slices.Equal(got, all) {
		t.Errorf("librdkafka read_uncommitted: %q, want %q", got, all)
	}
	if got := readLevel(t, b.Addr, topic, kgo.ReadCommitted()); !slices.Equal(got, committed) {
		t.Errorf("franz-go read_committed: %q, want %q", got, committed)
	}
}

// TestKafkaJSTransactions: kafkajs's transactional producer commits and
// aborts; its read_committed group consumer and franz-go see only the
// committed records.
func TestKafkaJSTransactions(t *testing.T) {
	node := requireNodeModules(t)
	script, err := filepath.Abs(filepath.Join("node", "kafkajs_client.js"))
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, "group.initial.rebalance.delay.ms=0")
	topic := topicName(t)
	createTopic(t, b.Addr, topic, 1)
	const n = 5
	run := runClient(t, 120*time.Second, nil, node, script, "txn", b.Addr, topic, fmt.Sprint(n), "kafkajs-txn")

	var committed []string
	for i := range n + 1 {
		committed = append(committed, fmt.Sprintf("c-%d", i))
	}
	var read []string
	for _, line := range strings.Split(strings.TrimSpace(run.Stdout), "\n") {
		var s struct {
			Step  string `json:"step"`
			Value string `json:"value"`
		}
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("unparsable kafkajs line %q: %v", line, err)
		}
		if s.Step == "record" {
			read = append(read, s.Value)
		}
	}
	if !slices.Equal(read, committed) {
		t.Errorf("kafkajs read_committed: %q, want %q", read, committed)
	}
	if got := readLevel(t, b.Addr, topic, kgo.ReadCommitted()); !slices.Equal(got, committed) {
		t.Errorf("franz-go read_committed: %q, want %q", got, committed)
	}
	if got := readLevel(t, b.Addr, topic, kgo.ReadUncommitted()); len(got) != 2*n+1 {
		t.Errorf("franz-go read_uncommitted: %q, want %d records", got, 2*n+1)
	}
}

// TestSaramaTransactions: sarama's transactional SyncProducer commits and
// aborts; its partition consumer with ReadCommitted and franz-go see only
// the committed records.
func TestSaramaTransactions(t *testing.T) {
	b := startBroker(t)
	topic := topicName(t)
	createTopic(t, b.Addr, topic, 1)

	cfg := sarama.NewConfig()
	cfg.ClientID = "samsa-sarama-txn"
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = "sarama-txn"
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Net.MaxOpenRequests = 1
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cfg.Consumer.Return.Errors = true
	prod, err := sarama.NewSyncProducer([]string{b.Addr}, cfg)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	defer prod.Close()
	txn := func(values []string, commit bool) {
		t.Helper()
		if err := prod.BeginTxn(); err != nil {
			t.Fatalf("BeginTxn: %v", err)
		}
		for _, v := range values {
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(v)}); err != nil {
				t.Fatalf("SendMessage: %v", err)
			}
		}
		if commit {
			err = prod.CommitTxn()
		} else {
			err = prod.AbortTxn()
		}
		if err != nil {
			t.Fatalf("end transaction (commit %v): %v", commit, err)
		}
	}
	txn([]string{"c-0", "c-1"}, true)
	txn([]string{"a-0"}, false)
	txn([]string{"c-2"}, true)
	committed := []string{"c-0", "c-1", "c-2"}

	cons, err := sarama.NewConsumer([]string{b.Addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var got []string
	timeout := time.After(30 * time.Second)
	for len(got) < len(committed) {
		select {
		case m := <-pc.Messages():
			got = append(got, string(m.Value))
		case err := <-pc.Errors():
			t.Fatalf("consume: %v", err)
		case <-timeout:
			t.Fatalf("sarama read_committed got %q", got)
		}
	}
	if !slices.Equal(got, committed) {
		t.Errorf("sarama read_committed: %q, want %q", got, committed)
	}
	if got := readLevel(t, b.Addr, topic, kgo.ReadCommitted()); !slices.Equal(got, committed) {
		t.Errorf("franz-go read_committed: %q, want %q", got, committed)
	}
}
