package api

// Metadata (key 3), versions 0-13.
//
// Brokers are the registered, unfenced brokers of the metadata image with
// their endpoint on the listener the request came in on (a broker without
// such an endpoint is left out, as Kafka does). Topics carry their ids
// (v10+), partitions their leader, leader epoch (v7+), replicas, ISR and
// offline replicas (v5+; replicas on brokers that are not registered or
// are fenced), as the controller keeps them: the ISR shrinks when a
// broker is fenced (its last member stays), and the leader moves to
// another ISR member or, with none left, is -1 (LEADER_NOT_AVAILABLE)
// until an ISR member returns.
//
// Requested topics: null (v1+) or an empty list (v0) means every topic; a
// topic may be named or, v10+, given by id (unknown id: UNKNOWN_TOPIC_ID).
// An invalid name answers INVALID_TOPIC_EXCEPTION. A missing topic is
// auto-created when auto.create.topics.enable is set and the request
// allows it (v4+ AllowAutoTopicCreation; v0-v3 always allow).
//
// The missing topics of one request are auto-created in one controller
// operation, bounded like CreateTopics by MaxRecordsPerUserOp (10,000
// records: Kafka's AutoTopicCreationManager sends them in one
// CreateTopics); over it none is created. A topic named twice is
// answered once (Kafka reads the names into a set). A partition whose
// replica on this broker is offline (its log could not be opened) lists
// this broker in OfflineReplicas, and if this broker is its leader it is
// answered with leader -1 and LEADER_NOT_AVAILABLE, which is what Kafka's
// controller leaves once it has moved leadership off an offline log dir
// with no other replica.
//
// The controller id (v1+) is the active controller when it is a live
// broker; with a controller-only active controller it is a live broker
// (this one, else the lowest id), which forwards admin requests, as
// Kafka's KRaft brokers answer a random live broker.
//
// Differences from Kafka: an auto-created topic is answered with its
// partitions right away rather than LEADER_NOT_AVAILABLE, since the
// controller has created its logs before it returns; a refused
// auto-creation answers UNKNOWN_TOPIC_OR_PARTITION rather than
// LEADER_NOT_AVAILABLE (the topic does not exist). Authorized operations
// (v8+) are not computed (no ACLs yet): the "not requested" value
// -2147483648 is returned.
//
// Versions: v1 controller id, internal flag, null = all topics; v2
// cluster id; v3 throttle; v4 AllowAutoTopicCreation; v5 offline replicas;
// v6 throttle after response; v7 leader epoch (KIP-320); v8 authorized
// operations (KIP-430); v9 flexible; v10 topic ids (KIP-516); v11 drops
// cluster authorized operations; v12 topics by id only; v13 top-level
// error code (KIP-1102).

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/controller"
	"samsa/internal/metadata"
	"samsa/internal/network"
)

// internalTopics are Kafka's internal topic names (IsInternal in Metadata).
var internalTopics = map[string]bool{"__consumer_offsets": true, "__transaction_state": true}

// brokerEndpoint is one broker as seen from one listener.
type brokerEndpoint struct {
	id     int32
	host   string
	port   int32
	rack   *string
	fenced bool
}

// brokersOn returns the brokers with an endpoint on listener, sorted by id;
// fenced brokers only when includeFenced.
func brokersOn(im *metadata.Image, listener string, includeFenced bool) []brokerEndpoint {
	out := make([]brokerEndpoint, 0, len(im.Brokers))
	for id, b := range im.Brokers {
		if b.Fenced && !includeFenced {
			continue
		}
		for _, e := range b.Endpoints {
			if e.Listener != listener {
				continue
			}
			be := brokerEndpoint{id: id, host: e.Host, port: e.Port, fenced: b.Fenced}
			if b.Rack != "" {
				rack := b.Rack
				be.rack = &rack
			}
			out = append(out, be)
			break
		}
	}
	slices.SortFunc(out, func(a, b brokerEndpoint) int { return int(a.id) - int(b.id) })
	return out
}

// clientControllerID is the controller id told to clients (Metadata,
// DescribeCluster): the active controller when it is a live broker
// clients can reach on listener, else, as Kafka's KRaft brokers do (a
// client sends admin requests to "the controller" and brokers forward
// them), a live broker: this one if it is, else the lowest id. -1 when
// there is none.
func (h *Handler) clientControllerID(im *metadata.Image, listener string) int32 {
	live := brokersOn(im, listener, false)
	for _, b := range live {
		if b.id == im.ControllerID {
			return b.id
		}
	}
	for _, b := range live {
		if b.id == h.d.NodeID {
			return b.id
		}
	}
	if len(live) > 0 {
		return live[0].id
	}
	return -1
}

