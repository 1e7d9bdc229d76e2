package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// lz4Frame compresses data into one frame with the reference library.
func lz4Frame(t testing.TB, data []byte, opts ...lz4.Option) []byte {
	t.Helper()
	var b bytes.Buffer
	w := lz4.NewWriter(&b)
	if err := w.Apply(opts...); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// decodeLZ4 runs data through the validator's inflater and returns what it
// decodes to.
func decodeLZ4(data []byte, limit int64) ([]byte, error) {
	in := inflaters.Get().(*inflater)
	defer in.release()
	s, err := in.open(CompressionLZ4, data, limit)
	if err != nil {
		return nil, err
	}
	var out []byte
	for s.fill(1) {
		out = append(out, s.buf[s.pos:s.end]...)
		s.pos = s.end
	}
	if s.srcErr != nil && s.srcErr != io.EOF {
		return out, s.srcErr
	}
	return out, nil
}

// mixedData is half compressible text, half random bytes (so frames hold
// both compressed and stored blocks).
func mixedData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		if (i/4096)%2 == 0 {
			b[i] = "samsa streams records "[i%22]
		} else {
			b[i] = byte(r.Uint32())
		}
	}
	return b
}

func TestLZ4FrameDecodesReferenceFrames(t *testing.T) {
	sizes := []int{0, 1, 15, 16, 100, 64 << 10, 64<<10 + 1, 300 << 10, 5 << 20}
	blocks := []lz4.BlockSize{lz4.Block64Kb, lz4.Block256Kb, lz4.Block1Mb, lz4.Block4Mb}
	for _, n := range sizes {
		data := mixedData(n, uint64(n))
		for _, bs := range blocks {
			for _, sums := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
				frame := lz4Frame(t, data, lz4.BlockSizeOption(bs), lz4.BlockChecksumOption(sums[0]), lz4.ChecksumOption(sums[1]), lz4.SizeOption(uint64(n)))
				got, err := decodeLZ4(frame, 1<<30)
				if err != nil {
					t.Fatalf("size %d block %v sums %v: %v", n, bs, sums, err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("size %d block %v sums %v: decoded %d bytes that differ from the %d written", n, bs, sums, len(got), len(data))
				}
			}
		}
	}
}

// setLinked clears the frame's block-independence flag and fixes the
// descriptor checksum: a frame of independent blocks is also a valid
// frame of linked blocks.
func setLinked(frame []byte) []byte {
	f := bytes.Clone(frame)
	f[4] &^= lz4FlagIndependent
	desc := 2
	if f[4]&lz4FlagContentSize != 0 {
		desc += 8
	}
	f[4+desc] = byte(xxh32(f[4:4+desc]) >> 8)
	return f
}

func TestLZ4FrameLinkedBlocksUseReferenceReader(t *testing.T) {
	data := mixedData(300<<10, 7)
	frame := setLinked(lz4Frame(t, data, lz4.BlockSizeOption(lz4.Block64Kb)))
	var lr lz4Reader
	if err := lr.reset(frame, 1<<30); !errors.Is(err, errLZ4Linked) {
		t.Fatalf("reset of a linked frame: %v, want errLZ4Linked", err)
	}
	got, err := decodeLZ4(frame, 1<<30)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("linked frame: err %v, equal %v", err, bytes.Equal(got, data))
	}
}

