package api

// ListGroups (key 16), versions 0-5: the groups this coordinator owns.
// Served by internal/group.
//
// Versions: v1 throttle; v3 flexible; v4 states filter (KIP-518); v5
// types filter (KIP-848).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) listGroups(ctx context.Context, _ *network.Conn, req *kmsg.ListGroupsRequest) (kmsg.Response, error) {
	return h.d.Groups.ListGroups(ctx, req), nil
}
