package txn

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/record"
)

// Versions of the __transaction_state records written. Kafka writes value
// version 1 (flexible, with tagged fields) only for transaction version 2
// clients (KIP-890 part 2), which we do not serve.
const (
	txnKeyVersion   = 0
	txnValueVersion = 0
	maxValueVersion = 1
)

// errBadRecord: a __transaction_state record that does not decode.
var errBadRecord = errors.New("txn: malformed __transaction_state record")

// noProducerEpoch is RecordBatch.NO_PRODUCER_EPOCH.
const noProducerEpoch = -1

// txnMeta is the state of one transactional id (Kafka's
// TransactionMetadata). Guarded by its partition's mu.
type txnMeta struct {
	id                 string
	producerID         int64
	previousProducerID int64 // the id before the last rotation, -1: none (memory only)
	producerEpoch      int16
	// lastProducerEpoch is the epoch before the last bump asked for by
	// the client (KIP-360): a retried InitProducerID with it gets the
	// current epoch again instead of PRODUCER_FENCED. Memory only, as in
	// Kafka's version 0 records.
	lastProducerEpoch int16
	timeoutMs         int32
	state             kmsg.TransactionState
	partitions        map[TopicPartition]struct{}
	startTimestamp    int64 // ms the current transaction began; -1 when none
	lastUpdate        int64 // ms of the last transition

	// pending: a transition of this id is being written; other requests
	// answer CONCURRENT_TRANSACTIONS (Kafka's pendingState).
	pending bool
	// done is closed when the markers of the ending transaction are
	// written and the Complete state is stored (or the attempt stopped).
	// nil unless the id is in PrepareCommit/PrepareAbort.
	done chan struct{}
}

// clone copies the persistent fields (not pending/done).
func (tm *txnMeta) clone() *txnMeta {
	n := *tm
	n.pending, n.done = false, nil
	n.partitions = make(map[TopicPartition]struct{}, len(tm.partitions))
	for tp := range tm.partitions {
		n.partitions[tp] = struct{}{}
	}
	return &n
}

// install copies next's persistent fields into tm.
func (tm *txnMeta) install(next *txnMeta) {
	pending, done := tm.pending, tm.done
	*tm = *next
	tm.pending, tm.done = pending, done
}

// sortedPartitions returns the partitions by topic, then number.
func (tm *txnMeta) sortedPartitions() []TopicPartition {
	tps := make([]TopicPartition, 0, len(tm.partitions))
	for tp := range tm.partitions {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, func(a, b TopicPartition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return tps
}

func txnKey(id string) []byte {
	k := kmsg.TxnMetadataKey{Version: txnKeyVersion, TransactionalID: id}
	return k.AppendTo(nil)
}

// record is tm's __transaction_state record, timestamped now (ms).
func (tm *txnMeta) record(now int64) record.Record {
	v := kmsg.NewTxnMetadataValue()
	v.Version = txnValueVersion
	v.ProducerID = tm.producerID
	v.ProducerEpoch = tm.producerEpoch
	v.TimeoutMillis = tm.timeoutMs
	v.State = tm.state
	v.LastUpdateTimestamp = tm.lastUpdate
	v.StartTimestamp = tm.startTimestamp
	var cur *kmsg.TxnMetadataValueTopic
	for _, tp := range tm.sortedPartitions() {
		if cur == nil || cur.Topic != tp.Topic {
			v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: tp.Topic})
			cur = &v.Topics[len(v.Topics)-1]
		}
		cur.Partitions = append(cur.Partitions, tp.Partition)
	}
	return record.Record{Timestamp: now, Key: txnKey(tm.id), Value: v.AppendTo(nil)}
}

// replayRecord applies one __transaction_state record to txns.
func replayRecord(txns map[string]*txnMeta, key, value []byte) error {
	if len(key) < 2 {
		return errBadRecord
	}
	if kv := int16(binary.BigEndian.Uint16(key)); kv != txnKeyVersion {
		return fmt.Errorf("%w: key version %d", errBadRecord, kv)
	}
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return fmt.Errorf("%w: key: %v", errBadRecord, err)
	}
	if value == nil {
		delete(txns, k.TransactionalID)
		return nil
	}
	tm, err := decodeValue(k.TransactionalID, value)
	if err != nil {
		return err
	}
	txns[k.TransactionalID] = tm
	return nil
}

// decodeValue decodes a TxnMetadataValue of version 0 or 1.
func decodeValue(id string, value []byte) (*txnMeta, error) {
	if len(value) < 2 {
		return nil, errBadRecord
	}
	if vv := int16(binary.BigEndian.Uint16(value)); vv < 0 || vv > maxValueVersion {
		return nil, fmt.Errorf("%w: value version %d", errBadRecord, vv)
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(value); err != nil {
		return nil, fmt.Errorf("%w: value: %v", errBadRecord, err)
	}
	if v.State < kmsg.TransactionStateEmpty || v.State > kmsg.TransactionStatePrepareEpochFence {
		return nil, fmt.Errorf("%w: state %d", errBadRecord, v.State)
	}
	if v.TimeoutMillis < 0 || v.ProducerEpoch < noProducerEpoch || v.ProducerEpoch == math.MaxInt16 {
		return nil, fmt.Errorf("%w: timeout %d epoch %d", errBadRecord, v.TimeoutMillis, v.ProducerEpoch)
	}
	tm := &txnMeta{
		id:                 id,
		producerID:         v.ProducerID,
		previousProducerID: -1,
		producerEpoch:      v.ProducerEpoch,
		lastProducerEpoch:  noProducerEpoch,
		timeoutMs:          v.TimeoutMillis,
		state:              v.State,
		partitions:         make(map[TopicPartition]struct{}),
		startTimestamp:     v.StartTimestamp,
		lastUpdate:         v.LastUpdateTimestamp,
	}
	if v.Version >= 1 && v.PreviousProducerID >= 0 {
		tm.previousProducerID = v.PreviousProducerID
	}
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			tm.partitions[TopicPartition{t.Topic, p}] = struct{}{}
		}
	}
	// PrepareEpochFence is never written by us nor by Kafka; treat a
	// stray one as the abort it leads to.
	if tm.state == kmsg.TransactionStatePrepareEpochFence {
		tm.state = kmsg.TransactionStatePrepareAbort
	}
	return tm, nil
}