func TestLZ4FrameRejects(t *testing.T) {
	data := mixedData(200<<10, 3)
	good := lz4Frame(t, data, lz4.BlockSizeOption(lz4.Block64Kb), lz4.BlockChecksumOption(true))
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name  string
		frame []byte
		limit int64
		want  error // nil: any error
	}{
		{"empty", nil, 1 << 30, nil},
		{"bad magic", mod(func(b []byte) []byte { b[0]++; return b }), 1 << 30, nil},
		{"version 0", mod(func(b []byte) []byte { b[4] &^= 0x40; return b }), 1 << 30, nil},
		{"reserved flag", mod(func(b []byte) []byte { b[4] |= lz4FlagReserved; return b }), 1 << 30, nil},
		{"dict id", mod(func(b []byte) []byte { b[4] |= lz4FlagDictID; return b }), 1 << 30, nil},
		{"reserved bd bit", mod(func(b []byte) []byte { b[5] |= 0x80; return b }), 1 << 30, nil},
		{"block size code 3", mod(func(b []byte) []byte { b[5] = 3 << 4; return b }), 1 << 30, nil},
		{"descriptor checksum", mod(func(b []byte) []byte { b[6]++; return b }), 1 << 30, nil},
		{"header truncated", good[:6], 1 << 30, nil},
		{"block truncated", good[:len(good)/2], 1 << 30, nil},
		{"no end mark", good[:len(good)-4], 1 << 30, nil},
		{"trailing bytes", append(bytes.Clone(good), 0, 0, 0, 0), 1 << 30, nil},
		{"block checksum", mod(func(b []byte) []byte { b[7+4+10]++; return b }), 1 << 30, nil},
		{"block over maximum", mod(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[7:], 64<<10+1); return b }), 1 << 30, nil},
		{"over the limit", good, 100 << 10, ErrDecompressedTooLarge},
		{"content size", func() []byte {
			f := lz4Frame(t, data, lz4.SizeOption(uint64(len(data))))
			binary.LittleEndian.PutUint64(f[6:], uint64(len(data)+1))
			f[14] = byte(xxh32(f[4:14]) >> 8)
			return f
		}(), 1 << 30, nil},
		{"content checksum truncated", func() []byte {
			f := lz4Frame(t, data, lz4.ChecksumOption(true))
			return f[:len(f)-2]
		}(), 1 << 30, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeLZ4(c.frame, c.limit)
			if err == nil {
				t.Fatalf("accepted (%d bytes)", len(got))
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
}

// TestXXH32 checks the hash against the reference library's frames: every
// block checksum of a frame written with block checksums must match.
func TestXXH32(t *testing.T) {
	if got := xxh32(nil); got != 0x02CC5D05 {
		t.Fatalf("xxh32(empty) = %#x, want 0x02cc5d05", got)
	}
	for n := range 40 {
		data := mixedData(n*997, uint64(n))
		frame := lz4Frame(t, data, lz4.BlockSizeOption(lz4.Block64Kb), lz4.BlockChecksumOption(true))
		if got, err := decodeLZ4(frame, 1<<30); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d: %v", len(data), err)
		}
	}
}

// TestXXH32Streaming: any split of the input hashes as the whole.
func TestXXH32Streaming(t *testing.T) {
	data := mixedData(1000, 9)
	want := xxh32(data)
	for _, step := range []int{1, 3, 15, 16, 17, 100, 999} {
		var d xxh32Digest
		d.reset()
		for b := data; len(b) > 0; {
			k := min(step, len(b))
			d.write(b[:k])
			b = b[k:]
		}
		if got := d.sum(); got != want {
			t.Fatalf("step %d: %#x, want %#x", step, got, want)
		}
	}
}

func BenchmarkXXH32(b *testing.B) {
	data := mixedData(1<<20, 1)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		xxh32(data)
	}
}

// FuzzLZ4Frame decodes arbitrary bytes as a frame: never a panic, never
// more output than the limit, and whatever decodes must be what the
// reference reader decodes too.
func FuzzLZ4Frame(f *testing.F) {
	f.Add(lz4Frame(f, []byte("samsa samsa samsa samsa samsa")))
	f.Add(lz4Frame(f, mixedData(70<<10, 1), lz4.BlockSizeOption(lz4.Block64Kb), lz4.BlockChecksumOption(true)))
	f.Add(setLinked(lz4Frame(f, mixedData(1000, 2))))
	f.Add(lz4Frame(f, mixedData(90<<10, 3), lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(true)))
	f.Add(lz4Frame(f, mixedData(500, 4), lz4.ChecksumOption(true), lz4.SizeOption(500)))
	f.Fuzz(func(t *testing.T, frame []byte) {
		const limit = 1 << 20
		got, err := decodeLZ4(frame, limit)
		if len(got) > limit+validateWindow {
			t.Fatalf("decoded %d bytes past the %d limit", len(got), limit)
		}
		// Decoded whole, the frame is accepted exactly when the stream
		// accepts it (frames of linked blocks stay on the stream), to the
		// same bytes.
		in := inflaters.Get().(*inflater)
		flat, ok, _ := in.decodeFlat(CompressionLZ4, frame, limit)
		linked := len(frame) > 4 && frame[4]&lz4FlagIndependent == 0
		if ok && (err != nil || !bytes.Equal(flat, got)) || !ok && err == nil && !linked {
			t.Fatalf("whole: %v, %d bytes; stream: %v, %d bytes", ok, len(flat), err, len(got))
		}
		in.release()
		if err != nil {
			return
		}
		want, rerr := io.ReadAll(io.LimitReader(lz4.NewReader(bytes.NewReader(frame)), limit+1))
		if rerr == nil && !bytes.Equal(got, want) {
			t.Fatalf("decoded %d bytes, the reference reader %d different ones", len(got), len(want))
		}
		// What the validator accepts, once its content checksum (never
		// checked) is stripped, the reference reader (which checks it)
		// decodes to the same bytes.
		stripped := StripContentChecksum(rawBatch(uint16(CompressionLZ4), 1, frame))[HeaderSize:]
		want, rerr = io.ReadAll(io.LimitReader(lz4.NewReader(bytes.NewReader(stripped)), limit+1))
		if rerr != nil || !bytes.Equal(got, want) {
			t.Fatalf("stripped frame: reference reader %v, %d bytes against %d", rerr, len(want), len(got))
		}
	})
}

