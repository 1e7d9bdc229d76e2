package server_test

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterUnregisterBroker: three combined nodes and a broker-only
// node 4 that holds a replica of t-0 ({4,1}). UnregisterBroker sent to a
// node that is not the active controller is forwarded: an unknown id
// answers BROKER_ID_NOT_REGISTERED, the running broker 4 is refused
// (INVALID_REQUEST); once 4 is stopped (controlled shutdown) it is
// unregistered: the node that answered no longer lists it in Metadata or
// in DescribeCluster with fenced brokers, nor does any other node
// shortly after; t-0 keeps replica 4 as an offline replica and stays
// led by 1 with the records. Node 4, a raft learner (a DescribeQuorum
// observer) while registered, is removed from the quorum with its
// registration. Started again, it registers anew and is an observer
// again.
func TestClusterUnregisterBroker(t *testing.T) {
	c := startCluster(t, []nodeSpec{{id: 1}, {id: 2}, {id: 3}, {id: 4, roles: "broker"}})
	ctx := ctxFor(t, 120*time.Second)
	createAssigned(ctx, t, c, 1, "t", []int32{4, 1}, nil)
	waitReplicas(ctx, t, c, 1, "t", []int32{1, 4})
	produceNumbered(ctx, t, c.client(1, kgo.RequiredAcks(kgo.AllISRAcks())), "t", "v", 0, 50)

	ctrl := c.controllerID(ctx, 1)
	via := int32(1)
	for via == ctrl {
		via++
	}
	unregister := func(id int32) *kmsg.UnregisterBrokerResponse {
		t.Helper()
		req := kmsg.NewPtrUnregisterBrokerRequest()
		req.BrokerID = id
		resp, err := req.RequestWith(ctx, c.client(via).Broker(int(via)))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// observes4 asks node via (forwarded to the quorum leader) whether
	// node 4 is among DescribeQuorum's observers.
	observes4 := func() bool {
		t.Helper()
		req := kmsg.NewPtrDescribeQuorumRequest()
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = "__cluster_metadata"
		rt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
		req.Topics = append(req.Topics, rt)
		dq, err := req.RequestWith(ctx, c.client(via).Broker(int(via)))
		if err != nil {
			t.Fatal(err)
		}
		p := dq.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("DescribeQuorum: %v", kerr.ErrorForCode(p.ErrorCode))
		}
		return slices.ContainsFunc(p.Observers, func(o kmsg.DescribeQuorumResponseTopicPartitionReplicaState) bool { return o.ReplicaID == 4 })
	}
	if !observes4() {
		t.Fatal("registered broker-only node 4 is not a DescribeQuorum observer")
	}
	if r := unregister(9); r.ErrorCode != kerr.BrokerIDNotRegistered.Code {
		t.Fatalf("unknown id: %v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
	}
	if r := unregister(4); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("running broker: %v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
	}
	c.stop(4, false)
	if r := unregister(4); r.ErrorCode != 0 {
		t.Fatalf("stopped broker: %v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
	}
	// tm is t as the last lists4 saw it.
	var tm kmsg.MetadataResponseTopic
	lists4 := func(id int32) bool {
		dreq := kmsg.NewPtrDescribeClusterRequest()
		dreq.IncludeFencedBrokers = true
		dr, err := dreq.RequestWith(ctx, c.client(id).Broker(int(id)))
		if err != nil {
			t.Fatal(err)
		}
		mreq := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("t")
		mreq.Topics = append(mreq.Topics, mt)
		m, err := mreq.RequestWith(ctx, c.client(id).Broker(int(id)))
		if err != nil {
			t.Fatal(err)
		}
		tm = m.Topics[0]
		return slices.ContainsFunc(dr.Brokers, func(b kmsg.DescribeClusterResponseBroker) bool { return b.NodeID == 4 }) ||
			slices.ContainsFunc(m.Brokers, func(b kmsg.MetadataResponseBroker) bool { return b.NodeID == 4 })
	}
	if lists4(via) {
		t.Fatalf("node %d still lists broker 4 after answering", via)
	}
	// The quorum leader removed the learner before the answer.
	if observes4() {
		t.Fatal("unregistered node 4 is still a DescribeQuorum observer")
	}
	if p := tm.Partitions[0]; !slices.Equal(p.Replicas, []int32{4, 1}) || p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) || !slices.Equal(p.OfflineReplicas, []int32{4}) {
		t.Fatalf("t-0 after unregistering 4: %+v", p)
	}
	for id := int32(1); id <= 3; id++ {
		for deadline := time.Now().Add(10 * time.Second); lists4(id); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("node %d still lists broker 4", id)
			}
		}
	}
	if r := unregister(4); r.ErrorCode != kerr.BrokerIDNotRegistered.Code {
		t.Fatalf("second unregister: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	// The records are all there on the remaining replica.
	cons := c.client(2, kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for n := 0; n < 50; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume after %d: %v", n, err)
		}
		n += fs.NumRecords()
	}
	// Started again, node 4 registers anew.
	c.restart(4)
	for deadline := time.Now().Add(15 * time.Second); !lists4(1); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("restarted node 4 not registered again")
		}
	}
	if !observes4() {
		t.Fatal("re-registered node 4 is not a DescribeQuorum observer")
	}
	// Node 4 follows the metadata log again: it sees its own new
	// registration.
	for deadline := time.Now().Add(15 * time.Second); !lists4(4); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("restarted node 4 does not follow the metadata log")
		}
	}
}

