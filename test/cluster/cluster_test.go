package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/test/brokerproc"
)

// TestClusterThreeNodes starts one 3-node cluster (racks a, b, c) and
// runs, in order, what a user does with it: look at it, create a topic
// through a node that is not the controller, produce and consume across
// brokers, and pause a broker until it is fenced and then resume it.
func TestClusterThreeNodes(t *testing.T) {
	c := startCluster(t, 3, "a", "b", "c")
	addrs := c.Bootstrap()
	racks := map[int32]string{1: "a", 2: "b", 3: "c"}

	t.Run("Forms", func(t *testing.T) {
		ctx := ctxFor(t, 30*time.Second)
		leader := int32(-1)
		for _, n := range c.Nodes {
			md, err := metadataOf(ctx, t, n.KafkaAddr)
			if err != nil {
				t.Fatalf("node %d: Metadata: %v", n.ID, err)
			}
			if got := brokerIDs(md); !slices.Equal(got, []int32{1, 2, 3}) {
				t.Errorf("node %d: Metadata brokers %v, want [1 2 3]", n.ID, got)
			}
			for _, b := range md.Brokers {
				want := c.Node(b.NodeID)
				if want == nil || fmt.Sprintf("%s:%d", b.Host, b.Port) != want.KafkaAddr || b.Rack == nil || *b.Rack != racks[b.NodeID] {
					t.Errorf("node %d: Metadata broker %d at %s:%d rack %v; want %s rack %s", n.ID, b.NodeID, b.Host, b.Port, b.Rack, want.KafkaAddr, racks[b.NodeID])
				}
			}
			if md.ControllerID < 1 || md.ControllerID > 3 {
				t.Errorf("node %d: Metadata controller %d", n.ID, md.ControllerID)
			}
			dreq := kmsg.NewPtrDescribeClusterRequest()
			dreq.IncludeFencedBrokers = true
			resp, err := seedRequest(ctx, t, n.KafkaAddr, dreq)
			if err != nil {
				t.Fatalf("node %d: DescribeCluster: %v", n.ID, err)
			}
			dc := resp.(*kmsg.DescribeClusterResponse)
			if len(dc.Brokers) != 3 || slices.ContainsFunc(dc.Brokers, func(b kmsg.DescribeClusterResponseBroker) bool { return b.IsFenced }) {
				t.Errorf("node %d: DescribeCluster brokers %+v", n.ID, dc.Brokers)
			}
			q, err := quorumOf(ctx, t, n.KafkaAddr)
			if err != nil {
				t.Fatalf("node %d: DescribeQuorum: %v", n.ID, err)
			}
			var voters []int32
			for _, v := range q.CurrentVoters {
				voters = append(voters, v.ReplicaID)
			}
			slices.Sort(voters)
			if q.LeaderID < 1 || !slices.Equal(voters, []int32{1, 2, 3}) || q.LeaderEpoch < 1 {
				t.Errorf("node %d: DescribeQuorum leader %d epoch %d voters %v", n.ID, q.LeaderID, q.LeaderEpoch, voters)
			}
			if leader >= 0 && q.LeaderID != leader {
				t.Errorf("node %d names quorum leader %d, an earlier node %d", n.ID, q.LeaderID, leader)
			}
			leader = q.LeaderID
		}
	})

	t.Run("CLI", func(t *testing.T) {
		r := runSamsa(t, "-X", strings.Join(addrs, ","), "cluster", "info", "--format", "json")
		var info struct {
			Brokers []struct {
				NodeID int32   `json:"node_id"`
				Rack   *string `json:"rack"`
				Fenced bool    `json:"fenced"`
			} `json:"brokers"`
			ActiveController int32 `json:"active_controller"`
			Quorum           *struct {
				LeaderID int32 `json:"leader_id"`
				Voters   []struct {
					NodeID int32 `json:"node_id"`
					Lag    int64 `json:"lag"`
				} `json:"voters"`
			} `json:"quorum"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || r.exitCode != 0 {
			t.Fatalf("cluster info: exit %d, %v\n%s%s", r.exitCode, err, r.stdout, r.stderr)
		}
		if len(info.Brokers) != 3 || info.Quorum == nil || len(info.Quorum.Voters) != 3 || info.ActiveController != info.Quorum.LeaderID {
			t.Errorf("cluster info: %s", r.stdout)
		}
		for _, v := range info.Quorum.Voters {
			if v.Lag < 0 {
				t.Errorf("voter %d: lag unknown: %s", v.NodeID, r.stdout)
			}
		}
		r = runSamsa(t, "-X", addrs[1], "cluster", "health")
		if r.exitCode != 0 || !strings.HasPrefix(r.stdout, "healthy: 3 live brokers, quorum leader") {
			t.Errorf("cluster health: exit %d\n%s%s", r.exitCode, r.stdout, r.stderr)
		}
	})

	t.Run("Kcat", func(t *testing.T) {
		kcat, err := exec.LookPath("kcat")
		if err != nil {
			if os.Getenv("SAMSA_REQUIRE_CLIENTS") == "1" {
				t.Fatalf("required client missing: kcat: %v", err)
			}
			t.Skipf("kcat missing (set SAMSA_REQUIRE_CLIENTS=1 to fail instead): %v", err)
		}
		ctx := ctxFor(t, 30*time.Second)
		out, err := exec.CommandContext(ctx, kcat, "-b", addrs[2], "-L").CombinedOutput()
		if err != nil {
			t.Fatalf("kcat -L: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), " 3 brokers:") {
			t.Errorf("kcat -L does not list 3 brokers:\n%s", out)
		}
		for _, n := range c.Nodes {
			if want := fmt.Sprintf("broker %d at %s", n.ID, n.KafkaAddr); !strings.Contains(string(out), want) {
				t.Errorf("kcat -L lacks %q:\n%s", want, out)
			}
		}
	})

	const topic = "spread"
	t.Run("CreateTopicsThroughNonController", func(t *testing.T) {
		ctx := ctxFor(t, 30*time.Second)
		q, err := quorumOf(ctx, t, addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		var via *brokerproc.Node
		for _, n := range c.Nodes {
			if n.ID != q.LeaderID {
				via = n
				break
			}
		}
		create := func(name string, partitions int32, rf int16) kmsg.CreateTopicsResponseTopic {
			req := kmsg.NewPtrCreateTopicsRequest()
			req.TimeoutMillis = 10000
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
			req.Topics = append(req.Topics, rt)
			resp, err := seedRequest(ctx, t, via.KafkaAddr, req)
			if err != nil {
				t.Fatalf("CreateTopics via node %d: %v", via.ID, err)
			}
			return resp.(*kmsg.CreateTopicsResponse).Topics[0]
		}
		if r := create(topic, 6, 1); r.ErrorCode != 0 {
			t.Fatalf("CreateTopics via node %d (controller %d): %v %v", via.ID, q.LeaderID, kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
		}
		if r := create("replicated", 1, 3); r.ErrorCode != 0 {
			t.Errorf("RF 3 on 3 brokers: error %v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
		}
		if r := create("overreplicated", 1, 4); r.ErrorCode != kerr.InvalidReplicationFactor.Code {
			t.Errorf("RF 4 on 3 brokers: error %v, want INVALID_REPLICATION_FACTOR", kerr.ErrorForCode(r.ErrorCode))
		}
		// Every node sees the topic; leaders are spread 2 per broker.
		eventually(t, 20*time.Second, func(ctx context.Context) error {
			for _, n := range c.Nodes {
				md, err := metadataOf(ctx, t, n.KafkaAddr, topic)
				if err != nil {
					return err
				}
				per := map[int32]int{}
				for _, p := range md.Topics[0].Partitions {
					per[p.Leader]++
				}
				if len(md.Topics[0].Partitions) != 6 || per[1] != 2 || per[2] != 2 || per[3] != 2 {
					return fmt.Errorf("node %d: %d partitions, leaders per broker %v; want 6, 2 each", n.ID, len(md.Topics[0].Partitions), per)
				}
			}
			return nil
		})
	})

	t.Run("ProduceConsumeAcrossBrokers", func(t *testing.T) {
		ctx := ctxFor(t, 60*time.Second)
		const records = 600
		prod := brokerproc.NewClient(t, addrs[0], kgo.RequiredAcks(kgo.AllISRAcks()))
		for i := range records {
			prod.Produce(ctx, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cons := brokerproc.NewClient(t, addrs[2], kgo.ConsumeTopics(topic), kgo.ConsumerGroup("across"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		seen := map[string]bool{}
		parts := map[int32]int{}
		for len(seen) < records {
			fs := cons.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("consumed %d of %d records: %v", len(seen), records, err)
			}
			fs.EachError(func(tp string, p int32, err error) { t.Errorf("fetch %s/%d: %v", tp, p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				seen[string(r.Value)] = true
				parts[r.Partition]++
			})
		}
		if len(parts) != 6 {
			t.Errorf("records came from partitions %v, want all 6", parts)
		}
		if err := cons.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("commit through the group coordinator: %v", err)
		}
		offs, err := kadm.NewClient(brokerproc.NewClient(t, addrs[1])).FetchOffsets(ctx, "across")
		if err != nil {
			t.Fatal(err)
		}
		var committed int64
		offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
		if committed != records {
			t.Errorf("committed offsets sum to %d, want %d", committed, records)
		}
	})

	t.Run("PausedBrokerFencedThenServes", func(t *testing.T) {
		ctx := ctxFor(t, 30*time.Second)
		q, err := quorumOf(ctx, t, addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		// Pause a broker that is not the quorum leader: fencing, not
		// failover, is under test here.
		var victim *brokerproc.Node
		var others []string
		for _, n := range c.Nodes {
			if victim == nil && n.ID != q.LeaderID {
				victim = n
				continue
			}
			others = append(others, n.KafkaAddr)
		}
		victim.Pause(t)
		t0 := time.Now()
		eventually(t, 30*time.Second, func(ctx context.Context) error {
			md, err := metadataOf(ctx, t, others[0], topic)
			if err != nil {
				return err
			}
			if slices.Contains(brokerIDs(md), victim.ID) {
				return fmt.Errorf("node %d still live in Metadata", victim.ID)
			}
			offline := 0
			for _, p := range md.Topics[0].Partitions {
				if p.Leader == victim.ID {
					return fmt.Errorf("partition %d still led by fenced node %d", p.Partition, victim.ID)
				}
				if p.Leader == -1 {
					offline++
				}
			}
			if offline != 2 {
				return fmt.Errorf("%d partitions offline, want the 2 of node %d", offline, victim.ID)
			}
			return nil
		})
		t.Logf("node %d fenced %v after SIGSTOP", victim.ID, time.Since(t0).Round(time.Millisecond))
		dreq := kmsg.NewPtrDescribeClusterRequest()
		dreq.IncludeFencedBrokers = true
		if resp, err := seedRequest(ctx, t, others[1], dreq); err != nil {
			t.Error(err)
		} else if dc := resp.(*kmsg.DescribeClusterResponse); !slices.ContainsFunc(dc.Brokers, func(b kmsg.DescribeClusterResponseBroker) bool { return b.NodeID == victim.ID && b.IsFenced }) {
			t.Errorf("DescribeCluster v2 does not show node %d fenced: %+v", victim.ID, dc.Brokers)
		}
		r := runSamsa(t, "-X", strings.Join(others, ","), "cluster", "health")
		if r.exitCode == 0 || !strings.Contains(r.stdout, fmt.Sprintf("broker %d is fenced", victim.ID)) || !strings.Contains(r.stdout, "partition "+topic+"/") {
			t.Errorf("cluster health while node %d is fenced: exit %d\n%s%s", victim.ID, r.exitCode, r.stdout, r.stderr)
		}

		victim.Resume(t)
		eventually(t, 30*time.Second, func(ctx context.Context) error {
			md, err := metadataOf(ctx, t, others[0], topic)
			if err != nil {
				return err
			}
			if len(md.Brokers) != 3 {
				return fmt.Errorf("Metadata brokers %v", brokerIDs(md))
			}
			for _, p := range md.Topics[0].Partitions {
				if p.Leader < 0 {
					return fmt.Errorf("partition %d still offline", p.Partition)
				}
			}
			return nil
		})
		// Its partitions take writes again.
		cl := brokerproc.NewClient(t, others[0], kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		md, err := metadataOf(ctx, t, others[0], topic)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range md.Topics[0].Partitions {
			if p.Leader != victim.ID {
				continue
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p.Partition, Value: []byte("back")}).FirstErr(); err != nil {
				t.Errorf("produce to partition %d of the returned node %d: %v", p.Partition, victim.ID, err)
			}
		}
		eventually(t, 20*time.Second, func(context.Context) error {
			if r := runSamsa(t, "-X", strings.Join(addrs, ","), "cluster", "health"); r.exitCode != 0 {
				return errors.New("cluster health after SIGCONT: " + r.stdout + r.stderr)
			}
			return nil
		})
	})
}
