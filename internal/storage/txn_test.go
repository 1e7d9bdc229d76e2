package storage

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"samsa/internal/record"
)

// producer is a test producer: it numbers its batches.
type producer struct {
	id    int64
	epoch int16
	seq   int32
}

// batch builds the producer's next batch of "k=v" records.
func (p *producer) batch(t testing.TB, transactional bool, pairs ...string) []byte {
	t.Helper()
	if len(pairs) == 0 {
		pairs = []string{"k=v"}
	}
	b := kvBatch(t, record.CompressionNone, 1000, record.BuildOptions{
		Idempotent: true, ProducerID: p.id, ProducerEpoch: p.epoch, BaseSequence: p.seq, Transactional: transactional,
	}, kvs(pairs...))
	p.seq += int32(len(pairs))
	return b
}

func (p *producer) send(t testing.TB, l *Log, transactional bool, pairs ...string) AppendInfo {
	t.Helper()
	return mustAppend(t, l, p.batch(t, transactional, pairs...))
}

func (p *producer) end(t testing.TB, l *Log, commit bool) int64 {
	t.Helper()
	off, err := l.WriteTxnMarker(TxnMarker{ProducerID: p.id, ProducerEpoch: p.epoch, Commit: commit, CoordinatorEpoch: 0, LeaderEpoch: 1})
	if err != nil {
		t.Fatalf("marker for %d: %v", p.id, err)
	}
	return off
}

// catchUp moves the high watermark to the log end offset.
func catchUp(l *Log) { l.SetHighWatermark(l.LogEndOffset()) }

func wantAborted(t *testing.T, l *Log, from, to int64, want ...AbortedTxn) {
	t.Helper()
	got := l.AbortedTransactions(from, to)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("AbortedTransactions(%d, %d) = %+v, want %+v", from, to, got, want)
	}
}

func wantLSO(t *testing.T, l *Log, want int64) {
	t.Helper()
	if got := l.LastStableOffset(); got != want {
		t.Fatalf("last stable offset %d, want %d (hw %d)", got, want, l.HighWatermark())
	}
}

func TestTxnCommitAndAbort(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{})
	plain := &producer{id: 5}
	plain.send(t, l, false, "a=1", "b=2") // 0-1
	catchUp(l)
	wantLSO(t, l, 2)

	p := &producer{id: 1}
	p.send(t, l, true, "c=3", "d=4") // 2-3
	wantLSO(t, l, 2)                 // the HW is still 2
	catchUp(l)
	wantLSO(t, l, 2)
	if got := l.OngoingTransactions(); len(got) != 1 || got[0].ProducerID != 1 || got[0].FirstOffset != 2 || got[0].ProducerEpoch != 0 || got[0].LastTimestamp != 1001 {
		t.Fatalf("ongoing %+v", got)
	}
	p.send(t, l, true, "e=5") // 4, same transaction
	changed := l.Changed()
	if off := p.end(t, l, true); off != 5 {
		t.Fatalf("commit marker at %d", off)
	}
	select {
	case <-changed:
	default:
		t.Fatal("marker did not wake Changed waiters")
	}
	if got := l.OngoingTransactions(); len(got) != 0 {
		t.Fatalf("ongoing after commit %+v", got)
	}
	wantLSO(t, l, 2) // the marker is not below the HW yet
	catchUp(l)
	wantLSO(t, l, 6)
	wantAborted(t, l, 0, 100)

	p.send(t, l, true, "f=6") // 6
	p.send(t, l, true, "g=7") // 7
	if off := p.end(t, l, false); off != 8 {
		t.Fatalf("abort marker at %d", off)
	}
	catchUp(l)
	wantLSO(t, l, 9)
	abortedP1 := AbortedTxn{ProducerID: 1, FirstOffset: 6}
	wantAborted(t, l, 0, 100, abortedP1)
	wantAborted(t, l, 8, 9, abortedP1) // the marker's own offset overlaps
	wantAborted(t, l, 0, 6)            // ends before the transaction
	wantAborted(t, l, 9, 100)          // starts after its marker
	wantAborted(t, l, 7, 7)            // empty range

	// The marker batch is Kafka's: control, transactional, one record.
	b, err := l.Read(8, 1<<20, 9, true)
	if err != nil {
		t.Fatal(err)
	}
	bt, err := record.DecodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := record.ParseEndTxnMarker(&bt.Records[0])
	if err != nil || mk.Commit || !bt.Control() || !bt.Transactional() || bt.ProducerID != 1 || bt.BaseSequence != -1 || bt.PartitionLeaderEpoch != 1 || len(bt.Records) != 1 {
		t.Fatalf("marker batch %+v %+v %v", bt.Header, mk, err)
	}
	if _, err := os.Stat(filepath.Join(l.Dir(), segmentName(0, txnIndexSuffix))); err != nil {
		t.Fatalf("no transaction index: %v", err)
	}

	// The non-transactional path is unchanged, sequences continue after
	// markers.
	if info := plain.send(t, l, false, "z=1"); info.FirstOffset != 9 {
		t.Fatalf("%+v", info)
	}
	if info := p.send(t, l, false, "z=2"); info.FirstOffset != 10 {
		t.Fatalf("idempotent batch after the transaction: %+v", info)
	}
	catchUp(l)
	wantLSO(t, l, 11)
}

