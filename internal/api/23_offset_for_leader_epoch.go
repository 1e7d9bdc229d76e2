package api

// OffsetForLeaderEpoch (key 23), versions 0-4.
//
// For each partition: the largest leader epoch <= the requested one that
// this leader's log has, and the offset where it ends (the start offset
// of the next epoch, or the log end offset for the latest epoch), from
// the leader-epoch-checkpoint cache (replica.Partition.OffsetForLeaderEpoch,
// Kafka's Partition.lastOffsetForLeaderEpoch and
// LeaderEpochFileCache.endOffsetFor). Followers (replica id >= 0) use it
// to find where their log diverges from the new leader's after a leader
// change (KIP-101/279); consumers (replica id -1, KIP-320) to detect a
// truncation below the position they consumed. Both get the same answer.
// An epoch newer than the latest, or -1, answers epoch -1 and offset -1
// (UNDEFINED); one older than every epoch the log still holds answers
// that epoch with the start offset of the first one kept.
//
// The current leader epoch (v2+, -1 none) is checked first, as Kafka
// does: older than ours FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH;
// then only the leader answers (NOT_LEADER_OR_FOLLOWER on a follower).
// Other per partition codes: UNKNOWN_TOPIC_OR_PARTITION,
// KAFKA_STORAGE_ERROR. Epoch and offset are -1 on error.
//
// Versions: v1 leader epoch in the response (KIP-279); v2 current leader
// epoch, throttle (KIP-320); v3 replica id (KIP-392); v4 flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) offsetForLeaderEpoch(_ context.Context, _ *network.Conn, req *kmsg.OffsetForLeaderEpochRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	resp.Topics = make([]kmsg.OffsetForLeaderEpochResponseTopic, 0, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetForLeaderEpochResponseTopicPartition, 0, len(rt.Partitions))
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			current := rp.CurrentLeaderEpoch
			if req.Version < 2 {
				current = -1
			}
			p, err := h.d.Replicas.Replica(rt.Topic, rp.Partition)
			if err == nil {
				sp.LeaderEpoch, sp.EndOffset, err = p.OffsetForLeaderEpoch(current, rp.LeaderEpoch)
			}
			if err != nil {
				sp.ErrorCode = h.errorCode(err, "offset for leader epoch", "topic", rt.Topic, "partition", rp.Partition)
				sp.LeaderEpoch, sp.EndOffset = -1, -1
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
