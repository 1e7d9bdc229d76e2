package replication_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/record"
	"samsa/internal/replication"
	"samsa/internal/storage"
)

// stepLeader answers follower fetches from a real storage.Log the way a
// leader's partition must (Kafka's Partition.fetchRecords): current
// leader epoch checked, a diverging epoch when the follower's last
// fetched epoch ends on the leader below its fetch offset or is unknown,
// else the batches from the fetch offset up to the log end. Today's
// Samsa leader does not send diverging epochs yet (replica.Partition.Fetch
// will); this drives the follower's side of KIP-595 truncation.
type stepLeader struct {
	l     *storage.Log
	epoch int32
	asked []kmsg.FetchRequestTopicPartition // every partition request seen
}

func (sl *stepLeader) answer(req *kmsg.FetchRequest) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 16
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.TopicID = rt.TopicID
		for _, rp := range rt.Partitions {
			sl.asked = append(sl.asked, rp)
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LogStartOffset, sp.LastStableOffset = sl.l.LogEndOffset(), sl.l.LogStartOffset(), sl.l.LogEndOffset()
			sp.RecordBatches = []byte{}
			switch {
			case rp.CurrentLeaderEpoch < sl.epoch:
				sp.ErrorCode = kerr.FencedLeaderEpoch.Code
			case rp.CurrentLeaderEpoch > sl.epoch:
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				if rp.LastFetchedEpoch >= 0 {
					found, end := sl.l.EndOffsetForEpoch(rp.LastFetchedEpoch)
					if found < rp.LastFetchedEpoch || end < rp.FetchOffset {
						sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = found, end
						break
					}
				}
				data, err := sl.l.Read(rp.FetchOffset, rp.PartitionMaxBytes, sl.l.LogEndOffset(), true)
				if err != nil {
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
					break
				}
				if data != nil {
					sp.RecordBatches = data
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func openLog(t *testing.T, topic string, id [16]byte) *storage.Log {
	t.Helper()
	m, err := storage.OpenManager(storage.ManagerOptions{Dirs: []string{t.TempDir()}, Logger: quiet, CleanerDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	l, err := m.CreateLog(topic, 0, id, storage.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// appendEpoch appends n one-record batches as leader in epoch.
func appendEpoch(t *testing.T, l *storage.Log, epoch int32, n int, tag string) {
	t.Helper()
	if err := l.AssignEpochStartOffset(epoch, l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		b, err := record.Build(record.BuildOptions{}, []record.Record{{Timestamp: 1, Value: []byte(fmt.Sprintf("%s-%d", tag, i))}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.AppendAsLeader(b, epoch); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReplicationTruncatesAtDivergingEpoch: the follower holds records
// of epoch 2 the leader never had (the leader of epoch 2 died before
// replicating them; the new leader's epoch 3 starts at offset 3). The
// leader answers the follower's fetch with the diverging epoch (1, 3);
// the follower truncates to 3, fetches again and ends byte-identical.
func TestReplicationTruncatesAtDivergingEpoch(t *testing.T) {
	id := [16]byte{7}
	leader := &stepLeader{l: openLog(t, "div", id), epoch: 3}
	appendEpoch(t, leader.l, 1, 3, "common")
	appendEpoch(t, leader.l, 3, 2, "new-leader")
	leader.l.SetHighWatermark(leader.l.LogEndOffset())

	fl := openLog(t, "div", id)
	common, err := leader.l.Read(0, 1<<20, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fl.AppendAsFollower(common); err != nil {
		t.Fatal(err)
	}
	appendEpoch(t, fl, 2, 4, "lost")
	if fl.LogEndOffset() != 7 || fl.LatestEpoch() != 2 {
		t.Fatalf("follower prepared: end %d epoch %d", fl.LogEndOffset(), fl.LatestEpoch())
	}
	f := replication.NewLogFollower(fl, 3)
	sf, err := replication.NewStepFetcher(replication.Options{BrokerID: 2, BrokerEpoch: func() int64 { return 42 }, Logger: quiet}, []replication.Follower{f})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if !sf.Step(now, leader.answer) {
		t.Fatal("no request")
	}
	if fl.LogEndOffset() != 3 || fl.LatestEpoch() != 1 {
		t.Fatalf("after the diverging epoch: end %d epoch %d, want 3 and 1", fl.LogEndOffset(), fl.LatestEpoch())
	}
	for sf.Step(now, leader.answer) && fl.LogEndOffset() < leader.l.LogEndOffset() {
	}
	lb, fb := readAll(t, leader.l), readAll(t, fl)
	if !bytes.Equal(lb, fb) || fl.LatestEpoch() != 3 || fl.HighWatermark() != leader.l.LogEndOffset() {
		t.Fatalf("not converged: leader %d bytes, follower %d bytes, epoch %d, hw %d", len(lb), len(fb), fl.LatestEpoch(), fl.HighWatermark())
	}
	// What the follower asked: the first fetch at its end with its last
	// epoch and the image's leader epoch, then at the truncation point.
	a0, a1 := leader.asked[0], leader.asked[1]
	if a0.FetchOffset != 7 || a0.LastFetchedEpoch != 2 || a0.CurrentLeaderEpoch != 3 || a0.LogStartOffset != 0 || a0.PartitionMaxBytes != 1<<20 ||
		a1.FetchOffset != 3 || a1.LastFetchedEpoch != 1 {
		t.Fatalf("requests: %+v then %+v", a0, a1)
	}
}

// TestReplicationFencedPartitionIsDelayed: a follower whose image is
// behind the leader's epoch is answered FENCED_LEADER_EPOCH and waits
// replica.fetch.backoff.ms; once its image moves, it fetches.
func TestReplicationFencedPartitionIsDelayed(t *testing.T) {
	id := [16]byte{8}
	leader := &stepLeader{l: openLog(t, "fenced", id), epoch: 5}
	appendEpoch(t, leader.l, 5, 3, "r")
	leader.l.SetHighWatermark(leader.l.LogEndOffset())
	f := replication.NewLogFollower(openLog(t, "fenced", id), 4)
	sf, err := replication.NewStepFetcher(replication.Options{BrokerID: 2, FetchBackoff: time.Second, FetchMaxBytes: 1, Logger: quiet}, []replication.Follower{f})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if !sf.Step(now, leader.answer) || f.L.LogEndOffset() != 0 {
		t.Fatal("first fetch")
	}
	if sf.Step(now.Add(999*time.Millisecond), leader.answer) {
		t.Fatal("a fenced partition was fetched again within the backoff")
	}
	f.SetLeaderEpoch(5)
	if !sf.Step(now.Add(1001*time.Millisecond), leader.answer) {
		t.Fatal("not fetched after the backoff")
	}
	// replica.fetch.max.bytes 1: one whole batch per fetch (KIP-74), so
	// the follower lags until the last one.
	if f.L.LogEndOffset() != 1 || sf.MaxLag() != 2 {
		t.Fatalf("end %d, lag %d; want 1 and 2", f.L.LogEndOffset(), sf.MaxLag())
	}
	for i := 0; i < 2; i++ {
		sf.Step(now.Add(2*time.Second), leader.answer)
	}
	if f.L.LogEndOffset() != 3 || sf.MaxLag() != 0 || f.L.HighWatermark() != 3 {
		t.Fatalf("end %d hw %d lag %d; want 3, 3, 0", f.L.LogEndOffset(), f.L.HighWatermark(), sf.MaxLag())
	}
}
