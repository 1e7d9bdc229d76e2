package txn

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/record"
)

func TestCoordinatorInitProducerIDEpochs(t *testing.T) {
	b := newTestBroker(t)
	ctx := context.Background()

	_, _, code := b.c.InitProducerID(ctx, "", 1000, -1, -1)
	wantCode(t, "empty id", code, kerr.InvalidRequest)
	_, _, code = b.c.InitProducerID(ctx, "a", int32(2*time.Minute/time.Millisecond), -1, -1)
	wantCode(t, "timeout over max", code, kerr.InvalidTransactionTimeout)
	_, _, code = b.c.InitProducerID(ctx, "a", 0, -1, -1)
	wantCode(t, "zero timeout", code, kerr.InvalidTransactionTimeout)

	pid, epoch := b.init("a")
	if epoch != 0 {
		t.Fatalf("first epoch %d, want 0", epoch)
	}
	pid2, epoch2 := b.init("a")
	if pid2 != pid || epoch2 != 1 {
		t.Fatalf("second init: %d/%d, want %d/1", pid2, epoch2, pid)
	}
	// KIP-360: the client passes its id and epoch; a retry of the same
	// call gets the same answer, an older epoch is fenced.
	p3, e3, code := b.c.InitProducerID(ctx, "a", 1000, pid, 1)
	if code != nil || p3 != pid || e3 != 2 {
		t.Fatalf("bump with expected epoch: %d/%d %v", p3, e3, code)
	}
	p4, e4, code := b.c.InitProducerID(ctx, "a", 1000, pid, 1)
	if code != nil || p4 != pid || e4 != 2 {
		t.Fatalf("retried bump: %d/%d %v", p4, e4, code)
	}
	_, _, code = b.c.InitProducerID(ctx, "a", 1000, pid, 0)
	wantCode(t, "stale epoch", code, kerr.ProducerFenced)
	_, _, code = b.c.InitProducerID(ctx, "a", 1000, pid+77, 2)
	wantCode(t, "other producer id", code, kerr.ProducerFenced)

	// Another id gets another producer id.
	if other, _ := b.init("b"); other == pid {
		t.Fatalf("ids a and b share producer id %d", pid)
	}
}

func TestCoordinatorCommitWritesMarkers(t *testing.T) {
	b := newTestBroker(t)
	ctx := context.Background()
	pid, epoch := b.begin("tx", 0, 1)
	if s := b.txnState("tx"); s != kmsg.TransactionStateOngoing {
		t.Fatalf("state %v, want Ongoing", s)
	}
	if code := b.c.VerifyPartition("tx", pid, epoch, TopicPartition{"t", 0}); code != nil {
		t.Fatalf("verify added partition: %v", code)
	}
	b.produce(0, pid, epoch, 0, 3)
	l := b.log("t", 0)
	if lso := l.LastStableOffset(); lso != 0 {
		t.Fatalf("LSO with an open transaction = %d, want 0", lso)
	}
	if code := b.c.EndTxn(ctx, "tx", pid, epoch, true); code != nil {
		t.Fatal(code)
	}
	eventually(t, "CompleteCommit", func() bool { return b.txnState("tx") == kmsg.TransactionStateCompleteCommit })
	if got := b.controls("t", 0); !slices.Equal(got, []bool{true}) {
		t.Fatalf("t-0 markers %v, want one commit", got)
	}
	if got := b.controls("t", 1); !slices.Equal(got, []bool{true}) {
		t.Fatalf("t-1 markers %v, want one commit", got)
	}
	if lso, hw := l.LastStableOffset(), l.HighWatermark(); lso != hw || hw != 4 {
		t.Fatalf("after commit LSO %d HW %d, want 4/4", lso, hw)
	}
	d, _ := b.c.Describe("tx")
	if len(d.Partitions) != 0 {
		t.Fatalf("completed transaction keeps partitions %v", d.Partitions)
	}
	// A retried commit succeeds, an abort of it does not.
	if code := b.c.EndTxn(ctx, "tx", pid, epoch, true); code != nil {
		t.Fatalf("retried commit: %v", code)
	}
	wantCode(t, "abort after commit", b.c.EndTxn(ctx, "tx", pid, epoch, false), kerr.InvalidTxnState)
	wantCode(t, "verify after commit", b.c.VerifyPartition("tx", pid, epoch, TopicPartition{"t", 0}), kerr.InvalidTxnState)
}

