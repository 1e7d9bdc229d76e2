package controller

import (
	"context"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
	"samsa/internal/metadata/quorumtest"
)

// reassign sends one AlterPartitionReassignments for topic/partition
// (replicas nil: cancel) and returns the partition's error code.
func (x *replCluster) reassign(version int16, topic string, p int32, replicas []int32, allowRF bool) (int16, string) {
	x.t.Helper()
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.Version, req.AllowReplicationFactorChange = version, allowRF
	rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
	rp.Partition, rp.Replicas = p, replicas
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := x.c.AlterPartitionReassignments(context.Background(), req)
	if resp.ErrorCode != 0 {
		return resp.ErrorCode, str(resp.ErrorMessage)
	}
	op := resp.Topics[0].Partitions[0]
	return op.ErrorCode, str(op.ErrorMessage)
}

// wantMove checks a partition's replicas and reassignment state.
func (x *replCluster) wantMove(topic string, p int32, replicas, adding, removing []int32) {
	x.t.Helper()
	got := x.part(topic, p)
	if !slices.Equal(got.Replicas, replicas) || !slices.Equal(got.AddingReplicas, adding) || !slices.Equal(got.RemovingReplicas, removing) {
		x.t.Fatalf("%s-%d: replicas %v adding %v removing %v; want %v %v %v", topic, p,
			got.Replicas, got.AddingReplicas, got.RemovingReplicas, replicas, adding, removing)
	}
}

// TestControllerReassignValidation: Kafka's error codes for every bad
// AlterPartitionReassignments partition, and nothing committed for them.
func TestControllerReassignValidation(t *testing.T) {
	x := newReplCluster(t, []string{"a", "b", "c", "d"})
	x.create(assigned("t", []int32{1, 2}))
	before := x.c.image().Offset
	for _, tc := range []struct {
		name     string
		version  int16
		topic    string
		part     int32
		replicas []int32
		allowRF  bool
		want     *kerr.Error
	}{
		{"unknown topic", 0, "nope", 0, []int32{1, 2}, true, kerr.UnknownTopicOrPartition},
		{"unknown partition", 0, "t", 1, []int32{1, 2}, true, kerr.UnknownTopicOrPartition},
		{"negative partition", 0, "t", -1, []int32{1, 2}, true, kerr.UnknownTopicOrPartition},
		{"empty replicas", 0, "t", 0, []int32{}, true, kerr.InvalidReplicaAssignment},
		{"duplicate broker", 0, "t", 0, []int32{2, 3, 2}, true, kerr.InvalidReplicaAssignment},
		{"unknown broker", 0, "t", 0, []int32{2, 9}, true, kerr.InvalidReplicaAssignment},
		{"cancel without a move", 0, "t", 0, nil, true, kerr.NoReassignmentInProgress},
		{"rf change refused (v1)", 1, "t", 0, []int32{1, 2, 3}, false, kerr.InvalidReplicationFactor},
		{"unknown topic cancel", 0, "nope", 0, nil, true, kerr.UnknownTopicOrPartition},
	} {
		code, msg := x.reassign(tc.version, tc.topic, tc.part, tc.replicas, tc.allowRF)
		if code != tc.want.Code {
			t.Errorf("%s: %v (%s), want %v", tc.name, kerr.ErrorForCode(code), msg, tc.want)
		}
	}
	if x.c.image().Offset != before {
		t.Fatalf("refused reassignments committed records")
	}
	// The same partition twice in one request: the second is refused.
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	rt.Topic = "t"
	for range 2 {
		rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
		rp.Partition, rp.Replicas = 0, []int32{2, 1}
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := x.c.AlterPartitionReassignments(context.Background(), req)
	if ps := resp.Topics[0].Partitions; ps[0].ErrorCode != 0 || ps[1].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("duplicate partition: %+v", ps)
	}
	// A reorder is complete at once: the ISR holds the target.
	x.wantMove("t", 0, []int32{2, 1}, nil, nil)
	// v1 with the same count is allowed without AllowReplicationFactorChange.
	if code, msg := x.reassign(1, "t", 0, []int32{3, 4}, false); code != 0 {
		t.Fatalf("v1 same RF: %v %s", kerr.ErrorForCode(code), msg)
	}
	x.wantMove("t", 0, []int32{3, 4, 1, 2}, []int32{3, 4}, []int32{1, 2})
}

