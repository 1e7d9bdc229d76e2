package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"
)

func testRecords(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{
			Timestamp: 1_700_000_000_000 + int64(i*7%5),
			Key:       []byte(fmt.Sprintf("key-%d", i)),
			Value:     bytes.Repeat([]byte{byte(i)}, 10+i),
			Headers:   []RecordHeader{{Key: "h", Value: []byte("v")}, {Key: "null"}},
		}
	}
	recs[0].Key = nil // null key
	return recs
}

func mustBuild(t testing.TB, o BuildOptions, recs []Record) []byte {
	t.Helper()
	b, err := Build(o, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildDecodeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    BuildOptions
	}{
		{"none", BuildOptions{}},
		{"gzip", BuildOptions{Compression: CompressionGzip}},
		{"snappy", BuildOptions{Compression: CompressionSnappy}},
		{"snappy-xerial", BuildOptions{Compression: CompressionSnappy, SnappyXerial: true}},
		{"lz4", BuildOptions{Compression: CompressionLZ4}},
		{"zstd", BuildOptions{Compression: CompressionZstd}},
		{"idempotent", BuildOptions{Idempotent: true, ProducerID: 7, ProducerEpoch: 3, BaseSequence: 42}},
		{"transactional", BuildOptions{Idempotent: true, ProducerID: 7, Transactional: true, BaseOffset: 100}},
		{"log-append-time", BuildOptions{LogAppendTime: true, LogAppendTimestamp: 99}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs := testRecords(50)
			b := mustBuild(t, tc.o, recs)
			bt, err := DecodeBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			if bt.Compression() != tc.o.Compression || bt.RecordCount != 50 || bt.LastOffsetDelta != 49 {
				t.Fatalf("header %+v", bt.Header)
			}
			if bt.Transactional() != tc.o.Transactional || bt.LogAppendTime() != tc.o.LogAppendTime {
				t.Fatalf("attributes %x", bt.Attributes)
			}
			if tc.o.Idempotent != bt.Idempotent() || (tc.o.Idempotent && (bt.ProducerID != 7 || bt.BaseSequence != tc.o.BaseSequence)) {
				t.Fatalf("producer fields %+v", bt.Header)
			}
			if len(bt.Records) != len(recs) {
				t.Fatalf("%d records", len(bt.Records))
			}
			for i, r := range bt.Records {
				want := recs[i]
				ts := want.Timestamp
				if tc.o.LogAppendTime {
					ts = 99
				}
				if r.Offset != tc.o.BaseOffset+int64(i) || r.Timestamp != ts || !bytes.Equal(r.Key, want.Key) ||
					(r.Key == nil) != (want.Key == nil) || !bytes.Equal(r.Value, want.Value) || len(r.Headers) != 2 ||
					r.Headers[1].Value != nil || string(r.Headers[0].Value) != "v" {
					t.Fatalf("record %d = %+v, want %+v", i, r, want)
				}
			}
		})
	}
}

func TestParseHeaderMagic(t *testing.T) {
	b := mustBuild(t, BuildOptions{}, testRecords(1))
	for _, tc := range []struct {
		magic byte
		want  error
	}{{0, ErrUnsupportedMagic}, {1, ErrUnsupportedMagic}, {3, ErrCorrupt}, {2, nil}} {
		c := bytes.Clone(b)
		c[magicOffset] = tc.magic
		_, err := ParseHeader(c)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("magic %d: err %v, want %v", tc.magic, err, tc.want)
		}
	}
	// A legacy v0 message shorter than a v2 header is still recognised.
	legacy := make([]byte, 26)
	binary.BigEndian.PutUint32(legacy[8:], 14)
	if _, err := ParseHeader(legacy); !errors.Is(err, ErrUnsupportedMagic) {
		t.Fatalf("legacy: %v", err)
	}
}

func TestValidateRejects(t *testing.T) {
	good := mustBuild(t, BuildOptions{}, testRecords(3))
	for _, tc := range []struct {
		name   string
		mutate func([]byte) []byte
		want   error
	}{
		{"crc", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrCorrupt},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, ErrTruncated},
		{"short header", func(b []byte) []byte { return b[:40] }, ErrTruncated},
		{"trailing", func(b []byte) []byte { return append(b, 0) }, ErrCorrupt},
		{"small length", func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 10); return b }, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Validate(tc.mutate(bytes.Clone(good))); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := Validate(good); err != nil {
		t.Fatal(err)
	}
}

