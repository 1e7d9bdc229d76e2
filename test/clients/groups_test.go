package clients

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Consumer groups with each client's own group implementation: members
// share the partitions, read every record, and their commits end at the
// log end offsets (checked with kadm, a different client).

// startGroupBroker starts a broker whose new groups rebalance at once.
func startGroupBroker(t *testing.T) string {
	return startBroker(t, "group.initial.rebalance.delay.ms=0").Addr
}

// produceValues writes values v-0 .. v-(n-1) spread over the partitions.
func produceValues(t *testing.T, addr, topic string, n int) {
	t.Helper()
	cl := newKgo(t, addr, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Value: []byte(fmt.Sprintf("v-%d", i))})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// requireCommittedAtEnd checks the group committed every partition of
// topic at its log end offset.
func requireCommittedAtEnd(t *testing.T, addr, group, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := kadm.NewClient(newKgo(t, addr)).FetchOffsets(ctx, group)
	if err != nil || got.Error() != nil {
		t.Fatalf("fetch offsets of %s: %v %v", group, err, got.Error())
	}
	for p, end := range endOffsets(t, addr, topic) {
		if o, ok := got.Lookup(topic, p); !ok || o.At != end {
			t.Errorf("group %s: %s-%d committed %+v, log end offset %d", group, topic, p, o.Offset, end)
		}
	}
}

// requireAllValues checks values holds v-0 .. v-(n-1), each at least once.
func requireAllValues(t *testing.T, values map[string]bool, n int) {
	t.Helper()
	for i := range n {
		if !values[fmt.Sprintf("v-%d", i)] {
			t.Fatalf("value v-%d never consumed (%d distinct values read)", i, len(values))
		}
	}
}

// saramaHandler is a sarama.ConsumerGroupHandler that marks every message
// and records its value.
type saramaHandler struct {
	mu     *sync.Mutex
	values map[string]bool
	done   func(int) bool // called with the distinct count; true stops
	cancel context.CancelFunc
}

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		s.MarkMessage(m, "")
		h.mu.Lock()
		h.values[string(m.Value)] = true
		stop := h.done(len(h.values))
		h.mu.Unlock()
		if stop {
			s.Commit()
			h.cancel()
		}
	}
	return nil
}

// TestSaramaConsumerGroup runs two sarama ConsumerGroup members on one
// group over a 4-partition topic.
func TestSaramaConsumerGroup(t *testing.T) {
	addr := startGroupBroker(t)
	topic := topicName(t)
	createTopic(t, addr, topic, 4)
	const n = 200
	produceValues(t, addr, topic, n)

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.ClientID = "samsa-sarama-group-test"
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	cfg.Consumer.Return.Errors = true

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var mu sync.Mutex
	values := map[string]bool{}
	h := saramaHandler{mu: &mu, values: values, done: func(c int) bool { return c >= n }, cancel: stop}
	var wg sync.WaitGroup
	for i := range 2 {
		g, err := sarama.NewConsumerGroup([]string{addr}, "sarama-group", cfg)
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer g.Close()
			for runCtx.Err() == nil {
				if err := g.Consume(runCtx, []string{topic}, h); err != nil && runCtx.Err() == nil {
					t.Errorf("member %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("read %d of %d distinct values before the deadline", len(values), n)
	}
	requireAllValues(t, values, n)
	requireCommittedAtEnd(t, addr, "sarama-group", topic)
}

// TestKafkaGoConsumerGroup reads with a kafka-go Reader that has a GroupID
// and commits every message.
func TestKafkaGoConsumerGroup(t *testing.T) {
	addr := startGroupBroker(t)
	topic := topicName(t)
	createTopic(t, addr, topic, 3)
	const n = 150
	produceValues(t, addr, topic, n)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{addr}, GroupID: "kafka-go-group", Topic: topic,
		StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond,
		HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second,
	})
	values := map[string]bool{}
	for len(values) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("after %d values: %v", len(values), err)
		}
		values[string(m.Value)] = true
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	if err := r.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	requireAllValues(t, values, n)
	requireCommittedAtEnd(t, addr, "kafka-go-group", topic)
}

// TestKcatBalancedConsumer reads with kcat's balanced consumer (-G, the
// librdkafka group client), which commits as it goes and on exit.
func TestKcatBalancedConsumer(t *testing.T) {
	kcat := requireExecutable(t, "kcat")
	addr := startGroupBroker(t)
	topic := topicName(t)
	createTopic(t, addr, topic, 2)
	const n = 60
	produceValues(t, addr, topic, n)
	run := runClient(t, 90*time.Second, nil, kcat, "-b", addr, "-G", "kcat-group",
		"-X", "auto.offset.reset=earliest", "-c", fmt.Sprint(n), "-f", "%s\n", topic)
	values := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(run.Stdout), "\n") {
		values[line] = true
	}
	requireAllValues(t, values, n)
	requireCommittedAtEnd(t, addr, "kcat-group", topic)
}

var confluentGroupLine = regexp.MustCompile(`^(\d+) (\d+) (v-\d+)$`)

// TestConfluentKafkaPythonConsumerGroup runs two confluent-kafka-python
// group members one after the other: the second reads only what was
// produced after the first committed.
func TestConfluentKafkaPythonConsumerGroup(t *testing.T) {
	requirePythonModule(t, "confluent_kafka")
	script, err := filepath.Abs(filepath.Join("python", "confluent_group.py"))
	if err != nil {
		t.Fatal(err)
	}
	addr := startGroupBroker(t)
	topic := topicName(t)
	createTopic(t, addr, topic, 2)
	produceValues(t, addr, topic, 40)
	read := func(count int) map[string]bool {
		run := runClient(t, 90*time.Second, nil, pythonPath, script, addr, topic, "confluent-group", fmt.Sprint(count))
		values := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(run.Stdout), "\n") {
			if m := confluentGroupLine.FindStringSubmatch(line); m != nil {
				values[m[3]] = true
			}
		}
		return values
	}
	requireAllValues(t, read(40), 40)
	requireCommittedAtEnd(t, addr, "confluent-group", topic)

	produceValues(t, addr, topic, 20) // v-0 .. v-19 again, at new offsets
	second := read(20)
	if len(second) != 20 {
		t.Fatalf("second member read %d distinct values, want the 20 new records", len(second))
	}
	requireCommittedAtEnd(t, addr, "confluent-group", topic)
}
