package api_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/record"
)

// txnNode is a node whose transaction state topic is small (fast to
// create) and whose timed-out transactions are looked for often.
func txnNode(t *testing.T, extra ...string) *node {
	return startNode(t, append([]string{
		"transaction.state.log.num.partitions=3",
		"offsets.topic.num.partitions=3",
		"group.initial.rebalance.delay.ms=0",
		"transaction.abort.timed.out.transaction.cleanup.interval.ms=100",
	}, extra...)...)
}

// txnProducer is a transactional kgo client for topic.
func (n *node) txnProducer(id, topic string, opts ...kgo.Opt) *kgo.Client {
	return n.client(append([]kgo.Opt{
		kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}, opts...)...)
}

// produceTxn runs one transaction of values to partition 0 and ends it.
func produceTxn(t *testing.T, cl *kgo.Client, commit bool, values ...string) {
	t.Helper()
	ctx := ctxT(t)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction (commit %v): %v", commit, err)
	}
}

// consumeValues reads partition 0 of topic from the start with the given
// isolation level and returns the values. It first appends a sentinel
// record (non-transactional, so visible at both levels) and reads up to
// it; sentinels of earlier calls are left out.
func (n *node) consumeValues(topic string, level kgo.IsolationLevel) []string {
	n.t.Helper()
	ctx := ctxT(n.t)
	n.sentinels++
	sentinel := fmt.Sprintf("sentinel-%d", n.sentinels)
	plain := n.client(kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte(sentinel)}).FirstErr(); err != nil {
		n.t.Fatal(err)
	}
	cl := n.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(level), kgo.FetchMaxWait(100*time.Millisecond))
	var vals []string
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			n.t.Fatalf("consume %s: %v (got %q)", topic, err, vals)
		}
		fs.EachError(func(_ string, _ int32, err error) { n.t.Fatalf("fetch: %v", err) })
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			switch {
			case done:
			case v == sentinel:
				done = true
			case strings.HasPrefix(v, "sentinel-"):
			default:
				vals = append(vals, v)
			}
		})
		if done {
			return vals
		}
	}
}

