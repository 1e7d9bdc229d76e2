package storage

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"samsa/internal/record"
)

func TestLogAppendReadAcrossSegmentRolls(t *testing.T) {
	dir := t.TempDir()
	m := openTestManager(t, dir, nil)
	l, err := m.CreateLog("orders", 3, [16]byte{1, 2, 3}, Config{SegmentBytes: 4096, IndexIntervalBytes: 300})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for i := 0; i < 100; i++ {
		b := makeBatch(t, batchSpec{n: 1 + i%4, valueSize: 50, ts: int64(1000 + i*10)})
		info := mustAppend(t, l, b)
		if info.FirstOffset != offsetOf(want) || info.LastOffset != info.FirstOffset+int64(1+i%4)-1 || info.LogAppendTime != -1 {
			t.Fatalf("append %d: %+v", i, info)
		}
		want = append(want, bytes.Clone(b))
	}
	leo := offsetOf(want)
	if l.LogEndOffset() != leo || l.HighWatermark() != 0 {
		t.Fatalf("leo %d hw %d", l.LogEndOffset(), l.HighWatermark())
	}
	l.SetHighWatermark(leo)
	l.mu.Lock()
	nseg := len(l.mu.segments)
	l.mu.Unlock()
	if nseg < 5 {
		t.Fatalf("only %d segments", nseg)
	}
	// Every offset reads back the batch containing it, byte-for-byte.
	for off := int64(0); off < leo; off++ {
		b, err := l.Read(off, 1, leo, true)
		if err != nil {
			t.Fatal(err)
		}
		bt, _, rest, err := record.Next(b)
		if err != nil || len(rest) != 0 {
			t.Fatalf("read %d: %v, %d extra bytes", off, err, len(rest))
		}
		idx := batchIndexOf(want, off)
		if !bytes.Equal(bt, want[idx]) {
			t.Fatalf("offset %d: batch differs from appended batch %d", off, idx)
		}
	}
	if hs := readAll(t, l, 0); len(hs) != len(want) {
		t.Fatalf("read %d batches, want %d", len(hs), len(want))
	}
	// Reopen cleanly and again.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = openTestManager(t, dir, nil)
	defer m.Close()
	l, ok := m.Log("orders", 3)
	if !ok || l.LogEndOffset() != leo || l.HighWatermark() != leo || l.TopicID() != [16]byte{1, 2, 3} {
		t.Fatalf("reopened: ok=%v leo=%d hw=%d", ok, l.LogEndOffset(), l.HighWatermark())
	}
	if hs := readAll(t, l, 0); len(hs) != len(want) {
		t.Fatalf("after reopen read %d batches, want %d", len(hs), len(want))
	}
	ents, _ := os.ReadDir(l.Dir())
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	for _, n := range []string{"00000000000000000000.log", "00000000000000000000.index", "00000000000000000000.timeindex", "partition.metadata"} {
		if _, err := os.Stat(filepath.Join(l.Dir(), n)); err != nil {
			t.Errorf("missing %s (have %v)", n, names)
		}
	}
}

func offsetOf(bs [][]byte) int64 {
	var n int64
	for _, b := range bs {
		h, _ := record.ParseHeader(b)
		n += int64(h.RecordCount)
	}
	return n
}

func batchIndexOf(bs [][]byte, off int64) int {
	var n int64
	for i, b := range bs {
		h, _ := record.ParseHeader(b)
		n += int64(h.RecordCount)
		if off < n {
			return i
		}
	}
	return -1
}

func TestLogReadLimits(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{})
	var sizes []int
	for i := 0; i < 5; i++ {
		b := makeBatch(t, batchSpec{n: 2, valueSize: 100})
		sizes = append(sizes, len(b))
		mustAppend(t, l, b)
	}
	for _, tc := range []struct {
		name      string
		offset    int64
		maxBytes  int32
		maxOffset int64
		minOne    bool
		wantBytes int
		wantErr   error
	}{
		{"all", 0, 1 << 20, 10, false, sizes[0] * 5, nil},
		{"whole batches only", 0, int32(sizes[0]*2 + 10), 10, false, sizes[0] * 2, nil},
		{"mid-batch offset", 3, 1 << 20, 10, false, sizes[0] * 4, nil},
		{"max offset cuts", 0, 1 << 20, 4, false, sizes[0] * 2, nil},
		{"max offset inside a batch", 0, 1 << 20, 5, false, sizes[0] * 3, nil},
		{"max offset at start", 4, 1 << 20, 4, false, 0, nil},
		{"too small without minOne", 0, 10, 10, false, 0, nil},
		{"too small with minOne", 0, 10, 10, true, sizes[0], nil},
		{"at log end", 10, 100, 10, true, 0, nil},
		{"past log end", 11, 100, 20, true, 0, ErrOffsetOutOfRange},
		{"negative", -1, 100, 20, true, 0, ErrOffsetOutOfRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := l.Read(tc.offset, tc.maxBytes, tc.maxOffset, tc.minOne)
			if !isErr(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if len(b) != tc.wantBytes {
				t.Fatalf("%d bytes, want %d", len(b), tc.wantBytes)
			}
		})
	}
}

