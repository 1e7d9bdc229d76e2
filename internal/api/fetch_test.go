package api_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchedBytes sums the record bytes of every partition of resp.
func fetchedBytes(resp *kmsg.FetchResponse) (total, partitions int) {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			total += len(p.RecordBatches)
			partitions++
		}
	}
	return total, partitions
}

// TestAPIFetchDuplicatePartitionsCollapse: a partition listed many times
// is read and answered once (Kafka keys the fetch data by partition, the
// last mention's parameters win), so a small request cannot multiply the
// response.
func TestAPIFetchDuplicatePartitionsCollapse(t *testing.T) {
	n := startNode(t)
	n.createTopic("dup", 2, nil)
	c := n.raw()
	b := batch(t, 20, "duplicate-partition-value", time.Now().UnixMilli())
	c.do(produceReq(9, "dup", 0, b))
	c.do(produceReq(9, "dup", 1, b))

	for _, version := range []int16{4, 12, 13} {
		req := fetchReq(version, "dup", 0, 1000) // out of range: overwritten below
		if version >= 13 {
			req.Topics[0].TopicID = n.topicID("dup")
		}
		tmpl := req.Topics[0].Partitions[0]
		req.Topics[0].Partitions = req.Topics[0].Partitions[:0]
		for i := 0; i < 5000; i++ {
			p := tmpl
			p.FetchOffset = int64(i + 1000) // all out of range but the last
			req.Topics[0].Partitions = append(req.Topics[0].Partitions, p)
		}
		// The same topic again in a second entry, with partition 1 and
		// the last mention of partition 0 (offset 0: in range).
		second := req.Topics[0]
		second.Partitions = nil
		p1 := tmpl
		p1.Partition, p1.FetchOffset = 1, 0
		p0 := tmpl
		p0.FetchOffset = 0
		second.Partitions = append(second.Partitions, p1, p0)
		req.Topics = append(req.Topics, second)
		req.MaxBytes = 1 << 30

		resp := c.do(req).(*kmsg.FetchResponse)
		total, parts := fetchedBytes(resp)
		if parts != 2 {
			t.Fatalf("v%d: %d partitions answered, want 2", version, parts)
		}
		if total != 2*len(b) {
			t.Fatalf("v%d: %d record bytes, want %d (each partition once)", version, total, 2*len(b))
		}
		first := resp.Topics[0].Partitions[0]
		if first.Partition != 0 || first.ErrorCode != 0 || len(first.RecordBatches) != len(b) {
			t.Fatalf("v%d: first answer: partition %d code %v %d bytes; want partition 0 read from offset 0 (the last mention)",
				version, first.Partition, kerr.ErrorForCode(first.ErrorCode), len(first.RecordBatches))
		}
	}
}

// TestAPIFetchBrokerMaxBytes: the response is bounded by fetch.max.bytes
// whatever MaxBytes the client asks for; the first batch may exceed it
// (KIP-74).
func TestAPIFetchBrokerMaxBytes(t *testing.T) {
	n := startNode(t, "fetch.max.bytes=4096")
	n.createTopic("cap", 4, nil)
	c := n.raw()
	one := batch(t, 30, "fetch-max-bytes-value-fetch-max-bytes", time.Now().UnixMilli())
	if len(one) < 1024 || len(one) > 4096 {
		t.Fatalf("test batch is %d bytes", len(one))
	}
	for p := int32(0); p < 4; p++ {
		for i := 0; i < 5; i++ {
			c.do(produceReq(9, "cap", p, one))
		}
	}
	req := fetchReq(12, "cap", 0, 0)
	req.MaxBytes = 1 << 30
	for p := int32(1); p < 4; p++ {
		rp := req.Topics[0].Partitions[0]
		rp.Partition = p
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
	}
	resp := c.do(req).(*kmsg.FetchResponse)
	total, _ := fetchedBytes(resp)
	if total == 0 || total > 4096+len(one) {
		t.Fatalf("fetched %d bytes with fetch.max.bytes=4096 (batches of %d)", total, len(one))
	}

	// A big first batch still comes back whole.
	big := batch(t, 400, "a-batch-larger-than-fetch-max-bytes", time.Now().UnixMilli())
	n.createTopic("capbig", 1, nil)
	c.do(produceReq(9, "capbig", 0, big))
	resp = c.do(fetchReq(12, "capbig", 0, 0)).(*kmsg.FetchResponse)
	if got := len(resp.Topics[0].Partitions[0].RecordBatches); got != len(big) {
		t.Fatalf("first batch: fetched %d bytes, want the whole %d-byte batch", got, len(big))
	}
}

// TestAPIFetchSessionRules checks KIP-227's session id/epoch rules as
// Kafka's FetchManager.newContext applies them: epoch 0 and -1 are full
// fetches whatever the session id (kafka-go's kafka.Client sends id -1,
// epoch -1), epoch 0 creating a session; any other epoch names a session,
// and none of those named here exists.
func TestAPIFetchSessionRules(t *testing.T) {
	n := startNode(t)
	n.createTopic("sess", 1, nil)
	c := n.raw()
	b := batch(t, 3, "session", time.Now().UnixMilli())
	c.do(produceReq(9, "sess", 0, b))
	for _, tc := range []struct {
		id, epoch int32
		want      int16 // top-level error; 0 means the data must come back
	}{
		{-1, -1, 0},
		{0, -1, 0},
		{0, 0, 0},
		{1234, 0, 0},  // full fetch closing a (here unknown) session
		{1234, -1, 0}, // same, creating none
		{0, 1, kerr.FetchSessionIDNotFound.Code},
		{1234, 7, kerr.FetchSessionIDNotFound.Code},
		{-1, 3, kerr.FetchSessionIDNotFound.Code},
	} {
		for _, version := range []int16{7, 12, 16} {
			req := fetchReq(version, "sess", 0, 0)
			if version >= 13 {
				req.Topics[0].TopicID = n.topicID("sess")
			}
			req.SessionID, req.SessionEpoch = tc.id, tc.epoch
			resp := c.do(req).(*kmsg.FetchResponse)
			if resp.ErrorCode != tc.want {
				t.Fatalf("v%d id %d epoch %d: error %v, want %v", version, tc.id, tc.epoch, kerr.ErrorForCode(resp.ErrorCode), kerr.ErrorForCode(tc.want))
			}
			if created := resp.SessionID != 0; created != (tc.want == 0 && tc.epoch == 0) {
				t.Fatalf("v%d id %d epoch %d: session id %d (epoch 0 creates a session, -1 and errors none)", version, tc.id, tc.epoch, resp.SessionID)
			}
			total, _ := fetchedBytes(resp)
			if tc.want == 0 && total != len(b) {
				t.Fatalf("v%d id %d epoch %d: %d record bytes, want %d", version, tc.id, tc.epoch, total, len(b))
			}
			if tc.want != 0 && len(resp.Topics) != 0 {
				t.Fatalf("v%d id %d epoch %d: topics answered with a session error", version, tc.id, tc.epoch)
			}
		}
	}
}

// topicID returns the id of topic from a Metadata request.
func (n *node) topicID(topic string) [16]byte {
	n.t.Helper()
	td, err := n.admin().ListTopics(ctxT(n.t), topic)
	if err != nil || !td.Has(topic) {
		n.t.Fatalf("list %s: %v", topic, err)
	}
	return td[topic].ID
}
