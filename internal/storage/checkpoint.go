package storage

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Per-log-dir checkpoint files and per-partition metadata files, in Kafka's
// text formats (see doc.go).
const (
	recoveryPointFile     = "recovery-point-offset-checkpoint"
	replicationOffsetFile = "replication-offset-checkpoint"
	logStartOffsetFile    = "log-start-offset-checkpoint"
	cleanerOffsetFile     = "cleaner-offset-checkpoint"
	leaderEpochFile       = "leader-epoch-checkpoint"
	partitionMetadataFile = "partition.metadata"
	cleanShutdownFile     = ".kafka_cleanshutdown"
)

// ErrBadCheckpoint: a checkpoint file does not parse.
var ErrBadCheckpoint = errors.New("storage: malformed checkpoint file")

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// parseTopicPartitionDir splits "<topic>-<partition>" at the last '-'.
func parseTopicPartitionDir(name string) (TopicPartition, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 || i == len(name)-1 {
		return TopicPartition{}, false
	}
	p, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || p < 0 || name[i+1] == '+' {
		return TopicPartition{}, false
	}
	return TopicPartition{name[:i], int32(p)}, true
}

// EncodeOffsetCheckpoint renders Kafka's OffsetCheckpointFile format:
// "0\n<count>\n" then "<topic> <partition> <offset>\n" per entry, sorted.
func EncodeOffsetCheckpoint(m map[TopicPartition]int64) []byte {
	tps := make([]TopicPartition, 0, len(m))
	for tp := range m {
		tps = append(tps, tp)
	}
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(tps))
	for _, tp := range tps {
		fmt.Fprintf(&b, "%s %d %d\n", tp.Topic, tp.Partition, m[tp])
	}
	return b.Bytes()
}

// ParseOffsetCheckpoint parses EncodeOffsetCheckpoint's format.
func ParseOffsetCheckpoint(b []byte) (map[TopicPartition]int64, error) {
	lines, err := checkpointLines(b)
	if err != nil {
		return nil, err
	}
	m := make(map[TopicPartition]int64, len(lines))
	for _, ln := range lines {
		f := strings.Split(ln, " ")
		if len(f) != 3 || f[0] == "" {
			return nil, fmt.Errorf("%w: line %q", ErrBadCheckpoint, ln)
		}
		p, err1 := strconv.ParseInt(f[1], 10, 32)
		off, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || p < 0 {
			return nil, fmt.Errorf("%w: line %q", ErrBadCheckpoint, ln)
		}
		m[TopicPartition{f[0], int32(p)}] = off
	}
	return m, nil
}

// checkpointLines checks the version and count lines and returns the
// entry lines.
func checkpointLines(b []byte) ([]string, error) {
	s := string(b)
	if !strings.HasSuffix(s, "\n") {
		return nil, fmt.Errorf("%w: no final newline", ErrBadCheckpoint)
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) < 2 || lines[0] != "0" {
		return nil, fmt.Errorf("%w: bad version line", ErrBadCheckpoint)
	}
	n, err := strconv.Atoi(lines[1])
	if err != nil || n != len(lines)-2 {
		return nil, fmt.Errorf("%w: count %q for %d entries", ErrBadCheckpoint, lines[1], len(lines)-2)
	}
	return lines[2:], nil
}

// epochEntry is one line of leader-epoch-checkpoint: epoch starts at
// startOffset.
type epochEntry struct {
	epoch       int32
	startOffset int64
}

// EncodeLeaderEpochCheckpoint renders "0\n<count>\n<epoch> <startOffset>\n…".
func encodeLeaderEpochCheckpoint(es []epochEntry) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(es))
	for _, e := range es {
		fmt.Fprintf(&b, "%d %d\n", e.epoch, e.startOffset)
	}
	return b.Bytes()
}

func parseLeaderEpochCheckpoint(b []byte) ([]epochEntry, error) {
	lines, err := checkpointLines(b)
	if err != nil {
		return nil, err
	}
	es := make([]epochEntry, 0, len(lines))
	for _, ln := range lines {
		f := strings.Split(ln, " ")
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: line %q", ErrBadCheckpoint, ln)
		}
		ep, err1 := strconv.ParseInt(f[0], 10, 32)
		off, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || ep < 0 || off < 0 {
			return nil, fmt.Errorf("%w: line %q", ErrBadCheckpoint, ln)
		}
		if n := len(es); n > 0 && (int32(ep) <= es[n-1].epoch || off < es[n-1].startOffset) {
			return nil, fmt.Errorf("%w: epochs out of order", ErrBadCheckpoint)
		}
		es = append(es, epochEntry{int32(ep), off})
	}
	return es, nil
}

// encodePartitionMetadata renders Kafka's partition.metadata.
func encodePartitionMetadata(id [16]byte) []byte {
	return []byte("version: 0\ntopic_id: " + base64.RawURLEncoding.EncodeToString(id[:]) + "\n")
}

func parsePartitionMetadata(b []byte) ([16]byte, error) {
	var id [16]byte
	var version, topicID string
	for _, ln := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, ok := strings.Cut(ln, ":")
		if !ok {
			return id, fmt.Errorf("%w: partition.metadata line %q", ErrBadCheckpoint, ln)
		}
		switch strings.TrimSpace(k) {
		case "version":
			version = strings.TrimSpace(v)
		case "topic_id":
			topicID = strings.TrimSpace(v)
		}
	}
	if version != "0" {
		return id, fmt.Errorf("%w: partition.metadata version %q", ErrBadCheckpoint, version)
	}
	raw, err := base64.RawURLEncoding.DecodeString(topicID)
	if err != nil || len(raw) != 16 {
		return id, fmt.Errorf("%w: partition.metadata topic id %q", ErrBadCheckpoint, topicID)
	}
	copy(id[:], raw)
	return id, nil
}

// writeFileAtomic writes path through "<path>.tmp" and a rename; with
// sync, the tmp file is fsynced before and the directory after the rename.
func writeFileAtomic(path string, data []byte, sync bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if sync {
		return syncDir(filepath.Dir(path))
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
