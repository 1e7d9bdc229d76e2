package replica

import (
	"path/filepath"
	"slices"
	"strings"
)

// LogInfo describes this broker's replica of one partition on disk
// (DescribeLogDirs, and the progress of a reassignment: a new replica's
// size against the leader's), or a future replica: the copy of a
// replica being moved to another log dir (AlterReplicaLogDirs).
type LogInfo struct {
	Topic     string
	Partition int32
	// Dir is the log.dirs entry holding the partition's directory (for
	// a future replica: the destination).
	Dir string
	// Size is the log's size in bytes; LogEndOffset its log end offset.
	Size         int64
	LogEndOffset int64
	// IsFuture marks a future replica.
	IsFuture bool
	// OffsetLag is what DescribeLogDirs reports: for a future replica the
	// current log's end offset minus the future's (Kafka's
	// ReplicaManager.getLogEndOffsetLag); for a follower, how far its log
	// end is behind the high watermark the leader last sent it (Kafka
	// subtracts the replica's own high watermark, which on a follower
	// never exceeds its log end, so it always reports 0 there); 0 on a
	// leader.
	OffsetLag int64
}

// LogInfos returns every replica this broker holds (leader or follower,
// offline ones left out) and every future replica, sorted by topic and
// partition, the current replica before the future one.
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
		leo := p.log.LogEndOffset()
		li := LogInfo{
			Topic: p.topic, Partition: p.index, Dir: filepath.Dir(p.log.Dir()),
			Size: p.log.Size(), LogEndOffset: leo,
		}
		if st := p.state.Load(); st != nil && !st.isLeader {
			li.OffsetLag = max(p.leaderHW.Load()-leo, 0)
		}
		out = append(out, li)
	}
	if m.logs != nil {
		for _, f := range m.logs.Futures() {
			out = append(out, LogInfo{
				Topic: f.Topic, Partition: f.Partition, Dir: f.Dir,
				Size: f.Size, LogEndOffset: f.LogEndOffset, IsFuture: true, OffsetLag: f.OffsetLag,
			})
		}
	}
	slices.SortStableFunc(out, func(a, b LogInfo) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		if a.IsFuture != b.IsFuture {
			if a.IsFuture {
				return 1
			}
			return -1
		}
		return 0
	})
	return out
}

// AlterLogDir moves this broker's replica of the partition to the log
// dir dir, in the background (AlterReplicaLogDirs; storage.Manager.AlterLogDir
// has the semantics and errors).
func (m *Manager) AlterLogDir(topic string, partition int32, dir string) error {
	return m.logs.AlterLogDir(topic, partition, dir)
}

// DirReplica is a replica this broker holds in a given log dir.
type DirReplica struct {
	Topic     string
	TopicID   [16]byte
	Partition int32
	// Dir is the log.dirs entry holding it.
	Dir string
}

// ReplicasIn lists this broker's replicas whose log is in one of dirs
// (cleaned log.dirs entries): the replicas of a failed log dir, which the
// broker reports to the controller (AssignReplicasToDirs).
func (m *Manager) ReplicasIn(dirs []string) []DirReplica {
	if len(dirs) == 0 {
		return nil
	}
	m.mu.RLock()
	ps := make([]*Partition, 0, len(m.partitions))
	for _, p := range m.partitions {
		ps = append(ps, p)
	}
	m.mu.RUnlock()
	var out []DirReplica
	for _, p := range ps {
		d := filepath.Dir(p.log.Dir())
		if slices.Contains(dirs, d) {
			out = append(out, DirReplica{Topic: p.topic, TopicID: p.topicID, Partition: p.index, Dir: d})
		}
	}
	return out
}

// OfflineLogDirs lists the failed log dirs (storage.Manager.OfflineDirs).
func (m *Manager) OfflineLogDirs() []string {
	if m.logs == nil {
		return nil
	}
	return m.logs.OfflineDirs()
}
