package api

// OffsetFetch (key 9), versions 0-10: a group's committed offsets; offset
// -1 with no error for a partition never committed. Served by
// internal/group. A partition or group listed more than once is answered
// once.
//
// v10 names topics by id: the ids are resolved in the metadata image and
// the request is served as v9 (the versions differ in nothing else); the
// answer names topics by id again. An unknown id answers UNKNOWN_TOPIC_ID
// for each of its partitions; with "all topics" (null), offsets of a topic
// that no longer exists (it has no id) are left out.
//
// Versions: v2 all topics (null list) and a top-level error; v3
// throttle; v5 leader epoch (KIP-320); v6 flexible; v7 require stable
// (KIP-447); v8 several groups per request (KIP-709); v9 member id and
// epoch (KIP-848, unused by classic groups); v10 topic ids instead of
// names (KIP-848, Kafka 4.2).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) offsetFetch(ctx context.Context, _ *network.Conn, req *kmsg.OffsetFetchRequest) (kmsg.Response, error) {
	if req.Version <= offsetsByNameVersion {
		return h.d.Groups.OffsetFetch(ctx, req), nil
	}
	im := h.image()
	byName := *req
	byName.Version = offsetsByNameVersion
	byName.Groups = make([]kmsg.OffsetFetchRequestGroup, len(req.Groups))
	// unknown holds, per group, the topics named by an id we do not know.
	unknown := make(map[string][]kmsg.OffsetFetchRequestGroupTopic)
	for i, g := range req.Groups {
		if g.Topics != nil {
			topics := make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(g.Topics))
			for _, t := range g.Topics {
				if mt := im.TopicsByID[t.TopicID]; mt != nil {
					t.Topic = mt.Name
					topics = append(topics, t)
				} else {
					unknown[g.Group] = append(unknown[g.Group], t)
				}
			}
			g.Topics = topics
		}
		byName.Groups[i] = g
	}
	inner := h.d.Groups.OffsetFetch(ctx, &byName)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	resp.ThrottleMillis = inner.ThrottleMillis
	resp.Groups = inner.Groups
	for i := range resp.Groups {
		g := &resp.Groups[i]
		topics := g.Topics[:0]
		for _, t := range g.Topics {
			mt := im.Topics[t.Topic]
			if mt == nil {
				continue // committed offsets of a deleted topic: no id to name it by
			}
			t.Topic, t.TopicID = "", mt.ID
			topics = append(topics, t)
		}
		if g.ErrorCode == 0 {
			for _, t := range unknown[g.Group] {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.TopicID = t.TopicID
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch = p, -1, -1
					rp.ErrorCode = kerr.UnknownTopicID.Code
					rt.Partitions = append(rt.Partitions, rp)
				}
				topics = append(topics, rt)
			}
		}
		g.Topics = topics
	}
	return resp, nil
}