func TestTxnTwoProducersInterleaved(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{})
	p1, p2 := &producer{id: 1}, &producer{id: 2}
	p1.send(t, l, true) // 0
	p2.send(t, l, true) // 1
	p1.send(t, l, true) // 2
	p2.send(t, l, true) // 3
	catchUp(l)
	wantLSO(t, l, 0)
	p1.end(t, l, false) // 4: p2 still open: LSO in the index entry is 1
	catchUp(l)
	wantLSO(t, l, 1)
	p1.send(t, l, true) // 5: p1's next transaction
	p2.end(t, l, true)  // 6
	catchUp(l)
	wantLSO(t, l, 5)
	p1.end(t, l, false) // 7
	catchUp(l)
	wantLSO(t, l, 8)

	wantAborted(t, l, 0, 8, AbortedTxn{1, 0}, AbortedTxn{1, 5})
	wantAborted(t, l, 5, 6, AbortedTxn{1, 5})
	wantAborted(t, l, 3, 5, AbortedTxn{1, 0}) // 0..4 overlaps [3,5)
	l.mu.Lock()
	es := append([]abortedEntry(nil), l.mu.segments[0].aborted...)
	l.mu.Unlock()
	want := []abortedEntry{{1, 0, 4, 1}, {1, 5, 7, 8}}
	if !reflect.DeepEqual(es, want) {
		t.Fatalf("index entries %+v, want %+v", es, want)
	}
	// A read_committed fetch below the LSO: the records 0..7 are decided.
	if got := l.LastStableOffset(); got != l.HighWatermark() {
		t.Fatalf("lso %d hw %d", got, l.HighWatermark())
	}
}

