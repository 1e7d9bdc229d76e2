package api

// DescribeProducers (key 61), version 0.
//
// Lists, per partition this broker leads, the producers with an open
// transaction on it (storage.Log.OngoingTransactions): producer id and
// epoch, the offset the transaction began at, the last append's
// timestamp and the coordinator epoch. Codes per partition:
// UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER, KAFKA_STORAGE_ERROR.
//
// Differences from Kafka: Kafka lists every producer in the partition's
// producer state, idempotent ones included; Samsa lists the producers
// with an ongoing transaction (what kafka-transactions.sh find-hanging
// needs), with LastSequence -1.
//
// Versions: v0 only (KIP-664).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
	"samsa/internal/storage"
)

func (h *Handler) describeProducers(_ context.Context, _ *network.Conn, req *kmsg.DescribeProducersRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	answered := map[topicPartitionKey]bool{}
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			// A partition listed more than once is answered once.
			k := topicPartitionKey{rt.Topic, p}
			if answered[k] {
				continue
			}
			answered[k] = true
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = p
			sp.ActiveProducers = []kmsg.DescribeProducersResponseTopicPartitionActiveProducer{}
			var ongoing []storage.OngoingTxn
			part, err := h.d.Replicas.Partition(rt.Topic, p)
			if err == nil {
				ongoing, err = part.OngoingTransactions()
			}
			if err != nil {
				sp.ErrorCode = h.errorCode(err, "describe producers", "topic", rt.Topic, "partition", p)
				sp.ErrorMessage = errorMessage(err)
			} else {
				for _, o := range ongoing {
					ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
					ap.ProducerID = o.ProducerID
					ap.ProducerEpoch = int32(o.ProducerEpoch)
					ap.LastSequence = -1
					ap.LastTimestamp = o.LastTimestamp
					ap.CoordinatorEpoch = o.CoordinatorEpoch
					ap.CurrentTxnStartOffset = o.FirstOffset
					sp.ActiveProducers = append(sp.ActiveProducers, ap)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