func TestCoordinatorAbortListsAbortedTransaction(t *testing.T) {
	b := newTestBroker(t)
	ctx := context.Background()
	pid, epoch := b.begin("tx", 0)
	b.produce(0, pid, epoch, 0, 2)
	if code := b.c.EndTxn(ctx, "tx", pid, epoch, false); code != nil {
		t.Fatal(code)
	}
	eventually(t, "CompleteAbort", func() bool { return b.txnState("tx") == kmsg.TransactionStateCompleteAbort })
	l := b.log("t", 0)
	ab := l.AbortedTransactions(0, l.HighWatermark())
	if len(ab) != 1 || ab[0].ProducerID != pid || ab[0].FirstOffset != 0 {
		t.Fatalf("aborted transactions %+v, want producer %d from 0", ab, pid)
	}
	// The next transaction of the same producer starts from Empty-like
	// CompleteAbort.
	if code := b.c.AddPartitions(ctx, "tx", pid, epoch, tps(1)); code != nil {
		t.Fatal(code)
	}
	d, _ := b.c.Describe("tx")
	if d.State != kmsg.TransactionStateOngoing || !slices.Equal(d.Partitions, tps(1)) {
		t.Fatalf("second transaction %+v", d)
	}
}

func TestCoordinatorStateErrors(t *testing.T) {
	b := newTestBroker(t)
	ctx := context.Background()
	wantCode(t, "end unknown id", b.c.EndTxn(ctx, "nope", 1, 0, true), kerr.InvalidProducerIDMapping)
	pid, epoch := b.init("tx")
	wantCode(t, "end without transaction", b.c.EndTxn(ctx, "tx", pid, epoch, true), kerr.InvalidTxnState)
	wantCode(t, "add with wrong id", b.c.AddPartitions(ctx, "tx", pid+1, epoch, tps(0)), kerr.InvalidProducerIDMapping)
	wantCode(t, "add with old epoch", b.c.AddPartitions(ctx, "tx", pid, epoch-1, tps(0)), kerr.ProducerFenced)
	wantCode(t, "verify not added", b.c.VerifyPartition("tx", pid, epoch, TopicPartition{"t", 0}), kerr.InvalidTxnState)
	if code := b.c.AddPartitions(ctx, "tx", pid, epoch, tps(0)); code != nil {
		t.Fatal(code)
	}
	wantCode(t, "verify other partition", b.c.VerifyPartition("tx", pid, epoch, TopicPartition{"t", 1}), kerr.InvalidTxnState)
	wantCode(t, "verify old epoch", b.c.VerifyPartition("tx", pid, epoch-1, TopicPartition{"t", 0}), kerr.InvalidProducerEpoch)
	_, code := b.c.Describe("nope")
	wantCode(t, "describe unknown", code, kerr.TransactionalIDNotFound)
	_, _, code = b.c.InitProducerID(ctx, "other-partition", 1000, -1, -1)
	if code != nil {
		t.Fatal(code) // one partition: every id is ours
	}
	list, code := b.c.List()
	if code != nil || len(list) != 2 || list[0].TransactionalID != "other-partition" || list[1].TransactionalID != "tx" {
		t.Fatalf("List = %+v %v", list, code)
	}
}

func TestCoordinatorReplayOngoing(t *testing.T) {
	b := newTestBroker(t)
	ctx := context.Background()
	pid, epoch := b.begin("tx", 1, 0)
	b.produce(0, pid, epoch, 0, 1)
	b.restart()
	d, code := b.c.Describe("tx")
	if code != nil || d.State != kmsg.TransactionStateOngoing || d.ProducerID != pid || d.ProducerEpoch != epoch ||
		!slices.Equal(d.Partitions, tps(0, 1)) || d.TimeoutMillis != 10_000 {
		t.Fatalf("after restart %+v %v", d, code)
	}
	// The producer carries on after the restart and commits.
	if code := b.c.EndTxn(ctx, "tx", pid, epoch, true); code != nil {
		t.Fatal(code)
	}
	eventually(t, "CompleteCommit", func() bool { return b.txnState("tx") == kmsg.TransactionStateCompleteCommit })
	b.restart()
	if s := b.txnState("tx"); s != kmsg.TransactionStateCompleteCommit {
		t.Fatalf("after second restart %v", s)
	}
	if p2, e2 := b.init("tx"); p2 != pid || e2 != epoch+1 {
		t.Fatalf("init after restart %d/%d, want %d/%d", p2, e2, pid, epoch+1)
	}
}

