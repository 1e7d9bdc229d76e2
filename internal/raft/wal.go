package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"

	etcdraft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// ErrCorrupt marks damage to the raft files that is not a torn tail: a
// frame whose checksum holds but whose contents make no sense.
var ErrCorrupt = errors.New("raft: corrupt log")

const (
	walFile  = "raft.wal"
	snapFile = "raft.snap"

	frameEntry     byte = 1
	frameHardState byte = 2
	frameSnapshot  byte = 3

	// maxDiskFrame bounds one frame on disk; a larger length field is
	// treated as a torn tail, never allocated.
	maxDiskFrame = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendDiskFrame appends one WAL/snapshot frame (see doc.go) to dst.
func appendDiskFrame(dst []byte, typ byte, payload []byte) []byte {
	var hdr [9]byte
	binary.BigEndian.PutUint32(hdr[0:4], uint32(len(payload)+1))
	hdr[8] = typ
	crc := crc32.Update(crc32.Checksum(hdr[8:9], castagnoli), castagnoli, payload)
	binary.BigEndian.PutUint32(hdr[4:8], crc)
	dst = append(dst, hdr[:]...)
	return append(dst, payload...)
}

// decodeDiskFrames calls fn for every intact frame at the start of b and
// returns the length of that prefix. It stops without error at the first
// short or checksum-failing frame (a torn tail); an error from fn stops it
// and is returned.
func decodeDiskFrames(b []byte, fn func(typ byte, payload []byte) error) (int, error) {
	pos := 0
	for len(b)-pos >= 9 {
		n := binary.BigEndian.Uint32(b[pos : pos+4])
		if n == 0 || n > maxDiskFrame || uint64(len(b)-pos-8) < uint64(n) {
			break
		}
		body := b[pos+8 : pos+8+int(n)]
		if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[pos+4:pos+8]) {
			break
		}
		if err := fn(body[0], body[1:]); err != nil {
			return pos, err
		}
		pos += 8 + int(n)
	}
	return pos, nil
}

// walState is what a WAL replays into.
type walState struct {
	hs   *pb.HardState
	ents []*pb.Entry // consecutive indexes
}

// decodeWAL replays the WAL bytes b on top of a snapshot at snapIndex: it
// returns the entries after snapIndex, the last hard state and the length
// of the intact prefix of b.
func decodeWAL(b []byte, snapIndex uint64) (walState, int, error) {
	var st walState
	valid, err := decodeDiskFrames(b, func(typ byte, payload []byte) error {
		switch typ {
		case frameEntry:
			e := &pb.Entry{}
			if err := proto.Unmarshal(payload, e); err != nil {
				return fmt.Errorf("%w: entry: %v", ErrCorrupt, err)
			}
			idx := e.GetIndex()
			if idx <= snapIndex {
				return nil // compacted away by a snapshot written after this frame
			}
			first := snapIndex + 1
			last := snapIndex + uint64(len(st.ents))
			if idx > last+1 {
				return fmt.Errorf("%w: entry %d after %d leaves a gap", ErrCorrupt, idx, last)
			}
			st.ents = append(st.ents[:idx-first], e)
		case frameHardState:
			hs := &pb.HardState{}
			if err := proto.Unmarshal(payload, hs); err != nil {
				return fmt.Errorf("%w: hard state: %v", ErrCorrupt, err)
			}
			st.hs = hs
		default:
			return fmt.Errorf("%w: frame type %d in WAL", ErrCorrupt, typ)
		}
		return nil
	})
	return st, valid, err
}

