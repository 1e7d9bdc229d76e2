package api

// CreatePartitions (key 37), versions 0-3.
//
// Delegated to the controller: partition counts only grow (a smaller or
// equal count answers INVALID_PARTITIONS), with an optional manual
// assignment of the new partitions' replicas; ValidateOnly is honoured.
//
// Differences from Kafka: the timeout is not used (the new partitions'
// logs exist before the answer).
//
// Versions: v1 throttle after response; v2 flexible; v3 no change.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) createPartitions(ctx context.Context, _ *network.Conn, req *kmsg.CreatePartitionsRequest) (kmsg.Response, error) {
	return h.d.Controller.CreatePartitions(ctx, req), nil
}
