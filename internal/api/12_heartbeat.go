package api

// Heartbeat (key 12), versions 0-4: keeps a member's session alive and
// tells it a rebalance started (REBALANCE_IN_PROGRESS). Served by
// internal/group.
//
// Versions: v1 throttle; v3 group.instance.id (KIP-345); v4 flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) heartbeat(ctx context.Context, _ *network.Conn, req *kmsg.HeartbeatRequest) (kmsg.Response, error) {
	return h.d.Groups.Heartbeat(ctx, req), nil
}