func TestSegmentOffsetIndexLookup(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{IndexIntervalBytes: 1})
	var positions []int64
	var pos int64
	for i := 0; i < 20; i++ {
		b := makeBatch(t, batchSpec{n: 3, valueSize: 10, ts: int64(i * 100)})
		positions = append(positions, pos)
		pos += int64(len(b))
		mustAppend(t, l, b)
	}
	seg := l.mu.segments[0]
	// Interval 1: every batch but the first is indexed, with its last offset.
	if len(seg.offsets) != 19 {
		t.Fatalf("%d index entries", len(seg.offsets))
	}
	raw, _ := os.ReadFile(filepath.Join(l.Dir(), "00000000000000000000.index"))
	if len(raw) != 19*8 || binary.BigEndian.Uint32(raw) != 5 || int64(binary.BigEndian.Uint32(raw[4:])) != positions[1] {
		t.Fatalf("index file %x", raw[:16])
	}
	for _, tc := range []struct {
		offset int64
		want   int64
	}{{0, 0}, {4, 0}, {5, positions[1]}, {6, positions[1]}, {8, positions[2]}, {59, positions[19]}, {1000, positions[19]}} {
		l.mu.Lock()
		got := seg.lookupLocked(tc.offset)
		l.mu.Unlock()
		if got != tc.want {
			t.Errorf("lookup(%d) = %d, want %d", tc.offset, got, tc.want)
		}
	}
	traw, _ := os.ReadFile(filepath.Join(l.Dir(), "00000000000000000000.timeindex"))
	if len(traw) != 19*12 || int64(binary.BigEndian.Uint64(traw)) != 102 || binary.BigEndian.Uint32(traw[8:]) != 5 {
		t.Fatalf("time index file %x", traw[:24])
	}
}

func TestLogOffsetForTimestamp(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{IndexIntervalBytes: 100, SegmentBytes: 2000})
	// Batch i holds 4 records with timestamps 1000*i + 0..3, offsets 4i..4i+3.
	for i := 0; i < 30; i++ {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 4, valueSize: 30, ts: int64(1000 * i), codec: record.Compression(i % 5)}))
	}
	for _, tc := range []struct {
		ts         int64
		wantOffset int64
		wantTs     int64
		found      bool
	}{
		{-5, 0, 0, true}, {0, 0, 0, true}, {2, 2, 2, true}, {3, 3, 3, true}, {4, 4, 1000, true},
		{15001, 61, 15001, true}, {29003, 119, 29003, true}, {29004, -1, -1, false},
	} {
		off, ts, found, err := l.OffsetForTimestamp(tc.ts)
		if err != nil || off != tc.wantOffset || ts != tc.wantTs || found != tc.found {
			t.Errorf("OffsetForTimestamp(%d) = %d, %d, %v, %v; want %d, %d, %v", tc.ts, off, ts, found, err, tc.wantOffset, tc.wantTs, tc.found)
		}
	}
	if off, ts := l.MaxTimestamp(); off != 119 || ts != 29003 {
		t.Fatalf("MaxTimestamp = %d, %d", off, ts)
	}
}

func TestLogMaxTimestampRecordOffset(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{})
	if off, _ := l.MaxTimestamp(); off != -1 {
		t.Fatalf("empty log: %d", off)
	}
	b, _ := record.Build(record.BuildOptions{}, []record.Record{{Timestamp: 5}, {Timestamp: 50}, {Timestamp: 7}})
	mustAppend(t, l, b)
	mustAppend(t, l, makeBatch(t, batchSpec{n: 1, ts: 10}))
	if off, ts := l.MaxTimestamp(); off != 1 || ts != 50 {
		t.Fatalf("MaxTimestamp = %d, %d; want 1, 50", off, ts)
	}
}

