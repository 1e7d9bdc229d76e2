package api

// OffsetDelete (key 47), version 0: deletes a group's committed offsets of
// some partitions (KIP-496); a partition of a topic the group's members
// subscribe to answers GROUP_SUBSCRIBED_TO_TOPIC. Served by internal/group.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) offsetDelete(ctx context.Context, _ *network.Conn, req *kmsg.OffsetDeleteRequest) (kmsg.Response, error) {
	return h.d.Groups.OffsetDelete(ctx, req), nil
}
