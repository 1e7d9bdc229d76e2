package api

// DeleteTopics (key 20), versions 0-6.
//
// Delegated to the controller: by name, or (v6+) by topic id (unknown id:
// UNKNOWN_TOPIC_ID). delete.topic.enable=false answers
// TOPIC_DELETION_DISABLED. The logs of a deleted topic are removed before
// the response is sent.
//
// Differences from Kafka: the timeout is not used (deletion completes
// before the answer).
//
// Versions: v1 throttle; v2 no change; v3 no change; v4 flexible; v5
// error messages; v6 topic ids (KIP-516).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) deleteTopics(ctx context.Context, _ *network.Conn, req *kmsg.DeleteTopicsRequest) (kmsg.Response, error) {
	return h.ctrl(ctx).DeleteTopics(ctx, req), nil
}