// TestControllerReassignCompletes: a move of {1,2} to {2,3} adds 3
// (replicas 2,3,1), keeps the leader until 3 is in the ISR, then the
// leader's AlterPartition that adds 3 completes it in one record:
// replicas [2,3], 1 out of the ISR, the leadership on 2 (the leader 1
// was removed), the sender answered NEW_LEADER_ELECTED (v2+) or
// FENCED_LEADER_EPOCH (v1). ListPartitionReassignments shows the move
// while it runs.
func TestControllerReassignCompletes(t *testing.T) {
	for _, version := range []int16{1, 3} {
		x := newReplCluster(t, []string{"a", "b", "c"})
		x.create(assigned("t", []int32{1, 2}, []int32{1, 2}))
		if code, msg := x.reassign(0, "t", 0, []int32{2, 3}, true); code != 0 {
			t.Fatalf("reassign: %v %s", kerr.ErrorForCode(code), msg)
		}
		x.wantMove("t", 0, []int32{2, 3, 1}, []int32{3}, []int32{1})
		x.wantPart("t", 0, 1, []int32{1, 2}, 0, 1)

		list := ListPartitionReassignments(x.c.image(), kmsg.NewPtrListPartitionReassignmentsRequest())
		if len(list.Topics) != 1 || len(list.Topics[0].Partitions) != 1 {
			t.Fatalf("list: %+v", list.Topics)
		}
		if lp := list.Topics[0].Partitions[0]; lp.Partition != 0 || !slices.Equal(lp.Replicas, []int32{2, 3, 1}) ||
			!slices.Equal(lp.AddingReplicas, []int32{3}) || !slices.Equal(lp.RemovingReplicas, []int32{1}) {
			t.Fatalf("list partition: %+v", lp)
		}
		named := kmsg.NewPtrListPartitionReassignmentsRequest()
		nt := kmsg.NewListPartitionReassignmentsRequestTopic()
		nt.Topic, nt.Partitions = "t", []int32{1, 7}
		named.Topics = append(named.Topics, nt, kmsg.ListPartitionReassignmentsRequestTopic{Topic: "nope", Partitions: []int32{0}})
		if got := ListPartitionReassignments(x.c.image(), named); len(got.Topics) != 0 {
			t.Fatalf("partitions not moving listed: %+v", got.Topics)
		}

		// An ISR change that does not cover the target leaves the move.
		if code := x.alter(version, 1, "t", 0, 0, 1, []int32{1}); code != 0 {
			t.Fatalf("shrink: %v", kerr.ErrorForCode(code))
		}
		x.wantMove("t", 0, []int32{2, 3, 1}, []int32{3}, []int32{1})
		x.wantPart("t", 0, 1, []int32{1}, 0, 2)
		if code := x.alter(version, 1, "t", 0, 0, 2, []int32{1, 3}); code != 0 {
			t.Fatalf("expand with 3: %v", kerr.ErrorForCode(code))
		}
		x.wantMove("t", 0, []int32{2, 3, 1}, []int32{3}, []int32{1})
		// 2 back in: the target {2,3} is in the ISR, 1 is removed and
		// loses the leadership to the first target replica, 2.
		want := kerr.NewLeaderElected
		if version <= 1 {
			want = kerr.FencedLeaderEpoch
		}
		if code := x.alter(version, 1, "t", 0, 0, 3, []int32{1, 3, 2}); code != want.Code {
			t.Fatalf("v%d completing alter: %v, want %v", version, kerr.ErrorForCode(code), want)
		}
		x.wantMove("t", 0, []int32{2, 3}, nil, nil)
		x.wantPart("t", 0, 2, []int32{3, 2}, 1, 4)
		if got := ListPartitionReassignments(x.c.image(), kmsg.NewPtrListPartitionReassignmentsRequest()); len(got.Topics) != 0 {
			t.Fatalf("completed move listed: %+v", got.Topics)
		}

		// A move that keeps the leader: {1,2} -> {1,3} on partition 1;
		// the completing AlterPartition is a plain success.
		if code, _ := x.reassign(0, "t", 1, []int32{1, 3}, true); code != 0 {
			t.Fatal(kerr.ErrorForCode(code))
		}
		x.wantMove("t", 1, []int32{1, 3, 2}, []int32{3}, []int32{2})
		resp := x.alterResp(version, 1, x.epochs[1], "t", 1, 0, 1, []int32{1, 2, 3}, nil)
		op := resp.Topics[0].Partitions[0]
		if op.ErrorCode != 0 || op.LeaderID != 1 || !slices.Equal(op.ISR, []int32{1, 3}) || op.PartitionEpoch != 2 {
			t.Fatalf("completing alter keeping the leader: %+v", op)
		}
		x.wantMove("t", 1, []int32{1, 3}, nil, nil)
		x.wantPart("t", 1, 1, []int32{1, 3}, 0, 2)
	}
}

