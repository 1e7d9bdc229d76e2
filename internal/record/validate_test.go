package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

const testNow = 1_700_000_000_000

// appendRawRecord appends one encoded record (length prefix included).
func appendRawRecord(b []byte, offsetDelta int64, key, value []byte) []byte {
	rec := []byte{0}
	rec = binary.AppendVarint(rec, 0)
	rec = binary.AppendVarint(rec, offsetDelta)
	rec = appendBytes(rec, key)
	rec = appendBytes(rec, value)
	rec = binary.AppendVarint(rec, 0)
	b = binary.AppendVarint(b, int64(len(rec)))
	return append(b, rec...)
}

// rawBatch wraps an already encoded (and possibly compressed) records
// section in a v2 header declaring count records, with a valid CRC.
func rawBatch(attrs uint16, count int32, body []byte) []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(body))
	binary.BigEndian.PutUint32(b[batchLengthOffset:], uint32(HeaderSize-LengthFieldEnd+len(body)))
	b[magicOffset] = Magic
	binary.BigEndian.PutUint16(b[attributesOffset:], attrs)
	binary.BigEndian.PutUint32(b[lastOffsetDeltaOffset:], uint32(count-1))
	binary.BigEndian.PutUint64(b[baseTimestampOffset:], testNow)
	binary.BigEndian.PutUint64(b[maxTimestampOffset:], testNow)
	binary.BigEndian.PutUint64(b[producerIDOffset:], ^uint64(0))
	binary.BigEndian.PutUint16(b[producerEpochOffset:], 0xffff)
	binary.BigEndian.PutUint32(b[baseSequenceOffset:], 0xffffffff)
	binary.BigEndian.PutUint32(b[recordCountOffset:], uint32(count))
	b = append(b, body...)
	putCRC(b)
	return b
}

func validate(t testing.TB, b []byte, o ValidateOptions) (int64, error) {
	t.Helper()
	h, err := Validate(b)
	if err != nil {
		t.Fatalf("header: %v", err)
	}
	return ValidateRecords(b, &h, &o)
}

func mustCompress(t testing.TB, c Compression, b []byte) []byte {
	t.Helper()
	out, err := compress(c, false, b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestValidateRecordsAcceptsEveryCodec(t *testing.T) {
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs := testRecords(300)
			recs[0].Key = []byte("k")
			b := mustBuild(t, tc.o, recs)
			maxTs, err := validate(t, b, ValidateOptions{NowMs: testNow, CreateTime: true,
				TimestampBeforeMaxMs: 1000, TimestampAfterMaxMs: 1000, RequireKeys: true})
			if err != nil {
				t.Fatal(err)
			}
			if want := int64(testNow + 4); maxTs != want {
				t.Fatalf("max timestamp %d, want %d", maxTs, want)
			}
		})
	}
}

