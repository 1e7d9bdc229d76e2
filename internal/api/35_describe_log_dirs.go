package api

// DescribeLogDirs (key 35), versions 0-4.
//
// Lists this broker's log directories (log.dirs) and, in each, the
// replicas it holds, leader or follower, with their size in bytes (the
// whole batches of every segment, Kafka's UnifiedLog.size): Topics null
// asks for every partition, else the listed ones that are here. A
// reassignment's progress is the leader's size against a new replica's
// (`samsa cluster reassign --verify`).
//
// Differences from Kafka: no future replicas (AlterReplicaLogDirs is not
// served), so OffsetLag is 0 and IsFuture false; TotalBytes and
// UsableBytes (v4) are -1 (unknown); every directory is online (a
// partition whose log failed is left out). No authorization (no ACLs).
//
// Versions: v1 no change; v2 flexible; v3 top-level error code; v4
// total and usable bytes (KIP-827).

import (
	"context"
	"path/filepath"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
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
			rt := &x.Topics[len(x.Topics)-1]
			rt.Partitions = append(rt.Partitions, rp)
		}
	}
	for _, d := range dirs {
		resp.Dirs = append(resp.Dirs, *byDir[d])
	}
	return resp, nil
}
