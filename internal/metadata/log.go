package metadata

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Log is the metadata log as the single-node controller uses it today:
// the caller appends, then publishes. Quorum (apply-then-publish, with
// LocalQuorum and raft.MetadataLog) replaces it; Log and LocalLog stay
// until the controller and server switch, and LocalLog's file remains the
// migration source (MigrateLocalLog).
type Log interface {
	// Append durably appends recs as one atomic unit and returns the
	// offset of the last one.
	Append(recs []Record) (int64, error)
	// Replay calls fn with every committed record in order, from offset 0.
	Replay(fn func(offset int64, r Record) error) error
	Close() error
}

// ErrCorrupt marks metadata log damage that is not a torn tail.
var ErrCorrupt = errors.New("metadata: corrupt log")

// LocalLog is a one-node metadata log: a file of entries
//
//	+-----------+-----------+---------+---------------------------+
//	| len u32BE | crc u32BE | n u32BE | n records, JSON, len bytes |
//	+-----------+-----------+---------+---------------------------+
//
// where crc is CRC-32C over n and the JSON, and one entry is one Append
// (so an Append is atomic). A torn last entry (from a crash mid-write) is
// truncated at open. Every Append is fsynced before it returns.
type LocalLog struct {
	mu   sync.Mutex
	f    *os.File // guarded by mu
	next int64    // offset of the next record; guarded by mu
	size int64    // valid bytes in f; guarded by mu
}

// LocalLogDir is the directory of the metadata log under metadata.log.dir.
const LocalLogDir = "__cluster_metadata-0"

const localLogFile = "00000000000000000000.metadata"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// OpenLocalLog opens (creating if needed) the metadata log under dir and
// truncates a torn tail.
func OpenLocalLog(dir string) (*LocalLog, error) {
	d := filepath.Join(dir, LocalLogDir)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(d, localLogFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	l := &LocalLog{f: f}
	valid, n, err := l.scan(nil)
	if err != nil {
		f.Close()
		return nil, err
	}
	l.size, l.next = valid, n
	if st, err := f.Stat(); err == nil && st.Size() > valid {
		if err := f.Truncate(valid); err != nil {
			f.Close()
			return nil, fmt.Errorf("metadata: truncate torn tail: %w", err)
		}
		_ = f.Sync()
	}
	return l, nil
}

// scan reads entries from the start, calling fn per record, and returns
// the length of the valid prefix and the number of records in it.
func (l *LocalLog) scan(fn func(int64, Record) error) (int64, int64, error) {
	r := bufio.NewReader(io.NewSectionReader(l.f, 0, 1<<62))
	var pos, off int64
	hdr := make([]byte, 12)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return pos, off, nil // EOF or torn header
		}
		n := binary.BigEndian.Uint32(hdr[0:4])
		crc := binary.BigEndian.Uint32(hdr[4:8])
		count := binary.BigEndian.Uint32(hdr[8:12])
		if n > 64<<20 {
			return pos, off, nil
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return pos, off, nil
		}
		c := crc32.Update(crc32.Checksum(hdr[8:12], castagnoli), castagnoli, body)
		if c != crc {
			return pos, off, nil
		}
		var recs []Record
		if err := json.Unmarshal(body, &recs); err != nil || uint32(len(recs)) != count {
			return 0, 0, fmt.Errorf("%w: entry at byte %d does not decode", ErrCorrupt, pos)
		}
		for _, rec := range recs {
			if fn != nil {
				if err := fn(off, rec); err != nil {
					return 0, 0, err
				}
			}
			off++
		}
		pos += 12 + int64(n)
	}
}

// Append implements Log.
func (l *LocalLog) Append(recs []Record) (int64, error) {
	body, err := json.Marshal(recs)
	if err != nil {
		return 0, fmt.Errorf("metadata: encode: %w", err)
	}
	buf := make([]byte, 12, 12+len(body))
	binary.BigEndian.PutUint32(buf[0:4], uint32(len(body)))
	binary.BigEndian.PutUint32(buf[8:12], uint32(len(recs)))
	binary.BigEndian.PutUint32(buf[4:8], crc32.Update(crc32.Checksum(buf[8:12], castagnoli), castagnoli, body))
	buf = append(buf, body...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, errors.New("metadata: log closed")
	}
	if _, err := l.f.WriteAt(buf, l.size); err != nil {
		return 0, fmt.Errorf("metadata: append: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return 0, fmt.Errorf("metadata: sync: %w", err)
	}
	l.size += int64(len(buf))
	l.next += int64(len(recs))
	return l.next - 1, nil
}

// Replay implements Log.
func (l *LocalLog) Replay(fn func(int64, Record) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _, err := l.scan(fn)
	return err
}

// Close implements Log.
func (l *LocalLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
