package storage

import (
	"os"
	"path/filepath"
	"testing"

	"samsa/internal/record"
)

func FuzzParseOffsetCheckpoint(f *testing.F) {
	f.Add([]byte("0\n2\na 0 5\nb 1 7\n"))
	f.Add([]byte("0\n0\n"))
	f.Add([]byte("1\n1\nx y z\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseOffsetCheckpoint(b)
		if err != nil {
			return
		}
		again, err := ParseOffsetCheckpoint(EncodeOffsetCheckpoint(m))
		if err != nil || len(again) != len(m) {
			t.Fatalf("re-encoding does not round-trip: %v", err)
		}
		_, _ = parseLeaderEpochCheckpoint(b)
		_, _ = parsePartitionMetadata(b)
	})
}

func FuzzDecodeProducerSnapshot(f *testing.F) {
	ps := producerState{entries: map[int64]*producerEntry{}}
	h := record.Header{ProducerID: 3, ProducerEpoch: 1, BaseSequence: 0, LastOffsetDelta: 2}
	ps.apply(&h, nil)
	th := record.Header{ProducerID: 4, ProducerEpoch: 0, BaseSequence: 0, BaseOffset: 3, Attributes: 0x10}
	ps.apply(&th, nil)
	f.Add(ps.encode())
	f.Add([]byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeProducerSnapshot(b)
		if err != nil {
			return
		}
		again, err := decodeProducerSnapshot((&producerState{entries: m}).encode())
		if err != nil || len(again) != len(m) {
			t.Fatalf("re-encoding does not round-trip: %v", err)
		}
	})
}

