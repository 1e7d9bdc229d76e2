package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// This file is the produce path's record validator, Samsa's counterpart of
// Kafka's LogValidator (with DefaultRecordBatch's record iterator and
// DefaultRecord.readFrom): it walks every record of a batch without
// materialising them. Uncompressed batches are walked in place, with no
// allocation; compressed ones are streamed through a pooled decompressor
// into a fixed window (validateWindow bytes), so memory stays bounded
// whatever a batch inflates to, and the decompressed size is capped.

// Errors of ValidateRecords, besides ErrCorrupt (the records cannot be
// decompressed: unknown codec, bytes that are not of the batch's codec,
// a truncated or damaged compressed stream; Kafka's CorruptRecordException,
// CORRUPT_MESSAGE).
var (
	// ErrInvalidRecord: the records decode to something that breaks the
	// format or a topic rule (Kafka's InvalidRecordException,
	// INVALID_RECORD): a record count that does not match the records, a
	// bad varint or length, offset deltas other than 0..count-1, bytes
	// after the last record, a record without a key on a compacted topic.
	ErrInvalidRecord = errors.New("record: invalid record")
	// ErrDecompressedTooLarge: a compressed batch inflates beyond the
	// limit (ValidateOptions.MaxDecompressedBytes). It wraps
	// ErrInvalidRecord: the batch is well formed but refused by policy,
	// and clients must not retry it (CORRUPT_MESSAGE is retriable).
	ErrDecompressedTooLarge = fmt.Errorf("%w: decompressed records exceed the limit", ErrInvalidRecord)
	// ErrNoKey: a record without key for a topic that requires keys
	// (compacted). It wraps ErrInvalidRecord.
	ErrNoKey = fmt.Errorf("%w: a compacted topic cannot accept a record without a key", ErrInvalidRecord)
	// ErrInvalidTimestamp: a CreateTime record timestamp outside the
	// topic's bounds, or a producer batch claiming LogAppendTime on a
	// CreateTime topic (Kafka's InvalidTimestampException,
	// INVALID_TIMESTAMP).
	ErrInvalidTimestamp = errors.New("record: invalid timestamp")
)

// ValidateOptions are the topic rules ValidateRecords applies.
type ValidateOptions struct {
	// NowMs is the broker's clock, ms since the epoch.
	NowMs int64
	// CreateTime: the topic keeps producer timestamps
	// (message.timestamp.type=CreateTime), so every record timestamp
	// other than -1 must lie in [NowMs-TimestampBeforeMaxMs,
	// NowMs+TimestampAfterMaxMs], and a batch must not claim
	// LogAppendTime.
	CreateTime           bool
	TimestampBeforeMaxMs int64 // message.timestamp.before.max.ms
	TimestampAfterMaxMs  int64 // message.timestamp.after.max.ms
	// RequireKeys rejects records with a null key (compacted topics).
	RequireKeys bool
	// MaxDecompressedBytes caps the decompressed size of a compressed
	// batch's records; <= 0 means the package bound
	// (MaxDecompressedSize unless LimitDecompression lowered it).
	MaxDecompressedBytes int64
}

// validateWindow is the size of the window compressed records stream
// through: larger than any varint, independent of record sizes.
const validateWindow = 64 << 10

// maxZstdWindow bounds the zstd window a frame may declare. The decoder
// allocates the whole window, so a hostile frame could otherwise claim
// 512 MiB. zstd levels 1-19 use at most 8 MiB; ultra levels (20-22) on
// batches over 16 MiB are refused as corrupt.
const maxZstdWindow = 16 << 20

// snappyMaxRatio bounds how much a snappy block can expand: the densest
// snappy element is a 3-byte copy of 64 bytes. A block declaring more is
// not snappy (s2's extensions can go further; no Kafka client writes them).
const snappyMaxRatio = 22

