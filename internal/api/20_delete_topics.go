package api

// DeleteTopics (key 20), versions 0-6.
//
// Delegated to the controller: by name, or (v6+) by topic id (unknown id:
// UNKNOWN_TOPIC_ID). delete.topic.enable=false answers
// TOPIC_DELETION_DISABLED. The logs of a deleted topic are removed before
// the response is sent.
//
// TimeoutMillis bounds the operation as in CreateTopics (19): past it
// the controller deletes nothing more and answers REQUEST_TIMED_OUT; a
// forwarding broker stops at it; a timeout <= 0 deletes without waiting
// and answers REQUEST_TIMED_OUT for each deleted topic (Kafka's
// ZooKeeper-era behaviour; see docs/cluster.md).
//
// Versions: v1 throttle; v2 no change; v3 no change; v4 flexible; v5
// error messages; v6 topic ids (KIP-516).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) deleteTopics(ctx context.Context, _ *network.Conn, req *kmsg.DeleteTopicsRequest) (kmsg.Response, error) {
	ctx, cancel := adminDeadline(ctx, req.TimeoutMillis)
	defer cancel()
	resp := h.ctrl(ctx).DeleteTopics(ctx, req)
	if req.TimeoutMillis <= 0 {
		for i := range resp.Topics {
			if rt := &resp.Topics[i]; rt.ErrorCode == 0 {
				rt.ErrorCode, rt.ErrorMessage = kerr.RequestTimedOut.Code, notWaited("topic deleted")
			}
		}
	}
	return resp, nil
}
