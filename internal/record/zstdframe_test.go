package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// zstdFrame compresses data into one frame with the reference encoder:
// whole (EncodeAll, which declares the content size) or streamed (which
// does not).
func zstdFrame(t testing.TB, data []byte, streamed bool, opts ...zstd.EOption) []byte {
	t.Helper()
	opts = append([]zstd.EOption{zstd.WithEncoderConcurrency(1)}, opts...)
	if !streamed {
		e, err := zstd.NewWriter(nil, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		return e.EncodeAll(data, nil)
	}
	var b bytes.Buffer
	w, err := zstd.NewWriter(&b, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for len(data) > 0 {
		n := min(len(data), 10_000)
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestZstdSumFrame: the header walk finds exactly the single frames with
// a content checksum among what the reference encoder writes (single
// segment or not, raw, RLE and compressed blocks, one block or many) and
// refuses every prefix of them, anything after them and frames without
// a checksum.
func TestZstdSumFrame(t *testing.T) {
	skippable := []byte{0x50, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'}
	for _, tc := range []struct {
		name     string
		data     []byte
		streamed bool
		sum      bool
	}{
		{"small", []byte("samsa samsa samsa"), false, true},
		{"empty", nil, false, false}, // the encoder writes no checksum for nothing
		{"mixed many blocks", mixedData(600<<10, 1), false, true},
		{"mixed streamed", mixedData(300<<10, 2), true, true},
		{"zeros", make([]byte, 400<<10), false, true},
		{"zeros streamed", make([]byte, 400<<10), true, true},
		{"no checksum", mixedData(200<<10, 3), false, false},
		{"no checksum streamed", mixedData(200<<10, 4), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := zstdFrame(t, tc.data, tc.streamed, zstd.WithEncoderCRC(tc.sum))
			if _, got := zstdSumFrame(f); got != tc.sum {
				t.Fatalf("zstdSumFrame = %v on a frame of %d bytes", got, len(f))
			}
			if !tc.sum {
				return
			}
			for n := range len(f) {
				if _, ok := zstdSumFrame(f[:n]); ok {
					t.Fatalf("the %d-byte prefix of a %d-byte frame passes", n, len(f))
				}
			}
			for name, more := range map[string][]byte{
				"a byte after": append(bytes.Clone(f), 0),
				"two frames":   append(bytes.Clone(f), f...),
				"skippable":    append(bytes.Clone(skippable), f...),
			} {
				if _, ok := zstdSumFrame(more); ok {
					t.Errorf("%s: passes", name)
				}
			}
			// Stripped, the frame decodes to the same bytes with the
			// checking decoder.
			s := bytes.Clone(f)
			s[4] &^= zstdFlagContentSum
			s = s[:len(s)-4]
			got, err := decodeZstd(s)
			if err != nil || !bytes.Equal(got, tc.data) {
				t.Fatalf("stripped frame: %v, %d bytes of %d", err, len(got), len(tc.data))
			}
		})
	}
}

// zstdBatch is a batch of n records whose records are compressed by
// the reference encoder into frames (one per part, split by records).
func zstdBatch(t testing.TB, n, parts int, opts ...zstd.EOption) []byte {
	t.Helper()
	var frames []byte
	per := n / parts
	for p := range parts {
		var body []byte
		for i := p * per; i < (p+1)*per || (p == parts-1 && i < n); i++ {
			body = appendRawRecord(body, int64(i), []byte(fmt.Sprint(i)), bytes.Repeat([]byte{byte(i)}, 10+i))
		}
		frames = append(frames, zstdFrame(t, body, false, opts...)...)
	}
	return rawBatch(uint16(CompressionZstd), int32(n), frames)
}

// TestStripZstdContentChecksum: a single-frame zstd batch with a wrong
// content checksum passes the validator but fails the reference reader;
// stripped, it validates and decodes to the same records everywhere. A
// batch of two frames is checked, wrong checksum refused, and left alone,
// as is a frame without checksum.
func TestStripZstdContentChecksum(t *testing.T) {
	wrong := func(b []byte) []byte {
		b = bytes.Clone(b)
		b[len(b)-1]++
		putCRC(b)
		return b
	}
	good := zstdBatch(t, 200, 1)
	for name, b := range map[string][]byte{"right checksum": good, "wrong checksum": wrong(good)} {
		t.Run(name, func(t *testing.T) {
			checkStrip(t, b, name == "wrong checksum")
		})
	}
	two := zstdBatch(t, 200, 2)
	if _, err := validate(t, bytes.Clone(two), ValidateOptions{NowMs: testNow}); err != nil {
		t.Fatalf("two frames: %v", err)
	}
	if _, err := validate(t, wrong(two), ValidateOptions{NowMs: testNow}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("two frames, the second's checksum wrong: %v, want ErrCorrupt", err)
	}
	for name, b := range map[string][]byte{"two frames": two, "no checksum": zstdBatch(t, 200, 1, zstd.WithEncoderCRC(false))} {
		if s := StripContentChecksum(bytes.Clone(b)); !bytes.Equal(s, b) {
			t.Errorf("%s: changed", name)
		}
	}
	// The header walk may not be fooled by a frame that is cut short: the
	// decoder then refuses it whichever decoder runs.
	cut := bytes.Clone(good)
	cut = cut[:len(cut)-5]
	binary.BigEndian.PutUint32(cut[batchLengthOffset:], uint32(len(cut)-LengthFieldEnd))
	putCRC(cut)
	if _, err := validate(t, cut, ValidateOptions{NowMs: testNow}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("cut frame: %v, want ErrCorrupt", err)
	}
}

// FuzzZstdSumFrame walks arbitrary bytes as a frame: never a panic, and a
// frame it passes that the validator's decoder (which then skips the
// checksum) decodes, once stripped, decodes to the same bytes with the
// checking decoder.
func FuzzZstdSumFrame(f *testing.F) {
	f.Add(zstdFrame(f, []byte("samsa samsa samsa samsa"), false))
	f.Add(zstdFrame(f, mixedData(300<<10, 5), true))
	f.Add(zstdFrame(f, make([]byte, 200<<10), false))
	var in inflater // one decoder for every input: creating one is slow
	f.Fuzz(func(t *testing.T, frame []byte) {
		if _, ok := zstdSumFrame(frame); !ok {
			return
		}
		d, err := in.zstd(true)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Reset(bytes.NewReader(frame)); err != nil {
			return
		}
		got, err := io.ReadAll(io.LimitReader(d, 1<<20))
		if err != nil || len(got) == 1<<20 {
			return
		}
		stripped := bytes.Clone(frame)
		stripped[4] &^= zstdFlagContentSum
		want, err := decodeZstd(stripped[:len(stripped)-4])
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("stripped frame: checking decoder %v, %d bytes against %d", err, len(want), len(got))
		}
	})
}

// TestValidateZstdFlat: a single frame with a checksum and a declared
// content size within the limits is decoded whole, to the bytes the
// stream decodes; a frame declaring more than the limit, none, or no
// checksum goes through the stream; a declared size smaller than the
// content is corrupt; records that break the format are refused with the
// stream's error.
func TestValidateZstdFlat(t *testing.T) {
	b := zstdBatch(t, 200, 1)
	frame := b[HeaderSize:]
	var in inflater
	in.window = make([]byte, validateWindow)
	flat, ok, err := in.zstdFlat(frame, 1<<20)
	if !ok || err != nil {
		t.Fatalf("zstdFlat: %v, %v", ok, err)
	}
	want, err := decodeZstd(frame)
	if err != nil || !bytes.Equal(flat, want) {
		t.Fatalf("flat %d bytes, reference %d (%v)", len(flat), len(want), err)
	}
	for name, tc := range map[string]struct {
		frame []byte
		limit int64
	}{
		"over the limit": {frame, int64(len(want)) - 1},
		"no size":        {zstdFrame(t, mixedData(600<<10, 7), true), 1 << 20},
		"no checksum":    {zstdFrame(t, want, false, zstd.WithEncoderCRC(false)), 1 << 20},
		"over the max":   {zstdFrame(t, make([]byte, flatMax+1), false), 1 << 30},
	} {
		if _, _, size, _ := zstdHeader(tc.frame); name == "no size" && size != -1 {
			t.Fatalf("the streamed frame declares %d bytes", size)
		}
		if _, ok, _ := in.zstdFlat(tc.frame, tc.limit); ok {
			t.Errorf("%s: decoded whole", name)
		}
	}
	// One byte less declared than the frame holds.
	fhd, n, size, _ := zstdHeader(frame)
	short := bytes.Clone(frame)
	switch fhd >> 6 {
	case 1:
		binary.LittleEndian.PutUint16(short[n-2:], uint16(size-1-256))
	case 2:
		binary.LittleEndian.PutUint32(short[n-4:], uint32(size-1))
	default:
		t.Fatalf("content size field of code %d; the test expects 2 or 4 bytes", fhd>>6)
	}
	if _, _, got, _ := zstdHeader(short); got != size-1 {
		t.Fatalf("declared %d after the change, want %d", got, size-1)
	}
	if _, ok, err := in.zstdFlat(short, 1<<20); !ok || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short declared size: %v, %v; want ErrCorrupt", ok, err)
	}
	// A record count the records do not match: the stream's answer.
	h, err := Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, count := range []int32{1, 199, 201} {
		hc := h
		hc.RecordCount = count
		o := ValidateOptions{NowMs: testNow}
		_, flatErr := ValidateRecords(b, &hc, &o)
		s, err := in.open(CompressionZstd, frame, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		_, streamErr := walkRecords(s, &hc, &o)
		if flatErr == nil || fmt.Sprint(flatErr) != fmt.Sprint(streamErr) {
			t.Fatalf("count %d: flat %v; stream %v", count, flatErr, streamErr)
		}
	}
}
