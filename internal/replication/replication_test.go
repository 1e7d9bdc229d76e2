package replication_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/interbroker"
	"samsa/internal/record"
	"samsa/internal/replication"
	"samsa/internal/server"
	"samsa/internal/storage"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startLeader starts a real single-node Samsa (broker + controller) on
// kafkaAddr ("127.0.0.1:0" for any port) with its partition logs in
// dataDir and its metadata elsewhere, so that dataDir holds only logs.
// It returns the node and the address of its CONTROLLER listener.
func startLeader(t testing.TB, dataDir, metaDir, kafkaAddr string) (*server.Server, string) {
	t.Helper()
	var lastErr error
	for try := 0; try < 50; try++ { // the old port may linger a moment after a restart
		ctl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s, err := server.Start(context.Background(), server.Options{Logger: quiet, Overrides: []string{
			"listeners=PLAINTEXT://" + kafkaAddr + ",CONTROLLER://" + ctl.Addr().String(),
			"log.dirs=" + dataDir, "metadata.log.dir=" + metaDir, "http.listener=",
		}, Listeners: map[string]net.Listener{"CONTROLLER": ctl}})
		if err == nil {
			return s, ctl.Addr().String()
		}
		ctl.Close()
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal(lastErr)
	return nil, ""
}

// followerID is the broker id the tests' replication managers fetch as.
const followerID = 2

// registerFollowerBroker makes followerID a registered, fenced broker of
// the leader's cluster, as a real broker 2 that registered and then
// stopped heartbeating would be: BrokerRegistration on the controller
// listener, then a heartbeat asking to be fenced (the controller
// registers brokers unfenced). A leader serves replica fetches only to
// replicas of a partition, so the test topics name broker 2 in their
// assignments; fenced, it never joins an ISR (the controller refuses it
// as ineligible), so produce with acks=all does not wait for it. The
// registration's listener is a socket that closes every connection
// (the controller adds a broker-only node as a metadata learner there).
func registerFollowerBroker(t testing.TB, kafkaAddr, ctlAddr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepting sync.WaitGroup
	accepting.Add(1)
	go func() {
		defer accepting.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); accepting.Wait() })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw := interbroker.New(interbroker.Options{Logger: quiet})
	defer raw.Close()
	r, err := raw.Request(ctx, kafkaAddr, kmsg.NewPtrMetadataRequest())
	if err != nil {
		t.Fatal(err)
	}
	clusterID := r.(*kmsg.MetadataResponse).ClusterID
	if clusterID == nil {
		t.Fatal("metadata without a cluster id")
	}
	reg := kmsg.NewPtrBrokerRegistrationRequest()
	reg.BrokerID, reg.ClusterID, reg.IncarnationID = followerID, *clusterID, [16]byte{followerID}
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port = "PLAINTEXT", "127.0.0.1", uint16(ln.Addr().(*net.TCPAddr).Port)
	reg.Listeners = append(reg.Listeners, l)
	r, err = raw.Request(ctx, ctlAddr, reg)
	if err != nil {
		t.Fatal(err)
	}
	rr := r.(*kmsg.BrokerRegistrationResponse)
	if err := kerr.ErrorForCode(rr.ErrorCode); err != nil {
		t.Fatalf("register broker %d: %v", followerID, err)
	}
	hb := kmsg.NewPtrBrokerHeartbeatRequest()
	hb.BrokerID, hb.BrokerEpoch, hb.CurrentMetadataOffset, hb.WantFence = followerID, rr.BrokerEpoch, rr.BrokerEpoch, true
	r, err = raw.Request(ctx, ctlAddr, hb)
	if err != nil {
		t.Fatal(err)
	}
	if hr := r.(*kmsg.BrokerHeartbeatResponse); hr.ErrorCode != 0 || !hr.IsFenced {
		t.Fatalf("fence broker %d: %v fenced %v", followerID, kerr.ErrorForCode(hr.ErrorCode), hr.IsFenced)
	}
}

// createReplicatedTopic creates topic with partitions replicated on the
// leader (broker 1) and followerID, in that order: broker 1 leads.
func createReplicatedTopic(t testing.TB, cl *kgo.Client, topic string, partitions int32, configs map[string]string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, -1, -1
	for p := int32(0); p < partitions; p++ {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = p, []int32{1, followerID}
		ct.ReplicaAssignment = append(ct.ReplicaAssignment, a)
	}
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		ct.Configs = append(ct.Configs, c)
	}
	req.Topics = append(req.Topics, ct)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// checkOutOfISR checks every partition of topic has replicas [1, 2] and
