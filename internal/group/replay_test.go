package group

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/record"
)

// versionedRecord is one __consumer_offsets record in a given value version.
type versionedRecord struct {
	name       string
	key, value []byte
}

// oldOffsetValue is the value of partition p of topic "t" of group "g" as
// every value version writes it: offset 100+v, metadata "m<v>", commit
// timestamp 1000+v, leader epoch 5 (v3+), expire timestamp 2000 (v1).
func oldOffsetValue(v int16) kmsg.OffsetCommitValue {
	return kmsg.OffsetCommitValue{Version: v, Offset: 100 + int64(v), LeaderEpoch: 5,
		Metadata: "m" + string(rune('0'+v)), CommitTimestamp: 1000 + int64(v), ExpireTimestamp: 2000, TopicID: [16]byte{byte(v)}}
}

// oldGroupValue is the metadata of group "g<v>" in value version v: one
// member "m", generation 10+v, current state timestamp 12345 (v2+).
func oldGroupValue(v int16) kmsg.GroupMetadataValue {
	val := kmsg.NewGroupMetadataValue()
	val.Version = v
	val.ProtocolType = "consumer"
	val.Generation = 10 + int32(v)
	p, l := "range", "m"
	val.Protocol, val.Leader = &p, &l
	val.CurrentStateTimestamp = 12345
	mm := kmsg.NewGroupMetadataValueMember()
	mm.MemberID = "m"
	iid := "i"
	mm.InstanceID = &iid
	mm.ClientID = "client"
	mm.ClientHost = "/127.0.0.1"
	mm.RebalanceTimeoutMillis = 50000
	mm.SessionTimeoutMillis = 45000
	mm.Subscription = subscription("t")
	mm.Assignment = []byte("a")
	val.Members = []kmsg.GroupMetadataValueMember{mm}
	return val
}

// oldValueVersions are records in every value version of both schemas
// (offset keys alternate between key versions 0 and 1).
func oldValueVersions() []versionedRecord {
	var out []versionedRecord
	for v := int16(0); v <= maxOffsetValueVersion; v++ {
		k := kmsg.OffsetCommitKey{Version: v % 2, Group: "g", Topic: "t", Partition: int32(v)}
		val := oldOffsetValue(v)
		out = append(out, versionedRecord{"offset value v" + string(rune('0'+v)), k.AppendTo(nil), val.AppendTo(nil)})
	}
	for v := int16(0); v <= maxGroupValueVersion; v++ {
		val := oldGroupValue(v)
		out = append(out, versionedRecord{"group value v" + string(rune('0'+v)), groupKey("g" + string(rune('0'+v))), val.AppendTo(nil)})
	}
	return out
}