func TestLogAppendRejectsAtomically(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{MaxMessageBytes: 2000})
	good := makeBatch(t, batchSpec{n: 2, valueSize: 10})
	bad := makeBatch(t, batchSpec{n: 2, valueSize: 10})
	bad[len(bad)-1] ^= 0xff
	legacy := bytes.Clone(good)
	legacy[16] = 1
	for _, tc := range []struct {
		name    string
		records []byte
		want    error
	}{
		{"crc", append(bytes.Clone(good), bad...), ErrCorruptMessage},
		{"torn", append(bytes.Clone(good), good[:30]...), ErrCorruptMessage},
		{"magic 1", legacy, ErrUnsupportedMagic},
		{"too large", makeBatch(t, batchSpec{n: 1, valueSize: 3000}), ErrMessageTooLarge},
		{"empty", nil, ErrInvalidRecord},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.AppendAsLeader(tc.records, 0); !isErr(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if l.LogEndOffset() != 0 {
				t.Fatalf("log end offset moved to %d", l.LogEndOffset())
			}
		})
	}
	info := mustAppend(t, l, append(bytes.Clone(good), good...))
	if info.FirstOffset != 0 || info.LastOffset != 3 {
		t.Fatalf("%+v", info)
	}
}

func TestLogChangedWakesOnAppendAndHighWatermark(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{})
	ch := l.Changed()
	select {
	case <-ch:
		t.Fatal("closed before any change")
	default:
	}
	mustAppend(t, l, makeBatch(t, batchSpec{n: 1}))
	<-ch
	ch = l.Changed()
	l.SetHighWatermark(100) // clamped to the log end offset
	<-ch
	if l.HighWatermark() != 1 {
		t.Fatalf("hw %d", l.HighWatermark())
	}
	ch = l.Changed()
	l.SetHighWatermark(1) // no move, no wakeup
	select {
	case <-ch:
		t.Fatal("woken without a move")
	default:
	}
}

func TestLogAppendTimeRewritesBatch(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	m := openTestManager(t, t.TempDir(), func(o *ManagerOptions) { o.Now = func() time.Time { return now } })
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{MessageTimestampType: TimestampLogAppendTime})
	info := mustAppend(t, l, makeBatch(t, batchSpec{n: 3, ts: 5, codec: record.CompressionZstd}))
	if info.LogAppendTime != now.UnixMilli() {
		t.Fatalf("%+v", info)
	}
	b, _ := l.Read(0, 1<<20, 3, true)
	bt, err := record.DecodeBatch(b)
	if err != nil || !bt.LogAppendTime() || bt.Records[2].Timestamp != now.UnixMilli() {
		t.Fatalf("%v %+v", err, bt.Header)
	}
}

func TestLogSegmentMsRoll(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m := openTestManager(t, t.TempDir(), func(o *ManagerOptions) { o.Now = clock })
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{SegmentMs: 1000})
	mustAppend(t, l, makeBatch(t, batchSpec{n: 1}))
	mustAppend(t, l, makeBatch(t, batchSpec{n: 1}))
	mu.Lock()
	now = now.Add(1500 * time.Millisecond)
	mu.Unlock()
	mustAppend(t, l, makeBatch(t, batchSpec{n: 1}))
	l.mu.Lock()
	n, base := len(l.mu.segments), l.mu.segments[len(l.mu.segments)-1].base
	l.mu.Unlock()
	if n != 2 || base != 2 {
		t.Fatalf("%d segments, active base %d", n, base)
	}
	if _, err := os.Stat(filepath.Join(l.Dir(), "00000000000000000002.log")); err != nil {
		t.Fatal(err)
	}
}

func TestLogGroupCommit(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{FlushMessages: 1})
	const writers, perWriter = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				info, err := l.AppendAsLeader(makeBatch(t, batchSpec{n: 1, valueSize: 100}), 0)
				if err != nil {
					errs <- err
					return
				}
				// flush.messages=1: the append is durable when it returns.
				if rp := l.RecoveryPoint(); rp <= info.LastOffset {
					t.Errorf("recovery point %d not past %d after append", rp, info.LastOffset)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	const total = writers * perWriter
	if l.LogEndOffset() != total || len(readAll(t, l, 0)) != total {
		t.Fatalf("log end offset %d", l.LogEndOffset())
	}
	fs := l.FsyncCount()
	t.Logf("%d appends, %d fsyncs", total, fs)
	if fs >= total || fs == 0 {
		t.Fatalf("%d fsyncs for %d appends: no group commit", fs, total)
	}
}

func TestLogFlushMessagesThreshold(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{FlushMessages: 10})
	for i := 0; i < 9; i++ {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 1}))
	}
	if l.RecoveryPoint() != 0 || l.FsyncCount() != 0 {
		t.Fatalf("flushed early: rp %d", l.RecoveryPoint())
	}
	mustAppend(t, l, makeBatch(t, batchSpec{n: 1}))
	if l.RecoveryPoint() != 10 || l.FsyncCount() != 1 {
		t.Fatalf("rp %d fsyncs %d", l.RecoveryPoint(), l.FsyncCount())
	}
}

func TestManagerBackgroundFlushMs(t *testing.T) {
	m := openTestManager(t, t.TempDir(), func(o *ManagerOptions) { o.FlushCheckInterval = 5 * time.Millisecond })
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{FlushMs: 1})
	mustAppend(t, l, makeBatch(t, batchSpec{n: 3}))
	deadline := time.Now().Add(5 * time.Second)
	for l.RecoveryPoint() != 3 {
		if time.Now().After(deadline) {
			t.Fatal("background flush did not run")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestManagerBackgroundFlushOfARoll: a roll is flushed as Kafka flushes
// it, up to the new active segment: the recovery point moves to its base
// offset, not to the log end offset, whose segment is left to flush.ms,
// flush.messages and recovery.
func TestManagerBackgroundFlushOfARoll(t *testing.T) {
	m := openTestManager(t, t.TempDir(), func(o *ManagerOptions) { o.FlushCheckInterval = 5 * time.Millisecond })
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: 1})
	mustAppend(t, l, makeBatch(t, batchSpec{n: 3}))
	mustAppend(t, l, makeBatch(t, batchSpec{n: 2})) // rolls: the active segment starts at 3
	if segs := segmentBases(l); !slices.Equal(segs, []int64{0, 3}) {
		t.Fatalf("segments %v, want [0 3]", segs)
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.RecoveryPoint() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("background flush of the roll did not run: recovery point %d", l.RecoveryPoint())
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // ten more loop rounds
	if rp := l.RecoveryPoint(); rp != 3 {
		t.Fatalf("recovery point %d, want 3 (the active segment is not flushed)", rp)
	}
	// An explicit flush still covers the active segment.
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if rp := l.RecoveryPoint(); rp != 5 {
		t.Fatalf("recovery point after Flush %d, want 5", rp)
	}
}

func TestLogIOErrorTakesLogOffline(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	m := openTestManager(t, a, func(o *ManagerOptions) { o.Dirs = []string{a, b} })
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{})
	other, _ := m.CreateLog("t", 1, [16]byte{}, Config{}) // in the other dir
	sameDir, _ := m.CreateLog("t", 2, [16]byte{}, Config{})
	if filepath.Dir(sameDir.Dir()) != filepath.Dir(l.Dir()) || filepath.Dir(other.Dir()) == filepath.Dir(l.Dir()) {
		t.Fatalf("placement: %s %s %s", l.Dir(), other.Dir(), sameDir.Dir())
	}
	mustAppend(t, l, makeBatch(t, batchSpec{n: 1}))
	// Pull the file out from under the log: the next write fails.
	l.mu.Lock()
	l.mu.segments[0].f.Close()
	l.mu.Unlock()
	if _, err := l.AppendAsLeader(makeBatch(t, batchSpec{n: 1}), 0); !isErr(err, ErrStorage) {
		t.Fatalf("append: %v", err)
	}
	if !l.Offline() {
		t.Fatal("log not offline")
	}
	if _, err := l.Read(0, 100, 1, true); !isErr(err, ErrStorage) {
		t.Fatalf("read: %v", err)
	}
	if err := l.Flush(); !isErr(err, ErrStorage) {
		t.Fatalf("flush: %v", err)
	}
	// Kafka's log dir failure: the log's whole dir is offline; the
	// broker goes on with the logs of its other dirs.
	if _, err := sameDir.AppendAsLeader(makeBatch(t, batchSpec{n: 1}), 0); !isErr(err, ErrLogDirOffline) || !sameDir.Offline() {
		t.Fatalf("append to a log of the failed dir: %v", err)
	}
	mustAppend(t, other, makeBatch(t, batchSpec{n: 1}))
	if other.Offline() {
		t.Fatal("other log offline")
	}
}

func TestLogLeaderEpochCache(t *testing.T) {
	dir := t.TempDir()
	m := openTestManager(t, dir, nil)
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{})
	if l.LatestEpoch() != -1 {
		t.Fatal("epoch before any")
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.AssignEpochStartOffset(1, 0))
	mustAppend(t, l, makeBatch(t, batchSpec{n: 5}))
	must(l.AssignEpochStartOffset(3, 5))
	must(l.AssignEpochStartOffset(2, 5)) // older: ignored
	if l.LatestEpoch() != 3 {
		t.Fatalf("latest %d", l.LatestEpoch())
	}
	b, _ := os.ReadFile(filepath.Join(l.Dir(), "leader-epoch-checkpoint"))
	if string(b) != "0\n2\n1 0\n3 5\n" {
		t.Fatalf("leader-epoch-checkpoint %q", b)
	}
	m.Close()
	m = openTestManager(t, dir, nil)
	defer m.Close()
	l, _ = m.Log("t", 0)
	if off, ok := l.EpochStartOffset(3); !ok || off != 5 || l.LatestEpoch() != 3 {
		t.Fatalf("after reopen: %d %v", off, ok)
	}
}

func TestLogConcurrentAppendReadCheckpoint(t *testing.T) {
	dir := t.TempDir()
	m := openTestManager(t, dir, func(o *ManagerOptions) { o.FlushCheckInterval = time.Millisecond })
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: 8 << 10, IndexIntervalBytes: 512, FlushMs: 1})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if _, err := l.AppendAsLeader(makeBatch(t, batchSpec{n: 3, valueSize: 64, ts: int64(i)}), 0); err != nil {
					t.Error(err)
					return
				}
				l.SetHighWatermark(l.LogEndOffset())
			}
		}()
	}
	var readers sync.WaitGroup
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				hw := l.HighWatermark()
				for from := int64(0); from < hw; {
					b, err := l.Read(from, 4096, hw, true)
					if err != nil || len(b) == 0 {
						t.Errorf("read %d (hw %d): %v", from, hw, err)
						return
					}
					if err := record.Split(b, func(_ []byte, h record.Header) error { from = h.NextOffset(); return nil }); err != nil {
						t.Error(err)
						return
					}
				}
				l.OffsetForTimestamp(50)
				l.MaxTimestamp()
				if err := m.Checkpoint(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = openTestManager(t, dir, nil)
	defer m.Close()
	l, _ = m.Log("t", 0)
	if l.LogEndOffset() != 1200 || len(readAll(t, l, 0)) != 400 {
		t.Fatalf("leo %d", l.LogEndOffset())
	}
}

// TestLogMaxTimestampNeverInflates: ListOffsets -3 is answered from batch
// headers and indexes. An uncompressed batch is read in place (exact
// record, as Kafka 4); a LogAppendTime batch answers its base offset; a
// compressed batch its last offset (Kafka 3.0-3.7's shallow offset)
// without decompressing: a batch inflating to 64 MiB costs no more than a
// small one.
func TestLogMaxTimestampNeverInflates(t *testing.T) {
	clock := newTestClock()
	m := openTestManager(t, t.TempDir(), func(o *ManagerOptions) { o.Now = clock.now })
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{})
	bomb, err := record.Build(record.BuildOptions{Compression: record.CompressionZstd},
		[]record.Record{{Timestamp: 100}, {Timestamp: 900, Value: make([]byte, 64<<20)}, {Timestamp: 200}})
	if err != nil {
		t.Fatal(err)
	}
	if len(bomb) > 64<<10 {
		t.Fatalf("bomb of %d bytes does not compress", len(bomb))
	}
	mustAppend(t, l, bomb) // offsets 0..2
	if off, ts := l.MaxTimestamp(); off != 2 || ts != 900 {
		t.Fatalf("MaxTimestamp = %d, %d; want the batch's last offset 2, 900", off, ts)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < 10; i++ {
		l.MaxTimestamp()
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
		t.Fatalf("10 max-timestamp lookups allocated %d bytes: the batch was inflated", d)
	}

	lat, _ := m.CreateLog("lat", 0, [16]byte{}, Config{MessageTimestampType: TimestampLogAppendTime})
	mustAppend(t, lat, makeBatch(t, batchSpec{n: 3}))
	clock.advance(time.Second)
	mustAppend(t, lat, makeBatch(t, batchSpec{n: 4, codec: record.CompressionGzip}))
	if off, _ := lat.MaxTimestamp(); off != 3 {
		t.Fatalf("LogAppendTime: MaxTimestamp offset %d, want the last batch's base offset 3", off)
	}
}
