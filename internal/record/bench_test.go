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
// 160 records of 1 KiB (a franz-go batch at 8 partitions) in each codec.
// Uncompressed batches must not allocate; compressed ones reuse pooled
// decompressors and windows.
func BenchmarkValidateRecords(b *testing.B) {
	type workload struct {
		c    Compression
		size int // value bytes per record
	}
	for _, w := range []workload{{CompressionNone, 100}, {CompressionNone, 1024}, {CompressionGzip, 1024},
		{CompressionSnappy, 1024}, {CompressionLZ4, 1024}, {CompressionZstd, 1024}} {
		c := w.c
		// One value of random letters for every record, as samsa perf
		// and the bench send.
		v := make([]byte, w.size)
		r := rand.New(rand.NewPCG(1, 2))
		for j := range v {
			v[j] = byte('A' + r.IntN(26))
		}
		recs := make([]Record, 160<<10/w.size)
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
		b.Run(fmt.Sprintf("%s/%dB", c, w.size), func(b *testing.B) {
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
