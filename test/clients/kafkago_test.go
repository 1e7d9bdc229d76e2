package clients

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	kafka "github.com/segmentio/kafka-go"
)

// TestKafkaGoRoundTrip creates a topic with kafka-go's Conn, writes with a
// Writer (acks=all, each codec) and reads back with a Reader on an explicit
// partition (no group).
func TestKafkaGoRoundTrip(t *testing.T) {
	b := startBroker(t)
	codecs := []struct {
		name  string
		codec kafka.Compression
	}{
		{"none", 0},
		{"gzip", kafka.Gzip},
		{"snappy", kafka.Snappy},
		{"lz4", kafka.Lz4},
		{"zstd", kafka.Zstd},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			topic := topicName(t)
			kafkaGoCreateTopic(ctx, t, b.Addr, topic)

			// A Transport of its own: kafka-go's DefaultTransport caches
			// metadata across Writers and would not know the new topic.
			tr := &kafka.Transport{ClientID: "samsa-kafka-go-test"}
			defer tr.CloseIdleConnections()
			w := &kafka.Writer{
				Addr:                   kafka.TCP(b.Addr),
				Transport:              tr,
				Topic:                  topic,
				RequiredAcks:           kafka.RequireAll,
				Compression:            c.codec,
				BatchTimeout:           10 * time.Millisecond,
				AllowAutoTopicCreation: false,
			}
			const n = 100
			var msgs []kafka.Message
			for i := range n {
				msgs = append(msgs, kafka.Message{
					Key:     []byte(fmt.Sprintf("key-%d", i)),
					Value:   []byte(fmt.Sprintf("value-%d", i)),
					Headers: []kafka.Header{{Key: "h", Value: []byte(strconv.Itoa(i))}},
				})
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatalf("WriteMessages: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Errorf("Writer.Close: %v", err)
			}

			r := kafka.NewReader(kafka.ReaderConfig{
				Brokers:   []string{b.Addr},
				Topic:     topic,
				Partition: 0,
				MinBytes:  1,
				MaxBytes:  10 << 20,
				MaxWait:   200 * time.Millisecond,
			})
			defer r.Close()
			if err := r.SetOffset(kafka.FirstOffset); err != nil {
				t.Fatalf("SetOffset: %v", err)
			}
			for i := range n {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					t.Fatalf("ReadMessage %d: %v", i, err)
				}
				if m.Offset != int64(i) || string(m.Key) != fmt.Sprintf("key-%d", i) || string(m.Value) != fmt.Sprintf("value-%d", i) {
					t.Fatalf("message %d: offset %d key %q value %q", i, m.Offset, m.Key, m.Value)
				}
				if len(m.Headers) != 1 || m.Headers[0].Key != "h" || string(m.Headers[0].Value) != strconv.Itoa(i) {
					t.Errorf("message %d: headers %v", i, m.Headers)
				}
			}
			if c.codec != 0 {
				for _, rec := range consumeAll(t, b.Addr, topic) {
					if got := compressionName(rec.Attrs.CompressionType()); got != c.name {
						t.Fatalf("offset %d stored with %s, want %s", rec.Offset, got, c.name)
					}
				}
			}
		})
	}
}

// kafkaGoCreateTopic creates a one-partition topic the kafka-go way: find
// the controller through a Conn, then CreateTopics on a Conn to it.
func kafkaGoCreateTopic(ctx context.Context, t *testing.T, addr, topic string) {
	t.Helper()
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("kafka.Dial: %v", err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		t.Fatalf("Conn.Controller: %v", err)
	}
	cconn, err := kafka.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		t.Fatalf("dial controller %s:%d: %v", ctrl.Host, ctrl.Port, err)
	}
	defer cconn.Close()
	if err := cconn.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatalf("Conn.CreateTopics: %v", err)
	}
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatalf("Conn.ReadPartitions: %v", err)
	}
	if len(parts) != 1 || parts[0].Topic != topic || parts[0].ID != 0 {
		t.Fatalf("Conn.ReadPartitions: %+v, want one partition of %s", parts, topic)
	}
}

