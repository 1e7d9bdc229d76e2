package record

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func BenchmarkSplitValidate(b *testing.B) {
	recs := make([]Record, 160)
	for i := range recs {
		recs[i] = Record{Timestamp: 1, Value: make([]byte, 100)}
	}
	batch, _ := Build(BuildOptions{}, recs)
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if err := Split(batch, func([]byte, Header) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	for _, c := range []Compression{CompressionNone, CompressionSnappy, CompressionZstd} {
		recs := make([]Record, 160)
		for i := range recs {
			recs[i] = Record{Timestamp: 1, Value: make([]byte, 100)}
		}
		batch, _ := Build(BuildOptions{Compression: c}, recs)
		b.Run(c.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(batch)))
			for b.Loop() {
				if _, err := DecodeBatch(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkValidateRecords is the produce path's per-batch record walk:
// batches of 160 KiB in each codec (held in the L2 cache), and lz4 and
// zstd batches of 1,000 records of 1 KiB (a franz-go batch at full load:
// its 1 MB maximum, one lz4 block; decoding them is memory-bound).
// Uncompressed batches must not allocate; compressed ones reuse pooled
// decompressors and buffers.
func BenchmarkValidateRecords(b *testing.B) {
	type workload struct {
		c     Compression
		size  int // value bytes per record
		batch int // batch bytes; 0: 160 KiB
	}
	for _, w := range []workload{{CompressionNone, 100, 0}, {CompressionNone, 1024, 0}, {CompressionGzip, 1024, 0},
		{CompressionSnappy, 1024, 0}, {CompressionLZ4, 1024, 0}, {CompressionZstd, 1024, 0},
		{CompressionLZ4, 1024, 1000 << 10}, {CompressionZstd, 1024, 1000 << 10}} {
		c := w.c
		// One value of random letters for every record, as samsa perf
		// and the bench send.
		v := make([]byte, w.size)
		r := rand.New(rand.NewPCG(1, 2))
		for j := range v {
			v[j] = byte('A' + r.IntN(26))
		}
		if w.batch == 0 {
			w.batch = 160 << 10
		}
		recs := make([]Record, w.batch/w.size)
		for i := range recs {
			recs[i] = Record{Timestamp: testNow + int64(i), Value: v}
		}
		batch, err := Build(BuildOptions{Compression: c}, recs)
		if err != nil {
			b.Fatal(err)
		}
		h, err := Validate(batch)
		if err != nil {
			b.Fatal(err)
		}
		o := ValidateOptions{NowMs: testNow, CreateTime: true, TimestampBeforeMaxMs: 1 << 40, TimestampAfterMaxMs: 3600_000}
		b.Run(fmt.Sprintf("%s/%dB/%dKiB", c, w.size, w.batch>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(recs) * w.size)) // decompressed payload
			for b.Loop() {
				if _, err := ValidateRecords(batch, &h, &o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
