package api

// FindCoordinator (key 10), versions 0-6.
//
// There is no group or transaction coordinator yet, so every key answers
// COORDINATOR_NOT_AVAILABLE (retriable: clients back off and ask again).
// v4+ batches keys (KIP-699): each key is answered on its own.
//
// The API is advertised anyway: librdkafka 2.0.2 keeps compression off
// unless FindCoordinator is listed, and clients that never use groups
// still look for it.
//
// Differences from Kafka: Kafka answers a coordinator once the internal
// topic exists; we answer COORDINATOR_NOT_AVAILABLE until groups and
// transactions are implemented. Share-group coordinator keys (v6, type 2)
// are answered the same way.
//
// Versions: v1 coordinator type, error message, throttle; v2 throttle
// after response; v3 flexible; v4 batched keys (KIP-699); v5 no change
// (KIP-890); v6 share coordinator keys (KIP-932).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

// coordinatorMessage explains the COORDINATOR_NOT_AVAILABLE answers.
const coordinatorMessage = "samsa: group and transaction coordinators are not implemented yet"

func (h *Handler) findCoordinator(_ context.Context, _ *network.Conn, req *kmsg.FindCoordinatorRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	msg := coordinatorMessage
	if req.Version < 4 {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		resp.ErrorMessage = &msg
		resp.NodeID, resp.Port = -1, -1
		return resp, nil
	}
	resp.Coordinators = make([]kmsg.FindCoordinatorResponseCoordinator, 0, len(req.CoordinatorKeys))
	for _, key := range req.CoordinatorKeys {
		rc := kmsg.NewFindCoordinatorResponseCoordinator()
		rc.Key = key
		rc.NodeID, rc.Port = -1, -1
		rc.ErrorCode = kerr.CoordinatorNotAvailable.Code
		rc.ErrorMessage = &msg
		resp.Coordinators = append(resp.Coordinators, rc)
	}
	return resp, nil
}
