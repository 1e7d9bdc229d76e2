package api_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// logDirOf returns the dir DescribeLogDirs (version v) lists the
// current replica of topic-partition in, and whether a future replica
// of it exists.
func logDirOf(t *testing.T, c *rawConn, v int16, topic string, partition int32) (dir string, future bool, resp *kmsg.DescribeLogDirsResponse) {
	t.Helper()
	req := kmsg.NewPtrDescribeLogDirsRequest()
	req.Version = v
	resp = c.do(req).(*kmsg.DescribeLogDirsResponse)
	for _, d := range resp.Dirs {
		for _, rt := range d.Topics {
			for _, p := range rt.Partitions {
				if rt.Topic == topic && p.Partition == partition {
					if p.IsFuture {
						future = true
					} else {
						dir = d.Dir
					}
				}
			}
		}
	}
	return dir, future, resp
}

// TestAPIAlterReplicaLogDirs sends AlterReplicaLogDirs at every version
// to a node with two log dirs: Kafka's per-partition errors, and a move
// that DescribeLogDirs (every version) then shows done.
func TestAPIAlterReplicaLogDirs(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	n := startNode(t, "log.dirs="+a+","+b)
	n.createTopic("ar", 1, nil)
	produceN(t, n, "ar", 0, 10)
	c := n.raw()
	for v := int16(0); v <= 2; v++ {
		cur, _, _ := logDirOf(t, c, 4, "ar", 0)
		other := a
		if filepath.Clean(cur) == filepath.Clean(a) {
			other = b
		}
		req := kmsg.NewPtrAlterReplicaLogDirsRequest()
		req.Version = v
		add := func(dir, topic string, partition int32) {
			d := kmsg.NewAlterReplicaLogDirsRequestDir()
			d.Dir = dir
			rt := kmsg.NewAlterReplicaLogDirsRequestDirTopic()
			rt.Topic, rt.Partitions = topic, []int32{partition}
			d.Topics = append(d.Topics, rt)
			req.Dirs = append(req.Dirs, d)
		}
		add(other, "ar", 0)
		add(t.TempDir(), "nodir", 0)
		add(other, "nosuch", 0)
		add(other, "ar", 5)
		add(other, strings.Repeat("x", 240), 0)
		resp := c.do(req).(*kmsg.AlterReplicaLogDirsResponse)
		got := map[string]int16{}
		for _, rt := range resp.Topics {
			for _, p := range rt.Partitions {
				got[rt.Topic+"/"+string(rune('0'+p.Partition))] = p.ErrorCode
			}
		}
		want := map[string]int16{
			"ar/0":                          0,
			"nodir/0":                       kerr.LogDirNotFound.Code,
			"nosuch/0":                      kerr.UnknownTopicOrPartition.Code,
			"ar/5":                          kerr.UnknownTopicOrPartition.Code,
			strings.Repeat("x", 240) + "/0": kerr.InvalidTopicException.Code,
		}
		for k, code := range want {
			if got[k] != code {
				t.Errorf("v%d %.20s: %v, want %v", v, k, kerr.ErrorForCode(got[k]), kerr.ErrorForCode(code))
			}
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			dir, fut, _ := logDirOf(t, c, 4, "ar", 0)
			if !fut && filepath.Clean(dir) == filepath.Clean(other) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("v%d: ar-0 in %s (future %v), want %s", v, dir, fut, other)
			}
		}
	}
	// Every record is still there after three moves.
	if got := n.endOffset("ar", 0); got != 10 {
		t.Fatalf("end offset %d after the moves", got)
	}
	if offs := n.consumeFrom("ar", 10); len(offs) != 10 || offs[9] != 9 {
		t.Fatalf("consumed %v", offs)
	}
	for v := int16(0); v <= 4; v++ {
		dir, fut, resp := logDirOf(t, c, v, "ar", 0)
		if dir == "" || fut || len(resp.Dirs) != 2 {
			t.Errorf("v%d: %+v", v, resp)
		}
		for _, d := range resp.Dirs {
			if v >= 4 && (d.TotalBytes <= 0 || d.UsableBytes < 0) {
				t.Errorf("v%d %s: total %d usable %d", v, d.Dir, d.TotalBytes, d.UsableBytes)
			}
			if d.ErrorCode != 0 {
				t.Errorf("v%d %s: %v", v, d.Dir, kerr.ErrorForCode(d.ErrorCode))
			}
		}
	}
}
