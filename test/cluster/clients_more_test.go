package cluster

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
)

// TestClusterClientsGoAndKcat runs sarama, kafka-go and kcat (librdkafka)
// against one 3-node cluster on RF 3 topics whose partitions are led by
// every broker: each produces with acks=all and reads back as a group
// member, then its group's commits are checked.
func TestClusterClientsGoAndKcat(t *testing.T) {
	c := startCluster(t, 3)
	addrs := c.Bootstrap()

	t.Run("SaramaAcksAllGroup", func(t *testing.T) {
		topic := "sarama-cluster"
		leaders := spreadTopic(t, addrs, topic, 6)
		const n = 120
		cfg := sarama.NewConfig()
		cfg.Version = sarama.V2_8_0_0
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		cfg.Producer.Return.Successes = true
		cfg.Producer.Partitioner = sarama.NewRoundRobinPartitioner
		prod, err := sarama.NewSyncProducer([]string{addrs[0]}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(fmt.Sprintf("s%d", i))}); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		prod.Close()
		requireOnEveryBroker(t, addrs[1], topic, leaders)

		gcfg := sarama.NewConfig()
		gcfg.Version = sarama.V2_8_0_0
		gcfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		gcfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
		g, err := sarama.NewConsumerGroup([]string{addrs[2]}, "sarama-cluster-group", gcfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		h := &collectHandler{want: n, cancel: cancel}
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
				t.Fatal(err)
			}
		}
		if err := g.Close(); err != nil {
			t.Error(err)
		}
		requireEachOnce(t, h.values, n, func(i int) string { return fmt.Sprintf("s%d", i) })
		requireCommitted(t, addrs[0], "sarama-cluster-group", topic, n)
	})

	t.Run("KafkaGoRequireAllGroup", func(t *testing.T) {
		topic := "kafkago-cluster"
		leaders := spreadTopic(t, addrs, topic, 6)
		const n = 120
		ctx := ctxFor(t, 60*time.Second)
		w := &kafka.Writer{Addr: kafka.TCP(addrs...), Topic: topic, RequiredAcks: kafka.RequireAll, Balancer: &kafka.RoundRobin{}, BatchTimeout: 10 * time.Millisecond}
		var msgs []kafka.Message
		for i := range n {
			msgs = append(msgs, kafka.Message{Value: []byte(fmt.Sprintf("k%d", i))})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		requireOnEveryBroker(t, addrs[1], topic, leaders)
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: []string{addrs[2]}, GroupID: "kafkago-cluster-group", Topic: topic,
			StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond,
			HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second,
		})
		var values []string
		for len(values) < n {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("after %d values: %v", len(values), err)
			}
			values = append(values, string(m.Value))
			if err := r.CommitMessages(ctx, m); err != nil {
				t.Fatalf("commit: %v", err)
			}
		}
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		requireEachOnce(t, values, n, func(i int) string { return fmt.Sprintf("k%d", i) })
		requireCommitted(t, addrs[0], "kafkago-cluster-group", topic, n)
	})

	t.Run("KcatAcksAllBalancedConsumer", func(t *testing.T) {
		kcat, err := exec.LookPath("kcat")
		if err != nil {
			missingClient(t, "kcat not installed (scripts/install-test-deps.sh)")
		}
		topic := "kcat-cluster"
		leaders := spreadTopic(t, addrs, topic, 6)
		const n = 90
		var in strings.Builder
		// Keyed records: murmur2 spreads the keys over every partition
		// (keyless ones would go to one sticky partition per linger).
		for i := range n {
			fmt.Fprintf(&in, "key%d:c%d\n", i, i)
		}
		produce := exec.Command(kcat, "-b", strings.Join(addrs, ","), "-P", "-K", ":", "-t", topic, "-X", "acks=all", "-X", "partitioner=murmur2_random")
		produce.Stdin = strings.NewReader(in.String())
		if out, err := produce.CombinedOutput(); err != nil {
			t.Fatalf("kcat -P: %v\n%s", err, out)
		}
		requireOnEveryBroker(t, addrs[1], topic, leaders)
		out := runClient(t, 90*time.Second, kcat, "-b", addrs[2], "-G", "kcat-cluster-group",
			"-X", "auto.offset.reset=earliest", "-c", fmt.Sprint(n), "-f", "%s\n", topic)
		requireEachOnce(t, strings.Split(strings.TrimSpace(out), "\n"), n, func(i int) string { return fmt.Sprintf("c%d", i) })
		requireCommitted(t, addrs[0], "kcat-cluster-group", topic, n)
	})
}

// collectHandler is a sarama group handler that keeps every value and
// cancels once want values arrived; it marks each message (autocommit).
type collectHandler struct {
	mu     sync.Mutex
	values []string
	want   int
	cancel context.CancelFunc
}

func (h *collectHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *collectHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *collectHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		s.MarkMessage(m, "")
		s.Commit()
		h.mu.Lock()
		h.values = append(h.values, string(m.Value))
		done := len(h.values) >= h.want
		h.mu.Unlock()
		if done {
			h.cancel()
			return nil
		}
	}
	return nil
}
