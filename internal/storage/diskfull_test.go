package storage

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"samsa/internal/record"
)

// mountTmpfs mounts a tmpfs of the given size ("2m") on a new temporary
// dir and unmounts it when the test ends. It needs root: without it the
// test is skipped, unless SAMSA_REQUIRE_CLIENTS is set (CI, which runs as
// root, must never skip it).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("SAMSA_REQUIRE_CLIENTS") != "" {
			t.Fatal("mounting a tmpfs needs root, and SAMSA_REQUIRE_CLIENTS is set")
		}
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillFile writes n random bytes to path.
func fillFile(t *testing.T, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitLogDirState polls m's only log dir until it is in state want.
func waitLogDirState(t *testing.T, m *Manager, want LogDirState) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds := m.LogDirs()
		if len(ds) != 1 {
			t.Fatalf("log dirs %+v", ds)
		}
		if ds[0].State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log dir %s still %v, want %v", ds[0].Dir, ds[0].State, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLogDiskFullBackPressure fills a 2 MiB tmpfs: the append that hits
// ENOSPC is refused with ErrStorage and ErrLogDirFull and leaves no
// partial batch, the log stays online and serves every acknowledged
// record, further appends fail fast while the dir is full, and once space
// is freed the dir goes back online by itself and appends resume. Nothing
// acknowledged is lost, across a clean and an unclean restart too.
func TestLogDiskFullBackPressure(t *testing.T) {
	dir := mountTmpfs(t, "2m")
	filler := filepath.Join(dir, "filler")
	fillFile(t, filler, 1<<20)
	opts := func(o *ManagerOptions) {
		o.DiskFullCheckInterval = 10 * time.Millisecond
		o.DiskFullResumeBytes = 256 << 10
	}
	m := openTestManager(t, dir, opts)
	// Registered after the unmount, so it runs before it.
	t.Cleanup(func() { m.Close() })
	l, err := m.CreateLog("full", 0, [16]byte{}, Config{SegmentBytes: 300 << 10, IndexIntervalBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := m.CreateLog("full", 1, [16]byte{}, Config{})
	var acked [][]byte
	appendValue := func(l *Log, n int) error {
		v := make([]byte, n)
		rand.Read(v)
		b, err := record.Build(record.BuildOptions{}, []record.Record{{Timestamp: time.Now().UnixMilli(), Value: v}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.AppendAsLeader(b, 0); err != nil {
			return err
		}
		if l.Partition() == 0 {
			acked = append(acked, v)
		}
		return nil
	}
	var fullErr error
	for i := 0; i < 100 && fullErr == nil; i++ {
		fullErr = appendValue(l, 40_000)
	}
	if !isErr(fullErr, ErrStorage) || !isErr(fullErr, ErrLogDirFull) {
		t.Fatalf("append on a full disk: %v, want ErrStorage and ErrLogDirFull", fullErr)
	}
	if len(acked) < 5 {
		t.Fatalf("only %d appends before the disk was full", len(acked))
	}
	if l.Offline() {
		t.Fatal("a full disk took the log offline")
	}
	if ds := m.LogDirs(); ds[0].State != LogDirFull || ds[0].FullEvents != 1 {
		t.Fatalf("log dir %+v, want full", ds[0])
	}
	// The partial write was cut: the file ends at the last whole batch.
	l.mu.Lock()
	active := l.mu.segments[len(l.mu.segments)-1]
	size := active.size
	l.mu.Unlock()
	if st, err := os.Stat(active.path(logSuffix)); err != nil || st.Size() != size {
		t.Fatalf("active segment file %v (%v), log says %d bytes", st.Size(), err, size)
	}
	// Back-pressure: every append to the dir fails fast, even one that
	// would fit, and even to another log.
	if err := appendValue(l, 10); !isErr(err, ErrLogDirFull) {
		t.Fatalf("small append on a full dir: %v", err)
	}
	if err := appendValue(other, 10); !isErr(err, ErrLogDirFull) {
		t.Fatalf("append to another log of the full dir: %v", err)
	}
	// Reads go on.
	l.SetHighWatermark(l.LogEndOffset())
	checkValues(t, l, acked)
	if off, _ := l.MaxTimestamp(); off < 0 {
		t.Fatalf("max timestamp offset %d", off)
	}
	if _, _, found, err := l.OffsetForTimestamp(0); err != nil || !found {
		t.Fatalf("offset for timestamp: %v %v", found, err)
	}

	// Free space: the dir comes back by itself and appends resume.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitLogDirState(t, m, LogDirOnline)
	for i := 0; i < 5; i++ {
		if err := appendValue(l, 40_000); err != nil {
			t.Fatalf("append after space was freed: %v", err)
		}
	}
	if err := appendValue(other, 10); err != nil {
		t.Fatalf("append to the other log after space was freed: %v", err)
	}
	checkValues(t, l, acked)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m = openTestManager(t, dir, opts)
	l, _ = m.Log("full", 0)
	checkValues(t, l, acked)
	m.abandon()
	m = openTestManager(t, dir, opts)
	l, _ = m.Log("full", 0)
	checkValues(t, l, acked)
}

// TestLogFollowerDiskFull: a follower copying a leader onto a full
// 2 MiB tmpfs gets ErrStorage and ErrLogDirFull, the partial write is cut
// (the file ends at the log end's batch), the log stays online; once space
// is freed the copy resumes and ends byte for byte equal to the leader.
func TestLogFollowerDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "2m")
	filler := filepath.Join(dir, "filler")
	fillFile(t, filler, 1<<20)
	opts := func(o *ManagerOptions) {
		o.DiskFullCheckInterval = 10 * time.Millisecond
		o.DiskFullResumeBytes = 256 << 10
	}
	lm := openTestManager(t, t.TempDir(), nil)
	defer lm.Close()
	leader, err := lm.CreateLog("src", 0, [16]byte{}, Config{SegmentBytes: 300 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.AssignEpochStartOffset(3, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		v := make([]byte, 40_000)
		rand.Read(v)
		b, _ := record.Build(record.BuildOptions{}, []record.Record{{Timestamp: int64(i), Value: v}})
		if _, err := leader.AppendAsLeader(b, 3); err != nil {
			t.Fatal(err)
		}
	}
	m := openTestManager(t, dir, opts)
	t.Cleanup(func() { m.Close() })
	f, err := m.CreateLog("dst", 0, [16]byte{}, Config{SegmentBytes: 300 << 10})
	if err != nil {
		t.Fatal(err)
	}
	fetch := func() error {
		b, err := leader.Read(f.LogEndOffset(), 200_000, leader.LogEndOffset(), true)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.AppendAsFollower(b)
		return err
	}
	var fullErr error
	for f.LogEndOffset() < leader.LogEndOffset() && fullErr == nil {
		fullErr = fetch()
	}
	if !isErr(fullErr, ErrStorage) || !isErr(fullErr, ErrLogDirFull) {
		t.Fatalf("follower append on a full disk: %v, want ErrStorage and ErrLogDirFull", fullErr)
	}
	if f.Offline() {
		t.Fatal("a full disk took the follower offline")
	}
	f.mu.Lock()
	active := f.mu.segments[len(f.mu.segments)-1]
	size := active.size
	f.mu.Unlock()
	if st, err := os.Stat(active.path(logSuffix)); err != nil || st.Size() != size {
		t.Fatalf("active segment file %v (%v), log says %d bytes", st.Size(), err, size)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitLogDirState(t, m, LogDirOnline)
	for f.LogEndOffset() < leader.LogEndOffset() {
		if err := fetch(); err != nil {
			t.Fatalf("follower append after space was freed: %v", err)
		}
	}
	all := func(l *Log) []byte {
		var out []byte
		for off := int64(0); off < l.LogEndOffset(); {
			b, err := l.Read(off, 16<<20, l.LogEndOffset(), true)
			if err != nil || len(b) == 0 {
				t.Fatalf("read %d: %v", off, err)
			}
			out = append(out, b...)
			_ = record.Split(b, func(_ []byte, h record.Header) error { off = h.NextOffset(); return nil })
		}
		return out
	}
	want, got := all(leader), all(f)
	if len(want) < 1<<20 || string(got) != string(want) {
		t.Fatalf("follower holds %d bytes, leader %d: not equal", len(got), len(want))
	}
	if e, off := f.EndOffsetForEpoch(3); e != 3 || off != leader.LogEndOffset() {
		t.Fatalf("follower's end for epoch 3: (%d, %d)", e, off)
	}
}
