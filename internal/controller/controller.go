// Package controller is the metadata controller: it validates cluster
// changes (topics, partitions, configs, producer ids, broker registration)
// against the current image and commits them as records to the metadata log.
package controller

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
)

// Controller validates requests against the current image and appends
// metadata records. After a method returns, the resulting image has been
// published (metadata.Publisher.Image reflects it) and every listener has
// applied it (logs of new partitions exist).
type Controller struct{}

// CreateTopics serves a CreateTopics request (validate-only, per-topic
// configs, replica assignment, num.partitions/default.replication.factor
// for -1), answering per topic.
func (c *Controller) CreateTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	panic("unimplemented")
}

// DeleteTopics serves DeleteTopics by name or topic id.
func (c *Controller) DeleteTopics(ctx context.Context, req *kmsg.DeleteTopicsRequest) *kmsg.DeleteTopicsResponse {
	panic("unimplemented")
}

// CreatePartitions serves CreatePartitions (increase only).
func (c *Controller) CreatePartitions(ctx context.Context, req *kmsg.CreatePartitionsRequest) *kmsg.CreatePartitionsResponse {
	panic("unimplemented")
}

// AutoCreateTopic creates topic with the broker defaults (auto-creation
// from Metadata/Produce). It returns the Kafka error code (0 on success,
// TOPIC_ALREADY_EXISTS is also success for callers).
func (c *Controller) AutoCreateTopic(ctx context.Context, topic string) int16 {
	panic("unimplemented")
}

// AllocateProducerID hands out a new unique producer id (persisted in the
// metadata log, so ids are never reused across restarts).
func (c *Controller) AllocateProducerID(ctx context.Context) (int64, error) {
	panic("unimplemented")
}

// Image returns the latest image.
func (c *Controller) Image() *metadata.Image { panic("unimplemented") }
