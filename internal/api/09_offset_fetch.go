package api

// OffsetFetch (key 9), versions 0-9: a group's committed offsets; offset
// -1 with no error for a partition never committed. Served by
// internal/group.
//
// Versions: v2 all topics (null list) and a top-level error; v3
// throttle; v5 leader epoch (KIP-320); v6 flexible; v7 require stable
// (KIP-447); v8 several groups per request (KIP-709); v9 member id and
// epoch (KIP-848, unused by classic groups).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) offsetFetch(ctx context.Context, _ *network.Conn, req *kmsg.OffsetFetchRequest) (kmsg.Response, error) {
	return h.d.Groups.OffsetFetch(ctx, req), nil
}