// TestControllerReassignLeaderMoveAtRequest: when the ISR already holds
// the target (replicas only removed), the request completes the move
// and elects a target replica if the leader is removed.
func TestControllerReassignLeaderMoveAtRequest(t *testing.T) {
	x := newReplCluster(t, []string{"a", "b", "c"})
	x.create(assigned("t", []int32{1, 2, 3}))
	if code, msg := x.reassign(0, "t", 0, []int32{3, 2}, true); code != 0 {
		t.Fatalf("%v %s", kerr.ErrorForCode(code), msg)
	}
	x.wantMove("t", 0, []int32{3, 2}, nil, nil)
	x.wantPart("t", 0, 3, []int32{2, 3}, 1, 1)
	// A target of fenced brokers only: accepted (registered), waits.
	x.heartbeat(1, true, false)
	if code, msg := x.reassign(0, "t", 0, []int32{1}, true); code != 0 {
		t.Fatalf("%v %s", kerr.ErrorForCode(code), msg)
	}
	x.wantMove("t", 0, []int32{1, 2, 3}, []int32{1}, []int32{2, 3})
	x.wantPart("t", 0, 3, []int32{2, 3}, 1, 2)
}

// TestControllerReassignCancel: cancelling reverts to the original
// replicas (adding ones out of the replicas and the ISR); an ISR of
// adding replicas only needs unclean.leader.election.enable; a new
// target replaces a running move (its adding replicas become removing).
func TestControllerReassignCancel(t *testing.T) {
	x := newReplCluster(t, []string{"a", "b", "c", "d"})
	x.create(assigned("t", []int32{1, 2}))
	if code, _ := x.reassign(0, "t", 0, []int32{3, 4}, true); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	x.wantMove("t", 0, []int32{3, 4, 1, 2}, []int32{3, 4}, []int32{1, 2})
	// 3 joined the ISR.
	if code := x.alter(3, 1, "t", 0, 0, 1, []int32{1, 2, 3}); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	if code, msg := x.reassign(0, "t", 0, nil, true); code != 0 {
		t.Fatalf("cancel: %v %s", kerr.ErrorForCode(code), msg)
	}
	x.wantMove("t", 0, []int32{1, 2}, nil, nil)
	x.wantPart("t", 0, 1, []int32{1, 2}, 0, 3)
	if code, _ := x.reassign(0, "t", 0, nil, true); code != kerr.NoReassignmentInProgress.Code {
		t.Fatalf("second cancel: %v", kerr.ErrorForCode(code))
	}

	// A new target while moving: {1,2} -> {3,4}, then -> {1,3}: 4
	// (adding before) is removed now, and, as in Kafka, the adding
	// list is computed against the current replicas (which hold 3), so
	// it is empty although 3 has not caught up: the move waits for the
	// ISR to hold 1 and 3 all the same.
	if code, _ := x.reassign(0, "t", 0, []int32{3, 4}, true); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	if code, _ := x.reassign(0, "t", 0, []int32{1, 3}, true); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	x.wantMove("t", 0, []int32{1, 3, 2, 4}, nil, []int32{2, 4})
	p := x.part("t", 0)
	if code := x.alter(3, 1, "t", 0, p.LeaderEpoch, p.PartitionEpoch, []int32{1, 2, 3}); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	x.wantMove("t", 0, []int32{1, 3}, nil, nil)
	x.wantPart("t", 0, 1, []int32{1, 3}, 0, p.PartitionEpoch+1)

	// Only adding replicas in the ISR (the original one was fenced):
	// reverting needs an unclean election.
	for _, unclean := range []bool{false, true} {
		y := newReplCluster(t, []string{"a", "b", "c"})
		tp := assigned("u", []int32{1})
		if unclean {
			v := "true"
			tp.Configs = append(tp.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: "unclean.leader.election.enable", Value: &v})
		}
		y.create(tp)
		if code, _ := y.reassign(0, "u", 0, []int32{2, 3}, true); code != 0 {
			t.Fatal(kerr.ErrorForCode(code))
		}
		if code := y.alter(3, 1, "u", 0, 0, 1, []int32{1, 2}); code != 0 {
			t.Fatalf("expand: %v", kerr.ErrorForCode(code))
		}
		y.heartbeat(1, true, false) // ISR [2], 2 leads; 3 not in yet
		y.wantMove("u", 0, []int32{2, 3, 1}, []int32{2, 3}, []int32{1})
		y.wantPart("u", 0, 2, []int32{2}, 1, 3)
		code, msg := y.reassign(0, "u", 0, nil, true)
		if !unclean {
			if code != kerr.InvalidReplicaAssignment.Code {
				t.Fatalf("unclean revert refused: %v %s", kerr.ErrorForCode(code), msg)
			}
			y.wantMove("u", 0, []int32{2, 3, 1}, []int32{2, 3}, []int32{1})
			continue
		}
		if code != 0 {
			t.Fatalf("unclean revert: %v %s", kerr.ErrorForCode(code), msg)
		}
		// Back on fenced broker 1 alone: ISR [1], offline until it
		// returns.
		y.wantMove("u", 0, []int32{1}, nil, nil)
		y.wantPart("u", 0, -1, []int32{1}, 2, 4)
	}
}