// TestValidateRecordsRejectsUndecodable covers the batches issue 9 found
// acknowledged and stored: each has a valid CRC.
func TestValidateRecordsRejectsUndecodable(t *testing.T) {
	one := appendRawRecord(nil, 0, []byte("k"), []byte("v"))
	three := appendRawRecord(appendRawRecord(one, 1, nil, []byte("v")), 2, nil, []byte("v"))
	garbage := append([]byte{0x0c, 0}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
	longKey := binary.AppendVarint(nil, 7)
	longKey = append(longKey, 0, 0, 0)
	longKey = binary.AppendVarint(longKey, 100) // key longer than the record
	longKey = append(longKey, 0, 0)
	badHeader := []byte{0}
	badHeader = binary.AppendVarint(badHeader, 0)
	badHeader = binary.AppendVarint(badHeader, 0)
	badHeader = binary.AppendVarint(badHeader, -1)
	badHeader = binary.AppendVarint(badHeader, -1)
	badHeader = binary.AppendVarint(badHeader, 1)
	badHeader = binary.AppendVarint(badHeader, -3) // negative header key length
	badHeader = append(binary.AppendVarint(nil, int64(len(badHeader))), badHeader...)

	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"codec 5", rawBatch(5, 1, one), ErrCorrupt},
		{"codec 6", rawBatch(6, 1, one), ErrCorrupt},
		{"codec 7", rawBatch(7, 1, one), ErrCorrupt},
		{"gzip flag on plain records", rawBatch(uint16(CompressionGzip), 1, one), ErrCorrupt},
		{"zstd flag on plain records", rawBatch(uint16(CompressionZstd), 1, one), ErrCorrupt},
		{"lz4 flag on plain records", rawBatch(uint16(CompressionLZ4), 1, one), ErrCorrupt},
		{"snappy flag on plain records", rawBatch(uint16(CompressionSnappy), 1, one), ErrCorrupt},
		{"truncated gzip", rawBatch(uint16(CompressionGzip), 1, mustCompress(t, CompressionGzip, one)[:20]), ErrCorrupt},
		{"count 5 with 1 record", rawBatch(0, 5, one), ErrInvalidRecord},
		{"count 1 with 3 records", rawBatch(0, 1, three), ErrInvalidRecord},
		{"gzip count 5 with 1 record", rawBatch(uint16(CompressionGzip), 5, mustCompress(t, CompressionGzip, one)), ErrInvalidRecord},
		{"zstd count 1 with 3 records", rawBatch(uint16(CompressionZstd), 1, mustCompress(t, CompressionZstd, three)), ErrInvalidRecord},
		{"lz4 count 1 with 3 records", rawBatch(uint16(CompressionLZ4), 1, mustCompress(t, CompressionLZ4, three)), ErrInvalidRecord},
		{"snappy count 5 with 3 records", rawBatch(uint16(CompressionSnappy), 5, mustCompress(t, CompressionSnappy, three)), ErrInvalidRecord},
		{"garbage varint", rawBatch(0, 1, garbage), ErrInvalidRecord},
		{"key past the record", rawBatch(0, 1, longKey), ErrInvalidRecord},
		{"negative header key length", rawBatch(0, 1, badHeader), ErrInvalidRecord},
		{"offset delta not 0..n-1", rawBatch(0, 1, appendRawRecord(nil, 3, nil, nil)), ErrInvalidRecord},
		{"repeated offset delta", rawBatch(0, 2, appendRawRecord(one, 0, nil, nil)), ErrInvalidRecord},
		{"trailing byte", rawBatch(0, 1, append(one[:len(one):len(one)], 0)), ErrInvalidRecord},
		{"zero length record", rawBatch(0, 1, []byte{0}), ErrInvalidRecord},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := validate(t, tc.b, ValidateOptions{NowMs: testNow})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if tc.want == ErrCorrupt && errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("err %v is both corrupt and invalid", err)
			}
		})
	}
}

func TestValidateRecordsKeysAndTimestamps(t *testing.T) {
	for _, c := range []Compression{CompressionNone, CompressionZstd} {
		keyless := mustBuild(t, BuildOptions{Compression: c}, testRecords(3)) // record 0 has no key
		if _, err := validate(t, keyless, ValidateOptions{NowMs: testNow, RequireKeys: true}); !errors.Is(err, ErrNoKey) || !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("%s: keyless record on a compacted topic: %v", c, err)
		}
		if _, err := validate(t, keyless, ValidateOptions{NowMs: testNow}); err != nil {
			t.Fatalf("%s: keyless record elsewhere: %v", c, err)
		}
		// A keyless record inside a batch that does not decompress is
		// still refused (as corrupt), never stored.
		broken := rawBatch(uint16(CompressionGzip), 1, appendRawRecord(nil, 0, nil, []byte("v")))
		if _, err := validate(t, broken, ValidateOptions{NowMs: testNow, RequireKeys: true}); err == nil {
			t.Fatal("undecodable keyless batch accepted")
		}

		recs := []Record{{Timestamp: testNow - 5000, Key: []byte("a")}, {Timestamp: testNow, Key: []byte("b")}}
		old := mustBuild(t, BuildOptions{Compression: c}, recs)
		o := ValidateOptions{NowMs: testNow, CreateTime: true, TimestampBeforeMaxMs: 1000, TimestampAfterMaxMs: 1000}
		if _, err := validate(t, old, o); !errors.Is(err, ErrInvalidTimestamp) {
			t.Fatalf("%s: too old: %v", c, err)
		}
		o.TimestampBeforeMaxMs = 5000
		if _, err := validate(t, old, o); err != nil {
			t.Fatalf("%s: at the bound: %v", c, err)
		}
		recs[0].Timestamp = testNow + 1001
		future := mustBuild(t, BuildOptions{Compression: c}, recs)
		if _, err := validate(t, future, o); !errors.Is(err, ErrInvalidTimestamp) {
			t.Fatalf("%s: in the future: %v", c, err)
		}
		o.CreateTime = false // LogAppendTime topics do not check
		if _, err := validate(t, future, o); err != nil {
			t.Fatalf("%s: LogAppendTime topic: %v", c, err)
		}
		lat := mustBuild(t, BuildOptions{Compression: c, LogAppendTime: true, LogAppendTimestamp: testNow}, recs)
		o.CreateTime = true
		if _, err := validate(t, lat, o); !errors.Is(err, ErrInvalidTimestamp) {
			t.Fatalf("%s: producer LogAppendTime on a CreateTime topic: %v", c, err)
		}
		// -1 (no timestamp) is never out of range.
		recs[0].Timestamp, recs[1].Timestamp = -1, -1
		if _, err := validate(t, mustBuild(t, BuildOptions{Compression: c}, recs), o); err != nil {
			t.Fatalf("%s: no timestamp: %v", c, err)
		}
	}
}

