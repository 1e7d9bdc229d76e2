package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// Errors returned by the codec. Callers map them with errors.Is.
var (
	// ErrCorrupt: the bytes are not a valid v2 batch (bad length, CRC
	// mismatch, inconsistent counts, undecodable records).
	ErrCorrupt = errors.New("record: corrupt batch")
	// ErrTruncated: the input ends inside a batch. It wraps ErrCorrupt.
	ErrTruncated = fmt.Errorf("%w: truncated", ErrCorrupt)
	// ErrUnsupportedMagic: a legacy message set (magic 0 or 1).
	ErrUnsupportedMagic = errors.New("record: unsupported magic (message format v0/v1)")
)

// Offsets of the fixed header fields.
const (
	baseOffsetOffset           = 0
	batchLengthOffset          = 8
	partitionLeaderEpochOffset = 12
	magicOffset                = 16
	crcOffset                  = 17
	attributesOffset           = 21
	lastOffsetDeltaOffset      = 23
	baseTimestampOffset        = 27
	maxTimestampOffset         = 35
	producerIDOffset           = 43
	producerEpochOffset        = 51
	baseSequenceOffset         = 53
	recordCountOffset          = 57

	// HeaderSize is the size of the fixed v2 batch header.
	HeaderSize = 61
	// LengthFieldEnd is the number of bytes before the part counted by
	// batchLength (baseOffset + batchLength): total size = 12 + batchLength.
	LengthFieldEnd = 12
	// MinBatchLength is the smallest valid batchLength (a header without
	// records).
	MinBatchLength = HeaderSize - LengthFieldEnd
	// Magic is the only message format version this package handles.
	Magic = 2
)

