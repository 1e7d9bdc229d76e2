package api_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/record"
)

// TestProduceCompressionTypeRecompresses: a topic whose compression.type
// names a codec stores a franz-go producer's gzip batches in that codec,
// and franz-go consumers read every record back.
func TestProduceCompressionTypeRecompresses(t *testing.T) {
	n := startNode(t)
	ctx := ctxT(t)
	want := map[string]record.Compression{"snappy": record.CompressionSnappy, "zstd": record.CompressionZstd,
		"lz4": record.CompressionLZ4, "uncompressed": record.CompressionNone}
	for _, codec := range []string{"snappy", "zstd", "lz4", "uncompressed"} {
		topic := "recompress-" + codec
		n.createTopic(topic, 1, map[string]*string{"compression.type": &codec})
		prod := n.client(kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.GzipCompression()))
		var rs []*kgo.Record
		for i := range 200 {
			rs = append(rs, &kgo.Record{Key: []byte{byte(i)}, Value: []byte(fmt.Sprintf("value-%d", i))})
		}
		if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("%s: %v", codec, err)
		}
		// Every stored batch is in the topic's codec.
		fr := n.raw().do(fetchReq(12, topic, 0, 0)).(*kmsg.FetchResponse)
		stored := fr.Topics[0].Partitions[0].RecordBatches
		if len(stored) == 0 {
			t.Fatalf("%s: nothing fetched", codec)
		}
		for len(stored) > 0 {
			b, h, rest, err := record.Next(stored)
			if err != nil {
				t.Fatalf("%s: %v", codec, err)
			}
			if got := h.Compression(); got != want[codec] {
				t.Fatalf("%s: stored batch in %s", codec, got)
			}
			if _, err := record.DecodeBatch(b); err != nil {
				t.Fatalf("%s: %v", codec, err)
			}
			stored = rest
		}
		cons := n.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		got := 0
		for got < len(rs) {
			fs := cons.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatalf("%s: %v", codec, err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if want := fmt.Sprintf("value-%d", r.Offset); string(r.Value) != want || r.Key[0] != byte(r.Offset) {
					t.Fatalf("%s: offset %d holds %q", codec, r.Offset, r.Value)
				}
				got++
			})
		}
	}
}

// TestProduceTimestampBounds: a CreateTime record older than the topic's
// message.timestamp.before.max.ms is refused with INVALID_TIMESTAMP and
// not stored; one within the bounds is stored.
func TestProduceTimestampBounds(t *testing.T) {
	n := startNode(t)
	ctx := ctxT(t)
	minute := "60000"
	n.createTopic("bounded", 1, map[string]*string{"message.timestamp.before.max.ms": &minute})
	prod := n.client(kgo.DefaultProduceTopic("bounded"), kgo.RecordRetries(0))
	err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("old"), Timestamp: time.Now().Add(-time.Hour)}).FirstErr()
	if !errors.Is(err, kerr.InvalidTimestamp) {
		t.Fatalf("hour-old record: %v", err)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("new"), Timestamp: time.Now()}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if end := n.endOffset("bounded", 0); end != 1 {
		t.Fatalf("end offset %d, want 1", end)
	}
}