// stableOffset is ListOffsets(latest) with read_committed: the LSO.
func (n *node) stableOffset(topic string) int64 {
	n.t.Helper()
	offs, err := n.admin().ListCommittedOffsets(ctxT(n.t), topic)
	if err != nil {
		n.t.Fatal(err)
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok || o.Err != nil {
		n.t.Fatalf("stable offset of %s-0: %+v", topic, o)
	}
	return o.Offset
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAPITxnCommitAbortIsolation: committed transactions are visible to
// read_committed consumers, aborted ones are not; read_uncommitted sees
// every record.
func TestAPITxnCommitAbortIsolation(t *testing.T) {
	n := txnNode(t)
	n.createTopic("txt", 1, nil)
	p := n.txnProducer("iso", "txt")
	produceTxn(t, p, true, "c1", "c2", "c3")
	produceTxn(t, p, false, "a1", "a2")
	produceTxn(t, p, true, "c4")

	// 6 records + 3 markers, nothing open: LSO = HW.
	if hw, lso := n.endOffset("txt", 0), n.stableOffset("txt"); hw != 9 || lso != 9 {
		t.Errorf("HW %d LSO %d, want 9/9", hw, lso)
	}
	// The raw fetch names the aborted transaction for read_committed.
	c := n.raw()
	f := fetchReq(12, "txt", 0, 0)
	f.IsolationLevel = 1
	fr := c.do(f).(*kmsg.FetchResponse)
	sp := fr.Topics[0].Partitions[0]
	if sp.ErrorCode != 0 || sp.LastStableOffset != 9 || len(sp.AbortedTransactions) != 1 || sp.AbortedTransactions[0].FirstOffset != 4 {
		t.Errorf("read_committed fetch: error %d LSO %d aborted %+v", sp.ErrorCode, sp.LastStableOffset, sp.AbortedTransactions)
	}
	if got := n.consumeValues("txt", kgo.ReadCommitted()); !slices.Equal(got, []string{"c1", "c2", "c3", "c4"}) {
		t.Errorf("read_committed got %q", got)
	}
	if got := n.consumeValues("txt", kgo.ReadUncommitted()); !slices.Equal(got, []string{"c1", "c2", "c3", "a1", "a2", "c4"}) {
		t.Errorf("read_uncommitted got %q", got)
	}
}

// TestAPITxnLastStableOffsetStalls: an open transaction holds the LSO at
// its first offset; read_committed consumers see nothing past it until the
// commit.
func TestAPITxnLastStableOffsetStalls(t *testing.T) {
	n := txnNode(t)
	n.createTopic("lso", 1, nil)
	plain := n.client(kgo.DefaultProduceTopic("lso"))
	if err := plain.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p := n.txnProducer("stall", "lso")
	ctx := ctxT(t)
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("t1")}, &kgo.Record{Value: []byte("t2")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if hw, lso := n.endOffset("lso", 0), n.stableOffset("lso"); hw != 3 || lso != 1 {
		t.Fatalf("open transaction: HW %d LSO %d, want 3/1", hw, lso)
	}
	c := n.raw()
	f := fetchReq(11, "lso", 0, 1)
	f.IsolationLevel = 1
	sp := c.do(f).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if sp.ErrorCode != 0 || len(sp.RecordBatches) != 0 || sp.LastStableOffset != 1 || sp.HighWatermark != 3 {
		t.Fatalf("read_committed fetch past LSO: error %d, %d bytes, LSO %d HW %d", sp.ErrorCode, len(sp.RecordBatches), sp.LastStableOffset, sp.HighWatermark)
	}
	f.IsolationLevel = 0
	if sp := c.do(f).(*kmsg.FetchResponse).Topics[0].Partitions[0]; len(sp.RecordBatches) == 0 || sp.LastStableOffset != 1 {
		t.Fatalf("read_uncommitted fetch: %d bytes LSO %d", len(sp.RecordBatches), sp.LastStableOffset)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if hw, lso := n.endOffset("lso", 0), n.stableOffset("lso"); hw != 4 || lso != 4 {
		t.Fatalf("after commit: HW %d LSO %d, want 4/4", hw, lso)
	}
	if got := n.consumeValues("lso", kgo.ReadCommitted()); !slices.Equal(got, []string{"before", "t1", "t2"}) {
		t.Errorf("read_committed got %q", got)
	}
}

// isFenced reports whether err is how a client learns it was fenced.
func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.InvalidProducerIDMapping) || errors.Is(err, kerr.InvalidTxnState)
}

// TestAPITxnProducerFenced: a second producer with the same transactional
// id fences the first; the first's open transaction is aborted.
func TestAPITxnProducerFenced(t *testing.T) {
	n := txnNode(t)
	n.createTopic("fence", 1, nil)
	ctx := ctxT(t)
	a := n.txnProducer("same", "fence")
	if err := a.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := a.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	b := n.txnProducer("same", "fence")
	produceTxn(t, b, true, "winner")

	err := a.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie-2")}).FirstErr()
	if err == nil {
		err = a.EndTransaction(ctx, kgo.TryCommit)
	} else {
		_ = a.EndTransaction(ctx, kgo.TryAbort)
	}
	if !isFenced(err) {
		t.Fatalf("fenced producer: got %v, want PRODUCER_FENCED / INVALID_PRODUCER_EPOCH", err)
	}
	if got := n.consumeValues("fence", kgo.ReadCommitted()); !slices.Equal(got, []string{"winner"}) {
		t.Errorf("read_committed got %q", got)
	}
}

// TestAPITxnTimedOutAborted: a transaction older than its timeout is
// aborted by the coordinator (epoch bumped), which unblocks the LSO.
func TestAPITxnTimedOutAborted(t *testing.T) {
	n := txnNode(t)
	n.createTopic("slow", 1, nil)
	ctx := ctxT(t)
	p := n.txnProducer("slowpoke", "slow", kgo.TransactionTimeout(300*time.Millisecond))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("late")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	desc, err := n.admin().DescribeTransactions(ctx, "slowpoke")
	if err != nil {
		t.Fatal(err)
	}
	before, _ := desc.On("slowpoke", nil)
	waitFor(t, "the abort marker", func() bool { return n.stableOffset("slow") == 2 })
	waitFor(t, "CompleteAbort", func() bool {
		d, err := n.admin().DescribeTransactions(ctx, "slowpoke")
		if err != nil {
			return false
		}
		got, _ := d.On("slowpoke", nil)
		return got.State == "CompleteAbort" && got.ProducerEpoch == before.ProducerEpoch+1
	})
	if got := n.consumeValues("slow", kgo.ReadCommitted()); len(got) != 0 {
		t.Errorf("read_committed got %q from an aborted transaction", got)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("commit of a timed-out transaction succeeded")
	}
}

// TestAPITxnRestartMidTransaction: an open transaction survives a restart
// (state, LSO), and a new producer of its id aborts it.
func TestAPITxnRestartMidTransaction(t *testing.T) {
	dir := "log.dirs=" + t.TempDir()
	n := txnNode(t, dir)
	n.createTopic("rs", 1, nil)
	ctx := ctxT(t)
	p := n.txnProducer("restarted", "rs")
	produceTxn(t, p, true, "kept")
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p.Close()
	n.s.Close()

	n2 := txnNode(t, dir)
	if hw, lso := n2.endOffset("rs", 0), n2.stableOffset("rs"); hw != 3 || lso != 2 {
		t.Fatalf("after restart: HW %d LSO %d, want 3/2", hw, lso)
	}
	waitFor(t, "the transaction state reloaded", func() bool {
		d, err := n2.admin().DescribeTransactions(ctx, "restarted")
		if err != nil {
			return false
		}
		got, err := d.On("restarted", nil)
		return err == nil && got.State == "Ongoing" && len(got.Topics) == 1
	})
	p2 := n2.txnProducer("restarted", "rs")
	produceTxn(t, p2, true, "after")
	if got := n2.consumeValues("rs", kgo.ReadCommitted()); !slices.Equal(got, []string{"kept", "after"}) {
		t.Errorf("read_committed got %q", got)
	}
}

// TestAPITxnAdminAndVerification: DescribeTransactions, ListTransactions
// and DescribeProducers show an open transaction; a transactional batch
// for a partition not in the transaction is INVALID_TXN_STATE.
func TestAPITxnAdminAndVerification(t *testing.T) {
	n := txnNode(t)
	n.createTopic("adm", 2, nil)
	ctx := ctxT(t)
	p := n.txnProducer("admin-txn", "adm")
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("x"), Partition: 0}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := n.admin()
	desc, err := adm.DescribeTransactions(ctx, "admin-txn")
	if err != nil {
		t.Fatal(err)
	}
	d, err := desc.On("admin-txn", nil)
	if err != nil || d.State != "Ongoing" || d.ProducerID < 0 || len(d.Topics["adm"]) != 1 || !hasKey(d.Topics["adm"], 0) {
		t.Fatalf("describe: %+v %v", d, err)
	}
	list, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := list["admin-txn"]; !ok || len(list) != 1 {
		t.Fatalf("list Ongoing: %+v", list)
	}
	if list, _ := adm.ListTransactions(ctx, nil, []string{"CompleteCommit"}); len(list) != 0 {
		t.Fatalf("list CompleteCommit: %+v", list)
	}
	prods, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"adm": {0: {}, 1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	prods.EachProducer(func(dp kadm.DescribedProducer) {
		if dp.Partition == 0 && dp.ProducerID == d.ProducerID && dp.CurrentTxnStartOffset == 0 {
			found++
		}
		if dp.Partition == 1 {
			t.Errorf("producer listed on partition 1: %+v", dp)
		}
	})
	if found != 1 {
		t.Fatalf("describe producers: %+v", prods)
	}

	// A transactional batch by hand to partition 1, never added.
	recs := []record.Record{{Timestamp: time.Now().UnixMilli(), Value: []byte("sneaky")}}
	b, err := record.Build(record.BuildOptions{Idempotent: true, ProducerID: d.ProducerID, ProducerEpoch: d.ProducerEpoch, Transactional: true}, recs)
	if err != nil {
		t.Fatal(err)
	}
	req := produceReq(9, "adm", 1, b)
	req.TransactionID = kmsg.StringPtr("admin-txn")
	c := n.raw()
	if code := c.do(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidTxnState.Code {
		t.Fatalf("produce to a partition outside the transaction: %v", kerr.ErrorForCode(code))
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if d, _ := adm.DescribeTransactions(ctx, "admin-txn"); d["admin-txn"].State != "CompleteCommit" {
		t.Fatalf("after commit: %+v", d["admin-txn"])
	}
}

// TestAPITxnRawStateErrors: the coordinator's codes on the wire, with
// PRODUCER_FENCED mapped to INVALID_PRODUCER_EPOCH for old versions.
func TestAPITxnRawStateErrors(t *testing.T) {
	n := txnNode(t)
	n.createTopic("raw", 1, nil)
	c := n.raw()
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version = 3
	fc.CoordinatorType = 1
	fc.CoordinatorKey = "raw-txn"
	if r := c.do(fc).(*kmsg.FindCoordinatorResponse); r.ErrorCode != 0 {
		t.Fatalf("find coordinator: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.Version = 4
	ip.TransactionalID = kmsg.StringPtr("raw-txn")
	ip.TransactionTimeoutMillis = 60000
	var ir *kmsg.InitProducerIDResponse
	waitFor(t, "init producer id", func() bool {
		ir = c.do(ip).(*kmsg.InitProducerIDResponse)
		return ir.ErrorCode == 0
	})
	end := kmsg.NewPtrEndTxnRequest()
	end.Version = 3
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "raw-txn", ir.ProducerID, ir.ProducerEpoch, true
	if code := c.do(end).(*kmsg.EndTxnResponse).ErrorCode; code != kerr.InvalidTxnState.Code {
		t.Fatalf("end without transaction: %v", kerr.ErrorForCode(code))
	}
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.Version = 3
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = "raw-txn", ir.ProducerID, ir.ProducerEpoch-1
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "raw", Partitions: []int32{0}}, {Topic: "nope", Partitions: []int32{0}}}
	ar := c.do(add).(*kmsg.AddPartitionsToTxnResponse)
	if ar.Topics[0].Partitions[0].ErrorCode != kerr.OperationNotAttempted.Code || ar.Topics[1].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("add with an unknown topic: %+v", ar.Topics)
	}
	add.Topics = add.Topics[:1]
	for version, want := range map[int16]*kerr.Error{1: kerr.InvalidProducerEpoch, 3: kerr.ProducerFenced} {
		add.Version = version
		if code := c.do(add).(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode; code != want.Code {
			t.Errorf("add with an old epoch, v%d: %v, want %v", version, kerr.ErrorForCode(code), want)
		}
	}
	// v4: verify only (the broker-side check of KIP-890).
	add.Version = 4
	add.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{{TransactionalID: "raw-txn", ProducerID: ir.ProducerID,
		ProducerEpoch: ir.ProducerEpoch, VerifyOnly: true, Topics: []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "raw", Partitions: []int32{0}}}}}
	vr := c.do(add).(*kmsg.AddPartitionsToTxnResponse)
	if code := vr.Transactions[0].Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidTxnState.Code {
		t.Fatalf("verify a partition not added: %v", kerr.ErrorForCode(code))
	}
	add.Transactions[0].VerifyOnly = false
	if code := c.do(add).(*kmsg.AddPartitionsToTxnResponse).Transactions[0].Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("add v4: %v", kerr.ErrorForCode(code))
	}
	add.Transactions[0].VerifyOnly = true
	if code := c.do(add).(*kmsg.AddPartitionsToTxnResponse).Transactions[0].Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("verify an added partition: %v", kerr.ErrorForCode(code))
	}
	// WriteTxnMarkers from a "coordinator": aborts the transaction on raw-0.
	wm := kmsg.NewPtrWriteTxnMarkersRequest()
	wm.Version = 1
	wm.Markers = []kmsg.WriteTxnMarkersRequestMarker{{ProducerID: ir.ProducerID, ProducerEpoch: ir.ProducerEpoch,
		Topics: []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: "raw", Partitions: []int32{0}}, {Topic: "gone", Partitions: []int32{3}}}}}
	wr := c.do(wm).(*kmsg.WriteTxnMarkersResponse)
	if len(wr.Markers) != 1 || wr.Markers[0].Topics[0].Partitions[0].ErrorCode != 0 ||
		wr.Markers[0].Topics[1].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("write txn markers: %+v", wr.Markers)
	}
	if hw := n.endOffset("raw", 0); hw != 1 {
		t.Fatalf("HW after a marker: %d, want 1", hw)
	}
	lt := kmsg.NewPtrListTransactionsRequest()
	lt.Version = 1
	lt.StateFilters = []string{"Ongoing", "Bogus"}
	lr := c.do(lt).(*kmsg.ListTransactionsResponse)
	if lr.ErrorCode != 0 || !slices.Equal(lr.UnknownStateFilters, []string{"Bogus"}) || len(lr.TransactionStates) != 1 {
		t.Fatalf("list transactions: %+v", lr)
	}
	lt.DurationFilterMillis = int64(time.Hour / time.Millisecond)
	if lr := c.do(lt).(*kmsg.ListTransactionsResponse); len(lr.TransactionStates) != 0 {
		t.Fatalf("list transactions older than an hour: %+v", lr.TransactionStates)
	}
}

