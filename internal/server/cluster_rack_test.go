package server_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterRackFollowerFetching: three brokers in racks a, b and c with
// replica.selector.class = Kafka's RackAwareReplicaSelector; a topic of
// replication factor 3 led by broker 1 (rack a). A consumer with
// client.rack b reads every record, in order, and the follower in rack b
// served its fetches (broker 3, rack c, served none); a consumer with no
// rack reads from the leader only.
func TestClusterRackFollowerFetching(t *testing.T) {
	sp := specs(3)
	for i, rack := range []string{"a", "b", "c"} {
		sp[i].extra = []string{"broker.rack=" + rack}
	}
	c := startCluster(t, sp, "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector", "min.insync.replicas=2")
	ctx := ctxFor(t, 90*time.Second)
	const topic = "racked"

	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, []int32{1, 2, 3}
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30_000
	resp, err := req.RequestWith(ctx, c.client(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		leader, _, isr := partitionState(ctx, t, c, 1, topic, 0)
		if leader == 1 && slices.Equal(isr, []int32{1, 2, 3}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leader %d ISR %v, want leader 1 and ISR [1 2 3]", leader, isr)
		}
	}

	const n = 600
	prod := c.client(1, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Value: []byte(fmt.Sprintf("r-%06d", i))})
	}
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	consume := func(opts ...kgo.Opt) {
		t.Helper()
		cons := c.client(1, append([]kgo.Opt{
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
			kgo.FetchMaxWait(200 * time.Millisecond), kgo.FetchMaxBytes(4 << 10), kgo.FetchMaxPartitionBytes(4 << 10),
		}, opts...)...)
		next := 0
		for next < n {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d records", next, n)
			}
			fs.EachError(func(tp string, p int32, err error) { t.Logf("fetch %s-%d: %v", tp, p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				if want := fmt.Sprintf("r-%06d", next); r.Offset != int64(next) || string(r.Value) != want {
					t.Fatalf("record at %d is %q, want offset %d %q", r.Offset, r.Value, next, want)
				}
				next++
			})
		}
		cons.Close()
	}

	// No rack: the leader serves.
	base2, base3 := c.nodes[2].s.FollowerReadsForTest(), c.nodes[3].s.FollowerReadsForTest()
	consume()
	if d2, d3 := c.nodes[2].s.FollowerReadsForTest()-base2, c.nodes[3].s.FollowerReadsForTest()-base3; d2 != 0 || d3 != 0 {
		t.Fatalf("a consumer without a rack was served by followers: broker 2 %d, broker 3 %d reads", d2, d3)
	}

	// Rack b: broker 2 serves. Small fetches (4 KiB) make it many reads.
	consume(kgo.Rack("b"))
	d1 := c.nodes[1].s.FollowerReadsForTest()
	d2 := c.nodes[2].s.FollowerReadsForTest() - base2
	d3 := c.nodes[3].s.FollowerReadsForTest() - base3
	t.Logf("follower-served consumer reads: broker 1 %d, broker 2 %d, broker 3 %d", d1, d2, d3)
	if d2 < 5 || d3 != 0 || d1 != 0 {
		t.Fatalf("follower reads: broker 1 %d, broker 2 %d (want several), broker 3 %d", d1, d2, d3)
	}
}
