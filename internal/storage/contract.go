package storage

// This file holds the declarations of the contract between the storage
// engine and its callers (internal/replica, internal/api, internal/server);
// Manager is in manager.go, Log in log.go. Names and signatures are fixed.

import (
	"errors"
	"log/slog"
	"time"
)

// Errors returned by the storage engine. internal/api maps them to Kafka
// error codes with errors.Is.
var (
	ErrCorruptMessage       = errors.New("storage: corrupt message")              // CORRUPT_MESSAGE
	ErrUnsupportedMagic     = errors.New("storage: unsupported message format")   // UNSUPPORTED_FOR_MESSAGE_FORMAT
	ErrMessageTooLarge      = errors.New("storage: message too large")            // MESSAGE_TOO_LARGE
	ErrInvalidRecord        = errors.New("storage: invalid record")               // INVALID_RECORD
	ErrInvalidTimestamp     = errors.New("storage: invalid timestamp")            // INVALID_TIMESTAMP
	ErrOutOfOrderSequence   = errors.New("storage: out of order sequence number") // OUT_OF_ORDER_SEQUENCE_NUMBER
	ErrInvalidProducerEpoch = errors.New("storage: invalid producer epoch")       // INVALID_PRODUCER_EPOCH
	ErrUnknownProducerID    = errors.New("storage: unknown producer id")          // UNKNOWN_PRODUCER_ID
	ErrOffsetOutOfRange     = errors.New("storage: offset out of range")          // OFFSET_OUT_OF_RANGE
	ErrStorage              = errors.New("storage: I/O error, partition offline") // KAFKA_STORAGE_ERROR
	ErrCorruptLog           = errors.New("storage: log corruption")               // KAFKA_STORAGE_ERROR, partition offline
	ErrLogNotFound          = errors.New("storage: no such log")                  // UNKNOWN_TOPIC_OR_PARTITION
	ErrClosed               = errors.New("storage: closed")                       // NOT_LEADER_OR_FOLLOWER / shutting down
	// ErrInvalidTxnState: a non-transactional batch from a producer whose
	// transaction on this partition is still open.
	ErrInvalidTxnState = errors.New("storage: invalid transaction state") // INVALID_TXN_STATE
	// ErrTransactionCoordinatorFenced: a transaction marker from a
	// coordinator epoch older than the last one seen for the producer.
	ErrTransactionCoordinatorFenced = errors.New("storage: transaction coordinator fenced") // TRANSACTION_COORDINATOR_FENCED
	// ErrNotContiguous: a follower append whose first batch starts below
	// the log end offset (Kafka's UnexpectedAppendOffsetException), or
	// whose batches' offsets do not increase (OffsetsOutOfOrderException).
	// Nothing was stored; the fetcher refetches from LogEndOffset or
	// truncates. Never sent to a client (no Kafka code; internal/api maps
	// it to UNKNOWN_SERVER_ERROR if it ever reaches a response).
	ErrNotContiguous = errors.New("storage: follower append not contiguous with the log end offset")
)

// Replication contract (implemented in log_epoch.go, log_follower.go,
// log_truncate.go and retention.go; Kafka's UnifiedLog and
// LeaderEpochFileCache semantics, see docs/storage.md "Follower side"):
//
//	func (l *Log) AppendAsFollower(records []byte) (AppendInfo, error)
//	func (l *Log) TruncateTo(offset int64) error
//	func (l *Log) TruncateFullyAndStartAt(offset int64) error
//	func (l *Log) EndOffsetForEpoch(epoch int32) (foundEpoch int32, endOffset int64)
//	func (l *Log) MaybeIncrementLogStartOffset(offset int64) error