func TestTxnFencing(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{})
	p := &producer{id: 1, epoch: 3}
	p.send(t, l, true) // 0
	leo := l.LogEndOffset()

	// Non-transactional batch while the transaction is open.
	if _, err := l.AppendAsLeader(p.batch(t, false), 1); !isErr(err, ErrInvalidTxnState) {
		t.Fatalf("non-transactional batch in a transaction: %v", err)
	}
	p.seq--
	// Markers from an older producer epoch are fenced.
	if _, err := l.WriteTxnMarker(TxnMarker{ProducerID: 1, ProducerEpoch: 2, Commit: true}); !isErr(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch marker: %v", err)
	}
	// A marker with a newer epoch (the coordinator bumped it on abort).
	if _, err := l.WriteTxnMarker(TxnMarker{ProducerID: 1, ProducerEpoch: 4, Commit: false, CoordinatorEpoch: 7}); err != nil {
		t.Fatal(err)
	}
	leo++
	// Coordinator epoch 6 < 7: fenced.
	if _, err := l.WriteTxnMarker(TxnMarker{ProducerID: 1, ProducerEpoch: 4, Commit: true, CoordinatorEpoch: 6}); !isErr(err, ErrTransactionCoordinatorFenced) {
		t.Fatalf("old coordinator epoch: %v", err)
	}
	// The producer's epoch is now 4: data from epoch 3 is fenced.
	if _, err := l.AppendAsLeader(p.batch(t, true), 1); !isErr(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch data: %v", err)
	}
	// A marker for a producer without a transaction is still written,
	// and an unknown producer's too; neither is indexed.
	if _, err := l.WriteTxnMarker(TxnMarker{ProducerID: 1, ProducerEpoch: 4, Commit: false, CoordinatorEpoch: 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.WriteTxnMarker(TxnMarker{ProducerID: 99, ProducerEpoch: 0, Commit: false}); err != nil {
		t.Fatal(err)
	}
	leo += 2
	if l.LogEndOffset() != leo {
		t.Fatalf("log end offset %d, want %d: a rejected request wrote something", l.LogEndOffset(), leo)
	}
	wantAborted(t, l, 0, 100, AbortedTxn{1, 0})
	// Clients cannot write control batches.
	ctl := record.BuildEndTxnMarker(0, 0, 1, 4, 0, record.EndTxnMarker{Commit: true})
	if _, err := l.AppendAsLeader(ctl, 1); !isErr(err, ErrInvalidRecord) {
		t.Fatalf("client control batch: %v", err)
	}
	if _, err := l.WriteTxnMarker(TxnMarker{ProducerID: -1}); !isErr(err, ErrInvalidRecord) {
		t.Fatalf("marker without producer: %v", err)
	}
	// Epoch 4 starts at sequence 0 and may open a new transaction.
	p2 := &producer{id: 1, epoch: 4}
	if info := p2.send(t, l, true); info.FirstOffset != leo {
		t.Fatalf("%+v", info)
	}
	if got := l.OngoingTransactions(); len(got) != 1 || got[0].ProducerEpoch != 4 || got[0].CoordinatorEpoch != 7 {
		t.Fatalf("ongoing %+v", got)
	}
}

func TestTxnAppendAsCoordinator(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("__consumer_offsets", 0, [16]byte{}, Config{})
	// The group coordinator writes every transactional offset commit
	// with sequence 0: no sequence checks, no duplicate detection.
	for i := 0; i < 3; i++ {
		p := &producer{id: 1, epoch: 2}
		info, err := l.AppendAsCoordinator(p.batch(t, true), 1)
		if err != nil || info.Duplicate || info.FirstOffset != int64(i) {
			t.Fatalf("commit %d: %+v %v", i, info, err)
		}
	}
	catchUp(l)
	wantLSO(t, l, 0)
	old := &producer{id: 1, epoch: 1}
	if _, err := l.AppendAsCoordinator(old.batch(t, true), 1); !isErr(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch: %v", err)
	}
	if _, err := l.WriteTxnMarker(TxnMarker{ProducerID: 1, ProducerEpoch: 2, Commit: true}); err != nil {
		t.Fatal(err)
	}
	catchUp(l)
	wantLSO(t, l, 4)
}

// TestTxnSurvivesCleanRestart: an open transaction and the aborted ones
// are restored from the producer snapshot and the .txnindex files.
func TestTxnSurvivesCleanRestart(t *testing.T) {
	dir := t.TempDir()
	m := openTestManager(t, dir, nil)
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: 400})
	p1, p2 := &producer{id: 1, epoch: 1}, &producer{id: 2}
	for i := 0; i < 6; i++ {
		p1.send(t, l, true, "a=1", "b=2")
		p1.end(t, l, i%2 == 0)
	}
	p2.send(t, l, true) // stays open
	p1.send(t, l, true)
	catchUp(l)
	lso, leo := l.LastStableOffset(), l.LogEndOffset()
	aborted := l.AbortedTransactions(0, leo)
	ongoing := l.OngoingTransactions()
	if len(aborted) != 3 || len(ongoing) != 2 || len(segmentBases(l)) < 3 {
		t.Fatalf("setup: aborted %+v ongoing %+v segments %v", aborted, ongoing, segmentBases(l))
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(filesWithSuffix(t, filepath.Join(dir, "t-0"), txnIndexSuffix)); n != 3 {
		t.Fatalf("%d .txnindex files, want 3 (one per segment holding an abort marker)", n)
	}

	m = openTestManager(t, dir, nil)
	defer m.Close()
	l, _ = m.Log("t", 0)
	if got := l.OngoingTransactions(); !reflect.DeepEqual(got, ongoing) {
		t.Fatalf("ongoing after restart %+v, want %+v", got, ongoing)
	}
	if got := l.AbortedTransactions(0, leo); !reflect.DeepEqual(got, aborted) {
		t.Fatalf("aborted after restart %+v, want %+v", got, aborted)
	}
	if l.HighWatermark() != leo {
		t.Fatalf("hw %d", l.HighWatermark())
	}
	wantLSO(t, l, lso)
	p2.end(t, l, false)
	p1.end(t, l, true)
	catchUp(l)
	wantLSO(t, l, l.LogEndOffset())
	if got := l.AbortedTransactions(0, l.LogEndOffset()); len(got) != 4 || got[3].ProducerID != 2 {
		t.Fatalf("aborted %+v", got)
	}
}

