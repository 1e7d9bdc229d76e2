package storage

import (
	"bytes"
	"os"
	"reflect"
	"testing"
	"time"

	"samsa/internal/record"
)

// A scripted partition history for the truncation and follower tests:
// epochs 0, 1, 2; plain, idempotent and transactional batches; commit and
// abort markers; small segments so it spans several.

type histOp struct {
	epoch int32
	kind  histKind
	n     int // records (data batches)
}

type histKind uint8

const (
	histPlain histKind = iota
	histIdempotent
	histTxnData // producer 9, transactional
	histCommit  // marker for producer 9
	histAbort
)

// history is the default script.
func history() []histOp {
	var ops []histOp
	for i := 0; i < 12; i++ {
		ops = append(ops, histOp{0, histPlain, 1 + i%3}, histOp{0, histIdempotent, 2})
	}
	ops = append(ops, histOp{0, histTxnData, 2}, histOp{0, histTxnData, 1}, histOp{0, histAbort, 0})
	for i := 0; i < 10; i++ {
		ops = append(ops, histOp{1, histIdempotent, 1 + i%2}, histOp{1, histTxnData, 3})
		if i%4 == 3 {
			ops = append(ops, histOp{1, histCommit, 0})
		}
	}
	ops = append(ops, histOp{1, histAbort, 0})
	for i := 0; i < 15; i++ {
		ops = append(ops, histOp{2, histPlain, 2}, histOp{2, histTxnData, 1})
		if i%5 == 4 {
			ops = append(ops, histOp{2, histAbort, 0})
		}
	}
	return append(ops, histOp{2, histIdempotent, 4}) // ends with an open transaction
}

// histState numbers the producers' batches while a history is applied.
type histState struct {
	idem, txn producer
	ts        int64
}

func newHistState() *histState {
	return &histState{idem: producer{id: 7}, txn: producer{id: 9, epoch: 3}, ts: 10_000}
}

// batch builds op's data batch (nil for markers).
func (st *histState) batch(t testing.TB, op histOp) []byte {
	t.Helper()
	st.ts += 10
	pairs := make([]string, op.n)
	for i := range pairs {
		pairs[i] = "k=v"
	}
	var o record.BuildOptions
	var p *producer
	switch op.kind {
	case histPlain:
	case histIdempotent:
		p = &st.idem
	case histTxnData:
		p = &st.txn
		o.Transactional = true
	default:
		return nil
	}
	if p != nil {
		o.Idempotent, o.ProducerID, o.ProducerEpoch, o.BaseSequence = true, p.id, p.epoch, p.seq
		p.seq += int32(op.n)
	}
	return kvBatch(t, record.CompressionNone, st.ts, o, kvs(pairs...))
}

// applyHistory appends ops to l as a leader and returns the end offset
// after each op.
func applyHistory(t testing.TB, l *Log, ops []histOp) []int64 {
	t.Helper()
	st := newHistState()
	ends := make([]int64, 0, len(ops))
	for _, op := range ops {
		if op.epoch > l.LatestEpoch() {
			if err := l.AssignEpochStartOffset(op.epoch, l.LogEndOffset()); err != nil {
				t.Fatal(err)
			}
		}
		if b := st.batch(t, op); b != nil {
			if _, err := l.AppendAsLeader(b, op.epoch); err != nil {
				t.Fatalf("append %+v: %v", op, err)
			}
		} else {
			_, err := l.WriteTxnMarker(TxnMarker{ProducerID: st.txn.id, ProducerEpoch: st.txn.epoch, Commit: op.kind == histCommit, LeaderEpoch: op.epoch})
			if err != nil {
				t.Fatalf("marker %+v: %v", op, err)
			}
		}
		ends = append(ends, l.LogEndOffset())
	}
	return ends
}

var histClock = time.Unix(1_700_000_000, 0)

// histConfig: small segments, dense indexes.
var histConfig = Config{SegmentBytes: 2048, IndexIntervalBytes: 200, FileDeleteDelayMs: 60_000}

func openHistManager(t testing.TB, dir string) *Manager {
	return openTestManager(t, dir, func(o *ManagerOptions) {
		o.Now = func() time.Time { return histClock }
		o.CleanerDisabled = true
	})
}