// bombBatch builds a batch of one record whose value is size zero bytes,
// compressed with c, without holding the value in memory.
func bombBatch(t testing.TB, c Compression, size int64) []byte {
	t.Helper()
	rec := []byte{0}
	rec = binary.AppendVarint(rec, 0)
	rec = binary.AppendVarint(rec, 0)
	rec = binary.AppendVarint(rec, -1)
	rec = binary.AppendVarint(rec, size)
	head := binary.AppendVarint(nil, int64(len(rec))+size+1)
	head = append(head, rec...)
	var buf bytes.Buffer
	var w io.WriteCloser
	switch c {
	case CompressionGzip:
		w, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	case CompressionZstd:
		var err error
		if w, err = zstd.NewWriter(&buf, zstd.WithWindowSize(1<<20), zstd.WithEncoderConcurrency(1)); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("no bomb for %s", c)
	}
	if _, err := w.Write(head); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(w, zeros{}, size); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte{0}); err != nil { // header count
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return rawBatch(uint16(c), 1, buf.Bytes())
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestValidateRecordsBombs: a batch over the decompressed limit is
// refused, and validating a batch near it streams through a small window
// instead of inflating it whole.
func TestValidateRecordsBombs(t *testing.T) {
	const size = 24 << 20
	for _, c := range []Compression{CompressionGzip, CompressionZstd} {
		b := bombBatch(t, c, size)
		if _, err := validate(t, b, ValidateOptions{NowMs: testNow, MaxDecompressedBytes: 8 << 20}); !errors.Is(err, ErrDecompressedTooLarge) || !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("%s: %d KiB inflating to %d MiB over an 8 MiB limit: %v", c, len(b)>>10, size>>20, err)
		}
		// Warm the pool, then measure.
		if _, err := validate(t, b, ValidateOptions{NowMs: testNow, MaxDecompressedBytes: 32 << 20}); err != nil {
			t.Fatalf("%s: under the limit: %v", c, err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, err := validate(t, b, ValidateOptions{NowMs: testNow, MaxDecompressedBytes: 32 << 20}); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
			t.Fatalf("%s: validating a %d MiB batch allocated %d KiB", c, size>>20, alloc>>10)
		}
	}
}

func TestValidateRecordsUncompressedAllocatesNothing(t *testing.T) {
	b := mustBuild(t, BuildOptions{}, testRecords(100))
	h, err := Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	o := ValidateOptions{NowMs: testNow, CreateTime: true, TimestampBeforeMaxMs: 1 << 40, TimestampAfterMaxMs: 1 << 40}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := ValidateRecords(b, &h, &o); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per uncompressed batch", n)
	}
}