// TestTxnCrashRecovery: after kill -9 the open transactions come back
// from the replay and the transaction indexes are rebuilt, whatever
// happened to them and to the log's tail.
func TestTxnCrashRecovery(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, pdir, activeLog string, lastSize int)
		torn   bool // the last batch (p2's open transaction start) is lost
	}{
		{"intact", func(*testing.T, string, string, int) {}, false},
		{"torn tail", func(t *testing.T, _, p string, n int) { truncateBy(t, p, int64(n/2)) }, true},
		// A missing .txnindex means "no aborted transaction" (it is
		// created lazily, as in Kafka), so only damage is detected.
		{"txnindex torn", func(t *testing.T, pdir, _ string, _ int) {
			for _, f := range filesWithSuffix(t, pdir, txnIndexSuffix) {
				truncateBy(t, filepath.Join(pdir, f), 5)
			}
		}, false},
		{"txnindex garbage", func(t *testing.T, pdir, _ string, _ int) {
			for _, f := range filesWithSuffix(t, pdir, txnIndexSuffix) {
				os.WriteFile(filepath.Join(pdir, f), []byte("garbage"), 0o644)
			}
		}, false},
		{"snapshots removed", func(t *testing.T, pdir, _ string, _ int) {
			for _, f := range filesWithSuffix(t, pdir, snapshotSuffix) {
				os.Remove(filepath.Join(pdir, f))
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			m := openTestManager(t, dir, nil)
			l, _ := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: 400})
			p1, p2 := &producer{id: 1}, &producer{id: 2}
			p1.send(t, l, true, "a=1") // p1 stays open from offset 0
			for i := 0; i < 8; i++ {
				p2.send(t, l, true, "b=1", "c=2")
				p2.end(t, l, i%3 != 0)
			}
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
			m.Checkpoint()
			// After the checkpoint: one more abort, then p2 opens again.
			p2.send(t, l, true, "d=1")
			p2.end(t, l, false)
			last := p2.batch(t, true, "e=1")
			p2Open := mustAppend(t, l, last).FirstOffset
			catchUp(l)
			aborted := l.AbortedTransactions(0, l.LogEndOffset())
			leo := l.LogEndOffset()
			if len(aborted) != 4 || len(segmentBases(l)) < 3 {
				t.Fatalf("setup: aborted %+v segments %v", aborted, segmentBases(l))
			}
			path, _ := activeLogPath(t, l)
			m.abandon()
			tc.damage(t, filepath.Join(dir, "t-0"), path, len(last))

			m = openTestManager(t, dir, nil)
			defer m.Close()
			l, _ = m.Log("t", 0)
			wantOngoing := []OngoingTxn{{ProducerID: 1, FirstOffset: 0, LastTimestamp: 1000, CoordinatorEpoch: -1}}
			if tc.torn {
				if l.LogEndOffset() != leo-1 {
					t.Fatalf("leo %d, want %d", l.LogEndOffset(), leo-1)
				}
			} else {
				wantOngoing = append(wantOngoing, OngoingTxn{ProducerID: 2, FirstOffset: p2Open, LastTimestamp: 1000, CoordinatorEpoch: 0})
			}
			if got := l.OngoingTransactions(); !reflect.DeepEqual(got, wantOngoing) {
				t.Fatalf("ongoing %+v, want %+v", got, wantOngoing)
			}
			if got := l.AbortedTransactions(0, leo); !reflect.DeepEqual(got, aborted) {
				t.Fatalf("aborted %+v, want %+v", got, aborted)
			}
			catchUp(l)
			wantLSO(t, l, 0)
			// The rebuilt indexes are on disk: a clean restart reads them.
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			m = openTestManager(t, dir, nil)
			l, _ = m.Log("t", 0)
			if got := l.AbortedTransactions(0, leo); !reflect.DeepEqual(got, aborted) {
				t.Fatalf("aborted after a clean restart %+v, want %+v", got, aborted)
			}
		})
	}
}

