package server_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"samsa/internal/group"
	"samsa/internal/server"
	"samsa/internal/txn"
)

// coordClusterOpts are the settings of the coordinator failover tests:
// internal topics of replication factor 3 and min ISR 2 on three nodes.
var coordClusterOpts = []string{
	"min.insync.replicas=2", "default.replication.factor=3",
	"offsets.topic.replication.factor=3", "transaction.state.log.replication.factor=3",
	"transaction.state.log.min.isr=2",
}

// seeds are the PLAINTEXT addresses of every node, for clients that must
// survive the loss of any one.
func (c *testCluster) seeds() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.plain)
	}
	return out
}

// findCoordinator is the coordinator of key (type 0 group, 1 transaction)
// as node via answers it, retrying until one is known.
func (c *testCluster) findCoordinator(ctx context.Context, via int32, keyType int8, key string) int32 {
	c.t.Helper()
	cl := c.client(via)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType = keyType
		req.CoordinatorKeys = []string{key}
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && len(resp.Coordinators) == 1 && resp.Coordinators[0].ErrorCode == 0 {
			return resp.Coordinators[0].NodeID
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no coordinator for %q: %+v %v", key, resp, err)
		}
	}
}

// stop stops node id with a controlled shutdown (Close) or as a crash
// (Crash: no controlled shutdown, heartbeats just stop).
func (c *testCluster) stop(id int32, crash bool) {
	c.t.Helper()
	n := c.nodes[id]
	var err error
	if crash {
		err = n.s.Crash()
	} else {
		err = n.s.Close()
	}
	n.s = nil
	if err != nil {
		c.t.Logf("stop node %d: %v", id, err)
	}
}

// produceNumbered produces values "<prefix>-<i>" for i in [from, to) with
// acks=all, keyed by i.
func produceNumbered(ctx context.Context, t *testing.T, cl *kgo.Client, topic, prefix string, from, to int) {
	t.Helper()
	var rs []*kgo.Record
	for i := from; i < to; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce %d..%d: %v", from, to, err)
	}
}

// TestClusterCoordGroupFailover: a consumer group commits offsets on a
// three-node cluster whose __consumer_offsets has replication factor 3
// and min ISR 2; the group coordinator's broker stops (controlled
// shutdown, and a crash); the group's offsets are all at the new
// coordinator, the running member rejoins there and goes on, and a
// member that starts afterwards resumes exactly at the committed offsets.
func TestClusterCoordGroupFailover(t *testing.T) {
	for _, crash := range []bool{false, true} {
		name := "close"
		if crash {
			name = "crash"
		}
		t.Run(name, func(t *testing.T) { testCoordGroupFailover(t, crash) })
	}
}

