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
// else the batches from the fetch offset up to the log end (what
// replica.Partition.Fetch does); stepping it drives the follower's side
// of KIP-595 truncation deterministically.
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
					if found < 0 || end < 0 || rp.FetchOffset < sl.l.LogStartOffset() {
						sp.ErrorCode = kerr.OffsetOutOfRange.Code
						break
					}
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
	return openLogFor(t, topic, id)
}

func openLogFor(t testing.TB, topic string, id [16]byte) *storage.Log {
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

// TestReplicationLeaderBehindIsRetriedSoon: a leader whose image is
// behind the follower's (it answers UNKNOWN_LEADER_EPOCH: it has not
// applied the leader change yet, as right after a failover) is asked
// again after 50 ms, not replica.fetch.backoff.ms: until the follower
// fetches from it, acks=all produce there cannot complete.
func TestReplicationLeaderBehindIsRetriedSoon(t *testing.T) {
	id := [16]byte{9}
	leader := &stepLeader{l: openLog(t, "behind", id), epoch: 4}
	appendEpoch(t, leader.l, 4, 3, "r")
	leader.l.SetHighWatermark(leader.l.LogEndOffset())
	f := replication.NewLogFollower(openLog(t, "behind", id), 5)
	sf, err := replication.NewStepFetcher(replication.Options{BrokerID: 2, FetchBackoff: time.Second, Logger: quiet}, []replication.Follower{f})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if !sf.Step(now, leader.answer) || f.L.LogEndOffset() != 0 {
		t.Fatal("first fetch")
	}
	if sf.Step(now.Add(49*time.Millisecond), leader.answer) {
		t.Fatal("fetched again within 49ms")
	}
	leader.epoch = 5 // the leader applies the change
	// (The fetcher takes its own clock when it applies an answer, a
	// little after now: margins, still far below the 1 s backoff.)
	if !sf.Step(now.Add(300*time.Millisecond), leader.answer) {
		t.Fatal("not fetched again 300ms after UNKNOWN_LEADER_EPOCH")
	}
	if f.L.LogEndOffset() != 3 {
		t.Fatalf("end %d, want 3", f.L.LogEndOffset())
	}
	// A backoff below 50 ms stays the bound.
	leader.epoch = 4
	f2 := replication.NewLogFollower(openLog(t, "behind", id), 5)
	sf2, err := replication.NewStepFetcher(replication.Options{BrokerID: 2, FetchBackoff: 10 * time.Millisecond, Logger: quiet}, []replication.Follower{f2})
	if err != nil {
		t.Fatal(err)
	}
	now = time.Now()
	if !sf2.Step(now, leader.answer) || sf2.Step(now.Add(5*time.Millisecond), leader.answer) || !sf2.Step(now.Add(40*time.Millisecond), leader.answer) {
		t.Fatal("replica.fetch.backoff.ms below 50ms not kept")
	}
}

// TestReplicationRequestsTakePartitionsInTurn: with more ready partitions
// than MaxPartitionsPerFetch, a request carries the first ones and the
// partitions that returned records go to the back, so every partition is
// fetched within a few rounds.
func TestReplicationRequestsTakePartitionsInTurn(t *testing.T) {
	const n = 5
	var fs []replication.Follower
	byID := map[[16]byte]*stepLeader{}
	for i := 0; i < n; i++ {
		id := [16]byte{9, byte(i)}
		sl := &stepLeader{l: openLog(t, fmt.Sprintf("turn%d", i), id), epoch: 0}
		appendEpoch(t, sl.l, 0, 2, "r")
		sl.l.SetHighWatermark(sl.l.LogEndOffset())
		byID[id] = sl
		fs = append(fs, replication.NewLogFollower(openLog(t, fmt.Sprintf("turn%d", i), id), 0))
	}
	// Each topic has its own leader log: answer topic by topic.
	answer := func(req *kmsg.FetchRequest) *kmsg.FetchResponse {
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = 16
		if len(req.Topics) > 2 {
			t.Fatalf("request with %d partitions, limit 2", len(req.Topics))
		}
		for _, rt := range req.Topics {
			one := *req
			one.Topics = []kmsg.FetchRequestTopic{rt}
			resp.Topics = append(resp.Topics, byID[rt.TopicID].answer(&one).Topics...)
		}
		return resp
	}
	sf, err := replication.NewStepFetcher(replication.Options{BrokerID: 2, MaxPartitionsPerFetch: 2, Logger: quiet}, fs)
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		sf.Step(time.Now(), answer)
	}
	for i, f := range fs {
		if got := f.LogEndOffset(); got != 2 {
			t.Errorf("partition of topic %d at %d after 3 rounds, want 2", i, got)
		}
	}
}