func TestTxnIndexEncoding(t *testing.T) {
	es := []abortedEntry{{producerID: 7, first: 10, last: 20, lastStable: 21}, {producerID: 1 << 40, first: 0, last: 30, lastStable: 5}}
	b := encodeAbortedEntries(nil, es)
	if len(b) != 2*txnEntrySize || b[0] != 0 || b[1] != 0 {
		t.Fatalf("%x", b)
	}
	got, err := decodeTxnIndex(b)
	if err != nil || !reflect.DeepEqual(got, es) {
		t.Fatalf("%+v %v", got, err)
	}
	for name, bad := range map[string][]byte{
		"short":       b[:txnEntrySize+3],
		"version":     append([]byte{0, 1}, b[2:txnEntrySize]...),
		"first>last":  encodeAbortedEntries(nil, []abortedEntry{{1, 9, 8, 10}}),
		"negative id": encodeAbortedEntries(nil, []abortedEntry{{-1, 1, 2, 3}}),
	} {
		if _, err := decodeTxnIndex(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestTxnRetentionDeletesTxnIndex(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: 300, FileDeleteDelayMs: 0, RetentionMs: -1})
	p := &producer{id: 1}
	for i := 0; i < 6; i++ {
		p.send(t, l, true, "a=1")
		p.end(t, l, false)
	}
	catchUp(l)
	pdir := l.Dir()
	before := filesWithSuffix(t, pdir, txnIndexSuffix)
	if len(before) < 2 {
		t.Fatalf("txnindex files %v", before)
	}
	bases := segmentBases(l)
	if _, err := l.DeleteRecordsBefore(bases[2]); err != nil {
		t.Fatal(err)
	}
	after := filesWithSuffix(t, pdir, txnIndexSuffix)
	for _, f := range after {
		if strings.HasPrefix(f, segmentName(bases[0], "")) || strings.HasPrefix(f, segmentName(bases[1], "")) {
			t.Fatalf("txnindex of a deleted segment remains: %v", after)
		}
	}
	if len(after) == len(before) || len(filesWithSuffix(t, pdir, deletedSuffix)) != 0 {
		t.Fatalf("before %v after %v", before, after)
	}
	if got := l.AbortedTransactions(bases[2], l.LogEndOffset()); len(got) == 0 || got[0].FirstOffset < bases[2] {
		t.Fatalf("aborted %+v", got)
	}
}

// TestTxnCleanerBoundedByLSO: compaction never passes the last stable
// offset, aborted records never shadow committed ones and are dropped.
func TestTxnCleanerBoundedByLSO(t *testing.T) {
	m := cleanerManager(t, t.TempDir(), nil)
	defer m.Close()
	b := kvBatch(t, record.CompressionNone, 1, record.BuildOptions{}, kvs("a=1"))
	l, _ := m.CreateLog("c", 0, [16]byte{}, compactConfig(oneBatchPerSegment(len(b))+70))
	committed := &producer{id: 1}
	aborter := &producer{id: 2}
	open := &producer{id: 3}
	committed.send(t, l, true, "k=committed") // 0
	committed.end(t, l, true)                 // 1
	aborter.send(t, l, true, "k=aborted")     // 2
	aborter.end(t, l, false)                  // 3
	open.send(t, l, true, "x=open")           // 4: stays open
	for i := 0; i < 6; i++ {
		mustAppend(t, l, kvBatch(t, record.CompressionNone, 1, record.BuildOptions{}, kvs("x=plain"))) // 5..10
	}
	catchUp(l)
	wantLSO(t, l, 4)
	if n, err := m.CleanNow(); n != 1 || err != nil {
		t.Fatalf("cleaned %d: %v", n, err)
	}
	l.mu.Lock()
	cleanTo := l.mu.cleanerOffset
	l.mu.Unlock()
	if cleanTo > 4 {
		t.Fatalf("cleaned up to %d, past the LSO 4", cleanTo)
	}
	got := map[int64]string{}
	for _, r := range readRecords(t, l) {
		got[r.offset] = r.key + "=" + string(r.value)
	}
	if got[0] != "k=committed" {
		t.Fatalf("the committed record was shadowed by the aborted one: %v", got)
	}
	if _, ok := got[2]; ok {
		t.Fatalf("aborted record kept: %v", got)
	}
	for off := int64(4); off < 11; off++ {
		if _, ok := got[off]; !ok {
			t.Fatalf("offset %d above the LSO was compacted: %v", off, got)
		}
	}
	wantAborted(t, l, 0, 11, AbortedTxn{2, 2})
	// Once decided, the rest can be cleaned.
	open.end(t, l, true)
	catchUp(l)
	for i := 0; i < 4; i++ {
		mustAppend(t, l, kvBatch(t, record.CompressionNone, 1, record.BuildOptions{}, kvs("x=plain")))
	}
	catchUp(l)
	if n, err := m.CleanNow(); n != 1 || err != nil {
		t.Fatalf("second cleaning %d: %v", n, err)
	}
	got = map[int64]string{}
	for _, r := range readRecords(t, l) {
		got[r.offset] = r.key + "=" + string(r.value)
	}
	if got[0] != "k=committed" || got[4] != "" {
		t.Fatalf("after the second cleaning: %v", got)
	}
	wantAborted(t, l, 0, l.LogEndOffset(), AbortedTxn{2, 2})
}

// TestTxnConcurrentAppendsAndMarkers runs producers, markers and readers
// of the LSO together (for -race).
func TestTxnConcurrentAppendsAndMarkers(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: 2000})
	var wg sync.WaitGroup
	for id := int64(1); id <= 4; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &producer{id: id}
			for i := 0; i < 30; i++ {
				if _, err := l.AppendAsLeader(p.batch(t, true, "a=1"), 1); err != nil {
					t.Error(err)
					return
				}
				if _, err := l.WriteTxnMarker(TxnMarker{ProducerID: id, Commit: i%2 == 0}); err != nil {
					t.Error(err)
					return
				}
				catchUp(l)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			lso, hw := l.LastStableOffset(), l.HighWatermark()
			if lso > hw {
				t.Errorf("lso %d > hw %d", lso, hw)
			}
			_ = l.AbortedTransactions(0, lso)
			_ = l.OngoingTransactions()
		}
	}()
	wg.Wait()
	catchUp(l)
	wantLSO(t, l, l.LogEndOffset())
	if got := l.AbortedTransactions(0, l.LogEndOffset()); len(got) != 60 {
		t.Fatalf("%d aborted transactions, want 60", len(got))
	}
}