func createHistLog(t testing.TB, m *Manager, topic string) *Log {
	t.Helper()
	l, err := m.CreateLog(topic, 0, [16]byte{4, 2}, histConfig)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// logState is what two logs holding the same history must agree on.
type logState struct {
	LEO, LogStart int64
	Epochs        []epochEntry
	Segments      []segState
	Producers     map[int64]producerEntry
	Ongoing       map[int64]int64
	MaxTimestamp  [2]int64
}

type segState struct {
	Base, Size, Next int64
	Offsets          []offsetEntry
	Times            []timeEntry // compared by sameTimeIndexes only: a cut segment keeps its roll's final entry
	Aborted          []abortedEntry
	MaxTimestamp     [2]int64
	LogBytes         []byte // the .log file
	IndexFile        []byte // the .index file
	TxnIndex         []byte // the .txnindex file, nil if none
}

func stateOf(t testing.TB, l *Log) logState {
	t.Helper()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := logState{
		LEO: l.mu.leo, LogStart: l.mu.logStartOffset,
		Epochs:       append([]epochEntry{}, l.mu.epochs...),
		Producers:    map[int64]producerEntry{},
		Ongoing:      map[int64]int64{},
		MaxTimestamp: [2]int64{l.mu.maxTimestamp, l.mu.offsetOfMaxTimestamp},
	}
	for id, e := range l.producers.entries {
		st.Producers[id] = *e.clone()
	}
	for id, f := range l.mu.ongoing {
		st.Ongoing[id] = f
	}
	for _, s := range l.mu.segments {
		if err := s.writeIndexTails(); err != nil {
			t.Fatal(err)
		}
		ss := segState{Base: s.base, Size: s.size, Next: s.next,
			Offsets: append([]offsetEntry{}, s.offsets...), Times: append([]timeEntry{}, s.times...),
			Aborted:      append([]abortedEntry{}, s.aborted...),
			MaxTimestamp: [2]int64{s.maxTimestamp, s.offsetOfMaxTimestamp}}
		var err error
		if ss.LogBytes, err = os.ReadFile(s.path(logSuffix)); err != nil {
			t.Fatal(err)
		}
		if ss.IndexFile, err = os.ReadFile(s.path(indexSuffix)); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(s.path(txnIndexSuffix)); err == nil && len(b) > 0 {
			ss.TxnIndex = b
		}
		if int64(len(ss.LogBytes)) != s.size {
			t.Fatalf("segment %d: file has %d bytes, size %d", s.base, len(ss.LogBytes), s.size)
		}
		if !bytes.Equal(ss.IndexFile, encodeOffsetEntries(nil, s.offsets)) {
			t.Fatalf("segment %d: .index file differs from the in-memory index", s.base)
		}
		if tb, err := os.ReadFile(s.path(timeIndexSuffix)); err != nil || !bytes.Equal(tb, encodeTimeEntries(nil, s.times)) {
			t.Fatalf("segment %d: .timeindex file differs from the in-memory index (%v)", s.base, err)
		}
		if ss.TxnIndex != nil && !bytes.Equal(ss.TxnIndex, encodeAbortedEntries(nil, s.aborted)) {
			t.Fatalf("segment %d: .txnindex differs from memory", s.base)
		}
		for _, e := range s.times {
			if s.base+int64(e.relOffset) >= s.next {
				t.Fatalf("segment %d: time index entry %+v past the segment end %d", s.base, e, s.next)
			}
		}
		st.Segments = append(st.Segments, ss)
	}
	return st
}

// diffStates reports the first difference between two log states.
func diffStates(t testing.TB, what string, got, want logState) {
	t.Helper()
	if got.LEO != want.LEO || got.LogStart != want.LogStart {
		t.Fatalf("%s: leo/log start %d/%d, want %d/%d", what, got.LEO, got.LogStart, want.LEO, want.LogStart)
	}
	if !reflect.DeepEqual(got.Epochs, want.Epochs) {
		t.Fatalf("%s: epochs %v, want %v", what, got.Epochs, want.Epochs)
	}
	if !reflect.DeepEqual(got.Producers, want.Producers) {
		t.Fatalf("%s: producers %+v, want %+v", what, got.Producers, want.Producers)
	}
	if !reflect.DeepEqual(got.Ongoing, want.Ongoing) {
		t.Fatalf("%s: open transactions %v, want %v", what, got.Ongoing, want.Ongoing)
	}
	if got.MaxTimestamp != want.MaxTimestamp {
		t.Fatalf("%s: max timestamp %v, want %v", what, got.MaxTimestamp, want.MaxTimestamp)
	}
	if len(got.Segments) != len(want.Segments) {
		t.Fatalf("%s: %d segments, want %d", what, len(got.Segments), len(want.Segments))
	}
	for i := range got.Segments {
		g, w := got.Segments[i], want.Segments[i]
		if g.Base != w.Base || g.Size != w.Size || g.Next != w.Next {
			t.Fatalf("%s: segment %d: base/size/next %d/%d/%d, want %d/%d/%d", what, i, g.Base, g.Size, g.Next, w.Base, w.Size, w.Next)
		}
		if !bytes.Equal(g.LogBytes, w.LogBytes) {
			t.Fatalf("%s: segment %d: .log bytes differ", what, g.Base)
		}
		if !reflect.DeepEqual(g.Offsets, w.Offsets) || !bytes.Equal(g.IndexFile, w.IndexFile) {
			t.Fatalf("%s: segment %d: offset index %v, want %v", what, g.Base, g.Offsets, w.Offsets)
		}
		if !reflect.DeepEqual(g.Aborted, w.Aborted) || !bytes.Equal(g.TxnIndex, w.TxnIndex) {
			t.Fatalf("%s: segment %d: aborted %v, want %v", what, g.Base, g.Aborted, w.Aborted)
		}
		if g.MaxTimestamp != w.MaxTimestamp {
			t.Fatalf("%s: segment %d: max timestamp %v, want %v", what, g.Base, g.MaxTimestamp, w.MaxTimestamp)
		}
	}
}

// reopen closes m cleanly and opens the dir again.
func reopenHist(t testing.TB, m *Manager, dir, topic string) (*Manager, *Log) {
	t.Helper()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = openHistManager(t, dir)
	l, ok := m.Log(topic, 0)
	if !ok {
		t.Fatal("log not loaded")
	}
	return m, l
}

// sameTimeIndexes checks that two logs' segments have equal time indexes.
func sameTimeIndexes(t testing.TB, what string, got, want logState) {
	t.Helper()
	for i := range got.Segments {
		if !reflect.DeepEqual(got.Segments[i].Times, want.Segments[i].Times) {
			t.Fatalf("%s: segment %d: time index %v, want %v", what, got.Segments[i].Base, got.Segments[i].Times, want.Segments[i].Times)
		}
	}
}
