package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/internal/api"
	"samsa/internal/group"
	"samsa/internal/metadata"
	"samsa/internal/replica"
)

// offsetsTopic is the group coordinator's internal topic.
const offsetsTopic = "__consumer_offsets"

// groupLoader keeps the group coordinator coordinating exactly the
// partitions of __consumer_offsets this node leads: a metadata listener
// (subscribed after the replica manager, so the partitions' logs exist)
// loads new ones and unloads lost ones.
type groupLoader struct {
	self     int32
	replicas *replica.Manager
	groups   *group.Coordinator

	mu     sync.Mutex
	loaded map[int32]ledPartition // partition id -> what was loaded; guarded by mu
}

// ledPartition is an internal partition a coordinator loaded: the replica
// and the leader epoch it was loaded at. A new leader epoch (this broker
// lost and regained the leadership, possibly in one image step) reloads
// the partition: another coordinator may have written to it meanwhile.
// Stale loads and unloads cannot happen: the loaders run on the metadata
// publisher's goroutine, in image order, and compare with the latest
// image only.
type ledPartition struct {
	p     *replica.Partition
	epoch int32
}

func newGroupCoordinator(s *Server) *group.Coordinator {
	cfg := s.cfg
	return group.New(group.Config{
		NumPartitions:                 cfg.OffsetsTopicNumPartitions,
		InitialRebalanceDelay:         cfg.GroupInitialRebalanceDelay,
		MinSessionTimeout:             cfg.GroupMinSessionTimeout,
		MaxSessionTimeout:             cfg.GroupMaxSessionTimeout,
		MaxSize:                       cfg.GroupMaxSize,
		OffsetMetadataMaxBytes:        cfg.OffsetMetadataMaxBytes,
		OffsetsRetention:              cfg.OffsetsRetention,
		OffsetsRetentionCheckInterval: cfg.OffsetsRetentionCheckInterval,
		TopicPartitionExists: func(topic string, partition int32) bool {
			t := s.pub.Image().Topics[topic]
			return t != nil && partition >= 0 && int(partition) < len(t.Partitions)
		},
		Logger: s.logger,
	})
}

// apply is the metadata listener.
func (g *groupLoader) apply(_, next *metadata.Image) {
	g.mu.Lock()
	defer g.mu.Unlock()
	syncLedPartitions(next, offsetsTopic, g.self, g.replicas, g.loaded,
		func(p *replica.Partition, epoch int32) ledPartition { return ledPartition{p: p, epoch: epoch} },
		func(id int32, l ledPartition) {
			g.groups.Load(id, internalPartition{p: l.p, timeout: offsetsCommitTimeout})
		},
		g.groups.Unload)
}

// syncLedPartitions makes loaded (partition id -> what was loaded, as key
// makes it of the partition and its leader epoch) hold exactly the
// partitions of the internal topic that self leads in next: it calls
// unload for each partition that is gone or whose key changed, then load
// for each that is new. The coordinators' loaders share it.
func syncLedPartitions[K comparable](next *metadata.Image, topic string, self int32, replicas *replica.Manager,
	loaded map[int32]K, key func(p *replica.Partition, leaderEpoch int32) K, load func(id int32, k K), unload func(id int32)) {
	want := map[int32]K{}
	if t := next.Topics[topic]; t != nil {
		for i, mp := range t.Partitions {
			if mp.Leader != self {
				continue
			}
			if p, err := replicas.Partition(topic, int32(i)); err == nil {
				want[int32(i)] = key(p, mp.LeaderEpoch)
			}
		}
	}
	for id, k := range loaded {
		if w, ok := want[id]; !ok || w != k {
			unload(id)
			delete(loaded, id)
		}
	}
	for id, k := range want {
		if _, ok := loaded[id]; !ok {
			load(id, k)
			loaded[id] = k
		}
	}
}

// Bounds on how long a coordinator's write waits for the high watermark
// to pass it, when the request's context has no earlier deadline. Kafka
// appends the coordinators' records with acks=-1 and these timeouts:
// offsets.commit.timeout.ms (5000) for __consumer_offsets
// (GroupMetadataManager.storeOffsets/storeGroup) and request.timeout.ms
// (30000) for __transaction_state (TransactionStateManager
// .appendTransactionToLog). A write that times out answers
// REQUEST_TIMED_OUT, which the coordinators map to
// COORDINATOR_NOT_AVAILABLE (retriable). Neither key is configurable here
// yet: the defaults are used.
const (
	offsetsCommitTimeout  = 5 * time.Second
	txnStateAppendTimeout = 30 * time.Second
	// markerAppendTimeout bounds a transaction marker's wait for
	// replication (Kafka: request.timeout.ms). It is shorter than the
	// inter-broker client's 30 s request timeout so a WriteTxnMarkers
	// request answers NOT_ENOUGH_REPLICAS / REQUEST_TIMED_OUT (the
	// coordinator retries) before its sender gives up on the connection.
	markerAppendTimeout = 15 * time.Second
)

// internalPartition is a partition of __consumer_offsets or
// __transaction_state as its coordinator uses it: appends are acks=all
// (the ISR must hold min.insync.replicas replicas, and Append returns once
// the high watermark passed the batch), replay reads to the log end.
type internalPartition struct {
	p *replica.Partition
	// timeout bounds the wait for replication (see offsetsCommitTimeout).
	timeout time.Duration
}

// Append appends batch as leader with acks=-1 and waits until every ISR
// member has it. Errors are *kerr.Error values the coordinators map
// (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS(_AFTER_APPEND),
// REQUEST_TIMED_OUT, KAFKA_STORAGE_ERROR, ...), wrapping the cause.
func (o internalPartition) Append(ctx context.Context, batch []byte) (int64, error) {
	info, err := o.p.Append(batch, -1)
	if err != nil {
		return 0, kafkaError(err)
	}
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := o.p.WaitReplicated(wctx, info.LastOffset+1); err != nil {
		return 0, kafkaError(err)
	}
	return info.FirstOffset, nil
}

// kafkaError wraps err with the Kafka error it answers as, so the
// coordinators' mappings (errors.Is on kerr values) see it.
func kafkaError(err error) error {
	ke := kerr.ErrorForCode(api.ErrorCode(err))
	if ke == nil || errors.Is(err, ke) {
		return err
	}
	return fmt.Errorf("%w: %w", ke, err)
}

func (o internalPartition) Read(offset int64, maxBytes int32) ([]byte, error) {
	return o.p.ReadLocal(offset, maxBytes)
}

func (o internalPartition) LogStartOffset() int64 { return o.p.LogStartOffset() }
func (o internalPartition) LogEndOffset() int64   { return o.p.LogEndOffset() }
