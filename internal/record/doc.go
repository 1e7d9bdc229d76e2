// Package record encodes and decodes Kafka record batches (message format
// v2, "magic 2"), the unit the broker stores byte-for-byte and serves to
// consumers.
//
// The produce path walks a produce payload batch by batch with Split,
// which validates each header (length, magic, CRC-32C), then checks every
// record with ValidateRecords (validate.go), Kafka's LogValidator: record
// count against the records, each record's length, varints, offset delta
// (0..count-1), key/value/header lengths, no trailing bytes, keys on
// compacted topics, CreateTime timestamp bounds. ValidateRecords never
// materialises records: an uncompressed batch is walked in place with no
// allocation, a compressed one is streamed through a pooled decompressor
// into a fixed 64 KiB window, and its decompressed size is capped
// (ValidateOptions.MaxDecompressedBytes), so a compression bomb costs
// neither memory nor much CPU. Errors separate ErrCorrupt (cannot be
// decoded: CORRUPT_MESSAGE) from ErrInvalidRecord (decodes, but breaks the
// format or a rule: INVALID_RECORD) and ErrInvalidTimestamp.
// SetBaseOffset / SetPartitionLeaderEpoch rewrite the two fields that lie
// outside the CRC; SetMaxTimestamp and SetLogAppendTime rewrite inside it
// and recompute it; Recompress re-encodes a batch in another codec
// (topic compression.type).
//
// Readers that need the records themselves (console, compaction, CLI
// debugging, OffsetForTimestamp) use DecodeBatch, which decompresses gzip,
// snappy (raw block and xerial framing), lz4 (frame format) and zstd, up
// to MaxDecompressedSize (raised by RaiseDecompressionLimit). Build
// creates batches, mainly for tests.
//
// # Batch layout (all integers big-endian)
//
//	offset  size  field
//	------  ----  ----------------------------------------------------------
//	     0     8  baseOffset            rewritten by the broker
//	     8     4  batchLength           bytes after this field (total - 12)
//	    12     4  partitionLeaderEpoch  rewritten by the broker
//	    16     1  magic                 2 (0 and 1: legacy formats, same offset)
//	    17     4  crc                   CRC-32C (Castagnoli) of bytes 21..end
//	    21     2  attributes            see below                 ┐
//	    23     4  lastOffsetDelta       recordCount-1 unless compacted
//	    27     8  baseTimestamp         ms                         │
//	    35     8  maxTimestamp          ms (LogAppendTime: broker's)│ covered
//	    43     8  producerId            -1: not idempotent          │ by crc
//	    51     2  producerEpoch                                     │
//	    53     4  baseSequence          -1: not idempotent          │
//	    57     4  recordCount                                       │
//	    61     …  records               compressed as a whole      ┘
//
//	attributes: bit 0-2 compression (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)
//	            bit 3   timestamp type (1: LogAppendTime)
//	            bit 4   transactional
//	            bit 5   control batch (transaction markers)
//	            bit 6   delete horizon set (compaction)
//
// # Record layout (inside the possibly compressed records section)
//
//	length          varint  bytes after this field
//	attributes      int8    unused, 0
//	timestampDelta  varlong relative to baseTimestamp
//	offsetDelta     varint  relative to baseOffset
//	keyLength       varint  -1: null key
//	key             bytes
//	valueLength     varint  -1: null value (tombstone)
//	value           bytes
//	headerCount     varint
//	  headerKeyLength   varint
//	  headerKey         bytes (UTF-8)
//	  headerValueLength varint  -1: null
//	  headerValue       bytes
//
// Varints are zig-zag encoded like protobuf's sint32/sint64.
//
// Snappy comes in two shapes: librdkafka and franz-go write one raw snappy
// block; the Java client writes xerial framing, an 8-byte magic
// "\x82SNAPPY\x00", two int32 (version, compatible version), then chunks of
// int32 length + raw block.
package record
