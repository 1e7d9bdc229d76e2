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
// Transactional producers are served by the transaction coordinator
// (internal/txn.Coordinator.InitProducerID, Kafka's handleInitProducerId):
// the first call for an id allocates a producer id, each call bumps the
// epoch (fencing older producers of the same id), an ongoing transaction
// is aborted first (CONCURRENT_TRANSACTIONS: the client retries), and a
// transaction.timeout.ms above transaction.max.timeout.ms (or <= 0)
// answers INVALID_TRANSACTION_TIMEOUT. An empty transactional id is
// INVALID_REQUEST. A request for an id this node does not coordinate
// answers NOT_COORDINATOR; the client looks up the coordinator again.
// PRODUCER_FENCED (v4+, KIP-588) is INVALID_PRODUCER_EPOCH before v4.
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
		if h.d.Txns == nil {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp, nil
		}
		expPID, expEpoch := int64(-1), int16(-1)
		if req.Version >= 3 {
			expPID, expEpoch = req.ProducerID, req.ProducerEpoch
		}
		pid, epoch, code := h.d.Txns.InitProducerID(ctx, *req.TransactionalID, req.TransactionTimeoutMillis, expPID, expEpoch)
		if code != nil {
			resp.ErrorCode = txnCode(code, req.Version, 4)
			return resp, nil
		}
		resp.ProducerID, resp.ProducerEpoch = pid, epoch
		return resp, nil
	}
	id, err := h.ctrl(ctx).AllocateProducerID(ctx)
	if err != nil {
		h.logger.Error("allocate producer id", "err", err)
		// Retriable: the client asks again.
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