// ValidateRecords checks every record of the batch b, whose header h
// Validate accepted (length, CRC), against the format and the topic rules
// o, decompressing through a bounded stream. It returns the largest record
// timestamp (-1 if none; for a LogAppendTime batch the header's). Errors
// wrap ErrCorrupt, ErrInvalidRecord or ErrInvalidTimestamp.
func ValidateRecords(b []byte, h *Header, o *ValidateOptions) (int64, error) {
	if o.CreateTime && h.LogAppendTime() {
		return -1, fmt.Errorf("%w: the producer set the timestamp type to LogAppendTime", ErrInvalidTimestamp)
	}
	if len(b) < HeaderSize {
		return -1, ErrTruncated
	}
	c := h.Compression()
	if c == CompressionNone {
		return walkFlat(b[HeaderSize:], h, o)
	}
	if c > CompressionZstd {
		return -1, fmt.Errorf("%w: unknown compression codec %d", ErrCorrupt, c)
	}
	limit := o.MaxDecompressedBytes
	if limit <= 0 {
		limit = decompressLimit.Load()
	}
	inflateSlots <- struct{}{}
	defer func() { <-inflateSlots }()
	in := inflaters.Get().(*inflater)
	defer in.release()
	if flat, ok, err := in.decodeFlat(c, b[HeaderSize:], limit); ok {
		if err != nil {
			return -1, err
		}
		return walkFlat(flat, h, o)
	}
	s, err := in.open(c, b[HeaderSize:], limit)
	if err != nil {
		return -1, err
	}
	return walkRecords(s, h, o)
}

// timestampBounds says whether the records of a batch with header h
// must have timestamps (other than -1) in [lo, hi], and that range.
func (o *ValidateOptions) timestampBounds(h *Header) (check bool, lo, hi int64) {
	if !o.CreateTime || h.LogAppendTime() {
		return false, math.MinInt64, math.MaxInt64
	}
	return true, satAdd(o.NowMs, -max(o.TimestampBeforeMaxMs, 0)), satAdd(o.NowMs, max(o.TimestampAfterMaxMs, 0))
}

// walkRecords reads h.RecordCount records from s and checks each (see
// ValidateRecords), then that nothing follows them.
func walkRecords(s *recStream, h *Header, o *ValidateOptions) (int64, error) {
	maxTs := int64(-1)
	checkTs, lo, hi := o.timestampBounds(h)
	n := h.RecordCount
	for i := int32(0); i < n; i++ {
		length := s.varint()
		if s.err != nil {
			return -1, s.fail(i, "record length")
		}
		// attributes, timestamp delta, offset delta, key length, value
		// length and header count take at least one byte each.
		if length < 6 {
			return -1, s.fail(i, fmt.Sprintf("record length %d", length))
		}
		start := s.offset()
		s.bodyEnd = start + int64(length)
		if s.whole() && s.bodyEnd > int64(s.end) {
			return -1, s.fail(i, fmt.Sprintf("record length %d past the end of the batch", length))
		}
		s.skip(1) // attributes: none defined for v2 records
		tsDelta := s.varlong()
		offDelta := s.varint()
		keyLen := s.varint()
		if s.err != nil {
			return -1, s.fail(i, "record fields")
		}
		if offDelta != i {
			return -1, s.fail(i, fmt.Sprintf("offset delta %d, want %d", offDelta, i))
		}
		switch {
		case keyLen < -1:
			return -1, s.fail(i, fmt.Sprintf("key length %d", keyLen))
		case keyLen == -1 && o.RequireKeys:
			return -1, fmt.Errorf("%w (record %d)", ErrNoKey, i)
		case keyLen > 0:
			s.skip(int64(keyLen))
		}
		valueLen := s.varint()
		if valueLen < -1 {
			return -1, s.fail(i, fmt.Sprintf("value length %d", valueLen))
		}
		s.skip(int64(max(valueLen, 0)))
		headers := s.varint()
		if s.err != nil {
			return -1, s.fail(i, "record key or value")
		}
		if headers < 0 || int64(headers) > s.bodyEnd-s.offset() {
			return -1, s.fail(i, fmt.Sprintf("%d headers", headers))
		}
		for j := int32(0); j < headers; j++ {
			kl := s.varint()
			if kl < 0 {
				return -1, s.fail(i, fmt.Sprintf("header key length %d", kl))
			}
			s.skip(int64(kl))
			vl := s.varint()
			if vl < -1 {
				return -1, s.fail(i, fmt.Sprintf("header value length %d", vl))
			}
			s.skip(int64(max(vl, 0)))
			if s.err != nil {
				return -1, s.fail(i, "record header")
			}
		}
		if s.err != nil || s.offset() != s.bodyEnd {
			return -1, s.fail(i, fmt.Sprintf("record of %d bytes does not end where its length says", length))
		}
		ts := h.BaseTimestamp + tsDelta
		if (tsDelta > 0 && ts < h.BaseTimestamp) || (tsDelta < 0 && ts > h.BaseTimestamp) {
			return -1, s.fail(i, fmt.Sprintf("timestamp delta %d overflows", tsDelta))
		}
		if ts > maxTs {
			maxTs = ts
		}
		if checkTs && ts != -1 && (ts < lo || ts > hi) {
			return -1, fmt.Errorf("%w: timestamp %d of record %d is out of range [%d, %d]", ErrInvalidTimestamp, ts, i, lo, hi)
		}
	}
	s.bodyEnd = math.MaxInt64
	if !s.atEnd() {
		if err := s.srcFailure(); err != nil {
			return -1, err
		}
		return -1, fmt.Errorf("%w: bytes after the last of %d records", ErrInvalidRecord, n)
	}
	if h.LogAppendTime() {
		maxTs = h.MaxTimestamp
	}
	return maxTs, nil
}

