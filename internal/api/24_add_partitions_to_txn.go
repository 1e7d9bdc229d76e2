package api

// AddPartitionsToTxn (key 24), versions 0-4.
//
// v0-v3 (clients): adds the partitions to the producer's transaction at
// the transaction coordinator (internal/txn.Coordinator.AddPartitions),
// starting the transaction if none is ongoing; the one outcome answers
// every partition. A partition that does not exist answers
// UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED, as
// KafkaApis.handleAddPartitionsToTxnRequest does; nothing is added then.
//
// v4+ (brokers, KIP-890 part 1): several transactions per request; a
// transaction with VerifyOnly set is only checked (each partition answers
// 0 when it is in the ongoing transaction, else INVALID_TXN_STATE or the
// producer's error), as a partition leader asks before appending a
// transactional batch.
//
// Codes: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
// COORDINATOR_NOT_AVAILABLE, INVALID_PRODUCER_ID_MAPPING,
// PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v2),
// CONCURRENT_TRANSACTIONS while the previous transaction is ending,
// INVALID_TXN_STATE.
//
// Versions: v1 throttle after response; v2 PRODUCER_FENCED (KIP-588); v3
// flexible; v4 batched transactions and VerifyOnly (KIP-890). v5
// (transaction version 2, KIP-890 part 2) is not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
	"samsa/internal/txn"
)

func (h *Handler) addPartitionsToTxn(ctx context.Context, _ *network.Conn, req *kmsg.AddPartitionsToTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version < 4 {
		topics := make([]kmsg.AddPartitionsToTxnRequestTransactionTopic, len(req.Topics))
		for i, t := range req.Topics {
			topics[i] = kmsg.AddPartitionsToTxnRequestTransactionTopic{Topic: t.Topic, Partitions: t.Partitions}
		}
		codes := h.addTxnPartitions(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, false, topics, req.Version)
		for i, t := range req.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.Topic
			for j, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	for _, tr := range req.Transactions {
		codes := h.addTxnPartitions(ctx, tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tr.VerifyOnly, tr.Topics, req.Version)
		rtr := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rtr.TransactionalID = tr.TransactionalID
		for i, t := range tr.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			rt.Topic = t.Topic
			for j, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			rtr.Topics = append(rtr.Topics, rt)
		}
		resp.Transactions = append(resp.Transactions, rtr)
	}
	return resp, nil
}

// addTxnPartitions adds (or with verifyOnly checks) the partitions of one
// transaction and returns a code per partition, shaped like topics.
func (h *Handler) addTxnPartitions(ctx context.Context, id string, pid int64, epoch int16, verifyOnly bool,
	topics []kmsg.AddPartitionsToTxnRequestTransactionTopic, version int16,
) [][]int16 {
	codes := make([][]int16, len(topics))
	fill := func(code int16) {
		for i, t := range topics {
			codes[i] = make([]int16, len(t.Partitions))
			for j := range t.Partitions {
				codes[i][j] = code
			}
		}
	}
	if h.d.Txns == nil {
		fill(kerr.CoordinatorNotAvailable.Code)
		return codes
	}
	if verifyOnly {
		for i, t := range topics {
			codes[i] = make([]int16, len(t.Partitions))
			for j, p := range t.Partitions {
				code := h.d.Txns.VerifyPartition(id, pid, epoch, txn.TopicPartition{Topic: t.Topic, Partition: p})
				codes[i][j] = txnCode(code, version, 2)
			}
		}
		return codes
	}
	im := h.image()
	var tps []txn.TopicPartition
	missing := false
	for _, t := range topics {
		for _, p := range t.Partitions {
			if !partitionExists(im, t.Topic, p) {
				missing = true
			}
			tps = append(tps, txn.TopicPartition{Topic: t.Topic, Partition: p})
		}
	}
	if missing {
		for i, t := range topics {
			codes[i] = make([]int16, len(t.Partitions))
			for j, p := range t.Partitions {
				if partitionExists(im, t.Topic, p) {
					codes[i][j] = kerr.OperationNotAttempted.Code
				} else {
					codes[i][j] = kerr.UnknownTopicOrPartition.Code
				}
			}
		}
		return codes
	}
	fill(txnCode(h.d.Txns.AddPartitions(ctx, id, pid, epoch, tps), version, 2))
	return codes
}
