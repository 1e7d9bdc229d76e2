// Package group is the broker's classic consumer-group coordinator: the
// JoinGroup / SyncGroup / Heartbeat / LeaveGroup rebalance protocol every
// existing Kafka client speaks, committed offsets (OffsetCommit /
// OffsetFetch / OffsetDelete), transactional offsets (TxnOffsetCommit) and
// the group admin APIs (ListGroups,
// DescribeGroups, DeleteGroups). It follows Apache Kafka 4.x's classic group
// (ClassicGroup and GroupMetadataManager in the group-coordinator module).
//
// A node coordinates the groups of the __consumer_offsets partitions it leads:
// Group g lives in partition PartitionFor(g, offsets.topic.num.partitions).
// The server calls Load when this node becomes leader of such a partition and
// Unload when it stops being one. Load replays the partition into memory; from
// then on every change that must survive a restart is appended to the
// partition (and committed, acks=all) before it is acknowledged.
//
// # Records of __consumer_offsets as we write them
//
// Every record has a key and a value in Kafka's own schemas (kmsg's
// OffsetCommitKey/Value and GroupMetadataKey/Value); the key's leading int16
// says which one it is. A null value is a tombstone: the key is deleted.
// Within a partition the last record of a key wins.
//
//	key version 0|1: committed offset                  (we write 1)
//	  +---------------+--------------+--------------+-----------------+
//	  | version int16 | group string | topic string | partition int32 |
//	  +---------------+--------------+--------------+-----------------+
//	  value (we write version 3, or 1 for a commit with an explicit expiry):
//	  +---------------+--------------+-------------------+-----------------+------------------------+
//	  | version int16 | offset int64 | leaderEpoch int32 | metadata string | commitTimestamp int64  |
//	  +---------------+--------------+-------------------+-----------------+------------------------+
//	  (v1 adds expireTimestamp int64, v0-v2 lack leaderEpoch, v4 is flexible
//	  with a tagged topic id; all are read)
//
//	key version 2: group metadata
//	  +---------------+--------------+
//	  | version int16 | group string |
//	  +---------------+--------------+
//	  value (we write version 3):
//	  +---------------+---------------------+------------------+-----------------+----------------+
//	  | version int16 | protocolType string | generation int32 | protocol string?| leader string? |
//	  +---------------+---------------------+------------------+-----------------+----------------+
//	  +------------------------------+---------------------------+
//	  | currentStateTimestamp int64  | members [array of member] |
//	  +------------------------------+---------------------------+
//	  member: memberId string, groupInstanceId string?, clientId string,
//	          clientHost string, rebalanceTimeout int32, sessionTimeout int32,
//	          subscription bytes, assignment bytes
//
//	key version 3 and above (KIP-848 consumer groups, share groups, ...):
//	  skipped at load; we never write them.
//
// Strings are int16-length prefixed, "string?" may be null (length -1),
// bytes are int32-length prefixed; all integers are big-endian.
//
// One request writes one uncompressed record batch (producer id -1): an
// OffsetCommit holds all its offsets (a TxnOffsetCommit too, in a
// transactional batch with the producer's id and epoch, see below), a DeleteGroups the tombstones of the
// groups and their offsets. Group metadata is written when a rebalance
// completes (the leader's SyncGroup, before it is answered), when a group
// becomes Empty, and when a static member replaces its old member id. An
// offset expiry sweep writes one batch of tombstones per partition.
//
// # Replay
//
// Load reads from the log start offset to the log end offset (not the high
// watermark: see coordinator.Replay) and keeps the last record of each key. The topic is compacted, so the replay expects
// offset gaps between and inside batches, empty batches, tombstones whose
// key has no earlier record (its value was cleaned away), and any value
// version (0-4 of both schemas) in any order; a record that does not decode
// is logged and skipped, the rest of the partition still loads. A flexible
// value announcing more tagged fields than it has bytes is rejected before
// kmsg reads it (kmsg would loop once per announced field).
//
// # Transactional offsets (KIP-98, KIP-447)
//
// TxnOffsetCommit writes ordinary offset records, but in a transactional
// batch (transactional attribute bit, the client's producer id and epoch;
// the coordinator numbers each producer's batch sequences as the log's
// producer state expects, where Kafka writes 0 and skips the check). They
// stay pending per producer id, invisible to OffsetFetch (UNSTABLE_OFFSET_COMMIT
// with RequireStable), until the transaction marker, a control batch of the
// same producer:
//
//	control record key: version int16 (0) | type int16 (0 abort, 1 commit)
//
// Commit makes each pending offset committed unless the committed one was
// written later in the log (a plain commit after the transactional one
// wins: offsets remember their record's log offset); abort drops them. A
// tombstone of a partition deletes its pending offsets too. Live, the
// transaction coordinator reports each marker it wrote with CompleteTxn;
// on load the replay applies the markers it reads, and a transaction still
// open at the end of the log stays pending. The replay does not need the
// transactional records to be there: compaction may have removed them.
//
// # Offset expiry (KIP-211)
//
// Every offsets.retention.check.interval.ms (Config.OffsetsRetentionCheckInterval,
// default 10 min) each loaded partition sweeps its groups, as Kafka's
// GroupMetadataManager.cleanupGroupMetadata does; Coordinator.ExpireOffsetsNow
// runs the sweep at once. With retention = offsets.retention.minutes
// (Config.OffsetsRetention, default 7 days):
//
//   - an Empty group with a protocol type: all its offsets expire retention
//     after the group became Empty (the current state timestamp of its
//     metadata; the commit timestamp when a version-0/1 value has none);
//   - a Stable "consumer" group: offsets of topics no member subscribes to
//     expire retention after their commit; subscribed topics never do;
//   - a group without protocol type (standalone commits, never a member):
//     each offset expires retention after its commit;
//   - other groups (rebalancing, Stable with another protocol type): none.
//
// An offset committed with a retention time (OffsetCommit v2-v4) expires at
// its explicit expire timestamp instead. Expired offsets get tombstones,
// written before they leave memory; an Empty group left without offsets
// dies and its metadata gets a tombstone in the same batch, so neither comes
// back at the next load. Timestamps come from Config.Now (tests move it);
// timers run on real time.
//
// # Concurrency
//
// Each loaded partition has a mutex (partition.mu) guarding its groups, and a
// write semaphore (partition.writeSem) that serializes appends so that the
// in-memory state follows the log order: a writer takes writeSem, validates
// and builds its records under mu, appends without mu, and applies the
// result under mu. Lock order: writeSem, then partition.mu, then
// Coordinator.mu; mu is never held across an append or while a request
// waits. JoinGroup and SyncGroup park on a per-member channel (capacity 1)
// that the state machine fills exactly once. Timers (session, rebalance,
// initial delay, pending sync, KIP-394 pending member ids) are
// time.AfterFunc callbacks that take mu; one session timer per member is
// re-armed lazily from its deadline, so a heartbeat allocates nothing.
//
// # Differences from Kafka
//
//   - A group's metadata write after a static member replacement that fails
//     is logged, not rolled back (Kafka reverts the member id).
//   - The leader's assignment is written by a background goroutine; the
//     leader's SyncGroup parks like the followers' until it is applied.
//   - An Empty group handing out KIP-394 member ids does not die at a sweep
//     (Kafka would remove it and make the joining member start over). A
//     member that joins while its Empty group's tombstone is being written
//     keeps the group: its metadata is written again after the tombstone.
//   - A failed tombstone write keeps the offsets; the next sweep retries.
//   - TxnOffsetCommit is not verified with the transaction coordinator
//     (KIP-890 part 1): an offset of a producer that never called
//     AddOffsetsToTxn stays pending until a marker of that producer comes
//     or the partition moves. CompleteTxn waits for a TxnOffsetCommit being
//     appended; if that append lands after the marker in the log (a client
//     that committed after ending its transaction), memory commits it
//     while a replay keeps it pending.
//
// # Not implemented
//
// TxnOffsetCommit v5+ (KIP-890 part 2), KIP-848 consumer groups
// (ConsumerGroupHeartbeat) and topic ids in OffsetCommit/OffsetFetch v10.
package group