// TestKafkaGoClientCreateProduceFetch uses kafka-go's kafka.Client (the
// request/response API): CreateTopics, Produce of 10 records, Fetch of
// partition 0. Client.Fetch sends a sessionless fetch (session id -1,
// epoch -1), which Kafka serves as a full fetch (KIP-227).
func TestKafkaGoClientCreateProduceFetch(t *testing.T) {
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic := topicName(t)
	cl := &kafka.Client{Addr: kafka.TCP(b.Addr), Timeout: 20 * time.Second}
	cr, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}},
	})
	if err != nil || cr.Errors[topic] != nil {
		t.Fatalf("CreateTopics: %v %v", err, cr)
	}
	const n = 10
	var recs []kafka.Record
	for i := range n {
		recs = append(recs, kafka.Record{Value: kafka.NewBytes([]byte(fmt.Sprintf("value-%d", i)))})
	}
	pr, err := cl.Produce(ctx, &kafka.ProduceRequest{
		Topic: topic, Partition: 0, RequiredAcks: kafka.RequireAll,
		Records: kafka.NewRecordReader(recs...),
	})
	if err != nil || pr.Error != nil {
		t.Fatalf("Produce: %v %+v", err, pr)
	}
	fr, err := cl.Fetch(ctx, &kafka.FetchRequest{
		Topic: topic, Partition: 0, Offset: 0, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if fr.Error != nil {
		t.Fatalf("Fetch: partition error %v", fr.Error)
	}
	if fr.HighWatermark != n {
		t.Fatalf("Fetch: high watermark %d, want %d", fr.HighWatermark, n)
	}
	got := 0
	for {
		r, err := fr.Records.ReadRecord()
		if err != nil {
			break
		}
		v, err := io.ReadAll(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if r.Offset != int64(got) || string(v) != fmt.Sprintf("value-%d", got) {
			t.Fatalf("record %d: offset %d value %q", got, r.Offset, v)
		}
		got++
	}
	if got != n {
		t.Fatalf("fetched %d records, want %d", got, n)
	}
}

// TestKafkaGoConsumerGroupFirstJoin: kafka-go's ConsumerGroup on a fresh
// broker. Its first FindCoordinator creates __consumer_offsets and its
// JoinGroup follows at once; kafka-go reports COORDINATOR_LOAD_IN_PROGRESS
// from Next instead of retrying, so the coordinator must serve the new,
// empty partition right away.
func TestKafkaGoConsumerGroupFirstJoin(t *testing.T) {
	addr := startGroupBroker(t)
	topic := topicName(t)
	createTopic(t, addr, topic, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: "kafka-go-first-join", Brokers: []string{addr}, Topics: []string{topic},
		HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	gen, err := cg.Next(ctx)
	if err != nil {
		t.Fatalf("first generation: %v", err)
	}
	if got := len(gen.Assignments[topic]); got != 2 {
		t.Fatalf("assigned %d partitions of %s, want 2", got, topic)
	}
	if err := gen.CommitOffsets(map[string]map[int]int64{topic: {0: 0, 1: 0}}); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// TestKafkaGoBrokerConfigs drives kafka-go's Client on BROKER resources
// (dynamic broker configs, KIP-226): legacy AlterConfigs for the cluster
// default (kafka-go's IncrementalAlterConfigs and DescribeConfigs parse
// the resource name as a broker id, so they cannot name the default),
// IncrementalAlterConfigs SET for broker 1, DescribeConfigs with each
// level's source, DELETE bringing the default back.
func TestKafkaGoBrokerConfigs(t *testing.T) {
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(b.Addr), Timeout: 20 * time.Second}
	alter := func(res string, op kafka.ConfigOperation, k, v string) {
		t.Helper()
		r, err := cl.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{{
			ResourceType: kafka.ResourceTypeBroker, ResourceName: res,
			Configs: []kafka.IncrementalAlterConfigsRequestConfig{{Name: k, Value: v, ConfigOperation: op}},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		if e := r.Resources[0].Error; e != nil {
			t.Fatalf("alter %q %s: %v", res, k, e)
		}
	}
	describe := func(key string) (string, int8) {
		t.Helper()
		r, err := cl.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
			ResourceType: kafka.ResourceTypeBroker, ResourceName: "1", ConfigNames: []string{key},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		if e := r.Resources[0].Error; e != nil || len(r.Resources[0].ConfigEntries) != 1 {
			t.Fatalf("describe %s: %v %+v", key, e, r.Resources[0].ConfigEntries)
		}
		ce := r.Resources[0].ConfigEntries[0]
		return ce.ConfigValue, ce.ConfigSource
	}
	ar, err := cl.AlterConfigs(ctx, &kafka.AlterConfigsRequest{Resources: []kafka.AlterConfigRequestResource{{
		ResourceType: kafka.ResourceTypeBroker, ResourceName: "",
		Configs: []kafka.AlterConfigRequestConfig{{Name: "log.retention.ms", Value: "7200000"}},
	}}})
	if err != nil || len(ar.Errors) != 1 {
		t.Fatalf("alter cluster default: %v %+v", err, ar)
	}
	for _, e := range ar.Errors {
		if e != nil {
			t.Fatalf("alter cluster default: %v", e)
		}
	}
	alter("1", kafka.ConfigOperationSet, "log.retention.ms", "3600000")
	if v, src := describe("log.retention.ms"); v != "3600000" || src != 2 { // DYNAMIC_BROKER_CONFIG
		t.Fatalf("broker value: %s from %d", v, src)
	}
	alter("1", kafka.ConfigOperationDelete, "log.retention.ms", "")
	if v, src := describe("log.retention.ms"); v != "7200000" || src != 3 { // DYNAMIC_DEFAULT_BROKER_CONFIG
		t.Fatalf("after delete: %s from %d", v, src)
	}
}
