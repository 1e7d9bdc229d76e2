package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/server"
)

// TestClusterRoles: a controller-only voter (serves no clients), two
// combined voters and a broker-only node (a raft learner, added when it
// registers). Metadata lists the three brokers; DescribeQuorum on any
// broker shows the leader, three voters and the learner; a partition on
// the broker-only node serves.
func TestClusterRoles(t *testing.T) {
	c := startCluster(t, []nodeSpec{{id: 1, roles: "controller"}, {id: 2}, {id: 3}, {id: 4, roles: "broker"}})
	ctx := ctxFor(t, 60*time.Second)
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Topics = []kmsg.MetadataRequestTopic{}
	m, err := mreq.RequestWith(ctx, c.client(4))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int32
	for _, b := range m.Brokers {
		ids = append(ids, b.NodeID)
	}
	if len(ids) != 3 || ids[0] != 2 || ids[1] != 3 || ids[2] != 4 {
		t.Fatalf("brokers %v, want [2 3 4] (node 1 is controller-only)", ids)
	}
	for _, id := range []int32{2, 4} {
		var dq *kmsg.DescribeQuorumResponse
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			req := kmsg.NewPtrDescribeQuorumRequest()
			rt := kmsg.NewDescribeQuorumRequestTopic()
			rt.Topic = "__cluster_metadata"
			rt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
			req.Topics = append(req.Topics, rt)
			if dq, err = req.RequestWith(ctx, c.client(id)); err != nil {
				t.Fatal(err)
			}
			p := dq.Topics[0].Partitions[0]
			if p.ErrorCode == 0 && len(p.Observers) == 1 || time.Now().After(deadline) {
				break
			}
		}
		p := dq.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.LeaderID < 1 || p.LeaderID > 3 || len(p.CurrentVoters) != 3 || len(p.Observers) != 1 || p.Observers[0].ReplicaID != 4 || p.HighWatermark <= 0 {
			t.Fatalf("node %d DescribeQuorum: %+v", id, p)
		}
		for _, v := range p.CurrentVoters {
			if v.LogEndOffset < 0 {
				t.Errorf("voter %d log end offset %d", v.ReplicaID, v.LogEndOffset)
			}
		}
		if len(dq.Nodes) != 3 {
			t.Errorf("nodes %+v", dq.Nodes)
		}
	}
	// Three partitions: one on each broker, the learner's included.
	adm := kadm.NewClient(c.client(4))
	if r, err := adm.CreateTopic(ctx, 3, 1, nil, "roles"); err != nil || r.Err != nil {
		t.Fatalf("%v %v", err, r.Err)
	}
	ls := c.leaders(ctx, 4, "roles")
	on4 := int32(-1)
	for p, l := range ls {
		if l == 1 {
			t.Fatalf("partition %d on the controller-only node", p)
		}
		if l == 4 {
			on4 = p
		}
	}
	if on4 < 0 {
		t.Fatalf("no partition on the broker-only node: %v", ls)
	}
	prod := c.client(2, kgo.DefaultProduceTopic("roles"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := prod.ProduceSync(ctx, &kgo.Record{Partition: on4, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The controller-only node serves no client listener: Metadata on
	// its controller listener works for tools (kafka-metadata-quorum).
	if c.nodes[1].s.KafkaAddr() != "" {
		t.Fatalf("controller-only node has a client listener %s", c.nodes[1].s.KafkaAddr())
	}
}

// TestClusterBadInput: a second process with a live node.id is refused
// naming node.id; a broker pointed at no reachable controller fails
// naming controller.quorum.voters; a data dir of another cluster id is
// refused naming both.
func TestClusterBadInput(t *testing.T) {
	c := startCluster(t, append(specs(3), nodeSpec{id: 4, roles: "broker"}))
	n := c.nodes[4]
	// Same node.id as the running broker-only node 4, another data dir
	// and port, same voters.
	var ov []string
	for _, o := range n.overrides {
		switch {
		case strings.HasPrefix(o, "log.dirs="):
			o = "log.dirs=" + t.TempDir()
		case strings.HasPrefix(o, "listeners="):
			o = "listeners=PLAINTEXT://127.0.0.1:0"
		}
		ov = append(ov, o)
	}
	_, err := server.Start(context.Background(), server.Options{Overrides: ov, Logger: quiet, StartTimeout: 3 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "node.id 4") {
		t.Fatalf("duplicate node.id: %v", err)
	}
	if !strings.Contains(err.Error(), kerr.DuplicateBrokerRegistration.Message) && !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("duplicate node.id error does not say so: %v", err)
	}
	// No reachable controller.
	dead := reserve(t)
	addr := dead.Addr().String()
	dead.Close()
	_, err = server.Start(context.Background(), server.Options{Overrides: []string{
		"node.id=9", "process.roles=broker", "listeners=PLAINTEXT://127.0.0.1:0", "controller.quorum.voters=1@" + addr,
		"log.dirs=" + t.TempDir(), "http.listener=",
	}, Logger: quiet, StartTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "controller.quorum.voters") {
		t.Fatalf("unreachable controller: %v", err)
	}
	// A data dir formatted for another cluster.
	dir := t.TempDir()
	start(t, dir).Close()
	_, err = server.Start(context.Background(), server.Options{Overrides: []string{
		"log.dirs=" + dir, "listeners=PLAINTEXT://127.0.0.1:0", "http.listener=", "cluster.id=AAAAAAAAAAAAAAAAAAAAAA",
	}, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "cluster.id") {
		t.Fatalf("cluster id mismatch: %v", err)
	}
}
