package group

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/record"
)

// Versions of the __consumer_offsets records we write (see doc.go). Kafka
// 4.x writes the same ones for classic groups.
const (
	offsetKeyVersion   = 1
	offsetValueVersion = 3
	// offsetValueVersionWithExpiry is written for a commit with an
	// explicit expire timestamp.
	offsetValueVersionWithExpiry = 1
	groupKeyVersion              = 2
	groupValueVersion            = 3
	maxOffsetValueVersion        = 4
	maxGroupValueVersion         = 4
)

// errBadRecord: a __consumer_offsets record whose key or value does not
// decode.
var errBadRecord = errors.New("group: malformed __consumer_offsets record")

// topicPartition names a partition of a committed offset.
type topicPartition struct {
	topic     string
	partition int32
}

// offsetValue is one committed offset.
type offsetValue struct {
	offset          int64
	leaderEpoch     int32 // -1: unknown
	metadata        string
	commitTimestamp int64 // ms
	// expireTimestamp (ms) is the explicit expiry an OffsetCommit v2-v4
	// asked for with its retention time; noExpireTimestamp when none (the
	// group's retention rule applies).
	expireTimestamp int64
	// recordOffset is the log offset of the record that wrote the value
	// (Kafka's OffsetAndMetadata.recordOffset): when a transaction
	// commits, its offset replaces the committed one only if it was
	// written after it (see partition.endTxnLocked).
	recordOffset int64
}

// noExpireTimestamp: an offset without an explicit expiry (Kafka's
// OffsetCommitRequest.DEFAULT_TIMESTAMP).
const noExpireTimestamp = -1

// expiredAt reports whether v has expired at now (ms), retention after
// base (ms), or at its explicit expiry if it has one
// (OffsetExpirationConditionImpl.isOffsetExpired).
func (v offsetValue) expiredAt(now, base int64, retention time.Duration) bool {
	if v.expireTimestamp != noExpireTimestamp {
		return now >= v.expireTimestamp
	}
	return now-base >= retention.Milliseconds()
}

// sortedTopicPartitions returns the keys of offs by topic, then partition.
func sortedTopicPartitions(offs map[topicPartition]offsetValue) []topicPartition {
	tps := make([]topicPartition, 0, len(offs))
	for tp := range offs {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, func(a, b topicPartition) int {
		return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
	})
	return tps
}

func offsetKey(group string, tp topicPartition) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: tp.topic, Partition: tp.partition}
	return k.AppendTo(nil)
}

// offsetRecord is v's record: value version 3, or version 1 (the only one
// with an expire timestamp, and no leader epoch) when v has an explicit
// expiry, as Kafka writes them (CoordinatorRecordHelpers.newOffsetCommitRecord).
func offsetRecord(group string, tp topicPartition, v offsetValue) record.Record {
	val := kmsg.OffsetCommitValue{
		Version:         offsetValueVersion,
		Offset:          v.offset,
		LeaderEpoch:     v.leaderEpoch,
		Metadata:        v.metadata,
		CommitTimestamp: v.commitTimestamp,
	}
	if v.expireTimestamp != noExpireTimestamp {
		val.Version = offsetValueVersionWithExpiry
		val.ExpireTimestamp = v.expireTimestamp
	}
	return record.Record{Timestamp: v.commitTimestamp, Key: offsetKey(group, tp), Value: val.AppendTo(nil)}
}

func offsetTombstone(group string, tp topicPartition, now time.Time) record.Record {
	return record.Record{Timestamp: now.UnixMilli(), Key: offsetKey(group, tp)}
}

func groupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: group}
	return k.AppendTo(nil)
}

func groupTombstone(group string, now time.Time) record.Record {
	return record.Record{Timestamp: now.UnixMilli(), Key: groupKey(group)}
}