// Config is the per-log configuration: the topic-level Kafka configs that
// the storage engine honours. Zero values are replaced by DefaultConfig's.
type Config struct {
	SegmentBytes         int64  // segment.bytes, default 1 GiB
	SegmentMs            int64  // segment.ms, default 7 days
	SegmentJitterMs      int64  // segment.jitter.ms, default 0: each segment rolls up to this much before segment.ms (a random draw per segment)
	SegmentIndexBytes    int32  // segment.index.bytes, default 10 MiB
	IndexIntervalBytes   int32  // index.interval.bytes, default 4096
	MaxMessageBytes      int32  // max.message.bytes (largest batch), default 1048588
	FlushMessages        int64  // flush.messages, default math.MaxInt64 (never)
	FlushMs              int64  // flush.ms, default math.MaxInt64 (never)
	MessageTimestampType string // message.timestamp.type: "CreateTime" (default) or "LogAppendTime"
	RetentionMs          int64  // retention.ms, default 7 days (-1: forever)
	RetentionBytes       int64  // retention.bytes, default -1
	CleanupPolicy        string // cleanup.policy: "delete" (default), "compact", "compact,delete"

	// Compaction and segment deletion. Unlike the fields above, zero is a
	// value Kafka allows for these and is honoured as given (callers build
	// a Config from DefaultConfig or from internal/replica.StorageConfig,
	// which resolves every key); only MaxCompactionLagMs <= 0 means default.
	DeleteRetentionMs      int64   // delete.retention.ms, default 1 day: how long a tombstone outlives its cleaning
	MinCleanableDirtyRatio float64 // min.cleanable.dirty.ratio, default 0.5
	MinCompactionLagMs     int64   // min.compaction.lag.ms, default 0
	MaxCompactionLagMs     int64   // max.compaction.lag.ms, default math.MaxInt64
	FileDeleteDelayMs      int64   // file.delete.delay.ms, default 60000: a deleted segment's files linger as *.deleted

	// Produce validation. Storage only carries these (as Kafka's LogConfig
	// does for LogValidator); internal/replica applies them before
	// AppendAsLeader. Zero is honoured as given, like the fields above.
	MessageTimestampBeforeMaxMs int64  // message.timestamp.before.max.ms, default math.MaxInt64
	MessageTimestampAfterMaxMs  int64  // message.timestamp.after.max.ms, default 3600000 (Kafka 4)
	CompressionType             string // compression.type: producer (default), uncompressed, gzip, snappy, lz4, zstd
	CompressionLevel            int    // compression.<codec>.level of CompressionType; math.MinInt: codec default
	MaxDecompressedBytes        int64  // Samsa's message.max.decompressed.bytes, resolved (> 0)
}

// ManagerOptions configure OpenManager.
type ManagerOptions struct {
	Dirs   []string     // log.dirs; each is created if missing
	Logger *slog.Logger // nil: slog.Default()
	// Now is the clock (segment.ms, flush.ms, LogAppendTime). nil: time.Now.
	Now func() time.Time
	// DefaultConfig is used for logs found on disk at open time until
	// SetConfig is called for them.
	DefaultConfig Config
	// FlushCheckInterval is how often the background loop looks for logs
	// whose flush.ms elapsed or whose rolled segment awaits its flush
	// (Kafka's log.flush.scheduler.interval.ms). 0: 1s.
	FlushCheckInterval time.Duration
	// CheckpointInterval is how often checkpoint files are written
	// (log.flush.offset.checkpoint.interval.ms). 0: 60s.
	CheckpointInterval time.Duration
	// RetentionCheckInterval is how often retention (retention.ms,
	// retention.bytes) deletes old segments
	// (log.retention.check.interval.ms). 0: 5 minutes.
	RetentionCheckInterval time.Duration
	// CleanerDisabled stops the log cleaner: compacted topics are then
	// never compacted (log.cleaner.enable=false).
	CleanerDisabled bool
	// CleanerBackoff is how long the cleaner sleeps when no log is
	// cleanable (log.cleaner.backoff.ms). 0: 15s.
	CleanerBackoff time.Duration
	// MaxOpenSegmentFiles bounds the segment .log files kept open (an
	// LRU over every log). 0: half of RLIMIT_NOFILE, at least 64, at
	// most 100,000.
	MaxOpenSegmentFiles int
	// DiskFullCheckInterval is how often a full log dir is probed for free
	// space (log.dir.full.check.interval.ms). 0: 1s.
	DiskFullCheckInterval time.Duration
	// DiskFullResumeBytes is the available space that brings a full log
	// dir back online (log.dir.full.resume.bytes). 0: 1 MiB.
	DiskFullResumeBytes int64
}

// AppendInfo describes a successful append.
type AppendInfo struct {
	FirstOffset    int64 // offset of the first record appended (or of the duplicate)
	LastOffset     int64
	LogAppendTime  int64 // ms; -1 unless message.timestamp.type=LogAppendTime
	LogStartOffset int64
	Duplicate      bool // the batch was a retry of one of the producer's last 5 batches: not appended again
}

// AbortedTxn is one aborted transaction whose records overlap a fetched
// range: Fetch's AbortedTransactions entry for read_committed consumers.
//
// Transactions contract (implemented in txn.go):
//
//	func (l *Log) LastStableOffset() int64
//	func (l *Log) AbortedTransactions(from, to int64) []AbortedTxn
//	func (l *Log) WriteTxnMarker(m TxnMarker) (offset int64, err error)
//	func (l *Log) OngoingTransactions() []OngoingTxn
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
}

// TxnMarker is a transaction coordinator's order to end a producer's
// transaction on this partition (one WriteTxnMarkers entry).
type TxnMarker struct {
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool // false: abort
	CoordinatorEpoch int32
	LeaderEpoch      int32 // the partition leader epoch stamped on the control batch
}

// OngoingTxn is an open transaction on this partition (DescribeProducers).
type OngoingTxn struct {
	ProducerID       int64
	ProducerEpoch    int16
	FirstOffset      int64
	LastTimestamp    int64 // ms of the producer's latest append
	CoordinatorEpoch int32
}
