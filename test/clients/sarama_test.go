package clients

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestSaramaRoundTrip produces with sarama's SyncProducer (acks=all, each
// codec) and reads back with a partition consumer (no group).
func TestSaramaRoundTrip(t *testing.T) {
	b := startBroker(t)
	codecs := []struct {
		name  string
		codec sarama.CompressionCodec
	}{
		{"none", sarama.CompressionNone},
		{"gzip", sarama.CompressionGZIP},
		{"snappy", sarama.CompressionSnappy},
		{"lz4", sarama.CompressionLZ4},
		{"zstd", sarama.CompressionZSTD},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			topic := topicName(t)
			createTopic(t, b.Addr, topic, 1)

			cfg := sarama.NewConfig()
			cfg.ClientID = "samsa-sarama-test"
			cfg.Producer.Return.Successes = true
			cfg.Producer.RequiredAcks = sarama.WaitForAll
			cfg.Producer.Compression = c.codec
			cfg.Producer.Timeout = 10 * time.Second
			cfg.Net.DialTimeout = 5 * time.Second
			cfg.Metadata.Retry.Max = 5
			cfg.Consumer.Return.Errors = true

			prod, err := sarama.NewSyncProducer([]string{b.Addr}, cfg)
			if err != nil {
				t.Fatalf("NewSyncProducer: %v", err)
			}
			const n = 100
			var msgs []*sarama.ProducerMessage
			for i := range n {
				msgs = append(msgs, &sarama.ProducerMessage{
					Topic:   topic,
					Key:     sarama.StringEncoder(fmt.Sprintf("key-%d", i)),
					Value:   sarama.StringEncoder(fmt.Sprintf("value-%d", i)),
					Headers: []sarama.RecordHeader{{Key: []byte("h"), Value: []byte(fmt.Sprint(i))}},
				})
			}
			// Half one by one, half as one SendMessages call.
			for _, m := range msgs[:n/2] {
				if _, _, err := prod.SendMessage(m); err != nil {
					t.Fatalf("SendMessage: %v", err)
				}
			}
			if err := prod.SendMessages(msgs[n/2:]); err != nil {
				t.Fatalf("SendMessages: %v", err)
			}
			for i, m := range msgs {
				if m.Offset != int64(i) || m.Partition != 0 {
					t.Errorf("message %d acknowledged at %d/%d, want 0/%d", i, m.Partition, m.Offset, i)
				}
			}
			if err := prod.Close(); err != nil {
				t.Errorf("producer Close: %v", err)
			}

			cons, err := sarama.NewConsumer([]string{b.Addr}, cfg)
			if err != nil {
				t.Fatalf("NewConsumer: %v", err)
			}
			defer cons.Close()
			pc, err := cons.ConsumePartition(topic, 0, sarama.OffsetOldest)
			if err != nil {
				t.Fatalf("ConsumePartition: %v", err)
			}
			defer pc.Close()
			timeout := time.After(30 * time.Second)
			for i := 0; i < n; {
				select {
				case m := <-pc.Messages():
					if m.Offset != int64(i) || string(m.Key) != fmt.Sprintf("key-%d", i) || string(m.Value) != fmt.Sprintf("value-%d", i) {
						t.Fatalf("message %d: offset %d key %q value %q", i, m.Offset, m.Key, m.Value)
					}
					if len(m.Headers) != 1 || string(m.Headers[0].Key) != "h" || string(m.Headers[0].Value) != fmt.Sprint(i) {
						t.Errorf("message %d: headers %v", i, m.Headers)
					}
					i++
				case err := <-pc.Errors():
					t.Fatalf("partition consumer: %v", err)
				case <-timeout:
					t.Fatalf("timed out after %d of %d messages", i, n)
				}
			}
			if hwm := pc.HighWaterMarkOffset(); hwm != n {
				t.Errorf("high watermark %d, want %d", hwm, n)
			}
			if c.codec != sarama.CompressionNone {
				for _, r := range consumeAll(t, b.Addr, topic) {
					if got := compressionName(r.Attrs.CompressionType()); got != c.name {
						t.Fatalf("offset %d stored with %s, want %s", r.Offset, got, c.name)
					}
				}
			}
		})
	}
}

// TestSaramaBrokerConfigs drives sarama's ClusterAdmin on BROKER
// resources (dynamic broker configs, KIP-226): legacy AlterConfigs and
// IncrementalAlterConfigs for broker 1 and the cluster default, then
// DescribeConfigs shows each value with its level; a read-only key is
// refused.
func TestSaramaBrokerConfigs(t *testing.T) {
	b := startBroker(t)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	adm, err := sarama.NewClusterAdmin([]string{b.Addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	v := func(s string) *string { return &s }
	if err := adm.AlterConfig(sarama.BrokerResource, "", map[string]*string{"log.retention.ms": v("3600000")}, false); err != nil {
		t.Fatalf("alter cluster default: %v", err)
	}
	if err := adm.IncrementalAlterConfig(sarama.BrokerResource, "1", map[string]sarama.IncrementalAlterConfigsEntry{
		"log.segment.bytes": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: v("2097152")},
	}, false); err != nil {
		t.Fatalf("incremental alter broker 1: %v", err)
	}
	if err := adm.IncrementalAlterConfig(sarama.BrokerResource, "1", map[string]sarama.IncrementalAlterConfigsEntry{
		"log.dirs": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: v("/elsewhere")},
	}, false); err == nil {
		t.Errorf("read-only log.dirs accepted")
	}
	describe := func(name string) []sarama.ConfigEntry {
		t.Helper()
		rs, err := adm.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.BrokerResource, Name: name}}, sarama.DescribeConfigsOptions{IncludeSynonyms: true})
		if err != nil || len(rs) != 1 || rs[0].ErrorCode != 0 {
			t.Fatalf("describe broker %q: %v %+v", name, err, rs)
		}
		return rs[0].Configs
	}
	entries := describe("1")
	got := map[string]sarama.ConfigEntry{}
	for _, e := range entries {
		got[e.Name] = e
	}
	for _, w := range []struct {
		key, value string
		src        sarama.ConfigSource
		readOnly   bool
	}{
		{"log.segment.bytes", "2097152", sarama.SourceDynamicBroker, false},
		{"log.retention.ms", "3600000", sarama.SourceDynamicDefaultBroker, false},
		{"log.dirs", "", sarama.SourceStaticBroker, true},
	} {
		e, ok := got[w.key]
		if !ok || (w.value != "" && e.Value != w.value) || e.Source != w.src || e.ReadOnly != w.readOnly {
			t.Errorf("%s: %+v, want %q from %v read-only %v", w.key, e, w.value, w.src, w.readOnly)
		}
	}
	// The broker's own value, then the cluster default and Kafka's
	// default as synonyms.
	if syn := got["log.segment.bytes"].Synonyms; len(syn) != 2 || syn[0].Source != sarama.SourceDynamicBroker || syn[1].Source != sarama.SourceDefault {
		t.Errorf("log.segment.bytes synonyms %+v", syn)
	}
	defaults := describe("")
	if len(defaults) != 1 || defaults[0].Name != "log.retention.ms" || defaults[0].Source != sarama.SourceDynamicDefaultBroker {
		t.Errorf("cluster default: %+v", defaults)
	}
}