func TestCoordinatorResumesMarkersAfterRestart(t *testing.T) {
	b := newTestBroker(t)
	ctx := context.Background()
	pid, epoch := b.begin("tx", 0)
	b.produce(0, pid, epoch, 0, 1)
	b.markers.setFail(kerr.NotLeaderForPartition)
	ectx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	code := b.c.EndTxn(ectx, "tx", pid, epoch, true)
	cancel()
	if code != nil {
		t.Fatalf("EndTxn answers once PrepareCommit is stored: %v", code)
	}
	if s := b.txnState("tx"); s != kmsg.TransactionStatePrepareCommit {
		t.Fatalf("state %v, want PrepareCommit while markers fail", s)
	}
	_, _, code = b.c.InitProducerID(ctx, "tx", 1000, -1, -1)
	wantCode(t, "init while committing", code, kerr.ConcurrentTransactions)
	wantCode(t, "add while committing", b.c.AddPartitions(ctx, "tx", pid, epoch, tps(1)), kerr.ConcurrentTransactions)
	wantCode(t, "commit again while committing", b.c.EndTxn(ctx, "tx", pid, epoch, true), kerr.ConcurrentTransactions)

	b.stop()
	b.markers.setFail(nil)
	b.start()
	eventually(t, "CompleteCommit after restart", func() bool { return b.txnState("tx") == kmsg.TransactionStateCompleteCommit })
	if got := b.controls("t", 0); !slices.Equal(got, []bool{true}) {
		t.Fatalf("markers %v, want one commit", got)
	}
}

func TestCoordinatorAbortsTimedOutTransaction(t *testing.T) {
	b := newTestBroker(t)
	ctx := context.Background()
	pid, epoch := b.begin("tx", 0) // timeout 10s
	b.produce(0, pid, epoch, 0, 2)
	b.clock.Advance(9 * time.Second)
	b.c.AbortTimedOutTransactions()
	if s := b.txnState("tx"); s != kmsg.TransactionStateOngoing {
		t.Fatalf("aborted before its timeout: %v", s)
	}
	b.clock.Advance(2 * time.Second)
	b.c.AbortTimedOutTransactions()
	eventually(t, "CompleteAbort", func() bool { return b.txnState("tx") == kmsg.TransactionStateCompleteAbort })
	d, _ := b.c.Describe("tx")
	if d.ProducerEpoch != epoch+1 {
		t.Fatalf("epoch after timeout abort %d, want %d (fenced)", d.ProducerEpoch, epoch+1)
	}
	if got := b.controls("t", 0); !slices.Equal(got, []bool{false}) {
		t.Fatalf("markers %v, want one abort", got)
	}
	l := b.log("t", 0)
	if lso := l.LastStableOffset(); lso != l.HighWatermark() {
		t.Fatalf("LSO %d stuck below HW %d after the abort", lso, l.HighWatermark())
	}
	// The timed-out producer is fenced.
	wantCode(t, "commit after timeout", b.c.EndTxn(ctx, "tx", pid, epoch, true), kerr.ProducerFenced)
	wantCode(t, "add after timeout", b.c.AddPartitions(ctx, "tx", pid, epoch, tps(0)), kerr.ProducerFenced)
	// A new producer of the id starts above the fencing epoch.
	if _, e := b.init("tx"); e != epoch+2 {
		t.Fatalf("new producer epoch %d, want %d", e, epoch+2)
	}
}

