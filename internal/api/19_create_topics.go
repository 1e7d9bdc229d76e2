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
// TimeoutMillis is the deadline of the operation, from the request's
// arrival (Kafka's controller: ControllerRequestContext's deadline): the
// controller commits nothing once it has passed and answers
// REQUEST_TIMED_OUT; a broker forwarding to the active controller stops
// at it (and at its own 30 s bound), answers REQUEST_TIMED_OUT, and sends
// the controller the time left as the forwarded TimeoutMillis; a broker
// whose own metadata does not show the created topic before the deadline
// answers REQUEST_TIMED_OUT for it (it is created). A timeout <= 0 means
// "do not wait": the topics are created (within the broker's own 30 s
// bound) and each created one answers REQUEST_TIMED_OUT, as Kafka's
// ZooKeeper-era brokers did; ValidateOnly answers the validation result.
// (A KRaft controller of Kafka times such a request out without doing it:
// see docs/cluster.md.)
//
// Versions: v1 validate only, error messages (KIP-108); v2 throttle; v3
// no change; v4 -1 partitions/replication factor for broker defaults
// (KIP-464); v5 flexible, configs and counts in the response (KIP-525);
// v6 no change; v7 topic ids in the response (KIP-516).

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) createTopics(ctx context.Context, _ *network.Conn, req *kmsg.CreateTopicsRequest) (kmsg.Response, error) {
	ctx, cancel := adminDeadline(ctx, req.TimeoutMillis)
	defer cancel()
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
		} else if req.TimeoutMillis <= 0 {
			rt.ErrorCode, rt.ErrorMessage = kerr.RequestTimedOut.Code, notWaited("topic created")
		}
	}
	return resp, nil
}

// adminOwnTimeout bounds an admin request whose TimeoutMillis is <= 0
// ("do not wait" for the client, not "forever" for the broker); Kafka's
// request.timeout.ms default.
const adminOwnTimeout = 30 * time.Second

// adminDeadline bounds ctx by an admin request's TimeoutMillis, counted
// from now (the request's arrival): the deadline of the operation for
// the controller and for a broker forwarding to it. A timeout <= 0 gets
// adminOwnTimeout.
func adminDeadline(ctx context.Context, timeoutMillis int32) (context.Context, context.CancelFunc) {
	d := adminOwnTimeout
	if timeoutMillis > 0 {
		d = time.Duration(timeoutMillis) * time.Millisecond
	}
	return context.WithTimeout(ctx, d)
}

// notWaited is the message of REQUEST_TIMED_OUT for an admin operation
// done under a timeout <= 0 (not waited for to propagate).
func notWaited(what string) *string {
	msg := what + "; the request's timeout_ms <= 0, so its propagation to the brokers was not waited for"
	return &msg
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
