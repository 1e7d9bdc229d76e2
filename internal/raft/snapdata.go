package raft

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
)

// A snapshot's data (pb.Snapshot.Data) wraps the caller's bytes with the
// learners' raft addresses, which a ConfState (ids only) cannot carry and
// which a node restoring the snapshot needs to reach them:
//
//	+----------------+-------------+-------------------------------------------+----------------+
//	| version u8 = 1 | n u16BE     | n × ( id i32BE | len u8 | address, len B ) | caller's bytes |
//	+----------------+-------------+-------------------------------------------+----------------+
const snapDataVersion = 1

// maxAddrLen bounds a learner address (one length byte).
const maxAddrLen = 255

func encodeSnapData(learners map[int32]string, data []byte) []byte {
	ids := slices.Sorted(maps.Keys(learners))
	b := []byte{snapDataVersion}
	b = binary.BigEndian.AppendUint16(b, uint16(len(ids)))
	for _, id := range ids {
		a := learners[id]
		b = binary.BigEndian.AppendUint32(b, uint32(id))
		b = append(b, byte(len(a)))
		b = append(b, a...)
	}
	return append(b, data...)
}

func decodeSnapData(b []byte) (map[int32]string, []byte, error) {
	if len(b) < 3 || b[0] != snapDataVersion {
		return nil, nil, fmt.Errorf("%w: snapshot data of %d bytes has no version %d header", ErrCorrupt, len(b), snapDataVersion)
	}
	n := int(binary.BigEndian.Uint16(b[1:3]))
	b = b[3:]
	learners := make(map[int32]string, min(n, 1024))
	for range n {
		if len(b) < 5 || len(b) < 5+int(b[4]) {
			return nil, nil, fmt.Errorf("%w: snapshot learner list cut short", ErrCorrupt)
		}
		id := int32(binary.BigEndian.Uint32(b))
		if id < 0 {
			return nil, nil, fmt.Errorf("%w: snapshot learner id %d", ErrCorrupt, id)
		}
		learners[id] = string(b[5 : 5+int(b[4])])
		b = b[5+int(b[4]):]
	}
	return learners, b, nil
}
