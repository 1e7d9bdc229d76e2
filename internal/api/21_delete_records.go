package api

// DeleteRecords (key 21), versions 0-2.
//
// Moves a partition's log start offset (its low watermark) up to the
// offset asked for, -1 meaning the high watermark; records below it are
// no longer readable (Fetch below it answers OFFSET_OUT_OF_RANGE with the
// new log start offset, ListOffsets earliest answers it) and whole
// segments below it are deleted by the storage engine. An offset below
// the current log start is not an error: the answer is the current log
// start. The log start offset survives restarts (log-start-offset
// checkpoint). Kafka: ReplicaManager.deleteRecords.
//
// Per partition codes: OFFSET_OUT_OF_RANGE (offset above the high
// watermark, or below -1), POLICY_VIOLATION (cleanup.policy without
// "delete", e.g. compact only), UNKNOWN_TOPIC_OR_PARTITION,
// NOT_LEADER_OR_FOLLOWER, KAFKA_STORAGE_ERROR; the low watermark is -1 on
// error.
//
// With followers the answer waits (up to the request's TimeoutMillis,
// then REQUEST_TIMED_OUT) until every live replica moved its log start
// offset there (replica.Partition.WaitLowWatermark, Kafka's
// DelayedDeleteRecords; followers learn the leader's log start offset
// from their fetches). A single replica is done at once.
//
// Versions: v1 throttle after response; v2 flexible.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) deleteRecords(ctx context.Context, _ *network.Conn, req *kmsg.DeleteRecordsRequest) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(max(req.TimeoutMillis, 0))*time.Millisecond)
	defer cancel()
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	resp.Topics = make([]kmsg.DeleteRecordsResponseTopic, 0, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.DeleteRecordsResponseTopicPartition, 0, len(rt.Partitions))
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			p, err := h.d.Replicas.Partition(rt.Topic, rp.Partition)
			if err == nil {
				sp.LowWatermark, err = p.DeleteRecords(rp.Offset)
			}
			if err == nil {
				err = p.WaitLowWatermark(ctx, sp.LowWatermark)
			}
			if err != nil {
				sp.ErrorCode = h.errorCode(err, "delete records", "topic", rt.Topic, "partition", rp.Partition, "offset", rp.Offset)
				sp.LowWatermark = -1
			} else {
				h.logger.Info("deleted records", "topic", rt.Topic, "partition", rp.Partition, "offset", rp.Offset, "log_start_offset", sp.LowWatermark)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