// FuzzValidateRecords checks the validator against the decoder: no
// panic, and a batch it accepts decodes to exactly its records.
func FuzzValidateRecords(f *testing.F) {
	defer LimitDecompression(1 << 20)()
	seedBatches(f)
	f.Add(rawBatch(0, 5, appendRawRecord(nil, 0, nil, []byte("v"))))
	f.Add(rawBatch(uint16(CompressionGzip), 1, appendRawRecord(nil, 0, nil, nil)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= HeaderSize {
			b[magicOffset] = Magic
			binary.BigEndian.PutUint32(b[batchLengthOffset:], uint32(len(b)-LengthFieldEnd))
			putCRC(b)
		}
		h, err := Validate(b)
		if err != nil {
			return
		}
		o := ValidateOptions{NowMs: testNow, RequireKeys: len(b)%2 == 0, MaxDecompressedBytes: 1 << 20,
			CreateTime: len(b)%3 == 0, TimestampBeforeMaxMs: 1000, TimestampAfterMaxMs: 1000}
		maxTs, err := ValidateRecords(b, &h, &o)
		if h.Compression() == CompressionNone && !(o.CreateTime && h.LogAppendTime()) {
			// The flat walker of uncompressed batches answers exactly as
			// the stream walker of decompressed ones.
			s := recStream{buf: b[HeaderSize:], end: len(b) - HeaderSize}
			streamTs, streamErr := walkRecords(&s, &h, &o)
			if streamTs != maxTs || fmt.Sprint(streamErr) != fmt.Sprint(err) {
				t.Fatalf("flat walk: %d, %v; stream walk: %d, %v", maxTs, err, streamTs, streamErr)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrInvalidRecord) && !errors.Is(err, ErrInvalidTimestamp) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		// As the produce path stores it: without an lz4 content checksum,
		// which the validator does not check (the reference reader does).
		bt, err := DecodeBatch(StripContentChecksum(bytes.Clone(b)))
		if err != nil {
			t.Fatalf("validated batch does not decode: %v", err)
		}
		if len(bt.Records) != int(h.RecordCount) {
			t.Fatalf("%d records, header says %d", len(bt.Records), h.RecordCount)
		}
		want := int64(-1)
		for i, r := range bt.Records {
			if r.OffsetDelta != int32(i) || (o.RequireKeys && r.Key == nil) {
				t.Fatalf("record %d: %+v", i, r)
			}
			want = max(want, r.Timestamp)
		}
		if h.LogAppendTime() {
			want = h.MaxTimestamp
		}
		if maxTs != want {
			t.Fatalf("max timestamp %d, decoder says %d", maxTs, want)
		}
	})
}

// TestValidateRecordsHighlyCompressible: the densest legitimate output of
// every codec (zeros) is accepted; the snappy expansion bound does not
// refuse real snappy.
func TestValidateRecordsHighlyCompressible(t *testing.T) {
	recs := []Record{{Timestamp: testNow, Key: []byte("k"), Value: make([]byte, 4<<20)}}
	for _, o := range []BuildOptions{
		{Compression: CompressionGzip}, {Compression: CompressionSnappy}, {Compression: CompressionSnappy, SnappyXerial: true},
		{Compression: CompressionLZ4}, {Compression: CompressionZstd},
	} {
		b := mustBuild(t, o, recs)
		if _, err := validate(t, b, ValidateOptions{NowMs: testNow}); err != nil {
			t.Fatalf("%s (xerial %v, %d bytes): %v", o.Compression, o.SnappyXerial, len(b), err)
		}
	}
}

// TestValidateRecordsAcrossBlocks walks records whose fields fall on
// every kind of block boundary: lz4 frames of 64 KiB blocks (compressed
// and stored) and xerial snappy chunks of 32 KiB are read where they lie,
// and a varint or a skip that spans two blocks must read the same as in
// one buffer.
func TestValidateRecordsAcrossBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	var body []byte
	const n = 3000
	for i := range n {
		value := make([]byte, r.IntN(300))
		if i%2 == 1 { // random (stored lz4 blocks) or repeated
			for j := range value {
				value[j] = byte(r.Uint32())
			}
		}
		body = appendRawRecord(body, int64(i), []byte(fmt.Sprint(i)), value)
	}
	lz := lz4Frame(t, body, lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(true))
	xs, err := compress(CompressionSnappy, true, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		attrs uint16
		data  []byte
	}{
		{"lz4", uint16(CompressionLZ4), lz},
		{"snappy-xerial", uint16(CompressionSnappy), xs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The stream walk (which frames larger than flatMax take)
			// answers as the validator does, error text included.
			for _, count := range []int32{n, n - 1, n + 1} {
				b := rawBatch(tc.attrs, count, tc.data)
				h, o := mustHeader(t, b), ValidateOptions{NowMs: testNow}
				_, err := ValidateRecords(b, &h, &o)
				in := inflaters.Get().(*inflater)
				s, serr := in.open(h.Compression(), b[HeaderSize:], 1<<30)
				if serr != nil {
					t.Fatal(serr)
				}
				_, streamErr := walkRecords(s, &h, &o)
				in.release()
				if fmt.Sprint(err) != fmt.Sprint(streamErr) {
					t.Fatalf("count %d: validator %v, stream %v", count, err, streamErr)
				}
			}
			if _, err := validate(t, rawBatch(tc.attrs, n, tc.data), ValidateOptions{NowMs: testNow, RequireKeys: true}); err != nil {
				t.Fatalf("%d records: %v", n, err)
			}
			// One record fewer declared: the last is then trailing bytes.
			if _, err := validate(t, rawBatch(tc.attrs, n-1, tc.data), ValidateOptions{NowMs: testNow}); !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("count %d of %d records: %v, want ErrInvalidRecord", n-1, n, err)
			}
			if _, err := validate(t, rawBatch(tc.attrs, n+1, tc.data), ValidateOptions{NowMs: testNow}); !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("count %d of %d records: %v, want ErrInvalidRecord", n+1, n, err)
			}
		})
	}
}

