package api

// DescribeTransactions (key 65), version 0.
//
// Describes transactional ids this node coordinates
// (internal/txn.Coordinator.Describe): state (Kafka's names: Empty,
// Ongoing, PrepareCommit, ...), timeout, start timestamp (-1 when no
// transaction is open), producer id and epoch, and the partitions of the
// open transaction. Codes per id: TRANSACTIONAL_ID_NOT_FOUND,
// NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
// COORDINATOR_NOT_AVAILABLE.
//
// Versions: v0 only (KIP-664).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) describeTransactions(_ context.Context, _ *network.Conn, req *kmsg.DescribeTransactionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	answered := make(map[string]bool, len(req.TransactionalIDs))
	for _, id := range req.TransactionalIDs {
		// An id listed more than once is answered once.
		if answered[id] {
			continue
		}
		answered[id] = true
		s := kmsg.NewDescribeTransactionsResponseTransactionState()
		s.TransactionalID = id
		s.StartTimestamp, s.ProducerID, s.ProducerEpoch = -1, -1, -1
		if h.d.Txns == nil {
			s.ErrorCode = kerr.CoordinatorNotAvailable.Code
			resp.TransactionStates = append(resp.TransactionStates, s)
			continue
		}
		d, code := h.d.Txns.Describe(id)
		if code != nil {
			s.ErrorCode = code.Code
			resp.TransactionStates = append(resp.TransactionStates, s)
			continue
		}
		s.State = d.State.String()
		s.TimeoutMillis = d.TimeoutMillis
		s.StartTimestamp = d.StartTimestamp
		s.ProducerID, s.ProducerEpoch = d.ProducerID, d.ProducerEpoch
		for _, tp := range d.Partitions {
			if n := len(s.Topics); n == 0 || s.Topics[n-1].Topic != tp.Topic {
				t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
				t.Topic = tp.Topic
				s.Topics = append(s.Topics, t)
			}
			t := &s.Topics[len(s.Topics)-1]
			t.Partitions = append(t.Partitions, tp.Partition)
		}
		resp.TransactionStates = append(resp.TransactionStates, s)
	}
	return resp, nil
}
