package record

import "testing"

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