// ISR [1]: the fenced follower copies the log but is not in sync.
func checkOutOfISR(t testing.TB, adm *kadm.Client, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range md.Topics[topic].Partitions.Sorted() {
		if p.Leader != 1 || !slices.Equal(p.Replicas, []int32{1, followerID}) || !slices.Equal(p.ISR, []int32{1}) {
			t.Fatalf("%s-%d: leader %d replicas %v isr %v, want 1, [1 2], [1]", topic, p.Partition, p.Leader, p.Replicas, p.ISR)
		}
	}
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceRounds produces rounds ProduceSync calls of perRound records
// over the topic's partitions with acks=1: at least one batch per
// partition per round.
func produceRounds(t *testing.T, cl *kgo.Client, topic string, partitions int32, rounds, perRound int, tag string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for r := 0; r < rounds; r++ {
		var rs []*kgo.Record
		for i := 0; i < perRound; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i) % partitions,
				Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("%s-%d-%d-%s", tag, r, i, strings.Repeat("x", i%97)))})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// produceTxn writes one committed and one aborted transaction to every
// partition (control batches, producer state, aborted-transaction index).
func produceTxn(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	cl := newClient(t, addr, kgo.TransactionalID("repl-txn"), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, commit := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < partitions; p++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(fmt.Sprintf("txn-%v-%d", commit, p))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
}

// waitCaughtUp waits until every follower's log end offset and high
// watermark equal the leader's end offset.
func waitCaughtUp(t *testing.T, adm *kadm.Client, topic string, fs []*replication.LogFollower) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ends, err := adm.ListEndOffsets(ctx, topic)
		cancel()
		behind := ""
		if err != nil {
			behind = err.Error()
		} else {
			for _, f := range fs {
				end, ok := ends.Lookup(topic, f.L.Partition())
				if !ok || end.Err != nil {
					behind = fmt.Sprintf("partition %d: %v", f.L.Partition(), end.Err)
					break
				}
				if f.L.LogEndOffset() != end.Offset || f.L.HighWatermark() != end.Offset {
					behind = fmt.Sprintf("partition %d: leader end %d, follower end %d hw %d", f.L.Partition(), end.Offset, f.L.LogEndOffset(), f.L.HighWatermark())
					break
				}
			}
		}
		if behind == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower not caught up: %s", behind)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// learnLeaderEpochs sets each follower's leader epoch from the leader's
// metadata.
func learnLeaderEpochs(t *testing.T, adm *kadm.Client, topic string, fs []*replication.LogFollower) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		p, ok := md.Topics[topic].Partitions[f.L.Partition()]
		if !ok || p.Leader != 1 {
			t.Fatalf("%s-%d: %+v", topic, f.L.Partition(), p)
		}
		f.SetLeaderEpoch(p.LeaderEpoch)
	}
}

// readAll returns a log's batches from its log start offset to its end.
func readAll(t *testing.T, l *storage.Log) []byte {
	t.Helper()
	var out []byte
	end := l.LogEndOffset()
	for off := l.LogStartOffset(); off < end; {
		b, err := l.Read(off, 1<<20, end, true)
		if err != nil {
			t.Fatalf("read %s-%d at %d: %v", l.Topic(), l.Partition(), off, err)
		}
		if len(b) == 0 {
			break
		}
		out = append(out, b...)
		for rest := b; len(rest) > 0; {
			_, h, next, err := record.Next(rest)
			if err != nil {
				t.Fatalf("batch at %d: %v", off, err)
			}
			off, rest = h.NextOffset(), next
		}
		storage.ReleaseBuffer(b)
	}
	return out
}

// compareWithLeader opens the (stopped) leader's log dir and checks each
// follower log holds the same bytes, log start offset and latest epoch.
func compareWithLeader(t *testing.T, leaderDir string, fs []*replication.LogFollower) {
	t.Helper()
	lm, err := storage.OpenManager(storage.ManagerOptions{Dirs: []string{leaderDir}, Logger: quiet, CleanerDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	for _, f := range fs {
		ll, ok := lm.Log(f.L.Topic(), f.L.Partition())
		if !ok {
			t.Fatalf("leader has no log %s-%d", f.L.Topic(), f.L.Partition())
		}
		lb, fb := readAll(t, ll), readAll(t, f.L)
		if len(lb) == 0 || !bytes.Equal(lb, fb) {
			t.Fatalf("%s-%d: leader %d bytes [%d, %d), follower %d bytes [%d, %d): not identical",
				f.L.Topic(), f.L.Partition(), len(lb), ll.LogStartOffset(), ll.LogEndOffset(), len(fb), f.L.LogStartOffset(), f.L.LogEndOffset())
		}
		if ll.LogStartOffset() != f.L.LogStartOffset() || ll.LatestEpoch() != f.L.LatestEpoch() {
			t.Fatalf("%s-%d: leader start %d epoch %d, follower start %d epoch %d", f.L.Topic(), f.L.Partition(),
				ll.LogStartOffset(), ll.LatestEpoch(), f.L.LogStartOffset(), f.L.LatestEpoch())
		}
	}
}

// replicationGoroutines counts the goroutines running this package's
// code (a goleak-style check scoped to the package).
func replicationGoroutines() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "samsa/internal/replication.(") {
			n++
		}
	}
	return n
}

func waitNoReplicationGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for replicationGoroutines() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of the package still run after Close", replicationGoroutines())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// followerSetup holds the topic on the leader (replicas [1, 2]) and the
// follower logs.
type followerSetup struct {
	topic string
	fs    []*replication.LogFollower
	fm    *storage.Manager
}

func setupFollowers(t *testing.T, cl *kgo.Client, topic string, partitions int32) *followerSetup {
	return setupFollowersID(t, cl, topic, partitions, true)
}

// setupFollowersID: withID false creates the follower logs without the
// topic id (as logs of releases before topic ids).
func setupFollowersID(t *testing.T, cl *kgo.Client, topic string, partitions int32, withID bool) *followerSetup {
	t.Helper()
	ctx := context.Background()
	adm := kadm.NewClient(cl)
	createReplicatedTopic(t, cl, topic, partitions, map[string]string{"segment.bytes": "4096"})
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	td := md.Topics[topic]
	fm, err := storage.OpenManager(storage.ManagerOptions{Dirs: []string{t.TempDir()}, Logger: quiet, CleanerDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fm.Close() })
	cfg := storage.DefaultConfig()
	cfg.SegmentBytes = 4096
	su := &followerSetup{topic: topic, fm: fm}
	id := td.ID
	if !withID {
		id = [16]byte{}
	}
	for p := int32(0); p < partitions; p++ {
		l, err := fm.CreateLog(topic, p, id, cfg)
		if err != nil {
			t.Fatal(err)
		}
		su.fs = append(su.fs, replication.NewLogFollower(l, td.Partitions[p].LeaderEpoch))
	}
	return su
}

func asFollowers(fs []*replication.LogFollower) []replication.Follower {
	out := make([]replication.Follower, len(fs))
	for i, f := range fs {
		out[i] = f
	}
	return out
}

