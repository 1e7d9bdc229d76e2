package api_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAPIElectLeadersVersions: ElectLeaders v0-v2 on one node, where
// every partition's only replica leads: ELECTION_NOT_NEEDED per listed
// partition (v0 is a preferred election whatever ElectionType held);
// UNKNOWN_TOPIC_OR_PARTITION for a missing one; null topics answer
// every topic with no partition; an unknown election type answers
// INVALID_REQUEST at the top level and per partition.
func TestAPIElectLeadersVersions(t *testing.T) {
	n := startNode(t)
	n.createTopic("el", 2, nil)
	c := n.raw()
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrElectLeadersRequest()
		req.Version, req.ElectionType, req.TimeoutMillis = v, 1, 5000
		if v == 0 {
			req.ElectionType = 0
		}
		rt := kmsg.NewElectLeadersRequestTopic()
		rt.Topic, rt.Partitions = "el", []int32{0, 1, 5}
		req.Topics = append(req.Topics, rt)
		resp := c.do(req).(*kmsg.ElectLeadersResponse)
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 3 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		for i, want := range []int16{kerr.ElectionNotNeeded.Code, kerr.ElectionNotNeeded.Code, kerr.UnknownTopicOrPartition.Code} {
			if p := resp.Topics[0].Partitions[i]; p.ErrorCode != want || p.ErrorMessage == nil {
				t.Errorf("v%d partition %d: %v (%v), want %v", v, p.Partition, kerr.ErrorForCode(p.ErrorCode), p.ErrorMessage, kerr.ErrorForCode(want))
			}
		}
	}

	all := kmsg.NewPtrElectLeadersRequest()
	all.Version, all.TimeoutMillis = 2, 5000
	resp := c.do(all).(*kmsg.ElectLeadersResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) == 0 {
		t.Fatalf("all partitions: %+v", resp)
	}
	for _, rt := range resp.Topics {
		if len(rt.Partitions) != 0 {
			t.Errorf("all partitions: %s lists %+v", rt.Topic, rt.Partitions)
		}
	}

	bad := kmsg.NewPtrElectLeadersRequest()
	bad.Version, bad.ElectionType, bad.TimeoutMillis = 2, 7, 5000
	rt := kmsg.NewElectLeadersRequestTopic()
	rt.Topic, rt.Partitions = "el", []int32{0}
	bad.Topics = append(bad.Topics, rt)
	resp = c.do(bad).(*kmsg.ElectLeadersResponse)
	if resp.ErrorCode != kerr.InvalidRequest.Code || resp.Topics[0].Partitions[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("unknown election type: %+v", resp)
	}
}
