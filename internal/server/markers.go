package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/internal/api"
	"samsa/internal/group"
	"samsa/internal/replica"
	"samsa/internal/storage"
	"samsa/internal/txn"
)

// localMarkers writes transaction markers to this broker's partitions:
// what WriteTxnMarkers (27) serves, and the local part of the
// coordinator's interbroker.Markers (partitions led elsewhere get a
// WriteTxnMarkers request).
type localMarkers struct {
	replicas *replica.Manager
	groups   *group.Coordinator // nil: no group coordinator to tell
}

var _ txn.MarkerWriter = localMarkers{}

// WriteTxnMarkers writes m's marker to each partition; the errors are
// *kerr.Error values (txn.MarkerWriter).
func (w localMarkers) WriteTxnMarkers(_ context.Context, m txn.Marker) []error {
	errs := make([]error, len(m.Partitions))
	for i, tp := range m.Partitions {
		if code := w.write(m, tp); code != 0 {
			errs[i] = kerr.ErrorForCode(code)
		}
	}
	return errs
}

func (w localMarkers) write(m txn.Marker, tp txn.TopicPartition) int16 {
	p, err := w.replicas.Partition(tp.Topic, tp.Partition)
	if err != nil {
		return api.ErrorCode(err)
	}
	_, err = p.WriteTxnMarker(storage.TxnMarker{
		ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch, Commit: m.Commit, CoordinatorEpoch: m.CoordinatorEpoch,
	})
	if err != nil {
		return api.ErrorCode(err)
	}
	if tp.Topic == offsetsTopic && w.groups != nil {
		w.groups.CompleteTxn(tp.Partition, m.ProducerID, m.ProducerEpoch, m.Commit)
	}
	return 0
}
