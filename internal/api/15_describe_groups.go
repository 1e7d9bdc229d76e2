package api

// DescribeGroups (key 15), versions 0-6: state, protocol and members
// (with their metadata and assignment) of each group. Served by
// internal/group.
//
// Versions: v1 throttle; v3 authorized operations (KIP-430: we report
// none, -2147483648); v4 group.instance.id; v5 flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) describeGroups(ctx context.Context, _ *network.Conn, req *kmsg.DescribeGroupsRequest) (kmsg.Response, error) {
	return h.d.Groups.DescribeGroups(ctx, req), nil
}
