package api

// WriteTxnMarkers (key 27), versions 0-1.
//
// The transaction coordinator's order to end transactions on partitions
// this broker leads. Served for inter-broker use: each marker is written
// through Deps.LocalMarkers (internal/server's localMarkers), the same
// path the local coordinator uses for its own partitions
// (replica.Partition.WriteTxnMarker, then for __consumer_offsets
// group.Coordinator.CompleteTxn). Errors are per partition:
// UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER,
// NOT_ENOUGH_REPLICAS, TRANSACTION_COORDINATOR_FENCED (a coordinator
// epoch older than one already seen for the producer), INVALID_TXN_STATE,
// INVALID_PRODUCER_EPOCH, KAFKA_STORAGE_ERROR.
//
// Versions: v1 flexible. v2 (transaction version, KIP-890 part 2) is not
// served.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
	"samsa/internal/txn"
)

func (h *Handler) writeTxnMarkers(ctx context.Context, _ *network.Conn, req *kmsg.WriteTxnMarkersRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	w := h.d.LocalMarkers
	if w == nil {
		return nil, errors.New("api: WriteTxnMarkers without a marker writer")
	}
	for _, rm := range req.Markers {
		m := txn.Marker{ProducerID: rm.ProducerID, ProducerEpoch: rm.ProducerEpoch, Commit: rm.Committed, CoordinatorEpoch: rm.CoordinatorEpoch}
		for _, t := range rm.Topics {
			for _, p := range t.Partitions {
				m.Partitions = append(m.Partitions, txn.TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
		errs := w.WriteTxnMarkers(ctx, m)
		sm := kmsg.NewWriteTxnMarkersResponseMarker()
		sm.ProducerID = rm.ProducerID
		k := 0
		for _, t := range rm.Topics {
			st := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			st.Topic = t.Topic
			for _, p := range t.Partitions {
				sp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				sp.Partition = p
				if errs[k] != nil {
					sp.ErrorCode = ErrorCode(errs[k])
				}
				k++
				st.Partitions = append(st.Partitions, sp)
			}
			sm.Topics = append(sm.Topics, st)
		}
		resp.Markers = append(resp.Markers, sm)
	}
	return resp, nil
}
