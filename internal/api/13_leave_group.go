package api

// LeaveGroup (key 13), versions 0-5: members leave (v3+: several at once,
// static members by group.instance.id, KIP-345) and the group rebalances.
// Served by internal/group.
//
// Versions: v1 throttle; v3 batched members; v4 flexible; v5 reason
// (KIP-800).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) leaveGroup(ctx context.Context, _ *network.Conn, req *kmsg.LeaveGroupRequest) (kmsg.Response, error) {
	return h.d.Groups.LeaveGroup(ctx, req), nil
}