// FuzzReplicationAnswer: whatever a leader answers for a partition
// (error code, diverging epoch, high watermark, log start, record
// bytes), applying it to a real log neither panics nor leaves the log
// inconsistent (log start <= high watermark <= log end).
func FuzzReplicationAnswer(f *testing.F) {
	f.Add(int16(0), int32(-1), int64(-1), int64(3), int64(0), batchesFor(f, 0, 2))
	f.Add(int16(0), int32(0), int64(1), int64(3), int64(0), []byte{})
	f.Add(int16(1), int32(-1), int64(-1), int64(3), int64(0), []byte{})
	f.Add(int16(0), int32(7), int64(-3), int64(-9), int64(99), batchesFor(f, 5, 1))
	id := [16]byte{10}
	// One log for every input of a worker: its state drifts from input
	// to input, which only widens what is tried.
	fl := replication.NewLogFollower(openLogFor(f, "fz", id), 0)
	sf, err := replication.NewStepFetcher(replication.Options{BrokerID: 2, DisableFetchSessions: true, Logger: quiet}, []replication.Follower{fl})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, code int16, divEpoch int32, divEnd, hw, logStart int64, records []byte) {
		answer := func(req *kmsg.FetchRequest) *kmsg.FetchResponse {
			resp := kmsg.NewPtrFetchResponse()
			resp.Version = 16
			st := kmsg.NewFetchResponseTopic()
			st.TopicID = id
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.ErrorCode = code
			if code == kerr.OffsetOutOfRange.Code {
				sp.ErrorCode = 0 // needs a ListOffsets round trip to a real leader
			}
			sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = divEpoch, divEnd
			sp.HighWatermark, sp.LogStartOffset = hw, logStart
			sp.RecordBatches = records
			st.Partitions = append(st.Partitions, sp)
			resp.Topics = append(resp.Topics, st)
			return resp
		}
		sf.Step(time.Now().Add(time.Hour*time.Duration(1+fl.L.LogEndOffset()%1000)), answer)
		l := fl.L
		if s, h, e := l.LogStartOffset(), l.HighWatermark(), l.LogEndOffset(); s > h || h > e {
			t.Fatalf("log start %d, high watermark %d, log end %d", s, h, e)
		}
	})
}

// batchesFor builds n one-record batches from base, epoch 0.
func batchesFor(tb testing.TB, base int64, n int) []byte {
	var out []byte
	for i := 0; i < n; i++ {
		b, err := record.Build(record.BuildOptions{BaseOffset: base + int64(i)}, []record.Record{{Timestamp: 1, Value: []byte("f")}})
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// TestReplicationTruncatesThroughUnknownEpochs: the follower's latest
// epochs (2 and 4, from leaders that died before replicating) are
// unknown to the leader (epochs 1, 3 and now 5). Each diverging epoch
// names an epoch the follower does not have either, so it truncates to
// the end of its own largest epoch below it and asks again
// (getOffsetTruncationState's intermediate case) until the logs meet at
// offset 3; then it copies the leader's epoch 3.
func TestReplicationTruncatesThroughUnknownEpochs(t *testing.T) {
	id := [16]byte{11}
	leader := &stepLeader{l: openLog(t, "unk", id), epoch: 5}
	appendEpoch(t, leader.l, 1, 3, "common")
	appendEpoch(t, leader.l, 3, 5, "leader")
	appendEpoch(t, leader.l, 5, 0, "") // became leader in epoch 5, nothing written yet
	leader.l.SetHighWatermark(leader.l.LogEndOffset())

	fl := openLog(t, "unk", id)
	common, err := leader.l.Read(0, 1<<20, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fl.AppendAsFollower(common); err != nil {
		t.Fatal(err)
	}
	appendEpoch(t, fl, 2, 3, "lost-2")
	appendEpoch(t, fl, 4, 3, "lost-4")
	f := replication.NewLogFollower(fl, 5)
	sf, err := replication.NewStepFetcher(replication.Options{BrokerID: 2, Logger: quiet}, []replication.Follower{f})
	if err != nil {
		t.Fatal(err)
	}
	var ends []int64
	for i := 0; i < 4; i++ {
		sf.Step(time.Now(), leader.answer)
		ends = append(ends, fl.LogEndOffset())
	}
	if fmt.Sprint(ends) != "[6 3 8 8]" {
		t.Fatalf("log end after each fetch: %v, want [6 3 8 8]", ends)
	}
	if lb, fb := readAll(t, leader.l), readAll(t, fl); !bytes.Equal(lb, fb) || fl.LatestEpoch() != 3 {
		t.Fatalf("not converged: %d vs %d bytes, epoch %d", len(lb), len(fb), fl.LatestEpoch())
	}
}
