package server_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestClusterRackFollowerFetching: three brokers in racks a, b and c with
// replica.selector.class = Kafka's RackAwareReplicaSelector; a topic of
// replication factor 3 led by broker 1 (rack a). A consumer with no rack
// reads from the leader only; a consumer with client.rack b reads every
// record, in order, and the follower in rack b served its fetches
// (broker 3, rack c, served none). Raw fetches: the leader answers rack b
// with preferred replica 2 at once, also in an incremental session
// fetch; the follower serves v11, refuses v10. Broker 2 dies and leaves
// the ISR: the rack-b consumer goes back to the leader and reads the
// records produced since.
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
	pad := bytes.Repeat([]byte("k"), 200)
	// Batches of at most 4 KiB and fetches of 4 KiB: reading takes
	// dozens of fetches.
	prod := c.client(1, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchMaxBytes(4<<10), kgo.ProducerBatchCompression(kgo.NoCompression()))
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Value: []byte(fmt.Sprintf("r-%06d", i)), Key: pad})
	}
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// newConsumer reads the partition from the start; its read(to)
	// checks every record below to, in order.
	newConsumer := func(opts ...kgo.Opt) func(to int) {
		cons := c.client(1, append([]kgo.Opt{
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
			kgo.FetchMaxWait(200 * time.Millisecond), kgo.FetchMaxBytes(4 << 10), kgo.FetchMaxPartitionBytes(4 << 10),
		}, opts...)...)
		next := 0
		return func(to int) {
			t.Helper()
			for next < to {
				fs := cons.PollFetches(ctx)
				if ctx.Err() != nil {
					t.Fatalf("consumed %d of %d records", next, to)
				}
				fs.EachError(func(tp string, p int32, err error) { t.Logf("fetch %s-%d: %v", tp, p, err) })
				fs.EachRecord(func(r *kgo.Record) {
					if want := fmt.Sprintf("r-%06d", next); r.Offset != int64(next) || string(r.Value) != want {
						t.Fatalf("record at %d is %q, want offset %d %q", r.Offset, r.Value, next, want)
					}
					next++
				})
			}
		}
	}
	reads := func(id int32) int64 { return c.nodes[id].s.FollowerReadsForTest() }

	// No rack: the leader serves.
	newConsumer()(n)
	if r2, r3 := reads(2), reads(3); r2 != 0 || r3 != 0 {
		t.Fatalf("a consumer without a rack was served by followers: broker 2 %d, broker 3 %d reads", r2, r3)
	}

	// Rack b: broker 2 serves: the records take over 30 fetches.
	rackB := newConsumer(kgo.Rack("b"), kgo.RecheckPreferredReplicaInterval(time.Second))
	rackB(n)
	r1, r2, r3 := reads(1), reads(2), reads(3)
	t.Logf("follower-served consumer reads: broker 1 %d, broker 2 %d, broker 3 %d", r1, r2, r3)
	if r2 < 25 || r3 != 0 || r1 != 0 {
		t.Fatalf("follower reads: broker 1 %d, broker 2 %d (want 25+), broker 3 %d", r1, r2, r3)
	}

	// Raw fetches. To the leader with rack b: answered at once despite
	// MinBytes and MaxWait, with the preferred replica and no records,
	// also in an incremental fetch of the session. To broker 2: v11+ is
	// served, v10 is NOT_LEADER_OR_FOLLOWER.
	topicID := func() [16]byte {
		md := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(topic)
		md.Topics = append(md.Topics, mt)
		mr, err := md.RequestWith(ctx, c.client(1))
		if err != nil {
			t.Fatal(err)
		}
		return mr.Topics[0].TopicID
	}()
	rawFetch := func(via int32, version int16, rack string, sessionID, epoch int32, withPartition bool) (kmsg.FetchResponseTopicPartition, bool, int32, time.Duration) {
		t.Helper()
		fr := kmsg.NewPtrFetchRequest()
		fr.Version, fr.MaxBytes, fr.MinBytes, fr.MaxWaitMillis = version, 1<<20, 1<<20, 8000
		fr.Rack, fr.SessionID, fr.SessionEpoch = rack, sessionID, epoch
		if via != 1 {
			fr.MinBytes = 1 // the follower answers with what it has
		}
		if withPartition {
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic, ft.TopicID = topic, topicID
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 1<<20, -1
			ft.Partitions = append(ft.Partitions, fp)
			fr.Topics = append(fr.Topics, ft)
		}
		began := time.Now()
		// franz-go sends its newest version the broker has, up to the
		// client's maximum.
		vs := kversion.Stable()
		vs.SetMaxKeyVersion(1, version)
		resp, err := c.client(via, kgo.MaxVersions(vs)).Broker(int(via)).Request(ctx, fr)
		if err != nil {
			t.Fatal(err)
		}
		r := resp.(*kmsg.FetchResponse)
		if r.ErrorCode != 0 {
			t.Fatalf("fetch error %d", r.ErrorCode)
		}
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
			return kmsg.FetchResponseTopicPartition{}, false, r.SessionID, time.Since(began)
		}
		return r.Topics[0].Partitions[0], true, r.SessionID, time.Since(began)
	}
	p, ok, session, took := rawFetch(1, 18, "b", 0, 0, true)
	if !ok || p.ErrorCode != 0 || p.PreferredReadReplica != 2 || len(p.RecordBatches) != 0 || p.HighWatermark != n || took > 4*time.Second || session == 0 {
		t.Fatalf("leader, rack b: ok %v code %d preferred %d, %d bytes, HW %d, in %v (session %d)", ok, p.ErrorCode, p.PreferredReadReplica, len(p.RecordBatches), p.HighWatermark, took, session)
	}
	p, ok, _, took = rawFetch(1, 18, "b", session, 1, false)
	if !ok || p.PreferredReadReplica != 2 || took > 4*time.Second {
		t.Fatalf("leader, rack b, incremental: ok %v preferred %d in %v", ok, p.PreferredReadReplica, took)
	}
	if p, ok, _, _ = rawFetch(2, 11, "", 0, -1, true); !ok || p.ErrorCode != 0 || p.PreferredReadReplica != -1 || len(p.RecordBatches) == 0 {
		t.Fatalf("follower, v11: ok %v code %d preferred %d, %d bytes", ok, p.ErrorCode, p.PreferredReadReplica, len(p.RecordBatches))
	}
	if p, ok, _, _ = rawFetch(2, 10, "", 0, -1, true); !ok || p.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("follower, v10: ok %v code %d, %d bytes", ok, p.ErrorCode, len(p.RecordBatches))
	}

	// Broker 2 dies and leaves the ISR: the consumer goes back to the
	// leader (an error, or the recheck), which no longer selects broker 2
	// (nor broker 3, in rack c), and reads what is produced since.
	if err := c.nodes[2].s.Crash(); err != nil {
		t.Fatal(err)
	}
	c.nodes[2].s = nil
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		leader, _, isr := partitionState(ctx, t, c, 1, topic, 0)
		if leader == 1 && slices.Equal(isr, []int32{1, 3}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leader %d ISR %v, want leader 1 and ISR [1 3]", leader, isr)
		}
	}
	rs = rs[:0]
	for i := n; i < 2*n; i++ {
		rs = append(rs, &kgo.Record{Value: []byte(fmt.Sprintf("r-%06d", i)), Key: pad})
	}
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	rackB(2 * n)
	if r1, r3 := reads(1), reads(3); r1 != 0 || r3 != 0 {
		t.Fatalf("after broker 2 left: follower reads broker 1 %d, broker 3 %d", r1, r3)
	}
}
