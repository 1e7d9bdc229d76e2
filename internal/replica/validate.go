package replica

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"samsa/internal/config"
	"samsa/internal/record"
	"samsa/internal/storage"
)

// This file is the leader's validation of produced records, Kafka's
// UnifiedLog.analyzeAndValidateRecords and LogValidator in one pass over
// the request's bytes: every batch's header (size, CRC, offsets, count,
// producer fields), then every record of it (record.ValidateRecords, a
// streaming walk that decompresses through a bounded window), then the
// topic's compression.type. Nothing is stored unless every batch passes.

// compressionConfig resolves a topic's compression.type and the level of
// that codec (record.DefaultLevel when the codec has none).
func compressionConfig(cfg *config.Config, overrides map[string]string) (string, int) {
	codec := strings.ToLower(cfg.TopicValue(overrides, "compression.type"))
	key := ""
	switch codec {
	case "gzip":
		key = "compression.gzip.level"
	case "lz4":
		key = "compression.lz4.level"
	case "zstd":
		key = "compression.zstd.level"
	}
	level := record.DefaultLevel
	if key != "" {
		if n, err := strconv.Atoi(cfg.TopicValue(overrides, key)); err == nil {
			level = n
		}
	}
	return codec, level
}

// Auto bound of message.max.decompressed.bytes (-1): the larger of
// autoDecompressedFloor and autoDecompressedRatio times the topic's
// max.message.bytes, at most record.MaxDecompressedSize (the bound of
// every reader, so what was accepted can be read back).
const (
	autoDecompressedFloor = 64 << 20
	autoDecompressedRatio = 32
)

// maxDecompressedBytes resolves Samsa's message.max.decompressed.bytes
// for a topic whose max.message.bytes is maxMessageBytes.
func maxDecompressedBytes(cfg *config.Config, maxMessageBytes int32) int64 {
	if n := explicitMaxDecompressedBytes(cfg); n > 0 {
		return n
	}
	return min(max(autoDecompressedFloor, autoDecompressedRatio*int64(maxMessageBytes)), record.MaxDecompressedSize)
}

// explicitMaxDecompressedBytes is message.max.decompressed.bytes when set
// to a positive value, else 0.
func explicitMaxDecompressedBytes(cfg *config.Config) int64 {
	if cfg == nil {
		return 0
	}
	v, _ := cfg.Get("message.max.decompressed.bytes")
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
		return n
	}
	return 0
}

// targetCodec is the codec compression.type asks batches to be stored
// in; ok is false for "producer" (keep the producer's).
func targetCodec(compressionType string) (c record.Compression, ok bool) {
	switch compressionType {
	case "uncompressed":
		return record.CompressionNone, true
	case "gzip":
		return record.CompressionGzip, true
	case "snappy":
		return record.CompressionSnappy, true
	case "lz4":
		return record.CompressionLZ4, true
	case "zstd":
		return record.CompressionZstd, true
	}
	return 0, false
}

