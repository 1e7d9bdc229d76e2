// Package replica is the broker's replica manager: it turns the partitions
// the metadata image assigns to this broker into open logs and serves
// appends and reads on them as leader (and, later, as follower).
package replica

import (
	"errors"

	"samsa/internal/storage"
)

// Errors (internal/api maps them to Kafka codes).
var (
	ErrUnknownTopicOrPartition = errors.New("replica: unknown topic or partition") // UNKNOWN_TOPIC_OR_PARTITION
	ErrNotLeader               = errors.New("replica: not leader or follower")     // NOT_LEADER_OR_FOLLOWER
	ErrNotEnoughReplicas       = errors.New("replica: not enough replicas")        // NOT_ENOUGH_REPLICAS
)

// Manager owns this broker's partitions.
type Manager struct{}

// Partition returns the partition if this broker leads it:
// ErrUnknownTopicOrPartition if the topic/partition does not exist,
// ErrNotLeader if another broker leads it.
func (m *Manager) Partition(topic string, partition int32) (*Partition, error) {
	panic("unimplemented")
}

// Partition is one partition this broker holds.
type Partition struct{}

// Log returns the partition's log (reads, offsets, Changed, timestamps).
func (p *Partition) Log() *storage.Log { panic("unimplemented") }

// LeaderEpoch is the current leader epoch.
func (p *Partition) LeaderEpoch() int32 { panic("unimplemented") }

// Append appends records as leader with the producer's acks (0, 1, -1)
// and advances the high watermark as replication allows (on a single node
// right away). With acks=-1 it returns ErrNotEnoughReplicas when the ISR is
// smaller than min.insync.replicas (nothing is appended then).
func (p *Partition) Append(records []byte, acks int16) (storage.AppendInfo, error) {
	panic("unimplemented")
}
