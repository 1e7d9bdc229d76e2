package api

// AddOffsetsToTxn (key 25), versions 0-4.
//
// Adds the group's partition of __consumer_offsets
// (internal/group.PartitionFor) to the producer's transaction, so the
// transaction's end writes a marker there too; the offsets themselves
// come with TxnOffsetCommit to the group coordinator. Codes are
// AddPartitionsToTxn's; an empty group id is INVALID_GROUP_ID.
//
// Versions: v1 throttle after response; v2 PRODUCER_FENCED (KIP-588);
// v3 flexible; v4 KIP-890.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/group"
	"samsa/internal/network"
	"samsa/internal/txn"
)

func (h *Handler) addOffsetsToTxn(ctx context.Context, _ *network.Conn, req *kmsg.AddOffsetsToTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	switch {
	case h.d.Txns == nil:
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	case req.Group == "":
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	if err := h.createOffsetsTopic(ctx); err != nil {
		h.logger.Warn("add offsets to txn", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	n := h.d.Config.OffsetsTopicNumPartitions
	if t := h.image().Topics[offsetsTopic]; t != nil {
		n = int32(len(t.Partitions))
	}
	tp := txn.TopicPartition{Topic: offsetsTopic, Partition: group.PartitionFor(req.Group, n)}
	resp.ErrorCode = txnCode(h.d.Txns.AddPartitions(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, []txn.TopicPartition{tp}), req.Version, 2)
	return resp, nil
}
