package server_test

import (
	"os"
	"path/filepath"
	"slices"
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
	var cur map[int32]string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if cur, _ = replicaDirs(t, adm, "on1"); cur[1] != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("on1-0 not listed on broker 1")
		}
	}
	if err := alter(cur[1], "on1"); err != nil {
		t.Errorf("move to its own dir: %v", err)
	}
	if _, fut := replicaDirs(t, adm, "on1"); len(fut) != 0 {
		t.Errorf("future replica after a move to the same dir: %v", fut)
	}
}

// moveReplicaTo moves broker id's replica of topic-0 to dir and waits
// for the move.
func moveReplicaTo(t *testing.T, c *testCluster, adm *kadm.Client, id int32, topic, dir string) {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	var req kadm.AlterReplicaLogDirsReq
	req.Add(dir, kadm.TopicsSet{topic: {0: {}}})
	resps, err := adm.AlterBrokerReplicaLogDirs(ctx, id, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := resps[topic][0]; r.Err != nil {
		t.Fatalf("broker %d: move %s: %v", id, topic, r.Err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if l, ok := c.nodes[id].s.LogForTest(topic, 0); ok && filepath.Dir(l.Dir()) == filepath.Clean(dir) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker %d: %s-0 not moved to %s", id, topic, dir)
		}
	}
}

// TestClusterLogDirFailure: broker 1 leads two partitions, one in each of
// its log dirs, and follows a third in its second dir; that dir is
// removed under it while an idempotent
// acks=all producer writes to the partition in that dir. The next segment
// roll fails there, the dir goes offline, the broker reports it, and the
// controller moves that partition's leadership to another ISR member and
// drops broker 1 from its ISR and from the followed partition's ISR
// (replicas of a failed dir are reported with AssignReplicasToDirs and
// stop fetching); broker 1 keeps leading the partition in its
// other dir (acks=all produce through it works) and takes new partitions
// there; nothing acknowledged is lost.
func TestClusterLogDirFailure(t *testing.T) {
	sp, dirs := jbodSpecs(t, 3)
	c := startCluster(t, sp, "min.insync.replicas=2")
	ctx := ctxFor(t, 120*time.Second)
	adm := kadm.NewClient(c.client(2))
	small := map[string]string{"segment.bytes": "16384"}
	createAssigned(ctx, t, c, 2, "failing", []int32{1, 2, 3}, small)
	createAssigned(ctx, t, c, 2, "staying", []int32{1, 2, 3}, small)
	for _, topic := range []string{"failing", "staying"} {
		if l := waitReplicas(ctx, t, c, 2, topic, []int32{1, 2, 3}); l != 1 {
			t.Fatalf("%s: leader %d, want 1", topic, l)
		}
	}
	// A partition broker 1 follows, in the dir that fails.
	createAssigned(ctx, t, c, 2, "followed", []int32{2, 1, 3}, small)
	if l := waitReplicas(ctx, t, c, 2, "followed", []int32{1, 2, 3}); l != 2 {
		t.Fatalf("followed: leader %d, want 2", l)
	}
	// The metadata log lives in the first dir: the second one fails.
	moveReplicaTo(t, c, adm, 1, "failing", dirs[1][1])
	moveReplicaTo(t, c, adm, 1, "staying", dirs[1][0])
	moveReplicaTo(t, c, adm, 1, "followed", dirs[1][1])

	lp := startLoad(ctx, t, c, 2, "failing")
	for deadline := time.Now().Add(30 * time.Second); lp.count() < 1000; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			_, err := lp.halt()
			t.Fatalf("producer stuck at %d: %v", lp.count(), err)
		}
	}
	if err := os.RemoveAll(dirs[1][1]); err != nil {
		t.Fatal(err)
	}
	var last kadm.PartitionDetail
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		md, err := adm.Metadata(ctx, "failing")
		if err != nil {
			t.Fatal(err)
		}
		last = md.Topics["failing"].Partitions[0]
		if last.Leader != 1 && last.Leader >= 0 && !slices.Contains(last.ISR, 1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("failing-0 after broker 1's dir failed: leader %d isr %v", last.Leader, last.ISR)
		}
	}
	t.Logf("leadership of failing-0 moved: leader %d isr %v", last.Leader, last.ISR)
	for n := lp.count() + 1000; lp.count() < n; time.Sleep(20 * time.Millisecond) {
	}
	acked, err := lp.halt()
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	checkAllThere(ctx, t, c, 3, "failing", acked)

	// Broker 1 left the ISR of the partition it followed in that dir (it
	// stopped fetching; the controller dropped it).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		md, err := adm.Metadata(ctx, "followed")
		if err != nil {
			t.Fatal(err)
		}
		p := md.Topics["followed"].Partitions[0]
		if p.Leader == 2 && !slices.Contains(p.ISR, 1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("followed-0: leader %d isr %v", p.Leader, p.ISR)
		}
	}
	// Broker 1 still leads the partition of its good dir, in the ISR.
	md, err := adm.Metadata(ctx, "staying")
	if err != nil {
		t.Fatal(err)
	}
	if p := md.Topics["staying"].Partitions[0]; p.Leader != 1 || !slices.Contains(p.ISR, 1) {
		t.Fatalf("staying-0: leader %d isr %v", p.Leader, p.ISR)
	}
	lp2 := startLoad(ctx, t, c, 1, "staying")
	for deadline := time.Now().Add(30 * time.Second); lp2.count() < 200; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			_, err := lp2.halt()
			t.Fatalf("producer to the good dir stuck at %d: %v", lp2.count(), err)
		}
	}
	acked2, err := lp2.halt()
	if err != nil {
		t.Fatal(err)
	}
	checkAllThere(ctx, t, c, 1, "staying", acked2)
	// DescribeLogDirs on broker 1 reports the failed dir.
	ds, err := adm.DescribeBrokerLogDirs(ctx, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := ds[filepath.Clean(dirs[1][1])]; !ok || d.Err != kerr.KafkaStorageError {
		t.Fatalf("failed dir described as %+v", ds)
	}
	if d := ds[filepath.Clean(dirs[1][0])]; d.Err != nil {
		t.Fatalf("good dir: %v", d.Err)
	}
	// A new partition on broker 1 goes to the good dir.
	createAssigned(ctx, t, c, 2, "fresh", []int32{1}, nil)
	waitReplicas(ctx, t, c, 2, "fresh", []int32{1})
	// Broker 1 creates the log once its own metadata shows the
	// partition, a moment after the controller's does.
	l, ok := c.nodes[1].s.LogForTest("fresh", 0)
	for deadline := time.Now().Add(10 * time.Second); !ok && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		l, ok = c.nodes[1].s.LogForTest("fresh", 0)
	}
	if !ok || filepath.Dir(l.Dir()) != filepath.Clean(dirs[1][0]) {
		t.Fatalf("fresh-0 on broker 1: %v", ok)
	}
}
