// Package storage is the broker's storage engine: partition logs in
// Apache Kafka's on-disk layout, their recovery after a crash, durability
// with group commit, idempotent-producer state, retention, DeleteRecords
// log compaction and the partition side of transactions (last stable
// offset, transaction markers, aborted-transaction index).
//
// # Files
//
//	<log.dir>/
//	  .kafka_cleanshutdown                written by Manager.Close, removed at open
//	  recovery-point-offset-checkpoint    "0\n<n>\n<topic> <partition> <offset>\n"…
//	  replication-offset-checkpoint       same format: high watermarks
//	  log-start-offset-checkpoint         same format: log start offsets
//	  cleaner-offset-checkpoint           same format: end of each compacted log's clean section
//	  <topic>-<partition>/
//	    partition.metadata                "version: 0\ntopic_id: <base64url uuid>\n"
//	    leader-epoch-checkpoint           "0\n<n>\n<epoch> <startOffset>\n"…
//	    00000000000000000000.log          record batches, byte-for-byte
//	    00000000000000000000.index        sparse offset index
//	    00000000000000000000.timeindex    time index
//	    00000000000000000000.txnindex     aborted transactions whose marker is in this segment (only if any)
//	    00000000000000001234.log          next segment: base offset 1234
//	    …
//	    00000000000000001234.snapshot     producer state as of offset 1234
//	    00000000000000000000.log.deleted  (and .index/.timeindex/.txnindex) a deleted segment awaiting file.delete.delay.ms
//	    00000000000000000000.log.cleaned  the cleaner writing a compacted segment
//	    00000000000000000000.log.swap     a compacted segment being swapped in
//
// Checkpoints and snapshots are written to "<name>.tmp", fsynced (except
// snapshots at roll), renamed, and the directory fsynced.
//
// # Segment (.log)
//
// Magic-v2 record batches exactly as producers sent them (see package
// record for the layout), with only baseOffset and partitionLeaderEpoch
// rewritten (both outside the CRC), or, for LogAppendTime topics, the
// timestamp type bit and maxTimestamp rewritten and the CRC recomputed.
// In compacted logs the cleaner rewrites batches: same base offset, last
// offset delta, producer fields, codec and timestamps, fewer records (so
// offsets have gaps), possibly the delete-horizon bit with baseTimestamp
// holding the horizon, or an empty header-only batch kept for a
// producer's sequence numbers.
//
// # Offset index (.index), 8-byte entries, big-endian
//
//	+----------------------+----------------------+
//	| relativeOffset int32 | position int32       |
//	+----------------------+----------------------+
//
// relativeOffset is the last offset of a batch minus the segment's base
// offset; position is the batch's byte position in the .log. An entry is
// added before a batch once more than index.interval.bytes were appended
// since the previous one (Kafka's LogSegment.append), so a lookup finds a
// position at or before the wanted batch and the reader walks forward
// over batch headers. Offsets and positions strictly increase.
//
// # Time index (.timeindex), 12-byte entries, big-endian
//
//	+-----------------+----------------------+
//	| timestamp int64 | relativeOffset int32 |
//	+-----------------+----------------------+
//
// Written together with offset-index entries: the largest batch
// maxTimestamp seen in the segment so far and that batch's last offset,
// only when the timestamp grew. A final entry is added when the segment
// rolls and at close, so the last entry is the segment's max timestamp.
//
// # Transaction index (.txnindex), 34-byte entries, big-endian (Kafka's)
//
//	+---------------+------------------+-------------------+------------------+------------------------+
//	| version int16 | producerId int64 | firstOffset int64 | lastOffset int64 | lastStableOffset int64 |
//	+---------------+------------------+-------------------+------------------+------------------------+
//
// One entry per aborted transaction, appended when its abort marker is
// written, in the file of the segment holding the marker: version 0,
// firstOffset the transaction's first batch on this partition, lastOffset
// the marker's offset, lastStableOffset the first offset of the earliest
// other open transaction at that moment, else lastOffset+1. The file is
// created with the segment's first abort; a missing file means none. It
// is mirrored in memory, fdatasynced with the log when it has new
// entries, completed by the producer-state replay for the segments
// recovery scans (rebuilt whole if it does not load), renamed and
// deleted with its segment, and kept as is by the cleaner (offsets and
// markers do not move).
//
// # Producer snapshot (<offset>.snapshot), big-endian, our own format
//
//	+---------------+------------+-------------+
//	| version int16 | crc uint32 | count int32 |   crc: CRC-32C of count..end
//	+---------------+------------+-------------+
//	count × +------------------+-------------+-----------------------------+
//	        | producerId int64 | epoch int16 | currentTxnFirstOffset int64 |   -1: no open transaction
//	        +------------------+-------------+-----------------------------+
//	        +------------------------+---------------------+----------+
//	        | coordinatorEpoch int32 | lastTimestamp int64 | n int8   |   n <= 5
//	        +------------------------+---------------------+----------+
//	        n × +---------------+--------------+-------------------+------------------+
//	            | firstSeq int32| lastSeq int32| firstOffset int64 | lastOffset int64 |
//	            +---------------+--------------+-------------------+------------------+
//
// Version 2; version 1 (no currentTxnFirstOffset, coordinatorEpoch,
// lastTimestamp) is still read. The file holds the state after every
// batch below <offset>. Snapshots are written at segment roll (not
// fsynced), by Manager.Checkpoint when the state changed, and at close
// (fsynced); the two newest are kept. At open the newest snapshot that
// decodes is loaded (but one at or below the first segment whose
// transaction index is rebuilt whole) and the batch headers after it are
// replayed, with the marker record of each control batch; without one
// the whole log is replayed (headers and markers only, no
// decompression).
//
// See docs/storage.md for recovery, durability, file descriptors (at most
// one per segment, through a bounded cache), the disk-full state and the
// lock order.
package storage
