package api

// EndTxn (key 26), versions 0-4.
//
// Commits or aborts the producer's transaction
// (internal/txn.Coordinator.EndTxn): the coordinator stores
// PrepareCommit/PrepareAbort in __transaction_state, writes a marker to
// every partition of the transaction (and, for __consumer_offsets, makes
// the transactional offsets visible or drops them), then stores
// CompleteCommit/CompleteAbort. A retried EndTxn of a transaction that
// already ended the same way answers 0; the other way INVALID_TXN_STATE.
//
// Differences from Kafka: Kafka answers once the Prepare state is stored
// and writes the markers afterwards; Samsa answers once the markers are
// written too (bounded to 5 s, after which they are retried in the
// background), so the producer's next transaction does not start with a
// round of CONCURRENT_TRANSACTIONS retries.
//
// Codes: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
// COORDINATOR_NOT_AVAILABLE, INVALID_PRODUCER_ID_MAPPING,
// PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v2),
// CONCURRENT_TRANSACTIONS, INVALID_TXN_STATE.
//
// Versions: v1 throttle after response; v2 PRODUCER_FENCED (KIP-588); v3
// flexible; v4 KIP-890 part 1. v5 (transaction version 2) is not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) endTxn(ctx context.Context, _ *network.Conn, req *kmsg.EndTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if h.d.Txns == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	resp.ErrorCode = txnCode(h.d.Txns.EndTxn(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit), req.Version, 2)
	return resp, nil
}
