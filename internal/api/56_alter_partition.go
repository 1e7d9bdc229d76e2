package api

// AlterPartition (key 56), versions 0-3.
//
// Controller RPC (KIP-497): a partition leader asks the active controller
// to change the partition's ISR (a follower lagging for
// replica.lag.time.max.ms leaves it, a caught-up one rejoins), naming the
// leader epoch and partition epoch it knows. Served on the controller
// listener by the node's own controller (internal/controller,
// alter_partition.go): NOT_CONTROLLER on a node without the controller
// role or that is not the active controller. Validation and per-partition
// codes are Kafka's (ReplicationControlManager.alterPartition):
// STALE_BROKER_EPOCH, UNKNOWN_TOPIC_ID / UNKNOWN_TOPIC_OR_PARTITION,
// NOT_CONTROLLER, FENCED_LEADER_EPOCH, INVALID_REQUEST (sender not the
// leader, an ISR that is not a subset of the replicas or lacks the
// leader), INVALID_UPDATE_VERSION, INELIGIBLE_REPLICA (v2+;
// OPERATION_NOT_ATTEMPTED before).
//
// Differences from Kafka: leader recovery after an unclean election
// (KIP-704) is not tracked: a LeaderRecoveryState of RECOVERING is
// refused with INVALID_REQUEST and answers always say RECOVERED.
//
// Versions: v1 leader recovery state (KIP-704); v2 topic ids (KIP-841);
// v3 broker epochs of the new ISR members (KIP-903).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) alterPartition(ctx context.Context, _ *network.Conn, req *kmsg.AlterPartitionRequest) (kmsg.Response, error) {
	if h.d.LocalController == nil {
		resp := req.ResponseKind().(*kmsg.AlterPartitionResponse)
		resp.ErrorCode = kerr.NotController.Code
		return resp, nil
	}
	return h.d.LocalController.AlterPartition(ctx, req), nil
}
