package txn

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/internal/coordinator"
)

// Config are the broker settings the coordinator uses (Kafka names in
// comments). Zero durations and counts are replaced by Kafka's defaults.
type Config struct {
	NumPartitions int32 // transaction.state.log.num.partitions (50)
	// MaxTimeout is transaction.max.timeout.ms (900000): a larger
	// transaction.timeout.ms answers INVALID_TRANSACTION_TIMEOUT.
	MaxTimeout time.Duration
	// IDExpiration is transactional.id.expiration.ms (604800000): an id
	// with no transaction in progress and no update for this long is
	// removed.
	IDExpiration time.Duration
	// AbortTimedOutInterval is
	// transaction.abort.timed.out.transaction.cleanup.interval.ms (10000).
	AbortTimedOutInterval time.Duration
	// RemoveExpiredInterval is
	// transaction.remove.expired.transaction.cleanup.interval.ms (3600000).
	RemoveExpiredInterval time.Duration
	// AllocateProducerID hands out a producer id never used before.
	AllocateProducerID func(ctx context.Context) (int64, error)
	// Markers writes transaction markers to the partitions' leaders.
	Markers MarkerWriter
	// Now is the clock of every timestamp stored and of timeouts and
	// expiry. nil: time.Now. The two sweep loops tick on real time; tests
	// move Now and call AbortTimedOutTransactions or
	// ExpireTransactionalIDs themselves.
	Now    func() time.Time
	Logger *slog.Logger // nil: slog.Default()
}

// DefaultConfig returns Kafka's defaults (without AllocateProducerID and
// Markers, which the caller must set).
func DefaultConfig() Config {
	return Config{
		NumPartitions:         50,
		MaxTimeout:            15 * time.Minute,
		IDExpiration:          7 * 24 * time.Hour,
		AbortTimedOutInterval: 10 * time.Second,
		RemoveExpiredInterval: time.Hour,
	}
}

// Partition is one partition of __transaction_state that this node leads,
// implemented by the server on the replicated partition log (the
// coordinator.Partition that group.Partition is too).
type Partition = coordinator.Partition

// TopicPartition names a partition in a transaction.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Marker is the order to end one producer's transaction on some
// partitions: one WriteTxnMarkers entry.
type Marker struct {
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool // false: abort
	CoordinatorEpoch int32
	Partitions       []TopicPartition
}

// MarkerWriter writes transaction markers. On a single node it writes to
// the local logs; in a cluster it sends WriteTxnMarkers to each
// partition's leader.
type MarkerWriter interface {
	// WriteTxnMarkers writes m's marker to each of m.Partitions and
	// returns one error per partition, in order (nil: written). Errors
	// are *kerr.Error values as WriteTxnMarkers answers them:
	// UNKNOWN_TOPIC_OR_PARTITION drops the partition from the
	// transaction (it was deleted), TRANSACTION_COORDINATOR_FENCED stops
	// this coordinator's attempt, anything else is retried.
	WriteTxnMarkers(ctx context.Context, m Marker) []error
}

// Coordinator is the transaction coordinator of one node. All methods are
// safe for concurrent use.
type Coordinator struct {
	cfg Config
	log *slog.Logger

	// parts are the loaded or loading partitions; its context is
	// cancelled by Close, which waits for its background work (loads,
	// marker writers, sweep loop).
	parts *coordinator.Registry[*partition]
}

// New returns a coordinator that leads no partition yet and starts its
// sweep loop (timed-out transactions, expired ids).
func New(cfg Config) *Coordinator {
	d := DefaultConfig()
	coordinator.OrDefault(&cfg.NumPartitions, d.NumPartitions)
	coordinator.OrDefault(&cfg.MaxTimeout, d.MaxTimeout)
	coordinator.OrDefault(&cfg.IDExpiration, d.IDExpiration)
	coordinator.OrDefault(&cfg.AbortTimedOutInterval, d.AbortTimedOutInterval)
	coordinator.OrDefault(&cfg.RemoveExpiredInterval, d.RemoveExpiredInterval)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.parts = coordinator.NewRegistry[*partition]()
	c.parts.Go(c.sweepLoop)
	return c
}

// PartitionFor is Kafka's mapping of a transactional id to its
// __transaction_state partition (TransactionStateManager.partitionFor):
// Utils.abs(transactionalId.hashCode()) % n with Java's String.hashCode.
func PartitionFor(transactionalID string, n int32) int32 {
	return coordinator.PartitionFor(transactionalID, n)
}