// checkStrip holds StripContentChecksum to its promise on b, a batch of
// 200 records ("0" to "199" as keys) whose content checksum is wrong or
// not: the validator accepts it, the reference reader only when the
// checksum is right; stripped, it is 4 bytes shorter, validates, decodes
// to its records with the reference reader, and a second strip leaves it
// alone.
func checkStrip(t *testing.T, b []byte, wrong bool) {
	t.Helper()
	b = bytes.Clone(b)
	if _, err := validate(t, b, ValidateOptions{NowMs: testNow}); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if _, refErr := DecodeBatch(b); wrong != (refErr != nil) {
		t.Fatalf("reference reader on the original: %v", refErr)
	}
	s := StripContentChecksum(b)
	if len(s) != len(b)-4 {
		t.Fatalf("stripped to %d bytes from %d", len(s), len(b))
	}
	if _, err := validate(t, s, ValidateOptions{NowMs: testNow}); err != nil {
		t.Fatalf("stripped batch: %v", err)
	}
	bt, err := DecodeBatch(s)
	if err != nil {
		t.Fatalf("reference reader on the stripped batch: %v", err)
	}
	if len(bt.Records) != 200 || string(bt.Records[199].Key) != "199" {
		t.Fatalf("stripped batch decodes to %d records", len(bt.Records))
	}
	if again := StripContentChecksum(bytes.Clone(s)); !bytes.Equal(again, s) {
		t.Fatal("a second strip changed the batch")
	}
}

// TestStripLZ4ContentChecksum: a batch whose lz4 content checksum is
// wrong passes the validator (as in Kafka) but fails the reference reader,
// as it fails librdkafka and the Go clients; stripped, it validates and
// decodes to the same records everywhere. Other batches are left alone.
func TestStripLZ4ContentChecksum(t *testing.T) {
	withSum := func(opts ...lz4.Option) []byte {
		body := appendRawRecord(nil, 0, []byte("k"), []byte("v"))
		for i := 1; i < 200; i++ {
			body = appendRawRecord(body, int64(i), []byte(fmt.Sprint(i)), bytes.Repeat([]byte{byte(i)}, 10+i))
		}
		return rawBatch(uint16(CompressionLZ4), 200, lz4Frame(t, body, opts...))
	}
	good := withSum(lz4.ChecksumOption(true))
	bad := bytes.Clone(good)
	bad[len(bad)-1]++
	putCRC(bad)
	for name, b := range map[string][]byte{"right checksum": good, "wrong checksum": bad} {
		t.Run(name, func(t *testing.T) {
			checkStrip(t, b, name == "wrong checksum")
		})
	}
	linked := withSum(lz4.ChecksumOption(true), lz4.BlockSizeOption(lz4.Block64Kb))
	linked = rawBatch(uint16(CompressionLZ4), 200, setLinked(linked[HeaderSize:]))
	for name, b := range map[string][]byte{
		"no checksum":   withSum(lz4.ChecksumOption(false)),
		"linked blocks": linked,
		"uncompressed":  mustBuild(t, BuildOptions{}, testRecords(3)),
		"gzip":          mustBuild(t, BuildOptions{Compression: CompressionGzip}, testRecords(3)),
	} {
		if s := StripContentChecksum(bytes.Clone(b)); !bytes.Equal(s, b) {
			t.Errorf("%s: changed", name)
		}
	}
}
