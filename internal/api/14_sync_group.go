package api

// SyncGroup (key 14), versions 0-5: the group leader hands in the
// assignment, every member gets its own. A follower's request parks until
// the leader's arrives (MayWait). Served by internal/group.
//
// Versions: v1 throttle; v3 group.instance.id (KIP-345); v4 flexible; v5
// protocol type/name (KIP-559).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) syncGroup(ctx context.Context, _ *network.Conn, req *kmsg.SyncGroupRequest) (kmsg.Response, error) {
	return h.d.Groups.SyncGroup(ctx, req), nil
}
