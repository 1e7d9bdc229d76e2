package storage

import (
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Kafka's topic-config defaults.
const (
	defaultSegmentBytes       = 1 << 30
	defaultSegmentMs          = 7 * 24 * 60 * 60 * 1000
	defaultSegmentIndexBytes  = 10 << 20
	defaultIndexIntervalBytes = 4096
	defaultMaxMessageBytes    = 1048588
	defaultRetentionMs        = 7 * 24 * 60 * 60 * 1000
	defaultDeleteRetentionMs  = 24 * 60 * 60 * 1000
	defaultFileDeleteDelayMs  = 60000
	defaultMinCleanableRatio  = 0.5
	// defaultTimestampAfterMaxMs is Kafka 4's message.timestamp.after.max.ms
	// (KIP-1030).
	defaultTimestampAfterMaxMs  = 60 * 60 * 1000
	defaultMaxDecompressedBytes = 64 << 20

	// CleanupPolicyDelete and CleanupPolicyCompact are the values of the
	// cleanup.policy list.
	CleanupPolicyDelete  = "delete"
	CleanupPolicyCompact = "compact"

	// TimestampCreateTime and TimestampLogAppendTime are the values of
	// message.timestamp.type.
	TimestampCreateTime    = "CreateTime"
	TimestampLogAppendTime = "LogAppendTime"
)

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:         defaultSegmentBytes,
		SegmentMs:            defaultSegmentMs,
		SegmentIndexBytes:    defaultSegmentIndexBytes,
		IndexIntervalBytes:   defaultIndexIntervalBytes,
		MaxMessageBytes:      defaultMaxMessageBytes,
		FlushMessages:        math.MaxInt64,
		FlushMs:              math.MaxInt64,
		MessageTimestampType: TimestampCreateTime,
		RetentionMs:          defaultRetentionMs,
		RetentionBytes:       -1,
		CleanupPolicy:        CleanupPolicyDelete,

		DeleteRetentionMs:      defaultDeleteRetentionMs,
		MinCleanableDirtyRatio: defaultMinCleanableRatio,
		MinCompactionLagMs:     0,
		MaxCompactionLagMs:     math.MaxInt64,
		FileDeleteDelayMs:      defaultFileDeleteDelayMs,

		MessageTimestampBeforeMaxMs: math.MaxInt64,
		MessageTimestampAfterMaxMs:  defaultTimestampAfterMaxMs,
		CompressionType:             "producer",
		CompressionLevel:            math.MinInt,
		MaxDecompressedBytes:        defaultMaxDecompressedBytes,
	}
}

// withDefaults replaces zero (and nonsensical negative) fields of c with
// those of d.
func (c Config) withDefaults(d Config) Config {
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = d.SegmentBytes
	}
	if c.SegmentMs <= 0 {
		c.SegmentMs = d.SegmentMs
	}
	if c.SegmentJitterMs < 0 {
		c.SegmentJitterMs = 0
	}
	if c.SegmentIndexBytes <= 0 {
		c.SegmentIndexBytes = d.SegmentIndexBytes
	}
	// Kafka allows index.interval.bytes=0 (an entry per batch) but the
	// contract says zero means default; negative is treated the same.
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = d.IndexIntervalBytes
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = d.MaxMessageBytes
	}
	if c.FlushMessages <= 0 {
		c.FlushMessages = d.FlushMessages
	}
	if c.FlushMs <= 0 {
		c.FlushMs = d.FlushMs
	}
	if c.MessageTimestampType == "" {
		c.MessageTimestampType = d.MessageTimestampType
	}
	if c.RetentionMs == 0 {
		c.RetentionMs = d.RetentionMs
	}
	if c.RetentionBytes == 0 {
		c.RetentionBytes = d.RetentionBytes
	}
	if c.CleanupPolicy == "" {
		c.CleanupPolicy = d.CleanupPolicy
	}
	// The compaction fields keep zero (Kafka allows it); only nonsense is
	// replaced.
	if c.DeleteRetentionMs < 0 {
		c.DeleteRetentionMs = 0
	}
	if c.MinCleanableDirtyRatio < 0 || c.MinCleanableDirtyRatio > 1 || c.MinCleanableDirtyRatio != c.MinCleanableDirtyRatio {
		c.MinCleanableDirtyRatio = defaultMinCleanableRatio
	}
	if c.MinCompactionLagMs < 0 {
		c.MinCompactionLagMs = 0
	}
	if c.MaxCompactionLagMs <= 0 {
		c.MaxCompactionLagMs = math.MaxInt64
	}
	if c.FileDeleteDelayMs < 0 {
		c.FileDeleteDelayMs = 0
	}
	if c.CompressionType == "" {
		c.CompressionType, c.CompressionLevel = d.CompressionType, d.CompressionLevel
	}
	if c.MaxDecompressedBytes <= 0 {
		c.MaxDecompressedBytes = d.MaxDecompressedBytes
	}
	return c
}

// hasPolicy reports whether cleanup.policy (a comma-separated list)
// contains p.
func (c *Config) hasPolicy(p string) bool {
	for _, v := range strings.Split(c.CleanupPolicy, ",") {
		if strings.TrimSpace(v) == p {
			return true
		}
	}
	return false
}

// msDuration converts a Kafka millisecond setting to a Duration,
// saturating.
func msDuration(ms int64) time.Duration {
	if ms > math.MaxInt64/int64(time.Millisecond) {
		return math.MaxInt64
	}
	return time.Duration(ms) * time.Millisecond
}

// maxIndexEntries and maxTimeIndexEntries: segment.index.bytes bounds both
// index files; a full index rolls the segment.
func (c *Config) maxIndexEntries() int     { return max(1, int(c.SegmentIndexBytes)/offsetEntrySize) }
func (c *Config) maxTimeIndexEntries() int { return max(1, int(c.SegmentIndexBytes)/timeEntrySize) }

func (c *Config) segmentAge() time.Duration {
	if c.SegmentMs > math.MaxInt64/int64(time.Millisecond) {
		return math.MaxInt64
	}
	return time.Duration(c.SegmentMs) * time.Millisecond
}

// randomJitter draws a new segment's roll jitter: uniform in
// [0, min(segment.jitter.ms, segment.ms)), 0 without jitter (Kafka's
// LogConfig.randomSegmentJitter). The segment then rolls once it is
// segment.ms minus its jitter old, so the segments of many partitions
// created together do not all roll at once.
func (c *Config) randomJitter() time.Duration {
	j := min(c.SegmentJitterMs, c.SegmentMs)
	if j <= 0 {
		return 0
	}
	return msDuration(rand.Int64N(j))
}

func (c *Config) flushAge() time.Duration {
	if c.FlushMs > math.MaxInt64/int64(time.Millisecond) {
		return math.MaxInt64
	}
	return time.Duration(c.FlushMs) * time.Millisecond
}
