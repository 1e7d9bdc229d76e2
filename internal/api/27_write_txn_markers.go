package api

// WriteTxnMarkers (key 27), versions 0-1.
//
// The transaction coordinator's order to end transactions on partitions
// this broker leads. Served for inter-broker use: each marker is written
// through LocalMarkers, the same path the local coordinator uses
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

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/group"
	"samsa/internal/network"
	"samsa/internal/replica"
	"samsa/internal/storage"
	"samsa/internal/txn"
)

// LocalMarkers writes transaction markers to this broker's partitions:
// the transaction coordinator's txn.MarkerWriter on a single node, and
// what WriteTxnMarkers serves. In a cluster the coordinator's writer
// sends WriteTxnMarkers to each partition's leader instead.
type LocalMarkers struct {
	Replicas *replica.Manager
	Groups   *group.Coordinator // nil: no group coordinator to tell
}

var _ txn.MarkerWriter = LocalMarkers{}

// WriteTxnMarkers writes m's marker to each partition; the errors are
// *kerr.Error values (txn.MarkerWriter).
func (w LocalMarkers) WriteTxnMarkers(_ context.Context, m txn.Marker) []error {
	errs := make([]error, len(m.Partitions))
	for i, tp := range m.Partitions {
		if code := w.write(m, tp); code != 0 {
			errs[i] = kerr.ErrorForCode(code)
		}
	}
	return errs
}

func (w LocalMarkers) write(m txn.Marker, tp txn.TopicPartition) int16 {
	p, err := w.Replicas.Partition(tp.Topic, tp.Partition)
	if err != nil {
		return ErrorCode(err)
	}
	_, err = p.WriteTxnMarker(storage.TxnMarker{
		ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch, Commit: m.Commit, CoordinatorEpoch: m.CoordinatorEpoch,
	})
	if err != nil {
		return ErrorCode(err)
	}
	if tp.Topic == offsetsTopic && w.Groups != nil {
		w.Groups.CompleteTxn(tp.Partition, m.ProducerID, m.ProducerEpoch, m.Commit)
	}
	return 0
}

func (h *Handler) writeTxnMarkers(ctx context.Context, _ *network.Conn, req *kmsg.WriteTxnMarkersRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	w := LocalMarkers{Replicas: h.d.Replicas, Groups: h.d.Groups}
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
