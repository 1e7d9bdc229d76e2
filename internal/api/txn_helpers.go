package api

import (
	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/internal/metadata"
)

// transactionStateTopic is the transaction coordinator's internal topic.
const transactionStateTopic = "__transaction_state"

// coordinatorTypeTxn is FindCoordinator's key type of transactional ids.
const coordinatorTypeTxn = 1

// txnCode returns code's number (0 for nil). PRODUCER_FENCED (KIP-588)
// becomes INVALID_PRODUCER_EPOCH for a request version older than
// fencedSince, which clients of that age do not know (KafkaApis does the
// same per API).
func txnCode(code *kerr.Error, version, fencedSince int16) int16 {
	if code == nil {
		return 0
	}
	if code == kerr.ProducerFenced && version < fencedSince {
		return kerr.InvalidProducerEpoch.Code
	}
	return code.Code
}

// partitionExists reports whether topic has partition in im.
func partitionExists(im *metadata.Image, topic string, partition int32) bool {
	t := im.Topics[topic]
	return t != nil && partition >= 0 && int(partition) < len(t.Partitions)
}
