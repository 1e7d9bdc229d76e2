package api_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sessionFetch builds a fetch of topic's partitions (at offsets) in
// session id/epoch; MaxWait 0 unless wait is set.
func sessionFetch(version int16, topic string, id [16]byte, sessionID, epoch int32, offsets map[int32]int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	req.ReplicaID = -1
	req.MaxBytes = 1 << 20
	req.SessionID, req.SessionEpoch = sessionID, epoch
	if len(offsets) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		ps := make([]int32, 0, len(offsets))
		for p := range offsets {
			ps = append(ps, p)
		}
		slices.Sort(ps)
		for _, p := range ps {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offsets[p], 1<<20
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// answered maps each answered partition to its record bytes.
func answered(resp *kmsg.FetchResponse) map[int32]int {
	out := map[int32]int{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[p.Partition] = len(p.RecordBatches)
		}
	}
	return out
}

// TestAPIFetchSessionIncremental drives a fetch session (KIP-227) by
// hand: a full fetch creates it, incremental fetches answer only
// partitions with something new, epochs are checked, forgotten
// partitions leave it, a long poll wakes on an append, and a full fetch
// naming it closes it.
func TestAPIFetchSessionIncremental(t *testing.T) {
	n := startNode(t)
	c := n.raw()
	pc := n.raw() // produces while c waits
	now := time.Now().UnixMilli()
	b := batch(t, 5, "inc", now)
	for _, version := range []int16{12, 16} {
		topic := fmt.Sprintf("inc-v%d", version)
		n.createTopic(topic, 3, nil)
		id := n.topicID(topic)
		c.do(produceReq(9, topic, 0, b))
		full := c.do(sessionFetch(version, topic, id, 0, 0, map[int32]int64{0: 0, 1: 0, 2: 0})).(*kmsg.FetchResponse)
		sid := full.SessionID
		if full.ErrorCode != 0 || sid <= 0 {
			t.Fatalf("full fetch: %v session %d", kerr.ErrorForCode(full.ErrorCode), sid)
		}
		if got := answered(full); len(got) != 3 || got[0] != len(b) {
			t.Fatalf("full fetch answered %v", got)
		}
		end := n.endOffset(topic, 0)
		// Epoch 1: p0 moves past its records; nothing is new.
		resp := c.do(sessionFetch(version, topic, id, sid, 1, map[int32]int64{0: end})).(*kmsg.FetchResponse)
		if resp.ErrorCode != 0 || resp.SessionID != sid || len(answered(resp)) != 0 {
			t.Fatalf("epoch 1: %v session %d answered %v", kerr.ErrorForCode(resp.ErrorCode), resp.SessionID, answered(resp))
		}
		// Epoch 2: p1 got records: only p1 is answered.
		c.do(produceReq(9, topic, 1, batch(t, 2, "p1", now)))
		resp = c.do(sessionFetch(version, topic, id, sid, 2, nil)).(*kmsg.FetchResponse)
		if got := answered(resp); len(got) != 1 || got[1] == 0 {
			t.Fatalf("epoch 2 answered %v, want only partition 1 with records", got)
		}
		// A duplicate of epoch 2.
		resp = c.do(sessionFetch(version, topic, id, sid, 2, nil)).(*kmsg.FetchResponse)
		if resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
			t.Fatalf("repeated epoch: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		// Epoch 3: p1 advances, p2 is forgotten; then p2 gets records.
		req := sessionFetch(version, topic, id, sid, 3, map[int32]int64{1: n.endOffset(topic, 1)})
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic, ft.TopicID, ft.Partitions = topic, id, []int32{2}
		req.ForgottenTopics = append(req.ForgottenTopics, ft)
		if resp = c.do(req).(*kmsg.FetchResponse); resp.ErrorCode != 0 || len(answered(resp)) != 0 {
			t.Fatalf("epoch 3: %v answered %v", kerr.ErrorForCode(resp.ErrorCode), answered(resp))
		}
		c.do(produceReq(9, topic, 2, batch(t, 2, "p2", now)))
		if resp = c.do(sessionFetch(version, topic, id, sid, 4, nil)).(*kmsg.FetchResponse); len(answered(resp)) != 0 {
			t.Fatalf("epoch 4 answered %v: partition 2 was forgotten", answered(resp))
		}
		// Epoch 5: a long poll woken by an append to p0.
		req = sessionFetch(version, topic, id, sid, 5, nil)
		req.MaxWaitMillis, req.MinBytes = 10000, 1
		late := batch(t, 1, "late", now)
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			time.Sleep(200 * time.Millisecond)
			pc.send(produceReq(9, topic, 0, late))
		}()
		start := time.Now()
		resp = c.do(req).(*kmsg.FetchResponse)
		<-sent
		pr := kmsg.NewPtrProduceResponse()
		pr.Version = 9
		if _, err := pc.recv(pr); err != nil {
			t.Fatal(err)
		}
		if got := answered(resp); len(got) != 1 || got[0] == 0 || time.Since(start) > 5*time.Second {
			t.Fatalf("long poll answered %v after %v", got, time.Since(start))
		}
		// The other topic-naming scheme cannot use the session.
		other := int16(12)
		if version == 12 {
			other = 13
		}
		if resp = c.do(sessionFetch(other, topic, id, sid, 6, nil)).(*kmsg.FetchResponse); resp.ErrorCode != kerr.FetchSessionTopicIDError.Code {
			t.Fatalf("v%d on a v%d session: %v", other, version, kerr.ErrorForCode(resp.ErrorCode))
		}
		// A full fetch naming the session closes it.
		if resp = c.do(sessionFetch(version, topic, id, sid, -1, map[int32]int64{0: 0})).(*kmsg.FetchResponse); resp.ErrorCode != 0 || resp.SessionID != 0 {
			t.Fatalf("closing full fetch: %v session %d", kerr.ErrorForCode(resp.ErrorCode), resp.SessionID)
		}
		if resp = c.do(sessionFetch(version, topic, id, sid, 6, nil)).(*kmsg.FetchResponse); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
			t.Fatalf("closed session: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
	}
}

// TestAPIFetchSessionCacheBounded: the cache holds at most
// max.incremental.fetch.session.cache.slots sessions; a full cache evicts
// an idle session older than min.incremental.fetch.session.eviction.ms,
// and with none evictable no session is created.
func TestAPIFetchSessionCacheBounded(t *testing.T) {
	for _, tc := range []struct {
		name      string
		overrides []string
		evicts    bool // the third session replaces the first
	}{
		{"young sessions kept", []string{"max.incremental.fetch.session.cache.slots=2"}, false},
		{"idle sessions evicted", []string{"max.incremental.fetch.session.cache.slots=2", "min.incremental.fetch.session.eviction.ms=0"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t, tc.overrides...)
			n.createTopic("slots", 1, nil)
			c := n.raw()
			c.t = t
			var ids []int32
			for i := 0; i < 3; i++ {
				resp := c.do(sessionFetch(12, "slots", [16]byte{}, 0, 0, map[int32]int64{0: 0})).(*kmsg.FetchResponse)
				ids = append(ids, resp.SessionID)
				time.Sleep(5 * time.Millisecond)
			}
			if ids[0] == 0 || ids[1] == 0 {
				t.Fatalf("sessions %v: the first two must be created", ids)
			}
			first := c.do(sessionFetch(12, "slots", [16]byte{}, ids[0], 1, nil)).(*kmsg.FetchResponse).ErrorCode
			if tc.evicts {
				if ids[2] == 0 || first != kerr.FetchSessionIDNotFound.Code {
					t.Fatalf("sessions %v, first now %v: want the third to evict the first", ids, kerr.ErrorForCode(first))
				}
			} else if ids[2] != 0 || first != 0 {
				t.Fatalf("sessions %v, first now %v: want no third session and the first intact", ids, kerr.ErrorForCode(first))
			}
		})
	}
	n := startNode(t, "max.incremental.fetch.session.cache.slots=0")
	n.createTopic("nosess", 1, nil)
	if sid := n.raw().do(sessionFetch(12, "nosess", [16]byte{}, 0, 0, map[int32]int64{0: 0})).(*kmsg.FetchResponse).SessionID; sid != 0 {
		t.Fatalf("sessions off: got session %d", sid)
	}
}
