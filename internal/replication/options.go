package replication

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Kafka's defaults for the follower fetcher (ReplicationConfigs).
const (
	// DefaultNumFetchers is num.replica.fetchers.
	DefaultNumFetchers = 1
	// DefaultFetchWaitMax is replica.fetch.wait.max.ms.
	DefaultFetchWaitMax = 500 * time.Millisecond
	// DefaultFetchMinBytes is replica.fetch.min.bytes.
	DefaultFetchMinBytes = 1
	// DefaultFetchResponseMaxBytes is replica.fetch.response.max.bytes.
	DefaultFetchResponseMaxBytes = 10 << 20
	// DefaultFetchMaxBytes is replica.fetch.max.bytes (per partition).
	DefaultFetchMaxBytes = 1 << 20
	// DefaultFetchBackoff is replica.fetch.backoff.ms.
	DefaultFetchBackoff = time.Second
	// DefaultSocketTimeout is replica.socket.timeout.ms.
	DefaultSocketTimeout = 30 * time.Second
	// DefaultMaxPartitionsPerFetch bounds the partitions of one Fetch
	// request (ours; Kafka sends every ready partition). The others wait
	// for the next round, taken in turn.
	DefaultMaxPartitionsPerFetch = 1000
	// responseSlack is what a response may carry beyond its MaxBytes:
	// the leader returns at least one whole batch even when it is larger
	// than both limits (KIP-74), up to a topic's max.message.bytes, plus
	// the response's framing.
	responseSlack = 8 << 20
)

// ErrInvalidOptions: Options that Kafka would reject at start.
var ErrInvalidOptions = errors.New("replication: invalid options")

// Options configure a Manager. Zero values take Kafka's defaults.
type Options struct {
	// BrokerID is this broker's node.id, sent as the replica id.
	BrokerID int32
	// BrokerEpoch returns this broker's current registration epoch,
	// sent in ReplicaState (Fetch v15+, KIP-903). nil: -1.
	BrokerEpoch func() int64
	// ClientID prefixes the fetchers' client ids; "" :
	// "samsa-broker-<id>". Each fetcher appends
	// "-fetcher-<leader>-<index>".
	ClientID string

	// NumFetchers is num.replica.fetchers: fetchers per source broker.
	NumFetchers int
	// FetchWaitMax is replica.fetch.wait.max.ms: the long poll of a
	// Fetch request.
	FetchWaitMax time.Duration
	// FetchMinBytes is replica.fetch.min.bytes.
	FetchMinBytes int32
	// FetchResponseMaxBytes is replica.fetch.response.max.bytes: the
	// request's MaxBytes.
	FetchResponseMaxBytes int32
	// FetchMaxBytes is replica.fetch.max.bytes: each partition's
	// PartitionMaxBytes.
	FetchMaxBytes int32
	// FetchBackoff is replica.fetch.backoff.ms: how long a partition
	// whose fetch failed (or every partition, after a failed request)
	// waits before it is fetched again.
	FetchBackoff time.Duration
	// SocketTimeout is replica.socket.timeout.ms: it bounds every
	// request (dial, write, long poll, read). Must be at least
	// FetchWaitMax, as Kafka requires.
	SocketTimeout time.Duration
	// MaxPartitionsPerFetch bounds the partitions of one request.
	MaxPartitionsPerFetch int
	// MaxResponseBytes bounds a response frame read from the leader;
	// 0: FetchResponseMaxBytes + 8 MiB (room for one batch over the
	// limits, KIP-74).
	MaxResponseBytes int32
	// DisableFetchSessions makes every request a full fetch without a
	// session (KIP-227 epoch -1) instead of incremental fetches in a
	// session, as Kafka's followers use.
	DisableFetchSessions bool
	// DialTimeout bounds a connect plus its ApiVersions exchange; 0: the
	// smaller of 5 s and SocketTimeout.
	DialTimeout time.Duration

	// Quota is the follower side's replication throttle
	// (follower.replication.throttled.rate, KIP-73); nil: none.
	Quota Quota

	Logger *slog.Logger // nil: slog.Default()
}

// Quota is the follower's replication throttle (replica.Quota, Kafka's
// ReplicationQuotaManager for the follower side). While Exceeded, a
// fetcher leaves the Throttled partitions that are not caught up out of
// its requests; it Records the bytes it appends for Throttled
// partitions, caught up or not.
type Quota interface {
	Throttled(topic string, partition int32) bool
	// Exceeded reports whether the rate is over the limit and for how
	// long it will stay so if nothing more is recorded.
	Exceeded() (bool, time.Duration)
	Record(n int)
}

// orDefault sets *v to def when it is zero (unset).
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// withDefaults fills zero fields and checks the result.
func (o Options) withDefaults() (Options, error) {
	if o.BrokerEpoch == nil {
		o.BrokerEpoch = func() int64 { return -1 }
	}
	if o.ClientID == "" {
		o.ClientID = fmt.Sprintf("samsa-broker-%d", o.BrokerID)
	}
	orDefault(&o.NumFetchers, DefaultNumFetchers)
	orDefault(&o.FetchWaitMax, DefaultFetchWaitMax)
	orDefault(&o.FetchMinBytes, DefaultFetchMinBytes)
	orDefault(&o.FetchResponseMaxBytes, DefaultFetchResponseMaxBytes)
	orDefault(&o.FetchMaxBytes, DefaultFetchMaxBytes)
	orDefault(&o.FetchBackoff, DefaultFetchBackoff)
	orDefault(&o.SocketTimeout, DefaultSocketTimeout)
	orDefault(&o.MaxPartitionsPerFetch, DefaultMaxPartitionsPerFetch)
	if o.MaxResponseBytes == 0 {
		o.MaxResponseBytes = int32(min(int64(o.FetchResponseMaxBytes)+responseSlack, 1<<31-1))
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = min(5*time.Second, o.SocketTimeout)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.NumFetchers < 1:
		return o, fmt.Errorf("%w: num.replica.fetchers %d < 1", ErrInvalidOptions, o.NumFetchers)
	case o.FetchWaitMax < 0, o.FetchMinBytes < 0, o.FetchResponseMaxBytes < 0, o.FetchMaxBytes < 0,
		o.FetchBackoff < 0, o.SocketTimeout < 0, o.MaxPartitionsPerFetch < 0, o.MaxResponseBytes < 0, o.DialTimeout < 0:
		return o, fmt.Errorf("%w: negative value", ErrInvalidOptions)
	case o.SocketTimeout < o.FetchWaitMax:
		// KafkaConfig: "replica.socket.timeout.ms should always be at
		// least replica.fetch.wait.max.ms to prevent unnecessary socket
		// timeouts".
		return o, fmt.Errorf("%w: replica.socket.timeout.ms %v < replica.fetch.wait.max.ms %v", ErrInvalidOptions, o.SocketTimeout, o.FetchWaitMax)
	case o.MaxResponseBytes < o.FetchResponseMaxBytes:
		return o, fmt.Errorf("%w: response frame bound %d < replica.fetch.response.max.bytes %d", ErrInvalidOptions, o.MaxResponseBytes, o.FetchResponseMaxBytes)
	}
	return o, nil
}