// walkFlat is walkRecords for records held whole in b (an uncompressed
// batch): the same checks, in the same order, with the same errors (the
// fuzz target holds it to that), the varints decoded in place. It is the
// produce path of every uncompressed batch, so it returns at the first
// fault instead of carrying it, as recStream does, to the next check.
func walkFlat(b []byte, h *Header, o *ValidateOptions) (int64, error) {
	maxTs := int64(-1)
	checkTs, lo, hi := o.timestampBounds(h)
	bad := func(i int32, what string) error {
		return fmt.Errorf("%w: record %d: %s", ErrInvalidRecord, i, what)
	}
	pos := 0
	n := h.RecordCount
	for i := int32(0); i < n; i++ {
		length, ok := flatVarint(b, &pos)
		if !ok {
			return -1, bad(i, "record length")
		}
		if length < 6 {
			return -1, bad(i, fmt.Sprintf("record length %d", length))
		}
		end := pos + int(length)
		if end > len(b) {
			return -1, bad(i, fmt.Sprintf("record length %d past the end of the batch", length))
		}
		pos++ // attributes (length >= 6: inside the record)
		tsDelta, ok1 := flatVarlong(b, &pos)
		offDelta, ok2 := flatVarint(b, &pos)
		keyLen, ok3 := flatVarint(b, &pos)
		if !ok1 || !ok2 || !ok3 {
			return -1, bad(i, "record fields")
		}
		if offDelta != i {
			return -1, bad(i, fmt.Sprintf("offset delta %d, want %d", offDelta, i))
		}
		switch {
		case keyLen < -1:
			return -1, bad(i, fmt.Sprintf("key length %d", keyLen))
		case keyLen == -1 && o.RequireKeys:
			return -1, fmt.Errorf("%w (record %d)", ErrNoKey, i)
		case keyLen > 0 && !flatSkip(&pos, end, int(keyLen)):
			return -1, bad(i, "record key or value")
		}
		valueLen, ok := flatVarint(b, &pos)
		if !ok {
			return -1, bad(i, "record key or value")
		}
		if valueLen < -1 {
			return -1, bad(i, fmt.Sprintf("value length %d", valueLen))
		}
		if !flatSkip(&pos, end, int(max(valueLen, 0))) {
			return -1, bad(i, "record key or value")
		}
		headers, ok := flatVarint(b, &pos)
		if !ok {
			return -1, bad(i, "record key or value")
		}
		if headers < 0 || int(headers) > end-pos {
			return -1, bad(i, fmt.Sprintf("%d headers", headers))
		}
		for j := int32(0); j < headers; j++ {
			kl, ok := flatVarint(b, &pos)
			if ok && kl < 0 {
				return -1, bad(i, fmt.Sprintf("header key length %d", kl))
			}
			if !ok || !flatSkip(&pos, end, int(kl)) {
				return -1, bad(i, "record header")
			}
			vl, ok := flatVarint(b, &pos)
			if ok && vl < -1 {
				return -1, bad(i, fmt.Sprintf("header value length %d", vl))
			}
			if !ok || !flatSkip(&pos, end, int(max(vl, 0))) {
				return -1, bad(i, "record header")
			}
		}
		if pos != end {
			return -1, bad(i, fmt.Sprintf("record of %d bytes does not end where its length says", length))
		}
		ts := h.BaseTimestamp + tsDelta
		if (tsDelta > 0 && ts < h.BaseTimestamp) || (tsDelta < 0 && ts > h.BaseTimestamp) {
			return -1, bad(i, fmt.Sprintf("timestamp delta %d overflows", tsDelta))
		}
		if ts > maxTs {
			maxTs = ts
		}
		if checkTs && ts != -1 && (ts < lo || ts > hi) {
			return -1, fmt.Errorf("%w: timestamp %d of record %d is out of range [%d, %d]", ErrInvalidTimestamp, ts, i, lo, hi)
		}
	}
	if pos != len(b) {
		return -1, fmt.Errorf("%w: bytes after the last of %d records", ErrInvalidRecord, n)
	}
	if h.LogAppendTime() {
		maxTs = h.MaxTimestamp
	}
	return maxTs, nil
}

