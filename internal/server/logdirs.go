package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/replica"
	"samsa/internal/storage"
)

// The broker's side of a failed log dir (docs/storage.md "Failed log
// dir"): while storage reports dirs offline, every heartbeat lists their
// directory ids in OfflineLogDirs (KIP-858), preceded by an
// AssignReplicasToDirs naming the replicas in those dirs that still lead
// or are in an ISR, so the controller moves those leaderships and ISR
// memberships (internal/controller/logdirs.go). A dir failure triggers a
// heartbeat at once.

// dirFailures is what the lifecycle needs to report failed log dirs.
type dirFailures struct {
	logs     *storage.Manager
	replicas *replica.Manager
	// ids are the directory ids of the log dirs (meta.properties
	// directory.id, read at start: a failed dir may be unreadable), by
	// cleaned path.
	ids map[string][16]byte
}

func newDirFailures(logs *storage.Manager, replicas *replica.Manager, dirs []string) *dirFailures {
	f := &dirFailures{logs: logs, replicas: replicas, ids: map[string][16]byte{}}
	for _, d := range dirs {
		d = filepath.Clean(d)
		var id [16]byte
		if mp, err := readMetaProperties(d); err == nil {
			if b, err := base64.RawURLEncoding.DecodeString(mp.DirectoryID); err == nil && len(b) == 16 {
				copy(id[:], b)
			}
		}
		if id == ([16]byte{}) {
			// An old format without directory.id: a stable id from the
			// path.
			sum := sha256.Sum256([]byte(d))
			copy(id[:], sum[:16])
		}
		f.ids[d] = id
	}
	return f
}

// prepare fills req.OfflineLogDirs and, first, sends the controller the
// replicas of those dirs that still lead or are in an ISR.
func (l *lifecycle) reportFailedDirs(ctx context.Context, req *kmsg.BrokerHeartbeatRequest) {
	f := l.dirs
	if f == nil {
		return
	}
	offline := f.logs.OfflineDirs()
	if len(offline) == 0 {
		return
	}
	for _, d := range offline {
		req.OfflineLogDirs = append(req.OfflineLogDirs, f.ids[d])
	}
	im := l.pub.Image()
	self := req.BrokerID
	byDir := map[string]map[[16]byte][]int32{}
	n := 0
	for _, r := range f.replicas.ReplicasIn(offline) {
		t, ok := im.Topics[r.Topic]
		if !ok || int(r.Partition) >= len(t.Partitions) {
			continue
		}
		p := t.Partitions[r.Partition]
		inISR := p.Leader == self
		for _, x := range p.ISR {
			inISR = inISR || x == self
		}
		if !inISR {
			continue
		}
		if byDir[r.Dir] == nil {
			byDir[r.Dir] = map[[16]byte][]int32{}
		}
		byDir[r.Dir][r.TopicID] = append(byDir[r.Dir][r.TopicID], r.Partition)
		n++
	}
	if n == 0 {
		return
	}
	a := kmsg.NewPtrAssignReplicasToDirsRequest()
	a.BrokerID, a.BrokerEpoch = req.BrokerID, req.BrokerEpoch
	for dir, topics := range byDir {
		d := kmsg.NewAssignReplicasToDirsRequestDirectory()
		d.ID = f.ids[dir]
		for id, parts := range topics {
			t := kmsg.NewAssignReplicasToDirsRequestDirectoryTopic()
			t.TopicID = id
			for _, p := range parts {
				rp := kmsg.NewAssignReplicasToDirsRequestDirectoryTopicPartition()
				rp.Partition = p
				t.Partitions = append(t.Partitions, rp)
			}
			d.Topics = append(d.Topics, t)
		}
		a.Directories = append(a.Directories, d)
	}
	if _, _, err := l.cs.Do(ctx, a, nil); err != nil {
		l.logger.Warn("report replicas of failed log dirs", "err", err)
		return
	}
	l.logger.Warn("reported replicas of failed log dirs to the controller", "dirs", offline, "replicas", n)
}
