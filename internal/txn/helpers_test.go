package txn

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/coordinator/coordtest"
	"samsa/internal/record"
	"samsa/internal/storage"
)

// testMarkers writes markers to the data logs of a testBroker; failWith,
// when set, fails every marker instead.
type testMarkers struct {
	b *testBroker

	mu       sync.Mutex
	failWith error
}

func (w *testMarkers) setFail(err error) {
	w.mu.Lock()
	w.failWith = err
	w.mu.Unlock()
}

func (w *testMarkers) WriteTxnMarkers(_ context.Context, m Marker) []error {
	w.mu.Lock()
	defer w.mu.Unlock()
	errs := make([]error, len(m.Partitions))
	for i, tp := range m.Partitions {
		if w.failWith != nil {
			errs[i] = w.failWith
			continue
		}
		l, ok := w.b.mgr.Log(tp.Topic, tp.Partition)
		if !ok {
			errs[i] = kerr.UnknownTopicOrPartition
			continue
		}
		if _, err := l.WriteTxnMarker(storage.TxnMarker{ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch,
			Commit: m.Commit, CoordinatorEpoch: m.CoordinatorEpoch}); err != nil {
			errs[i] = err
			continue
		}
		l.SetHighWatermark(l.LogEndOffset())
	}
	return errs
}

// testBroker is a storage manager with __transaction_state-0 and two data
// partitions (t-0, t-1) and a coordinator leading partition 0.
type testBroker struct {
	t       *testing.T
	dir     string
	mgr     *storage.Manager
	state   *coordtest.LogPartition
	c       *Coordinator
	clock   *coordtest.Clock
	markers *testMarkers
	nextPID int64
}

func newTestBroker(t *testing.T) *testBroker {
	t.Helper()
	b := &testBroker{t: t, dir: t.TempDir(), clock: coordtest.NewClock(time.UnixMilli(1_700_000_000_000)), nextPID: 1000}
	b.markers = &testMarkers{b: b}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *testBroker) start() {
	b.t.Helper()
	mgr := coordtest.OpenManager(b.t, b.dir)
	b.mgr = mgr
	open := func(topic string, p int32, id byte) *storage.Log {
		if l, ok := mgr.Log(topic, p); ok {
			l.SetHighWatermark(l.LogEndOffset())
			return l
		}
		l, err := mgr.CreateLog(topic, p, [16]byte{id}, storage.DefaultConfig())
		if err != nil {
			b.t.Fatal(err)
		}
		return l
	}
	b.state = coordtest.NewLogPartition(open("__transaction_state", 0, 1))
	open("t", 0, 2)
	open("t", 1, 2)
	var pidMu sync.Mutex
	b.c = New(Config{
		NumPartitions:         1,
		MaxTimeout:            time.Minute,
		IDExpiration:          time.Hour,
		AbortTimedOutInterval: time.Hour, // tests sweep by hand
		RemoveExpiredInterval: time.Hour,
		AllocateProducerID: func(context.Context) (int64, error) {
			pidMu.Lock()
			defer pidMu.Unlock()
			b.nextPID++
			return b.nextPID, nil
		},
		Markers: b.markers,
		Now:     b.clock.Now,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	b.c.Load(0, b.state, 3)
	eventually(b.t, "partition loaded", func() bool { ok, _ := b.c.Loaded("x"); return ok })
}

func (b *testBroker) stop() {
	if b.c != nil {
		b.c.Close()
		b.c = nil
	}
	coordtest.CloseManager(b.t, &b.mgr)
}

func (b *testBroker) restart() {
	b.t.Helper()
	b.stop()
	b.start()
}

func (b *testBroker) log(topic string, p int32) *storage.Log {
	l, ok := b.mgr.Log(topic, p)
	if !ok {
		b.t.Fatalf("no log %s-%d", topic, p)
	}
	return l
}

// produce appends a transactional batch of n records for pid/epoch to
// topic t partition p, with sequence seq.
func (b *testBroker) produce(p int32, pid int64, epoch int16, seq int32, n int) {
	b.t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Timestamp: b.clock.Now().UnixMilli(), Value: []byte("v")}
	}
	batch, err := record.Build(record.BuildOptions{Idempotent: true, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, Transactional: true}, recs)
	if err != nil {
		b.t.Fatal(err)
	}
	l := b.log("t", p)
	if _, err := l.AppendAsLeader(batch, 0); err != nil {
		b.t.Fatal(err)
	}
	l.SetHighWatermark(l.LogEndOffset())
}

// controls returns the control records (commit true/false) of a log.
func (b *testBroker) controls(topic string, p int32) []bool {
	b.t.Helper()
	l := b.log(topic, p)
	var out []bool
	for off := l.LogStartOffset(); off < l.HighWatermark(); {
		buf, err := l.Read(off, 1<<20, l.HighWatermark(), true)
		if err != nil {
			b.t.Fatal(err)
		}
		data := append([]byte(nil), buf...)
		storage.ReleaseBuffer(buf)
		if len(data) == 0 {
			break
		}
		for len(data) > 0 {
			batch, h, rest, err := record.Next(data)
			if err != nil {
				b.t.Fatal(err)
			}
			if h.Control() {
				err := record.ForEachRecord(batch, func(_ *record.Header, r *record.Record) error {
					typ, err := record.ControlType(r)
					out = append(out, typ == record.ControlCommit)
					return err
				})
				if err != nil {
					b.t.Fatal(err)
				}
			}
			off = h.NextOffset()
			data = rest
		}
	}
	return out
}

func (b *testBroker) init(id string) (int64, int16) {
	b.t.Helper()
	pid, epoch, code := b.c.InitProducerID(context.Background(), id, 10_000, -1, -1)
	if code != nil {
		b.t.Fatalf("InitProducerID(%s): %v", id, code)
	}
	return pid, epoch
}

func (b *testBroker) txnState(id string) kmsg.TransactionState {
	b.t.Helper()
	d, code := b.c.Describe(id)
	if code != nil {
		b.t.Fatalf("Describe(%s): %v", id, code)
	}
	return d.State
}

// begin inits producer id and adds partitions ps of topic t to its
// transaction.
func (b *testBroker) begin(id string, ps ...int32) (int64, int16) {
	b.t.Helper()
	pid, epoch := b.init(id)
	if code := b.c.AddPartitions(context.Background(), id, pid, epoch, tps(ps...)); code != nil {
		b.t.Fatalf("AddPartitions(%s): %v", id, code)
	}
	return pid, epoch
}

func tps(ps ...int32) []TopicPartition {
	out := make([]TopicPartition, len(ps))
	for i, p := range ps {
		out[i] = TopicPartition{Topic: "t", Partition: p}
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantCode(t *testing.T, what string, got, want *kerr.Error) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}