// Load makes this node the coordinator of __transaction_state partition p
// with coordinatorEpoch (the partition's leader epoch, stamped on every
// marker). The replay runs asynchronously; until it is done the ids of p
// answer COORDINATOR_LOAD_IN_PROGRESS.
// Loading a loaded partition is a no-op unless its replay failed or the
// epoch changed.
func (c *Coordinator) Load(p int32, part Partition, coordinatorEpoch int32) {
	if old := c.parts.Get(p); old != nil {
		old.mu.Lock()
		keep := old.state != coordinator.Failed && old.coordinatorEpoch == coordinatorEpoch && old.part == part
		old.mu.Unlock()
		if keep {
			return
		}
		c.Unload(p)
	}
	ps := newPartition(c, p, part, coordinatorEpoch)
	// An empty partition (a new __transaction_state) is loaded before
	// Load returns: it serves at once (see coordinator.Registry.StartNow).
	start := c.parts.Start
	if part.LogEndOffset() <= part.LogStartOffset() {
		start = c.parts.StartNow
	}
	if !start(p, nil, ps, ps.load) {
		ps.cancel()
	}
}

// Unload stops coordinating partition p: its ids answer NOT_COORDINATOR
// and its marker writers stop (the next coordinator resumes them from
// the log).
func (c *Coordinator) Unload(p int32) {
	if ps := c.parts.Remove(p); ps != nil {
		ps.shutdown()
	}
}

// Close stops every partition, marker writer and the sweep loop, and
// waits for them.
func (c *Coordinator) Close() {
	for _, ps := range c.parts.Close() {
		ps.shutdown()
	}
	c.parts.Wait()
}

// Loaded reports whether the partition of transactionalID is served here
// (loaded) or being loaded.
func (c *Coordinator) Loaded(transactionalID string) (loaded, loading bool) {
	ps := c.partitionOf(transactionalID)
	if ps == nil {
		return false, false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.state == coordinator.Loaded, ps.state == coordinator.Loading
}

func (c *Coordinator) now() time.Time { return c.cfg.Now() }

func (c *Coordinator) partitionOf(id string) *partition {
	return c.parts.Get(PartitionFor(id, c.cfg.NumPartitions))
}

// lookup returns the loaded partition of id with ps.mu held, or the code
// a request for id answers.
func (c *Coordinator) lookup(id string) (*partition, *kerr.Error) {
	ps := c.partitionOf(id)
	if ps == nil {
		return nil, kerr.NotCoordinator
	}
	ps.mu.Lock()
	if code := ps.stateErrorLocked(); code != nil {
		ps.mu.Unlock()
		return nil, code
	}
	return ps, nil
}

// loadedPartitions returns the partitions currently served, by number.
func (c *Coordinator) loadedPartitions() []*partition {
	return c.parts.All()
}

// sweepLoop aborts timed-out transactions and removes expired ids on
// their intervals until Close.
func (c *Coordinator) sweepLoop() {
	abort := time.NewTicker(c.cfg.AbortTimedOutInterval)
	defer abort.Stop()
	expire := time.NewTicker(c.cfg.RemoveExpiredInterval)
	defer expire.Stop()
	for {
		select {
		case <-c.parts.Context().Done():
			return
		case <-abort.C:
			c.AbortTimedOutTransactions()
		case <-expire.C:
			c.ExpireTransactionalIDs()
		}
	}
}

// appendErrorCode maps a failed write to __transaction_state to the code
// the request answers, as TransactionStateManager.appendTransactionToLog
// does: NOT_COORDINATOR when the partition is no longer ours,
// COORDINATOR_NOT_AVAILABLE when it is merely not writable now.
func (c *Coordinator) appendErrorCode(err error) *kerr.Error {
	var ke *kerr.Error
	switch {
	case errors.Is(err, errNotCoordinator):
		return kerr.NotCoordinator
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.CoordinatorNotAvailable
	case errors.As(err, &ke):
		switch ke {
		case kerr.NotLeaderForPartition, kerr.KafkaStorageError, kerr.NotCoordinator:
			return kerr.NotCoordinator
		case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend,
			kerr.RequestTimedOut, kerr.CoordinatorNotAvailable:
			return kerr.CoordinatorNotAvailable
		}
	}
	c.log.Error("txn: append to __transaction_state failed", "err", err)
	return kerr.NotCoordinator
}

// errNotCoordinator: the partition was unloaded under a write.
var errNotCoordinator = coordinator.ErrNotCoordinator
