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

// WriteTxnMarkers writes m's marker to each partition and waits until the
// high watermark of each passed its marker; the errors are *kerr.Error
// values (txn.MarkerWriter).
//
// Like Kafka's KafkaApis.handleWriteTxnMarkersRequest (an append with
// acks=-1), a marker counts as written only once every ISR member has it:
// the coordinator then stores the transaction's Complete state, and a
// marker lost with a failed leader would leave the transaction open on
// that partition for good (its last stable offset stuck). The group
// coordinator learns of a marker on __consumer_offsets only once it is
// replicated too (Kafka completes the group's pending transactional
// offsets in the append's callback). Writes go first and the waits
// after, so the partitions replicate in parallel.
func (w localMarkers) WriteTxnMarkers(ctx context.Context, m txn.Marker) []error {
	errs := make([]error, len(m.Partitions))
	type written struct {
		i   int
		p   *replica.Partition
		end int64
	}
	var waits []written
	for i, tp := range m.Partitions {
		p, off, err := w.write(m, tp)
		if err != nil {
			errs[i] = kerr.ErrorForCode(api.ErrorCode(err))
			continue
		}
		waits = append(waits, written{i: i, p: p, end: off + 1})
	}
	if len(waits) == 0 {
		return errs
	}
	wctx, cancel := context.WithTimeout(ctx, markerAppendTimeout)
	defer cancel()
	for _, wt := range waits {
		if err := wt.p.WaitReplicated(wctx, wt.end); err != nil {
			errs[wt.i] = kerr.ErrorForCode(api.ErrorCode(err))
			continue
		}
		if tp := m.Partitions[wt.i]; tp.Topic == offsetsTopic && w.groups != nil {
			w.groups.CompleteTxn(tp.Partition, m.ProducerID, m.ProducerEpoch, m.Commit)
		}
	}
	return errs
}

// write appends m's marker to tp as leader and returns the partition and
// the marker's offset.
func (w localMarkers) write(m txn.Marker, tp txn.TopicPartition) (*replica.Partition, int64, error) {
	p, err := w.replicas.Partition(tp.Topic, tp.Partition)
	if err != nil {
		return nil, -1, err
	}
	off, err := p.WriteTxnMarker(storage.TxnMarker{
		ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch, Commit: m.Commit, CoordinatorEpoch: m.CoordinatorEpoch,
	})
	if err != nil {
		return nil, -1, err
	}
	return p, off, nil
}
