package server

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

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
	loaded map[int32]*replica.Partition // partition id -> the partition loaded; guarded by mu
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
		func(p *replica.Partition, _ int32) *replica.Partition { return p },
		func(id int32, p *replica.Partition) { g.groups.Load(id, offsetsPartition{p}) },
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

// offsetsPartition is a partition of __consumer_offsets as the group
// coordinator uses it.
type offsetsPartition struct{ p *replica.Partition }

func (o offsetsPartition) Append(_ context.Context, batch []byte) (int64, error) {
	info, err := o.p.Append(batch, -1)
	if errors.Is(err, replica.ErrNotEnoughReplicas) {
		err = fmt.Errorf("%w: %v", kerr.NotEnoughReplicas, err)
	}
	return info.FirstOffset, err
}

func (o offsetsPartition) Read(offset int64, maxBytes int32) ([]byte, error) {
	l := o.p.Log()
	return l.Read(offset, maxBytes, l.HighWatermark(), true)
}

func (o offsetsPartition) LogStartOffset() int64 { return o.p.Log().LogStartOffset() }
func (o offsetsPartition) HighWatermark() int64  { return o.p.Log().HighWatermark() }
