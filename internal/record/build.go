package record

import (
	"encoding/binary"
	"hash/crc32"
)

// BuildOptions describe a batch to Build. The zero value is a plain,
// uncompressed, non-idempotent CreateTime batch at base offset 0.
type BuildOptions struct {
	BaseOffset           int64
	PartitionLeaderEpoch int32
	Compression          Compression
	// SnappyXerial selects the Java client's xerial framing for snappy.
	SnappyXerial bool
	// Idempotent writes ProducerID, ProducerEpoch and BaseSequence;
	// otherwise they are -1.
	Idempotent    bool
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	Transactional bool
	Control       bool
	// LogAppendTime sets the timestamp type bit; MaxTimestamp is then
	// LogAppendTimestamp.
	LogAppendTime      bool
	LogAppendTimestamp int64
}

// Build encodes records as one v2 batch. Each record's Timestamp (ms) is
// used; Offset, OffsetDelta and TimestampDelta are computed (offset deltas
// are 0..n-1). Key, Value and header values keep nil as null.
func Build(o BuildOptions, recs []Record) ([]byte, error) {
	var baseTs, maxTs int64 = -1, -1
	if len(recs) > 0 {
		baseTs = recs[0].Timestamp
		maxTs = baseTs
		for _, r := range recs {
			maxTs = max(maxTs, r.Timestamp)
		}
	}
	var body []byte
	var rec []byte
	for i, r := range recs {
		rec = rec[:0]
		rec = append(rec, byte(r.Attributes))
		rec = binary.AppendVarint(rec, r.Timestamp-baseTs)
		rec = binary.AppendVarint(rec, int64(i))
		rec = appendBytes(rec, r.Key)
		rec = appendBytes(rec, r.Value)
		rec = binary.AppendVarint(rec, int64(len(r.Headers)))
		for _, h := range r.Headers {
			rec = binary.AppendVarint(rec, int64(len(h.Key)))
			rec = append(rec, h.Key...)
			rec = appendBytes(rec, h.Value)
		}
		body = binary.AppendVarint(body, int64(len(rec)))
		body = append(body, rec...)
	}
	body, err := compress(o.Compression, o.SnappyXerial, body)
	if err != nil {
		return nil, err
	}
	attrs := uint16(o.Compression) & compressionMask
	if o.LogAppendTime {
		attrs |= timestampTypeBit
		maxTs = o.LogAppendTimestamp
	}
	if o.Transactional {
		attrs |= transactionalBit
	}
	if o.Control {
		attrs |= controlBit
	}
	pid, epoch, seq := int64(noProducerID), int16(noProducerEpoch), int32(noSequence)
	if o.Idempotent {
		pid, epoch, seq = o.ProducerID, o.ProducerEpoch, o.BaseSequence
	}
	lastDelta := int32(len(recs) - 1)
	if lastDelta < 0 {
		lastDelta = 0
	}
	b := make([]byte, HeaderSize, HeaderSize+len(body))
	binary.BigEndian.PutUint64(b[baseOffsetOffset:], uint64(o.BaseOffset))
	binary.BigEndian.PutUint32(b[batchLengthOffset:], uint32(HeaderSize-LengthFieldEnd+len(body)))
	binary.BigEndian.PutUint32(b[partitionLeaderEpochOffset:], uint32(o.PartitionLeaderEpoch))
	b[magicOffset] = Magic
	binary.BigEndian.PutUint16(b[attributesOffset:], attrs)
	binary.BigEndian.PutUint32(b[lastOffsetDeltaOffset:], uint32(lastDelta))
	binary.BigEndian.PutUint64(b[baseTimestampOffset:], uint64(baseTs))
	binary.BigEndian.PutUint64(b[maxTimestampOffset:], uint64(maxTs))
	binary.BigEndian.PutUint64(b[producerIDOffset:], uint64(pid))
	binary.BigEndian.PutUint16(b[producerEpochOffset:], uint16(epoch))
	binary.BigEndian.PutUint32(b[baseSequenceOffset:], uint32(seq))
	binary.BigEndian.PutUint32(b[recordCountOffset:], uint32(len(recs)))
	b = append(b, body...)
	binary.BigEndian.PutUint32(b[crcOffset:], crc32.Checksum(b[attributesOffset:], castagnoli))
	return b, nil
}

func appendBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	b = binary.AppendVarint(b, int64(len(v)))
	return append(b, v...)
}
