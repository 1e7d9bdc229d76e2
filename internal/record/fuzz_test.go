package record

import (
	"testing"
)

func seedBatches(f *testing.F) {
	for _, c := range []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		b, err := Build(BuildOptions{Compression: c}, testRecords(3))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	b, _ := Build(BuildOptions{Compression: CompressionSnappy, SnappyXerial: true}, testRecords(2))
	f.Add(b)
	f.Add([]byte{})
	f.Add(make([]byte, 61))
}

func FuzzParseHeader(f *testing.F) {
	seedBatches(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err == nil && (h.Size() < HeaderSize || len(b) < HeaderSize) {
			t.Fatalf("accepted header of size %d from %d bytes", h.Size(), len(b))
		}
	})
}

func FuzzSplit(f *testing.F) {
	seedBatches(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		_ = Split(b, func(batch []byte, h Header) error {
			if len(batch) != h.Size() {
				t.Fatalf("batch of %d bytes, header says %d", len(batch), h.Size())
			}
			total += len(batch)
			return nil
		})
		if total > len(b) {
			t.Fatal("split past the input")
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	defer LimitDecompression(1 << 20)()
	seedBatches(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		// Fix the CRC so the fuzzer reaches decompression and decoding.
		if len(b) >= HeaderSize {
			b[magicOffset] = Magic
			putCRC(b)
		}
		bt, err := DecodeBatch(b)
		if err == nil && len(bt.Records) != int(bt.RecordCount) {
			t.Fatalf("%d records, header says %d", len(bt.Records), bt.RecordCount)
		}
	})
}

func putCRC(b []byte) {
	c := crc32c(b[attributesOffset:])
	b[crcOffset], b[crcOffset+1], b[crcOffset+2], b[crcOffset+3] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
}

// FuzzParseEndTxnMarker decodes arbitrary control record keys and values
// and whole batches as end-transaction markers: no panic, and a marker
// that decodes re-encodes to the same marker.
func FuzzParseEndTxnMarker(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1}, []byte{0, 0, 0, 0, 0, 5})
	f.Add([]byte{0, 0, 0, 0}, []byte{0, 1, 0, 0, 0, 0, 9})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		r := Record{Key: key, Value: value}
		m, err := ParseEndTxnMarker(&r)
		if err == nil {
			again, err := ParseEndTxnMarkerBatch(BuildEndTxnMarker(0, 0, 1, 0, 0, m))
			if err != nil || again != m {
				t.Fatalf("round trip: %+v -> %+v %v", m, again, err)
			}
		}
		_, _ = ParseEndTxnMarkerBatch(append(key, value...))
	})
}