// replay accumulates the state of a __consumer_offsets partition while it
// is read: the last record of each key wins, tombstones delete. Offsets in
// transactional batches stay pending per producer until that producer's
// transaction marker (a control batch) commits or aborts them, as
// OffsetMetadataManager.replay and replayEndTransactionMarker do.
type replay struct {
	groups  map[string]*kmsg.GroupMetadataValue
	offsets map[string]map[topicPartition]offsetValue
	// txn are the offsets of open transactions: producer id -> group ->
	// offsets.
	txn map[int64]map[string]map[topicPartition]offsetValue
	// producers are the epoch and next sequence of every producer id seen.
	producers map[int64]producerSeq
}

func newReplay() *replay {
	return &replay{
		groups:    make(map[string]*kmsg.GroupMetadataValue),
		offsets:   make(map[string]map[topicPartition]offsetValue),
		txn:       make(map[int64]map[string]map[topicPartition]offsetValue),
		producers: make(map[int64]producerSeq),
	}
}

// batch replays one whole record batch. A control batch (transaction
// marker) ends its producer's transaction; other control records are
// skipped.
func (rs *replay) batch(b []byte) error {
	dec, err := record.DecodeBatch(b)
	if err != nil {
		return err
	}
	if dec.Control() {
		if dec.ProducerID < 0 || len(dec.Records) == 0 {
			return nil
		}
		typ, err := controlType(dec.Records[0].Key)
		if err != nil {
			return fmt.Errorf("offset %d: %w", dec.BaseOffset, err)
		}
		switch typ {
		case controlAbort, controlCommit:
			rs.endTxn(dec.ProducerID, typ == controlCommit)
		}
		return nil
	}
	producerID := int64(-1)
	if dec.Transactional() && dec.ProducerID >= 0 {
		producerID = dec.ProducerID
	}
	var firstErr error
	for i := range dec.Records {
		r := &dec.Records[i]
		if err := rs.record(r.Offset, producerID, r.Key, r.Value); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("offset %d: %w", r.Offset, err)
		}
	}
	return firstErr
}

// Control record types of transaction markers (Kafka's ControlRecordType).
const (
	controlAbort  = 0
	controlCommit = 1
)

// controlType returns the type of a control record from its key: version
// int16 (0; Kafka reads any non-negative one), type int16.
func controlType(key []byte) (int16, error) {
	if len(key) < 4 {
		return 0, fmt.Errorf("%w: control key of %d bytes", errBadRecord, len(key))
	}
	if v := int16(binary.BigEndian.Uint16(key)); v < 0 {
		return 0, fmt.Errorf("%w: control key version %d", errBadRecord, v)
	}
	return int16(binary.BigEndian.Uint16(key[2:])), nil
}

// producerBatch follows the producer state of batch header h (see
// producerSeq): the replay loop calls it for every batch it reads, whether
// or not its records decode.
func (rs *replay) producerBatch(h *record.Header) {
	if h.ProducerID < 0 {
		return
	}
	rs.producers[h.ProducerID] = rs.producers[h.ProducerID].after(h)
}

// endTxn applies a transaction marker of producerID.
func (rs *replay) endTxn(producerID int64, commit bool) {
	pending := rs.txn[producerID]
	delete(rs.txn, producerID)
	if !commit {
		return
	}
	for id, offs := range pending {
		for tp, v := range offs {
			m := rs.offsets[id]
			if cur, ok := m[tp]; ok && cur.recordOffset > v.recordOffset {
				continue // a later non-transactional commit wins
			}
			if m == nil {
				m = make(map[topicPartition]offsetValue)
				rs.offsets[id] = m
			}
			m[tp] = v
		}
	}
}

