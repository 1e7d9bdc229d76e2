package interbroker

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
	"samsa/internal/txn"
)

// Markers is the transaction coordinator's txn.MarkerWriter in a
// cluster: markers for partitions this broker leads go to Local, the
// others in one WriteTxnMarkers request per leader, to its endpoint on
// the inter-broker listener. A partition whose leader is unknown,
// fenced or unreachable answers NOT_LEADER_OR_FOLLOWER, which the
// coordinator retries.
type Markers struct {
	Client   *Client
	Local    txn.MarkerWriter
	Metadata *metadata.Publisher
	Self     int32
	// Listener is inter.broker.listener.name.
	Listener string
}

var _ txn.MarkerWriter = (*Markers)(nil)

// WriteTxnMarkers implements txn.MarkerWriter.
func (w *Markers) WriteTxnMarkers(ctx context.Context, m txn.Marker) []error {
	errs := make([]error, len(m.Partitions))
	im := w.Metadata.Image()
	byLeader := map[int32][]int{} // leader -> indexes into m.Partitions
	for i, tp := range m.Partitions {
		leader := w.Self // unknown partitions: the local writer answers them
		if t := im.Topics[tp.Topic]; t != nil && tp.Partition >= 0 && int(tp.Partition) < len(t.Partitions) {
			leader = t.Partitions[tp.Partition].Leader
		}
		byLeader[leader] = append(byLeader[leader], i)
	}
	var wg sync.WaitGroup
	for leader, idx := range byLeader {
		sub := m
		sub.Partitions = make([]txn.TopicPartition, len(idx))
		for k, i := range idx {
			sub.Partitions[k] = m.Partitions[i]
		}
		if leader == w.Self {
			for k, err := range w.Local.WriteTxnMarkers(ctx, sub) {
				errs[idx[k]] = err
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k, err := range w.remote(ctx, im, leader, sub) {
				errs[idx[k]] = err
			}
		}()
	}
	wg.Wait()
	return errs
}

// remote sends one WriteTxnMarkers to leader.
func (w *Markers) remote(ctx context.Context, im *metadata.Image, leader int32, m txn.Marker) []error {
	errs := make([]error, len(m.Partitions))
	fill := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	b, ok := im.Brokers[leader]
	if !ok || b.Fenced {
		return fill(kerr.NotLeaderForPartition)
	}
	addr := b.AddrOrFirst(w.Listener)
	if addr == "" {
		return fill(kerr.NotLeaderForPartition)
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	rm := kmsg.NewWriteTxnMarkersRequestMarker()
	rm.ProducerID, rm.ProducerEpoch, rm.Committed, rm.CoordinatorEpoch = m.ProducerID, m.ProducerEpoch, m.Commit, m.CoordinatorEpoch
	topicIdx := map[string]int{}
	for _, tp := range m.Partitions {
		i, ok := topicIdx[tp.Topic]
		if !ok {
			i = len(rm.Topics)
			topicIdx[tp.Topic] = i
			t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			t.Topic = tp.Topic
			rm.Topics = append(rm.Topics, t)
		}
		rm.Topics[i].Partitions = append(rm.Topics[i].Partitions, tp.Partition)
	}
	req.Markers = append(req.Markers, rm)
	r, err := w.Client.Request(ctx, addr, req)
	if err != nil {
		w.Client.logger.Warn("write txn markers", "leader", leader, "addr", addr, "err", err)
		return fill(kerr.NotLeaderForPartition)
	}
	resp := r.(*kmsg.WriteTxnMarkersResponse)
	codes := map[txn.TopicPartition]int16{}
	for _, sm := range resp.Markers {
		for _, st := range sm.Topics {
			for _, sp := range st.Partitions {
				codes[txn.TopicPartition{Topic: st.Topic, Partition: sp.Partition}] = sp.ErrorCode
			}
		}
	}
	for i, tp := range m.Partitions {
		code, ok := codes[tp]
		switch {
		case !ok:
			errs[i] = kerr.NotLeaderForPartition
		case code != 0:
			errs[i] = kerr.ErrorForCode(code)
		}
	}
	return errs
}