// TestClusterDecommissionUnderLoad: four nodes; partition dec-0 on
// {4,1,2} (min ISR 2) is written by an idempotent acks=all producer
// throughout. The replica on 4 moves to 3 (AlterPartitionReassignments,
// what `samsa cluster decommission` sends), broker 4 stops (controlled
// shutdown) and is unregistered through node 1: no node's Metadata
// lists it, dec-0 is on {3,1,2} and every acknowledged record is read
// back once, in order.
func TestClusterDecommissionUnderLoad(t *testing.T) {
	c := startCluster(t, specs(4), "min.insync.replicas=2")
	ctx := ctxFor(t, 120*time.Second)
	const topic = "dec"
	createAssigned(ctx, t, c, 1, topic, []int32{4, 1, 2}, nil)
	waitReplicas(ctx, t, c, 1, topic, []int32{1, 2, 4})
	lp := startLoad(ctx, t, c, 1, topic)
	for deadline := time.Now().Add(30 * time.Second); lp.count() < 2000; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			_, err := lp.halt()
			t.Fatalf("producer stuck at %d: %v", lp.count(), err)
		}
	}
	adm := kadm.NewClient(c.client(2))
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, 0, []int32{3, 1, 2})
	resps, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := resps[topic][0]; r.Err != nil {
		t.Fatalf("reassign: %v %s", r.Err, r.ErrMessage)
	}
	waitReplicas(ctx, t, c, 1, topic, []int32{1, 2, 3})
	c.stop(4, false)
	ureq := kmsg.NewPtrUnregisterBrokerRequest()
	ureq.BrokerID = 4
	var ur *kmsg.UnregisterBrokerResponse
	// Broker 4 may have been the active controller: the quorum elects
	// another first.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ur, err = ureq.RequestWith(ctx, c.client(1).Broker(1))
		if err == nil && ur.ErrorCode == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unregister: %v %+v", err, ur)
		}
	}
	for id := int32(1); id <= 3; id++ {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			mreq := kmsg.NewPtrMetadataRequest()
			mreq.Topics = []kmsg.MetadataRequestTopic{}
			m, err := mreq.RequestWith(ctx, c.client(id).Broker(int(id)))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(m.Brokers, func(b kmsg.MetadataResponseBroker) bool { return b.NodeID == 4 }) && len(m.Brokers) == 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d lists brokers %+v", id, m.Brokers)
			}
		}
	}
	for n, deadline := lp.count()+500, time.Now().Add(30*time.Second); lp.count() < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			_, err := lp.halt()
			t.Fatalf("producer stuck at %d after the decommission: %v", lp.count(), err)
		}
	}
	acked, err := lp.halt()
	if err != nil {
		t.Fatal(err)
	}
	checkAllThere(ctx, t, c, 2, topic, acked)
}
