package raft

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func testEntry(index, term uint64, data string) *pb.Entry {
	return &pb.Entry{Index: new(index), Term: new(term), Type: new(pb.EntryNormal), Data: []byte(data)}
}

func encodeTestWAL(t testing.TB, frames ...proto.Message) []byte {
	var b []byte
	for _, m := range frames {
		p, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		typ := frameEntry
		if _, ok := m.(*pb.HardState); ok {
			typ = frameHardState
		}
		b = appendDiskFrame(b, typ, p)
	}
	return b
}

func TestWALDecode(t *testing.T) {
	hs := func(term, commit uint64) *pb.HardState {
		return &pb.HardState{Term: new(term), Commit: new(commit), Vote: new(uint64(1))}
	}
	full := encodeTestWAL(t, testEntry(1, 1, "a"), testEntry(2, 1, "b"), hs(1, 2), testEntry(3, 1, "c"))
	tests := []struct {
		name      string
		b         []byte
		snapIndex uint64
		want      []string
		commit    uint64
		valid     int // -1: len(b)
		err       error
	}{
		{name: "empty", b: nil, valid: -1},
		{name: "full", b: full, want: []string{"a", "b", "c"}, commit: 2, valid: -1},
		{name: "torn last frame", b: full[:len(full)-3], want: []string{"a", "b"}, commit: 2,
			valid: len(encodeTestWAL(t, testEntry(1, 1, "a"), testEntry(2, 1, "b"), hs(1, 2)))},
		{name: "garbage tail", b: append(slices.Clone(full), 0, 0, 0, 9, 1, 2), want: []string{"a", "b", "c"}, commit: 2, valid: len(full)},
		{name: "overwritten tail", b: encodeTestWAL(t, testEntry(1, 1, "a"), testEntry(2, 1, "b"), testEntry(3, 1, "c"), testEntry(2, 2, "B")),
			want: []string{"a", "B"}, valid: -1},
		{name: "below snapshot skipped", b: full, snapIndex: 2, want: []string{"c"}, commit: 2, valid: -1},
		{name: "gap", b: encodeTestWAL(t, testEntry(1, 1, "a"), testEntry(3, 1, "c")), err: ErrCorrupt},
		{name: "bad payload", b: appendDiskFrame(nil, frameEntry, []byte{0xff, 0xff}), err: ErrCorrupt},
		{name: "bad type", b: appendDiskFrame(nil, 9, nil), err: ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, valid, err := decodeWAL(tt.b, tt.snapIndex)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			var got []string
			for _, e := range st.ents {
				got = append(got, string(e.GetData()))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("entries = %q, want %q", got, tt.want)
			}
			if st.hs.GetCommit() != tt.commit {
				t.Fatalf("commit = %d, want %d", st.hs.GetCommit(), tt.commit)
			}
			want := tt.valid
			if want < 0 {
				want = len(tt.b)
			}
			if valid != want {
				t.Fatalf("valid = %d, want %d", valid, want)
			}
		})
	}
}

