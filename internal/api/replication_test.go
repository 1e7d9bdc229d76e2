package api_test

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAPIAlterPartitionRouted: AlterPartition (56) reaches the node's
// controller in every version served and is answered in it; a sender
// whose broker epoch is not its registration's gets STALE_BROKER_EPOCH
// (the controller's own tests cover every code).
func TestAPIAlterPartitionRouted(t *testing.T) {
	n := startNode(t)
	n.createTopic("ap", 1, nil)
	c := n.raw()
	for v := int16(0); v <= 3; v++ {
		req := kmsg.NewPtrAlterPartitionRequest()
		req.Version = v
		req.BrokerID, req.BrokerEpoch = 1, -5
		rt := kmsg.NewAlterPartitionRequestTopic()
		rt.Topic = "ap"
		rp := kmsg.NewAlterPartitionRequestTopicPartition()
		rp.NewISR = []int32{1}
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := c.do(req).(*kmsg.AlterPartitionResponse)
		if resp.ErrorCode != kerr.StaleBrokerEpoch.Code {
			t.Fatalf("v%d: %v", v, kerr.ErrorForCode(resp.ErrorCode))
		}
	}
}

// TestAPIFindCoordinatorWaitsForReplicationFactor: with
// controller.quorum.voters set, the internal topics default to
// Kafka's replication factor 3; one broker cannot hold it, so
// FindCoordinator answers COORDINATOR_NOT_AVAILABLE (clients retry until
// enough brokers register) and no internal topic is created.
func TestAPIFindCoordinatorWaitsForReplicationFactor(t *testing.T) {
	n := startNode(t, "controller.quorum.voters=1@127.0.0.1:0")
	c := n.raw()
	for _, typ := range []int8{0, 1} {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version = 3
		req.CoordinatorType, req.CoordinatorKey = typ, "k"
		resp := c.do(req).(*kmsg.FindCoordinatorResponse)
		if resp.ErrorCode != kerr.CoordinatorNotAvailable.Code || resp.ErrorMessage == nil ||
			!strings.Contains(*resp.ErrorMessage, "replication factor of 3 cannot be reached") {
			t.Fatalf("type %d: %v %v", typ, kerr.ErrorForCode(resp.ErrorCode), resp.ErrorMessage)
		}
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	if resp := c.do(md).(*kmsg.MetadataResponse); len(resp.Topics) != 0 {
		t.Fatalf("topics created: %d", len(resp.Topics))
	}
}
