package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"samsa/internal/record"
)

// numBatchesToRetain is how many of a producer's latest batches are kept
// for duplicate detection (Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN,
// matching max.in.flight.requests.per.connection <= 5).
const numBatchesToRetain = 5

// producerBatch is the metadata of one appended idempotent batch.
type producerBatch struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
}

// producerEntry is the state of one producer id (Kafka's
// ProducerStateEntry): its epoch, its latest batches, oldest first, and
// its transaction on this partition.
type producerEntry struct {
	epoch   int16
	batches []producerBatch // at most numBatchesToRetain
	// txnFirst is the first offset of the producer's ongoing transaction
	// (Kafka's currentTxnFirstOffset); -1 when none is open.
	txnFirst int64
	// coordinatorEpoch is the coordinator epoch of the last transaction
	// marker written for the producer; -1 before the first.
	coordinatorEpoch int32
	// lastTimestamp is the max timestamp (ms) of the producer's latest
	// batch or marker.
	lastTimestamp int64
}

func newProducerEntry(epoch int16) *producerEntry {
	return &producerEntry{epoch: epoch, batches: make([]producerBatch, 0, numBatchesToRetain), txnFirst: -1, coordinatorEpoch: -1, lastTimestamp: noTimestamp}
}

func (e *producerEntry) clone() *producerEntry {
	c := *e
	c.batches = make([]producerBatch, len(e.batches), numBatchesToRetain)
	copy(c.batches, e.batches)
	return &c
}

// duplicateOf returns the retained batch that h retries, if any.
func (e *producerEntry) duplicateOf(h *record.Header) (producerBatch, bool) {
	if e.epoch != h.ProducerEpoch {
		return producerBatch{}, false
	}
	last := h.LastSequence()
	for _, b := range e.batches {
		if b.firstSeq == h.BaseSequence && b.lastSeq == last {
			return b, true
		}
	}
	return producerBatch{}, false
}