// mustHeader is Validate's header of b.
func mustHeader(t testing.TB, b []byte) Header {
	t.Helper()
	h, err := Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestWorkEstimate(t *testing.T) {
	plain := rawBatch(0, 1, appendRawRecord(nil, 0, nil, []byte("v")))
	lz := rawBatch(uint16(CompressionLZ4), 1, mustCompress(t, CompressionLZ4, appendRawRecord(nil, 0, nil, []byte("v"))))
	for _, tc := range []struct {
		name string
		b    []byte
		want int
	}{
		{"uncompressed", plain, len(plain)},
		{"compressed", lz, len(lz) * InflatedWeight},
		{"short", plain[:10], 10},
		{"legacy magic", func() []byte { b := bytes.Clone(lz); b[magicOffset] = 1; return b }(), len(lz)},
	} {
		if got := WorkEstimate(tc.b); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestWalkFlatMatchesStream mutates every byte of an uncompressed records
// section (and cuts it at every length) and holds the flat walker of
// uncompressed batches to the stream walker's answer, error text included.
func TestWalkFlatMatchesStream(t *testing.T) {
	recs := testRecords(6)
	b := mustBuild(t, BuildOptions{}, recs)
	h, err := Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	body := b[HeaderSize:]
	check := func(what string, body []byte, h *Header, o *ValidateOptions) {
		t.Helper()
		flatTs, flatErr := walkFlat(body, h, o)
		s := recStream{buf: body, end: len(body)}
		streamTs, streamErr := walkRecords(&s, h, o)
		if flatTs != streamTs || fmt.Sprint(flatErr) != fmt.Sprint(streamErr) {
			t.Fatalf("%s: flat %d, %v; stream %d, %v", what, flatTs, flatErr, streamTs, streamErr)
		}
	}
	opts := []ValidateOptions{
		{NowMs: testNow},
		{NowMs: testNow, RequireKeys: true, CreateTime: true, TimestampBeforeMaxMs: 2, TimestampAfterMaxMs: 2},
	}
	failures := 0
	for oi := range opts {
		o := &opts[oi]
		check("intact", body, &h, o)
		for cut := range len(body) {
			check(fmt.Sprintf("cut at %d", cut), body[:cut], &h, o)
		}
		for i := range body {
			for _, v := range []byte{0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, body[i] + 1, body[i] - 1} {
				m := bytes.Clone(body)
				m[i] = v
				check(fmt.Sprintf("byte %d = %#x", i, v), m, &h, o)
				if _, err := walkFlat(m, &h, o); err != nil {
					failures++
				}
			}
		}
		for _, count := range []int32{0, 1, 5, 7, 100} {
			hc := h
			hc.RecordCount = count
			check(fmt.Sprintf("count %d", count), body, &hc, o)
		}
	}
	if failures == 0 {
		t.Fatal("no mutation was refused: the test does not reach the error paths")
	}
	t.Logf("%d of the mutations refused", failures)
}

// TestFlatVarlongMatchesVarint: the one- and two-byte fast paths decode
// as encoding/binary does, whole or cut short.
func TestFlatVarlongMatchesVarint(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	vals := []int64{0, -1, 1, 63, -64, 64, -65, 8191, -8192, 8192, math.MaxInt64, math.MinInt64}
	for range 10000 {
		vals = append(vals, r.Int64()>>r.IntN(64))
	}
	for _, v := range vals {
		enc := binary.AppendVarint(nil, v)
		for _, b := range [][]byte{enc, append(bytes.Clone(enc), 0x55), enc[:len(enc)-1]} {
			pos := 0
			got, ok := flatVarlong(b, &pos)
			want, n := binary.Varint(b)
			if ok != (n > 0) || (ok && (got != want || pos != n)) {
				t.Fatalf("%x: flat %d, %v, pos %d; binary %d, %d", b, got, ok, pos, want, n)
			}
		}
	}
	// Overlong and unterminated encodings.
	for _, b := range [][]byte{{0x80}, {0xff, 0xff}, bytes.Repeat([]byte{0xff}, 11), {0x80, 0x00}} {
		pos := 0
		got, ok := flatVarlong(b, &pos)
		want, n := binary.Varint(b)
		if ok != (n > 0) || (ok && (got != want || pos != n)) {
			t.Fatalf("%x: flat %d, %v, pos %d; binary %d, %d", b, got, ok, pos, want, n)
		}
	}
}