// validateProduce checks records, a produce request's bytes for one
// partition, against the log config cfg at time now (ms). It may rewrite
// batch headers in place (a max timestamp that disagrees with the
// records) and returns the bytes to append: records itself (shortened by
// the content checksum of its lz4 batch, rewritten in place), or new
// bytes when compression.type made the broker recompress or records holds
// several batches to strip. Errors wrap
// storage's sentinels (CORRUPT_MESSAGE, INVALID_RECORD, INVALID_TIMESTAMP,
// MESSAGE_TOO_LARGE, UNSUPPORTED_FOR_MESSAGE_FORMAT).
func validateProduce(records []byte, cfg *storage.Config, now int64) ([]byte, error) {
	o := record.ValidateOptions{
		NowMs:                now,
		CreateTime:           cfg.MessageTimestampType != storage.TimestampLogAppendTime,
		TimestampBeforeMaxMs: cfg.MessageTimestampBeforeMaxMs,
		TimestampAfterMaxMs:  cfg.MessageTimestampAfterMaxMs,
		RequireKeys:          HasCleanupPolicy(cfg.CleanupPolicy, storage.CleanupPolicyCompact),
		MaxDecompressedBytes: cfg.MaxDecompressedBytes,
	}
	target, recompress := targetCodec(cfg.CompressionType)
	rewrite := false
	// Compressed batches kept as sent lose their content checksum when
	// their codec has one the validator skipped (lz4, zstd: see
	// record.StripContentChecksum); single: records is one batch (as a
	// Produce v3+ partition is), shortened in place.
	strip, single := false, false
	err := record.Split(records, func(b []byte, h record.Header) error {
		if len(b) > int(cfg.MaxMessageBytes) {
			return fmt.Errorf("%w: batch of %d bytes > max.message.bytes %d", storage.ErrMessageTooLarge, len(b), cfg.MaxMessageBytes)
		}
		if err := checkProducedHeader(&h); err != nil {
			return err
		}
		maxTs, err := record.ValidateRecords(b, &h, &o)
		if err != nil {
			return err
		}
		if recompress && h.Compression() != target {
			rewrite = true
			return nil
		}
		if !h.LogAppendTime() && maxTs != h.MaxTimestamp {
			record.SetMaxTimestamp(b, maxTs)
		}
		if h.Compression() != record.CompressionNone {
			strip, single = true, len(b) == len(records)
		}
		return nil
	})
	if err != nil {
		return nil, produceError(err)
	}
	if !rewrite && (!strip || single) {
		if strip {
			records = record.StripContentChecksum(records)
		}
		return records, nil
	}
	out := make([]byte, 0, len(records))
	err = record.Split(records, func(b []byte, h record.Header) error {
		if !recompress || h.Compression() == target {
			out = append(out, record.StripContentChecksum(b)...)
			return nil
		}
		nb, err := record.Recompress(b, target, cfg.CompressionLevel)
		if err != nil {
			return err
		}
		out = append(out, nb...)
		return nil
	})
	if err != nil {
		return nil, produceError(err)
	}
	return out, nil
}

// checkProducedHeader applies Kafka's rules for a client's batch header
// (LogValidator.validateBatch and analyzeAndValidateRecords): base offset
// 0, at least one record, lastOffsetDelta = count-1, no control batch, a
// sequence when there is a producer id. All are INVALID_RECORD.
func checkProducedHeader(h *record.Header) error {
	switch {
	case h.BaseOffset != 0:
		return fmt.Errorf("%w: batch base offset %d, producers must send 0", storage.ErrInvalidRecord, h.BaseOffset)
	case h.RecordCount <= 0:
		return fmt.Errorf("%w: record count %d", storage.ErrInvalidRecord, h.RecordCount)
	case int64(h.LastOffsetDelta) != int64(h.RecordCount)-1:
		return fmt.Errorf("%w: %d records but last offset delta %d", storage.ErrInvalidRecord, h.RecordCount, h.LastOffsetDelta)
	case h.Control():
		return fmt.Errorf("%w: clients are not allowed to write control records", storage.ErrInvalidRecord)
	case h.ProducerID >= 0 && h.BaseSequence < 0:
		return fmt.Errorf("%w: idempotent batch without a sequence", storage.ErrInvalidRecord)
	}
	return nil
}

// produceError maps the record package's errors to storage's sentinels,
// which internal/api maps to Kafka codes.
func produceError(err error) error {
	switch {
	case errors.Is(err, record.ErrUnsupportedMagic):
		return fmt.Errorf("%w: %v", storage.ErrUnsupportedMagic, err)
	case errors.Is(err, record.ErrInvalidTimestamp):
		return fmt.Errorf("%w: %v", storage.ErrInvalidTimestamp, err)
	case errors.Is(err, record.ErrInvalidRecord):
		return fmt.Errorf("%w: %v", storage.ErrInvalidRecord, err)
	case errors.Is(err, record.ErrCorrupt):
		return fmt.Errorf("%w: %v", storage.ErrCorruptMessage, err)
	}
	return err
}

// nowMs is the clock of timestamp validation.
func nowMs() int64 { return time.Now().UnixMilli() }
