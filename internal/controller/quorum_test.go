package controller

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/config"
	"samsa/internal/metadata"
	"samsa/internal/metadata/quorumtest"
	"samsa/internal/raft"
)

// raftControllers is a 3-voter raft quorum over TCP on 127.0.0.1 with a
// controller on every voter.
type raftControllers struct {
	logs   map[int32]*raft.MetadataLog
	ctrls  map[int32]*Controller
	voters map[int32]string // raft addresses
}

func newRaftControllers(t *testing.T, overrides ...string) *raftControllers {
	t.Helper()
	return newRaftControllersElection(t, 0, overrides...)
}

// newRaftControllersElection is newRaftControllers with electionTicks
// ticks of 10 ms before a follower campaigns (0: raft's default, 10). A
// test that loads the quorum (large entries under -race on a busy
// machine) raises it so that a stall does not depose the leader.
func newRaftControllersElection(t *testing.T, electionTicks int, overrides ...string) *raftControllers {
	t.Helper()
	cfg, err := config.Load("", append([]string{"controller.quorum.voters=1@127.0.0.1:1"}, overrides...), quiet)
	if err != nil {
		t.Fatal(err)
	}
	voters := map[int32]string{}
	ls := map[int32]net.Listener{}
	for id := int32(1); id <= 3; id++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls[id], voters[id] = l, l.Addr().String()
	}
	r := &raftControllers{logs: map[int32]*raft.MetadataLog{}, ctrls: map[int32]*Controller{}, voters: voters}
	for id, l := range ls {
		ml, err := raft.OpenMetadataLog(raft.Config{
			NodeID: id, Voters: voters, ClusterID: "cluster", Logger: quiet,
			Dir: filepath.Join(t.TempDir(), metadata.LocalLogDir), TickInterval: 10 * time.Millisecond, ElectionTicks: electionTicks,
		})
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = ml.Node().Serve(l) }()
		r.logs[id] = ml
		r.ctrls[id] = New(ml, cfg, quiet)
		t.Cleanup(func() { ml.Close() })
	}
	return r
}

// active waits for the active controller among the running voters.
func (r *raftControllers) active(t *testing.T) (int32, *Controller) {
	t.Helper()
	deadline := time.Now().Add(quorumtest.Timeout)
	for time.Now().Before(deadline) {
		for id, ml := range r.logs {
			if ok, _ := ml.Active(); ok {
				return id, r.ctrls[id]
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no active controller")
	return 0, nil
}

// TestControllerRaftFailoverKeepsEpochs: on a 3-voter raft quorum,
// broker epochs are the registration's entry index on every node; after
// the active controller dies, the new one accepts the brokers' epochs
// from the image, fences with a leader move and serves AlterPartition.
func TestControllerRaftFailoverKeepsEpochs(t *testing.T) {
	r := newRaftControllers(t)
	ctx, cancel := context.WithTimeout(context.Background(), quorumtest.Timeout)
	defer cancel()
	first, c := r.active(t)
	epochs := map[int32]int64{}
	for id := int32(11); id <= 13; id++ {
		resp := register(t, c, id, string(rune('a'+id-11)), byte(id))
		if resp.ErrorCode != 0 {
			t.Fatalf("register %d: %v", id, kerr.ErrorForCode(resp.ErrorCode))
		}
		epochs[id] = resp.BrokerEpoch
	}
	tp := topic("t", 1, 3)
	tp.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{11, 12, 13}}}
	tp.NumPartitions, tp.ReplicationFactor = -1, -1
	if rt := c.CreateTopics(ctx, createReq(7, tp)).Topics[0]; rt.ErrorCode != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(rt.ErrorCode))
	}
	off := c.image().Offset
	for id, ml := range r.logs {
		im := quorumtest.WaitImage(t, ml, "the topic", func(im *metadata.Image) bool { return im.Offset >= off })
		for b, e := range epochs {
			if im.Brokers[b].Epoch != e {
				t.Fatalf("node %d: broker %d epoch %d, registered %d", id, b, im.Brokers[b].Epoch, e)
			}
		}
	}

	// The active controller dies.
	r.logs[first].Close()
	delete(r.logs, first)
	_, c = r.active(t)
	hb := func(id int32, fence bool) *kmsg.BrokerHeartbeatResponse {
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.BrokerID, req.BrokerEpoch, req.WantFence = id, epochs[id], fence
		req.CurrentMetadataOffset = c.image().Offset
		return c.BrokerHeartbeat(ctx, req)
	}
	if resp := hb(12, false); resp.ErrorCode != 0 || resp.IsFenced {
		t.Fatalf("heartbeat on the new controller: %+v", resp)
	}
	if resp := hb(11, true); resp.ErrorCode != 0 || !resp.IsFenced {
		t.Fatalf("fence on the new controller: %+v", resp)
	}
	p := c.image().Topics["t"].Partitions[0]
	if p.Leader != 12 || !slices.Equal(p.ISR, []int32{12, 13}) || p.LeaderEpoch != 1 || p.PartitionEpoch != 1 {
		t.Fatalf("after fencing the leader: %+v", p)
	}
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version, req.BrokerID, req.BrokerEpoch = 3, 12, epochs[12]
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.TopicID = c.image().Topics["t"].ID
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.LeaderEpoch, rp.PartitionEpoch = 1, 1
	rp.NewEpochISR = []kmsg.AlterPartitionRequestTopicPartitionNewEpochISR{{BrokerID: 12, BrokerEpoch: epochs[12]}}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := c.AlterPartition(ctx, req)
	if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 || !slices.Equal(resp.Topics[0].Partitions[0].ISR, []int32{12}) ||
		resp.Topics[0].Partitions[0].PartitionEpoch != 2 {
		t.Fatalf("alter partition on the new controller: %+v", resp)
	}
	off = c.image().Offset
	for id, ml := range r.logs {
		im := quorumtest.WaitImage(t, ml, "the ISR change", func(im *metadata.Image) bool { return im.Offset >= off })
		if p := im.Topics["t"].Partitions[0]; !slices.Equal(p.ISR, []int32{12}) || p.Leader != 12 {
			t.Fatalf("node %d: %+v", id, p)
		}
	}
}
