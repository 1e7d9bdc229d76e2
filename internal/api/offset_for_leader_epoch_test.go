package api_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAPIOffsetForLeaderEpoch asks a real broker over a socket, in every
// version kmsg knows: the latest epoch ends at the log end offset, a
// newer epoch is undefined (-1/-1), a newer current leader epoch is
// UNKNOWN_LEADER_EPOCH, unknown topics and partitions answer
// UNKNOWN_TOPIC_OR_PARTITION; consumers (replica id -1) and followers
// (replica id >= 0) get the same answer.
func TestAPIOffsetForLeaderEpoch(t *testing.T) {
	n := startNode(t)
	n.createTopic("ofle", 1, nil)
	c := n.raw()
	now := time.Now().UnixMilli()
	for i := range 3 {
		pr := produceReq(9, "ofle", 0, batch(t, 4, "v", now))
		resp := c.do(pr).(*kmsg.ProduceResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce %d: %v", i, kerr.ErrorForCode(code))
		}
	}
	const leo = 12

	// The leader epoch of a new single-node topic's partition.
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 9
	mt := kmsg.NewMetadataRequestTopic()
	name := "ofle"
	mt.Topic = &name
	md.Topics = append(md.Topics, mt)
	mresp := c.do(md).(*kmsg.MetadataResponse)
	epoch := mresp.Topics[0].Partitions[0].LeaderEpoch

	type ask struct {
		topic            string
		partition        int32
		current, request int32
	}
	do := func(version int16, replicaID int32, asks ...ask) []kmsg.OffsetForLeaderEpochResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.Version = version
		req.ReplicaID = replicaID
		for _, a := range asks {
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = a.topic
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = a.partition, a.current, a.request
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		resp := c.do(req).(*kmsg.OffsetForLeaderEpochResponse)
		var out []kmsg.OffsetForLeaderEpochResponseTopicPartition
		for _, rt := range resp.Topics {
			out = append(out, rt.Partitions...)
		}
		if len(out) != len(asks) {
			t.Fatalf("v%d: %d answers for %d partitions", version, len(out), len(asks))
		}
		return out
	}
	for v := int16(0); v <= 4; v++ {
		for _, replicaID := range []int32{-1, 2} {
			got := do(v, replicaID,
				ask{"ofle", 0, -1, epoch},
				ask{"ofle", 0, -1, epoch + 5},
				ask{"ofle", 7, -1, epoch},
				ask{"nope", 0, -1, epoch},
			)
			if got[0].ErrorCode != 0 || got[0].EndOffset != leo || (v >= 1 && got[0].LeaderEpoch != epoch) {
				t.Fatalf("v%d replica %d latest epoch: %+v", v, replicaID, got[0])
			}
			if got[1].ErrorCode != 0 || got[1].EndOffset != -1 || (v >= 1 && got[1].LeaderEpoch != -1) {
				t.Fatalf("v%d newer epoch: %+v", v, got[1])
			}
			for _, u := range got[2:] {
				if u.ErrorCode != kerr.UnknownTopicOrPartition.Code || u.EndOffset != -1 {
					t.Fatalf("v%d unknown: %+v (%v)", v, u, kerr.ErrorForCode(u.ErrorCode))
				}
			}
			if v < 2 {
				continue
			}
			got = do(v, replicaID, ask{"ofle", 0, epoch, epoch}, ask{"ofle", 0, epoch + 1, epoch})
			if got[0].ErrorCode != 0 || got[0].EndOffset != leo {
				t.Fatalf("v%d current epoch matching: %+v", v, got[0])
			}
			if got[1].ErrorCode != kerr.UnknownLeaderEpoch.Code || got[1].EndOffset != -1 || got[1].LeaderEpoch != -1 {
				t.Fatalf("v%d newer current epoch: %+v (%v)", v, got[1], kerr.ErrorForCode(got[1].ErrorCode))
			}
		}
	}
}
