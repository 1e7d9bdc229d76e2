package api_test

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAPIOffsetsByTopicID: OffsetCommit and OffsetFetch v10 name topics
// by id (KIP-848); they share the offsets committed by name.
func TestAPIOffsetsByTopicID(t *testing.T) {
	n := startNode(t)
	n.createTopic("ids", 2, nil)
	id := n.topicID("ids")
	unknownID := [16]byte{0xde, 0xad}
	c := n.raw()
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version = 3
	fc.CoordinatorKey = "g10"
	if r := c.do(fc).(*kmsg.FindCoordinatorResponse); r.ErrorCode != 0 {
		t.Fatalf("find coordinator: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version = 10
	commit.Group = "g10"
	for _, tid := range [][16]byte{unknownID, id} {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.TopicID = tid
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 1, 42
		rt.Partitions = append(rt.Partitions, rp)
		commit.Topics = append(commit.Topics, rt)
	}
	cr := c.do(commit).(*kmsg.OffsetCommitResponse)
	if len(cr.Topics) != 2 || cr.Topics[0].TopicID != unknownID || cr.Topics[1].TopicID != id {
		t.Fatalf("commit answer topics: %+v", cr.Topics)
	}
	if code := cr.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicID.Code {
		t.Fatalf("unknown id: %v", kerr.ErrorForCode(code))
	}
	if code := cr.Topics[1].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("commit by id: %v", kerr.ErrorForCode(code))
	}

	fetch := func(version int16, topics []kmsg.OffsetFetchRequestGroupTopic) kmsg.OffsetFetchResponseGroup {
		t.Helper()
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = version
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group, g.Topics = "g10", topics
		req.Groups = append(req.Groups, g)
		resp := c.do(req).(*kmsg.OffsetFetchResponse)
		if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
			t.Fatalf("v%d fetch: %+v", version, resp.Groups)
		}
		return resp.Groups[0]
	}
	byID := kmsg.NewOffsetFetchRequestGroupTopic()
	byID.TopicID, byID.Partitions = id, []int32{1}
	bad := kmsg.NewOffsetFetchRequestGroupTopic()
	bad.TopicID, bad.Partitions = unknownID, []int32{0}
	g := fetch(10, []kmsg.OffsetFetchRequestGroupTopic{byID, bad})
	if len(g.Topics) != 2 || g.Topics[0].TopicID != id || g.Topics[0].Partitions[0].Offset != 42 {
		t.Fatalf("fetch by id: %+v", g.Topics)
	}
	if g.Topics[1].TopicID != unknownID || g.Topics[1].Partitions[0].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("fetch of unknown id: %+v", g.Topics[1])
	}
	g = fetch(10, nil) // all topics
	if len(g.Topics) != 1 || g.Topics[0].TopicID != id || g.Topics[0].Topic != "" || g.Topics[0].Partitions[0].Offset != 42 {
		t.Fatalf("fetch all by id: %+v", g.Topics)
	}
	byName := kmsg.NewOffsetFetchRequestGroupTopic()
	byName.Topic, byName.Partitions = "ids", []int32{1}
	g = fetch(9, []kmsg.OffsetFetchRequestGroupTopic{byName})
	if g.Topics[0].Partitions[0].Offset != 42 {
		t.Fatalf("v9 fetch by name after a v10 commit: %+v", g.Topics)
	}
}

// TestAPIListTransactionsPattern: ListTransactions v2 filters by an RE2
// pattern that must match the whole transactional id (KIP-1152).
func TestAPIListTransactionsPattern(t *testing.T) {
	n := txnNode(t)
	c := n.raw()
	for _, id := range []string{"alpha-1", "alpha-2", "beta-1"} {
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.Version = 3
		fc.CoordinatorType, fc.CoordinatorKey = 1, id
		if r := c.do(fc).(*kmsg.FindCoordinatorResponse); r.ErrorCode != 0 {
			t.Fatalf("find coordinator: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		ip := kmsg.NewPtrInitProducerIDRequest()
		ip.Version = 4
		ip.TransactionalID = kmsg.StringPtr(id)
		ip.TransactionTimeoutMillis = 10000
		waitFor(t, "InitProducerID "+id, func() bool {
			return c.do(ip).(*kmsg.InitProducerIDResponse).ErrorCode == 0
		})
	}
	list := func(version int16, pattern *string) ([]string, int16) {
		req := kmsg.NewPtrListTransactionsRequest()
		req.Version = version
		req.TransactionalIDPattern = pattern
		resp := c.do(req).(*kmsg.ListTransactionsResponse)
		var ids []string
		for _, s := range resp.TransactionStates {
			ids = append(ids, s.TransactionalID)
		}
		slices.Sort(ids)
		return ids, resp.ErrorCode
	}
	for _, tc := range []struct {
		version int16
		pattern *string
		want    []string
		code    int16
	}{
		{2, nil, []string{"alpha-1", "alpha-2", "beta-1"}, 0},
		{2, kmsg.StringPtr(""), []string{"alpha-1", "alpha-2", "beta-1"}, 0},
		{2, kmsg.StringPtr("alpha-.*"), []string{"alpha-1", "alpha-2"}, 0},
		{2, kmsg.StringPtr("alpha"), nil, 0}, // the whole id must match
		{2, kmsg.StringPtr(".*-1"), []string{"alpha-1", "beta-1"}, 0},
		{2, kmsg.StringPtr("alpha-(1"), nil, kerr.InvalidRegularExpression.Code},
		{1, nil, []string{"alpha-1", "alpha-2", "beta-1"}, 0},
	} {
		got, code := list(tc.version, tc.pattern)
		if code != tc.code || !slices.Equal(got, tc.want) {
			t.Errorf("v%d pattern %v: %v %v, want %v %v", tc.version, tc.pattern, got, kerr.ErrorForCode(code), tc.want, kerr.ErrorForCode(tc.code))
		}
	}
}