// record replays one key/value written at log offset offset, by the
// transaction of producerID (-1: not transactional); an undecodable one is
// skipped with an error. Keys of versions we do not know (KIP-848 groups,
// share groups) are skipped silently.
func (rs *replay) record(offset, producerID int64, key, value []byte) error {
	if len(key) < 2 {
		return errBadRecord
	}
	switch v := int16(binary.BigEndian.Uint16(key)); v {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("%w: offset key: %v", errBadRecord, err)
		}
		tp := topicPartition{k.Topic, k.Partition}
		if value == nil {
			// A tombstone deletes the committed offset and the pending
			// ones of every open transaction.
			if m := rs.offsets[k.Group]; m != nil {
				delete(m, tp)
				if len(m) == 0 {
					delete(rs.offsets, k.Group)
				}
			}
			for pid, byGroup := range rs.txn {
				if m := byGroup[k.Group]; m != nil {
					delete(m, tp)
					if len(m) == 0 {
						delete(byGroup, k.Group)
					}
				}
				if len(byGroup) == 0 {
					delete(rs.txn, pid)
				}
			}
			return nil
		}
		if err := checkValue(value, maxOffsetValueVersion, false); err != nil {
			return fmt.Errorf("%w: offset value: %v", errBadRecord, err)
		}
		var val kmsg.OffsetCommitValue
		if err := val.ReadFrom(value); err != nil {
			return fmt.Errorf("%w: offset value (version %d): %v", errBadRecord, val.Version, err)
		}
		ov := offsetValue{offset: val.Offset, leaderEpoch: -1, metadata: val.Metadata,
			commitTimestamp: val.CommitTimestamp, expireTimestamp: noExpireTimestamp, recordOffset: offset}
		if val.Version >= 3 {
			ov.leaderEpoch = val.LeaderEpoch
		}
		if val.Version == offsetValueVersionWithExpiry {
			ov.expireTimestamp = val.ExpireTimestamp
		}
		byGroup := rs.offsets
		if producerID >= 0 {
			byGroup = rs.txn[producerID]
			if byGroup == nil {
				byGroup = make(map[string]map[topicPartition]offsetValue)
				rs.txn[producerID] = byGroup
			}
		}
		m := byGroup[k.Group]
		if m == nil {
			m = make(map[topicPartition]offsetValue)
			byGroup[k.Group] = m
		}
		m[tp] = ov
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("%w: group key: %v", errBadRecord, err)
		}
		if value == nil {
			delete(rs.groups, k.Group)
			return nil
		}
		if err := checkValue(value, maxGroupValueVersion, true); err != nil {
			return fmt.Errorf("%w: group value: %v", errBadRecord, err)
		}
		var val kmsg.GroupMetadataValue
		// The value's byte fields alias their input: copy it, the read
		// buffer may be reused.
		if err := val.ReadFrom(bytes.Clone(value)); err != nil {
			return fmt.Errorf("%w: group value (version %d): %v", errBadRecord, val.Version, err)
		}
		rs.groups[k.Group] = &val
	}
	return nil
}

// flexibleValueVersion is the first value version (of both schemas) with
// tagged fields.
const flexibleValueVersion = 4

// checkValue rejects a value whose version is unknown, and a flexible one
// announcing more tagged fields than it has bytes left. kmsg reads a tagged
// field section by looping once per announced field even past the end of
// its input, so one corrupt count (up to 2^32) would stall the replay for
// minutes; this walk bounds each count before kmsg sees the value. For a
// group value (groupValue) it walks the members the same way.
func checkValue(value []byte, maxVersion int16, groupValue bool) error {
	r := kbin.Reader{Src: value}
	v := r.Int16()
	switch {
	case !r.Ok():
		return errors.New("no version")
	case v < 0 || v > maxVersion:
		return fmt.Errorf("unknown version %d", v)
	case v < flexibleValueVersion:
		return nil
	}
	tagsFit := func() bool {
		n := r.Uvarint()
		if !r.Ok() || int64(n) > int64(len(r.Src)) {
			return false
		}
		for ; n > 0 && r.Ok(); n-- {
			r.Uvarint()
			r.Span(int(r.Uvarint()))
		}
		return r.Ok()
	}
	if !groupValue {
		r.Int64()         // offset
		r.Int32()         // leader epoch
		r.CompactString() // metadata
		r.Int64()         // commit timestamp
	} else {
		r.CompactString()         // protocol type
		r.Int32()                 // generation
		r.CompactNullableString() // protocol
		r.CompactNullableString() // leader
		r.Int64()                 // current state timestamp
		n := r.CompactArrayLen()
		for i := int32(0); i < n && r.Ok(); i++ {
			r.CompactString()         // member id
			r.CompactNullableString() // group instance id
			r.CompactString()         // client id
			r.CompactString()         // client host
			r.Int32()                 // rebalance timeout
			r.Int32()                 // session timeout
			r.CompactBytes()          // subscription
			r.CompactBytes()          // assignment
			if !tagsFit() {
				return errors.New("member tagged fields overrun the value")
			}
		}
	}
	if !r.Ok() || !tagsFit() {
		return errors.New("tagged fields overrun the value")
	}
	return nil
}

