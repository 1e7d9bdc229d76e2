package interbroker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
	"samsa/internal/txn"
)

// TxnVerifier asks a transaction's coordinator, on another broker,
// whether a partition is in the producer's ongoing transaction
// (AddPartitionsToTxn v4 with VerifyOnly, KIP-890 part 1), as a Kafka
// partition leader does before appending a transactional batch.
type TxnVerifier struct {
	Client   *Client
	Metadata *metadata.Publisher
	// Listener is inter.broker.listener.name.
	Listener string
}

// txnStateTopic is the transaction coordinator's internal topic.
const txnStateTopic = "__transaction_state"

// Verify answers nil when tp is in the ongoing transaction, else the
// coordinator's error (NOT_COORDINATOR when it cannot be reached: the
// producer retries).
func (v *TxnVerifier) Verify(ctx context.Context, id string, pid int64, epoch int16, tp txn.TopicPartition) *kerr.Error {
	im := v.Metadata.Image()
	t := im.Topics[txnStateTopic]
	if t == nil || len(t.Partitions) == 0 {
		return kerr.NotCoordinator
	}
	leader := t.Partitions[txn.PartitionFor(id, int32(len(t.Partitions)))].Leader
	b, ok := im.Brokers[leader]
	if !ok || b.Fenced {
		return kerr.NotCoordinator
	}
	addr := b.AddrOrFirst(v.Listener)
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	tr := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tr.VerifyOnly = id, pid, epoch, true
	rt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
	rt.Topic, rt.Partitions = tp.Topic, []int32{tp.Partition}
	tr.Topics = append(tr.Topics, rt)
	req.Transactions = append(req.Transactions, tr)
	r, err := v.Client.Request(ctx, addr, req)
	if err != nil {
		return kerr.NotCoordinator
	}
	resp := r.(*kmsg.AddPartitionsToTxnResponse)
	if req.Version < 4 {
		return kerr.NotCoordinator // the peer cannot verify
	}
	if resp.ErrorCode != 0 {
		return codeError(resp.ErrorCode)
	}
	for _, rtr := range resp.Transactions {
		for _, t := range rtr.Topics {
			for _, p := range t.Partitions {
				if t.Topic == tp.Topic && p.Partition == tp.Partition {
					if p.ErrorCode == 0 {
						return nil
					}
					return codeError(p.ErrorCode)
				}
			}
		}
	}
	return kerr.NotCoordinator
}

// codeError is kerr's error for a non-zero code (UNKNOWN_SERVER_ERROR
// for a code kerr does not know).
func codeError(code int16) *kerr.Error {
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e
	}
	return kerr.UnknownServerError
}