func hasKey[K comparable, V any](m map[K]V, k K) bool { _, ok := m[k]; return ok }

// TestAPITxnGroupExactlyOnce: kgo's GroupTransactSession reads a topic,
// writes each record transformed to another topic and commits its offsets
// in the same transaction (TxnOffsetCommit, markers on __consumer_offsets).
// One aborted round is redone; read_committed sees every output once and
// the group's committed offset is the input's end.
func TestAPITxnGroupExactlyOnce(t *testing.T) {
	n := txnNode(t)
	n.createTopic("eos-in", 1, nil)
	n.createTopic("eos-out", 1, nil)
	const total = 20
	in := n.client(kgo.DefaultProduceTopic("eos-in"))
	for i := range total {
		if err := in.ProduceSync(ctxT(t), &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(n.addr), kgo.TransactionalID("eos"),
		kgo.ConsumerGroup("eos-group"), kgo.ConsumeTopics("eos-in"), kgo.DefaultProduceTopic("eos-out"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.FetchMaxPartitionBytes(64))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	ctx := ctxT(t)
	done, aborted := 0, false
	for done < total {
		fs := sess.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out after %d records", done)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		var out []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) { out = append(out, &kgo.Record{Value: append([]byte("out-"), r.Value...)}) })
		if err := sess.ProduceSync(ctx, out...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		try := kgo.TryCommit
		if !aborted && done > 0 {
			try, aborted = kgo.TryAbort, true
		}
		committed, err := sess.End(ctx, try)
		if err != nil {
			t.Fatal(err)
		}
		if committed {
			done += len(out)
		}
	}
	if !aborted {
		t.Fatal("no round was aborted")
	}
	got := n.consumeValues("eos-out", kgo.ReadCommitted())
	if len(got) != total {
		t.Fatalf("read_committed output has %d records, want %d: %q", len(got), total, got)
	}
	for i, v := range got {
		if v != fmt.Sprint("out-", i) {
			t.Fatalf("output %d is %q", i, v)
		}
	}
	offs, err := n.admin().FetchOffsets(ctx, "eos-group")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("eos-in", 0); !ok || o.At != total {
		t.Fatalf("committed offset %+v, want %d", o, total)
	}
}