// FuzzDecodeTxnIndex decodes arbitrary bytes as a .txnindex file: no
// panic, and what decodes re-encodes to the same bytes.
func FuzzDecodeTxnIndex(f *testing.F) {
	f.Add(encodeAbortedEntries(nil, []abortedEntry{{producerID: 1, first: 0, last: 5, lastStable: 6}, {producerID: 2, first: 3, last: 9, lastStable: 4}}))
	f.Add([]byte{})
	f.Add(make([]byte, txnEntrySize))
	f.Add([]byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := decodeTxnIndex(b)
		if err != nil {
			return
		}
		if again := encodeAbortedEntries(nil, es); string(again) != string(b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// FuzzRecoverSegment writes the input as the only segment of a log (after
// an unclean stop) and opens the manager: it must not panic, and the
// recovered log must read back as whole valid batches.
func FuzzRecoverSegment(f *testing.F) {
	var seed []byte
	for i := 0; i < 3; i++ {
		b, _ := record.Build(record.BuildOptions{BaseOffset: int64(i * 2)}, []record.Record{{Value: []byte("a")}, {Value: []byte("b")}})
		seed = append(seed, b...)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-7])
	f.Add(append(append([]byte{}, seed...), 0, 0, 0))
	f.Add([]byte{})
	// Transactions: data, an abort marker, an open transaction.
	var txn []byte
	for i, o := range []record.BuildOptions{
		{BaseOffset: 0, Idempotent: true, ProducerID: 1, Transactional: true},
		{BaseOffset: 1, Idempotent: true, ProducerID: 2, Transactional: true},
	} {
		b, _ := record.Build(o, []record.Record{{Key: []byte{byte(i)}, Value: []byte("v")}})
		txn = append(txn, b...)
	}
	txn = append(txn, record.BuildEndTxnMarker(2, 0, 1, 0, 5, record.EndTxnMarker{})...)
	f.Add(txn)
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		pdir := filepath.Join(dir, "t-0")
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pdir, segmentName(0, logSuffix)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := OpenManager(ManagerOptions{Dirs: []string{dir}, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		l, ok := m.Log("t", 0)
		if !ok {
			return
		}
		leo := l.LogEndOffset()
		l.SetHighWatermark(leo)
		if lso := l.LastStableOffset(); lso < l.LogStartOffset() || lso > leo {
			t.Fatalf("last stable offset %d outside [%d, %d]", lso, l.LogStartOffset(), leo)
		}
		_ = l.AbortedTransactions(0, leo)
		var from int64
		for from < leo {
			out, err := l.Read(from, 1<<20, leo, true)
			if err != nil || len(out) == 0 {
				t.Fatalf("read %d of %d: %v", from, leo, err)
			}
			if err := record.Split(out, func(_ []byte, h record.Header) error { from = h.NextOffset(); return nil }); err != nil {
				t.Fatalf("recovered log holds an invalid batch: %v", err)
			}
		}
	})
}

// FuzzCleanerFilter runs the cleaner's batch filter over arbitrary
// segment bytes: it must not panic, and every batch it writes must be a
// valid batch that decodes, with the input's offsets.
func FuzzCleanerFilter(f *testing.F) {
	defer record.LimitDecompression(1 << 20)()
	var seed []byte
	for i, codec := range []record.Compression{record.CompressionNone, record.CompressionGzip, record.CompressionSnappy, record.CompressionLZ4, record.CompressionZstd} {
		b, _ := record.Build(record.BuildOptions{BaseOffset: int64(i * 3), Compression: codec, Idempotent: i == 2, ProducerID: 1},
			[]record.Record{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b")}, {Value: []byte("keyless")}})
		seed = append(seed, b...)
	}
	f.Add(seed, int64(0))
	f.Add(seed[:len(seed)-3], int64(5))
	f.Fuzz(func(t *testing.T, b []byte, now int64) {
		path := filepath.Join(t.TempDir(), "seg")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		flt := batchFilter{
			offsets:   map[string]int64{"a": 4, "b": 1 << 40},
			producers: map[int64]int64{1: 8},
			now:       now, deleteRetentionMs: 10,
		}
		_ = forEachBatch(&segment{f: fh}, int64(len(b)), func(raw []byte, h *record.Header) error {
			out, err := flt.filter(raw, h)
			if err != nil || out == nil {
				return nil
			}
			oh, err := record.Validate(out)
			if err != nil {
				t.Fatalf("filter wrote an invalid batch: %v", err)
			}
			if oh.BaseOffset != h.BaseOffset || oh.LastOffsetDelta != h.LastOffsetDelta {
				t.Fatalf("offsets changed: %+v -> %+v", h, oh)
			}
			if _, err := record.DecodeBatch(out); err != nil {
				t.Fatalf("filtered batch does not decode: %v", err)
			}
			return nil
		})
	})
}

// FuzzLogAppendAsFollower feeds arbitrary bytes, as a leader's fetch
// response would carry them, to AppendAsFollower on a log holding two
// batches: it must not panic; a rejected append changes nothing; an
// accepted one leaves a log whose batches read back valid, that
// truncates back to where it was, and that reopens with the same end.
func FuzzLogAppendAsFollower(f *testing.F) {
	var seed []byte
	for i, o := range []record.BuildOptions{
		{BaseOffset: 2, PartitionLeaderEpoch: 1},
		{BaseOffset: 4, Idempotent: true, ProducerID: 1, Transactional: true, PartitionLeaderEpoch: 2},
	} {
		b, _ := record.Build(o, []record.Record{{Key: []byte{byte(i)}, Value: []byte("v")}, {Value: []byte("w")}})
		seed = append(seed, b...)
	}
	seed = append(seed, record.BuildEndTxnMarker(6, 2, 1, 0, 5, record.EndTxnMarker{})...)
	f.Add(seed)
	f.Add(seed[:len(seed)-9])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		m, err := OpenManager(ManagerOptions{Dirs: []string{dir}, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		l, err := m.CreateLog("t", 0, [16]byte{1}, Config{SegmentBytes: 1 << 12})
		if err != nil {
			t.Fatal(err)
		}
		first, _ := record.Build(record.BuildOptions{PartitionLeaderEpoch: 1}, []record.Record{{Value: []byte("a")}, {Value: []byte("b")}})
		if _, err := l.AppendAsFollower(first); err != nil {
			t.Fatal(err)
		}
		if _, err := l.AppendAsFollower(b); err != nil {
			if l.LogEndOffset() != 2 {
				t.Fatalf("rejected append (%v) moved the log end to %d", err, l.LogEndOffset())
			}
		}
		leo := l.LogEndOffset()
		for from := int64(0); from < leo; {
			out, err := l.Read(from, 1<<20, leo, true)
			if err != nil {
				t.Fatalf("read %d of %d: %v", from, leo, err)
			}
			if len(out) == 0 {
				break // a compaction-style gap up to the end
			}
			if err := record.Split(out, func(_ []byte, h record.Header) error { from = h.NextOffset(); return nil }); err != nil {
				t.Fatalf("stored batch invalid: %v", err)
			}
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		m, err = OpenManager(ManagerOptions{Dirs: []string{dir}, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		l, _ = m.Log("t", 0)
		if l.LogEndOffset() != leo {
			t.Fatalf("reopened at %d, was %d", l.LogEndOffset(), leo)
		}
		if err := l.TruncateTo(2); err != nil {
			t.Fatal(err)
		}
		if l.LogEndOffset() != 2 || l.LatestEpoch() != 1 {
			t.Fatalf("truncated to %d, latest epoch %d", l.LogEndOffset(), l.LatestEpoch())
		}
	})
}