// flatVarlong decodes the zigzag varint at b[*pos:], advancing *pos; it
// reads up to the end of b, as recStream does (a varint that runs past
// its record is caught by the record's end check).
func flatVarlong(b []byte, pos *int) (int64, bool) {
	p := *pos
	if p < len(b) {
		// Most varints of a record take one or two bytes.
		c := uint64(b[p])
		if c < 0x80 {
			*pos = p + 1
			return int64(c>>1) ^ -int64(c&1), true
		}
		if p+1 < len(b) && b[p+1] < 0x80 {
			u := c&0x7f | uint64(b[p+1])<<7
			*pos = p + 2
			return int64(u>>1) ^ -int64(u&1), true
		}
	}
	v, k := binary.Varint(b[min(p, len(b)):])
	if k <= 0 {
		return 0, false
	}
	*pos = p + k
	return v, true
}

// flatVarint is flatVarlong for a value that must fit an int32.
func flatVarint(b []byte, pos *int) (int32, bool) {
	v, ok := flatVarlong(b, pos)
	if !ok || v != int64(int32(v)) {
		return 0, false
	}
	return int32(v), true
}

// flatSkip moves *pos n bytes on, if that stays within the record (which
// ends at end; a varint read past it leaves no room even for n = 0).
func flatSkip(pos *int, end, n int) bool {
	if n > end-*pos {
		return false
	}
	*pos += n
	return true
}

// satAdd is a+b saturated to the int64 range (b may be negative; a >= 0
// for a clock).
func satAdd(a, b int64) int64 {
	c := a + b
	switch {
	case b > 0 && c < a:
		return math.MaxInt64
	case b < 0 && c > a:
		return math.MinInt64
	}
	return c
}

// recStream reads the records section: a slice held whole (src and
// blocks nil), a decompressing reader seen through the window buf, or a
// decompressor that hands out whole blocks of its output, read where
// they lie (buf is the current block, or stitch where a field spans two
// blocks). The first failure sticks in err; accessors then return zeros.
type recStream struct {
	buf      []byte
	pos, end int   // buf[pos:end] is read but not consumed
	base     int64 // stream offset of buf[0]
	// bodyEnd is the stream offset where the current record ends; skips
	// never pass it.
	bodyEnd int64
	err     error

	src     io.Reader   // a decompressor read into buf (the window)
	blocks  blockSource // or one that hands out its blocks
	pending []byte      // blocks: the rest of the block after buf
	stitch  []byte      // blocks: room for a field spanning two blocks (stitchSize)
	limit   int64       // most bytes src or blocks may produce
	total   int64       // bytes src or blocks produced
	srcErr  error       // io.EOF once src or blocks is drained, or why it failed
}

// blockSource is a decompressor that hands out its output a block at a
// time, in its own buffer: a block is valid until the next call. It
// returns io.EOF after the last block (having checked the stream's end).
type blockSource interface {
	nextBlock() ([]byte, error)
}

// stitchSize is the room a field spanning two blocks needs: fill asks for
// at most a varint's bytes, and stitch takes as many again of the next
// block.
const stitchSize = 2 * binary.MaxVarintLen64

// whole reports whether buf holds all the input.
func (s *recStream) whole() bool { return s.src == nil && s.blocks == nil }

var errRecordEnd = errors.New("premature end of the records")

// offset is the stream offset of the next byte.
func (s *recStream) offset() int64 { return s.base + int64(s.pos) }

