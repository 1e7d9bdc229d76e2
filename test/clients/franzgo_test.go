package clients

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"samsa/test/brokerproc"
)

// produceKgo sends n records key-I=value-I with franz-go's defaults
// (idempotent producer, acks=all) and fails the test on any error.
func produceKgo(t *testing.T, addr, topic string, from, n int, opts ...kgo.Opt) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("key-%d", i)), Value: []byte(fmt.Sprintf("value-%d", i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}
}

// checkKgoRecords checks that recs (one partition, offset order) are
// key-I=value-I for I in [0, n).
func checkKgoRecords(t *testing.T, recs []*kgo.Record, n int) {
	t.Helper()
	if len(recs) != n {
		t.Fatalf("read %d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		if r.Offset != int64(i) || string(r.Key) != fmt.Sprintf("key-%d", i) || string(r.Value) != fmt.Sprintf("value-%d", i) {
			t.Fatalf("record %d: offset %d key %q value %q", i, r.Offset, r.Key, r.Value)
		}
	}
}

// TestFranzGoRoundTrip produces with kgo's defaults (idempotent, acks=all,
// snappy preferred) and consumes it back.
func TestFranzGoRoundTrip(t *testing.T) {
	b := startBroker(t)
	topic := topicName(t)
	createTopic(t, b.Addr, topic, 1)
	produceKgo(t, b.Addr, topic, 0, 1000)
	checkKgoRecords(t, consumeAll(t, b.Addr, topic), 1000)
}

// TestFranzGoRestartPersistence produces, stops the broker cleanly with
// SIGTERM, restarts it on the same log directory and reads everything back,
// then appends more and reads again.
func TestFranzGoRestartPersistence(t *testing.T) {
	b := brokerproc.Start(t, brokerproc.Options{})
	topic := topicName(t)
	createTopic(t, b.Addr, topic, 1)
	produceKgo(t, b.Addr, topic, 0, 500)
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}

	b2 := b.Restart(t)
	checkKgoRecords(t, consumeAll(t, b2.Addr, topic), 500)
	produceKgo(t, b2.Addr, topic, 500, 500)
	if err := b2.Stop(); err != nil {
		t.Fatal(err)
	}

	b3 := b2.Restart(t)
	checkKgoRecords(t, consumeAll(t, b3.Addr, topic), 1000)
}
