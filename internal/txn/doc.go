// Package txn is the transaction coordinator (KIP-98): Kafka's
// TransactionCoordinator and TransactionStateManager. It keeps the state of
// every transactional id that maps to a partition of __transaction_state
// this node leads, persists each state change to that partition before
// answering, replays it on load, drives the markers that end transactions
// on the data partitions, aborts transactions that outlive their timeout
// and expires idle transactional ids.
//
// # State machine
//
// The states are Kafka's (kmsg.TransactionState; the numbers are the ones
// stored in the log):
//
//	Empty ──AddPartitions──▶ Ongoing ──EndTxn(commit)──▶ PrepareCommit ──markers──▶ CompleteCommit
//	  ▲                        │  └────EndTxn(abort)/timeout/fence──▶ PrepareAbort ──markers──▶ CompleteAbort
//	  └──InitProducerID────────┴───────────────────────────────────────────────────────────────────┘
//
// InitProducerID bumps the producer epoch (or hands out a new producer id
// once the epoch is exhausted) from Empty, CompleteCommit or CompleteAbort.
// From Ongoing it first fences the current producer: the epoch is bumped,
// the open transaction is aborted with the bumped epoch (Kafka's transient
// PrepareEpochFence), and the caller is told CONCURRENT_TRANSACTIONS so it
// retries once the abort completed. Dead is what an expired id becomes in
// the moment its tombstone is written.
//
// # Persistence
//
// __transaction_state is a compacted topic; each record's key and value
// are Kafka's (kmsg.TxnMetadataKey and kmsg.TxnMetadataValue), so a log
// written by Samsa reads in Kafka's tools and the other way round:
//
//	key   (version 0): int16 version | string transactional_id
//	value (version 0): int16 version | int64 producer_id | int16 producer_epoch |
//	                   int32 timeout_ms | int8 state |
//	                   [topic string, [partition int32]] |
//	                   int64 last_update_timestamp_ms | int64 start_timestamp_ms
//
// A null value (tombstone) removes the id. Every transition is written as
// one uncompressed batch (acks=all) before the request is answered; on
// load the partition is read from its log start offset to its high
// watermark, the last record of each id wins, and transactions found in
// PrepareCommit or PrepareAbort have their markers written again.
//
// # Concurrency
//
// Each loaded partition has a mutex over its transactional ids. A request
// decides its transition under the mutex and marks the id pending, writes
// the record without the mutex, and installs the new state under it
// again; another request for a pending id answers CONCURRENT_TRANSACTIONS,
// as Kafka's TransactionMetadata.pendingState does. Marker writing runs on
// a goroutine per ending transaction, owned by the coordinator (Close
// waits for it).
//
// Lock order: a partition's mu, then the coordinator's mu (taken briefly
// to register background work); never the other way round. No lock is
// held while appending to __transaction_state, allocating a producer id
// or writing markers.
package txn