func testCoordGroupFailover(t *testing.T, crash bool) {
	c := startCluster(t, specs(3), coordClusterOpts...)
	ctx := ctxFor(t, 120*time.Second)
	adm := kadm.NewClient(c.client(1))
	const topic, groupID, n = "events", "failover-group", 600
	if r, err := adm.CreateTopic(ctx, 3, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	prod := c.client(1, kgo.SeedBrokers(c.seeds()...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(50),
		kgo.MetadataMinAge(250*time.Millisecond))
	// Three phases of n/3 records: before the failover, after it (the
	// running member), and for a member that starts afterwards.
	produceNumbered(ctx, t, prod, topic, "v", 0, n/3)

	seen := map[string]int{}       // value -> times consumed (by every member)
	uncertain := map[string]bool{} // values whose commit failed: they may be consumed again
	consumer := func() *kgo.Client {
		return c.client(1, kgo.SeedBrokers(c.seeds()...), kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
			kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(200*time.Millisecond),
			kgo.RetryTimeout(60*time.Second), kgo.MetadataMinAge(250*time.Millisecond))
	}
	// consume polls until at least want records more were consumed, and
	// commits each poll's records synchronously; it returns the time of
	// the first successful commit of records.
	consume := func(cl *kgo.Client, want int) time.Time {
		t.Helper()
		var firstCommit time.Time
		for got := 0; got < want; {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d: %v", got, want, ctx.Err())
			}
			fs.EachError(func(tp string, p int32, err error) { t.Logf("fetch %s-%d: %v", tp, p, err) })
			var polled []string
			fs.EachRecord(func(r *kgo.Record) {
				v := string(r.Value)
				if seen[v] > 0 && !uncertain[v] {
					t.Errorf("%s at %d-%d consumed again after its commit", v, r.Partition, r.Offset)
				}
				seen[v]++
				polled = append(polled, v)
			})
			got += len(polled)
			if len(polled) == 0 {
				continue
			}
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Logf("commit: %v", err)
				for _, v := range polled {
					uncertain[v] = true
				}
				continue
			}
			if firstCommit.IsZero() {
				firstCommit = time.Now()
			}
		}
		return firstCommit
	}

	a := consumer()
	consume(a, n/3)
	before, err := adm.FetchOffsets(ctx, groupID)
	if err != nil || before.Error() != nil {
		t.Fatalf("fetch offsets: %v %v", err, before.Error())
	}
	coord := c.findCoordinator(ctx, 1, 0, groupID)
	other := coord%3 + 1
	t.Logf("group coordinator is node %d; committed %d", coord, sumOffsets(before))

	stopped := time.Now()
	c.stop(coord, crash)
	oadm := kadm.NewClient(c.client(other, kgo.SeedBrokers(c.seeds()...)))
	newCoord := c.findCoordinator(ctx, other, 0, groupID)
	for newCoord == coord {
		time.Sleep(50 * time.Millisecond)
		newCoord = c.findCoordinator(ctx, other, 0, groupID)
	}
	// Every committed offset is at the new coordinator.
	var after kadm.OffsetResponses
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		after, err = oadm.FetchOffsets(ctx, groupID)
		if err == nil && after.Error() == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fetch offsets from the new coordinator: %v %v", err, after.Error())
		}
	}
	loaded := time.Since(stopped)
	before.Each(func(o kadm.OffsetResponse) {
		got, ok := after.Lookup(o.Topic, o.Partition)
		if !ok || got.At != o.At {
			t.Errorf("%s-%d: committed %d before the failover, %d (%v) after", o.Topic, o.Partition, o.At, got.At, ok)
		}
	})

	// The running member finds the new coordinator and goes on.
	produceNumbered(ctx, t, prod, topic, "v", n/3, 2*n/3)
	produced := time.Since(stopped)
	resumed := consume(a, n/3)
	t.Logf("coordinator %d stopped (crash=%v): offsets served by node %d after %v; next records produced after %v; member committing again after %v",
		coord, crash, newCoord, loaded.Round(time.Millisecond), produced.Round(time.Millisecond), resumed.Sub(stopped).Round(time.Millisecond))
	committed, err := oadm.FetchOffsets(ctx, groupID)
	if err != nil || committed.Error() != nil {
		t.Fatalf("fetch offsets: %v %v", err, committed.Error())
	}
	a.Close()
	produceNumbered(ctx, t, prod, topic, "v", 2*n/3, n)

	// A new member resumes at the committed offsets: the first record of
	// each partition it gets is the committed offset, and nothing
	// consumed and committed before is consumed again.
	b := consumer()
	first := map[int32]int64{}
	for total := len(seen); total < n; {
		fs := b.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d distinct of %d", total, n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, ok := first[r.Partition]; !ok {
				first[r.Partition] = r.Offset
			}
			v := string(r.Value)
			if seen[v] > 0 && !uncertain[v] {
				t.Errorf("%s at %d-%d consumed again after its commit", v, r.Partition, r.Offset)
			}
			seen[v]++
		})
		total = len(seen)
	}
	committed.Each(func(o kadm.OffsetResponse) {
		if f, ok := first[o.Partition]; ok && f != o.At {
			t.Errorf("partition %d: new member started at %d, committed %d", o.Partition, f, o.At)
		}
	})
	for i := 0; i < n; i++ {
		if v := "v-" + strconv.Itoa(i); seen[v] != 1 && !uncertain[v] {
			t.Errorf("%s consumed %d times", v, seen[v])
		}
		if k := seen["v-"+strconv.Itoa(i)]; k == 0 {
			t.Errorf("v-%d consumed %d times", i, k)
		}
	}
}

