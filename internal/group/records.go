package group

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/record"
)

// Versions of the __consumer_offsets records we write (see doc.go). Kafka
// 4.x writes the same ones for classic groups.
const (
	offsetKeyVersion      = 1
	offsetValueVersion    = 3
	groupKeyVersion       = 2
	groupValueVersion     = 3
	maxOffsetValueVersion = 4
	maxGroupValueVersion  = 4
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
}

func offsetKey(group string, tp topicPartition) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: tp.topic, Partition: tp.partition}
	return k.AppendTo(nil)
}

func offsetRecord(group string, tp topicPartition, v offsetValue) record.Record {
	val := kmsg.OffsetCommitValue{
		Version:         offsetValueVersion,
		Offset:          v.offset,
		LeaderEpoch:     v.leaderEpoch,
		Metadata:        v.metadata,
		CommitTimestamp: v.commitTimestamp,
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
// is read: the last record of each key wins, tombstones delete.
type replay struct {
	groups  map[string]*kmsg.GroupMetadataValue
	offsets map[string]map[topicPartition]offsetValue
}

func newReplay() *replay {
	return &replay{
		groups:  make(map[string]*kmsg.GroupMetadataValue),
		offsets: make(map[string]map[topicPartition]offsetValue),
	}
}

// batch replays one whole record batch. Control batches (transaction
// markers) are skipped.
func (rs *replay) batch(b []byte) error {
	dec, err := record.DecodeBatch(b)
	if err != nil {
		return err
	}
	if dec.Control() {
		return nil
	}
	var firstErr error
	for i := range dec.Records {
		r := &dec.Records[i]
		if err := rs.record(r.Key, r.Value); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("offset %d: %w", r.Offset, err)
		}
	}
	return firstErr
}

// record replays one key/value; an undecodable one is skipped with an
// error. Keys of versions we do not know (KIP-848 groups, share groups)
// are skipped silently.
func (rs *replay) record(key, value []byte) error {
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
			if m := rs.offsets[k.Group]; m != nil {
				delete(m, tp)
				if len(m) == 0 {
					delete(rs.offsets, k.Group)
				}
			}
			return nil
		}
		var val kmsg.OffsetCommitValue
		if err := val.ReadFrom(value); err != nil || val.Version < 0 || val.Version > maxOffsetValueVersion {
			return fmt.Errorf("%w: offset value (version %d): %v", errBadRecord, val.Version, err)
		}
		ov := offsetValue{offset: val.Offset, leaderEpoch: -1, metadata: val.Metadata, commitTimestamp: val.CommitTimestamp}
		if val.Version >= 3 {
			ov.leaderEpoch = val.LeaderEpoch
		}
		m := rs.offsets[k.Group]
		if m == nil {
			m = make(map[topicPartition]offsetValue)
			rs.offsets[k.Group] = m
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
		var val kmsg.GroupMetadataValue
		// The value's byte fields alias their input: copy it, the read
		// buffer may be reused.
		if err := val.ReadFrom(bytes.Clone(value)); err != nil || val.Version < 0 || val.Version > maxGroupValueVersion {
			return fmt.Errorf("%w: group value (version %d): %v", errBadRecord, val.Version, err)
		}
		rs.groups[k.Group] = &val
	}
	return nil
}

// restore turns the replayed state into the partition's groups. Groups
// with members come back Stable with their assignments, each member due to
// expire after its session timeout unless it heartbeats, so consumers keep
// their partitions across a coordinator move, as in Kafka. The caller holds
// ps.mu.
func (rs *replay) restore(ps *partition, now time.Time) {
	for id, md := range rs.groups {
		g := newGroup(ps, id, now)
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
			g = newGroup(ps, id, now)
			ps.groups[id] = g
		}
		g.offsets = offs
	}
}

func millis(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }
