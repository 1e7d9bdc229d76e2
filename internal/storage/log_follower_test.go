package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"testing"

	"samsa/internal/record"
)

// copyLog fetches src from the follower's log end offset to src's end in
// chunks of random size (as a replica fetcher would) and appends them to
// dst as a follower.
func copyLog(t *testing.T, src, dst *Log, rng *rand.Rand) int {
	t.Helper()
	chunks := 0
	for dst.LogEndOffset() < src.LogEndOffset() {
		b, err := src.Read(dst.LogEndOffset(), int32(200+rng.Intn(3000)), src.LogEndOffset(), true)
		if err != nil {
			t.Fatalf("read leader at %d: %v", dst.LogEndOffset(), err)
		}
		if len(b) == 0 {
			t.Fatalf("no bytes at %d < %d", dst.LogEndOffset(), src.LogEndOffset())
		}
		in := bytes.Clone(b)
		if _, err := dst.AppendAsFollower(b); err != nil {
			t.Fatalf("follower append at %d: %v", dst.LogEndOffset(), err)
		}
		if !bytes.Equal(in, b) {
			t.Fatal("AppendAsFollower modified its input")
		}
		chunks++
	}
	return chunks
}

// divergent is a history sharing history()'s first n ops, then going on
// under epoch 3 with other batches.
func divergent(n int) []histOp {
	ops := append([]histOp{}, history()[:n]...)
	for i := 0; i < 12; i++ {
		ops = append(ops, histOp{3, histIdempotent, 3}, histOp{3, histTxnData, 2}, histOp{3, histPlain, 1 + i%4})
		if i%3 == 2 {
			ops = append(ops, histOp{3, histAbort, 0})
		} else if i%3 == 1 {
			ops = append(ops, histOp{3, histCommit, 0})
		}
	}
	return ops
}

// TestLogFollowerCopy: a follower copying a leader's log in chunks ends
// with the same segments (bytes, offset indexes, transaction indexes),
// epochs and producer state; after a leader change it truncates at the
// divergence point found with EndOffsetForEpoch and copies the new
// leader's different batches; restarts keep all of it.
func TestLogFollowerCopy(t *testing.T) {
	dir := t.TempDir()
	m := openHistManager(t, dir)
	a := createHistLog(t, m, "a")
	ends := applyHistory(t, a, history())
	b := createHistLog(t, m, "b")
	rng := rand.New(rand.NewSource(1))
	if n := copyLog(t, a, b, rng); n < 5 {
		t.Fatalf("copied in %d chunks only", n)
	}
	if b.HighWatermark() != 0 {
		t.Fatalf("follower append moved the high watermark to %d", b.HighWatermark())
	}
	diffStates(t, "copy", stateOf(t, b), stateOf(t, a))
	sameTimeIndexes(t, "copy", stateOf(t, b), stateOf(t, a))
	if got, want := b.AbortedTransactions(0, b.LogEndOffset()), a.AbortedTransactions(0, a.LogEndOffset()); !equalAborted(got, want) || len(got) == 0 {
		t.Fatalf("aborted %v, want %v", got, want)
	}
	if len(stateOf(t, b).Segments) < 3 {
		t.Fatal("history too short to roll")
	}

	// A new leader c shares the history up to an offset inside epoch 2
	// and continues under epoch 3.
	n := len(ends) - 9
	c := createHistLog(t, m, "c")
	applyHistory(t, c, divergent(n))
	// The follower's divergence check (KIP-279): the leader's end offset
	// for the follower's latest epoch.
	epoch, end := c.EndOffsetForEpoch(b.LatestEpoch())
	if epoch != 2 || end != ends[n-1] {
		t.Fatalf("leader's end for epoch 2: (%d, %d), want (2, %d)", epoch, end, ends[n-1])
	}
	_, localEnd := b.EndOffsetForEpoch(epoch)
	if err := b.TruncateTo(min(end, localEnd)); err != nil {
		t.Fatal(err)
	}
	if b.LogEndOffset() != ends[n-1] {
		t.Fatalf("truncated to %d, want %d", b.LogEndOffset(), ends[n-1])
	}
	copyLog(t, c, b, rng)
	diffStates(t, "after divergence", stateOf(t, b), stateOf(t, c))

	m, b = reopenHist(t, m, dir, "b")
	defer m.Close()
	c, _ = m.Log("c", 0)
	diffStates(t, "after restart", stateOf(t, b), stateOf(t, c))
	if got, want := b.OngoingTransactions(), c.OngoingTransactions(); !equalOngoing(got, want) {
		t.Fatalf("ongoing %v, want %v", got, want)
	}
}