// fill tries to make n bytes available; n <= len(s.buf).
func (s *recStream) fill(n int) bool {
	if s.end-s.pos >= n {
		return true
	}
	if s.blocks != nil {
		return s.fillBlocks(n)
	}
	if s.src == nil || s.srcErr != nil {
		return false
	}
	if s.pos > 0 {
		copy(s.buf, s.buf[s.pos:s.end])
		s.base += int64(s.pos)
		s.end -= s.pos
		s.pos = 0
	}
	for zero := 0; s.end-s.pos < n && s.srcErr == nil; {
		m, err := s.src.Read(s.buf[s.end:])
		s.end += m
		s.total += int64(m)
		switch {
		case s.total > s.limit:
			s.srcErr = ErrDecompressedTooLarge
		case err != nil:
			s.srcErr = err
		case m == 0:
			if zero++; zero > 100 {
				s.srcErr = io.ErrNoProgress
			}
		}
	}
	return s.end-s.pos >= n
}

// fillBlocks is fill for a block source: nothing is copied but the few
// bytes of a field that spans two blocks, which go to stitch with the
// start of the next block.
func (s *recStream) fillBlocks(n int) bool {
	for s.end-s.pos < n {
		if len(s.pending) == 0 {
			if s.srcErr != nil {
				return false
			}
			// The next block overwrites this one's buffer.
			s.keepRest()
			b, err := s.blocks.nextBlock()
			if s.total += int64(len(b)); s.total > s.limit {
				err = ErrDecompressedTooLarge
			}
			if err != nil {
				s.srcErr = err
				return false
			}
			s.pending = b
			continue
		}
		if s.pos == s.end {
			s.base += int64(s.end)
			s.buf, s.pos, s.end = s.pending, 0, len(s.pending)
			s.pending = nil
			continue
		}
		rem := s.keepRest()
		k := copy(s.stitch[rem:], s.pending)
		s.pending = s.pending[k:]
		s.buf, s.end = s.stitch[:rem+k], rem+k
	}
	return true
}

// keepRest moves the unread bytes of buf (fewer than fill asks for) to
// the start of stitch, which becomes buf, and returns how many they are.
func (s *recStream) keepRest() int {
	rem := s.end - s.pos
	s.base += int64(s.pos)
	copy(s.stitch, s.buf[s.pos:s.end])
	s.buf, s.pos, s.end = s.stitch[:rem], 0, rem
	return rem
}

func (s *recStream) setErr() {
	if s.err == nil {
		s.err = errRecordEnd
	}
}

func (s *recStream) varlong() int64 {
	if s.err != nil {
		return 0
	}
	if s.end-s.pos < binary.MaxVarintLen64 {
		s.fill(binary.MaxVarintLen64)
	}
	v, ok := flatVarlong(s.buf[:s.end], &s.pos)
	if !ok {
		s.setErr()
		return 0
	}
	return v
}

func (s *recStream) varint() int32 {
	v := s.varlong()
	if v != int64(int32(v)) {
		s.setErr()
		return 0
	}
	return int32(v)
}

// skip consumes n bytes of the current record.
func (s *recStream) skip(n int64) {
	if s.err != nil {
		return
	}
	if n > s.bodyEnd-s.offset() {
		s.setErr()
		return
	}
	for {
		if avail := int64(s.end - s.pos); avail >= n {
			s.pos += int(n)
			return
		} else {
			n -= avail
			s.pos = s.end
		}
		if !s.fill(1) {
			s.setErr()
			return
		}
	}
}

// atEnd reports whether the stream is drained (a decompressor is read to
// its end, which checks its trailer).
func (s *recStream) atEnd() bool {
	return s.pos == s.end && !s.fill(1) && (s.whole() || s.srcErr == io.EOF)
}

// srcFailure is the decompressor's error, nil if it ended cleanly or did
// not fail.
func (s *recStream) srcFailure() error {
	switch {
	case s.srcErr == nil || s.srcErr == io.EOF:
		return nil
	case errors.Is(s.srcErr, ErrDecompressedTooLarge):
		return fmt.Errorf("%w (%d bytes)", ErrDecompressedTooLarge, s.limit)
	}
	return fmt.Errorf("%w: decompress: %v", ErrCorrupt, s.srcErr)
}

// fail builds the error for record i: the decompressor's failure if it
// failed, else an invalid record.
func (s *recStream) fail(i int32, what string) error {
	if err := s.srcFailure(); err != nil {
		return err
	}
	return fmt.Errorf("%w: record %d: %s", ErrInvalidRecord, i, what)
}

