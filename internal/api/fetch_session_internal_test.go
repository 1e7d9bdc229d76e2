package api

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sessionRequest is a v12 fetch of partitions 0..n-1 of topic t.
func sessionRequest(sessionID, epoch int32, first, n int) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID = 12, -1
	req.SessionID, req.SessionEpoch = sessionID, epoch
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "t"
	for p := first; p < first+n; p++ {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = int32(p)
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// newSession creates a session from a full fetch of n partitions.
func newSession(c *fetchSessions, n int) int32 {
	req := sessionRequest(0, 0, 0, n)
	entries := requestEntries(req)
	parts := make([]fetchPartition, len(entries))
	for i := range parts {
		rp := kmsg.NewFetchResponseTopicPartition()
		parts[i].resp = &rp
	}
	return c.create(req, entries, parts)
}

// TestFetchSessionCachePartitionBound: all sessions together hold at
// most maxFetchSessionPartitions partitions, and the count follows
// creation, growth, forgetting and removal.
func TestFetchSessionCachePartitionBound(t *testing.T) {
	c := newFetchSessions(1000, time.Minute)
	if id := newSession(c, maxFetchSessionPartitions+1); id != 0 {
		t.Fatalf("a session over the partition bound was created (%d)", id)
	}
	a := newSession(c, maxFetchSessionPartitions-10)
	if a == 0 || c.partitions.Load() != maxFetchSessionPartitions-10 {
		t.Fatalf("session %d, %d partitions counted", a, c.partitions.Load())
	}
	if id := newSession(c, 11); id != 0 {
		t.Fatal("a second session passed the bound")
	}
	b := newSession(c, 5)
	if b == 0 || c.partitions.Load() != maxFetchSessionPartitions-5 {
		t.Fatalf("session %d, %d partitions counted", b, c.partitions.Load())
	}
	// Growing b by 3 fits; by 10 more closes it.
	if _, _, code := c.beginIncremental(sessionRequest(b, 1, 5, 3)); code != 0 {
		t.Fatalf("growing within the bound: %v", kerr.ErrorForCode(code))
	}
	if got := c.partitions.Load(); got != maxFetchSessionPartitions-2 {
		t.Fatalf("%d partitions counted after growth", got)
	}
	if _, _, code := c.beginIncremental(sessionRequest(b, 2, 100, 10)); code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("growing past the bound: %v", kerr.ErrorForCode(code))
	}
	if got := c.partitions.Load(); got != maxFetchSessionPartitions-10 {
		t.Fatalf("%d partitions counted after closing b", got)
	}
	// Forgetting every partition closes a session too.
	req := sessionRequest(a, 1, 0, 0)
	req.Topics = nil
	ft := kmsg.NewFetchRequestForgottenTopic()
	ft.Topic = "t"
	for p := 0; p < maxFetchSessionPartitions-10; p++ {
		ft.Partitions = append(ft.Partitions, int32(p))
	}
	req.ForgottenTopics = append(req.ForgottenTopics, ft)
	if inc, _, code := c.beginIncremental(req); inc != nil || code != 0 {
		t.Fatalf("forgetting everything: %v %v", inc, kerr.ErrorForCode(code))
	}
	if got, n := c.partitions.Load(), len(c.sessions); got != 0 || n != 0 {
		t.Fatalf("%d partitions in %d sessions left", got, n)
	}
}

// TestFetchSessionEviction follows Kafka's tryEvict: a full cache takes
// a stale session first, else a smaller one old enough to be evictable.
func TestFetchSessionEviction(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newFetchSessions(2, time.Minute)
	c.now = func() time.Time { return now }
	small := newSession(c, 2)
	big := newSession(c, 10)
	if id := newSession(c, 50); id != 0 {
		t.Fatal("evicted a session younger than the eviction time")
	}
	now = now.Add(2 * time.Minute)
	// Keep big in use: small is the stale one.
	if _, _, code := c.beginIncremental(sessionRequest(big, 1, 0, 0)); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	third := newSession(c, 1)
	if third == 0 || c.sessions[small] != nil || c.sessions[big] == nil {
		t.Fatalf("stale session not evicted: third %d, sessions %v", third, c.sessions)
	}
	// Nothing stale now: a larger session replaces the smallest old one.
	if id := newSession(c, 5); id != 0 {
		t.Fatal("evicted a session younger than the eviction time for a larger one")
	}
	now = now.Add(30 * time.Second) // third is idle 30 s, not stale
	if _, _, code := c.beginIncremental(sessionRequest(big, 2, 0, 0)); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	now = now.Add(40 * time.Second) // third is 70 s old and idle: stale
	if id := newSession(c, 5); id == 0 || c.sessions[third] != nil {
		t.Fatal("stale third session not evicted")
	}
}
