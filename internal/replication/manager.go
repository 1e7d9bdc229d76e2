package replication

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"unicode/utf16"
)

// ErrClosed is returned by AddPartitions once the Manager is closed.
var ErrClosed = errors.New("replication: manager closed")

// Follower is this broker's replica of one partition, followed from a
// leader. The replica manager implements it over the partition's log; a
// fetcher calls it from its own goroutine only, one call at a time per
// fetcher, and never after RemovePartitions for it has returned.
type Follower interface {
	TopicPartition() (topic string, topicID [16]byte, partition int32)
	// LeaderEpoch is the current leader epoch from the metadata image,
	// sent as CurrentLeaderEpoch (KIP-320).
	LeaderEpoch() int32
	LogStartOffset() int64
	LogEndOffset() int64
	// LatestEpoch is the epoch of the last batch in the log (the last
	// fetched epoch, KIP-595), -1 when the log has none.
	LatestEpoch() int32
	// AppendAsFollower stores records (whole batches fetched from the
	// leader, stored byte-for-byte; may be empty) and then moves the
	// high watermark to min(leaderHW, log end offset) and the log start
	// offset up to leaderLogStart (never backwards, never past the log
	// end offset), as Kafka's ReplicaFetcherThread.processPartitionData.
	// The first batch may start past the log end (a compacted leader has
	// gaps) and, on an empty log, before it: the leader's log start
	// offset fell inside a batch (DeleteRecords) and the log restarts at
	// that batch (Kafka's Partition.appendRecordsToFollowerOrFutureReplica;
	// storage.Log.AppendAsFollower does both).
	AppendAsFollower(records []byte, leaderHW, leaderLogStart int64) error
	// TruncateTo drops every record at offset and above.
	TruncateTo(offset int64) error
	// TruncateFullyAndStartAt empties the log and starts it at offset.
	TruncateFullyAndStartAt(offset int64) error
	// EndOffsetForEpoch is LeaderEpochFileCache.endOffsetFor: the
	// largest epoch <= epoch and its end offset; (-1, -1) when epoch is
	// below every known epoch.
	EndOffsetForEpoch(epoch int32) (foundEpoch int32, endOffset int64)
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// fetcherKey names a fetcher: its source broker and its index among
// that broker's fetchers.
type fetcherKey struct {
	leaderID int32
	index    int
}

// Manager owns the follower fetchers of one broker (Kafka's
// ReplicaFetcherManager). Safe for concurrent use.
//
// Lock order: Manager.mu, then a fetcher's mu (docs/replication.md).
type Manager struct {
	opts Options

	mu sync.Mutex
	// fetchers are the running fetchers; a fetcher left with no
	// partitions is stopped and removed. Guarded by mu.
	fetchers map[fetcherKey]*fetcher
	// assigned maps every followed partition to its fetcher.
	// Invariant: assigned[tp] = k iff fetchers[k] holds tp. Guarded by mu.
	assigned map[TopicPartition]fetcherKey
	// closed is set by Close. Guarded by mu.
	closed bool
}

// NewManager returns a Manager with no fetchers.
func NewManager(opts Options) (*Manager, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Manager{opts: opts, fetchers: map[fetcherKey]*fetcher{}, assigned: map[TopicPartition]fetcherKey{}}, nil
}

// FetcherIndex is the fetcher of a partition among n fetchers per
// source broker, as Kafka's AbstractFetcherManager.getFetcherId:
// abs(31 * topic.hashCode() + partition) % n, with Java's String.hashCode
// and Utils.abs (the sign bit cleared), so a cluster mixing Samsa and
// Kafka brokers spreads partitions alike.
func FetcherIndex(topic string, partition int32, n int) int {
	if n <= 1 {
		return 0
	}
	var h int32
	for _, u := range utf16.Encode([]rune(topic)) {
		h = 31*h + int32(u)
	}
	v := 31*h + partition
	return int(v&0x7fffffff) % n
}

// AddPartitions makes this broker follow fs from leaderID at leaderAddr,
// starting each at its log end offset. A partition already followed is
// moved to the fetcher of its new leader (its fetch state restarts); a
// known leader at a new address is dialled there from the next request.
func (m *Manager) AddPartitions(leaderID int32, leaderAddr string, fs []Follower) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	byFetcher := map[fetcherKey][]Follower{}
	for _, f := range fs {
		topic, _, partition := f.TopicPartition()
		tp := TopicPartition{topic, partition}
		k := fetcherKey{leaderID, FetcherIndex(topic, partition, m.opts.NumFetchers)}
		if old, ok := m.assigned[tp]; ok && old != k {
			m.removeLocked(old, []TopicPartition{tp})
		}
		m.assigned[tp] = k
		byFetcher[k] = append(byFetcher[k], f)
	}
	for k, group := range byFetcher {
		ft := m.fetchers[k]
		if ft == nil {
			ft = newFetcher(m.opts, k, leaderAddr)
			m.fetchers[k] = ft
			ft.start()
		} else {
			ft.setAddr(leaderAddr)
		}
		ft.add(group)
	}
	return nil
}

