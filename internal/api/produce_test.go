package api_test

import (
	"errors"
	"fmt"
	"strings"
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

// TestProduceLargeRequestAcrossPartitions: a Produce request large enough
// to be appended by several goroutines stores every partition's batch at
// the right offsets, answers a bad partition alone, and a request naming
// one partition twice appends both batches in the request's order.
func TestProduceLargeRequestAcrossPartitions(t *testing.T) {
	n := startNode(t)
	const topic, parts = "wide", 8
	n.createTopic(topic, parts, nil)
	now := time.Now().UnixMilli()
	big := func(p int32) []byte { return batch(t, 100, fmt.Sprintf("p%d-%s", p, strings.Repeat("x", 600)), now) }

	for round := range 3 {
		req := produceReq(9, topic, 0, big(0))
		for p := int32(1); p < parts; p++ {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = p
			rp.Records = big(p)
			if p == 5 {
				rp.Records[len(rp.Records)-1] ^= 0xff // CRC mismatch
			}
			req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
		}
		resp := n.raw().do(req).(*kmsg.ProduceResponse)
		for _, sp := range resp.Topics[0].Partitions {
			switch {
			case sp.Partition == 5 && sp.ErrorCode != kerr.CorruptMessage.Code:
				t.Fatalf("round %d: corrupt partition answered %d", round, sp.ErrorCode)
			case sp.Partition != 5 && (sp.ErrorCode != 0 || sp.BaseOffset != int64(100*round)):
				t.Fatalf("round %d: partition %d: code %d base offset %d", round, sp.Partition, sp.ErrorCode, sp.BaseOffset)
			}
		}
	}
	fr := n.raw().do(fetchReq(12, topic, 5, 0)).(*kmsg.FetchResponse)
	if hw := fr.Topics[0].Partitions[0].HighWatermark; hw != 0 {
		t.Fatalf("the corrupt partition stored %d records", hw)
	}

	// One partition twice: appended one after the other, in order.
	req := produceReq(9, topic, 1, big(1))
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = 1
	rp.Records = big(1)
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
	resp := n.raw().do(req).(*kmsg.ProduceResponse)
	for i, sp := range resp.Topics[0].Partitions {
		if sp.ErrorCode != 0 || sp.BaseOffset != int64(300+100*i) {
			t.Fatalf("entry %d of partition 1: code %d base offset %d", i, sp.ErrorCode, sp.BaseOffset)
		}
	}
}
