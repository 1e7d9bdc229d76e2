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
	want := map[int32]*replica.Partition{}
	if t := next.Topics[offsetsTopic]; t != nil {
		for i, mp := range t.Partitions {
			if mp.Leader != g.self {
				continue
			}
			if p, err := g.replicas.Partition(offsetsTopic, int32(i)); err == nil {
				want[int32(i)] = p
			}
		}
	}
	for id, p := range g.loaded {
		if want[id] != p {
			g.groups.Unload(id)
			delete(g.loaded, id)
		}
	}
	for id, p := range want {
		if g.loaded[id] == nil {
			g.groups.Load(id, offsetsPartition{p})
			g.loaded[id] = p
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
