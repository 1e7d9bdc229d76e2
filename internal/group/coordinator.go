package group

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/internal/coordinator"
	"samsa/internal/storage"
)

// Config are the broker settings the coordinator uses (Kafka names in
// comments). Zero values of NumPartitions, MinSessionTimeout,
// MaxSessionTimeout, OffsetMetadataMaxBytes, OffsetsRetention and
// OffsetsRetentionCheckInterval are replaced by Kafka's defaults; a zero
// InitialRebalanceDelay means no delay.
type Config struct {
	NumPartitions          int32         // offsets.topic.num.partitions (50)
	InitialRebalanceDelay  time.Duration // group.initial.rebalance.delay.ms (3000 ms); applies when an Empty group gets its first member
	MinSessionTimeout      time.Duration // group.min.session.timeout.ms (6000 ms)
	MaxSessionTimeout      time.Duration // group.max.session.timeout.ms (1800000 ms)
	MaxSize                int           // group.max.size (0 = unlimited; Kafka default is Integer.MAX_VALUE)
	OffsetMetadataMaxBytes int           // offset.metadata.max.bytes (4096): larger metadata -> OFFSET_METADATA_TOO_LARGE
	// OffsetsRetention is offsets.retention.minutes (10080 = 7 days): how
	// long a committed offset is kept once it is eligible for expiry (see
	// expire.go).
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is offsets.retention.check.interval.ms
	// (600000): how often each loaded partition sweeps its expired offsets.
	OffsetsRetentionCheckInterval time.Duration
	// TopicPartitionExists reports whether a topic-partition exists (for OffsetCommit:
	// UNKNOWN_TOPIC_OR_PARTITION otherwise). nil: everything exists.
	TopicPartitionExists func(topic string, partition int32) bool
	Logger               *slog.Logger // nil: slog.Default()
	// Now is the wall clock of every timestamp the coordinator stores
	// (commit timestamps, a group's current state timestamp, record
	// timestamps) and of offset expiry. nil: time.Now. Session, rebalance
	// and sweep timers run on real time whatever Now says, so a test that
	// moves Now only moves expiry.
	Now func() time.Time
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		NumPartitions:          50,
		InitialRebalanceDelay:  3 * time.Second,
		MinSessionTimeout:      6 * time.Second,
		MaxSessionTimeout:      30 * time.Minute,
		OffsetMetadataMaxBytes: 4096,

		OffsetsRetention:              7 * 24 * time.Hour,
		OffsetsRetentionCheckInterval: 10 * time.Minute,
	}
}

// Partition is one partition of __consumer_offsets that this node leads.
// The server implements it on top of the replicated partition log.
//
// Append's errors are mapped to Kafka codes as GroupMetadataManager does
// for a failed append: storage.ErrStorage, storage.ErrCorruptLog,
// storage.ErrClosed and kerr.NotLeaderForPartition / KafkaStorageError
// become NOT_COORDINATOR; kerr.NotEnoughReplicas(AfterAppend),
// kerr.RequestTimedOut, kerr.UnknownTopicOrPartition and context errors
// become COORDINATOR_NOT_AVAILABLE; storage.ErrMessageTooLarge and
// kerr.MessageTooLarge / RecordListTooLarge become INVALID_COMMIT_OFFSET_SIZE;
// anything else is UNKNOWN_SERVER_ERROR (and logged).
//
// Append's batch has producer id -1, or, for TxnOffsetCommit, is
// transactional with the client's producer id and epoch: Kafka appends
// those with AppendOrigin.COORDINATOR (epoch checked, sequence not;
// storage.Log.AppendAsCoordinator). The coordinator numbers the sequences
// of each producer's batches itself, so a client-style sequence check
// accepts them too. A fenced epoch is storage.ErrInvalidProducerEpoch (or
// kerr.InvalidProducerEpoch): TxnOffsetCommit answers
// INVALID_PRODUCER_EPOCH.
type Partition = coordinator.Partition

// Coordinator is the group coordinator of one node: the groups of every
// loaded __consumer_offsets partition. All methods are safe for concurrent
// use.
type Coordinator struct {
	cfg Config
	log *slog.Logger

	// parts are the loaded (or loading) partitions; its context is
	// cancelled by Close (it aborts loads and background appends) and
	// Close waits for its background work (loads, timer callbacks).
	parts *coordinator.Registry[*partition]
}

// New returns a coordinator that leads no partition yet.
func New(cfg Config) *Coordinator {
	d := DefaultConfig()
	coordinator.OrDefault(&cfg.NumPartitions, d.NumPartitions)
	coordinator.OrDefault(&cfg.MinSessionTimeout, d.MinSessionTimeout)
	coordinator.OrDefault(&cfg.MaxSessionTimeout, d.MaxSessionTimeout)
	coordinator.OrDefault(&cfg.OffsetMetadataMaxBytes, d.OffsetMetadataMaxBytes)
	if cfg.InitialRebalanceDelay < 0 {
		cfg.InitialRebalanceDelay = 0
	}
	coordinator.OrDefault(&cfg.OffsetsRetention, d.OffsetsRetention)
	coordinator.OrDefault(&cfg.OffsetsRetentionCheckInterval, d.OffsetsRetentionCheckInterval)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.parts = coordinator.NewRegistry[*partition]()
	return c
}