// restartLogged is restart with the node's log (SAMSA_CLUSTER_LOG).
func (c *testCluster) restartLogged(id int32) {
	c.t.Helper()
	n := c.nodes[id]
	s, err := server.Start(context.Background(), server.Options{Overrides: n.overrides, Logger: clusterLogger(id), StartTimeout: 30 * time.Second})
	if err != nil {
		c.t.Fatalf("restart node %d: %v", id, err)
	}
	n.s = s
	c.waitAllBrokers()
}

// endTxnHook runs its armed function once, on a goroutine of its own,
// right after the client wrote an EndTxn request.
type endTxnHook struct{ armed atomic.Pointer[func()] }

func (h *endTxnHook) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key != 26 || err != nil {
		return
	}
	if f := h.armed.Swap(nil); f != nil {
		go (*f)()
	}
}

// adminVia is a running node not in down.
func adminVia(c *testCluster, down []int32) int32 {
	for id := int32(1); ; id++ {
		if n := c.nodes[id]; n != nil && n.s != nil && !slices.Contains(down, id) {
			return id
		}
	}
}

// transactionStateTopic is the transaction coordinator's internal topic.
const transactionStateTopic = "__transaction_state"

// waitFullISR waits until every node is in the ISR of topic-partition.
func waitFullISR(ctx context.Context, t *testing.T, c *testCluster, topic string, partition int32) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, _, isr := partitionState(ctx, t, c, adminVia(c, nil), topic, partition)
		if len(isr) == len(c.nodes) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ISR of %s-%d is %v", topic, partition, isr)
		}
	}
}

func sumOffsets(os kadm.OffsetResponses) int64 {
	var s int64
	os.Each(func(o kadm.OffsetResponse) { s += o.At })
	return s
}

