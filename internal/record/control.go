package record

import (
	"encoding/binary"
	"fmt"
)

// EndTxnMarker is the content of the control record a transaction
// coordinator writes to end a producer's transaction on a partition
// (Kafka's EndTransactionMarker):
//
//	key:   version int16 (0) | type int16 (0 abort, 1 commit)
//	value: version int16 (0) | coordinatorEpoch int32
type EndTxnMarker struct {
	Commit           bool
	CoordinatorEpoch int32
}

// endTxnMarkerVersion is the version written in a marker's key and value.
const endTxnMarkerVersion = 0

// BuildEndTxnMarker encodes a control batch holding one end-transaction
// marker record stamped with timestamp (ms). It is transactional and
// control, carries producerID and producerEpoch and base sequence -1, as
// Kafka's MemoryRecords.withEndTransactionMarker.
func BuildEndTxnMarker(baseOffset int64, partitionLeaderEpoch int32, producerID int64, producerEpoch int16, timestamp int64, m EndTxnMarker) []byte {
	typ := ControlAbort
	if m.Commit {
		typ = ControlCommit
	}
	var key [4]byte
	binary.BigEndian.PutUint16(key[0:], endTxnMarkerVersion)
	binary.BigEndian.PutUint16(key[2:], uint16(typ))
	var value [6]byte
	binary.BigEndian.PutUint16(value[0:], endTxnMarkerVersion)
	binary.BigEndian.PutUint32(value[2:], uint32(m.CoordinatorEpoch))
	b, err := Build(BuildOptions{
		BaseOffset: baseOffset, PartitionLeaderEpoch: partitionLeaderEpoch,
		Idempotent: true, ProducerID: producerID, ProducerEpoch: producerEpoch, BaseSequence: noSequence,
		Transactional: true, Control: true,
	}, []Record{{Timestamp: timestamp, Key: key[:], Value: value[:]}})
	if err != nil {
		// Uncompressed batches cannot fail to build.
		panic(fmt.Sprintf("record: build end-transaction marker: %v", err))
	}
	return b
}

// ParseEndTxnMarker decodes the control record r of a control batch as an
// end-transaction marker. Like Kafka, it accepts a value version above 0
// as long as the fields it knows are present; a control type other than
// abort or commit is an error.
func ParseEndTxnMarker(r *Record) (EndTxnMarker, error) {
	typ, err := ControlType(r)
	if err != nil {
		return EndTxnMarker{}, err
	}
	if typ != ControlAbort && typ != ControlCommit {
		return EndTxnMarker{}, fmt.Errorf("%w: control record type %d is not a transaction marker", ErrCorrupt, typ)
	}
	if len(r.Value) < 6 {
		return EndTxnMarker{}, fmt.Errorf("%w: end-transaction marker value of %d bytes", ErrCorrupt, len(r.Value))
	}
	if v := int16(binary.BigEndian.Uint16(r.Value)); v < 0 {
		return EndTxnMarker{}, fmt.Errorf("%w: end-transaction marker version %d", ErrCorrupt, v)
	}
	return EndTxnMarker{Commit: typ == ControlCommit, CoordinatorEpoch: int32(binary.BigEndian.Uint32(r.Value[2:]))}, nil
}

// ParseEndTxnMarkerBatch decodes a whole control batch b and returns the
// marker of its first record.
func ParseEndTxnMarkerBatch(b []byte) (EndTxnMarker, error) {
	bt, err := DecodeBatch(b)
	if err != nil {
		return EndTxnMarker{}, err
	}
	if !bt.Control() || len(bt.Records) == 0 {
		return EndTxnMarker{}, fmt.Errorf("%w: not a control batch with a record", ErrCorrupt)
	}
	return ParseEndTxnMarker(&bt.Records[0])
}
