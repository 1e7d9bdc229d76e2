package api

// CreateTopics (key 19), versions 0-7.
//
// Delegated to the controller, which validates every topic (name, collision
// of '.' and '_', configs, partitions, replication factor or manual
// assignment) against the current image and answers per topic; a created
// topic's logs exist before the response is sent. ValidateOnly (v1+) is
// honoured. num.partitions / default.replication.factor replace -1 (v4+).
//
// Differences from Kafka: the timeout is not used: creation completes
// before the answer (single controller, synchronous publish), so there is
// nothing to wait for and REQUEST_TIMED_OUT never occurs.
//
// Versions: v1 validate only, error messages (KIP-108); v2 throttle; v3
// no change; v4 -1 partitions/replication factor for broker defaults
// (KIP-464); v5 flexible, configs and counts in the response (KIP-525);
// v6 no change; v7 topic ids in the response (KIP-516).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) createTopics(ctx context.Context, _ *network.Conn, req *kmsg.CreateTopicsRequest) (kmsg.Response, error) {
	return h.d.Controller.CreateTopics(ctx, req), nil
}
