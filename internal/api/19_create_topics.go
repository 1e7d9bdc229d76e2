package api

// CreateTopics (key 19), versions 0-7.
//
// Delegated to the controller, which validates every topic (name, collision
// of '.' and '_', configs, partitions, replication factor or manual
// assignment) against the current image and answers per topic; a created
// topic's logs exist before the response is sent. ValidateOnly (v1+) is
// honoured. num.partitions / default.replication.factor replace -1 (v4+).
//
// One request may write at most controller.MaxRecordsPerUserOp (10,000)
// metadata records (one per topic, config override and partition); a
// larger one creates nothing and every topic answers POLICY_VIOLATION
// "Unable to perform excessively large batch operation.", as Kafka's
// controller does.
//
// A created topic some of whose partitions could not be opened on this
// broker (no file descriptor, disk error) answers KAFKA_STORAGE_ERROR
// with a message counting them: the topic exists, but those partitions are
// offline (Metadata shows the replica offline, produce and fetch answer
// KAFKA_STORAGE_ERROR). Kafka's CreateTopics cannot see a broker's log
// failure and answers NONE; telling the client is more honest.
//
// Differences from Kafka: the timeout is not used: creation completes
// before the answer (single controller, synchronous publish), so there is
// nothing to wait for and REQUEST_TIMED_OUT never occurs.
//
// Versions: v1 validate only, error messages (KIP-108); v2 throttle; v3
// no change; v4 -1 partitions/replication factor for broker defaults
// (KIP-464); v5 flexible, configs and counts in the response (KIP-525);
// v6 no change; v7 topic ids in the response (KIP-516).

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) createTopics(ctx context.Context, _ *network.Conn, req *kmsg.CreateTopicsRequest) (kmsg.Response, error) {
	resp := h.ctrl(ctx).CreateTopics(ctx, req)
	if req.ValidateOnly {
		return resp, nil
	}
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		if rt.ErrorCode != 0 {
			continue
		}
		if err := h.offlinePartitions(rt.Topic, 0); err != nil {
			rt.ErrorCode, rt.ErrorMessage = kerr.KafkaStorageError.Code, errorMessage(err)
		}
	}
	return resp, nil
}

// offlinePartitions checks the partitions from first on of topic that
// this broker holds a replica of, and returns an error counting those
// whose log is offline (nil when all are online).
func (h *Handler) offlinePartitions(topic string, first int32) error {
	t := h.image().Topics[topic]
	if t == nil {
		return nil
	}
	var n, of int
	var firstErr error
	for _, p := range t.Partitions {
		if p.ID < first || !slices.Contains(p.Replicas, h.d.NodeID) {
			continue
		}
		n++
		if err := h.d.Replicas.OfflineError(topic, p.ID); err != nil {
			of++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if of == 0 {
		return nil
	}
	return fmt.Errorf("%d of the %d new partitions of topic %q on broker %d could not be opened and are offline: %w", of, n, topic, h.d.NodeID, firstErr)
}
