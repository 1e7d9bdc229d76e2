package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// loadProducer produces "r-%06d" values to topic with an idempotent
// acks=all client, in batches of 20, until stop; acked is how many were
// acknowledged (all of 0..acked-1, in order).
type loadProducer struct {
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	acked int
	err   error
}

func startLoad(ctx context.Context, t *testing.T, c *testCluster, via int32, topic string) *loadProducer {
	t.Helper()
	cl := c.client(via, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(1000),
		kgo.RetryTimeout(60*time.Second))
	lp := &loadProducer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(lp.done)
		for n := 0; ; n += 20 {
			select {
			case <-lp.stop:
				return
			default:
			}
			var rs []*kgo.Record
			for i := n; i < n+20; i++ {
				rs = append(rs, &kgo.Record{Value: []byte(fmt.Sprintf("r-%06d", i))})
			}
			if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				lp.mu.Lock()
				lp.err = fmt.Errorf("produce %d..%d: %w", n, n+20, err)
				lp.mu.Unlock()
				return
			}
			lp.mu.Lock()
			lp.acked = n + 20
			lp.mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { lp.halt() })
	return lp
}

// halt stops the producer and returns how many records were acknowledged.
func (lp *loadProducer) halt() (int, error) {
	select {
	case <-lp.stop:
	default:
		close(lp.stop)
	}
	<-lp.done
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.acked, lp.err
}

func (lp *loadProducer) count() int {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.acked
}

// checkAllThere consumes topic-0 from the start through node via and
// checks that the first n values are "r-000000".. in order, each once.
func checkAllThere(ctx context.Context, t *testing.T, c *testCluster, via int32, topic string, n int) {
	t.Helper()
	cons := c.client(via, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < n {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume after %d records: %v", got, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if got < n {
				if want := fmt.Sprintf("r-%06d", got); string(r.Value) != want {
					t.Fatalf("offset %d holds %q, want %q", r.Offset, r.Value, want)
				}
			}
			got++
		})
	}
}

// createAssigned creates topic with one partition on replicas.
func createAssigned(ctx context.Context, t *testing.T, c *testCluster, via int32, topic string, replicas []int32, configs map[string]string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	rt.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: replicas}}
	for k, v := range configs {
		rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: k, Value: &v})
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c.client(via))
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create %s: %v", topic, kerr.ErrorForCode(code))
	}
}

// waitReplicas waits until node via's Metadata shows topic-0 with
// replicas and ISR want (sorted) and a leader in it; it returns the
// leader.
func waitReplicas(ctx context.Context, t *testing.T, c *testCluster, via int32, topic string, want []int32) int32 {
	t.Helper()
	adm := kadm.NewClient(c.client(via))
	want = slices.Sorted(slices.Values(want))
	var last kadm.PartitionDetail
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		last = md.Topics[topic].Partitions[0]
		reps, isr := slices.Sorted(slices.Values(last.Replicas)), slices.Sorted(slices.Values(last.ISR))
		if slices.Equal(reps, want) && slices.Equal(isr, want) && slices.Contains(want, last.Leader) {
			return last.Leader
		}
	}
	t.Fatalf("%s-0 on node %d: replicas %v isr %v leader %d; want replicas and ISR %v", topic, via, last.Replicas, last.ISR, last.Leader, want)
	return -1
}

// waitNoLog waits until node id holds no log of topic-0, on disk too.
func waitNoLog(t *testing.T, c *testCluster, id int32, topic string) {
	t.Helper()
	dir := filepath.Join(c.nodes[id].dir, topic+"-0")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, open := c.nodes[id].s.LogForTest(topic, 0)
		_, err := os.Stat(dir)
		if !open && os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d still holds %s (open %v, stat %v)", id, dir, open, err)
		}
	}
}

