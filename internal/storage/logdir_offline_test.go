package storage

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestLogDirFailureTakesDirOffline removes a log dir under the manager:
// the next roll in it fails (a real I/O error: the file cannot be
// created), the whole dir goes offline (its other log too), the other
// dir keeps serving, new logs and moves avoid the failed dir.
func TestLogDirFailureTakesDirOffline(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	m := openTwoDirManager(t, a, b)
	defer m.Close()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 2 << 10
	logs := map[string]*Log{}
	for i, name := range []string{"x", "y", "z", "w"} {
		l, err := m.CreateLog(name, 0, [16]byte{byte(i + 1)}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		logs[name] = l
		mustAppend(t, l, makeBatch(t, batchSpec{n: 1, valueSize: 100}))
	}
	var inA, inB []*Log
	for _, l := range logs {
		if filepath.Dir(l.Dir()) == filepath.Clean(b) {
			inB = append(inB, l)
		} else {
			inA = append(inA, l)
		}
	}
	if len(inA) != 2 || len(inB) != 2 {
		t.Fatalf("placement: %d in a, %d in b", len(inA), len(inB))
	}
	if err := os.RemoveAll(b); err != nil {
		t.Fatal(err)
	}
	var err error
	for range 100 {
		if _, err = inB[0].AppendAsLeader(makeBatch(t, batchSpec{n: 1, valueSize: 1000}), 1); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrStorage) {
		t.Fatalf("append into the removed dir: %v", err)
	}
	select {
	case <-m.DirFailed():
	case <-time.After(5 * time.Second):
		t.Fatal("no dir failure notice")
	}
	if got := m.OfflineDirs(); !slices.Equal(got, []string{filepath.Clean(b)}) {
		t.Fatalf("offline dirs %v", got)
	}
	// The other log of the failed dir is offline too, reads included.
	if _, err := inB[1].AppendAsLeader(makeBatch(t, batchSpec{n: 1}), 1); !errors.Is(err, ErrLogDirOffline) || !errors.Is(err, ErrStorage) {
		t.Fatalf("append to the failed dir's other log: %v", err)
	}
	if _, err := inB[1].Read(0, 1<<20, 1, true); !errors.Is(err, ErrStorage) {
		t.Fatalf("read from the failed dir: %v", err)
	}
	if !inB[1].Offline() {
		t.Fatal("log of the failed dir online")
	}
	// The other dir serves.
	for _, l := range inA {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 1}))
		if l.Offline() || len(readAll(t, l, 0)) != 2 {
			t.Fatalf("log %s in the good dir", l.Dir())
		}
	}
	var states []LogDirState
	for _, d := range m.LogDirs() {
		states = append(states, d.State)
	}
	if !slices.Equal(states, dirStates(a, b, LogDirOnline, LogDirOffline)) {
		t.Fatalf("states %v", states)
	}
	// New logs go to the good dir, moves to the failed one are refused.
	for i := range 3 {
		l, err := m.CreateLog("new", int32(i), [16]byte{9}, cfg)
		if err != nil || filepath.Dir(l.Dir()) != filepath.Clean(a) {
			t.Fatalf("new log: %v", err)
		}
	}
	if err := m.AlterLogDir(inA[0].Topic(), 0, b); !errors.Is(err, ErrStorage) {
		t.Fatalf("move to the failed dir: %v", err)
	}
	if err := m.Checkpoint(); err != nil {
		t.Fatalf("checkpoint with a failed dir: %v", err)
	}
}

// dirStates orders the states of dirs a and b as LogDirs sorts them.
func dirStates(a, b string, sa, sb LogDirState) []LogDirState {
	if filepath.Clean(a) < filepath.Clean(b) {
		return []LogDirState{sa, sb}
	}
	return []LogDirState{sb, sa}
}
