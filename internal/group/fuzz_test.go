package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/record"
)

// fuzzSeeds are valid keys and values of every kind we write or read.
func fuzzSeeds() [][2][]byte {
	c := New(Config{NumPartitions: 1})
	defer c.Close()
	g := newGroup(newPartition(c, 0, nil), "g", time.Now())
	g.protocolType, g.protocol, g.generation, g.leader = "consumer", "range", 3, "m1"
	iid := "i1"
	g.members["m1"] = &member{id: "m1", instanceID: &iid, protocols: []protocol{{"range", subscription("t")}},
		sessionTimeout: time.Second, rebalanceTimeout: time.Second, assignment: []byte("a")}
	md := g.metadataRecordLocked(nil)
	off := offsetRecord("g", topicPartition{"t", 1}, offsetValue{offset: 5, leaderEpoch: 2, metadata: "x", commitTimestamp: 9})
	v1 := kmsg.OffsetCommitValue{Version: 1, Offset: 3, ExpireTimestamp: 10}
	v4 := kmsg.OffsetCommitValue{Version: 4, Offset: 3, TopicID: [16]byte{1}}
	k0 := kmsg.OffsetCommitKey{Version: 0, Group: "g", Topic: "t"}
	seeds := [][2][]byte{
		{md.Key, md.Value},
		{md.Key, nil},
		{off.Key, off.Value},
		{off.Key, nil},
		{k0.AppendTo(nil), v1.AppendTo(nil)},
		{off.Key, v4.AppendTo(nil)},
		{[]byte{0, 3, 0, 0}, []byte{0}},
		// Flexible values announcing 2^32-1 tagged fields.
		{md.Key, overlongTags(true)},
		{off.Key, overlongTags(false)},
	}
	// Every value version of both schemas.
	for _, v := range oldValueVersions() {
		seeds = append(seeds, [2][]byte{v.key, v.value})
	}
	return seeds
}

// overlongTags is a valid version-4 value (of a group when group) whose
// last tagged field section announces 2^32-1 fields.
func overlongTags(group bool) []byte {
	var b []byte
	if group {
		v := kmsg.NewGroupMetadataValue()
		v.Version = 4
		b = v.AppendTo(nil)
	} else {
		v := kmsg.OffsetCommitValue{Version: 4}
		b = v.AppendTo(nil)
	}
	return append(b[:len(b)-1], 0xff, 0xff, 0xff, 0xff, 0x0f)
}

// FuzzGroupReplayRecord feeds arbitrary keys and values to the replay and
// restores the result into a partition: nothing may panic.
func FuzzGroupReplayRecord(f *testing.F) {
	for i, s := range fuzzSeeds() {
		f.Add(s[0], s[1], s[1] == nil, int64(i), int64(-1), false)
		f.Add(s[0], s[1], s[1] == nil, int64(i), int64(7), i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool, offset, producerID int64, commit bool) {
		if tombstone {
			value = nil
		}
		rs := newReplay()
		_ = rs.record(offset, producerID, key, value)
		if producerID >= 0 {
			// The transaction may end (or stay open) before the restore.
			if offset%3 != 0 {
				rs.endTxn(producerID, commit)
			}
		}
		fuzzRestore(rs)
	})
}

// txnFuzzSeeds are batches of a transactional offset commit and the
// markers that may end it, as a log holds them.
func txnFuzzSeeds(f *testing.F) [][]byte {
	off := offsetRecord("g", topicPartition{"t", 1}, offsetValue{offset: 5, leaderEpoch: 2, metadata: "x", commitTimestamp: 9})
	txn, err := record.Build(record.BuildOptions{Idempotent: true, Transactional: true, ProducerID: 7, ProducerEpoch: 1}, []record.Record{off})
	if err != nil {
		f.Fatal(err)
	}
	out := [][]byte{txn}
	for _, typ := range []byte{controlAbort, controlCommit, 2, 0xff} {
		b, err := record.Build(record.BuildOptions{Idempotent: true, Transactional: true, Control: true,
			ProducerID: 7, ProducerEpoch: 1, BaseSequence: -1, BaseOffset: 1},
			[]record.Record{{Key: []byte{0, 0, 0, typ}, Value: []byte{0, 0, 0, 0, 0, 0}}})
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzGroupReplayBatch feeds arbitrary bytes as a record batch.
func FuzzGroupReplayBatch(f *testing.F) {
	defer record.LimitDecompression(1 << 20)()
	var recs []record.Record
	for _, s := range fuzzSeeds() {
		recs = append(recs, record.Record{Key: s[0], Value: s[1]})
	}
	b, err := record.Build(record.BuildOptions{}, recs)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	for _, s := range txnFuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rs := newReplay()
		_ = rs.batch(b)
		fuzzRestore(rs)
	})
}

// FuzzGroupReplayTxn replays a transactional offset commit followed by
// arbitrary bytes as the next batch (a marker, or anything): the control
// record key decoding and the end of the transaction must not panic.
func FuzzGroupReplayTxn(f *testing.F) {
	defer record.LimitDecompression(1 << 20)()
	seeds := txnFuzzSeeds(f)
	for _, s := range seeds[1:] {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rs := newReplay()
		if err := rs.batch(seeds[0]); err != nil {
			t.Fatal(err)
		}
		_ = rs.batch(b)
		if h, err := record.Validate(b); err == nil {
			rs.producerBatch(&h)
		}
		fuzzRestore(rs)
	})
}

func fuzzRestore(rs *replay) {
	cfg := testConfig()
	cfg.Logger = nil
	c := New(cfg)
	ps := newPartition(c, 0, nil)
	// The partition stays Loading (it has no log to write to): a timer
	// the restore armed that fires at once (a session deadline already
	// past in the fuzzed record) must not try to persist the group.
	ps.mu.Lock()
	rs.restore(ps)
	ps.mu.Unlock()
	ps.shutdown(nil)
	c.Close()
}