// TestClusterReassignUnderLoad: an RF 2 partition with data moves from
// brokers {1,2} to {2,3} (kadm AlterPartitionAssignments, sent to the
// node that is not the leader) while an idempotent acks=all producer
// writes to it: the move completes (ListPartitionReassignments empties,
// replicas and ISR {2,3}, leader moved off 1), no acknowledged record is
// lost or duplicated, broker 3 holds the partition's bytes and broker 1
// deleted its log. Cancelling the finished move answers
// NO_REASSIGNMENT_IN_PROGRESS.
func TestClusterReassignUnderLoad(t *testing.T) {
	c := startCluster(t, specs(3), "min.insync.replicas=2")
	ctx := ctxFor(t, 120*time.Second)
	const topic = "moving"
	createAssigned(ctx, t, c, 1, topic, []int32{1, 2}, nil)
	if l := waitReplicas(ctx, t, c, 3, topic, []int32{1, 2}); l != 1 {
		t.Fatalf("leader %d, want 1", l)
	}
	lp := startLoad(ctx, t, c, 2, topic)
	for deadline := time.Now().Add(30 * time.Second); lp.count() < 2000; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			_, err := lp.halt()
			t.Fatalf("producer stuck at %d: %v", lp.count(), err)
		}
	}

	adm := kadm.NewClient(c.client(3))
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, 0, []int32{2, 3})
	resps, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := resps[topic][0]; r.Err != nil {
		t.Fatalf("reassign: %v %s", r.Err, r.ErrMessage)
	}
	// Listed until done; then replicas and ISR are {2,3}.
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		l, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(l[topic]) == 0 {
			break
		}
		if p := l[topic][0]; !slices.Equal(p.Replicas, []int32{2, 3, 1}) || !slices.Equal(p.AddingReplicas, []int32{3}) || !slices.Equal(p.RemovingReplicas, []int32{1}) {
			t.Fatalf("ongoing reassignment: %+v", p)
		}
		if time.Now().After(deadline) {
			t.Fatalf("reassignment not done: %+v", l)
		}
	}
	leader := waitReplicas(ctx, t, c, 1, topic, []int32{2, 3})
	// Keep producing a moment on the new replicas.
	for n := lp.count() + 500; lp.count() < n; time.Sleep(20 * time.Millisecond) {
	}
	acked, err := lp.halt()
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	checkAllThere(ctx, t, c, 3, topic, acked)
	waitNoLog(t, c, 1, topic)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		l2, ok2 := c.nodes[2].s.LogForTest(topic, 0)
		l3, ok3 := c.nodes[3].s.LogForTest(topic, 0)
		if ok2 && ok3 && l2.LogEndOffset() == l3.LogEndOffset() && l3.LogEndOffset() >= int64(acked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas 2 and 3 of %s-0 differ (leader %d)", topic, leader)
		}
	}

	// DescribeLogDirs (kadm) shows the partition on 2 and 3, with the
	// same size, and no longer on 1.
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[int32]int64{}
	dirs.Each(func(d kadm.DescribedLogDir) {
		if d.Err != nil {
			t.Errorf("broker %d dir %s: %v", d.Broker, d.Dir, d.Err)
		}
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if p.Topic == topic {
				sizes[p.Broker] = p.Size
			}
		})
	})
	if _, on1 := sizes[1]; on1 || sizes[2] <= 0 || sizes[2] != sizes[3] {
		t.Fatalf("log dir sizes of %s-0 by broker: %v", topic, sizes)
	}

	var cancel kadm.AlterPartitionAssignmentsReq
	cancel.Assign(topic, 0, nil)
	resps, err = adm.AlterPartitionAssignments(ctx, cancel)
	if err != nil {
		t.Fatal(err)
	}
	if r := resps[topic][0]; r.Err != kerr.NoReassignmentInProgress {
		t.Fatalf("cancel after the move: %v", r.Err)
	}
}

// TestClusterReassignSurvivesControllerFailover: a move to a broker
// that is down stays in progress; the active controller is stopped; the
// new one carries the move on: once the broker is back it catches up,
// joins the ISR, and the move completes (the leader, a removed replica,
// hands over), with every acknowledged record kept.
func TestClusterReassignSurvivesControllerFailover(t *testing.T) {
	c := startCluster(t, []nodeSpec{{id: 1}, {id: 2}, {id: 3}, {id: 4, roles: "broker"}}, "min.insync.replicas=1")
	ctx := ctxFor(t, 150*time.Second)
	ctl := c.controllerID(ctx, 4)
	var a, b int32 // the voters that stay
	for id := int32(1); id <= 3; id++ {
		if id == ctl {
			continue
		}
		if a == 0 {
			a = id
		} else {
			b = id
		}
	}
	const topic = "moving"
	createAssigned(ctx, t, c, 4, topic, []int32{a, b}, nil)
	waitReplicas(ctx, t, c, 4, topic, []int32{a, b})
	lp := startLoad(ctx, t, c, a, topic)
	for lp.count() < 1000 {
		time.Sleep(20 * time.Millisecond)
	}

	// Broker 4 stops; the move {a,b} -> {b,4} waits for it.
	c.nodes[4].s.Close()
	c.nodes[4].s = nil
	adm := kadm.NewClient(c.client(a))
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, 0, []int32{b, 4})
	resps, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := resps[topic][0]; r.Err != nil {
		t.Fatalf("reassign: %v %s", r.Err, r.ErrMessage)
	}
	l, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if p := l[topic][0]; !slices.Equal(p.AddingReplicas, []int32{4}) || !slices.Equal(p.RemovingReplicas, []int32{a}) {
		t.Fatalf("move in progress: %+v", l)
	}

	// The active controller stops; a and b elect a new one.
	c.nodes[ctl].s.Close()
	c.nodes[ctl].s = nil
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if id := c.controllerID(ctx, a); id == a || id == b {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new controller")
		}
	}
	admB := kadm.NewClient(c.client(b))
	if l, err := admB.ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {0: {}}}); err != nil || len(l[topic]) != 1 {
		t.Fatalf("move after the failover: %+v %v", l, err)
	}

	// Broker 4 returns: it catches up and the move completes.
	c.restart(4)
	waitReplicas(ctx, t, c, b, topic, []int32{4, b})
	for n := lp.count() + 300; lp.count() < n; time.Sleep(20 * time.Millisecond) {
	}
	acked, err := lp.halt()
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	checkAllThere(ctx, t, c, b, topic, acked)
	waitNoLog(t, c, a, topic)
}
