package server_test

import (
	"slices"
	"testing"
	"time"

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
// led by 1 with the records. Node 4 started again registers anew.
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
		if id == via {
			p := m.Topics[0].Partitions[0]
			if !slices.Equal(p.Replicas, []int32{4, 1}) || p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) || !slices.Equal(p.OfflineReplicas, []int32{4}) {
				t.Fatalf("t-0 after unregistering 4: %+v", p)
			}
		}
		return slices.ContainsFunc(dr.Brokers, func(b kmsg.DescribeClusterResponseBroker) bool { return b.NodeID == 4 }) ||
			slices.ContainsFunc(m.Brokers, func(b kmsg.MetadataResponseBroker) bool { return b.NodeID == 4 })
	}
	if lists4(via) {
		t.Fatalf("node %d still lists broker 4 after answering", via)
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
}
