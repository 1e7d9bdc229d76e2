package api

// CreatePartitions (key 37), versions 0-3.
//
// Delegated to the controller: partition counts only grow (a smaller or
// equal count answers INVALID_PARTITIONS), with an optional manual
// assignment of the new partitions' replicas; ValidateOnly is honoured.
//
// One request may add at most controller.MaxRecordsPerUserOp (10,000)
// partitions in all: the topic that would cross the bound, and every
// later one, answers POLICY_VIOLATION (Kafka fails them too, though with
// UNKNOWN_SERVER_ERROR). New partitions that could not be opened on this
// broker answer KAFKA_STORAGE_ERROR, as in CreateTopics.
//
// TimeoutMillis bounds the operation as in CreateTopics (19): past it
// the controller adds nothing more and answers REQUEST_TIMED_OUT; a
// forwarding broker stops at it; a timeout <= 0 adds the partitions
// without waiting and answers REQUEST_TIMED_OUT for each such topic
// (Kafka's ZooKeeper-era behaviour; see docs/cluster.md).
//
// Versions: v1 throttle after response; v2 flexible; v3 no change.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) createPartitions(ctx context.Context, _ *network.Conn, req *kmsg.CreatePartitionsRequest) (kmsg.Response, error) {
	ctx, cancel := adminDeadline(ctx, req.TimeoutMillis)
	defer cancel()
	im := h.image()
	resp := h.ctrl(ctx).CreatePartitions(ctx, req)
	if req.ValidateOnly {
		return resp, nil
	}
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		if rt.ErrorCode != 0 {
			continue
		}
		first := int32(0)
		if t := im.Topics[rt.Topic]; t != nil {
			first = int32(len(t.Partitions))
		}
		if err := h.offlinePartitions(rt.Topic, first); err != nil {
			rt.ErrorCode, rt.ErrorMessage = kerr.KafkaStorageError.Code, errorMessage(err)
		} else if req.TimeoutMillis <= 0 {
			rt.ErrorCode, rt.ErrorMessage = kerr.RequestTimedOut.Code, notWaited("partitions created")
		}
	}
	return resp, nil
}
