package api

// Leader hints (KIP-951): a Produce (v10+) or Fetch (v16+) partition
// answered NOT_LEADER_OR_FOLLOWER carries the leader and leader epoch
// this broker's metadata knows, and the response lists that leader's
// endpoint on the listener the request came in on, so the client can
// re-route without a Metadata round trip. A leader that is unknown,
// fenced or without an endpoint on the listener is left out (-1).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
)

// leaderHints answers the NOT_LEADER_OR_FOLLOWER partitions of one
// response: the leader's endpoints are looked up once per response, and
// each leader is listed once.
type leaderHints struct {
	im      *metadata.Image
	brokers []brokerEndpoint // live brokers with an endpoint on the request's listener
	seen    map[int32]bool   // leaders already listed
}

func (h *Handler) newLeaderHints(listener string) *leaderHints {
	im := h.image()
	return &leaderHints{im: im, brokers: brokersOn(im, listener, false), seen: map[int32]bool{}}
}

// hint returns the partition's leader and epoch (by name, or by id when
// name is ""), and the leader's endpoint when it is to be listed now; ok
// is false when the leader is unknown, fenced or has no endpoint here.
func (lh *leaderHints) hint(name string, id [16]byte, partition int32) (leader, epoch int32, list *brokerEndpoint, ok bool) {
	t := lh.im.Topics[name]
	if name == "" {
		t = lh.im.TopicsByID[id]
	}
	if t == nil || partition < 0 || int(partition) >= len(t.Partitions) {
		return -1, -1, nil, false
	}
	p := t.Partitions[partition]
	for i := range lh.brokers {
		if b := &lh.brokers[i]; b.id == p.Leader {
			if !lh.seen[b.id] {
				lh.seen[b.id] = true
				list = b
			}
			return p.Leader, p.LeaderEpoch, list, true
		}
	}
	return -1, -1, nil, false
}

// produceLeaderHints fills CurrentLeader and Brokers of a Produce
// response (v10+).
func (h *Handler) produceLeaderHints(resp *kmsg.ProduceResponse, listener string) {
	if resp.Version < 10 {
		return
	}
	lh := h.newLeaderHints(listener)
	for i := range resp.Topics {
		t := &resp.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.ErrorCode != kerr.NotLeaderForPartition.Code {
				continue
			}
			leader, epoch, b, ok := lh.hint(t.Topic, t.TopicID, p.Partition)
			if !ok {
				continue
			}
			p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = leader, epoch
			if b != nil {
				rb := kmsg.NewProduceResponseBroker()
				rb.NodeID, rb.Host, rb.Port, rb.Rack = b.id, b.host, b.port, b.rack
				resp.Brokers = append(resp.Brokers, rb)
			}
		}
	}
}

// fetchLeaderHints fills CurrentLeader and Brokers of a Fetch response
// (v16+).
func (h *Handler) fetchLeaderHints(resp *kmsg.FetchResponse, listener string) {
	if resp.Version < 16 {
		return
	}
	lh := h.newLeaderHints(listener)
	for i := range resp.Topics {
		t := &resp.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.ErrorCode != kerr.NotLeaderForPartition.Code {
				continue
			}
			leader, epoch, b, ok := lh.hint(t.Topic, t.TopicID, p.Partition)
			if !ok {
				continue
			}
			p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = leader, epoch
			if b != nil {
				rb := kmsg.NewFetchResponseBroker()
				rb.NodeID, rb.Host, rb.Port, rb.Rack = b.id, b.host, b.port, b.rack
				resp.Brokers = append(resp.Brokers, rb)
			}
		}
	}
}