// TestReplicationFollowsLeaderByteForByte runs the fetcher against a real
// Samsa leader: the follower logs become byte-identical (batches,
// transactions, a log start moved by DeleteRecords), keep up with
// continued produce, truncate records the leader does not have, survive
// a restart of the leader on the same port, and Close stops every
// goroutine.
func TestReplicationFollowsLeaderByteForByte(t *testing.T) {
	leaderDir, metaDir := t.TempDir(), t.TempDir()
	s, ctl := startLeader(t, leaderDir, metaDir, "127.0.0.1:0")
	defer func() { s.Close() }()
	addr := s.KafkaAddr()
	registerFollowerBroker(t, addr, ctl)
	cl := newClient(t, addr)
	adm := kadm.NewClient(cl)
	const topic, parts = "rep", 3
	su := setupFollowers(t, cl, topic, parts)
	acks1 := newClient(t, addr, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceRounds(t, acks1, topic, parts, 8, 60, "a")
	produceTxn(t, addr, topic, parts)
	// Partition 2's log starts past 0 on the leader: the follower,
	// starting empty at 0, gets OFFSET_OUT_OF_RANGE and starts over at
	// the leader's log start offset (mid-batch, as DeleteRecords allows).
	do := kadm.Offsets{}
	do.Add(kadm.Offset{Topic: topic, Partition: 2, At: 33})
	if rs, err := adm.DeleteRecords(context.Background(), do); err != nil || rs.Error() != nil {
		t.Fatalf("delete records: %v %v", err, rs.Error())
	}

	m, err := replication.NewManager(replication.Options{BrokerID: 2, NumFetchers: 2, FetchBackoff: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.AddPartitions(1, addr, asFollowers(su.fs)); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, adm, topic, su.fs)
	checkOutOfISR(t, adm, topic) // caught up, but fenced: never in sync
	if su.fs[2].L.LogStartOffset() != 33 {
		t.Fatalf("partition 2 starts at %d, want 33", su.fs[2].L.LogStartOffset())
	}

	// Keeps up with continued produce.
	produceRounds(t, acks1, topic, parts, 5, 30, "b")
	waitCaughtUp(t, adm, topic, su.fs)

	// Records the leader does not have (as after an unclean election):
	// the fetch at our end is out of range, the leader's end is below
	// it, and the follower truncates to it.
	p0 := su.fs[0]
	m.RemovePartitions([]replication.TopicPartition{{Topic: topic, Partition: 0}})
	// Re-added at once, possibly while the leader's fetch session still
	// holds it: an incremental answer must carry a diverging epoch even
	// when nothing else changed (internal/api/fetch_session.go observe).
	extra, err := record.Build(record.BuildOptions{}, []record.Record{{Timestamp: 1, Value: []byte("not on the leader")}, {Timestamp: 1, Value: []byte("nor this")}})
	if err != nil {
		t.Fatal(err)
	}
	before := p0.L.LogEndOffset()
	if _, err := p0.L.AppendAsLeader(extra, p0.L.LatestEpoch()); err != nil {
		t.Fatal(err)
	}
	if p0.L.LogEndOffset() != before+2 {
		t.Fatalf("extra records: end %d, want %d", p0.L.LogEndOffset(), before+2)
	}
	if err := m.AddPartitions(1, addr, []replication.Follower{p0}); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, adm, topic, su.fs)

	// The leader goes away and comes back on the same port.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	compareWithLeader(t, leaderDir, su.fs)
	s, _ = startLeader(t, leaderDir, metaDir, addr)
	acks1b := newClient(t, addr, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceRounds(t, acks1b, topic, parts, 5, 30, "c")
	adm = kadm.NewClient(newClient(t, addr))
	// The restart moved leadership away (controlled shutdown) and back:
	// a new leader epoch, which followers learn from the metadata (the
	// replica manager's Apply), else their fetches are fenced.
	learnLeaderEpochs(t, adm, topic, su.fs)
	waitCaughtUp(t, adm, topic, su.fs)

	stats := m.Fetchers()
	total := 0
	for _, st := range stats {
		// Both fetchers saw the leader go away.
		if st.LeaderID != 1 || st.Addr != addr || st.MaxLag != 0 || st.Requests == 0 || st.Bytes == 0 || st.Failures == 0 {
			t.Fatalf("fetcher stats %+v", st)
		}
		total += st.Partitions
	}
	for p := int32(0); p < parts; p++ {
		if lag, ok := m.PartitionLag(topic, p); !ok || lag != 0 {
			t.Fatalf("partition %d lag %d %v", p, lag, ok)
		}
	}
	if _, ok := m.PartitionLag(topic, parts); ok {
		t.Fatal("lag of a partition not followed")
	}
	if len(stats) != 2 || total != parts || m.MaxLag() != 0 {
		t.Fatalf("fetchers %+v, max lag %d", stats, m.MaxLag())
	}

	// num.replica.fetchers raised live: the partitions move to the
	// fetchers of their new index and keep up.
	m.SetNumFetchers(3)
	produceRounds(t, acks1b, topic, parts, 3, 30, "d")
	waitCaughtUp(t, adm, topic, su.fs)
	idx := map[int]bool{}
	for _, st := range m.Fetchers() {
		idx[st.Index] = true
	}
	for p := int32(0); p < parts; p++ {
		if !idx[replication.FetcherIndex(topic, p, 3)] {
			t.Fatalf("after SetNumFetchers(3): fetchers %+v, none for partition %d's index %d", m.Fetchers(), p, replication.FetcherIndex(topic, p, 3))
		}
	}
	if len(m.Fetchers()) != len(idx) || len(idx) > 3 {
		t.Fatalf("after SetNumFetchers(3): fetchers %+v", m.Fetchers())
	}

	start := time.Now()
	m.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	waitNoReplicationGoroutines(t)
	if err := m.AddPartitions(1, addr, asFollowers(su.fs)); err == nil {
		t.Fatal("AddPartitions after Close succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	compareWithLeader(t, leaderDir, su.fs)
}

// TestReplicationWithoutTopicIDsFetchesByName: followers whose logs have
// no topic id fetch below v13, naming topics, in a session too.
func TestReplicationWithoutTopicIDsFetchesByName(t *testing.T) {
	leaderDir := t.TempDir()
	s, ctl := startLeader(t, leaderDir, t.TempDir(), "127.0.0.1:0")
	defer func() { s.Close() }()
	addr := s.KafkaAddr()
	registerFollowerBroker(t, addr, ctl)
	cl := newClient(t, addr)
	adm := kadm.NewClient(cl)
	const topic, parts = "noid", 2
	su := setupFollowersID(t, cl, topic, parts, false)
	acks1 := newClient(t, addr, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceRounds(t, acks1, topic, parts, 3, 20, "a")
	m, err := replication.NewManager(replication.Options{BrokerID: 2, FetchBackoff: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.AddPartitions(1, addr, asFollowers(su.fs)); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, adm, topic, su.fs)
	produceRounds(t, acks1, topic, parts, 3, 20, "b") // incremental fetches
	waitCaughtUp(t, adm, topic, su.fs)
	m.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	compareWithLeader(t, leaderDir, su.fs)
}
