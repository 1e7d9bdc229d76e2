package api

// OffsetCommit (key 8), versions 0-9: a group's committed offsets,
// written to __consumer_offsets before they are acknowledged. Commits to
// a topic-partition that does not exist answer UNKNOWN_TOPIC_OR_PARTITION
// (the coordinator asks the metadata image). Served by internal/group.
//
// Versions: v1 generation and member id; v2 retention time (ignored from
// v5, removed); v3 throttle; v6 leader epoch (KIP-320); v7
// group.instance.id (KIP-345); v8 flexible; v9 no change for classic
// groups (KIP-848).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) offsetCommit(ctx context.Context, _ *network.Conn, req *kmsg.OffsetCommitRequest) (kmsg.Response, error) {
	return h.d.Groups.OffsetCommit(ctx, req), nil
}
