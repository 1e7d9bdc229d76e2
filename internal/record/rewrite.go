package record

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

// This file serves the log cleaner (internal/storage), which rewrites
// batches it compacted as Kafka's MemoryRecords.filterTo does for magic v2:
// the batch keeps its base offset, last offset delta, producer fields,
// timestamps and codec; only the surviving records are encoded again.

// DeleteHorizon returns the batch's delete horizon (ms) when attribute
// bit 6 is set. The log cleaner sets it on a batch holding tombstones the
// first time it cleans it; baseTimestamp then holds the horizon instead of
// the first record's timestamp (KIP-534), and the record timestamp deltas
// are relative to it.
func (h *Header) DeleteHorizon() (int64, bool) {
	if !h.HasDeleteHorizon() {
		return 0, false
	}
	return h.BaseTimestamp, true
}

// SetDeleteHorizon sets attribute bit 6 and baseTimestamp to ms. Rewrite
// then encodes the record timestamps relative to it.
func (h *Header) SetDeleteHorizon(ms int64) {
	h.Attributes |= deleteHorizonBit
	h.BaseTimestamp = ms
}

// Rewrite encodes recs as one batch with the header fields of h: base
// offset, partition leader epoch, attributes (codec included), last
// offset delta, base and max timestamps, producer id, epoch and base
// sequence are written as given; batch length, record count and CRC are
// computed. Each record keeps its Attributes, OffsetDelta, Key, Value and
// Headers; its timestamp delta is Timestamp-h.BaseTimestamp (for
// LogAppendTime batches the original TimestampDelta is kept, the records'
// timestamps being the batch's MaxTimestamp anyway). orig is the batch
// the records came from: snappy output keeps its framing (raw block or
// xerial).
//
// With no records the result is a header-only batch without compression
// (Kafka's DefaultRecordBatch.writeEmptyHeader), which the cleaner keeps
// when the batch was a producer's last, so its sequence numbers survive.
func Rewrite(orig []byte, h Header, recs []Record) ([]byte, error) {
	xerial := h.Compression() == CompressionSnappy && len(orig) > HeaderSize &&
		bytes.HasPrefix(orig[HeaderSize:], xerialMagic)
	return rewrite(h, recs, xerial, DefaultLevel)
}

// Recompress encodes the records of the batch b (which ValidateRecords
// accepted) again with codec c at level (DefaultLevel: the codec's), as
// Kafka's LogValidator does when a topic's compression.type names another
// codec than the producer's (buildRecordsAndAssignOffsets): offsets,
// timestamps, producer id, epoch, base sequence and the transactional
// flag are kept, so idempotence and transactions see the same batch.
// Snappy is written in xerial framing, which every client reads.
func Recompress(b []byte, c Compression, level int) ([]byte, error) {
	bt, err := DecodeBatch(b)
	if err != nil {
		return nil, err
	}
	h := bt.Header
	h.Attributes = h.Attributes&^compressionMask | int16(c)&compressionMask
	return rewrite(h, bt.Records, true, level)
}

// SetMaxTimestamp rewrites the max timestamp (ms) of the batch at the
// start of b and recomputes the CRC, as Kafka's LogValidator does when a
// producer's header disagrees with its records.
func SetMaxTimestamp(b []byte, ts int64) {
	binary.BigEndian.PutUint64(b[maxTimestampOffset:], uint64(ts))
	binary.BigEndian.PutUint32(b[crcOffset:], crc32.Checksum(b[attributesOffset:], castagnoli))
}

// StripContentChecksum removes the content checksum from the lz4 or zstd
// frame of b, a batch ValidateRecords accepted, and returns the batch: b
// less the 4 bytes of the checksum, with the frame's descriptor, the batch
// length and the CRC rewritten. The validator does not check that
// checksum when it can be removed (lz4: as Kafka does not; zstd: when the
// records are one frame ending with it), and a frame without one decodes
// for every consumer, where a wrong one would make librdkafka and the Go
// clients fail on the partition. The batch CRC-32C still covers every
// stored byte. Any other batch is returned as it is.
func StripContentChecksum(b []byte) []byte {
	switch batchCompression(b) {
	case CompressionLZ4:
		return stripLZ4ContentChecksum(b)
	case CompressionZstd:
		if _, sum := zstdSumFrame(b[HeaderSize:]); sum {
			b[HeaderSize+4] &^= zstdFlagContentSum // the frame descriptor
			return dropTail(b, 4)
		}
	}
	return b
}

// dropTail shortens the batch b by its last n bytes and rewrites its
// length and CRC.
func dropTail(b []byte, n int) []byte {
	b = b[:len(b)-n]
	binary.BigEndian.PutUint32(b[batchLengthOffset:], uint32(len(b)-LengthFieldEnd))
	binary.BigEndian.PutUint32(b[crcOffset:], crc32c(b[attributesOffset:]))
	return b
}

func rewrite(h Header, recs []Record, xerial bool, level int) ([]byte, error) {
	var body []byte
	if len(recs) == 0 {
		h.Attributes &^= compressionMask
	} else {
		var rec []byte
		for i := range recs {
			r := &recs[i]
			delta := r.Timestamp - h.BaseTimestamp
			if h.LogAppendTime() {
				delta = r.TimestampDelta
			}
			rec = rec[:0]
			rec = append(rec, byte(r.Attributes))
			rec = binary.AppendVarint(rec, delta)
			rec = binary.AppendVarint(rec, int64(r.OffsetDelta))
			rec = appendBytes(rec, r.Key)
			rec = appendBytes(rec, r.Value)
			rec = binary.AppendVarint(rec, int64(len(r.Headers)))
			for _, rh := range r.Headers {
				rec = binary.AppendVarint(rec, int64(len(rh.Key)))
				rec = append(rec, rh.Key...)
				rec = appendBytes(rec, rh.Value)
			}
			body = binary.AppendVarint(body, int64(len(rec)))
			body = append(body, rec...)
		}
		var err error
		if body, err = compressLevel(h.Compression(), xerial, level, body); err != nil {
			return nil, err
		}
	}
	b := make([]byte, HeaderSize, HeaderSize+len(body))
	binary.BigEndian.PutUint64(b[baseOffsetOffset:], uint64(h.BaseOffset))
	binary.BigEndian.PutUint32(b[batchLengthOffset:], uint32(HeaderSize-LengthFieldEnd+len(body)))
	binary.BigEndian.PutUint32(b[partitionLeaderEpochOffset:], uint32(h.PartitionLeaderEpoch))
	b[magicOffset] = Magic
	binary.BigEndian.PutUint16(b[attributesOffset:], uint16(h.Attributes))
	binary.BigEndian.PutUint32(b[lastOffsetDeltaOffset:], uint32(h.LastOffsetDelta))
	binary.BigEndian.PutUint64(b[baseTimestampOffset:], uint64(h.BaseTimestamp))
	binary.BigEndian.PutUint64(b[maxTimestampOffset:], uint64(h.MaxTimestamp))
	binary.BigEndian.PutUint64(b[producerIDOffset:], uint64(h.ProducerID))
	binary.BigEndian.PutUint16(b[producerEpochOffset:], uint16(h.ProducerEpoch))
	binary.BigEndian.PutUint32(b[baseSequenceOffset:], uint32(h.BaseSequence))
	binary.BigEndian.PutUint32(b[recordCountOffset:], uint32(len(recs)))
	b = append(b, body...)
	binary.BigEndian.PutUint32(b[crcOffset:], crc32.Checksum(b[attributesOffset:], castagnoli))
	return b, nil
}
