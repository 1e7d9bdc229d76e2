package api

// InitProducerID (key 22), versions 0-5.
//
// Idempotent producers (no transactional id) get a new producer id from
// the controller (reserved in blocks in the metadata log, never reused)
// with epoch 0. When the client passes its current producer id and epoch
// (v3+, KIP-360, after an OUT_OF_ORDER_SEQUENCE_NUMBER or similar) it gets
// a fresh id as well: this is what Kafka's TransactionCoordinator does for
// non-transactional producers, and a fresh id has no sequence history, so
// it is always safe.
//
// Differences from Kafka: transactions are not implemented yet. A
// transactional id answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which
// clients treat as fatal (a retriable code such as
// COORDINATOR_NOT_AVAILABLE would make them retry forever). The
// transaction timeout is therefore not validated.
//
// Versions: v1 throttle after response; v2 flexible; v3 producer id and
// epoch for epoch bumps (KIP-360); v4 PRODUCER_FENCED (KIP-588); v5
// KIP-890. Newer versions are not in kmsg v1.15.0, so not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) initProducerID(ctx context.Context, _ *network.Conn, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		if *req.TransactionalID == "" {
			resp.ErrorCode = kerr.InvalidRequest.Code
		} else {
			resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		}
		return resp, nil
	}
	id, err := h.d.Controller.AllocateProducerID(ctx)
	if err != nil {
		h.logger.Error("allocate producer id", "err", err)
		// Retriable: the client asks again.
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