// PartitionFor is Kafka's mapping of a group to its __consumer_offsets
// partition: Utils.abs(groupId.hashCode()) % n, where hashCode is Java's
// String.hashCode over UTF-16 code units and Utils.abs maps MinInt32 to 0.
func PartitionFor(group string, n int32) int32 { return coordinator.PartitionFor(group, n) }

// Load makes this node the coordinator of __consumer_offsets partition p: it
// replays the partition asynchronously; until that is done requests for its
// groups answer COORDINATOR_LOAD_IN_PROGRESS. An empty partition (an empty
// log: a new __consumer_offsets) is loaded before
// Load returns, so it serves at once (Kafka loads it in no time too;
// kafka-go's JoinGroup right after FindCoordinator does not retry
// COORDINATOR_LOAD_IN_PROGRESS). Loading a partition that is loaded or
// loading is a no-op; one whose replay failed is replayed again.
func (c *Coordinator) Load(p int32, part Partition) {
	old := c.parts.Get(p)
	if old != nil {
		// A partition whose replay failed is loaded again; any other is
		// left alone.
		old.mu.Lock()
		failed := old.state == coordinator.Failed
		old.mu.Unlock()
		if !failed {
			return
		}
	}
	ps := newPartition(c, p, part)
	start := c.parts.Start
	if part.LogEndOffset() <= part.LogStartOffset() {
		start = c.parts.StartNow
	}
	if !start(p, old, ps, ps.load) {
		ps.cancel()
	}
}

// Unload stops coordinating partition p: its groups answer NOT_COORDINATOR,
// and so do the JoinGroup and SyncGroup requests parked on them.
func (c *Coordinator) Unload(p int32) {
	if ps := c.parts.Remove(p); ps != nil {
		ps.shutdown(kerr.NotCoordinator)
	}
}

// Close stops every timer and goroutine; parked requests answer
// COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) Close() {
	for _, ps := range c.parts.Close() {
		ps.shutdown(kerr.CoordinatorNotAvailable)
	}
	c.parts.Wait()
}

// Owns reports whether group's partition is loaded here (for
// FindCoordinator), or being loaded.
func (c *Coordinator) Owns(group string) (loaded bool, loading bool) {
	ps, code := c.partitionOf(group)
	if code != nil {
		return false, false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.state == coordinator.Loaded, ps.state == coordinator.Loading
}

// now is the coordinator's wall clock (Config.Now).
func (c *Coordinator) now() time.Time { return c.cfg.Now() }

// lookup returns the partition of group, or the error a request for the
// group answers. On success ps.mu is held.
func (c *Coordinator) lookup(group string) (*partition, *kerr.Error) {
	ps, code := c.partitionOf(group)
	if code != nil {
		return nil, code
	}
	ps.mu.Lock()
	if err := ps.stateErrorLocked(); err != nil {
		ps.mu.Unlock()
		return nil, err
	}
	return ps, nil
}

// partitionOf returns group's partition without locking it.
func (c *Coordinator) partitionOf(group string) (*partition, *kerr.Error) {
	ps := c.parts.Get(PartitionFor(group, c.cfg.NumPartitions))
	if ps == nil {
		return nil, kerr.NotCoordinator
	}
	return ps, nil
}

// beginGroupWrite is beginWrite on group's partition: on success the
// caller holds its writeSem and mu.
func (c *Coordinator) beginGroupWrite(ctx context.Context, group string) (*partition, *kerr.Error) {
	ps, code := c.partitionOf(group)
	if code != nil {
		return nil, code
	}
	if code := ps.beginWrite(ctx); code != nil {
		return nil, code
	}
	return ps, nil
}

// appendErrorCode maps an append failure to the code the request answers
// (GroupMetadataManager's mapping of produce errors, see Partition).
func (c *Coordinator) appendErrorCode(err error) *kerr.Error {
	var ke *kerr.Error
	switch {
	case errors.Is(err, storage.ErrStorage), errors.Is(err, storage.ErrCorruptLog),
		errors.Is(err, storage.ErrClosed), errors.Is(err, errNotCoordinator):
		return kerr.NotCoordinator
	case errors.Is(err, storage.ErrMessageTooLarge):
		return kerr.InvalidCommitOffsetSize
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.CoordinatorNotAvailable
	case errors.As(err, &ke):
		switch ke {
		case kerr.NotLeaderForPartition, kerr.KafkaStorageError, kerr.NotCoordinator:
			return kerr.NotCoordinator
		case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend,
			kerr.RequestTimedOut, kerr.CoordinatorNotAvailable:
			return kerr.CoordinatorNotAvailable
		case kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidFetchSize:
			return kerr.InvalidCommitOffsetSize
		}
	}
	c.log.Error("group: append to __consumer_offsets failed", "err", err)
	return kerr.UnknownServerError
}

// errNotCoordinator: the partition was unloaded while an append was in flight.
var errNotCoordinator = coordinator.ErrNotCoordinator