func (h *Handler) metadata(ctx context.Context, c *network.Conn, req *kmsg.MetadataRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	im := h.image()

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	allowAuto := h.d.Config.AutoCreateTopicsEnable && (req.Version < 4 || req.AllowAutoTopicCreation)
	failedAuto := map[string]int16{}
	if !all && allowAuto {
		// Create the missing topics first, all in one controller
		// operation (Kafka's AutoTopicCreationManager sends them in one
		// CreateTopics, bounded by MaxRecordsPerUserOp), then answer
		// from one image.
		var missing []string
		queued := map[string]bool{}
		for _, rt := range req.Topics {
			if rt.Topic == nil || *rt.Topic == "" || queued[*rt.Topic] {
				continue
			}
			if _, ok := im.Topics[*rt.Topic]; ok || internalTopics[*rt.Topic] {
				continue
			}
			if controller.ValidateTopicName(*rt.Topic) != nil {
				continue
			}
			queued[*rt.Topic] = true
			if *rt.Topic == offsetsTopic {
				// Created with the group coordinator's settings, as
				// Kafka's AutoTopicCreationManager does.
				if err := h.createOffsetsTopic(ctx); err != nil {
					h.logger.Warn("auto-create topic", "topic", offsetsTopic, "err", err)
				}
				continue
			}
			missing = append(missing, *rt.Topic)
		}
		if len(missing) > 0 {
			for topic, code := range h.ctrl(ctx).AutoCreateTopics(ctx, missing) {
				if code != 0 && code != kerr.TopicAlreadyExists.Code {
					failedAuto[topic] = code
				}
			}
			// A refused creation (POLICY_VIOLATION when the request
			// named too many new topics) leaves the topics missing:
			// they answer UNKNOWN_TOPIC_OR_PARTITION below. Kafka
			// answers LEADER_NOT_AVAILABLE before its asynchronous
			// creation fails, and again on every retry.
			if len(failedAuto) > 0 {
				h.logger.Warn("auto-create topics", "topics", len(missing), "failed", len(failedAuto), "err", kerr.ErrorForCode(failedAuto[missing[0]]))
			}
		}
		if len(queued) > 0 {
			im = h.image()
		}
	}

	for _, b := range brokersOn(im, c.Listener(), false) {
		rb := kmsg.NewMetadataResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.Rack = b.id, b.host, b.port, b.rack
		resp.Brokers = append(resp.Brokers, rb)
	}
	clusterID := h.d.ClusterID
	resp.ClusterID = &clusterID
	resp.ControllerID = h.clientControllerID(im, c.Listener())

	if all {
		names := make([]string, 0, len(im.Topics))
		for name := range im.Topics {
			names = append(names, name)
		}
		slices.Sort(names)
		resp.Topics = make([]kmsg.MetadataResponseTopic, 0, len(names))
		for _, name := range names {
			resp.Topics = append(resp.Topics, h.metadataTopic(im, im.Topics[name]))
		}
		return resp, nil
	}

	resp.Topics = make([]kmsg.MetadataResponseTopic, 0, len(req.Topics))
	answered := make(map[string]bool, len(req.Topics))
	answeredIDs := map[[16]byte]bool{}
	for _, rt := range req.Topics {
		// A topic named twice (or, v10+, given twice by id) is answered
		// once: Kafka collects the requested names and ids in sets.
		if rt.Topic != nil && *rt.Topic != "" {
			if answered[*rt.Topic] {
				continue
			}
			answered[*rt.Topic] = true
		} else if rt.TopicID != [16]byte{} {
			if answeredIDs[rt.TopicID] {
				continue
			}
			answeredIDs[rt.TopicID] = true
		}
		var t *metadata.Topic
		var code int16
		switch {
		case rt.Topic != nil && *rt.Topic != "":
			if controller.ValidateTopicName(*rt.Topic) != nil {
				code = kerr.InvalidTopicException.Code
			} else if t = im.Topics[*rt.Topic]; t == nil {
				code = kerr.UnknownTopicOrPartition.Code
			}
		case rt.TopicID != [16]byte{}:
			if t = im.TopicsByID[rt.TopicID]; t == nil {
				code = kerr.UnknownTopicID.Code
			}
		default:
			code = kerr.InvalidTopicException.Code
		}
		if t != nil {
			resp.Topics = append(resp.Topics, h.metadataTopic(im, t))
			continue
		}
		mt := kmsg.NewMetadataResponseTopic()
		mt.ErrorCode = code
		mt.Topic = rt.Topic
		mt.TopicID = rt.TopicID
		mt.Partitions = []kmsg.MetadataResponseTopicPartition{}
		resp.Topics = append(resp.Topics, mt)
	}
	return resp, nil
}

// metadataTopic describes one existing topic.
func (h *Handler) metadataTopic(im *metadata.Image, t *metadata.Topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.IsInternal = internalTopics[t.Name]
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, len(t.Partitions))
	for _, p := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.ID
		mp.Leader = p.Leader
		mp.LeaderEpoch = p.LeaderEpoch
		mp.Replicas = p.Replicas
		mp.ISR = p.ISR
		mp.OfflineReplicas = []int32{}
		for _, r := range p.Replicas {
			if b, ok := im.Brokers[r]; !ok || b.Fenced {
				mp.OfflineReplicas = append(mp.OfflineReplicas, r)
			} else if r == h.d.NodeID && h.d.Replicas.OfflineError(t.Name, p.ID) != nil {
				// Our replica's log could not be opened (or failed
				// later). Kafka's controller would elect another leader
				// or none; until replication does that here, the leader
				// it would lose is shown as gone.
				mp.OfflineReplicas = append(mp.OfflineReplicas, r)
				if mp.Leader == r {
					mp.Leader = -1
				}
			}
		}
		if b, ok := im.Brokers[mp.Leader]; mp.Leader >= 0 && (!ok || b.Fenced) {
			// Not reached through the controller, which moves the
			// leadership in the commit that fences the leader (to
			// another ISR member, or none): kept for images of older
			// logs, whose fencing records moved nothing.
			mp.Leader = -1
		}
		if mp.Leader < 0 {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