// leaderBatches appends batches to a scratch leader log and returns their
// bytes as stored, with the given leader epoch.
func leaderBatches(t *testing.T, m *Manager, topic string, epoch int32, specs ...batchSpec) [][]byte {
	t.Helper()
	l, err := m.CreateLog(topic, 0, [16]byte{1}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, s := range specs {
		b := makeBatch(t, s)
		if _, err := l.AppendAsLeader(b, epoch); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func withBase(b []byte, base int64) []byte {
	b = bytes.Clone(b)
	record.SetBaseOffset(b, base)
	return b
}

func TestLogAppendAsFollowerChecks(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	bs := leaderBatches(t, m, "leader", 4, batchSpec{n: 3}, batchSpec{n: 2}, batchSpec{n: 1})
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	badCRC := bytes.Clone(bs[0])
	badCRC[len(badCRC)-1] ^= 1
	magic1 := bytes.Clone(bs[0])
	magic1[16] = 1
	cases := []struct {
		name    string
		records []byte
		want    error
		leo     int64 // after
	}{
		{"empty: no-op", nil, nil, 0},
		{"contiguous", cat(bs[0], bs[1], bs[2]), nil, 6},
		{"partial last batch ignored", cat(bs[0], bs[1][:30]), nil, 3},
		{"first past the log end: a compaction gap", withBase(bs[0], 10), nil, 13},
		{"first below the log end", withBase(bs[0], 0), ErrNotContiguous, 0},
		{"offsets going back inside the request", cat(bs[0], withBase(bs[1], 1)), ErrNotContiguous, 0},
		{"CRC mismatch", badCRC, ErrCorruptMessage, 0},
		{"magic 1", magic1, ErrUnsupportedMagic, 0},
		{"batch larger than segment.bytes", bs[0], ErrMessageTooLarge, 0},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{}
			if c.want == ErrMessageTooLarge {
				cfg.SegmentBytes = int64(len(bs[0]) - 1)
			}
			l, err := m.CreateLog("f", int32(i), [16]byte{2}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if c.name == "first below the log end" {
				// The log already holds 0..2: a refetch of them is refused.
				if _, err := l.AppendAsFollower(bytes.Clone(bs[0])); err != nil {
					t.Fatal(err)
				}
				c.leo = 3
			}
			ch := l.Changed()
			_, err = l.AppendAsFollower(bytes.Clone(c.records))
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if l.LogEndOffset() != c.leo {
				t.Fatalf("log end offset %d, want %d", l.LogEndOffset(), c.leo)
			}
			if l.HighWatermark() != 0 {
				t.Fatalf("high watermark %d", l.HighWatermark())
			}
			select {
			case <-ch:
				if c.want != nil || len(c.records) == 0 {
					t.Fatal("Changed fired without an append")
				}
			default:
				if c.want == nil && len(c.records) > 0 && c.name != "first below the log end" {
					t.Fatal("Changed not fired")
				}
			}
			if c.want == nil && c.leo > 0 {
				if e := l.LatestEpoch(); e != 4 {
					t.Fatalf("latest epoch %d, want the batches' 4", e)
				}
			}
		})
	}
}

// TestLogAppendAsFollowerEpochs: the epoch cache follows the batches'
// partition leader epochs (LeaderEpochFileCache.assign), persisted.
func TestLogAppendAsFollowerEpochs(t *testing.T) {
	dir := t.TempDir()
	m := openTestManager(t, dir, nil)
	b0 := leaderBatches(t, m, "l0", 0, batchSpec{n: 2}, batchSpec{n: 2})
	l, err := m.CreateLog("f", 0, [16]byte{2}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	withEpoch := func(b []byte, base int64, epoch int32) []byte {
		b = withBase(b, base)
		binary.BigEndian.PutUint32(b[12:], uint32(epoch))
		return b
	}
	// epochs 0@0, 0@2 (no change), 3@4, 5@6 in one request.
	in := bytes.Join([][]byte{withEpoch(b0[0], 0, 0), withEpoch(b0[1], 2, 0), withEpoch(b0[0], 4, 3), withEpoch(b0[1], 6, 5)}, nil)
	if _, err := l.AppendAsFollower(in); err != nil {
		t.Fatal(err)
	}
	want := []epochEntry{{0, 0}, {3, 4}, {5, 6}}
	if !equalEpochs(l.mu.epochs, want) {
		t.Fatalf("epochs %v, want %v", l.mu.epochs, want)
	}
	m.Close()
	m = openTestManager(t, dir, nil)
	defer m.Close()
	l, _ = m.Log("f", 0)
	if !equalEpochs(l.mu.epochs, want) || l.LogEndOffset() != 8 {
		t.Fatalf("after restart: epochs %v leo %d", l.mu.epochs, l.LogEndOffset())
	}
}

// TestLogAppendAsFollowerStraddlingLogStart: an empty follower whose log
// starts inside the leader's first batch (DeleteRecords on the leader)
// restarts at that batch, keeping its log start offset
// (Partition.appendRecordsToFollowerOrFutureReplica).
func TestLogAppendAsFollowerStraddlingLogStart(t *testing.T) {
	dir := t.TempDir()
	m := openTestManager(t, dir, nil)
	bs := leaderBatches(t, m, "leader", 1, batchSpec{n: 10})
	l, err := m.CreateLog("f", 0, [16]byte{2}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateFullyAndStartAt(54); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendAsFollower(withBase(bs[0], 50)); err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != 60 || l.LogStartOffset() != 54 || l.HighWatermark() != 54 {
		t.Fatalf("leo %d start %d hw %d, want 60, 54, 54", l.LogEndOffset(), l.LogStartOffset(), l.HighWatermark())
	}
	got, err := l.Read(54, 1<<20, 60, true)
	if err != nil || !bytes.Equal(got, withBase(bs[0], 50)) {
		t.Fatalf("read 54: %v", err)
	}
	m.Close()
	m = openTestManager(t, dir, nil)
	defer m.Close()
	l, _ = m.Log("f", 0)
	if l.LogEndOffset() != 60 || l.LogStartOffset() != 54 {
		t.Fatalf("after restart: leo %d start %d", l.LogEndOffset(), l.LogStartOffset())
	}
}

// TestLogAppendAsFollowerFlushPolicy: flush.messages applies to follower
// appends (the recovery point follows).
func TestLogAppendAsFollowerFlushPolicy(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	bs := leaderBatches(t, m, "leader", 1, batchSpec{n: 2}, batchSpec{n: 2})
	for _, c := range []struct {
		flush  int64
		synced bool
	}{{1, true}, {100, false}} {
		l, err := m.CreateLog("f", int32(c.flush), [16]byte{2}, Config{FlushMessages: c.flush})
		if err != nil {
			t.Fatal(err)
		}
		before := l.FsyncCount()
		if _, err := l.AppendAsFollower(bytes.Join([][]byte{bs[0], withBase(bs[1], 2)}, nil)); err != nil {
			t.Fatal(err)
		}
		if synced := l.RecoveryPoint() == 4 && l.FsyncCount() > before; synced != c.synced {
			t.Fatalf("flush.messages=%d: recovery point %d, fsyncs %d", c.flush, l.RecoveryPoint(), l.FsyncCount()-before)
		}
	}
}

// TestLogTruncateToAcrossGap: truncating a log with a compaction gap at
// an offset inside the gap ends the log after the last batch kept (what a
// restart finds), not at the requested offset.
func TestLogTruncateToAcrossGap(t *testing.T) {
	dir := t.TempDir()
	m := openTestManager(t, dir, nil)
	bs := leaderBatches(t, m, "leader", 1, batchSpec{n: 3}, batchSpec{n: 3})
	l, err := m.CreateLog("f", 0, [16]byte{2}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	second := withBase(bs[1], 10)
	binary.BigEndian.PutUint32(second[12:], 2)
	if _, err := l.AppendAsFollower(bytes.Join([][]byte{bs[0], second}, nil)); err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != 13 || l.LatestEpoch() != 2 {
		t.Fatalf("leo %d epoch %d", l.LogEndOffset(), l.LatestEpoch())
	}
	for _, off := range []int64{11, 8} {
		if err := l.TruncateTo(off); err != nil {
			t.Fatal(err)
		}
		if l.LogEndOffset() != 3 || !equalEpochs(l.mu.epochs, []epochEntry{{1, 0}}) {
			t.Fatalf("truncate to %d: leo %d epochs %v, want 3 and [1@0]", off, l.LogEndOffset(), l.mu.epochs)
		}
	}
	m.Close()
	m = openTestManager(t, dir, nil)
	defer m.Close()
	l, _ = m.Log("f", 0)
	if l.LogEndOffset() != 3 || !equalEpochs(l.mu.epochs, []epochEntry{{1, 0}}) {
		t.Fatalf("after restart: leo %d epochs %v", l.LogEndOffset(), l.mu.epochs)
	}
}
