package api

// Produce (key 0), versions 0-13.
//
// Each partition's records go to replica.Partition.Append with the
// request's acks; errors are per partition (one bad partition does not fail
// the others) and nothing of a rejected partition is stored: storage
// validates every batch (magic, length, CRC-32C, max.message.bytes,
// producer sequence) before writing any of them. A duplicate of one of the
// producer's last five batches answers the original base offset with no
// error, as Kafka does.
//
// Per partition codes: UNKNOWN_TOPIC_OR_PARTITION (v13+: UNKNOWN_TOPIC_ID),
// INVALID_TOPIC_EXCEPTION for a name Kafka would never accept,
// CORRUPT_MESSAGE, UNSUPPORTED_FOR_MESSAGE_FORMAT (magic 0/1 message
// sets, which v0-v2 carry), MESSAGE_TOO_LARGE, INVALID_RECORD,
// OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH,
// UNKNOWN_PRODUCER_ID, NOT_ENOUGH_REPLICAS, KAFKA_STORAGE_ERROR,
// NOT_LEADER_OR_FOLLOWER; INVALID_REQUIRED_ACKS for acks outside -1/0/1.
//
// On a topic whose cleanup.policy contains "compact", a record without a
// key is INVALID_RECORD for its partition (Kafka's
// LogValidator.validateKey); replica.Partition.Append decompresses the
// batches of such topics to check, the only place the produce path reads
// records.
//
// acks=0 gets no response at all; if any partition failed, the connection
// is closed instead so the client refreshes its metadata (Kafka's
// KafkaApis.handleProduceRequest does the same).
//
// Transactions (KIP-98): a transactional batch in a request with a
// transactional id is first checked against the transaction coordinator
// (KIP-890 part 1 verification; on one node a direct call to
// internal/txn.Coordinator.VerifyPartition): a partition not added to the
// producer's ongoing transaction answers INVALID_TXN_STATE, a stale epoch
// INVALID_PRODUCER_EPOCH, and a coordinator that cannot answer now
// (NOT_COORDINATOR, loading, CONCURRENT_TRANSACTIONS) NOT_ENOUGH_REPLICAS,
// which every client retries, as Kafka's ReplicaManager maps them. The
// append then opens the transaction in the partition's log.
//
// Differences from Kafka: topics are never auto-created by Produce (modern
// Kafka only does it through Metadata). The request timeout is not
// enforced (there is no replication wait yet).
//
// Versions: v1 throttle; v2 log append time (magic 1); v3 transactional
// id, record batch v2 (KIP-98); v5 log start offset; v7 ZStandard
// (KIP-110); v8 record errors (KIP-467); v9 flexible; v10 current leader
// and brokers on NOT_LEADER_OR_FOLLOWER (KIP-951); v11 no change; v12
// KIP-890 server-side defense; v13 topic ids instead of names (KIP-516).

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/controller"
	"samsa/internal/metadata"
	"samsa/internal/network"
	"samsa/internal/record"
	"samsa/internal/txn"
)

// errAcksZeroFailed closes the connection after a failed acks=0 produce.
var errAcksZeroFailed = errors.New("api: produce with acks=0 failed; closing the connection so the client refreshes metadata")

func (h *Handler) produce(_ context.Context, _ *network.Conn, req *kmsg.ProduceRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	resp.Topics = make([]kmsg.ProduceResponseTopic, 0, len(req.Topics))
	var im *metadata.Image
	if req.Version >= 13 {
		im = h.d.Controller.Image()
	}
	failed := false
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, 0, len(rt.Partitions))

		// topicCode, when not 0, answers every partition of the topic.
		var topicCode int16
		topic := rt.Topic
		switch {
		case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
			topicCode = kerr.InvalidRequiredAcks.Code
		case req.Version >= 13:
			if t := im.TopicsByID[rt.TopicID]; t != nil {
				topic = t.Name
			} else {
				topicCode = kerr.UnknownTopicID.Code
			}
		case controller.ValidateTopicName(rt.Topic) != nil:
			topicCode = kerr.InvalidTopicException.Code
		}

		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			if topicCode != 0 {
				sp.ErrorCode = topicCode
				st.Partitions = append(st.Partitions, sp)
				failed = true
				continue
			}
			err := h.verifyTxn(req.TransactionID, topic, rp)
			if err == nil {
				err = h.appendPartition(topic, rp, req.Acks, &sp)
			}
			if err != nil {
				sp.ErrorCode = h.errorCode(err, "produce", "topic", topic, "partition", rp.Partition)
				if req.Version >= 8 {
					sp.ErrorMessage = errorMessage(err)
				}
				failed = true
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		if failed {
			return nil, errAcksZeroFailed
		}
		return nil, nil
	}
	return resp, nil
}

// verifyTxn checks a transactional batch against the coordinator's state
// of its transaction (see the header). A non-transactional batch, or a
// request without transactional id, passes.
func (h *Handler) verifyTxn(id *string, topic string, rp *kmsg.ProduceRequestTopicPartition) error {
	if id == nil {
		return nil
	}
	hdr, err := record.ParseHeader(rp.Records)
	if err != nil || !hdr.Transactional() || hdr.Control() {
		return nil // not ours to judge: storage validates the bytes
	}
	if h.d.Txns == nil {
		return kerr.NotEnoughReplicas
	}
	code := h.d.Txns.VerifyPartition(*id, hdr.ProducerID, hdr.ProducerEpoch, txn.TopicPartition{Topic: topic, Partition: rp.Partition})
	switch code {
	case nil:
		return nil
	case kerr.InvalidProducerEpoch, kerr.InvalidTxnState:
		return code
	case kerr.InvalidProducerIDMapping:
		return kerr.InvalidTxnState
	default:
		return kerr.NotEnoughReplicas
	}
}

// appendPartition appends one partition's records and fills in the
// offsets of sp.
func (h *Handler) appendPartition(topic string, rp *kmsg.ProduceRequestTopicPartition, acks int16, sp *kmsg.ProduceResponseTopicPartition) error {
	p, err := h.d.Replicas.Partition(topic, rp.Partition)
	if err != nil {
		return err
	}
	info, err := p.Append(rp.Records, acks)
	if err != nil {
		return fmt.Errorf("append to %s-%d: %w", topic, rp.Partition, err)
	}
	sp.BaseOffset = info.FirstOffset
	sp.LogAppendTime = info.LogAppendTime
	sp.LogStartOffset = info.LogStartOffset
	return nil
}