// TestClusterCoordTxnFailover: consume-transform-produce with a
// GroupTransactSession on three nodes (every topic, __transaction_state
// and __consumer_offsets of replication factor 3, min ISR 2); the
// transaction coordinator's broker crashes mid-run. The session goes on
// at the new coordinator; a read_committed consumer sees every input's
// output exactly once (nothing committed lost, nothing aborted visible),
// and no transaction is left open on the output (its last stable offset
// reaches its high watermark on every partition).
func TestClusterCoordTxnFailover(t *testing.T) {
	c := startCluster(t, specs(3), coordClusterOpts...)
	ctx := ctxFor(t, 150*time.Second)
	adm := kadm.NewClient(c.client(1, kgo.SeedBrokers(c.seeds()...)))
	for _, name := range []string{"in", "out"} {
		if r, err := adm.CreateTopic(ctx, 3, 3, nil, name); err != nil || r.Err != nil {
			t.Fatalf("create %s: %v %v", name, err, r.Err)
		}
	}
	const n = 900
	const txnID, groupID = "eos-failover", "eos-failover-group"
	prod := c.client(1, kgo.SeedBrokers(c.seeds()...), kgo.RequiredAcks(kgo.AllISRAcks()))
	// Small input batches make many small transactions.
	for i := 0; i < n; i += 10 {
		produceNumbered(ctx, t, prod, "in", "v", i, i+10)
	}

	hook := &endTxnHook{}
	// newSession starts the consume-transform-produce session. kgo's End
	// errors are not retryable (the retry limit was hit, typically while
	// the coordinator is unknown): the application then starts a new
	// session with the same transactional id, which fences the old
	// producer and aborts what it left open, as an EOS application does.
	newSession := func() *kgo.GroupTransactSession {
		opts := []kgo.Opt{
			kgo.SeedBrokers(c.seeds()...),
			kgo.TransactionalID(txnID), kgo.TransactionTimeout(10 * time.Second),
			kgo.ConsumerGroup(groupID), kgo.ConsumeTopics("in"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.DefaultProduceTopic("out"),
			kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(200 * time.Millisecond),
			kgo.RetryTimeout(60 * time.Second), kgo.MetadataMinAge(250 * time.Millisecond),
			kgo.WithHooks(hook),
		}
		if os.Getenv("SAMSA_CLUSTER_LOG") != "" {
			opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil)))
		}
		sess, err := kgo.NewGroupTransactSession(opts...)
		if err != nil {
			t.Fatal(err)
		}
		return sess
	}
	sess := newSession()
	defer func() { sess.Close() }()

	committedInputs := func() int64 {
		offs, err := adm.FetchOffsets(ctx, groupID)
		if err != nil || offs.Error() != nil {
			return -1
		}
		return sumOffsets(offs)
	}
	// Two coordinator failures: at a third of the inputs the coordinator
	// crashes between a transaction's produces and its end (the session
	// finds the new coordinator and ends it there, or aborts and redoes
	// it); at two thirds, once the first node is back and in the ISR of
	// the transaction's __transaction_state partition, the new
	// coordinator crashes while EndTxn is in flight (a transaction in
	// PrepareCommit is completed by the next coordinator).
	txnPart := txn.PartitionFor(txnID, 6)
	var crashed []int32
	var stopped time.Time
	crashDone := make(chan time.Time, 1)
	var resumedAfter []time.Duration
	txns, failed := 0, 0
	for {
		if ctx.Err() != nil {
			t.Fatalf("inputs committed: %d of %d", committedInputs(), n)
		}
		fs := sess.PollRecords(ctx, 25)
		fs.EachError(func(tp string, p int32, err error) { t.Logf("fetch %s-%d: %v", tp, p, err) })
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Key: r.Key, Value: []byte("x" + string(r.Value))}, nil)
		})
		done := committedInputs()
		armed := false
		switch {
		case len(crashed) == 0 && done >= n/3 && !fs.Empty():
			id := c.findCoordinator(ctx, adminVia(c, crashed), 1, txnID)
			t.Logf("transaction coordinator is node %d after %d inputs; crashing it before EndTxn", id, done)
			stopped = time.Now()
			c.stop(id, true)
			crashed = append(crashed, id)
			adm = kadm.NewClient(c.client(adminVia(c, crashed)))
		case len(crashed) == 1 && done >= 2*n/3 && !fs.Empty():
			c.restartLogged(crashed[0])
			waitFullISR(ctx, t, c, transactionStateTopic, txnPart)
			id := c.findCoordinator(ctx, adminVia(c, crashed[1:]), 1, txnID)
			t.Logf("transaction coordinator is node %d after %d inputs; crashing it during EndTxn", id, done)
			crashed = append(crashed, id)
			crash := func() { at := time.Now(); c.stop(id, true); crashDone <- at }
			hook.armed.Store(&crash)
			armed = true
			adm = kadm.NewClient(c.client(adminVia(c, crashed)))
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		if armed {
			if f := hook.armed.Swap(nil); f != nil {
				t.Log("EndTxn was not sent: crashing the coordinator after End")
				(*f)()
			}
			// The crash runs on the hook's goroutine, which owns
			// c.nodes[id].s until it reports.
			select {
			case stopped = <-crashDone:
			case <-ctx.Done():
				t.Fatal("the coordinator crash did not finish")
			}
		}
		switch {
		case err != nil:
			failed++
			t.Logf("end transaction: %v; starting a new session", err)
			sess.Close()
			sess = newSession()
		case committed:
			txns++
			// The transaction whose EndTxn raced with the crash may have
			// ended at the old coordinator: measure from the next one.
			if !stopped.IsZero() && !(armed && len(crashed) == 2) {
				resumedAfter = append(resumedAfter, time.Since(stopped))
				stopped = time.Time{}
			}
		}
		if committedInputs() == n {
			break
		}
	}
	if len(crashed) != 2 {
		t.Fatalf("crashed %v, want two coordinators", crashed)
	}
	t.Logf("%d transactions committed, %d ended with an error; first commit after each crash: %v",
		txns, failed, resumedAfter)
	coord := crashed[1]

	via := coord%3 + 1
	// No transaction is left open on the output: read_committed's end
	// (the last stable offset) reaches the high watermark everywhere.
	oadm := kadm.NewClient(c.client(via, kgo.SeedBrokers(c.seeds()...)))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ends, err1 := oadm.ListEndOffsets(ctx, "out")
		stable, err2 := oadm.ListCommittedOffsets(ctx, "out")
		open := ""
		if err1 != nil || err2 != nil || ends.Error() != nil || stable.Error() != nil {
			open = fmt.Sprintf("list offsets: %v %v", err1, err2)
		} else {
			ends.Each(func(o kadm.ListedOffset) {
				if s, ok := stable.Lookup(o.Topic, o.Partition); !ok || s.Offset != o.Offset {
					open += fmt.Sprintf(" out-%d: LSO %d HW %d;", o.Partition, s.Offset, o.Offset)
				}
			})
		}
		if open == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("transactions left open: %s", open)
		}
	}
	// Every input's output exactly once for read_committed.
	cons := c.client(via, kgo.SeedBrokers(c.seeds()...), kgo.ConsumeTopics("out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	seen := map[string]bool{}
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed saw %d of %d outputs", len(seen), n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if !strings.HasPrefix(v, "xv-") {
				t.Fatalf("unexpected output %q", v)
			}
			if seen[v] {
				t.Fatalf("duplicate output %s at out-%d@%d", v, r.Partition, r.Offset)
			}
			seen[v] = true
		})
	}
	// Nothing more than the n outputs is visible.
	tail, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	fs := cons.PollFetches(tail)
	fs.EachRecord(func(r *kgo.Record) { t.Errorf("extra output %s at out-%d@%d", r.Value, r.Partition, r.Offset) })
}