// inflater is the pooled state of one compressed-batch validation: the
// window, the codec readers (created on first use, then Reset) and the
// snappy output buffer.
type inflater struct {
	window []byte
	br     bytes.Reader
	gz     *gzip.Reader
	lz     *lz4.Reader // frames of linked blocks only
	lzf    lz4Reader
	zd     *zstd.Decoder // checks the content checksum
	zdSkip *zstd.Decoder // does not: for frames StripContentChecksum strips
	flat   []byte        // decodeFlat's output, at most flatMax
	sn     snappyReader
	s      recStream
	stitch [stitchSize]byte
}

// inflateSlots bounds how many compressed batches are validated at
// once, and so the memory of their inflaters (a window, a flat buffer of
// at most flatMax, a zstd window of at most maxZstdWindow): the work is
// CPU-bound, so more at once than a few per CPU gains nothing. A wait
// lasts as long as others' validations, each bounded by its limit.
var inflateSlots = make(chan struct{}, 4*runtime.GOMAXPROCS(0))

var inflaters = sync.Pool{New: func() any { return &inflater{window: make([]byte, validateWindow)} }}

// maxPooledSnappy is the largest snappy buffer kept in the pool.
const maxPooledSnappy = 4 << 20

func (in *inflater) release() {
	in.br.Reset(nil)
	for _, d := range [...]*zstd.Decoder{in.zd, in.zdSkip} {
		if d != nil {
			_ = d.Reset(nil)
		}
	}
	if in.lz != nil {
		in.lz.Reset(nil)
	}
	in.sn.in = nil
	in.lzf.in, in.lzf.out = nil, nil
	if cap(in.sn.out) > maxPooledSnappy {
		in.sn.out = nil
	}
	in.s = recStream{}
	inflaters.Put(in)
}

// open starts decompressing data with codec c and returns the stream.
func (in *inflater) open(c Compression, data []byte, limit int64) (*recStream, error) {
	in.br.Reset(data)
	var src io.Reader
	switch c {
	case CompressionGzip:
		if in.gz == nil {
			in.gz = new(gzip.Reader)
		}
		if err := in.gz.Reset(&in.br); err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrCorrupt, err)
		}
		src = in.gz
	case CompressionSnappy:
		in.sn.reset(data, limit)
		return in.stream(nil, &in.sn, limit), nil
	case CompressionLZ4:
		err := in.lzf.reset(data, limit)
		if err == nil {
			return in.stream(nil, &in.lzf, limit), nil
		}
		if !errors.Is(err, errLZ4Linked) {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if in.lz == nil {
			in.lz = lz4.NewReader(nil)
		}
		in.lz.Reset(&in.br)
		src = in.lz
	case CompressionZstd:
		// A single frame ending with its content checksum is decoded
		// without checking it: the produce path strips it (see
		// zstdframe.go).
		_, sum := zstdSumFrame(data)
		d, err := in.zstd(sum)
		if err != nil {
			return nil, err
		}
		if err := d.Reset(&in.br); err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		}
		src = d
	}
	return in.stream(src, nil, limit), nil
}

// flatMax is the most decoded bytes decodeFlat holds whole: a client's
// batch of 1 MB (franz-go's and librdkafka's default batch size), with
// room. Each pooled inflater may keep a buffer this large; the zstd
// stream decoder it replaces keeps a window as large as the frame's
// anyway.
const flatMax = 2 << 20

// decodeFlat decodes data, compressed with c, whole into the inflater's
// buffer when it can: one lz4 frame of independent blocks, or one zstd
// frame as zstdFlat says, of at most flatMax and limit bytes. The walk of
// the records then reads them in place, instead of through a stream. ok
// is false when data is left to the stream (which then says what is
// wrong with it, if anything); err is the zstd decoder's verdict.
func (in *inflater) decodeFlat(c Compression, data []byte, limit int64) (flat []byte, ok bool, err error) {
	switch c {
	case CompressionZstd:
		return in.zstdFlat(data, limit)
	case CompressionLZ4:
		if in.lzf.reset(data, limit) != nil {
			return nil, false, nil
		}
		flat, ok = in.lzf.decodeAll(in.flatBuf())
		return flat, ok, nil
	}
	return nil, false, nil
}

