package api_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func txnOffsetCommitReq(version int16, group string, producerID int64, topic string, partition int32, offset int64) *kmsg.TxnOffsetCommitRequest {
	r := kmsg.NewPtrTxnOffsetCommitRequest()
	r.Version = version
	r.TransactionalID = "tx"
	r.Group = group
	r.ProducerID = producerID
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = partition, offset
	rt.Partitions = append(rt.Partitions, rp)
	r.Topics = append(r.Topics, rt)
	return r
}

// txnOffsetCommitCode sends req until the group's coordinator is loaded
// and returns its partition's code.
func txnOffsetCommitCode(t *testing.T, c *rawConn, req *kmsg.TxnOffsetCommitRequest) error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := c.do(req).(*kmsg.TxnOffsetCommitResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("TxnOffsetCommit v%d: response shape %+v", req.Version, resp)
		}
		err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
		if (err != kerr.CoordinatorLoadInProgress && err != kerr.NotCoordinator) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAPITxnOffsetCommitPendingOffsets: a TxnOffsetCommit through the wire
// at every served version; its offsets stay invisible to OffsetFetch and
// make require_stable fetches answer UNSTABLE_OFFSET_COMMIT, per
// partition, until the transaction ends (the transaction's end is the
// transaction coordinator's: tested in internal/group with CompleteTxn).
func TestAPITxnOffsetCommitPendingOffsets(t *testing.T) {
	n := startNode(t, "offsets.topic.num.partitions=1")
	n.createTopic("t", 2, nil)
	c := n.raw()

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version = 3
	fc.CoordinatorKey = "g"
	if r := c.do(fc).(*kmsg.FindCoordinatorResponse); r.ErrorCode != 0 {
		t.Fatalf("find coordinator: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.Version = 4
	pr := c.do(ip).(*kmsg.InitProducerIDResponse)
	if pr.ErrorCode != 0 {
		t.Fatalf("init producer id: %v", kerr.ErrorForCode(pr.ErrorCode))
	}

	for v := int16(0); v <= 4; v++ {
		if err := txnOffsetCommitCode(t, c, txnOffsetCommitReq(v, "g", pr.ProducerID, "t", 0, 100+int64(v))); err != nil {
			t.Fatalf("TxnOffsetCommit v%d: %v", v, err)
		}
	}
	if err := txnOffsetCommitCode(t, c, txnOffsetCommitReq(3, "g", pr.ProducerID, "missing", 0, 1)); err != kerr.UnknownTopicOrPartition {
		t.Errorf("unknown topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	stale := txnOffsetCommitReq(3, "g", pr.ProducerID, "t", 0, 1)
	stale.Generation, stale.MemberID = 5, "nobody"
	if err := txnOffsetCommitCode(t, c, stale); err != kerr.UnknownMemberID {
		t.Errorf("unknown member: %v, want UNKNOWN_MEMBER_ID", err)
	}
	if err := txnOffsetCommitCode(t, c, txnOffsetCommitReq(3, "", pr.ProducerID, "t", 0, 1)); err != kerr.InvalidGroupID {
		t.Errorf("empty group id: %v, want INVALID_GROUP_ID", err)
	}

	// Not committed: offset -1 for every OffsetFetch version; require
	// stable (v7+) answers UNSTABLE_OFFSET_COMMIT for partition 0 only.
	for v := int16(1); v <= 7; v++ {
		of := kmsg.NewPtrOffsetFetchRequest()
		of.Version = v
		of.Group = "g"
		of.RequireStable = v >= 7
		ot := kmsg.NewOffsetFetchRequestTopic()
		ot.Topic = "t"
		ot.Partitions = []int32{0, 1}
		of.Topics = append(of.Topics, ot)
		resp := c.do(of).(*kmsg.OffsetFetchResponse)
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
			t.Fatalf("OffsetFetch v%d: %+v", v, resp)
		}
		p0, p1 := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
		want0 := int16(0)
		if v >= 7 {
			want0 = kerr.UnstableOffsetCommit.Code
		}
		if p0.Offset != -1 || p0.ErrorCode != want0 || p1.Offset != -1 || p1.ErrorCode != 0 {
			t.Errorf("OffsetFetch v%d: partition 0 %d/%v, partition 1 %d/%v", v, p0.Offset, kerr.ErrorForCode(p0.ErrorCode), p1.Offset, kerr.ErrorForCode(p1.ErrorCode))
		}
	}
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Version = 9
	of.RequireStable = true
	og := kmsg.NewOffsetFetchRequestGroup()
	og.Group = "g"
	ogt := kmsg.NewOffsetFetchRequestGroupTopic()
	ogt.Topic = "t"
	ogt.Partitions = []int32{0}
	og.Topics = append(og.Topics, ogt)
	of.Groups = append(of.Groups, og)
	resp := c.do(of).(*kmsg.OffsetFetchResponse)
	if len(resp.Groups) != 1 || len(resp.Groups[0].Topics) != 1 ||
		resp.Groups[0].Topics[0].Partitions[0].ErrorCode != kerr.UnstableOffsetCommit.Code {
		t.Errorf("OffsetFetch v9 require stable: %+v", resp)
	}
}
