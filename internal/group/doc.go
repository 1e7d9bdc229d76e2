// Package group is the broker's classic consumer-group coordinator: the
// JoinGroup / SyncGroup / Heartbeat / LeaveGroup rebalance protocol every
// existing Kafka client speaks, committed offsets (OffsetCommit /
// OffsetFetch / OffsetDelete) and the group admin APIs (ListGroups,
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
//	  value (we write version 3):
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
// OffsetCommit holds all its offsets, a DeleteGroups the tombstones of the
// groups and their offsets. Group metadata is written when a rebalance
// completes (the leader's SyncGroup, before it is answered), when a group
// becomes Empty, and when a static member replaces its old member id.
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
//
// # Not implemented
//
// Offset retention and expiry (offsets.retention.minutes), removal of Empty
// groups without offsets, transactional offset commits (TxnOffsetCommit,
// RequireStable always succeeds), KIP-848 consumer groups
// (ConsumerGroupHeartbeat) and topic ids in OffsetCommit/OffsetFetch v10.
package group
