package replica

import (
	"path/filepath"
	"slices"
	"strings"
)

// LogInfo describes this broker's replica of one partition on disk
// (DescribeLogDirs, and the progress of a reassignment: a new replica's
// size against the leader's).
type LogInfo struct {
	Topic     string
	Partition int32
	// Dir is the log.dirs entry holding the partition's directory.
	Dir string
	// Size is the log's size in bytes; LogEndOffset its log end offset.
	Size         int64
	LogEndOffset int64
}

// LogInfos returns every replica this broker holds (leader or follower,
// offline ones left out), sorted by topic and partition.
func (m *Manager) LogInfos() []LogInfo {
	m.mu.RLock()
	ps := make([]*Partition, 0, len(m.partitions))
	for _, p := range m.partitions {
		ps = append(ps, p)
	}
	m.mu.RUnlock()
	out := make([]LogInfo, 0, len(ps))
	for _, p := range ps {
		if p.log.Offline() {
			continue
		}
		out = append(out, LogInfo{
			Topic: p.topic, Partition: p.index, Dir: filepath.Dir(p.log.Dir()),
			Size: p.log.Size(), LogEndOffset: p.log.LogEndOffset(),
		})
	}
	slices.SortFunc(out, func(a, b LogInfo) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	return out
}