// withPartition runs fn on the coordinator's partition 0 under its mu.
func withPartition(t *testing.T, c *Coordinator, fn func(ps *partition)) {
	t.Helper()
	ps := c.parts.Get(0)
	if ps == nil {
		t.Fatal("partition 0 not loaded")
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	fn(ps)
}

func TestGroupReplayEveryValueVersionInAnyOrder(t *testing.T) {
	b := newTestBroker(t, testConfig())
	recs := oldValueVersions()
	// Newest first, one batch each.
	for i := len(recs) - 1; i >= 0; i-- {
		appendRaw(t, b.part, record.Record{Key: recs[i].key, Value: recs[i].value})
	}
	// One key rewritten in every version, out of order: the last wins.
	same := kmsg.OffsetCommitKey{Version: 1, Group: "g", Topic: "same", Partition: 0}
	var sameRecs []record.Record
	for _, v := range []int16{4, 0, 3, 1, 2} {
		val := oldOffsetValue(v)
		sameRecs = append(sameRecs, record.Record{Key: same.AppendTo(nil), Value: val.AppendTo(nil)})
	}
	appendRaw(t, b.part, sameRecs...)
	var groupRecs []record.Record
	for _, v := range []int16{2, 4, 0, 3, 1} {
		val := oldGroupValue(v)
		groupRecs = append(groupRecs, record.Record{Key: groupKey("gs"), Value: val.AppendTo(nil)})
	}
	appendRaw(t, b.part, groupRecs...)
	b.restart()

	withPartition(t, b.c, func(ps *partition) {
		g := ps.groups["g"]
		if g == nil {
			t.Fatal("group g not restored")
		}
		for v := int16(0); v <= maxOffsetValueVersion; v++ {
			want := offsetValue{offset: 100 + int64(v), leaderEpoch: -1, metadata: "m" + string(rune('0'+v)),
				commitTimestamp: 1000 + int64(v), expireTimestamp: noExpireTimestamp}
			if v >= 3 {
				want.leaderEpoch = 5
			}
			if v == 1 {
				want.expireTimestamp = 2000
			}
			got := g.offsets[topicPartition{"t", int32(v)}]
			got.recordOffset = 0 // where the record landed is not the point here
			if got != want {
				t.Errorf("offset value v%d: got %+v, want %+v", v, got, want)
			}
		}
		if got := g.offsets[topicPartition{"same", 0}]; got.offset != 102 || got.leaderEpoch != -1 {
			t.Errorf("rewritten key: got %+v, want the v2 value", got)
		}
		for v := int16(0); v <= maxGroupValueVersion; v++ {
			id := "g" + string(rune('0'+v))
			g := ps.groups[id]
			if g == nil {
				t.Fatalf("group %s not restored", id)
			}
			m := g.members["m"]
			if g.state != stateStable || g.generation != 10+int32(v) || m == nil || g.leader != "m" {
				t.Fatalf("group value v%d: state %v generation %d members %v", v, g.state, g.generation, g.members)
			}
			wantTS := time.Time{}
			if v >= 2 {
				wantTS = time.UnixMilli(12345)
			}
			if !g.stateTimestamp.Equal(wantTS) {
				t.Errorf("group value v%d: state timestamp %v, want %v", v, g.stateTimestamp, wantTS)
			}
			wantRebalance := 50 * time.Second
			if v == 0 {
				wantRebalance = 45 * time.Second // v0 has none: the session timeout
			}
			if m.rebalanceTimeout != wantRebalance || m.sessionTimeout != 45*time.Second {
				t.Errorf("group value v%d: timeouts %v/%v", v, m.rebalanceTimeout, m.sessionTimeout)
			}
			if (m.instanceID != nil) != (v >= 3) {
				t.Errorf("group value v%d: instance id %v", v, m.instanceID)
			}
			if string(m.assignment) != "a" || m.clientID != "client" {
				t.Errorf("group value v%d: member %+v", v, m)
			}
		}
		if g := ps.groups["gs"]; g == nil || g.generation != 11 {
			t.Errorf("rewritten group: %+v, want generation 11 (the v1 value)", g)
		}
	})
}

func TestGroupReplayTombstonesOfUnseenKeys(t *testing.T) {
	b := newTestBroker(t, testConfig())
	simpleCommit(t, b.c, "g", "t", 0, 5, 9, nil)
	simpleCommit(t, b.c, "g", "t", 1, 6, 9, nil)
	k0 := kmsg.OffsetCommitKey{Version: 0, Group: "g", Topic: "t", Partition: 1}
	appendRaw(t, b.part,
		record.Record{Key: groupKey("ghost")},
		record.Record{Key: offsetKey("ghost", topicPartition{"t", 0})},
		record.Record{Key: offsetKey("g", topicPartition{"never", 3})},
		// A key-version-0 tombstone deletes the offset written with key
		// version 1.
		record.Record{Key: k0.AppendTo(nil)},
		// KIP-848 records are skipped, values and tombstones alike.
		record.Record{Key: []byte{0, 4, 0, 1, 'x'}},
		record.Record{Key: []byte{0, 4, 0, 1, 'x'}, Value: []byte{0, 0}},
	)
	b.restart()
	if got := committed(t, b.c, "g"); len(got) != 1 || got[topicPartition{"t", 0}] != 5 {
		t.Fatalf("offsets %v", got)
	}
	if s := stateOf(t, b.c, "ghost"); s != "Dead" {
		t.Fatalf("ghost group: %s", s)
	}
	// The partition serves writes after such a replay.
	simpleCommit(t, b.c, "ghost", "t", 0, 1, 9, nil)
	if got := committed(t, b.c, "ghost"); got[topicPartition{"t", 0}] != 1 {
		t.Fatalf("ghost offsets %v", got)
	}
}

// A flexible value announcing more tagged fields than it has bytes is
// rejected before kmsg loops over them.
func TestGroupReplayRejectsOverlongTagCounts(t *testing.T) {
	rs := newReplay()
	for _, group := range []bool{false, true} {
		key := offsetKey("g", topicPartition{"t", 0})
		if group {
			key = groupKey("g")
		}
		good := overlongTags(group)
		good = append(good[:len(good)-5], 0) // no tagged fields: valid
		if err := rs.record(0, -1, key, good); err != nil {
			t.Fatalf("group %v: valid value rejected: %v", group, err)
		}
		err := rs.record(1, -1, key, overlongTags(group))
		if !errors.Is(err, errBadRecord) || !strings.Contains(err.Error(), "tagged fields") {
			t.Fatalf("group %v: %v", group, err)
		}
	}
	if len(rs.groups) != 1 || len(rs.offsets["g"]) != 1 {
		t.Fatalf("replayed %d groups, %d offsets", len(rs.groups), len(rs.offsets["g"]))
	}
}

// memPartition is a Partition over batches held in memory, with whatever
// offsets and gaps they have (as a compacted log has them).
type memPartition struct {
	mu       sync.Mutex
	batches  [][]byte // in offset order
	logStart int64
	hw       int64
}

func (m *memPartition) Append(_ context.Context, b []byte) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b = bytes.Clone(b)
	base := m.hw
	record.SetBaseOffset(b, base)
	h, err := record.ParseHeader(b)
	if err != nil {
		return 0, err
	}
	m.batches = append(m.batches, b)
	m.hw = h.NextOffset()
	return base, nil
}