// TestClusterCoordOffsetCommitWaitsForISR: an offset commit is answered
// only once every ISR member has it. With both followers of the group's
// __consumer_offsets partition stopped at once (the controller, without
// a quorum, cannot shrink the ISR), a commit is not acknowledged: it
// answers COORDINATOR_NOT_AVAILABLE after offsets.commit.timeout.ms, as
// Kafka's GroupCoordinator maps REQUEST_TIMED_OUT, and OffsetFetch does
// not show it.
func TestClusterCoordOffsetCommitWaitsForISR(t *testing.T) {
	c := startCluster(t, specs(3), coordClusterOpts...)
	ctx := ctxFor(t, 90*time.Second)
	adm := kadm.NewClient(c.client(1))
	const topic, groupID = "t", "isr-group"
	if r, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	coord := c.findCoordinator(ctx, 1, 0, groupID)
	waitFullISR(ctx, t, c, "__consumer_offsets", group.PartitionFor(groupID, 6))
	cl := c.client(coord, kgo.MaxVersions(kversion.V2_8_0())) // one group, topics by name
	commit := func(offset int64) (int16, time.Duration) {
		t.Helper()
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = groupID, -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		start := time.Now()
		r, err := cl.Broker(int(coord)).Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return r.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, time.Since(start)
	}
	fetch := func() int64 {
		t.Helper()
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = groupID
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0}
		req.Topics = append(req.Topics, rt)
		r, err := cl.Broker(int(coord)).Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		resp := r.(*kmsg.OffsetFetchResponse)
		if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("offset fetch: %+v", resp)
		}
		return resp.Topics[0].Partitions[0].Offset
	}
	// The coordinator's node may apply the new __consumer_offsets a moment
	// after node 1: until then it answers NOT_COORDINATOR (or
	// COORDINATOR_LOAD_IN_PROGRESS), which clients retry.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, _ := commit(1)
		if code == 0 {
			break
		}
		if (code != kerr.NotCoordinator.Code && code != kerr.CoordinatorLoadInProgress.Code) || time.Now().After(deadline) {
			t.Fatalf("first commit: code %d", code)
		}
	}
	for i := int64(2); i <= 10; i++ {
		if code, took := commit(i); code != 0 {
			t.Fatalf("commit with the full ISR: code %d", code)
		} else if i == 10 {
			t.Logf("commit %d with the full ISR answered in %v", i, took)
		}
	}
	if at := fetch(); at != 10 {
		t.Fatalf("committed 10, fetched %d", at)
	}

	var others []int32
	for id := range c.nodes {
		if id != coord {
			others = append(others, id)
		}
	}
	done := make(chan struct{})
	for _, id := range others {
		go func() {
			defer func() { done <- struct{}{} }()
			c.nodes[id].s.Crash()
		}()
	}
	<-done
	<-done
	for _, id := range others {
		c.nodes[id].s = nil
	}
	code, took := commit(20)
	if code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("commit without the followers: code %d after %v, want COORDINATOR_NOT_AVAILABLE", code, took)
	}
	if took < 4*time.Second {
		t.Errorf("commit without the followers answered after %v, before offsets.commit.timeout.ms", took)
	}
	if at := fetch(); at != 10 {
		t.Errorf("unacknowledged commit visible: fetched %d, want 10", at)
	}
}
