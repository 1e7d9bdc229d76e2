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

// leaderOf returns a partition's leader and epoch from im (by name, or
// by id when name is ""), with the leader's endpoint on listener; ok is
// false when the leader is unknown, fenced or has no such endpoint.
func leaderOf(im *metadata.Image, name string, id [16]byte, partition int32, listener string) (int32, int32, brokerEndpoint, bool) {
	t := im.Topics[name]
	if name == "" {
		t = im.TopicsByID[id]
	}
	if t == nil || partition < 0 || int(partition) >= len(t.Partitions) {
		return -1, -1, brokerEndpoint{}, false
	}
	p := t.Partitions[partition]
	for _, b := range brokersOn(im, listener, false) {
		if b.id == p.Leader {
			return p.Leader, p.LeaderEpoch, b, true
		}
	}
	return -1, -1, brokerEndpoint{}, false
}

// produceLeaderHints fills CurrentLeader and Brokers of a Produce
// response (v10+).
func (h *Handler) produceLeaderHints(resp *kmsg.ProduceResponse, listener string) {
	if resp.Version < 10 {
		return
	}
	im := h.image()
	seen := map[int32]bool{}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.ErrorCode != kerr.NotLeaderForPartition.Code {
				continue
			}
			leader, epoch, b, ok := leaderOf(im, t.Topic, t.TopicID, p.Partition, listener)
			if !ok {
				continue
			}
			p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = leader, epoch
			if !seen[leader] {
				seen[leader] = true
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
	im := h.image()
	seen := map[int32]bool{}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.ErrorCode != kerr.NotLeaderForPartition.Code {
				continue
			}
			leader, epoch, b, ok := leaderOf(im, t.Topic, t.TopicID, p.Partition, listener)
			if !ok {
				continue
			}
			p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = leader, epoch
			if !seen[leader] {
				seen[leader] = true
				rb := kmsg.NewFetchResponseBroker()
				rb.NodeID, rb.Host, rb.Port, rb.Rack = b.id, b.host, b.port, b.rack
				resp.Brokers = append(resp.Brokers, rb)
			}
		}
	}
}