// Attribute bits.
const (
	compressionMask     = 0x07
	timestampTypeBit    = 0x08
	transactionalBit    = 0x10
	controlBit          = 0x20
	deleteHorizonBit    = 0x40
	noSequence          = -1
	noProducerID        = -1
	noProducerEpoch     = -1
	maxRecordsPreAlloc  = 4096
	minEncodedRecordLen = 7
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Compression is the codec of a batch's records (attribute bits 0-2).
type Compression int8

// Kafka's compression codecs.
const (
	CompressionNone   Compression = 0
	CompressionGzip   Compression = 1
	CompressionSnappy Compression = 2
	CompressionLZ4    Compression = 3
	CompressionZstd   Compression = 4
)

func (c Compression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionGzip:
		return "gzip"
	case CompressionSnappy:
		return "snappy"
	case CompressionLZ4:
		return "lz4"
	case CompressionZstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", int8(c))
}

// Header is the fixed 61-byte header of a v2 record batch.
type Header struct {
	BaseOffset           int64
	BatchLength          int32 // bytes after the batchLength field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32 // CRC-32C of bytes 21..end
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64 // ms
	MaxTimestamp         int64 // ms
	ProducerID           int64 // -1: not idempotent
	ProducerEpoch        int16
	BaseSequence         int32 // -1: not idempotent
	RecordCount          int32
}

// Size is the batch's total size in bytes.
func (h *Header) Size() int { return LengthFieldEnd + int(h.BatchLength) }

// LastOffset is the offset of the batch's last record.
func (h *Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset after the batch.
func (h *Header) NextOffset() int64 { return h.LastOffset() + 1 }

// Compression is the records' codec.
func (h *Header) Compression() Compression { return Compression(h.Attributes & compressionMask) }

// LogAppendTime reports whether the timestamp type is LogAppendTime
// (MaxTimestamp is then every record's timestamp).
func (h *Header) LogAppendTime() bool { return h.Attributes&timestampTypeBit != 0 }

// Transactional reports whether the batch belongs to a transaction.
func (h *Header) Transactional() bool { return h.Attributes&transactionalBit != 0 }

// Control reports whether the batch holds control records (transaction
// markers).
func (h *Header) Control() bool { return h.Attributes&controlBit != 0 }

// HasDeleteHorizon reports attribute bit 6 (set by compaction).
func (h *Header) HasDeleteHorizon() bool { return h.Attributes&deleteHorizonBit != 0 }

// Idempotent reports whether the batch carries a producer id.
func (h *Header) Idempotent() bool { return h.ProducerID >= 0 }

// LastSequence is the sequence number of the batch's last record, with
// Kafka's wraparound (DefaultRecordBatch.incrementSequence): after
// MaxInt32 comes 0.
func (h *Header) LastSequence() int32 {
	if h.BaseSequence == noSequence {
		return noSequence
	}
	return IncrementSequence(h.BaseSequence, h.LastOffsetDelta)
}

// IncrementSequence adds delta to seq, wrapping from MaxInt32 to 0.
func IncrementSequence(seq, delta int32) int32 {
	if seq > math.MaxInt32-delta {
		return seq - (math.MaxInt32 - delta) - 1
	}
	return seq + delta
}

// ParseHeader decodes the fixed header at the start of b. It checks the
// magic byte and that batchLength is at least MinBatchLength, not the CRC
// nor that b holds the whole batch.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) <= magicOffset {
		return h, ErrTruncated
	}
	if m := int8(b[magicOffset]); m != Magic {
		if m == 0 || m == 1 {
			return h, fmt.Errorf("%w: magic %d", ErrUnsupportedMagic, m)
		}
		return h, fmt.Errorf("%w: magic %d", ErrCorrupt, m)
	}
	if len(b) < HeaderSize {
		return h, ErrTruncated
	}
	h.BaseOffset = int64(binary.BigEndian.Uint64(b[baseOffsetOffset:]))
	h.BatchLength = int32(binary.BigEndian.Uint32(b[batchLengthOffset:]))
	h.PartitionLeaderEpoch = int32(binary.BigEndian.Uint32(b[partitionLeaderEpochOffset:]))
	h.Magic = int8(b[magicOffset])
	h.CRC = binary.BigEndian.Uint32(b[crcOffset:])
	h.Attributes = int16(binary.BigEndian.Uint16(b[attributesOffset:]))
	h.LastOffsetDelta = int32(binary.BigEndian.Uint32(b[lastOffsetDeltaOffset:]))
	h.BaseTimestamp = int64(binary.BigEndian.Uint64(b[baseTimestampOffset:]))
	h.MaxTimestamp = int64(binary.BigEndian.Uint64(b[maxTimestampOffset:]))
	h.ProducerID = int64(binary.BigEndian.Uint64(b[producerIDOffset:]))
	h.ProducerEpoch = int16(binary.BigEndian.Uint16(b[producerEpochOffset:]))
	h.BaseSequence = int32(binary.BigEndian.Uint32(b[baseSequenceOffset:]))
	h.RecordCount = int32(binary.BigEndian.Uint32(b[recordCountOffset:]))
	if h.BatchLength < MinBatchLength {
		return h, fmt.Errorf("%w: batch length %d", ErrCorrupt, h.BatchLength)
	}
	return h, nil
}

// Validate checks a whole batch: b must be exactly one batch. It checks
// the header, the length, the CRC-32C, and that the record count fits the
// last offset delta (compaction may leave lastOffsetDelta larger than
// recordCount-1, never smaller). It does not decompress.
func Validate(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Size() != len(b) {
		if h.Size() > len(b) {
			return h, ErrTruncated
		}
		return h, fmt.Errorf("%w: batch length %d, have %d bytes", ErrCorrupt, h.BatchLength, len(b))
	}
	if c := crc32.Checksum(b[attributesOffset:], castagnoli); c != h.CRC {
		return h, fmt.Errorf("%w: crc %08x, computed %08x", ErrCorrupt, h.CRC, c)
	}
	if h.RecordCount < 0 || h.LastOffsetDelta < 0 || h.LastOffsetDelta < h.RecordCount-1 {
		return h, fmt.Errorf("%w: %d records, last offset delta %d", ErrCorrupt, h.RecordCount, h.LastOffsetDelta)
	}
	return h, nil
}

