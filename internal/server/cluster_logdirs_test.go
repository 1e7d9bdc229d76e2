package server_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// jbodSpecs are n nodes with two log dirs each; dirs[id] lists them.
func jbodSpecs(t *testing.T, n int) ([]nodeSpec, map[int32][2]string) {
	dirs := map[int32][2]string{}
	var out []nodeSpec
	for i := 1; i <= n; i++ {
		a, b := t.TempDir(), t.TempDir()
		dirs[int32(i)] = [2]string{a, b}
		out = append(out, nodeSpec{id: int32(i), extra: []string{"log.dirs=" + a + "," + b}})
	}
	return out, dirs
}

// replicaDirs returns, per broker, the log dir of topic-0's current
// replica and whether a future replica exists.
func replicaDirs(t *testing.T, adm *kadm.Client, topic string) (map[int32]string, map[int32]bool) {
	t.Helper()
	ctx := ctxFor(t, 10*time.Second)
	all, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	cur, fut := map[int32]string{}, map[int32]bool{}
	all.Each(func(d kadm.DescribedLogDir) {
		if d.Err != nil {
			t.Errorf("broker %d dir %s: %v", d.Broker, d.Dir, d.Err)
		}
		if d.TotalBytes <= 0 || d.UsableBytes < 0 || d.UsableBytes > d.TotalBytes {
			t.Errorf("broker %d dir %s: total %d usable %d", d.Broker, d.Dir, d.TotalBytes, d.UsableBytes)
		}
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if p.Topic != topic || p.Partition != 0 {
				return
			}
			if p.IsFuture {
				fut[p.Broker] = true
			} else {
				cur[p.Broker] = p.Dir
			}
		})
	})
	return cur, fut
}

// TestClusterLogDirsMoveUnderLoad: with two log dirs per broker, the
// replicas of a partition on the leader and on a follower are moved to
// their broker's other dir (kadm AlterReplicaLogDirs) under an idempotent
// acks=all load; DescribeLogDirs (kadm) shows the future replicas while
// they copy and the new dirs after; nothing acknowledged is lost.
func TestClusterLogDirsMoveUnderLoad(t *testing.T) {
	sp, dirs := jbodSpecs(t, 3)
	c := startCluster(t, sp, "min.insync.replicas=2")
	ctx := ctxFor(t, 120*time.Second)
	const topic = "jbod"
	createAssigned(ctx, t, c, 1, topic, []int32{1, 2, 3}, map[string]string{"segment.bytes": "65536"})
	leader := waitReplicas(ctx, t, c, 1, topic, []int32{1, 2, 3})
	follower := int32(1 + leader%3)
	lp := startLoad(ctx, t, c, 2, topic)
	for deadline := time.Now().Add(30 * time.Second); lp.count() < 3000; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			_, err := lp.halt()
			t.Fatalf("producer stuck at %d: %v", lp.count(), err)
		}
	}
	adm := kadm.NewClient(c.client(1))
	before, _ := replicaDirs(t, adm, topic)
	other := func(id int32) string {
		d := dirs[id]
		if filepath.Clean(before[id]) == filepath.Clean(d[0]) {
			return d[1]
		}
		return d[0]
	}
	for _, id := range []int32{leader, follower} {
		var req kadm.AlterReplicaLogDirsReq
		req.Add(other(id), kadm.TopicsSet{topic: {0: {}}})
		resps, err := adm.AlterBrokerReplicaLogDirs(ctx, id, req)
		if err != nil {
			t.Fatal(err)
		}
		if r := resps[topic][0]; r.Err != nil {
			t.Fatalf("broker %d: move: %v", id, r.Err)
		}
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		cur, fut := replicaDirs(t, adm, topic)
		if len(fut) == 0 && filepath.Clean(cur[leader]) == filepath.Clean(other(leader)) && filepath.Clean(cur[follower]) == filepath.Clean(other(follower)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("moves not done: current %v futures %v", cur, fut)
		}
	}
	for n := lp.count() + 500; lp.count() < n; time.Sleep(20 * time.Millisecond) {
	}
	acked, err := lp.halt()
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	checkAllThere(ctx, t, c, 3, topic, acked)
	for _, id := range []int32{leader, follower} {
		l, ok := c.nodes[id].s.LogForTest(topic, 0)
		if !ok || filepath.Dir(l.Dir()) != filepath.Clean(other(id)) || l.LogEndOffset() < int64(acked) {
			t.Fatalf("broker %d: log %v", id, ok)
		}
	}
}

// TestClusterLogDirsAlterErrors: Kafka's per-partition errors of
// AlterReplicaLogDirs, and a move to a replica's own dir.
func TestClusterLogDirsAlterErrors(t *testing.T) {
	sp, dirs := jbodSpecs(t, 2)
	c := startCluster(t, sp)
	ctx := ctxFor(t, 60*time.Second)
	createAssigned(ctx, t, c, 1, "on2", []int32{2}, nil)
	createAssigned(ctx, t, c, 1, "on1", []int32{1}, nil)
	waitReplicas(ctx, t, c, 1, "on2", []int32{2})
	waitReplicas(ctx, t, c, 1, "on1", []int32{1})
	adm := kadm.NewClient(c.client(1))
	alter := func(dir, topic string) error {
		t.Helper()
		var req kadm.AlterReplicaLogDirsReq
		req.Add(dir, kadm.TopicsSet{topic: {0: {}}})
		resps, err := adm.AlterBrokerReplicaLogDirs(ctx, 1, req)
		if err != nil {
			t.Fatal(err)
		}
		return resps[topic][0].Err
	}
	if err := alter(t.TempDir(), "on1"); err != kerr.LogDirNotFound {
		t.Errorf("unknown dir: %v", err)
	}
	if err := alter(dirs[1][1], "nosuch"); err != kerr.UnknownTopicOrPartition {
		t.Errorf("unknown topic: %v", err)
	}
	if err := alter(dirs[1][1], "on2"); err != kerr.ReplicaNotAvailable {
		t.Errorf("no replica here: %v", err)
	}
	cur, _ := replicaDirs(t, adm, "on1")
	if err := alter(cur[1], "on1"); err != nil {
		t.Errorf("move to its own dir: %v", err)
	}
	if _, fut := replicaDirs(t, adm, "on1"); len(fut) != 0 {
		t.Errorf("future replica after a move to the same dir: %v", fut)
	}
}