// TestTxnSnapshotVersions: version 2 keeps the transaction fields;
// version 1 files (written before transactions) still load.
func TestTxnSnapshotVersions(t *testing.T) {
	ps := producerState{entries: map[int64]*producerEntry{}}
	h := record.Header{ProducerID: 4, ProducerEpoch: 2, BaseSequence: 0, BaseOffset: 7, MaxTimestamp: 99, Attributes: 0x10}
	ps.apply(&h, nil)
	m, err := decodeProducerSnapshot(ps.encode())
	if err != nil {
		t.Fatal(err)
	}
	if e := m[4]; e == nil || e.txnFirst != 7 || e.coordinatorEpoch != -1 || e.lastTimestamp != 99 || e.epoch != 2 {
		t.Fatalf("%+v", m[4])
	}
	mk := record.EndTxnMarker{Commit: false, CoordinatorEpoch: 3}
	ctl := record.Header{ProducerID: 4, ProducerEpoch: 2, BaseSequence: -1, BaseOffset: 9, Attributes: 0x30}
	if c, ok := ps.apply(&ctl, &mk); !ok || c != (completedTxn{producerID: 4, first: 7, last: 9}) {
		t.Fatalf("completed %+v %v", c, ok)
	}
	if e := ps.entries[4]; e.txnFirst != -1 || e.coordinatorEpoch != 3 {
		t.Fatalf("%+v", e)
	}

	// Version 1: producerId, epoch, n, batches.
	v1 := []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 1}
	v1 = binary.BigEndian.AppendUint64(v1, 12)
	v1 = binary.BigEndian.AppendUint16(v1, 5)
	v1 = append(v1, 1)
	for _, x := range []uint32{0, 2} {
		v1 = binary.BigEndian.AppendUint32(v1, x)
	}
	v1 = binary.BigEndian.AppendUint64(v1, 40)
	v1 = binary.BigEndian.AppendUint64(v1, 42)
	binary.BigEndian.PutUint32(v1[2:], crc32.Checksum(v1[6:], castagnoli))
	m, err = decodeProducerSnapshot(v1)
	if err != nil {
		t.Fatal(err)
	}
	if e := m[12]; e == nil || e.epoch != 5 || e.txnFirst != -1 || e.coordinatorEpoch != -1 || len(e.batches) != 1 || e.batches[0].lastOffset != 42 {
		t.Fatalf("%+v", m[12])
	}
}
