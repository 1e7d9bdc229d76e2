package api

// DescribeLogDirs (key 35), versions 0-4.
//
// Lists this broker's log directories (log.dirs) and, in each, the
// replicas it holds, leader or follower, with their size in bytes (the
// whole batches of every segment, Kafka's UnifiedLog.size): Topics null
// asks for every partition, else the listed ones that are here. A
// reassignment's progress is the leader's size against a new replica's
// (`samsa cluster reassign --verify`). A replica being moved by
// AlterReplicaLogDirs appears twice: in its current dir, and in the
// destination as a future replica (IsFuture) whose OffsetLag is the
// current log end offset minus the future's. TotalBytes and UsableBytes
// (v4) come from statfs(2) of each dir (-1 if it fails).
//
// Differences from Kafka: a follower's OffsetLag is its log end offset's
// distance to the high watermark the leader last sent it (Kafka
// subtracts the follower's own high watermark, never above its log end,
// so it reports 0); a leader's is 0 as in Kafka. A failed (offline) log
// dir answers KAFKA_STORAGE_ERROR with no replicas, as in Kafka; a
// partition whose log failed to open is left out. No authorization (no ACLs).
//
// Versions: v1 no change; v2 flexible; v3 top-level error code; v4
// total and usable bytes (KIP-827).

import (
	"context"
	"path/filepath"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
	"samsa/internal/storage"
)

func (h *Handler) describeLogDirs(_ context.Context, _ *network.Conn, req *kmsg.DescribeLogDirsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	abs := func(d string) string {
		if a, err := filepath.Abs(d); err == nil {
			return a
		}
		return filepath.Clean(d)
	}
	var dirs []string
	if h.d.Config != nil {
		for _, d := range h.d.Config.LogDirs {
			if d = abs(d); !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	wanted := func(string, int32) bool { return true }
	if req.Topics != nil {
		set := map[string][]int32{}
		for _, rt := range req.Topics {
			set[rt.Topic] = append(set[rt.Topic], rt.Partitions...)
		}
		wanted = func(t string, p int32) bool { return slices.Contains(set[t], p) }
	}
	byDir := map[string]*kmsg.DescribeLogDirsResponseDir{}
	dirFor := func(d string) *kmsg.DescribeLogDirsResponseDir {
		if x := byDir[d]; x != nil {
			return x
		}
		x := kmsg.NewDescribeLogDirsResponseDir()
		x.Dir = d
		byDir[d] = &x
		return &x
	}
	for _, d := range dirs {
		dirFor(d)
	}
	if h.d.Replicas != nil {
		for _, li := range h.d.Replicas.LogInfos() {
			if !wanted(li.Topic, li.Partition) {
				continue
			}
			d := abs(li.Dir)
			if !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
			x := dirFor(d)
			if n := len(x.Topics); n == 0 || x.Topics[n-1].Topic != li.Topic {
				rt := kmsg.NewDescribeLogDirsResponseDirTopic()
				rt.Topic = li.Topic
				x.Topics = append(x.Topics, rt)
			}
			rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			rp.Partition, rp.Size = li.Partition, li.Size
			rp.OffsetLag, rp.IsFuture = li.OffsetLag, li.IsFuture
			rt := &x.Topics[len(x.Topics)-1]
			rt.Partitions = append(rt.Partitions, rp)
		}
	}
	var offline []string
	if h.d.Replicas != nil {
		for _, d := range h.d.Replicas.OfflineLogDirs() {
			offline = append(offline, abs(d))
		}
	}
	for _, d := range dirs {
		x := byDir[d]
		x.TotalBytes, x.UsableBytes = -1, -1
		if slices.Contains(offline, d) {
			// Kafka's answer for an offline dir: the error, no replicas.
			x.ErrorCode, x.Topics = kerr.KafkaStorageError.Code, nil
		} else if total, usable, err := storage.DirUsage(d); err == nil {
			x.TotalBytes, x.UsableBytes = total, usable
		}
		resp.Dirs = append(resp.Dirs, *x)
	}
	return resp, nil
}