func (m *memPartition) Read(offset int64, maxBytes int32) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []byte
	for _, b := range m.batches {
		h, err := record.ParseHeader(b)
		if err != nil {
			return nil, err
		}
		if h.NextOffset() <= offset || h.BaseOffset >= m.hw {
			continue
		}
		if len(out) > 0 && len(out)+len(b) > int(maxBytes) {
			break
		}
		out = append(out, b...)
	}
	return out, nil
}

func (m *memPartition) LogStartOffset() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.logStart
}

func (m *memPartition) LogEndOffset() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hw
}

// encodeBatch writes recs as one v2 batch keeping h's base offset, last
// offset delta, timestamps and producer fields and each record's offset
// and timestamp deltas, as the log cleaner rewrites a batch.
func encodeBatch(h record.Header, recs []record.Record) []byte {
	appendBytes := func(b, v []byte) []byte {
		if v == nil {
			return binary.AppendVarint(b, -1)
		}
		return append(binary.AppendVarint(b, int64(len(v))), v...)
	}
	var body []byte
	for _, r := range recs {
		rec := []byte{byte(r.Attributes)}
		rec = binary.AppendVarint(rec, r.TimestampDelta)
		rec = binary.AppendVarint(rec, int64(r.OffsetDelta))
		rec = appendBytes(rec, r.Key)
		rec = appendBytes(rec, r.Value)
		rec = binary.AppendVarint(rec, 0) // no headers
		body = append(binary.AppendVarint(body, int64(len(rec))), rec...)
	}
	b := make([]byte, record.HeaderSize, record.HeaderSize+len(body))
	be := binary.BigEndian
	be.PutUint64(b[0:], uint64(h.BaseOffset))
	be.PutUint32(b[8:], uint32(record.HeaderSize-record.LengthFieldEnd+len(body)))
	be.PutUint32(b[12:], uint32(h.PartitionLeaderEpoch))
	b[16] = record.Magic
	be.PutUint16(b[21:], uint16(h.Attributes))
	be.PutUint32(b[23:], uint32(h.LastOffsetDelta))
	be.PutUint64(b[27:], uint64(h.BaseTimestamp))
	be.PutUint64(b[35:], uint64(h.MaxTimestamp))
	be.PutUint64(b[43:], uint64(h.ProducerID))
	be.PutUint16(b[51:], uint16(h.ProducerEpoch))
	be.PutUint32(b[53:], uint32(h.BaseSequence))
	be.PutUint32(b[57:], uint32(len(recs)))
	b = append(b, body...)
	be.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// compact rewrites the batches of p as a log cleaner would: only the last
// record of each key stays, tombstones stay only when keepTombstone says
// so, batches keep their offsets (leaving gaps) and empty batches vanish
// (but for the first one, kept to check that an empty batch replays).
func compact(t *testing.T, p Partition, keepTombstone func(i int) bool) *memPartition {
	t.Helper()
	batches := logBatches(t, p)
	last := make(map[string]int64)
	for _, b := range batches {
		for _, r := range b.Records {
			last[string(r.Key)] = r.Offset
		}
	}
	m := &memPartition{hw: p.LogEndOffset()}
	tombstones, emptyKept := 0, false
	for _, b := range batches {
		var kept []record.Record
		for _, r := range b.Records {
			if last[string(r.Key)] != r.Offset {
				continue
			}
			if r.Value == nil {
				tombstones++
				if !keepTombstone(tombstones) {
					continue
				}
			}
			kept = append(kept, r)
		}
		if len(kept) == 0 && emptyKept {
			continue
		}
		emptyKept = emptyKept || len(kept) == 0
		m.batches = append(m.batches, encodeBatch(b.Header, kept))
	}
	return m
}

// TestGroupReplayCompactedLog replays a history of commits, deletions,
// rebalances and expiry after compaction (gaps between and inside
// batches, some tombstones gone, others left for keys whose values are
// gone) and finds the same state as the uncompacted log gives.
func TestGroupReplayCompactedLog(t *testing.T) {
	b, clk := expiryBroker(t)
	ctx := testCtx(t)
	for round := int64(0); round < 3; round++ {
		for p := int32(0); p < 4; p++ {
			simpleCommit(t, b.c, "s", "t", p, 10*round+int64(p), 9, nil)
			simpleCommit(t, b.c, "doomed", "t", p, round, 9, nil)
		}
	}
	cl := newClient(b.c, "live", "c")
	if err := cl.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 5; i++ {
		if err := cl.commit("t", int32(i%2), i); err != nil {
			t.Fatal(err)
		}
	}
	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = "s"
	dt := kmsg.NewOffsetDeleteRequestTopic()
	dt.Topic = "t"
	dp := kmsg.NewOffsetDeleteRequestTopicPartition()
	dp.Partition = 3
	dt.Partitions = append(dt.Partitions, dp)
	del.Topics = append(del.Topics, dt)
	if resp := b.c.OffsetDelete(ctx, del); resp.ErrorCode != 0 {
		t.Fatalf("offset delete: %v", errOf(resp.ErrorCode))
	}
	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Groups = []string{"doomed"}
	if resp := b.c.DeleteGroups(ctx, dg); resp.Groups[0].ErrorCode != 0 {
		t.Fatalf("delete groups: %v", errOf(resp.Groups[0].ErrorCode))
	}
	clk.Advance(week / 2)
	simpleCommit(t, b.c, "old", "t", 0, 1, 9, nil)
	simpleCommit(t, b.c, "s", "t", 0, 99, 9, nil)
	clk.Advance(week / 2)
	if n := b.c.ExpireOffsetsNow(); n != 2 { // s: t-1, t-2 (t-0 was recommitted); live: nothing
		t.Fatalf("expired %d", n)
	}
	groups := []string{"s", "doomed", "live", "old"}
	want := make(map[string]map[topicPartition]int64)
	states := make(map[string]string)
	for _, g := range groups {
		want[g] = committed(t, b.c, g)
		states[g] = stateOf(t, b.c, g)
	}
	if len(want["s"]) != 1 || len(want["doomed"]) != 0 || len(want["live"]) != 2 || states["doomed"] != "Dead" {
		t.Fatalf("unexpected state before compaction: %v %v", want, states)
	}

	for name, keep := range map[string]func(int) bool{
		"all tombstones":   func(int) bool { return true },
		"no tombstones":    func(int) bool { return false },
		"every other one":  func(i int) bool { return i%2 == 0 },
		"every third kept": func(i int) bool { return i%3 == 0 },
	} {
		t.Run(name, func(t *testing.T) {
			mp := compact(t, b.part, keep)
			if len(mp.batches) < 2 {
				t.Fatalf("compaction left %d batches", len(mp.batches))
			}
			// The first batch was emptied by compaction: start the log
			// right after it, where the offsets of the removed records
			// leave a gap.
			h0, err := record.ParseHeader(mp.batches[0])
			if err != nil || h0.RecordCount != 0 {
				t.Fatalf("first batch %+v, %v: want an empty one", h0, err)
			}
			mp.logStart = h0.NextOffset()
			if h1, _ := record.ParseHeader(mp.batches[1]); h1.BaseOffset <= mp.logStart {
				t.Fatalf("no gap after the first batch: next batch at %d", h1.BaseOffset)
			}
			cfg := testConfig()
			cfg.Now = clk.Now
			c := New(cfg)
			defer c.Close()
			c.Load(0, mp)
			waitLoaded(t, c, "s")
			for _, g := range groups {
				got := committed(t, c, g)
				if len(got) != len(want[g]) {
					t.Fatalf("group %s: offsets %v, want %v", g, got, want[g])
				}
				for tp, off := range want[g] {
					if got[tp] != off {
						t.Fatalf("group %s: offsets %v, want %v", g, got, want[g])
					}
				}
				if s := stateOf(t, c, g); s != states[g] {
					t.Fatalf("group %s: state %s, want %s", g, s, states[g])
				}
			}
			simpleCommit(t, c, "s", "t", 5, 1, 9, nil)
		})
	}
}
