package controller

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func register(t *testing.T, c *Controller, id int32, rack string, inc byte) *kmsg.BrokerRegistrationResponse {
	t.Helper()
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID, req.ClusterID, req.IncarnationID = id, "cluster", [16]byte{inc}
	if rack != "" {
		req.Rack = &rack
	}
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port = "PLAINTEXT", "h", uint16(9000+id)
	req.Listeners = append(req.Listeners, l)
	return c.BrokerRegistration(context.Background(), req)
}

func TestControllerPlacementStripedOverRacks(t *testing.T) {
	c, _ := newTestController(t, 0)
	racks := map[int32]string{1: "a", 2: "a", 3: "b", 4: "b"}
	for id := int32(1); id <= 4; id++ {
		if r := register(t, c, id, racks[id], 1); r.ErrorCode != 0 {
			t.Fatalf("register %d: %v", id, kerr.ErrorForCode(r.ErrorCode))
		}
	}
	resp := c.CreateTopics(context.Background(), createReq(7, topic("t", 8, 1)))
	if resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	leaders := map[int32]int{}
	parts := c.image().Topics["t"].Partitions
	for i, p := range parts {
		leaders[p.Leader]++
		if i > 0 && racks[p.Leader] == racks[parts[i-1].Leader] {
			t.Errorf("partitions %d and %d both on rack %s", i-1, i, racks[p.Leader])
		}
	}
	for id := int32(1); id <= 4; id++ {
		if leaders[id] != 2 {
			t.Errorf("broker %d leads %d partitions, want 2 (%v)", id, leaders[id], leaders)
		}
	}
	// RF 2 is placed; RF 5 over 4 brokers is refused with Kafka's message.
	if resp = c.CreateTopics(context.Background(), createReq(7, topic("r", 1, 2))); resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("rf 2: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	resp = c.CreateTopics(context.Background(), createReq(7, topic("r5", 1, 5)))
	if rt := resp.Topics[0]; rt.ErrorCode != kerr.InvalidReplicationFactor.Code || rt.ErrorMessage == nil ||
		*rt.ErrorMessage != "Unable to replicate the partition 5 time(s): The target replication factor of 5 cannot be reached because only 4 broker(s) are registered." {
		t.Fatalf("rf 5: %v %v", kerr.ErrorForCode(rt.ErrorCode), rt.ErrorMessage)
	}
	// An explicit assignment is honoured.
	tp := kmsg.NewCreateTopicsRequestTopic()
	tp.Topic, tp.NumPartitions, tp.ReplicationFactor = "x", -1, -1
	for i, b := range []int32{3, 3, 1} {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(i), []int32{b}
		tp.ReplicaAssignment = append(tp.ReplicaAssignment, a)
	}
	if resp := c.CreateTopics(context.Background(), createReq(7, tp)); resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("assignment: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	for i, want := range []int32{3, 3, 1} {
		if got := c.image().Topics["x"].Partitions[i].Leader; got != want {
			t.Errorf("partition %d on %d, want %d", i, got, want)
		}
	}
}

func TestControllerBrokerSessions(t *testing.T) {
	c, _ := newTestController(t, 0, "broker.session.timeout.ms=300", "broker.heartbeat.interval.ms=50")
	ctx := context.Background()
	r := register(t, c, 2, "", 1)
	if r.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.ErrorCode))
	}
	// Another process with the same node.id while the session lives.
	if r2 := register(t, c, 2, "", 9); r2.ErrorCode != kerr.DuplicateBrokerRegistration.Code {
		t.Fatalf("duplicate registration: %v", kerr.ErrorForCode(r2.ErrorCode))
	}
	// The same process re-registering is fine.
	if r = register(t, c, 2, "", 1); r.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.ErrorCode))
	}
	bad := kmsg.NewPtrBrokerRegistrationRequest()
	bad.BrokerID, bad.ClusterID = 5, "other"
	if r := c.BrokerRegistration(ctx, bad); r.ErrorCode != kerr.InconsistentClusterID.Code {
		t.Fatalf("cluster id mismatch: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	hb := func(epoch int64, shutdown bool) *kmsg.BrokerHeartbeatResponse {
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.BrokerID, req.BrokerEpoch, req.WantShutdown = 2, epoch, shutdown
		req.CurrentMetadataOffset = c.image().Offset
		return c.BrokerHeartbeat(ctx, req)
	}
	if h := hb(r.BrokerEpoch+1, false); h.ErrorCode != kerr.StaleBrokerEpoch.Code {
		t.Fatalf("stale epoch: %v", kerr.ErrorForCode(h.ErrorCode))
	}
	if h := hb(r.BrokerEpoch, false); h.ErrorCode != 0 || h.IsFenced || !h.IsCaughtUp {
		t.Fatalf("heartbeat: %+v", h)
	}
	// No heartbeat for longer than the session: fenced.
	time.Sleep(350 * time.Millisecond)
	c.ExpireSessions(ctx)
	if !c.image().Brokers[2].Fenced {
		t.Fatal("broker not fenced after its session expired")
	}
	// It returns: unfenced.
	if h := hb(r.BrokerEpoch, false); h.ErrorCode != 0 || h.IsFenced || c.image().Brokers[2].Fenced {
		t.Fatalf("heartbeat after fencing: %+v fenced=%v", h, c.image().Brokers[2].Fenced)
	}
	// Controlled shutdown: fenced and told to shut down.
	if h := hb(r.BrokerEpoch, true); !h.ShouldShutdown || !h.IsFenced || !c.image().Brokers[2].Fenced {
		t.Fatalf("controlled shutdown: %+v", h)
	}
	// A new process may register right after a controlled shutdown.
	if r2 := register(t, c, 2, "", 7); r2.ErrorCode != 0 || c.image().Brokers[2].Fenced {
		t.Fatalf("re-registration after shutdown: %v", kerr.ErrorForCode(r2.ErrorCode))
	}
	// Producer id blocks for brokers.
	a := kmsg.NewPtrAllocateProducerIDsRequest()
	a.BrokerID, a.BrokerEpoch = 2, c.image().Brokers[2].Epoch
	p1 := c.AllocateProducerIDsBlock(ctx, a)
	p2 := c.AllocateProducerIDsBlock(ctx, a)
	if p1.ErrorCode != 0 || p2.ProducerIDStart != p1.ProducerIDStart+int64(p1.ProducerIDLen) {
		t.Fatalf("blocks %+v %+v", p1, p2)
	}
}