// restore turns the replayed state into the partition's groups. Groups
// with members come back Stable with their assignments, each member due to
// expire after its session timeout unless it heartbeats, so consumers keep
// their partitions across a coordinator move, as in Kafka. A group keeps
// its stored current state timestamp (the time an Empty group became
// Empty, which its offsets expire from); values before version 2 have none,
// and then the offsets expire from their commit timestamps, as in
// ClassicGroup.fromRecord. The caller holds ps.mu.
func (rs *replay) restore(ps *partition) {
	wall := ps.c.now()
	now := time.Now() // sessions run on real time
	for id, md := range rs.groups {
		g := newGroup(ps, id, wall)
		g.stateTimestamp = time.Time{}
		if md.Version >= 2 && md.CurrentStateTimestamp >= 0 {
			g.stateTimestamp = time.UnixMilli(md.CurrentStateTimestamp)
		}
		g.protocolType = md.ProtocolType
		g.generation = md.Generation
		if md.Protocol != nil {
			g.protocol = *md.Protocol
		}
		if md.Leader != nil {
			g.leader = *md.Leader
		}
		for _, mm := range md.Members {
			if mm.MemberID == "" || g.members[mm.MemberID] != nil {
				continue
			}
			m := &member{
				id:               mm.MemberID,
				clientID:         mm.ClientID,
				clientHost:       mm.ClientHost,
				protocolType:     md.ProtocolType,
				protocols:        []protocol{{name: g.protocol, metadata: mm.Subscription}},
				sessionTimeout:   millis(mm.SessionTimeoutMillis),
				rebalanceTimeout: millis(mm.RebalanceTimeoutMillis),
				assignment:       mm.Assignment,
			}
			if m.rebalanceTimeout <= 0 {
				m.rebalanceTimeout = m.sessionTimeout
			}
			if mm.InstanceID != nil {
				iid := *mm.InstanceID
				m.instanceID = &iid
			}
			g.addMemberLocked(m, now)
		}
		if len(g.members) > 0 {
			g.state = stateStable
			if g.members[g.leader] == nil {
				g.leader = g.firstMemberLocked()
			}
		} else {
			g.state = stateEmpty
			g.protocol = ""
			g.leader = ""
		}
		ps.groups[id] = g
	}
	for id, offs := range rs.offsets {
		g := ps.groups[id]
		if g == nil {
			g = newGroup(ps, id, wall)
			ps.groups[id] = g
		}
		g.offsets = offs
	}
	// Open transactions stay pending; their groups exist (as simple
	// groups if nothing else made them), as in Kafka.
	for pid, byGroup := range rs.txn {
		for id, offs := range byGroup {
			g := ps.groups[id]
			if g == nil {
				g = newGroup(ps, id, wall)
				ps.groups[id] = g
			}
			for tp, v := range offs {
				ps.addTxnOffsetLocked(g, pid, tp, v)
			}
		}
	}
	maps.Copy(ps.producers, rs.producers)
}

func millis(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }
