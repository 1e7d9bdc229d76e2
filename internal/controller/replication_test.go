package controller

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
)

// replCluster is a controller over a real LocalQuorum with brokers that
// registered through BrokerRegistration (so each has its broker epoch).
type replCluster struct {
	t      *testing.T
	c      *Controller
	dir    string // the LocalQuorum's directory
	epochs map[int32]int64
}

// newReplCluster registers brokers 1..len(racks) with those racks ("":
// none).
func newReplCluster(t *testing.T, racks []string, overrides ...string) *replCluster {
	t.Helper()
	c, dir := newTestController(t, 0, overrides...)
	x := &replCluster{t: t, c: c, dir: dir, epochs: map[int32]int64{}}
	for i, r := range racks {
		id := int32(i + 1)
		resp := register(t, c, id, r, byte(id))
		if resp.ErrorCode != 0 {
			t.Fatalf("register %d: %v", id, kerr.ErrorForCode(resp.ErrorCode))
		}
		x.epochs[id] = resp.BrokerEpoch
	}
	return x
}

func (x *replCluster) heartbeat(id int32, fence, shutdown bool) *kmsg.BrokerHeartbeatResponse {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch, req.WantFence, req.WantShutdown = id, x.epochs[id], fence, shutdown
	req.CurrentMetadataOffset = x.c.image().Offset
	resp := x.c.BrokerHeartbeat(context.Background(), req)
	if resp.ErrorCode != 0 {
		x.t.Fatalf("heartbeat of %d: %v", id, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp
}

func (x *replCluster) create(tp kmsg.CreateTopicsRequestTopic) {
	x.t.Helper()
	resp := x.c.CreateTopics(context.Background(), createReq(7, tp))
	if rt := resp.Topics[0]; rt.ErrorCode != 0 {
		x.t.Fatalf("create %s: %v %v", tp.Topic, kerr.ErrorForCode(rt.ErrorCode), str(rt.ErrorMessage))
	}
}

func (x *replCluster) part(topic string, p int32) metadata.Partition {
	x.t.Helper()
	tp := x.c.image().Topics[topic]
	if tp == nil || int(p) >= len(tp.Partitions) {
		x.t.Fatalf("no partition %s-%d", topic, p)
	}
	return tp.Partitions[p]
}

// wantPart checks a partition's leader, ISR and epochs.
func (x *replCluster) wantPart(topic string, p int32, leader int32, isr []int32, leaderEpoch, partitionEpoch int32) {
	x.t.Helper()
	got := x.part(topic, p)
	if got.Leader != leader || !slices.Equal(got.ISR, isr) || got.LeaderEpoch != leaderEpoch || got.PartitionEpoch != partitionEpoch {
		x.t.Fatalf("%s-%d: leader %d isr %v epochs %d/%d; want leader %d isr %v epochs %d/%d",
			topic, p, got.Leader, got.ISR, got.LeaderEpoch, got.PartitionEpoch, leader, isr, leaderEpoch, partitionEpoch)
	}
}

func str(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func assigned(name string, parts ...[]int32) kmsg.CreateTopicsRequestTopic {
	tp := topic(name, -1, -1)
	for i, reps := range parts {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(i), reps
		tp.ReplicaAssignment = append(tp.ReplicaAssignment, a)
	}
	return tp
}

// TestControllerPlacementRF3Racks: RF 3 over 3, 4 and 6 brokers in
// racks: every partition on 3 distinct brokers, on 3 distinct racks when
// there are 3 racks, leaders and replicas spread evenly; the new
// partition's ISR is its replicas, the leader the first, epochs 0.
func TestControllerPlacementRF3Racks(t *testing.T) {
	for _, tc := range []struct {
		racks    []string
		distinct int   // distinct racks per partition
		replicas []int // replicas per broker (4 partitions per broker), ±1
	}{
		{[]string{"a", "b", "c"}, 3, []int{12, 12, 12}},
		// Racks b and c are in every partition; a's two brokers share.
		{[]string{"a", "b", "c", "a"}, 3, []int{8, 16, 16, 8}},
		{[]string{"a", "a", "b", "b"}, 2, []int{12, 12, 12, 12}},
		{[]string{"a", "b", "c", "a", "b", "c"}, 3, []int{12, 12, 12, 12, 12, 12}},
		{[]string{"", "", "", "", "", ""}, 1, []int{12, 12, 12, 12, 12, 12}},
	} {
		t.Run(fmt.Sprint(tc.racks), func(t *testing.T) {
			x := newReplCluster(t, tc.racks)
			n := len(tc.racks)
			parts := int32(4 * n)
			x.create(topic("t", parts, 3))
			leaders, replicas := map[int32]int{}, map[int32]int{}
			for p := range parts {
				got := x.part("t", p)
				racks := map[string]bool{}
				for _, r := range got.Replicas {
					racks[tc.racks[r-1]] = true
					replicas[r]++
				}
				if len(got.Replicas) != 3 || len(slices.Compact(slices.Sorted(slices.Values(got.Replicas)))) != 3 {
					t.Fatalf("partition %d replicas %v", p, got.Replicas)
				}
				if len(racks) != tc.distinct {
					t.Errorf("partition %d replicas %v on racks %v, want %d racks", p, got.Replicas, racks, tc.distinct)
				}
				if got.Leader != got.Replicas[0] || !slices.Equal(got.ISR, got.Replicas) || got.LeaderEpoch != 0 || got.PartitionEpoch != 0 {
					t.Errorf("partition %d: %+v", p, got)
				}
				leaders[got.Leader]++
			}
			for id := int32(1); id <= int32(n); id++ {
				if leaders[id] != 4 {
					t.Errorf("broker %d leads %d partitions, want 4 (%v)", id, leaders[id], leaders)
				}
				if d := replicas[id] - tc.replicas[id-1]; d < -1 || d > 1 {
					t.Errorf("broker %d holds %d replicas, want %d (%v)", id, replicas[id], tc.replicas[id-1], replicas)
				}
			}
		})
	}
}

// TestControllerReplicationFactorErrors: RF above the active brokers,
// default.replication.factor for -1, CreatePartitions with the topic's
// RF, and manual assignments (Kafka's messages).
func TestControllerReplicationFactorErrors(t *testing.T) {
	x := newReplCluster(t, []string{"a", "b", "c"}, "default.replication.factor=3")
	ctx := context.Background()
	r := x.c.CreateTopics(ctx, createReq(7, topic("big", 1, 4)))
	if rt := r.Topics[0]; rt.ErrorCode != kerr.InvalidReplicationFactor.Code ||
		str(rt.ErrorMessage) != "Unable to replicate the partition 4 time(s): The target replication factor of 4 cannot be reached because only 3 broker(s) are registered." {
		t.Fatalf("rf 4: %v %s", kerr.ErrorForCode(rt.ErrorCode), str(rt.ErrorMessage))
	}
	x.create(topic("dflt", 2, -1))
	if got := x.part("dflt", 1); len(got.Replicas) != 3 {
		t.Fatalf("default.replication.factor not used: %+v", got)
	}
	cp := kmsg.NewPtrCreatePartitionsRequest()
	ct := kmsg.NewCreatePartitionsRequestTopic()
	ct.Topic, ct.Count = "dflt", 4
	cp.Topics = append(cp.Topics, ct)
	if rt := x.c.CreatePartitions(ctx, cp).Topics[0]; rt.ErrorCode != 0 {
		t.Fatalf("create partitions: %v", kerr.ErrorForCode(rt.ErrorCode))
	}
	if got := x.part("dflt", 3); len(got.Replicas) != 3 || !slices.Equal(got.ISR, got.Replicas) {
		t.Fatalf("new partition %+v", got)
	}

	x.create(assigned("manual", []int32{3, 1}, []int32{2, 3}))
	x.wantPart("manual", 0, 3, []int32{3, 1}, 0, 0)
	x.wantPart("manual", 1, 2, []int32{2, 3}, 0, 0)
	for _, tc := range []struct {
		tp   kmsg.CreateTopicsRequestTopic
		want string
	}{
		{assigned("dup", []int32{1, 1}), "The manual partition assignment includes the broker 1 more than once."},
		{assigned("unknown", []int32{1, 9}), "The manual partition assignment includes broker 9, but no such broker is registered."},
		{assigned("uneven", []int32{1, 2}, []int32{3}), "The manual partition assignment includes a partition with 1 replica(s), but this is not consistent with previous partitions, which have 2 replica(s)."},
		{assigned("empty", []int32{}), "The manual partition assignment includes an empty replica list."},
	} {
		rt := x.c.CreateTopics(ctx, createReq(7, tc.tp)).Topics[0]
		if rt.ErrorCode != kerr.InvalidReplicaAssignment.Code || str(rt.ErrorMessage) != tc.want {
			t.Errorf("%s: %v %q, want INVALID_REPLICA_ASSIGNMENT %q", tc.tp.Topic, kerr.ErrorForCode(rt.ErrorCode), str(rt.ErrorMessage), tc.want)
		}
	}
	// A fenced broker may be named; it starts out of the ISR. A
	// partition of fenced brokers only is refused.
	x.heartbeat(2, true, false)
	x.create(assigned("withfenced", []int32{2, 1}))
	x.wantPart("withfenced", 0, 1, []int32{1}, 0, 0)
	rt := x.c.CreateTopics(ctx, createReq(7, assigned("allfenced", []int32{2}))).Topics[0]
	if rt.ErrorCode != kerr.InvalidReplicaAssignment.Code {
		t.Fatalf("all fenced: %v", kerr.ErrorForCode(rt.ErrorCode))
	}
	// Placement uses active brokers only: 2 are left.
	rt = x.c.CreateTopics(ctx, createReq(7, topic("three", 1, 3))).Topics[0]
	if rt.ErrorCode != kerr.InvalidReplicationFactor.Code {
		t.Fatalf("rf 3 with a fenced broker: %v", kerr.ErrorForCode(rt.ErrorCode))
	}
}

// TestControllerFenceMovesLeaders: a broker whose session expires leaves
// every ISR; the partitions it led get the next ISR member in replica
// order as leader (leader epoch +1, partition epoch +1); the last ISR
// member stays in the ISR with no leader; when it returns it leads again.
func TestControllerFenceMovesLeaders(t *testing.T) {
	x := newReplCluster(t, []string{"a", "b", "c"}, "broker.session.timeout.ms=400", "broker.heartbeat.interval.ms=50")
	x.create(assigned("t", []int32{1, 2, 3}, []int32{2, 3, 1}))
	x.create(assigned("two", []int32{1, 2}))
	ctx := context.Background()

	// Brokers 2 and 3 heartbeat; 1 is silent past its session.
	deadline := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(deadline) {
		x.heartbeat(2, false, false)
		x.heartbeat(3, false, false)
		time.Sleep(50 * time.Millisecond)
	}
	x.c.ExpireSessions(ctx)
	if !x.c.image().Brokers[1].Fenced || x.c.image().Brokers[2].Fenced {
		t.Fatalf("brokers %+v", x.c.image().Brokers)
	}
	x.wantPart("t", 0, 2, []int32{2, 3}, 1, 1) // led by 1: moves to 2
	x.wantPart("t", 1, 2, []int32{2, 3}, 0, 1) // led by 2: only the ISR shrinks
	x.wantPart("two", 0, 2, []int32{2}, 1, 1)

	// 2 goes too: "two" keeps its last ISR member with no leader.
	x.heartbeat(2, true, false)
	x.wantPart("two", 0, -1, []int32{2}, 2, 2)
	x.wantPart("t", 0, 3, []int32{3}, 2, 2)

	// 1 returns: it is in no ISR, so nothing changes for "two".
	x.heartbeat(1, false, false)
	x.wantPart("two", 0, -1, []int32{2}, 2, 2)
	// 2 returns: it leads "two" again.
	x.heartbeat(2, false, false)
	x.wantPart("two", 0, 2, []int32{2}, 3, 3)
	if n := x.c.UncleanLeaderElections(); n != 0 {
		t.Fatalf("unclean elections %d", n)
	}
}

// TestControllerUncleanLeaderElection: with the topic's
// unclean.leader.election.enable, a partition whose ISR is all gone is
// led by a live out-of-sync replica with the ISR [it], counted; without
// it the partition stays offline; turning it on elects.
func TestControllerUncleanLeaderElection(t *testing.T) {
	x := newReplCluster(t, []string{"a", "b", "c"})
	x.create(assigned("on", []int32{1, 2, 3}))
	for _, tp := range []string{"on"} {
		ic := kmsg.NewPtrIncrementalAlterConfigsRequest()
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, tp
		v := "true"
		r.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "unclean.leader.election.enable", Value: &v}}
		ic.Resources = append(ic.Resources, r)
		if rr := x.c.IncrementalAlterConfigs(context.Background(), ic).Resources[0]; rr.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(rr.ErrorCode))
		}
	}
	x.create(assigned("off", []int32{1, 2, 3}))
	// The leader shrinks both ISRs to itself.
	for _, tp := range []string{"on", "off"} {
		p := x.part(tp, 0)
		if code := x.alter(3, 1, tp, 0, p.LeaderEpoch, p.PartitionEpoch, []int32{1}); code != 0 {
			t.Fatalf("shrink %s: %v", tp, kerr.ErrorForCode(code))
		}
	}
	x.heartbeat(1, true, false)
	x.wantPart("on", 0, 2, []int32{2}, 1, 2)
	x.wantPart("off", 0, -1, []int32{1}, 1, 2)
	if n := x.c.UncleanLeaderElections(); n != 1 {
		t.Fatalf("unclean elections %d, want 1", n)
	}
	// Broker default on (topic "off" has no override... it follows the
	// broker's false); turning it on for the topic elects at once.
	ic := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "off"
	v := "true"
	r.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "unclean.leader.election.enable", Value: &v}}
	ic.Resources = append(ic.Resources, r)
	if rr := x.c.IncrementalAlterConfigs(context.Background(), ic).Resources[0]; rr.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(rr.ErrorCode))
	}
	x.wantPart("off", 0, 2, []int32{2}, 2, 3)
	if n := x.c.UncleanLeaderElections(); n != 2 {
		t.Fatalf("unclean elections %d, want 2", n)
	}
}

// TestControllerUncleanBrokerDefault: the broker's
// unclean.leader.election.enable applies to topics without an override:
// a broker that returns while the ISR member stays away is elected.
func TestControllerUncleanBrokerDefault(t *testing.T) {
	x := newReplCluster(t, []string{"a", "b"}, "unclean.leader.election.enable=true")
	x.create(assigned("t", []int32{1, 2}))
	x.heartbeat(2, true, false)
	x.wantPart("t", 0, 1, []int32{1}, 0, 1)
	x.heartbeat(1, true, false) // no live replica: offline
	x.wantPart("t", 0, -1, []int32{1}, 1, 2)
	x.heartbeat(2, false, false) // out of sync, live: elected
	x.wantPart("t", 0, 2, []int32{2}, 2, 3)
	if n := x.c.UncleanLeaderElections(); n != 1 {
		t.Fatalf("unclean elections %d, want 1", n)
	}
}

// alter sends AlterPartition of one partition from broker sender.
func (x *replCluster) alter(version int16, sender int32, topic string, p, leaderEpoch, partitionEpoch int32, isr []int32) int16 {
	resp := x.alterResp(version, sender, x.epochs[sender], topic, p, leaderEpoch, partitionEpoch, isr, nil)
	if resp.ErrorCode != 0 {
		return resp.ErrorCode
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

func (x *replCluster) alterResp(version int16, sender int32, senderEpoch int64, topic string, p, leaderEpoch, partitionEpoch int32, isr []int32, isrEpochs []int64) *kmsg.AlterPartitionResponse {
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version = version
	req.BrokerID, req.BrokerEpoch = sender, senderEpoch
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.Topic = topic
	if tp := x.c.image().Topics[topic]; tp != nil {
		rt.TopicID = tp.ID
	}
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = p, leaderEpoch, partitionEpoch
	for i, id := range isr {
		if version >= 3 {
			m := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
			m.BrokerID, m.BrokerEpoch = id, x.epochs[id]
			if isrEpochs != nil {
				m.BrokerEpoch = isrEpochs[i]
			}
			rp.NewEpochISR = append(rp.NewEpochISR, m)
		} else {
			rp.NewISR = append(rp.NewISR, id)
		}
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return x.c.AlterPartition(context.Background(), req)
}

// TestControllerAlterPartition: every error code of AlterPartition, in
// the cases Kafka's controller answers it, and success (shrink, expand).
func TestControllerAlterPartition(t *testing.T) {
	x := newReplCluster(t, []string{"a", "b", "c", "d"})
	x.create(assigned("t", []int32{1, 2, 3}))
	ctx := context.Background()

	// Success: shrink to [1,2], answer with the new state.
	resp := x.alterResp(3, 1, x.epochs[1], "t", 0, 0, 0, []int32{1, 2}, nil)
	rp := resp.Topics[0].Partitions[0]
	if resp.ErrorCode != 0 || rp.ErrorCode != 0 || rp.LeaderID != 1 || !slices.Equal(rp.ISR, []int32{1, 2}) || rp.LeaderEpoch != 0 || rp.PartitionEpoch != 1 {
		t.Fatalf("shrink: %+v", resp)
	}
	if resp.Topics[0].TopidID != x.c.image().Topics["t"].ID {
		t.Fatalf("topic id not echoed")
	}
	x.wantPart("t", 0, 1, []int32{1, 2}, 0, 1)
	// The same ISR again: nothing committed, current state answered.
	off := x.c.image().Offset
	if code := x.alter(3, 1, "t", 0, 0, 1, []int32{1, 2}); code != 0 || x.c.image().Offset != off {
		t.Fatalf("no-op: %v, offset %d -> %d", kerr.ErrorForCode(code), off, x.c.image().Offset)
	}
	// Expand with v0 (by name, no broker epochs).
	if code := x.alter(0, 1, "t", 0, 0, 1, []int32{1, 2, 3}); code != 0 {
		t.Fatalf("expand v0: %v", kerr.ErrorForCode(code))
	}
	x.wantPart("t", 0, 1, []int32{1, 2, 3}, 0, 2)

	x.heartbeat(4, true, false) // fenced, and not a replica
	for _, tc := range []struct {
		name    string
		version int16
		sender  int32
		topic   string
		part    int32
		le, pe  int32
		isr     []int32
		epochs  []int64
		want    *kerr.Error
	}{
		{"unknown topic id", 3, 1, "nope", 0, 0, 2, []int32{1}, nil, kerr.UnknownTopicID},
		{"unknown topic name", 1, 1, "nope", 0, 0, 2, []int32{1}, nil, kerr.UnknownTopicOrPartition},
		{"unknown partition", 3, 1, "t", 7, 0, 2, []int32{1}, nil, kerr.UnknownTopicOrPartition},
		{"leader epoch ahead", 3, 1, "t", 0, 1, 2, []int32{1}, nil, kerr.NotController},
		{"partition epoch ahead", 3, 1, "t", 0, 0, 3, []int32{1}, nil, kerr.NotController},
		{"not the leader", 3, 2, "t", 0, 0, 2, []int32{1, 2}, nil, kerr.InvalidRequest},
		{"stale partition epoch", 3, 1, "t", 0, 0, 1, []int32{1}, nil, kerr.InvalidUpdateVersion},
		{"not a replica", 3, 1, "t", 0, 0, 2, []int32{1, 4}, nil, kerr.InvalidRequest},
		{"twice", 3, 1, "t", 0, 0, 2, []int32{1, 2, 2}, nil, kerr.InvalidRequest},
		{"without the leader", 3, 1, "t", 0, 0, 2, []int32{2, 3}, nil, kerr.InvalidRequest},
		{"stale member epoch", 3, 1, "t", 0, 0, 2, []int32{1, 2}, []int64{x.epochs[1], x.epochs[2] + 1}, kerr.IneligibleReplica},
	} {
		resp := x.alterResp(tc.version, tc.sender, x.epochs[tc.sender], tc.topic, tc.part, tc.le, tc.pe, tc.isr, tc.epochs)
		got := kerr.ErrorForCode(resp.ErrorCode)
		if got == nil {
			got = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
		}
		if got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// A recovering leader (KIP-704) is refused.
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version, req.BrokerID, req.BrokerEpoch = 2, 1, x.epochs[1]
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.TopicID = x.c.image().Topics["t"].ID
	p := kmsg.NewAlterPartitionRequestTopicPartition()
	p.PartitionEpoch, p.NewISR, p.LeaderRecoveryState = 2, []int32{1}, 1
	rt.Partitions = append(rt.Partitions, p)
	req.Topics = append(req.Topics, rt)
	if code := x.c.AlterPartition(ctx, req).Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidRequest.Code {
		t.Fatalf("recovering: %v", kerr.ErrorForCode(code))
	}

	// Stale sender epoch, unknown sender: top-level STALE_BROKER_EPOCH.
	if r := x.alterResp(3, 1, x.epochs[1]+1, "t", 0, 0, 2, []int32{1}, nil); r.ErrorCode != kerr.StaleBrokerEpoch.Code {
		t.Fatalf("stale sender epoch: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := x.alterResp(3, 9, 0, "t", 0, 0, 2, []int32{1}, nil); r.ErrorCode != kerr.StaleBrokerEpoch.Code {
		t.Fatalf("unknown sender: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	// Ineligible new members: fenced (v2+: INELIGIBLE_REPLICA, v1:
	// OPERATION_NOT_ATTEMPTED), in controlled shutdown.
	x.create(assigned("u", []int32{1, 4, 2}))
	x.wantPart("u", 0, 1, []int32{1, 2}, 0, 0)
	if code := x.alter(2, 1, "u", 0, 0, 0, []int32{1, 2, 4}); code != kerr.IneligibleReplica.Code {
		t.Fatalf("fenced member v2: %v", kerr.ErrorForCode(code))
	}
	if code := x.alter(1, 1, "u", 0, 0, 0, []int32{1, 2, 4}); code != kerr.OperationNotAttempted.Code {
		t.Fatalf("fenced member v1: %v", kerr.ErrorForCode(code))
	}
	x.heartbeat(4, false, false) // back
	x.create(assigned("v", []int32{4, 3}))
	x.heartbeat(4, false, true) // leads "v": controlled shutdown
	if !x.c.image().Brokers[4].InControlledShutdown {
		t.Fatal("broker 4 not in controlled shutdown")
	}
	if code := x.alter(3, 1, "u", 0, 0, 0, []int32{1, 2, 4}); code != kerr.IneligibleReplica.Code {
		t.Fatalf("member in controlled shutdown: %v", kerr.ErrorForCode(code))
	}

	// Not the active controller.
	x.c.q.Close()
	if r := x.alterResp(3, 1, x.epochs[1], "t", 0, 0, 2, []int32{1}, nil); r.ErrorCode != kerr.NotController.Code {
		t.Fatalf("closed quorum: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// TestControllerControlledShutdown: a broker that leads partitions and
// asks to shut down stays unfenced, leaves every ISR and its leaderships
// move; once it has applied that it is fenced and may stop. A broker
// leading nothing is fenced and released at once.
func TestControllerControlledShutdown(t *testing.T) {
	x := newReplCluster(t, []string{"a", "b", "c"})
	x.create(assigned("t", []int32{1, 2, 3}, []int32{2, 1, 3}))
	x.create(assigned("solo", []int32{1}))
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch, req.WantShutdown = 1, x.epochs[1], true
	req.CurrentMetadataOffset = x.c.image().Offset
	resp := x.c.BrokerHeartbeat(context.Background(), req)
	if resp.ErrorCode != 0 || resp.ShouldShutdown || resp.IsFenced {
		t.Fatalf("first shutdown heartbeat: %+v", resp)
	}
	b := x.c.image().Brokers[1]
	if b.Fenced || !b.InControlledShutdown {
		t.Fatalf("broker 1: %+v", b)
	}
	x.wantPart("t", 0, 2, []int32{2, 3}, 1, 1)
	x.wantPart("t", 1, 2, []int32{2, 3}, 0, 1)
	x.wantPart("solo", 0, -1, []int32{1}, 1, 1) // nobody else to lead
	// No new partition lands on it.
	x.create(topic("after", 6, 1))
	for _, p := range x.c.image().Topics["after"].Partitions {
		if p.Leader == 1 {
			t.Fatalf("new partition placed on a broker in controlled shutdown: %+v", p)
		}
	}
	// A heartbeat that has not applied the change yet waits.
	resp = x.c.BrokerHeartbeat(context.Background(), req)
	if resp.ShouldShutdown {
		t.Fatalf("released before applying the move: %+v", resp)
	}
	req.CurrentMetadataOffset = x.c.image().Offset
	resp = x.c.BrokerHeartbeat(context.Background(), req)
	if !resp.ShouldShutdown || !resp.IsFenced || !x.c.image().Brokers[1].Fenced || x.c.image().Brokers[1].InControlledShutdown {
		t.Fatalf("second shutdown heartbeat: %+v %+v", resp, x.c.image().Brokers[1])
	}
	// Broker 3 leads partitions of "after": released on its second
	// heartbeat, once caught up.
	if r := x.heartbeat(3, false, true); r.ShouldShutdown || x.c.image().Brokers[3].Fenced {
		t.Fatalf("broker 3: %+v", r)
	}
	for _, p := range x.c.image().Topics["after"].Partitions {
		if p.Leader == 3 || p.Replicas[0] == 3 && p.Leader != -1 {
			t.Fatalf("after broker 3's controlled shutdown: %+v", p)
		}
	}
	if r := x.heartbeat(3, false, true); !r.ShouldShutdown || !x.c.image().Brokers[3].Fenced {
		t.Fatalf("broker 3: %+v", r)
	}
	// Broker 2 is the last: its partitions keep it in the ISR, leaderless.
	x.heartbeat(2, false, true)
	if r := x.heartbeat(2, false, true); !r.ShouldShutdown {
		t.Fatalf("broker 2: %+v", r)
	}
	x.wantPart("t", 0, -1, []int32{2}, 2, 3)
	// Broker 2 restarts and leads again.
	r2 := register(t, x.c, 2, "b", 78)
	x.epochs[2] = r2.BrokerEpoch
	x.wantPart("t", 0, 2, []int32{2}, 3, 4)
	// Broker 1 restarts (new registration, new epoch): it leads the
	// partition it was the last ISR member of again.
	r := register(t, x.c, 1, "a", 77)
	if r.ErrorCode != 0 || r.BrokerEpoch == x.epochs[1] {
		t.Fatalf("re-registration: %+v", r)
	}
	x.wantPart("solo", 0, 1, []int32{1}, 2, 2)
	if got := x.c.image().Brokers[1].Epoch; got != r.BrokerEpoch {
		t.Fatalf("image broker epoch %d, registration answered %d", got, r.BrokerEpoch)
	}
}

// TestControllerReplicationSurvivesRestart: ISR, epochs and broker
// epochs survive a restart of the log (replay) and a snapshot round trip.
func TestControllerReplicationSurvivesRestart(t *testing.T) {
	x := newReplCluster(t, []string{"a", "b", "c"})
	x.create(assigned("t", []int32{1, 2, 3}))
	x.create(assigned("u", []int32{3, 2}))
	x.heartbeat(1, true, false)
	x.heartbeat(2, false, true) // leads t-0 now: controlled shutdown
	before := x.c.image()
	if !before.Brokers[2].InControlledShutdown || before.Topics["t"].Partitions[0].LeaderEpoch != 2 {
		t.Fatalf("setup: %+v %+v", before.Brokers[2], before.Topics["t"].Partitions[0])
	}
	snap, err := metadata.EncodeSnapshot(before)
	if err != nil {
		t.Fatal(err)
	}
	back, err := metadata.DecodeSnapshot(before.ClusterID, snap)
	if err != nil {
		t.Fatal(err)
	}
	if !back.SameState(before) {
		t.Fatalf("snapshot round trip differs:\n%+v\n%+v", back.Brokers, before.Brokers)
	}
	for id, b := range before.Brokers {
		if back.Brokers[id].Epoch != b.Epoch || b.Epoch != x.epochs[id] {
			t.Fatalf("broker %d epoch %d -> %d (registered %d)", id, b.Epoch, back.Brokers[id].Epoch, x.epochs[id])
		}
	}
	// Replay of the log.
	x.c.q.Close()
	q, err := metadata.OpenLocalQuorum(x.dir, "cluster", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if replayed := q.Publisher().Image(); !replayed.SameState(before) {
		t.Fatalf("replayed image differs:\n%+v\n%+v", replayed.Brokers, before.Brokers)
	}
}

// TestControllerFenceManyPartitions: fencing a broker in more ISRs than
// one entry holds (MaxRecordsPerUserOp) commits the changes in several
// entries, the broker's fencing last.
func TestControllerFenceManyPartitions(t *testing.T) {
	x := newReplCluster(t, []string{"a", "b"})
	x.create(topic("m1", 6000, 2))
	x.create(topic("m2", 6000, 2))
	x.heartbeat(1, true, false)
	im := x.c.image()
	if !im.Brokers[1].Fenced {
		t.Fatal("broker 1 not fenced")
	}
	for _, name := range []string{"m1", "m2"} {
		for _, p := range im.Topics[name].Partitions {
			if p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) {
				t.Fatalf("%s-%d: %+v", name, p.ID, p)
			}
		}
	}
}

// TestControllerElectionInvariantsRandom drives a controller through a
// seeded random sequence of fencing, unfencing, controlled shutdowns,
// restarts and AlterPartition shrinks and expands, and checks after
// every step what Kafka's controller guarantees: the ISR is a non-empty
// subset of the replicas; the leader is -1 or an active ISR member; a
// leaderless partition has no active ISR member (no active replica at
// all with unclean election); epochs never go back, the leader epoch
// moves exactly when the leader does; without unclean election a new
// leader was in the ISR before.
func TestControllerElectionInvariantsRandom(t *testing.T) {
	const brokers = 5
	x := newReplCluster(t, []string{"a", "b", "c", "a", "b"})
	x.create(topic("clean", 12, 3))
	x.create(topic("unclean", 12, 3, "unclean.leader.election.enable", "true"))
	rng := newRand(7)
	prev := x.c.image()
	for step := range 400 {
		im := x.c.image()
		id := int32(rng.Intn(brokers) + 1)
		b := im.Brokers[id]
		what := ""
		switch op := rng.Intn(10); {
		case op < 2:
			what = fmt.Sprintf("fence %d", id)
			x.heartbeat(id, true, false)
		case op < 4:
			what = fmt.Sprintf("unfence %d", id)
			if b.Fenced || b.InControlledShutdown {
				x.heartbeat(id, false, false)
			}
		case op < 5:
			what = fmt.Sprintf("shutdown %d", id)
			if !b.Fenced {
				x.heartbeat(id, false, true)
			}
		case op < 6:
			what = fmt.Sprintf("restart %d", id)
			r := register(t, x.c, id, []string{"a", "b", "c", "a", "b"}[id-1], byte(id))
			if r.ErrorCode != 0 {
				t.Fatalf("register: %v", kerr.ErrorForCode(r.ErrorCode))
			}
			x.epochs[id] = r.BrokerEpoch
		default:
			// The leader of a random partition sets a random ISR: itself
			// plus active replicas.
			name := []string{"clean", "unclean"}[rng.Intn(2)]
			p := im.Topics[name].Partitions[rng.Intn(12)]
			if p.Leader < 0 {
				continue
			}
			isr := []int32{p.Leader}
			for _, r := range p.Replicas {
				if r != p.Leader && isActive(im, r) && rng.Intn(2) == 0 {
					isr = append(isr, r)
				}
			}
			what = fmt.Sprintf("alter %s-%d isr %v", name, p.ID, isr)
			if code := x.alter(3, p.Leader, name, p.ID, p.LeaderEpoch, p.PartitionEpoch, isr); code != 0 {
				t.Fatalf("step %d %s: %v", step, what, kerr.ErrorForCode(code))
			}
		}
		next := x.c.image()
		for _, name := range []string{"clean", "unclean"} {
			unclean := name == "unclean"
			for i, p := range next.Topics[name].Partitions {
				o := prev.Topics[name].Partitions[i]
				fail := func(why string) {
					t.Fatalf("step %d (%s): %s-%d %s: %+v (was %+v)", step, what, name, i, why, p, o)
				}
				if len(p.ISR) == 0 || len(slices.Compact(slices.Sorted(slices.Values(p.ISR)))) != len(p.ISR) {
					fail("bad ISR")
				}
				for _, r := range p.ISR {
					if !slices.Contains(p.Replicas, r) {
						fail("ISR member not a replica")
					}
				}
				if p.Leader >= 0 && (!slices.Contains(p.ISR, p.Leader) || !isActive(next, p.Leader)) {
					fail("leader not an active ISR member")
				}
				if p.Leader < 0 {
					for _, r := range p.Replicas {
						if isActive(next, r) && (unclean || slices.Contains(p.ISR, r)) {
							fail("leaderless with an eligible replica")
						}
					}
				}
				if p.LeaderEpoch < o.LeaderEpoch || p.PartitionEpoch < o.PartitionEpoch ||
					(p.Leader != o.Leader) != (p.LeaderEpoch != o.LeaderEpoch) {
					fail("epochs")
				}
				if !unclean && p.Leader >= 0 && p.Leader != o.Leader && !slices.Contains(o.ISR, p.Leader) {
					fail("unclean leader without unclean election")
				}
			}
		}
		prev = next
	}
	t.Logf("unclean elections: %d", x.c.UncleanLeaderElections())
}

// newRand is a seeded source for the random tests.
func newRand(seed int64) *rand.Rand { return rand.New(rand.NewSource(seed)) }