// TestControllerReassignSurvivesFailover: a move started on one
// controller of a 3-voter raft quorum is in every voter's image; after
// the active controller dies, the new one lists it and completes it
// when the leader's AlterPartition brings the adding replica into the
// ISR.
func TestControllerReassignSurvivesFailover(t *testing.T) {
	r := newRaftControllers(t)
	ctx, cancel := context.WithTimeout(context.Background(), quorumtest.Timeout)
	defer cancel()
	first, c := r.active(t)
	epochs := map[int32]int64{}
	for id := int32(11); id <= 13; id++ {
		resp := register(t, c, id, "", byte(id))
		if resp.ErrorCode != 0 {
			t.Fatalf("register %d: %v", id, kerr.ErrorForCode(resp.ErrorCode))
		}
		epochs[id] = resp.BrokerEpoch
	}
	tp := topic("t", -1, -1)
	tp.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{11, 12}}}
	if rt := c.CreateTopics(ctx, createReq(7, tp)).Topics[0]; rt.ErrorCode != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(rt.ErrorCode))
	}
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: "t", Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0, Replicas: []int32{12, 13}}}}}
	if resp := c.AlterPartitionReassignments(ctx, req); resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("reassign: %+v", resp)
	}
	off := c.image().Offset
	for id, ml := range r.logs {
		im := quorumtest.WaitImage(t, ml, "the move", func(im *metadata.Image) bool { return im.Offset >= off })
		if p := im.Topics["t"].Partitions[0]; !slices.Equal(p.AddingReplicas, []int32{13}) || !slices.Equal(p.RemovingReplicas, []int32{11}) {
			t.Fatalf("node %d: %+v", id, p)
		}
	}

	r.logs[first].Close()
	delete(r.logs, first)
	_, c = r.active(t)
	list := ListPartitionReassignments(c.image(), kmsg.NewPtrListPartitionReassignmentsRequest())
	if len(list.Topics) != 1 || !slices.Equal(list.Topics[0].Partitions[0].Replicas, []int32{12, 13, 11}) {
		t.Fatalf("list on the new controller: %+v", list.Topics)
	}
	p := c.image().Topics["t"].Partitions[0]
	ar := kmsg.NewPtrAlterPartitionRequest()
	ar.Version, ar.BrokerID, ar.BrokerEpoch = 3, 11, epochs[11]
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.TopicID = c.image().Topics["t"].ID
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.LeaderEpoch, rp.PartitionEpoch = p.LeaderEpoch, p.PartitionEpoch
	for _, id := range []int32{11, 12, 13} {
		rp.NewEpochISR = append(rp.NewEpochISR, kmsg.AlterPartitionRequestTopicPartitionNewEpochISR{BrokerID: id, BrokerEpoch: epochs[id]})
	}
	rt.Partitions = append(rt.Partitions, rp)
	ar.Topics = append(ar.Topics, rt)
	if resp := c.AlterPartition(ctx, ar); resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != kerr.NewLeaderElected.Code {
		t.Fatalf("completing alter partition on the new controller: %+v", resp)
	}
	off = c.image().Offset
	for id, ml := range r.logs {
		im := quorumtest.WaitImage(t, ml, "the completion", func(im *metadata.Image) bool { return im.Offset >= off })
		if p := im.Topics["t"].Partitions[0]; !slices.Equal(p.Replicas, []int32{12, 13}) || p.Reassigning() || p.Leader != 12 {
			t.Fatalf("node %d: %+v", id, p)
		}
	}
}