// Next splits the first batch off b without validating the CRC: it
// returns the batch, its header and the rest of b.
func Next(b []byte) (batch []byte, h Header, rest []byte, err error) {
	h, err = ParseHeader(b)
	if err != nil {
		return nil, h, b, err
	}
	if h.Size() > len(b) {
		return nil, h, b, ErrTruncated
	}
	return b[:h.Size()], h, b[h.Size():], nil
}

// Split walks b, a sequence of batches as a producer sends them, and
// calls fn with each batch (a sub-slice of b) and its header after
// Validate accepted it. It stops at the first error, of Validate or of fn.
// An empty b is not an error.
func Split(b []byte, fn func(batch []byte, h Header) error) error {
	for len(b) > 0 {
		batch, _, rest, err := Next(b)
		if err != nil {
			return err
		}
		h, err := Validate(batch)
		if err != nil {
			return err
		}
		if err := fn(batch, h); err != nil {
			return err
		}
		b = rest
	}
	return nil
}

// SetBaseOffset rewrites the base offset of the batch at the start of b
// (outside the CRC).
func SetBaseOffset(b []byte, offset int64) {
	binary.BigEndian.PutUint64(b[baseOffsetOffset:], uint64(offset))
}

// SetPartitionLeaderEpoch rewrites the partition leader epoch of the batch
// at the start of b (outside the CRC).
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[partitionLeaderEpochOffset:], uint32(epoch))
}

// SetLogAppendTime turns a whole batch into a LogAppendTime batch with
// timestamp ts (ms), as Kafka's LogValidator does for topics with
// message.timestamp.type=LogAppendTime: it sets attribute bit 3 and
// maxTimestamp and recomputes the CRC.
func SetLogAppendTime(b []byte, ts int64) {
	attrs := binary.BigEndian.Uint16(b[attributesOffset:])
	binary.BigEndian.PutUint16(b[attributesOffset:], attrs|timestampTypeBit)
	binary.BigEndian.PutUint64(b[maxTimestampOffset:], uint64(ts))
	binary.BigEndian.PutUint32(b[crcOffset:], crc32.Checksum(b[attributesOffset:], castagnoli))
}

// CheckProduced applies the stricter rules for batches coming from a
// producer: at least one record, and exactly lastOffsetDelta+1 of them.
func (h *Header) CheckProduced() error {
	if h.RecordCount <= 0 || int64(h.LastOffsetDelta) != int64(h.RecordCount)-1 {
		return fmt.Errorf("%w: %d records, last offset delta %d", ErrCorrupt, h.RecordCount, h.LastOffsetDelta)
	}
	return nil
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// InflatedWeight is how many times its wire size WorkEstimate counts a
// compressed batch: its records are inflated and walked, and producer data
// commonly compresses 4-10 times.
const InflatedWeight = 8

// WorkEstimate is a cheap guess, from the first batch's header alone, of
// the record bytes validating b walks: its size, or InflatedWeight times
// it when the batch is compressed (its inflated size is not known until
// it is inflated). It only decides how work is scheduled: nothing in b is
// trusted or checked.
func WorkEstimate(b []byte) int {
	if batchCompression(b) != CompressionNone {
		return len(b) * InflatedWeight
	}
	return len(b)
}

// batchCompression is the codec in the attributes of the v2 batch header
// at the start of b, unchecked; CompressionNone when b does not start
// with one.
func batchCompression(b []byte) Compression {
	if len(b) < HeaderSize || b[magicOffset] != Magic {
		return CompressionNone
	}
	return Compression(binary.BigEndian.Uint16(b[attributesOffset:]) & compressionMask)
}