// zstdFlat decodes data whole when it is one zstd frame ending with its
// content checksum (see zstdframe.go) that declares a content size of at
// most flatMax and limit: one pass of the decoder into a pooled
// buffer, walked in place, instead of a stream copied through the window.
// ok is false when data is not such a frame (nothing was done); err is
// the decoder's verdict when it is.
func (in *inflater) zstdFlat(data []byte, limit int64) (flat []byte, ok bool, err error) {
	size, sum := zstdSumFrame(data)
	if !sum || size < 0 || size > min(limit, flatMax) {
		return nil, false, nil
	}
	d, err := in.zstd(true)
	if err != nil {
		return nil, true, err
	}
	// The decoder refuses to write more than the declared size.
	out, err := d.DecodeAll(data, in.flatBuf())
	if err != nil {
		return nil, true, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
	}
	return out, true, nil
}

// flatBuf is the inflater's empty flat buffer, of capacity flatMax
// (allocated on first use).
func (in *inflater) flatBuf() []byte {
	if cap(in.flat) < flatMax {
		in.flat = make([]byte, 0, flatMax)
	}
	return in.flat[:0]
}

// zstd returns the inflater's zstd decoder that skips the content
// checksum or the one that checks it, created on first use.
func (in *inflater) zstd(skipSum bool) (*zstd.Decoder, error) {
	d := &in.zd
	if skipSum {
		d = &in.zdSkip
	}
	if *d == nil {
		nd, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow),
			zstd.WithDecoderMaxMemory(maxZstdWindow), zstd.WithDecodeBuffersBelow(0), zstd.IgnoreChecksum(skipSum))
		if err != nil {
			return nil, err
		}
		*d = nd
	}
	return *d, nil
}

// stream starts the pooled recStream over src (read through the window)
// or blocks (read where they lie).
func (in *inflater) stream(src io.Reader, blocks blockSource, limit int64) *recStream {
	in.s = recStream{src: src, blocks: blocks, limit: limit}
	if src != nil {
		in.s.buf = in.window
	} else {
		in.s.stitch = in.stitch[:]
	}
	return &in.s
}

// snappyReader decompresses a raw snappy block or xerial framing (see
// doc.go) one block at a time into out.
type snappyReader struct {
	in      []byte // compressed input not yet decoded
	xerial  bool
	started bool
	out     []byte
	pos     int // out[pos:] is not yet read
	limit   int64
	total   int64 // declared decoded bytes so far
}

func (r *snappyReader) reset(data []byte, limit int64) {
	*r = snappyReader{in: data, out: r.out[:0], limit: limit}
	if bytes.HasPrefix(data, xerialMagic) {
		r.xerial = true
		r.in = data[len(xerialMagic):]
	}
}

func (r *snappyReader) nextBlock() ([]byte, error) {
	for r.pos == len(r.out) {
		if err := r.next(); err != nil {
			return nil, err
		}
	}
	b := r.out[r.pos:]
	r.pos = len(r.out)
	return b, nil
}

// next decodes the next block into out.
func (r *snappyReader) next() error {
	var blk []byte
	switch {
	case !r.xerial:
		if r.started {
			return io.EOF
		}
		blk = r.in
	case !r.started:
		if len(r.in) < 8 {
			return errors.New("short xerial header")
		}
		r.in = r.in[8:] // version, compatible version
		fallthrough
	default:
		r.started = true
		if len(r.in) == 0 {
			return io.EOF
		}
		if len(r.in) < 4 {
			return errors.New("short xerial chunk length")
		}
		n := binary.BigEndian.Uint32(r.in)
		if uint64(n) > uint64(len(r.in)-4) {
			return errors.New("xerial chunk past the end")
		}
		blk, r.in = r.in[4:4+n], r.in[4+n:]
	}
	r.started = true
	n, err := s2.DecodedLen(blk)
	if err != nil {
		return err
	}
	if int64(n) > int64(len(blk))*snappyMaxRatio+64 {
		return fmt.Errorf("snappy block of %d bytes claims %d decoded bytes", len(blk), n)
	}
	if r.total += int64(n); r.total > r.limit {
		return ErrDecompressedTooLarge
	}
	if cap(r.out) < n {
		r.out = make([]byte, n)
	}
	out, err := s2.Decode(r.out[:n], blk)
	if err != nil {
		return err
	}
	r.out, r.pos = out, 0
	return nil
}
