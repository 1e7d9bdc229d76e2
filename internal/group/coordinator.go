package group

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kerr"

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
type Partition interface {
	// Append appends one record batch (built with samsa/internal/record.Build, uncompressed)
	// and returns once it is committed (acks=all), with its base offset. The batch has
	// producer id -1, or, for TxnOffsetCommit, is transactional with the client's producer
	// id and epoch: Kafka appends those with AppendOrigin.COORDINATOR (epoch checked,
	// sequence not; storage.Log.AppendAsCoordinator). The coordinator numbers the
	// sequences of each producer's batches itself, so a client-style sequence check
	// accepts them too. A fenced epoch is storage.ErrInvalidProducerEpoch (or
	// kerr.InvalidProducerEpoch): TxnOffsetCommit answers INVALID_PRODUCER_EPOCH.
	Append(ctx context.Context, batch []byte) (baseOffset int64, err error)
	// Read returns whole batches starting at the batch holding offset, at most maxBytes but at
	// least one batch, only below the high watermark; nil at the end.
	Read(offset int64, maxBytes int32) ([]byte, error)
	LogStartOffset() int64
	HighWatermark() int64
}

// Coordinator is the group coordinator of one node: the groups of every
// loaded __consumer_offsets partition. All methods are safe for concurrent
// use.
type Coordinator struct {
	cfg Config
	log *slog.Logger

	// ctx is cancelled by Close: it aborts loads and background appends.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts background work (loads, timer callbacks): Close waits for it.
	wg sync.WaitGroup

	mu struct {
		sync.Mutex
		closed bool
		// partitions are the loaded (or loading) partitions by number.
		partitions map[int32]*partition
	}
}

// New returns a coordinator that leads no partition yet.
func New(cfg Config) *Coordinator {
	d := DefaultConfig()
	if cfg.NumPartitions <= 0 {
		cfg.NumPartitions = d.NumPartitions
	}
	if cfg.MinSessionTimeout <= 0 {
		cfg.MinSessionTimeout = d.MinSessionTimeout
	}
	if cfg.MaxSessionTimeout <= 0 {
		cfg.MaxSessionTimeout = d.MaxSessionTimeout
	}
	if cfg.OffsetMetadataMaxBytes <= 0 {
		cfg.OffsetMetadataMaxBytes = d.OffsetMetadataMaxBytes
	}
	if cfg.InitialRebalanceDelay < 0 {
		cfg.InitialRebalanceDelay = 0
	}
	if cfg.OffsetsRetention <= 0 {
		cfg.OffsetsRetention = d.OffsetsRetention
	}
	if cfg.OffsetsRetentionCheckInterval <= 0 {
		cfg.OffsetsRetentionCheckInterval = d.OffsetsRetentionCheckInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.mu.partitions = make(map[int32]*partition)
	return c
}

// PartitionFor is Kafka's mapping of a group to its __consumer_offsets
// partition: Utils.abs(groupId.hashCode()) % n, where hashCode is Java's
// String.hashCode over UTF-16 code units and Utils.abs maps MinInt32 to 0.
func PartitionFor(group string, n int32) int32 {
	if n <= 0 {
		return 0
	}
	var h int32
	for _, u := range utf16.Encode([]rune(group)) {
		h = 31*h + int32(u)
	}
	switch {
	case h == -1<<31:
		h = 0
	case h < 0:
		h = -h
	}
	return h % n
}

// Load makes this node the coordinator of __consumer_offsets partition p: it
// replays the partition asynchronously; until that is done requests for its
// groups answer COORDINATOR_LOAD_IN_PROGRESS. Loading a partition that is
// loaded or loading is a no-op; one whose replay failed is replayed again.
func (c *Coordinator) Load(p int32, part Partition) {
	c.mu.Lock()
	old := c.mu.partitions[p]
	c.mu.Unlock()
	if old != nil {
		// A partition whose replay failed is loaded again; any other is
		// left alone.
		old.mu.Lock()
		failed := old.state == partFailed
		old.mu.Unlock()
		if !failed {
			return
		}
	}
	c.mu.Lock()
	if c.mu.closed || c.mu.partitions[p] != old {
		c.mu.Unlock()
		return
	}
	ps := newPartition(c, p, part)
	c.mu.partitions[p] = ps
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		ps.load()
	}()
}

// Unload stops coordinating partition p: its groups answer NOT_COORDINATOR,
// and so do the JoinGroup and SyncGroup requests parked on them.
func (c *Coordinator) Unload(p int32) {
	c.mu.Lock()
	ps := c.mu.partitions[p]
	delete(c.mu.partitions, p)
	c.mu.Unlock()
	if ps != nil {
		ps.shutdown(kerr.NotCoordinator)
	}
}

// Close stops every timer and goroutine; parked requests answer
// COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) Close() {
	c.mu.Lock()
	c.mu.closed = true
	parts := c.mu.partitions
	c.mu.partitions = make(map[int32]*partition)
	c.mu.Unlock()
	c.cancel()
	for _, ps := range parts {
		ps.shutdown(kerr.CoordinatorNotAvailable)
	}
	c.wg.Wait()
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
	return ps.state == partLoaded, ps.state == partLoading
}

// now is the coordinator's wall clock (Config.Now).
func (c *Coordinator) now() time.Time { return c.cfg.Now() }

// enter registers a unit of background work; false once closed. The caller
// calls c.wg.Done when finished.
func (c *Coordinator) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return false
	}
	c.wg.Add(1)
	return true
}

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
	c.mu.Lock()
	ps := c.mu.partitions[PartitionFor(group, c.cfg.NumPartitions)]
	c.mu.Unlock()
	if ps == nil {
		return nil, kerr.NotCoordinator
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
var errNotCoordinator = errors.New("group: not coordinator")