// RemovePartitions stops following tps. When it returns, no fetcher
// calls the Followers of tps any more (the replica manager may then make
// them leaders). A fetcher left without partitions is stopped (Kafka's
// shutdownIdleFetcherThreads).
func (m *Manager) RemovePartitions(tps []TopicPartition) {
	m.mu.Lock()
	defer m.mu.Unlock()
	byFetcher := map[fetcherKey][]TopicPartition{}
	for _, tp := range tps {
		if k, ok := m.assigned[tp]; ok {
			byFetcher[k] = append(byFetcher[k], tp)
			delete(m.assigned, tp)
		}
	}
	for k, group := range byFetcher {
		m.removeLocked(k, group)
	}
}

// removeLocked removes tps from fetcher k, stopping it when it has no
// partition left. The caller updates m.assigned.
func (m *Manager) removeLocked(k fetcherKey, tps []TopicPartition) {
	ft := m.fetchers[k]
	if ft == nil {
		return
	}
	if ft.remove(tps) == 0 {
		delete(m.fetchers, k)
		ft.stop()
	}
}

// SetNumFetchers changes num.replica.fetchers (a dynamic broker config,
// Kafka's DynamicThreadPool / AbstractFetcherManager.resizeThreadPool):
// every followed partition whose fetcher index changes moves to its new
// fetcher, whose fetch state restarts at the log end offset (as a leader
// change does); fetchers left without partitions stop. n < 1 is 1.
func (m *Manager) SetNumFetchers(n int) {
	n = max(n, 1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || n == m.opts.NumFetchers {
		m.opts.NumFetchers = n
		return
	}
	m.opts.NumFetchers = n
	type move struct {
		from fetcherKey
		tp   TopicPartition
		f    Follower
		addr string
	}
	var moves []move
	for tp, k := range m.assigned {
		nk := fetcherKey{k.leaderID, FetcherIndex(tp.Topic, tp.Partition, n)}
		if nk == k {
			continue
		}
		ft := m.fetchers[k]
		if ft == nil {
			continue
		}
		if f, ok := ft.follower(tp); ok {
			moves = append(moves, move{k, tp, f, ft.address()})
		}
	}
	for _, mv := range moves {
		m.removeLocked(mv.from, []TopicPartition{mv.tp})
		k := fetcherKey{mv.from.leaderID, FetcherIndex(mv.tp.Topic, mv.tp.Partition, n)}
		m.assigned[mv.tp] = k
		ft := m.fetchers[k]
		if ft == nil {
			ft = newFetcher(m.opts, k, mv.addr)
			m.fetchers[k] = ft
			ft.start()
		}
		ft.add([]Follower{mv.f})
	}
}

// Close stops every fetcher and waits for them: an in-flight request is
// abandoned (its connection closed), an append in progress finishes.
// AddPartitions fails afterwards.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	fetchers := m.fetchers
	m.fetchers = map[fetcherKey]*fetcher{}
	m.assigned = map[TopicPartition]fetcherKey{}
	m.mu.Unlock()
	for _, ft := range fetchers {
		ft.cancel()
	}
	for _, ft := range fetchers {
		ft.stop()
	}
}

// FetcherStats describes one fetcher, for metrics.
type FetcherStats struct {
	LeaderID   int32
	Index      int    // among the fetchers of LeaderID
	Addr       string // the leader's address
	Partitions int
	// MaxLag is Kafka's ReplicaFetcherManager MaxLag for this fetcher:
	// the largest (leader high watermark - our log end offset) over its
	// partitions, as of their last fetch; 0 when every partition is
	// caught up or none was fetched yet.
	MaxLag int64
	// Requests counts the Fetch requests sent, Failures those that got
	// no answer (transport errors, timeouts), Bytes the record bytes
	// appended (Kafka's FetcherStats RequestsPerSec and BytesPerSec are
	// rates of these).
	Requests, Failures, Bytes int64
}

// Fetchers returns the running fetchers, ordered by leader and index.
func (m *Manager) Fetchers() []FetcherStats {
	m.mu.Lock()
	out := make([]FetcherStats, 0, len(m.fetchers))
	for k, ft := range m.fetchers {
		out = append(out, FetcherStats{LeaderID: k.leaderID, Index: k.index, Addr: ft.address(),
			Partitions: ft.partitionCount(), MaxLag: ft.maxLag.Load(),
			Requests: ft.requests.Load(), Failures: ft.failures.Load(), Bytes: ft.bytes.Load()})
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].LeaderID != out[j].LeaderID {
			return out[i].LeaderID < out[j].LeaderID
		}
		return out[i].Index < out[j].Index
	})
	return out
}

// MaxLag is the largest lag over every fetcher (Kafka's
// kafka.server:type=ReplicaFetcherManager,name=MaxLag,clientId=Replica).
func (m *Manager) MaxLag() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var lag int64
	for _, ft := range m.fetchers {
		lag = max(lag, ft.maxLag.Load())
	}
	return lag
}

// PartitionLag is one followed partition's lag (Kafka's FetcherLagMetrics
// ConsumerLag): the leader's high watermark minus our log end offset at
// its last fetch; false when the partition is not followed.
func (m *Manager) PartitionLag(topic string, partition int32) (int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tp := TopicPartition{topic, partition}
	k, ok := m.assigned[tp]
	if !ok {
		return 0, false
	}
	return m.fetchers[k].partitionLag(tp)
}

// String names a fetcher in logs.
func (k fetcherKey) String() string { return fmt.Sprintf("leader %d fetcher %d", k.leaderID, k.index) }
