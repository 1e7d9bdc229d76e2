package api

// FindCoordinator (key 10), versions 0-6.
//
// Group keys (type 0): the coordinator of a group is the leader of its
// partition of __consumer_offsets (internal/group.PartitionFor: Java's
// String.hashCode of the group id, modulo the topic's partitions). The
// first request creates __consumer_offsets, as Kafka does, with
// offsets.topic.num.partitions partitions and Kafka's topic configs for
// it (GroupCoordinator.groupMetadataTopicConfigs): cleanup.policy=compact,
// segment.bytes from offsets.topic.segment.bytes (default 104857600) and
// compression.type=producer. The answer is the
// leader's endpoint on the listener the request came in on. An empty
// group id answers INVALID_REQUEST.
//
// Transaction keys (type 1) work the same way over __transaction_state
// (internal/txn.PartitionFor, the same hash), created on first use with
// transaction.state.log.num.partitions partitions and Kafka's configs
// (TransactionLog: cleanup.policy=compact, segment.bytes from
// transaction.state.log.segment.bytes, compression.type=uncompressed,
// min.insync.replicas from transaction.state.log.min.isr). Share-group
// keys (type 2, v6) answer COORDINATOR_NOT_AVAILABLE (retriable): there
// is no share coordinator.
//
// Differences from Kafka: offsets.topic.replication.factor and
// transaction.state.log.replication.factor are capped by the live brokers
// instead of failing until enough are up, and min.insync.replicas of
// __transaction_state by that replication factor, so a single node has
// groups and transactions without configuration.
//
// Versions: v1 coordinator type, error message, throttle; v2 throttle
// after response; v3 flexible; v4 batched keys (KIP-699); v5 no change
// (KIP-890); v6 share coordinator keys (KIP-932).

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/group"
	"samsa/internal/network"
	"samsa/internal/txn"
)

// offsetsTopic is the internal topic of the group coordinator.
const offsetsTopic = "__consumer_offsets"

// coordinatorTypeGroup is FindCoordinator's key type of consumer groups.
const coordinatorTypeGroup = 0

// coordinator is one FindCoordinator answer.
type coordinator struct {
	nodeID int32
	host   string
	port   int32
	code   int16
	msg    string
}

func (h *Handler) findCoordinator(ctx context.Context, c *network.Conn, req *kmsg.FindCoordinatorRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if req.Version < 4 {
		a := h.coordinatorFor(ctx, c, req.CoordinatorType, req.CoordinatorKey)
		resp.NodeID, resp.Host, resp.Port, resp.ErrorCode = a.nodeID, a.host, a.port, a.code
		if a.code != 0 {
			resp.ErrorMessage = &a.msg
		}
		return resp, nil
	}
	resp.Coordinators = make([]kmsg.FindCoordinatorResponseCoordinator, 0, len(req.CoordinatorKeys))
	for _, key := range req.CoordinatorKeys {
		a := h.coordinatorFor(ctx, c, req.CoordinatorType, key)
		rc := kmsg.NewFindCoordinatorResponseCoordinator()
		rc.Key = key
		rc.NodeID, rc.Host, rc.Port, rc.ErrorCode = a.nodeID, a.host, a.port, a.code
		if a.code != 0 {
			rc.ErrorMessage = &a.msg
		}
		resp.Coordinators = append(resp.Coordinators, rc)
	}
	return resp, nil
}

// coordinatorFor finds the coordinator of one key.
func (h *Handler) coordinatorFor(ctx context.Context, c *network.Conn, keyType int8, key string) coordinator {
	none := coordinator{nodeID: -1, port: -1, code: kerr.CoordinatorNotAvailable.Code}
	topic, create, partitionFor := offsetsTopic, h.createOffsetsTopic, group.PartitionFor
	switch keyType {
	case coordinatorTypeGroup:
	case coordinatorTypeTxn:
		topic, create, partitionFor = transactionStateTopic, h.createTransactionStateTopic, txn.PartitionFor
	default:
		none.msg = "samsa: only group and transaction coordinators exist"
		return none
	}
	if key == "" {
		none.code, none.msg = kerr.InvalidRequest.Code, "empty coordinator key"
		return none
	}
	if err := create(ctx); err != nil {
		h.logger.Warn("find coordinator", "err", err)
		none.msg = err.Error()
		return none
	}
	im := h.image()
	t := im.Topics[topic]
	if t == nil || len(t.Partitions) == 0 {
		none.msg = topic + " has no partitions"
		return none
	}
	p := t.Partitions[partitionFor(key, int32(len(t.Partitions)))]
	for _, b := range brokersOn(im, c.Listener(), false) {
		if b.id == p.Leader {
			return coordinator{nodeID: b.id, host: b.host, port: b.port}
		}
	}
	none.msg = "the coordinator has no endpoint on this listener"
	return none
}

// createOffsetsTopic creates __consumer_offsets unless it exists.
func (h *Handler) createOffsetsTopic(ctx context.Context) error {
	cfg := h.d.Config
	return h.ctrl(ctx).CreateInternalTopic(ctx, offsetsTopic, cfg.OffsetsTopicNumPartitions, cfg.OffsetsTopicReplicationFactor, map[string]string{
		"cleanup.policy":   "compact",
		"segment.bytes":    strconv.Itoa(int(cfg.OffsetsTopicSegmentBytes)),
		"compression.type": "producer",
	})
}

// createTransactionStateTopic creates __transaction_state unless it
// exists, with Kafka's configs for it (TransactionLog.transactionTopicConfigs).
func (h *Handler) createTransactionStateTopic(ctx context.Context) error {
	cfg := h.d.Config
	return h.ctrl(ctx).CreateInternalTopic(ctx, transactionStateTopic, cfg.TransactionStateLogNumPartitions, cfg.TransactionStateLogReplicationFactor, map[string]string{
		"cleanup.policy":      "compact",
		"segment.bytes":       strconv.Itoa(int(cfg.TransactionStateLogSegmentBytes)),
		"compression.type":    "uncompressed",
		"min.insync.replicas": strconv.Itoa(int(cfg.TransactionStateLogMinISR)),
	})
}
