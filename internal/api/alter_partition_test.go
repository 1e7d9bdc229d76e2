package api_test

import (
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