// check applies Kafka's ProducerAppendInfo.checkProducerEpoch and
// checkSequence to a non-duplicate batch. e may be nil (unknown producer).
// With skipSequence (appends of a coordinator, Kafka's
// AppendOrigin.COORDINATOR) only the epoch is checked.
func (e *producerEntry) check(h *record.Header, skipSequence bool) error {
	if e == nil {
		// Unknown producer: accept any sequence. Kafka >= 2.5 accepts too
		// unless it can prove data loss (UNKNOWN_PRODUCER_ID only after
		// truncation of a log that still knows the producer). Retention
		// and DeleteRecords keep producer state here (segments go, the
		// entries stay until restart replays the remaining log), so there
		// is no such case.
		return nil
	}
	if h.ProducerEpoch < e.epoch {
		return fmt.Errorf("%w: producer %d epoch %d is older than %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, e.epoch)
	}
	if h.Control() || skipSequence {
		return nil
	}
	if h.ProducerEpoch != e.epoch {
		if h.BaseSequence != 0 {
			return fmt.Errorf("%w: producer %d new epoch %d starts at sequence %d", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return nil
	}
	if len(e.batches) == 0 {
		if h.BaseSequence != 0 {
			return fmt.Errorf("%w: producer %d expected sequence 0, got %d", ErrOutOfOrderSequence, h.ProducerID, h.BaseSequence)
		}
		return nil
	}
	lastSeq := e.batches[len(e.batches)-1].lastSeq
	if !inSequence(lastSeq, h.BaseSequence) {
		return fmt.Errorf("%w: producer %d expected sequence %d, got %d", ErrOutOfOrderSequence, h.ProducerID, record.IncrementSequence(lastSeq, 1), h.BaseSequence)
	}
	return nil
}

func inSequence(lastSeq, nextSeq int32) bool {
	return nextSeq == lastSeq+1 || (nextSeq == 0 && lastSeq == math.MaxInt32)
}

// update records an appended batch at firstOffset (its epoch, sequence
// numbers and timestamp; transactions are txn.go's).
func (e *producerEntry) update(h *record.Header, firstOffset int64) {
	if h.ProducerEpoch != e.epoch {
		e.epoch = h.ProducerEpoch
		e.batches = e.batches[:0]
	}
	e.lastTimestamp = h.MaxTimestamp
	if h.Control() {
		return
	}
	if len(e.batches) == numBatchesToRetain {
		copy(e.batches, e.batches[1:])
		e.batches = e.batches[:numBatchesToRetain-1]
	}
	e.batches = append(e.batches, producerBatch{
		firstSeq: h.BaseSequence, lastSeq: h.LastSequence(),
		firstOffset: firstOffset, lastOffset: firstOffset + int64(h.LastOffsetDelta),
	})
}

// producerState maps producer ids to entries. Guarded by Log.appendMu.
type producerState struct {
	entries map[int64]*producerEntry
	dirty   bool // changed since the last snapshot
}

// apply updates the state with a batch read back from the log (recovery,
// Kafka's ProducerStateManager replay). marker is the decoded marker of a
// control batch (nil for data batches, or when it did not decode). It
// returns the transaction a marker completed, if any.
func (ps *producerState) apply(h *record.Header, marker *record.EndTxnMarker) (completedTxn, bool) {
	if h.ProducerID < 0 {
		return completedTxn{}, false
	}
	e := ps.entries[h.ProducerID]
	if e == nil {
		e = newProducerEntry(h.ProducerEpoch)
		ps.entries[h.ProducerID] = e
	}
	e.update(h, h.BaseOffset)
	ps.dirty = true
	switch {
	case h.Control() && marker != nil:
		return e.endTxn(h.ProducerID, h.BaseOffset, *marker)
	case h.Control():
	case h.Transactional():
		if e.txnFirst < 0 {
			e.txnFirst = h.BaseOffset
		}
	}
	return completedTxn{}, false
}

// Snapshot file format (see doc.go):
//
//	version int16 (2) | crc uint32 (CRC-32C of the rest) | count int32 |
//	count × (producerId int64, epoch int16, currentTxnFirstOffset int64,
//	         coordinatorEpoch int32, lastTimestamp int64, n int8,
//	         n × (firstSeq int32, lastSeq int32, firstOffset int64, lastOffset int64))
//
// Version 1 (written before transactions) lacks the three transaction
// fields; it is still read.
const (
	snapshotVersion   = 2
	snapshotVersionV1 = 1
)

var errBadSnapshot = errors.New("storage: bad producer snapshot")

func (ps *producerState) encode() []byte {
	ids := make([]int64, 0, len(ps.entries))
	for id := range ps.entries {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	b := make([]byte, 10, 10+len(ids)*(31+24*numBatchesToRetain))
	binary.BigEndian.PutUint16(b, snapshotVersion)
	binary.BigEndian.PutUint32(b[6:], uint32(len(ids)))
	for _, id := range ids {
		e := ps.entries[id]
		b = binary.BigEndian.AppendUint64(b, uint64(id))
		b = binary.BigEndian.AppendUint16(b, uint16(e.epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.txnFirst))
		b = binary.BigEndian.AppendUint32(b, uint32(e.coordinatorEpoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.lastTimestamp))
		b = append(b, byte(len(e.batches)))
		for _, bt := range e.batches {
			b = binary.BigEndian.AppendUint32(b, uint32(bt.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(bt.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(bt.firstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(bt.lastOffset))
		}
	}
	binary.BigEndian.PutUint32(b[2:], crc32.Checksum(b[6:], castagnoli))
	return b
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func decodeProducerSnapshot(b []byte) (map[int64]*producerEntry, error) {
	if len(b) < 10 {
		return nil, errBadSnapshot
	}
	version := binary.BigEndian.Uint16(b)
	if version != snapshotVersion && version != snapshotVersionV1 {
		return nil, fmt.Errorf("%w: version %d", errBadSnapshot, version)
	}
	if crc32.Checksum(b[6:], castagnoli) != binary.BigEndian.Uint32(b[2:]) {
		return nil, fmt.Errorf("%w: crc mismatch", errBadSnapshot)
	}
	fixed := 11 // producerId, epoch, n
	if version == snapshotVersion {
		fixed += 20 // currentTxnFirstOffset, coordinatorEpoch, lastTimestamp
	}
	n := int(binary.BigEndian.Uint32(b[6:]))
	b = b[10:]
	if n < 0 || n > len(b)/fixed {
		return nil, fmt.Errorf("%w: %d entries", errBadSnapshot, n)
	}
	m := make(map[int64]*producerEntry, n)
	for range n {
		if len(b) < fixed {
			return nil, errBadSnapshot
		}
		id := int64(binary.BigEndian.Uint64(b))
		e := newProducerEntry(int16(binary.BigEndian.Uint16(b[8:])))
		b = b[10:]
		if version == snapshotVersion {
			e.txnFirst = int64(binary.BigEndian.Uint64(b))
			e.coordinatorEpoch = int32(binary.BigEndian.Uint32(b[8:]))
			e.lastTimestamp = int64(binary.BigEndian.Uint64(b[12:]))
			b = b[20:]
			if e.txnFirst < -1 {
				return nil, fmt.Errorf("%w: transaction first offset %d", errBadSnapshot, e.txnFirst)
			}
		}
		nb := int(b[0])
		b = b[1:]
		if id < 0 || nb > numBatchesToRetain || len(b) < nb*24 {
			return nil, errBadSnapshot
		}
		e.batches = e.batches[:nb]
		for i := range nb {
			e.batches[i] = producerBatch{
				firstSeq:    int32(binary.BigEndian.Uint32(b)),
				lastSeq:     int32(binary.BigEndian.Uint32(b[4:])),
				firstOffset: int64(binary.BigEndian.Uint64(b[8:])),
				lastOffset:  int64(binary.BigEndian.Uint64(b[16:])),
			}
			b = b[24:]
		}
		m[id] = e
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: trailing bytes", errBadSnapshot)
	}
	return m, nil
}

// listSnapshots returns the offsets of "<offset>.snapshot" files in dir,
// newest first.
func listSnapshots(dir string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var offs []int64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, snapshotSuffix) {
			continue
		}
		off, err := strconv.ParseInt(strings.TrimSuffix(name, snapshotSuffix), 10, 64)
		if err != nil || off < 0 {
			continue
		}
		offs = append(offs, off)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] > offs[j] })
	return offs, nil
}

// writeSnapshotLocked writes the producer state as "<offset>.snapshot"
// (tmp + rename; fsynced only if sync) and keeps the two newest snapshots.
// The snapshot offsets are tracked in memory (Log.snapshots), so a roll
// does not list the directory. Caller holds appendMu, and offset is the
// log end offset.
func (l *Log) writeSnapshotLocked(offset int64, sync bool) error {
	if err := writeFileAtomic(filepath.Join(l.dirPath(), segmentName(offset, snapshotSuffix)), l.producers.encode(), sync); err != nil {
		return err
	}
	l.producers.dirty = false
	kept := l.snapshots[:0]
	for _, off := range l.snapshots {
		switch {
		case off < offset:
			kept = append(kept, off)
		case off > offset:
			_ = os.Remove(filepath.Join(l.dirPath(), segmentName(off, snapshotSuffix)))
		}
	}
	kept = append(kept, offset)
	if n := len(kept); n > 2 {
		for _, off := range kept[:n-2] {
			_ = os.Remove(filepath.Join(l.dirPath(), segmentName(off, snapshotSuffix)))
		}
		kept = append(kept[:0], kept[n-2:]...)
	}
	l.snapshots = kept
	return nil
}