func TestSplitAndRewrite(t *testing.T) {
	a := mustBuild(t, BuildOptions{}, testRecords(3))
	b := mustBuild(t, BuildOptions{Compression: CompressionGzip}, testRecords(4))
	payload := append(bytes.Clone(a), b...)
	next := int64(1000)
	var n int
	err := Split(payload, func(batch []byte, h Header) error {
		SetBaseOffset(batch, next)
		SetPartitionLeaderEpoch(batch, 9)
		next += int64(h.LastOffsetDelta) + 1
		n++
		return nil
	})
	if err != nil || n != 2 || next != 1007 {
		t.Fatalf("split: %v n=%d next=%d", err, n, next)
	}
	// The rewrite is outside the CRC: both batches still validate.
	h, err := Validate(payload[:len(a)])
	if err != nil || h.BaseOffset != 1000 || h.PartitionLeaderEpoch != 9 {
		t.Fatalf("%v %+v", err, h)
	}
	h, err = Validate(payload[len(a):])
	if err != nil || h.BaseOffset != 1003 {
		t.Fatalf("%v %+v", err, h)
	}
	if err := Split(payload[:len(payload)-3], func([]byte, Header) error { return nil }); !errors.Is(err, ErrTruncated) {
		t.Fatalf("torn payload: %v", err)
	}
}

func TestSetLogAppendTime(t *testing.T) {
	b := mustBuild(t, BuildOptions{Compression: CompressionLZ4}, testRecords(5))
	SetLogAppendTime(b, 12345)
	bt, err := DecodeBatch(b)
	if err != nil || !bt.LogAppendTime() || bt.MaxTimestamp != 12345 || bt.Records[3].Timestamp != 12345 {
		t.Fatalf("%v %+v", err, bt.Header)
	}
}

func TestHeaderLastSequence(t *testing.T) {
	for _, tc := range []struct {
		base, delta, want int32
	}{{0, 4, 4}, {-1, 4, -1}, {math.MaxInt32, 0, math.MaxInt32}, {math.MaxInt32, 1, 0}, {math.MaxInt32 - 1, 5, 3}} {
		h := Header{BaseSequence: tc.base, LastOffsetDelta: tc.delta}
		if got := h.LastSequence(); got != tc.want {
			t.Errorf("LastSequence(%d+%d) = %d, want %d", tc.base, tc.delta, got, tc.want)
		}
	}
}

func TestHeaderCheckProduced(t *testing.T) {
	for _, tc := range []struct {
		count, delta int32
		ok           bool
	}{{1, 0, true}, {5, 4, true}, {0, 0, false}, {3, 5, false}, {-1, 0, false}} {
		h := Header{RecordCount: tc.count, LastOffsetDelta: tc.delta}
		if err := h.CheckProduced(); (err == nil) != tc.ok {
			t.Errorf("count %d delta %d: %v", tc.count, tc.delta, err)
		}
	}
}

func TestControlType(t *testing.T) {
	key := []byte{0, 0, 0, 1}
	b := mustBuild(t, BuildOptions{Control: true, Transactional: true, Idempotent: true, ProducerID: 1}, []Record{{Key: key, Value: []byte{0, 0, 0, 0, 0, 0}}})
	bt, err := DecodeBatch(b)
	if err != nil || !bt.Control() || !bt.Transactional() {
		t.Fatalf("%v %+v", err, bt.Header)
	}
	if typ, err := ControlType(&bt.Records[0]); err != nil || typ != ControlCommit {
		t.Fatalf("%d %v", typ, err)
	}
}

func TestDecodeBatchCorruptCompressed(t *testing.T) {
	for _, c := range []Compression{CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd, 6} {
		b := mustBuild(t, BuildOptions{}, testRecords(2))
		// Flip the codec without changing the bytes, then fix the CRC.
		binary.BigEndian.PutUint16(b[attributesOffset:], uint16(c))
		binary.BigEndian.PutUint32(b[crcOffset:], crcOf(b))
		if _, err := DecodeBatch(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", c, err)
		}
	}
}

func crcOf(b []byte) uint32 {
	return crc32c(b[attributesOffset:])
}

func TestEndTxnMarkerRoundTrip(t *testing.T) {
	for _, m := range []EndTxnMarker{{Commit: true, CoordinatorEpoch: 7}, {Commit: false, CoordinatorEpoch: -1}} {
		b := BuildEndTxnMarker(42, 3, 9, 2, 1234, m)
		bt, err := DecodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bt.Control() || !bt.Transactional() || bt.ProducerID != 9 || bt.ProducerEpoch != 2 ||
			bt.BaseSequence != -1 || bt.BaseOffset != 42 || bt.PartitionLeaderEpoch != 3 || bt.MaxTimestamp != 1234 || len(bt.Records) != 1 {
			t.Fatalf("header %+v, %d records", bt.Header, len(bt.Records))
		}
		got, err := ParseEndTxnMarkerBatch(b)
		if err != nil || got != m {
			t.Fatalf("got %+v %v, want %+v", got, err, m)
		}
	}
	bad := []Record{
		{Key: []byte{0, 0, 0, 5}, Value: []byte{0, 0, 0, 0, 0, 0}}, // unknown type
		{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0}},          // short value
		{Key: []byte{0, 0}, Value: []byte{0, 0, 0, 0, 0, 0}},       // short key
	}
	for i := range bad {
		if _, err := ParseEndTxnMarker(&bad[i]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("bad %d: %v", i, err)
		}
	}
}
