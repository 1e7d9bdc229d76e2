package api

// ListOffsets (key 2), versions 0-11.
//
// Timestamps: -1 latest (the high watermark; for read_committed, isolation
// level 1 of v2+, the last stable offset, which also bounds the other
// lookups as Kafka's UnifiedLog.fetchOffsetByTimestamp does), -2
// earliest (log start offset), -3 the record with the largest timestamp
// (KIP-734), -4 earliest local (KIP-405; every segment is local, so the
// log start offset), -5 latest tiered (KIP-1005) and -6 earliest pending
// upload (KIP-1023): nothing is tiered, so offset -1. A timestamp >= 0 finds the first record whose
// timestamp is at least it (storage.Log.OffsetForTimestamp, time index
// then batch decode); none, or one not yet below the high watermark,
// answers offset -1 and timestamp -1 (v1+), as Kafka does.
//
// v0 answers OldStyleOffsets with at most one offset (MaxNumOffsets > 0).
//
// A partition listed more than once is answered once, with
// INVALID_REQUEST, as Kafka does (ListOffsetsRequest.duplicatePartitions).
//
// Per partition codes: UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER,
// FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH (v4+ CurrentLeaderEpoch),
// KAFKA_STORAGE_ERROR.
//
// Differences from Kafka: the leader epoch answered (v4+) is the current
// leader epoch for every lookup, not the epoch of the batch found (the
// storage engine keeps no offset-to-epoch lookup yet). Follower requests
// (replica id >= 0) are answered like consumer requests.
//
// Versions: v1 single offset and timestamp (KIP-79); v2 isolation level
// (KIP-98); v3 throttle after response; v4 current leader epoch and
// response leader epoch (KIP-320); v5 no change; v6 flexible; v7 -3 max
// timestamp (KIP-734); v8 -4 earliest local (KIP-405); v9 -5 latest
// tiered (KIP-1005); v10 timeout (KIP-1075); v11 -6 earliest pending
// upload (KIP-1023).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
	"samsa/internal/replica"
)

func (h *Handler) listOffsets(_ context.Context, _ *network.Conn, req *kmsg.ListOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, 0, len(req.Topics))
	// Kafka answers a partition listed more than once once, with
	// INVALID_REQUEST (ListOffsetsRequest.duplicatePartitions).
	mentions := map[topicPartitionKey]int{}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			mentions[topicPartitionKey{rt.Topic, rp.Partition}]++
		}
	}
	answered := make(map[topicPartitionKey]bool, len(mentions))
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, 0, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			k := topicPartitionKey{rt.Topic, rp.Partition}
			if answered[k] {
				continue
			}
			answered[k] = true
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Offset, sp.Timestamp, sp.LeaderEpoch = -1, -1, -1
			if mentions[k] > 1 {
				sp.ErrorCode = kerr.InvalidRequest.Code
				if req.Version == 0 {
					sp.OldStyleOffsets = []int64{}
				}
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			if err := h.listPartitionOffset(req, rt.Topic, rp, &sp); err != nil {
				sp.ErrorCode = h.errorCode(err, "list offsets", "topic", rt.Topic, "partition", rp.Partition)
				sp.Offset, sp.Timestamp, sp.LeaderEpoch = -1, -1, -1
				sp.OldStyleOffsets = nil
			}
			st.Partitions = append(st.Partitions, sp)
		}
		if len(st.Partitions) > 0 || len(rt.Partitions) == 0 {
			resp.Topics = append(resp.Topics, st)
		}
	}
	return resp, nil
}

// topicPartitionKey names a partition by topic name, for requests that
// must answer each partition once.
type topicPartitionKey struct {
	topic     string
	partition int32
}

func (h *Handler) listPartitionOffset(req *kmsg.ListOffsetsRequest, topic string, rp *kmsg.ListOffsetsRequestTopicPartition, sp *kmsg.ListOffsetsResponseTopicPartition) error {
	p, err := h.d.Replicas.Partition(topic, rp.Partition)
	if err != nil {
		return err
	}
	current := int32(-1)
	if req.Version >= 4 {
		current = rp.CurrentLeaderEpoch
	}
	isolation := replica.ReadUncommitted
	if req.Version >= 2 && req.IsolationLevel == 1 {
		isolation = replica.ReadCommitted
	}
	offset, ts, epoch, err := p.ListOffset(rp.Timestamp, isolation, req.ReplicaID, current)
	if err != nil {
		return err
	}
	if req.Version == 0 {
		sp.OldStyleOffsets = []int64{}
		if rp.MaxNumOffsets > 0 && offset >= 0 {
			sp.OldStyleOffsets = append(sp.OldStyleOffsets, offset)
		}
		return nil
	}
	sp.Offset, sp.Timestamp = offset, ts
	if offset >= 0 {
		sp.LeaderEpoch = epoch
	}
	return nil
}