// decodeSnapshot decodes raft.snap. The file is replaced by rename, so
// anything but one whole frame is corruption, not a torn tail.
func decodeSnapshot(b []byte) (*pb.Snapshot, error) {
	var snap *pb.Snapshot
	valid, err := decodeDiskFrames(b, func(typ byte, payload []byte) error {
		if typ != frameSnapshot || snap != nil {
			return fmt.Errorf("%w: snapshot file: unexpected frame type %d", ErrCorrupt, typ)
		}
		snap = &pb.Snapshot{}
		if err := proto.Unmarshal(payload, snap); err != nil {
			return fmt.Errorf("%w: snapshot: %v", ErrCorrupt, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if valid != len(b) || snap == nil {
		return nil, fmt.Errorf("%w: snapshot file damaged", ErrCorrupt)
	}
	return snap, nil
}

// diskStorage is raft's Storage: a MemoryStorage (what raft reads) kept
// in step with raft.wal and raft.snap (what survives a crash). Everything
// since the last snapshot is in memory, which is bounded by
// Config.SnapshotEvery. Used only by the node's raft goroutine, except
// that MemoryStorage locks itself.
type diskStorage struct {
	*etcdraft.MemoryStorage
	dir string
	// cs is the membership: the configured voters, the configured
	// learners and those added since (ConfChanges, snapshots). Owned by
	// the raft goroutine.
	cs      *pb.ConfState
	wal     *os.File
	walSize int64         // bytes of intact frames in wal
	hs      *pb.HardState // last hard state written to wal
}

// openStorage recovers the raft state in dir, truncating a torn WAL tail.
// It returns the snapshot it loaded (nil when there is none).
func openStorage(dir string, cs *pb.ConfState) (*diskStorage, *pb.Snapshot, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("raft: %w", err)
	}
	s := &diskStorage{MemoryStorage: etcdraft.NewMemoryStorage(), dir: dir, cs: cs, hs: &pb.HardState{}}
	var snap *pb.Snapshot
	b, err := os.ReadFile(filepath.Join(dir, snapFile))
	switch {
	case err == nil:
		if snap, err = decodeSnapshot(b); err != nil {
			return nil, nil, err
		}
		if err := s.ApplySnapshot(snap); err != nil {
			return nil, nil, fmt.Errorf("raft: load snapshot: %w", err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, nil, fmt.Errorf("raft: %w", err)
	}
	snapIndex := snap.GetMetadata().GetIndex()
	if snap != nil {
		// The snapshot's learners were added at run time; the voters
		// must be the configured ones.
		scs := snap.GetMetadata().GetConfState()
		if v := slices.Sorted(slices.Values(scs.GetVoters())); !slices.Equal(v, cs.GetVoters()) {
			return nil, nil, fmt.Errorf("raft: controller.quorum.voters gives raft ids %v but the snapshot at %d was taken with %v", cs.GetVoters(), snapIndex, v)
		}
		merged := proto.Clone(cs).(*pb.ConfState)
		for _, l := range scs.GetLearners() {
			if !slices.Contains(merged.Learners, l) {
				merged.Learners = append(merged.Learners, l)
			}
		}
		slices.Sort(merged.Learners)
		s.cs = merged
	}

	f, err := os.OpenFile(filepath.Join(dir, walFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("raft: %w", err)
	}
	b, err = os.ReadFile(f.Name())
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("raft: %w", err)
	}
	st, valid, err := decodeWAL(b, snapIndex)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("open %s: %w", f.Name(), err)
	}
	if valid < len(b) {
		if err := f.Truncate(int64(valid)); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("raft: truncate torn tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("raft: %w", err)
		}
	}
	s.wal, s.walSize = f, int64(valid)
	if err := s.Append(st.ents); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("raft: load entries: %w", err)
	}
	if st.hs != nil {
		s.hs = st.hs
	}
	last, _ := s.LastIndex()
	// A snapshot only holds applied, so committed, state; a hard state
	// written before it may lag behind.
	if s.hs.GetCommit() < snapIndex {
		s.hs = proto.Clone(s.hs).(*pb.HardState)
		s.hs.Commit = new(snapIndex)
	}
	if s.hs.GetCommit() > last {
		f.Close()
		return nil, nil, fmt.Errorf("%w: commit index %d beyond last entry %d", ErrCorrupt, s.hs.GetCommit(), last)
	}
	if err := s.SetHardState(s.hs); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("raft: %w", err)
	}
	return s, snap, nil
}

// setConfState records the membership after a ConfChange or snapshot;
// the next snapshot carries it.
func (s *diskStorage) setConfState(cs *pb.ConfState) { s.cs = proto.Clone(cs).(*pb.ConfState) }

// InitialState reports the persisted hard state with the membership as
// of the snapshot (configured voters and learners plus the snapshot's
// learners); ConfChanges after it are re-applied as their entries are
// delivered again.
func (s *diskStorage) InitialState() (*pb.HardState, *pb.ConfState, error) {
	hs, _, err := s.MemoryStorage.InitialState()
	return hs, proto.Clone(s.cs).(*pb.ConfState), err
}

// save appends ents and a changed hard state to the WAL and, when sync is
// set, fsyncs it; then makes them visible to raft.
func (s *diskStorage) save(hs *pb.HardState, ents []*pb.Entry, sync bool) error {
	var buf []byte
	for _, e := range ents {
		p, err := proto.Marshal(e)
		if err != nil {
			return fmt.Errorf("raft: encode entry: %w", err)
		}
		buf = appendDiskFrame(buf, frameEntry, p)
	}
	if !etcdraft.IsEmptyHardState(hs) {
		p, err := proto.Marshal(hs)
		if err != nil {
			return fmt.Errorf("raft: encode hard state: %w", err)
		}
		buf = appendDiskFrame(buf, frameHardState, p)
	}
	if len(buf) > 0 {
		if _, err := s.wal.WriteAt(buf, s.walSize); err != nil {
			return fmt.Errorf("raft: write wal: %w", err)
		}
		s.walSize += int64(len(buf))
	}
	if sync {
		if err := s.wal.Sync(); err != nil {
			return fmt.Errorf("raft: sync wal: %w", err)
		}
	}
	if err := s.Append(ents); err != nil {
		return fmt.Errorf("raft: %w", err)
	}
	if !etcdraft.IsEmptyHardState(hs) {
		s.hs = hs
		if err := s.SetHardState(hs); err != nil {
			return fmt.Errorf("raft: %w", err)
		}
	}
	return nil
}

// installSnapshot makes a snapshot received from the leader durable and
// replaces the log with it.
func (s *diskStorage) installSnapshot(snap *pb.Snapshot) error {
	if err := s.writeSnapFile(snap); err != nil {
		return err
	}
	s.setConfState(snap.GetMetadata().GetConfState())
	if err := s.ApplySnapshot(snap); err != nil {
		return fmt.Errorf("raft: apply snapshot: %w", err)
	}
	return s.rewriteWAL()
}

// snapshot records the caller's state at applied index i and compacts the
// log up to it.
func (s *diskStorage) snapshot(i uint64, data []byte) (*pb.Snapshot, error) {
	snap, err := s.CreateSnapshot(i, s.cs, data)
	if err != nil {
		return nil, fmt.Errorf("raft: create snapshot: %w", err)
	}
	if err := s.writeSnapFile(snap); err != nil {
		return nil, err
	}
	if err := s.Compact(i); err != nil && !errors.Is(err, etcdraft.ErrCompacted) {
		return nil, fmt.Errorf("raft: compact: %w", err)
	}
	return snap, s.rewriteWAL()
}

func (s *diskStorage) writeSnapFile(snap *pb.Snapshot) error {
	p, err := proto.Marshal(snap)
	if err != nil {
		return fmt.Errorf("raft: encode snapshot: %w", err)
	}
	f, err := s.replaceFile(snapFile, appendDiskFrame(nil, frameSnapshot, p))
	if err != nil {
		return err
	}
	return f.Close()
}

// rewriteWAL replaces raft.wal with the hard state and the entries raft
// still holds (those after the snapshot).
func (s *diskStorage) rewriteWAL() error {
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	var buf []byte
	if last >= first {
		ents, err := s.Entries(first, last+1, ^uint64(0))
		if err != nil {
			return fmt.Errorf("raft: rewrite wal: %w", err)
		}
		for _, e := range ents {
			p, err := proto.Marshal(e)
			if err != nil {
				return fmt.Errorf("raft: encode entry: %w", err)
			}
			buf = appendDiskFrame(buf, frameEntry, p)
		}
	}
	p, err := proto.Marshal(s.hs)
	if err != nil {
		return fmt.Errorf("raft: encode hard state: %w", err)
	}
	buf = appendDiskFrame(buf, frameHardState, p)
	f, err := s.replaceFile(walFile, buf)
	if err != nil {
		return err
	}
	s.wal.Close()
	s.wal, s.walSize = f, int64(len(buf))
	return nil
}

// replaceFile atomically replaces dir/name with data (write a temporary
// file, fsync, rename, fsync the directory) and returns the open file.
func (s *diskStorage) replaceFile(name string, data []byte) (*os.File, error) {
	tmp := filepath.Join(s.dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("raft: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("raft: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("raft: sync %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		f.Close()
		return nil, fmt.Errorf("raft: %w", err)
	}
	if d, err := os.Open(s.dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("raft: sync dir: %w", err)
		}
	}
	return f, nil
}

func (s *diskStorage) close() error { return s.wal.Close() }