// TestWALRecoverTornTail crashes a node mid-write (simulated by cutting
// the WAL inside its last frame and appending garbage) and checks that the
// torn tail is truncated on restart while committed entries survive.
func TestWALRecoverTornTail(t *testing.T) {
	c := newCluster(t, 1, 0, 0)
	for _, d := range wantData(3, "w") {
		c.propose(d)
	}
	c.stop(0)
	path := filepath.Join(c.dirs[0], walFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, valid, err := decodeWAL(b, 0)
	if err != nil || valid != len(b) || len(st.ents) == 0 {
		t.Fatalf("clean wal: valid %d of %d, %d entries, err %v", valid, len(b), len(st.ents), err)
	}
	// A torn append: half of a fourth entry's frame.
	p, _ := proto.Marshal(testEntry(st.ents[len(st.ents)-1].GetIndex()+1, st.hs.GetTerm(), "torn"))
	frame := appendDiskFrame(nil, frameEntry, p)
	if err := os.WriteFile(path, append(b, frame[:len(frame)/2]...), 0o644); err != nil {
		t.Fatal(err)
	}
	c.start(0)
	if got := c.fsms[0].waitLen(t, 3); !slices.Equal(got, wantData(3, "w")) {
		t.Fatalf("after torn tail fsm = %q", got)
	}
	c.propose("w3")
	c.stop(0)
	b2, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, valid, err := decodeWAL(b2, 0); err != nil || valid != len(b2) {
		t.Fatalf("wal after recovery: valid %d of %d, err %v", valid, len(b2), err)
	}
	c.start(0)
	if got := c.fsms[0].waitLen(t, 4); !slices.Equal(got, append(wantData(3, "w"), "w3")) {
		t.Fatalf("fsm = %q", got)
	}
}

func TestWALCorruptMiddleIsError(t *testing.T) {
	dir := t.TempDir()
	b := encodeTestWAL(t, testEntry(1, 1, "a"), testEntry(3, 1, "c"))
	if err := os.WriteFile(filepath.Join(dir, walFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := openStorage(dir, &pb.ConfState{Voters: []uint64{1}}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open: %v, want ErrCorrupt", err)
	}
}

func TestWALSnapshotFileDamagedIsError(t *testing.T) {
	dir := t.TempDir()
	p, _ := proto.Marshal(&pb.Snapshot{Metadata: &pb.SnapshotMetadata{Index: new(uint64(5)), Term: new(uint64(1))}})
	b := appendDiskFrame(nil, frameSnapshot, p)
	if err := os.WriteFile(filepath.Join(dir, snapFile), b[:len(b)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := openStorage(dir, &pb.ConfState{Voters: []uint64{1}}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open: %v, want ErrCorrupt", err)
	}
}

func FuzzWALDecode(f *testing.F) {
	f.Add([]byte(nil), uint64(0))
	f.Add(encodeTestWAL(f, testEntry(1, 1, "a"), &pb.HardState{Term: new(uint64(1)), Commit: new(uint64(1))}, testEntry(2, 1, "b")), uint64(0))
	f.Add(encodeTestWAL(f, testEntry(1, 1, "a"), testEntry(1, 2, "b")), uint64(1))
	p, _ := proto.Marshal(&pb.Snapshot{Data: []byte("x"), Metadata: &pb.SnapshotMetadata{Index: new(uint64(5))}})
	f.Add(appendDiskFrame(nil, frameSnapshot, p), uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, snapIndex uint64) {
		st, valid, err := decodeWAL(b, snapIndex)
		if valid < 0 || valid > len(b) {
			t.Fatalf("valid %d of %d", valid, len(b))
		}
		if err == nil {
			for i, e := range st.ents {
				if e.GetIndex() != snapIndex+1+uint64(i) {
					t.Fatalf("entry %d has index %d after snapshot %d", i, e.GetIndex(), snapIndex)
				}
			}
			// The intact prefix decodes the same on its own.
			st2, valid2, err2 := decodeWAL(b[:valid], snapIndex)
			if err2 != nil || valid2 != valid || len(st2.ents) != len(st.ents) {
				t.Fatalf("prefix decodes differently: %d/%d entries, %d/%d bytes, %v", len(st2.ents), len(st.ents), valid2, valid, err2)
			}
		}
		_, _ = decodeSnapshot(b)
	})
}

// TestWALSnapshotNewerThanWAL covers a crash between writing raft.snap and
// rewriting raft.wal during compaction: entries the snapshot covers are
// skipped, the rest are kept, and the commit index is at least the
// snapshot's.
func TestWALSnapshotNewerThanWAL(t *testing.T) {
	dir := t.TempDir()
	var frames []proto.Message
	for i := uint64(1); i <= 10; i++ {
		frames = append(frames, testEntry(i, 1, "e"))
	}
	frames = append(frames, &pb.HardState{Term: new(uint64(1)), Commit: new(uint64(3))})
	if err := os.WriteFile(filepath.Join(dir, walFile), encodeTestWAL(t, frames...), 0o644); err != nil {
		t.Fatal(err)
	}
	cs := &pb.ConfState{Voters: []uint64{1}}
	p, _ := proto.Marshal(&pb.Snapshot{Data: []byte("state"), Metadata: &pb.SnapshotMetadata{Index: new(uint64(5)), Term: new(uint64(1)), ConfState: cs}})
	if err := os.WriteFile(filepath.Join(dir, snapFile), appendDiskFrame(nil, frameSnapshot, p), 0o644); err != nil {
		t.Fatal(err)
	}
	s, snap, err := openStorage(dir, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if string(snap.GetData()) != "state" {
		t.Fatalf("snapshot data %q", snap.GetData())
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	hs, _, _ := s.InitialState()
	if first != 6 || last != 10 || hs.GetCommit() != 5 {
		t.Fatalf("first %d last %d commit %d, want 6 10 5", first, last, hs.GetCommit())
	}
}

func TestSnapDataRoundTrip(t *testing.T) {
	learners := map[int32]string{3: "10.0.0.3:9093", 7: "broker-7:19092"}
	b := encodeSnapData(learners, []byte("caller"))
	got, data, err := decodeSnapData(b)
	if err != nil || !maps.Equal(got, learners) || string(data) != "caller" {
		t.Fatalf("%v %q %v", got, data, err)
	}
	for _, bad := range [][]byte{nil, {2, 0, 0}, {1, 0, 1, 0, 0, 0, 3, 9, 'x'}, {1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0}} {
		if _, _, err := decodeSnapData(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeSnapData(%q): %v", bad, err)
		}
	}
}

func FuzzSnapData(f *testing.F) {
	f.Add(encodeSnapData(map[int32]string{3: "h:1"}, []byte("x")))
	f.Add(encodeSnapData(nil, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		learners, data, err := decodeSnapData(b)
		if err != nil {
			return
		}
		re := encodeSnapData(learners, data)
		l2, d2, err := decodeSnapData(re)
		if err != nil || !maps.Equal(l2, learners) || string(d2) != string(data) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzEntryEnvelope: the proposal envelope around an entry's data, as
// read back from any committed entry.
func FuzzEntryEnvelope(f *testing.F) {
	f.Add(encodeEnvelope(3, 42, []byte("data")))
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		from, id, data, ok := decodeEnvelope(&pb.Entry{Type: new(pb.EntryNormal), Data: b})
		if !ok {
			return
		}
		if re := encodeEnvelope(from, id, data); string(re) != string(b) {
			t.Fatalf("round trip %q vs %q", re, b)
		}
	})
}
