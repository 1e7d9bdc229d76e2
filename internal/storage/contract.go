package storage

// This file is the contract between the storage engine and its callers
// (internal/replica, internal/api, internal/server). The storage owner may
// move these declarations into other files, add to them, and replace the
// stub bodies, but must keep these names and signatures.

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
)

// Config is the per-log configuration: the topic-level Kafka configs that
// the storage engine honours. Zero values are replaced by DefaultConfig's.
type Config struct {
	SegmentBytes         int64  // segment.bytes, default 1 GiB
	SegmentMs            int64  // segment.ms, default 7 days
	SegmentIndexBytes    int32  // segment.index.bytes, default 10 MiB
	IndexIntervalBytes   int32  // index.interval.bytes, default 4096
	MaxMessageBytes      int32  // max.message.bytes (largest batch), default 1048588
	FlushMessages        int64  // flush.messages, default math.MaxInt64 (never)
	FlushMs              int64  // flush.ms, default math.MaxInt64 (never)
	MessageTimestampType string // message.timestamp.type: "CreateTime" (default) or "LogAppendTime"
	RetentionMs          int64  // retention.ms, default 7 days (-1: forever)
	RetentionBytes       int64  // retention.bytes, default -1
	CleanupPolicy        string // cleanup.policy: "delete" (default), "compact"
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config { panic("unimplemented") }

// ManagerOptions configure OpenManager.
type ManagerOptions struct {
	Dirs   []string     // log.dirs; each is created if missing
	Logger *slog.Logger // nil: slog.Default()
	// Now is the clock (segment.ms, flush.ms, LogAppendTime). nil: time.Now.
	Now func() time.Time
	// DefaultConfig is used for logs found on disk at open time until
	// SetConfig is called for them.
	DefaultConfig Config
}

// Manager owns every partition log in log.dirs: recovery at open,
// checkpoint files, background flush (flush.ms / log.flush.interval.ms)
// and the clean-shutdown marker.
type Manager struct{}

// OpenManager recovers every "<topic>-<partition>" directory found in the
// dirs (scanning past the recovery point after an unclean stop, truncating
// a torn tail, rebuilding indexes) and returns the manager.
func OpenManager(opts ManagerOptions) (*Manager, error) { panic("unimplemented") }

// Log returns the open log of a partition.
func (m *Manager) Log(topic string, partition int32) (*Log, bool) { panic("unimplemented") }

// Logs returns every open log.
func (m *Manager) Logs() []*Log { panic("unimplemented") }

// CreateLog creates the partition's log, or returns the existing one
// (then it only updates its config). topicID is written to
// partition.metadata.
func (m *Manager) CreateLog(topic string, partition int32, topicID [16]byte, cfg Config) (*Log, error) {
	panic("unimplemented")
}

// DeleteLog closes the log and removes its directory (Kafka renames it to
// "-delete" first; either is fine).
func (m *Manager) DeleteLog(topic string, partition int32) error { panic("unimplemented") }

// Checkpoint writes recovery-point, replication-offset (high watermark),
// log-start-offset checkpoints and producer-state snapshots.
func (m *Manager) Checkpoint() error { panic("unimplemented") }

// Close flushes every log, writes checkpoints and the clean-shutdown
// marker, and closes all files.
func (m *Manager) Close() error { panic("unimplemented") }

// AppendInfo describes a successful append.
type AppendInfo struct {
	FirstOffset    int64 // offset of the first record appended (or of the duplicate)
	LastOffset     int64
	LogAppendTime  int64 // ms; -1 unless message.timestamp.type=LogAppendTime
	LogStartOffset int64
	Duplicate      bool // the batch was a retry of one of the producer's last 5 batches: not appended again
}

// Log is one partition's log. All methods are safe for concurrent use.
type Log struct{}

// Topic, Partition and TopicID identify the log.
func (l *Log) Topic() string     { panic("unimplemented") }
func (l *Log) Partition() int32  { panic("unimplemented") }
func (l *Log) TopicID() [16]byte { panic("unimplemented") }

// SetConfig changes the log's config (segment roll, flush, max size...).
func (l *Log) SetConfig(cfg Config) { panic("unimplemented") }

// AppendAsLeader validates records (one or more magic-v2 batches as a
// producer sent them: header, length, CRC-32C, max.message.bytes, magic,
// producer id/epoch/sequence for idempotent batches), assigns offsets by
// rewriting each batch's base offset and partition leader epoch, and
// appends them. Nothing is stored when any batch is rejected. When the
// flush policy requires it (flush.messages reached), it returns only after
// the data is fsynced; concurrent appenders share one fdatasync (group
// commit). The high watermark is NOT moved: the caller does that.
func (l *Log) AppendAsLeader(records []byte, leaderEpoch int32) (AppendInfo, error) {
	panic("unimplemented")
}

// Read returns whole batches starting with the batch containing offset,
// up to maxBytes (but at least one whole batch if minOneMessage), and never
// any batch whose base offset is >= maxOffset (pass the high watermark).
// Returns ErrOffsetOutOfRange when offset < LogStartOffset or > LogEndOffset.
// Reading at LogEndOffset returns no bytes and no error.
func (l *Log) Read(offset int64, maxBytes int32, maxOffset int64, minOneMessage bool) ([]byte, error) {
	panic("unimplemented")
}

// LogStartOffset, LogEndOffset and HighWatermark are the partition's
// offsets. Invariant: LogStartOffset <= HighWatermark <= LogEndOffset.
func (l *Log) LogStartOffset() int64 { panic("unimplemented") }
func (l *Log) LogEndOffset() int64   { panic("unimplemented") }
func (l *Log) HighWatermark() int64  { panic("unimplemented") }

// SetHighWatermark moves the high watermark (clamped to the log end
// offset) and wakes waiters on Changed.
func (l *Log) SetHighWatermark(hw int64) { panic("unimplemented") }

// Changed returns a channel that is closed the next time the high
// watermark or log end offset moves (for long-poll fetches).
func (l *Log) Changed() <-chan struct{} { panic("unimplemented") }

// OffsetForTimestamp returns the first offset whose timestamp is >= ts,
// using the time index, and that record's timestamp; found is false when
// no such record exists.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	panic("unimplemented")
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (ListOffsets -3); offset -1 if the log is empty.
func (l *Log) MaxTimestamp() (offset, timestamp int64) { panic("unimplemented") }

// AssignEpochStartOffset records in leader-epoch-checkpoint that epoch
// starts at offset (called when this broker becomes leader).
func (l *Log) AssignEpochStartOffset(epoch int32, offset int64) error { panic("unimplemented") }

// LatestEpoch returns the latest leader epoch in the epoch cache, -1 if none.
func (l *Log) LatestEpoch() int32 { panic("unimplemented") }

// Flush fsyncs everything appended so far.
func (l *Log) Flush() error { panic("unimplemented") }

// Offline reports whether an I/O error took the log offline.
func (l *Log) Offline() bool { panic("unimplemented") }
