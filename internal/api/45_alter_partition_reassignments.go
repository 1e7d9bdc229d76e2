package api

// AlterPartitionReassignments (key 45), versions 0-1.
//
// Delegated to the active controller (forwarded from any broker, as
// Kafka 4 does), which validates and commits every partition's move in
// one metadata entry (internal/controller/reassign.go): a target replica
// list starts a move (the new replicas are added, catch up, join the
// ISR; then the removed ones leave and, if the leader was removed, a
// target replica leads), a null list cancels one. Per-partition errors
// are Kafka's: UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT
// (empty list, a broker twice or not registered, a cancel that needs an
// unclean election), NO_REASSIGNMENT_IN_PROGRESS (cancel of none),
// INVALID_REPLICATION_FACTOR (v1, AllowReplicationFactorChange false
// and the count changes). The answer comes once the move has started
// (or completed, when the ISR already allowed it); its progress is in
// ListPartitionReassignments (46).
//
// Differences from Kafka: a partition named twice in one request
// answers INVALID_REQUEST for the second (Kafka applies both). No
// authorization (Samsa has no ACLs yet).
//
// Versions: v0 flexible (KIP-455); v1 AllowReplicationFactorChange
// (KIP-860).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) alterPartitionReassignments(ctx context.Context, _ *network.Conn, req *kmsg.AlterPartitionAssignmentsRequest) (kmsg.Response, error) {
	ctx, cancel := adminDeadline(ctx, req.TimeoutMillis)
	defer cancel()
	return h.ctrl(ctx).AlterPartitionReassignments(ctx, req), nil
}
