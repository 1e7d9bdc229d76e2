package api

// DeleteGroups (key 42), versions 0-3: deletes empty groups and their
// offsets (tombstones in __consumer_offsets); a group with members answers
// NON_EMPTY_GROUP. Served by internal/group.
//
// Versions: v1 no change; v2 flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) deleteGroups(ctx context.Context, _ *network.Conn, req *kmsg.DeleteGroupsRequest) (kmsg.Response, error) {
	return h.d.Groups.DeleteGroups(ctx, req), nil
}