func TestCoordinatorInitFencesOngoingTransaction(t *testing.T) {
	b := newTestBroker(t)
	ctx := context.Background()
	pid, epoch := b.begin("tx", 0)
	b.produce(0, pid, epoch, 0, 1)
	_, _, code := b.c.InitProducerID(ctx, "tx", 10_000, -1, -1)
	wantCode(t, "init over an ongoing transaction", code, kerr.ConcurrentTransactions)
	var p2 int64
	var e2 int16
	eventually(t, "second producer initialized", func() bool {
		p2, e2, code = b.c.InitProducerID(ctx, "tx", 10_000, -1, -1)
		return code == nil
	})
	if p2 != pid || e2 != epoch+2 {
		t.Fatalf("new producer %d/%d, want %d/%d", p2, e2, pid, epoch+2)
	}
	if got := b.controls("t", 0); !slices.Equal(got, []bool{false}) {
		t.Fatalf("markers %v, want the fenced transaction aborted", got)
	}
	wantCode(t, "old producer commits", b.c.EndTxn(ctx, "tx", pid, epoch, true), kerr.ProducerFenced)
}

func TestCoordinatorExpiresIdleIDs(t *testing.T) {
	b := newTestBroker(t)
	b.init("idle")
	pid, _ := b.begin("busy", 0)
	b.clock.Advance(30 * time.Minute)
	b.c.ExpireTransactionalIDs()
	if _, code := b.c.Describe("idle"); code != nil {
		t.Fatalf("expired too early: %v", code)
	}
	b.clock.Advance(31 * time.Minute)
	b.c.ExpireTransactionalIDs()
	_, code := b.c.Describe("idle")
	wantCode(t, "expired id", code, kerr.TransactionalIDNotFound)
	if _, code := b.c.Describe("busy"); code != nil {
		t.Fatalf("an ongoing transaction's id expired: %v", code)
	}
	b.restart()
	_, code = b.c.Describe("idle")
	wantCode(t, "expired id after restart", code, kerr.TransactionalIDNotFound)
	// A new producer of the expired id gets a new producer id.
	if p, e := b.init("idle"); e != 0 || p == pid {
		t.Fatalf("re-created id %d/%d", p, e)
	}
}

func TestCoordinatorRotatesExhaustedEpoch(t *testing.T) {
	b := newTestBroker(t)
	tm := &txnMeta{id: "old", producerID: 7, producerEpoch: math.MaxInt16 - 1, timeoutMs: 1000,
		state: kmsg.TransactionStateCompleteCommit, partitions: map[TopicPartition]struct{}{}, startTimestamp: -1}
	batch, err := record.Build(record.BuildOptions{}, []record.Record{tm.record(1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.state.Append(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	b.restart()
	pid, epoch := b.init("old")
	if pid == 7 || epoch != 0 {
		t.Fatalf("exhausted epoch: got %d/%d, want a new producer id with epoch 0", pid, epoch)
	}
	// A retry of the rotation by the old producer gets the same answer.
	p2, e2, code := b.c.InitProducerID(context.Background(), "old", 1000, 7, math.MaxInt16-1)
	if code != nil || p2 != pid || e2 != 0 {
		t.Fatalf("retried rotation %d/%d %v", p2, e2, code)
	}
}

func TestCoordinatorUnloadAnswersNotCoordinator(t *testing.T) {
	b := newTestBroker(t)
	pid, epoch := b.init("tx")
	b.c.Unload(0)
	wantCode(t, "add after unload", b.c.AddPartitions(context.Background(), "tx", pid, epoch, tps(0)), kerr.NotCoordinator)
	_, _, code := b.c.InitProducerID(context.Background(), "tx", 1000, -1, -1)
	wantCode(t, "init after unload", code, kerr.NotCoordinator)
}

func TestPartitionForMatchesJava(t *testing.T) {
	// Java: Math.abs("my-txn".hashCode()) % 50; "my-txn".hashCode() = -1061187895.
	for _, c := range []struct {
		id   string
		n    int32
		want int32
	}{{"my-txn", 50, 45}, {"", 50, 0}, {"a", 50, 47}} {
		if got := PartitionFor(c.id, c.n); got != c.want {
			t.Errorf("PartitionFor(%q, %d) = %d, want %d", c.id, c.n, got, c.want)
		}
	}
}
