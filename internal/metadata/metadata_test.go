package metadata

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func topicRecs(name string, id UUID, parts int) []Record {
	recs := []Record{{Type: TypeTopic, Topic: &TopicRecord{Name: name, TopicID: id}}}
	for p := 0; p < parts; p++ {
		recs = append(recs, Record{Type: TypePartition, Partition: &PartitionRecord{
			TopicID: id, PartitionID: int32(p), Replicas: []int32{1}, ISR: []int32{1}, Leader: 1,
		}})
	}
	return recs
}

func TestImageApplyIsCopyOnWrite(t *testing.T) {
	im0 := Empty("c")
	im1, err := im0.Apply(topicRecs("a", UUID{1}, 2))
	if err != nil {
		t.Fatal(err)
	}
	v := "compact"
	im2, err := im1.Apply([]Record{
		{Type: TypeConfig, Config: &ConfigRecord{ResourceType: ResourceTopic, ResourceName: "a", Name: "cleanup.policy", Value: &v}},
		{Type: TypePartition, Partition: &PartitionRecord{TopicID: UUID{1}, PartitionID: 2, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}},
		{Type: TypeProducerIDs, ProducerIDs: &ProducerIDsRecord{NextProducerID: 1000}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(im0.Topics) != 0 || len(im1.Topics["a"].Partitions) != 2 || len(im1.Topics["a"].Configs) != 0 {
		t.Fatal("older images changed")
	}
	a := im2.Topics["a"]
	if len(a.Partitions) != 3 || a.Configs["cleanup.policy"] != "compact" || im2.TopicsByID[UUID{1}] != a || im2.NextProducerID != 1000 {
		t.Fatalf("image 2: %+v", a)
	}
	if im2.Offset != 5 {
		t.Fatalf("offset %d, want 5", im2.Offset)
	}
	leader := int32(2)
	im3, err := im2.Apply([]Record{{Type: TypePartitionChange, PartitionChange: &PartitionChangeRecord{TopicID: UUID{1}, PartitionID: 0, Leader: &leader}}})
	if err != nil {
		t.Fatal(err)
	}
	if p := im3.Topics["a"].Partitions[0]; p.Leader != 2 || p.LeaderEpoch != 1 || p.PartitionEpoch != 1 {
		t.Fatalf("partition change %+v", p)
	}
	if im2.Topics["a"].Partitions[0].Leader != 1 {
		t.Fatal("image 2 changed by partition change")
	}
	im4, err := im3.Apply([]Record{{Type: TypeRemoveTopic, RemoveTopic: &RemoveTopicRecord{TopicID: UUID{1}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(im4.Topics) != 0 || len(im4.TopicsByID) != 0 || len(im3.Topics) != 1 {
		t.Fatal("remove topic")
	}
}

func TestImageApplyRejectsInconsistentRecords(t *testing.T) {
	im, _ := Empty("c").Apply(topicRecs("a", UUID{1}, 1))
	for name, recs := range map[string][]Record{
		"duplicate topic":        topicRecs("a", UUID{2}, 0),
		"partition gap":          {{Type: TypePartition, Partition: &PartitionRecord{TopicID: UUID{1}, PartitionID: 5}}},
		"unknown topic id":       {{Type: TypeRemoveTopic, RemoveTopic: &RemoveTopicRecord{TopicID: UUID{9}}}},
		"missing body":           {{Type: TypeTopic}},
		"unknown type":           {{Type: "Nope"}},
		"producer ids backwards": {{Type: TypeProducerIDs, ProducerIDs: &ProducerIDsRecord{NextProducerID: -1}}},
	} {
		if _, err := im.Apply(recs); err == nil {
			t.Errorf("%s: applied", name)
		}
	}
}

func TestLocalLogReplayAndTornTail(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenLocalLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	if off, err := l.Append(topicRecs("a", UUID{1}, 2)); err != nil || off != 2 {
		t.Fatalf("append: %d %v", off, err)
	}
	if off, err := l.Append(topicRecs("b", UUID{2}, 1)); err != nil || off != 4 {
		t.Fatalf("append: %d %v", off, err)
	}
	l.Close()
	// A crash mid-append leaves a partial entry behind.
	path := filepath.Join(dir, LocalLogDir, localLogFile)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{0, 0, 0, 50, 1, 2, 3})
	f.Close()

	l, err = OpenLocalLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	if err := l.Replay(func(off int64, r Record) error {
		if off != int64(len(recs)) {
			t.Fatalf("offset %d at record %d", off, len(recs))
		}
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 {
		t.Fatalf("replayed %d records, want 5", len(recs))
	}
	im, err := Empty("c").Apply(recs)
	if err != nil || len(im.Topics) != 2 {
		t.Fatalf("replayed image: %v %v", im, err)
	}
	if off, err := l.Append(topicRecs("c", UUID{3}, 1)); err != nil || off != 6 {
		t.Fatalf("append after torn tail: %d %v", off, err)
	}
	l.Close()
}

func FuzzLocalLogOpen(f *testing.F) {
	dir := f.TempDir()
	l, _ := OpenLocalLog(dir)
	l.Append(topicRecs("a", UUID{1}, 2))
	l.Close()
	seed, _ := os.ReadFile(filepath.Join(dir, LocalLogDir, localLogFile))
	f.Add(seed)
	f.Add([]byte{0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, '[', ']'})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := t.TempDir()
		os.MkdirAll(filepath.Join(d, LocalLogDir), 0o755)
		os.WriteFile(filepath.Join(d, LocalLogDir, localLogFile), b, 0o644)
		l, err := OpenLocalLog(d)
		if err != nil {
			return
		}
		var recs []Record
		if l.Replay(func(_ int64, r Record) error { recs = append(recs, r); return nil }) == nil {
			_, _ = Empty("c").Apply(recs)
		}
		l.Close()
	})
}

// richImage has every kind of state: brokers (one fenced), topics with
// partition changes and configs, a removed topic, broker configs and a
// producer id block.
func richImage(t testing.TB) *Image {
	v1, v2, v3 := "compact", "1000", "lz4"
	leader := int32(2)
	im, err := Empty("c").Apply(append(append(append(
		[]Record{
			{Type: TypeRegisterBroker, RegisterBroker: &RegisterBrokerRecord{BrokerID: 1, Rack: "r1", Endpoints: []Endpoint{{Listener: "PLAINTEXT", Host: "h1", Port: 9092, SecurityProtocol: "PLAINTEXT"}}, IncarnationID: UUID{7}}},
			{Type: TypeRegisterBroker, RegisterBroker: &RegisterBrokerRecord{BrokerID: 2, Endpoints: []Endpoint{{Listener: "PLAINTEXT", Host: "h2", Port: 9092}}, Fenced: true}},
			{Type: TypeConfig, Config: &ConfigRecord{ResourceType: ResourceBroker, Name: "log.retention.ms", Value: &v2}},
		},
		topicRecs("a", UUID{1}, 3)...), topicRecs("gone", UUID{2}, 2)...),
		Record{Type: TypeConfig, Config: &ConfigRecord{ResourceType: ResourceTopic, ResourceName: "a", Name: "cleanup.policy", Value: &v1}},
		Record{Type: TypeConfig, Config: &ConfigRecord{ResourceType: ResourceTopic, ResourceName: "a", Name: "compression.type", Value: &v3}},
		Record{Type: TypeConfig, Config: &ConfigRecord{ResourceType: ResourceTopic, ResourceName: "a", Name: "compression.type"}},
		Record{Type: TypePartitionChange, PartitionChange: &PartitionChangeRecord{TopicID: UUID{1}, PartitionID: 1, Leader: &leader, ISR: []int32{2}, Replicas: []int32{2, 1}}},
		Record{Type: TypePartitionChange, PartitionChange: &PartitionChangeRecord{TopicID: UUID{1}, PartitionID: 2, Replicas: []int32{2, 3, 1},
			AddingReplicas: &[]int32{2, 3}, RemovingReplicas: &[]int32{1}}},
		Record{Type: TypeRemoveTopic, RemoveTopic: &RemoveTopicRecord{TopicID: UUID{2}}},
		Record{Type: TypeProducerIDs, ProducerIDs: &ProducerIDsRecord{BrokerID: 1, NextProducerID: 2000}},
	))
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func TestImageRecordsRoundTrip(t *testing.T) {
	im := richImage(t)
	re, err := Empty("c").Apply(im.Records())
	if err != nil {
		t.Fatal(err)
	}
	if !re.SameState(im) {
		t.Fatalf("rebuilt image differs:\n%+v\n%+v", re, im)
	}
	if p := re.Topics["a"].Partitions[1]; p.LeaderEpoch != 1 || p.PartitionEpoch != 1 || p.Leader != 2 {
		t.Fatalf("epochs not carried: %+v", p)
	}
	if _, ok := re.Topic("gone"); ok || re.Brokers[2].Fenced != true || re.NextProducerID != 2000 || re.Brokers[1].IncarnationID != (UUID{7}) {
		t.Fatalf("rebuilt image: %+v", re)
	}
	// And through the snapshot bytes, with the offset.
	im.Offset = 42
	b, err := EncodeSnapshot(im)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeSnapshot("c", b)
	if err != nil || !back.SameState(im) || back.Offset != 42 || back.ControllerID != -1 {
		t.Fatalf("snapshot round trip: %v", err)
	}
	if !Empty("c").SameState(Empty("c")) || Empty("c").SameState(im) {
		t.Fatal("SameState")
	}
}

func TestEntryRoundTrip(t *testing.T) {
	recs := richImage(t).Records()
	b, err := EncodeEntry(recs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEntry(b)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := Empty("c").Apply(recs)
	g, _ := Empty("c").Apply(got)
	if len(got) != len(recs) || !a.SameState(g) {
		t.Fatal("entry round trip")
	}
	for _, bad := range [][]byte{nil, {2, '[', ']'}, {1, '{'}} {
		if _, err := DecodeEntry(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("DecodeEntry(%q): %v", bad, err)
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	b, _ := EncodeEntry(topicRecs("a", UUID{1}, 2))
	f.Add(b)
	f.Add([]byte{1, '[', '{', '}', ']'})
	b, _ = EncodeEntry([]Record{
		{Type: TypeRegisterBroker, RegisterBroker: &RegisterBrokerRecord{BrokerID: 1, Endpoints: []Endpoint{{Listener: "PLAINTEXT", Host: "h", Port: 1}}}},
		{Type: TypeUnregisterBroker, UnregisterBroker: &UnregisterBrokerRecord{BrokerID: 1, BrokerEpoch: 7}},
	})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := DecodeEntry(b)
		if err != nil {
			return
		}
		if _, err := EncodeEntry(recs); err != nil {
			t.Fatal(err)
		}
		_, _ = Empty("c").ApplyEntry(7, recs)
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	im, _ := Empty("c").Apply(topicRecs("a", UUID{1}, 2))
	b, _ := EncodeSnapshot(im)
	f.Add(b)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 3, '[', ']'})
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := DecodeSnapshot("c", b)
		if err != nil {
			return
		}
		re, err := EncodeSnapshot(im)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeSnapshot("c", re)
		if err != nil || !back.SameState(im) || back.Offset != im.Offset {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

// bigImage has 1,000 topics of 10 partitions (the benchmark
// shape).
func bigImage(b testing.TB) *Image {
	var recs []Record
	for i := range 1000 {
		recs = append(recs, topicRecs(fmt.Sprintf("topic-%04d", i), UUID{byte(i >> 8), byte(i), 1}, 10)...)
	}
	im, err := Empty("c").Apply(recs)
	if err != nil {
		b.Fatal(err)
	}
	return im
}

// BenchmarkImageSnapshot10kPartitions measures what the raft goroutine
// spends writing a snapshot of a 10,000-partition image.
func BenchmarkImageSnapshot10kPartitions(b *testing.B) {
	im := bigImage(b)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		out, err := EncodeSnapshot(im)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.SetBytes(int64(n))
}

// BenchmarkImageRestore10kPartitions measures a restore (and the replay
// at start) of a 10,000-partition snapshot.
func BenchmarkImageRestore10kPartitions(b *testing.B) {
	out, _ := EncodeSnapshot(bigImage(b))
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeSnapshot("c", out); err != nil {
			b.Fatal(err)
		}
	}
}

// TestImageBrokerEpochs: a registration's broker epoch is the offset of
// its entry; a BrokerChangeRecord (fence, unfence, controlled shutdown)
// keeps it; a new registration replaces it and clears controlled
// shutdown; snapshots carry epochs and states.
func TestImageBrokerEpochs(t *testing.T) {
	reg := func(id int32) Record {
		return Record{Type: TypeRegisterBroker, RegisterBroker: &RegisterBrokerRecord{BrokerID: id, Endpoints: []Endpoint{{Listener: "PLAINTEXT", Host: "h", Port: 1}}}}
	}
	yes, no := true, false
	im, err := Empty("c").ApplyEntry(5, []Record{reg(1)})
	if err != nil || im.Brokers[1].Epoch != 5 {
		t.Fatalf("entry registration: %v %+v", err, im.Brokers[1])
	}
	im, err = im.ApplyEntry(9, []Record{reg(2), {Type: TypeBrokerChange, BrokerChange: &BrokerChangeRecord{BrokerID: 1, InControlledShutdown: &yes}}})
	if err != nil || im.Brokers[2].Epoch != 9 || im.Brokers[1].Epoch != 5 || !im.Brokers[1].InControlledShutdown || im.Brokers[1].Active() {
		t.Fatalf("change: %v %+v", err, im.Brokers)
	}
	im, err = im.ApplyEntry(10, []Record{{Type: TypeBrokerChange, BrokerChange: &BrokerChangeRecord{BrokerID: 2, Fenced: &yes}}})
	if err != nil || !im.Brokers[2].Fenced || im.Brokers[2].Epoch != 9 || im.Brokers[2].Active() {
		t.Fatalf("fence: %v %+v", err, im.Brokers[2])
	}
	// Through a snapshot: epochs and states kept.
	im.Offset = 10
	b, err := EncodeSnapshot(im)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeSnapshot("c", b)
	if err != nil || !back.SameState(im) || back.Brokers[1].Epoch != 5 || !back.Brokers[1].InControlledShutdown {
		t.Fatalf("snapshot: %v %+v", err, back.Brokers)
	}
	// A new registration: new epoch, out of controlled shutdown.
	im, err = im.ApplyEntry(12, []Record{reg(1), {Type: TypeBrokerChange, BrokerChange: &BrokerChangeRecord{BrokerID: 2, Fenced: &no}}})
	if err != nil || im.Brokers[1].Epoch != 12 || im.Brokers[1].InControlledShutdown || !im.Brokers[2].Active() {
		t.Fatalf("re-registration: %v %+v", err, im.Brokers)
	}
	// Apply (a LocalLog append): the epoch is the last record's offset.
	im2, err := Empty("c").Apply([]Record{reg(3)})
	if err != nil || im2.Brokers[3].Epoch != 0 || im2.Offset != 0 {
		t.Fatalf("apply: %v %+v", err, im2.Brokers[3])
	}
	if _, err := im.Apply([]Record{{Type: TypeBrokerChange, BrokerChange: &BrokerChangeRecord{BrokerID: 7, Fenced: &yes}}}); err == nil {
		t.Fatal("change of an unregistered broker applied")
	}
}

// TestImagePartitionChangeEpochs: a leader change bumps the leader
// epoch, every change the partition epoch; an empty ISR is refused.
func TestImagePartitionChangeEpochs(t *testing.T) {
	im, _ := Empty("c").Apply(topicRecs("a", UUID{1}, 1))
	two := int32(2)
	im, err := im.Apply([]Record{{Type: TypePartitionChange, PartitionChange: &PartitionChangeRecord{TopicID: UUID{1}, ISR: []int32{0, 2}}}})
	if p := im.Topics["a"].Partitions[0]; err != nil || p.LeaderEpoch != 0 || p.PartitionEpoch != 1 || !slices.Equal(p.ISR, []int32{0, 2}) {
		t.Fatalf("isr change: %v %+v", err, p)
	}
	im, err = im.Apply([]Record{{Type: TypePartitionChange, PartitionChange: &PartitionChangeRecord{TopicID: UUID{1}, Leader: &two}}})
	if p := im.Topics["a"].Partitions[0]; err != nil || p.Leader != 2 || p.LeaderEpoch != 1 || p.PartitionEpoch != 2 {
		t.Fatalf("leader change: %v %+v", err, p)
	}
	if _, err := im.Apply([]Record{{Type: TypePartitionChange, PartitionChange: &PartitionChangeRecord{TopicID: UUID{1}, ISR: []int32{}}}}); err == nil {
		t.Fatal("empty ISR applied")
	}
}

// TestImagePartitionReassignment: the reassignment fields of a
// PartitionChangeRecord replace the partition's (a pointer to an empty
// list clears them), absent fields (older logs) leave them, and the JSON
// of an entry carries them.
func TestImagePartitionReassignment(t *testing.T) {
	im, err := Empty("c").Apply(topicRecs("a", UUID{1}, 1))
	if err != nil {
		t.Fatal(err)
	}
	if p := im.Topics["a"].Partitions[0]; p.Reassigning() || p.AddingReplicas != nil {
		t.Fatalf("new partition reassigning: %+v", p)
	}
	// An entry as an older version wrote it: no reassignment fields.
	old, err := DecodeEntry(append([]byte{1}, `[{"type":"PartitionChangeRecord","partitionChange":{"topicId":[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"partitionId":0,"isr":[1]}}]`...))
	if err != nil {
		t.Fatal(err)
	}
	move := []Record{{Type: TypePartitionChange, PartitionChange: &PartitionChangeRecord{TopicID: UUID{1}, PartitionID: 0,
		Replicas: []int32{2, 3, 1}, AddingReplicas: &[]int32{2, 3}, RemovingReplicas: &[]int32{1}}}}
	b, err := EncodeEntry(move)
	if err != nil {
		t.Fatal(err)
	}
	move, err = DecodeEntry(b)
	if err != nil {
		t.Fatal(err)
	}
	im, err = im.Apply(append(move, old...))
	if err != nil {
		t.Fatal(err)
	}
	p := im.Topics["a"].Partitions[0]
	if !p.Reassigning() || !slices.Equal(p.AddingReplicas, []int32{2, 3}) || !slices.Equal(p.RemovingReplicas, []int32{1}) ||
		!slices.Equal(p.TargetReplicas(), []int32{2, 3}) || !slices.Equal(p.OriginalReplicas(), []int32{1}) {
		t.Fatalf("reassigning partition: %+v", p)
	}
	done := []Record{{Type: TypePartitionChange, PartitionChange: &PartitionChangeRecord{TopicID: UUID{1}, PartitionID: 0,
		Replicas: []int32{2, 3}, AddingReplicas: &[]int32{}, RemovingReplicas: &[]int32{}}}}
	if b, err = EncodeEntry(done); err != nil {
		t.Fatal(err)
	}
	if done, err = DecodeEntry(b); err != nil {
		t.Fatal(err)
	}
	im, err = im.Apply(done)
	if err != nil {
		t.Fatal(err)
	}
	if p := im.Topics["a"].Partitions[0]; p.Reassigning() || p.AddingReplicas != nil || p.RemovingReplicas != nil || p.PartitionEpoch != 3 {
		t.Fatalf("completed partition: %+v", p)
	}
}

// TestImageUnregisterBroker: an UnregisterBrokerRecord removes the
// registration (the partitions keep listing the broker), refuses an
// unknown broker or another epoch, and a snapshot of the result no
// longer holds the broker.
func TestImageUnregisterBroker(t *testing.T) {
	reg := func(id int32) Record {
		return Record{Type: TypeRegisterBroker, RegisterBroker: &RegisterBrokerRecord{BrokerID: id, Endpoints: []Endpoint{{Listener: "PLAINTEXT", Host: "h", Port: 1}}}}
	}
	unreg := func(id int32, epoch int64) Record {
		return Record{Type: TypeUnregisterBroker, UnregisterBroker: &UnregisterBrokerRecord{BrokerID: id, BrokerEpoch: epoch}}
	}
	im, err := Empty("c").ApplyEntry(3, []Record{reg(1), reg(2),
		{Type: TypeTopic, Topic: &TopicRecord{Name: "t", TopicID: UUID{1}}},
		{Type: TypePartition, Partition: &PartitionRecord{TopicID: UUID{1}, Replicas: []int32{1, 2}, ISR: []int32{1}, Leader: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]Record{
		"unknown broker": unreg(9, 3),
		"stale epoch":    unreg(2, 2),
		"no body":        {Type: TypeUnregisterBroker},
	} {
		if _, err := im.ApplyEntry(4, []Record{r}); err == nil {
			t.Errorf("%s: applied", name)
		}
	}
	after, err := im.ApplyEntry(4, []Record{unreg(2, 3)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := after.Brokers[2]; ok || len(after.Brokers) != 1 {
		t.Fatalf("broker 2 still registered: %+v", after.Brokers)
	}
	if _, ok := im.Brokers[2]; !ok {
		t.Fatal("the image before was modified")
	}
	if reps := after.Topics["t"].Partitions[0].Replicas; len(reps) != 2 || reps[1] != 2 {
		t.Fatalf("replicas changed: %v", reps)
	}
	b, err := EncodeSnapshot(after)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeSnapshot("c", b)
	if err != nil || !back.SameState(after) {
		t.Fatalf("snapshot: %v %+v", err, back)
	}
	// Registering again gives a new epoch.
	again, err := after.ApplyEntry(7, []Record{reg(2)})
	if err != nil || again.Brokers[2].Epoch != 7 {
		t.Fatalf("re-registration: %v %+v", err, again.Brokers)
	}
}
