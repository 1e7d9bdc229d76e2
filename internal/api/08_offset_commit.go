package api

// OffsetCommit (key 8), versions 0-10: a group's committed offsets,
// written to __consumer_offsets before they are acknowledged. Commits to
// a topic-partition that does not exist answer UNKNOWN_TOPIC_OR_PARTITION
// (the coordinator asks the metadata image). Served by internal/group.
//
// v10 names topics by id: each id is resolved to its name in the
// metadata image and the commit is served as v9 (the versions differ in
// nothing else); an unknown id answers UNKNOWN_TOPIC_ID for each of its
// partitions, and the response names topics by id again.
//
// Versions: v1 generation and member id; v2 retention time (ignored from
// v5, removed); v3 throttle; v6 leader epoch (KIP-320); v7
// group.instance.id (KIP-345); v8 flexible; v9 no change for classic
// groups (KIP-848); v10 topic ids instead of names (KIP-848, Kafka 4.2).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

// offsetsByNameVersion is the last OffsetCommit/OffsetFetch version that
// names topics; v10 names them by id and is served through it.
const offsetsByNameVersion = 9

func (h *Handler) offsetCommit(ctx context.Context, _ *network.Conn, req *kmsg.OffsetCommitRequest) (kmsg.Response, error) {
	if req.Version <= offsetsByNameVersion {
		return h.d.Groups.OffsetCommit(ctx, req), nil
	}
	im := h.image()
	byName := *req
	byName.Version = offsetsByNameVersion
	byName.Topics = make([]kmsg.OffsetCommitRequestTopic, 0, len(req.Topics))
	known := make([]bool, len(req.Topics))
	for i, t := range req.Topics {
		if mt := im.TopicsByID[t.TopicID]; mt != nil {
			known[i] = true
			t.Topic = mt.Name
			byName.Topics = append(byName.Topics, t)
		}
	}
	inner := h.d.Groups.OffsetCommit(ctx, &byName)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	resp.ThrottleMillis = inner.ThrottleMillis
	next := 0 // inner answers byName.Topics one for one
	for i, t := range req.Topics {
		var rt kmsg.OffsetCommitResponseTopic
		if known[i] {
			rt = inner.Topics[next]
			next++
		} else {
			rt = kmsg.NewOffsetCommitResponseTopic()
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.UnknownTopicID.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
		}
		rt.Topic, rt.TopicID = "", t.TopicID
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
