package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxDecompressedSize bounds the decompressed size of one batch's records
// so a small hostile batch cannot exhaust memory.
const MaxDecompressedSize = 256 << 20

var errTooLarge = errors.New("decompressed records exceed the limit")

// decompressLimit is the bound decompress enforces: MaxDecompressedSize
// unless a fuzz target lowered it (LimitDecompression).
var decompressLimit atomic.Int64

func init() { decompressLimit.Store(MaxDecompressedSize) }

// LimitDecompression lowers the decompressed-size bound to n bytes and
// returns a function restoring it. It exists for fuzz targets: a small
// input inflating to MaxDecompressedSize takes seconds, which stalls a
// brief fuzzing run without finding anything.
func LimitDecompression(n int) (restore func()) {
	old := decompressLimit.Swap(int64(n))
	return func() { decompressLimit.Store(old) }
}

// RaiseDecompressionLimit raises the decompressed-size bound of every
// decompression in this package (DecodeBatch, Recompress, and
// ValidateRecords without an explicit limit) to n bytes if it is lower.
// The broker calls it with message.max.decompressed.bytes when that is set
// above MaxDecompressedSize, so that batches the produce path accepted can
// always be read back.
func RaiseDecompressionLimit(n int64) {
	for {
		old := decompressLimit.Load()
		if n <= old || decompressLimit.CompareAndSwap(old, n) {
			return
		}
	}
}

// xerialMagic starts snappy data in the Java client's xerial framing.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

var (
	zstdOnce    sync.Once
	zstdEncoder *zstd.Encoder
	zstdErr     error
	// zstdReaders are streaming decoders: decoding through
	// readAllLimited stops at the limit, where DecodeAll would inflate a
	// frame in full first.
	zstdReaders sync.Pool
)

func zstdEncoderOnce() (*zstd.Encoder, error) {
	zstdOnce.Do(func() {
		// EncodeAll is safe for concurrent use.
		zstdEncoder, zstdErr = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	})
	return zstdEncoder, zstdErr
}

func decodeZstd(b []byte) ([]byte, error) {
	d, _ := zstdReaders.Get().(*zstd.Decoder)
	if d == nil {
		// Concurrency 1 decodes a stream synchronously in the caller's
		// goroutine, so a pooled decoder holds no goroutines.
		var err error
		if d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxDecompressedSize)); err != nil {
			return nil, err
		}
	}
	defer zstdReaders.Put(d)
	if err := d.Reset(bytes.NewReader(b)); err != nil {
		return nil, err
	}
	out, err := readAllLimited(d)
	_ = d.Reset(nil)
	return out, err
}

func decompress(c Compression, b []byte) ([]byte, error) {
	switch c {
	case CompressionNone:
		return b, nil
	case CompressionGzip:
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return readAllLimited(zr)
	case CompressionSnappy:
		return decodeSnappy(b)
	case CompressionLZ4:
		return readAllLimited(lz4.NewReader(bytes.NewReader(b)))
	case CompressionZstd:
		return decodeZstd(b)
	}
	return nil, fmt.Errorf("unknown compression codec %d", c)
}

func readAllLimited(r io.Reader) ([]byte, error) {
	limit := decompressLimit.Load()
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		return nil, errTooLarge
	}
	return out, nil
}

func decodeSnappyBlock(dst, b []byte) ([]byte, error) {
	n, err := s2.DecodedLen(b)
	if err != nil {
		return nil, err
	}
	if int64(n) > decompressLimit.Load()-int64(len(dst)) {
		return nil, errTooLarge
	}
	out, err := s2.Decode(nil, b)
	if err != nil {
		return nil, err
	}
	return append(dst, out...), nil
}

// decodeSnappy handles both a raw snappy block and xerial framing.
func decodeSnappy(b []byte) ([]byte, error) {
	if !bytes.HasPrefix(b, xerialMagic) {
		return decodeSnappyBlock(nil, b)
	}
	b = b[len(xerialMagic):]
	if len(b) < 8 {
		return nil, errors.New("short xerial header")
	}
	b = b[8:] // version, compatible version
	var out []byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, errors.New("short xerial chunk length")
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return nil, errors.New("xerial chunk past the end")
		}
		var err error
		if out, err = decodeSnappyBlock(out, b[:n]); err != nil {
			return nil, err
		}
		b = b[n:]
	}
	return out, nil
}

func compress(c Compression, xerial bool, b []byte) ([]byte, error) {
	return compressLevel(c, xerial, DefaultLevel, b)
}

// DefaultLevel asks compressLevel for the codec's default level.
const DefaultLevel = math.MinInt

// compressLevel compresses b with codec c at a Kafka compression level
// (compression.gzip.level, compression.lz4.level, compression.zstd.level;
// snappy has none); DefaultLevel is the codec's default.
func compressLevel(c Compression, xerial bool, level int, b []byte) ([]byte, error) {
	switch c {
	case CompressionNone:
		return b, nil
	case CompressionGzip:
		var buf bytes.Buffer
		if level == DefaultLevel {
			level = gzip.DefaultCompression
		}
		zw, err := gzip.NewWriterLevel(&buf, level)
		if err != nil {
			return nil, err
		}
		if _, err := zw.Write(b); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case CompressionSnappy:
		if !xerial {
			return s2.EncodeSnappy(nil, b), nil
		}
		out := append([]byte(nil), xerialMagic...)
		out = binary.BigEndian.AppendUint32(out, 1)
		out = binary.BigEndian.AppendUint32(out, 1)
		const chunk = 32 << 10
		for len(b) > 0 {
			n := min(chunk, len(b))
			blk := s2.EncodeSnappy(nil, b[:n])
			out = binary.BigEndian.AppendUint32(out, uint32(len(blk)))
			out = append(out, blk...)
			b = b[n:]
		}
		return out, nil
	case CompressionLZ4:
		var buf bytes.Buffer
		zw := lz4.NewWriter(&buf)
		if level != DefaultLevel {
			if err := zw.Apply(lz4.CompressionLevelOption(lz4Level(level))); err != nil {
				return nil, err
			}
		}
		if _, err := zw.Write(b); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case CompressionZstd:
		e, err := zstdEncoderOnce()
		if level != DefaultLevel {
			e, err = zstdEncoderAt(zstd.EncoderLevelFromZstd(level))
		}
		if err != nil {
			return nil, err
		}
		return e.EncodeAll(b, nil), nil
	}
	return nil, fmt.Errorf("record: unknown compression codec %d", c)
}

// lz4Level maps Kafka's lz4 levels (1-17) to the lz4 package's: like
// Kafka's Lz4BlockOutputStream, the default level 9 is the fast
// compressor and any other level the high-compression one (the package's
// HC levels 1-9 cover Kafka's 1-17 two by two).
func lz4Level(level int) lz4.CompressionLevel {
	if level == 9 {
		return lz4.Fast
	}
	return lz4.CompressionLevel(1 << (8 + min(max(level/2, 1), 9)))
}

var (
	zstdLevelsMu sync.Mutex
	// zstdLevels holds one encoder per zstd speed asked for (a handful).
	// Guarded by zstdLevelsMu.
	zstdLevels = map[zstd.EncoderLevel]*zstd.Encoder{}
)

func zstdEncoderAt(l zstd.EncoderLevel) (*zstd.Encoder, error) {
	zstdLevelsMu.Lock()
	defer zstdLevelsMu.Unlock()
	if e := zstdLevels[l]; e != nil {
		return e, nil
	}
	e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(l))
	if err != nil {
		return nil, err
	}
	zstdLevels[l] = e
	return e, nil
}
