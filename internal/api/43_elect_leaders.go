package api

// ElectLeaders (key 43), versions 0-2.
//
// Delegated to the active controller (forwarded from any broker, as
// CreateTopics is), which elects per partition with Kafka's semantics
// (internal/controller/elect.go): ElectionType 0 makes the preferred
// (first) replica leader when it is in the ISR and active, answering
// ELECTION_NOT_NEEDED when it already leads and
// PREFERRED_LEADER_NOT_AVAILABLE when it cannot; ElectionType 1
// (unclean) elects a leader only for a partition without one, from
// outside the ISR when no ISR member is alive (ELECTION_NOT_NEEDED when
// it has a leader, ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is
// alive). Unknown topics or partitions answer UNKNOWN_TOPIC_OR_PARTITION.
// A null topic list elects every partition that needs it and lists only
// those (every topic is listed); an empty list does nothing.
//
// Errors of the whole request are set at the top level (v1+) and on
// every listed partition, as Kafka's ElectLeadersRequest.getErrorResponse
// does: NOT_CONTROLLER, INVALID_REQUEST for an unknown election type,
// REQUEST_TIMED_OUT when TimeoutMillis (from the request's arrival; <= 0:
// the broker's own 30 s bound) passes before the election is committed or
// before a forwarding broker's metadata shows it (then the election is
// made). No ACLs: no CLUSTER_AUTHORIZATION_FAILED.
//
// Versions: v1 election type and top-level error code (KIP-460); v2
// flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) electLeaders(ctx context.Context, _ *network.Conn, req *kmsg.ElectLeadersRequest) (kmsg.Response, error) {
	ctx, cancel := adminDeadline(ctx, req.TimeoutMillis)
	defer cancel()
	if req.Version == 0 {
		req.ElectionType = 0 // v0 has no election type: preferred
	}
	resp := h.ctrl(ctx).ElectLeaders(ctx, req)
	resp.Version = req.Version
	return resp, nil
}
