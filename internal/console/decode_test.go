package console

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// zstdBatch is a magic v2 batch at offset 0 with one record whose value is
// n zero bytes, compressed with zstd.
func zstdBatch(t *testing.T, n int) []byte {
	t.Helper()
	var body []byte
	body = append(body, 0) // record attributes
	body = binary.AppendVarint(body, 0)
	body = binary.AppendVarint(body, 0)
	body = binary.AppendVarint(body, -1) // null key
	body = binary.AppendVarint(body, int64(n))
	body = append(body, make([]byte, n)...)
	body = binary.AppendVarint(body, 0) // no headers
	rec := binary.AppendVarint(nil, int64(len(body)))
	rec = append(rec, body...)
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	compressed := enc.EncodeAll(rec, nil)
	enc.Close()
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: 4, ProducerID: -1, ProducerEpoch: -1,
		FirstSequence: -1, NumRecords: 1, Records: compressed, FirstTimestamp: 1, MaxTimestamp: 1,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:12], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// TestConsoleDecompressionIsBounded feeds the browser's decoder a batch
// that inflates past maxDecompressedBatchBytes: it is refused, not
// inflated, while a batch under the bound decodes.
func TestConsoleDecompressionIsBounded(t *testing.T) {
	c, err := New(Options{Bootstrap: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		n  int
		ok bool
	}{{1 << 20, true}, {maxDecompressedBatchBytes + 1<<20, false}} {
		raw := zstdBatch(t, tc.n)
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.HighWatermark, rp.RecordBatches = 1, raw
		got := c.decode(&rp, "t", 0)
		if tc.ok {
			if got.Err != nil || len(got.Records) != 1 || len(got.Records[0].Value) != tc.n {
				t.Errorf("%d-byte value (%d bytes compressed): err %v, %d records", tc.n, len(raw), got.Err, len(got.Records))
			}
			continue
		}
		if len(got.Records) != 0 {
			t.Errorf("%d-byte value (%d bytes compressed) was inflated: %d records", tc.n, len(raw), len(got.Records))
		}
		if got.Err == nil {
			t.Errorf("%d-byte value: no records and no error", tc.n)
		}
	}
}
