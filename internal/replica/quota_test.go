package replica

import (
	"math"
	"testing"
	"time"

	"samsa/internal/config"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestQuotaUnlimitedNeverExceeded(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	q := NewQuota(11, time.Second, c.now)
	q.Record(1 << 30)
	if over, _ := q.Exceeded(); over {
		t.Fatal("an unlimited quota is exceeded")
	}
	if q.Limit() != math.MaxInt64 {
		t.Fatalf("limit %d", q.Limit())
	}
}

// TestQuotaWindowHoldsRate drives a greedy sender through the quota on a
// fake clock: it sends 1 MiB whenever the quota is not exceeded, else
// waits the hinted time. Over 30 s the bytes sent stay within one fetch
// and one window of limit*elapsed.
func TestQuotaWindowHoldsRate(t *testing.T) {
	const limit = 10 << 20
	c := &fakeClock{t: time.Unix(1000, 0)}
	q := NewQuota(11, time.Second, c.now)
	q.SetLimit(limit)
	start := c.t
	var sent int64
	for c.t.Sub(start) < 30*time.Second {
		over, wait := q.Exceeded()
		if over {
			if wait <= 0 {
				t.Fatal("exceeded without a wait")
			}
			c.advance(wait)
			continue
		}
		q.Record(1 << 20)
		sent += 1 << 20
		c.advance(time.Millisecond)
	}
	elapsed := c.t.Sub(start).Seconds()
	rate := float64(sent) / elapsed
	t.Logf("sent %d bytes in %.1f s: %.2f MiB/s (limit 10 MiB/s)", sent, elapsed, rate/(1<<20))
	if rate > limit*1.1 || rate < limit*0.9 {
		t.Fatalf("rate %.0f B/s, want 10 MiB/s within 10%%", rate)
	}
	st := q.Stats()
	if st.Bytes != sent || st.Throttled <= 0 || st.Limit != limit {
		t.Fatalf("stats %+v, sent %d", st, sent)
	}
}

// TestQuotaBurstBoundedByOneWindow: after idling, at most one window's
// worth (plus the record that crosses it) goes through before the limit
// holds (Kafka allows num-1 windows; see quota.go).
func TestQuotaBurstBoundedByOneWindow(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	q := NewQuota(11, time.Second, c.now)
	q.SetLimit(1000)
	q.Record(500)
	c.advance(time.Hour) // everything ages out
	var n int
	for {
		if over, _ := q.Exceeded(); over {
			break
		}
		q.Record(100)
		n += 100
		if n > 10_000 {
			t.Fatal("never exceeded")
		}
	}
	if n != 1100 {
		t.Fatalf("burst of %d bytes, want 1100 (one window of 1000 B/s plus the crossing record)", n)
	}
}

func TestQuotaSamplesAgeOut(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	q := NewQuota(3, time.Second, c.now)
	q.SetLimit(100)
	q.Record(1000)
	over, wait := q.Exceeded()
	if !over || wait != 9*time.Second {
		// 1000 B over a 1 s minimum window: 1000 B/s; the rate falls to
		// 100 B/s once 10 s passed, 9 s from now.
		t.Fatalf("exceeded %v wait %v, want true 9s", over, wait)
	}
	c.advance(2 * time.Second)
	if over, _ := q.Exceeded(); !over {
		t.Fatal("not exceeded 2 s later (500 B/s)")
	}
	c.advance(time.Second + time.Millisecond) // older than 3 windows
	if over, _ := q.Exceeded(); over {
		t.Fatal("exceeded after the sample aged out")
	}
	if st := q.Stats(); st.Throttled < 3*time.Second || st.Rate != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestQuotaThrottledSet(t *testing.T) {
	q := NewQuota(0, 0, nil)
	if q.Throttled("t", 0) {
		t.Fatal("throttled before any set")
	}
	all, _ := config.ParseThrottledReplicas("*")
	tr, _ := config.ParseThrottledReplicas("0:1,2:1,1:2")
	a, _ := all.PartitionsOf(1)
	ta, tp := tr.PartitionsOf(1)
	q.setThrottled(throttledSet{"a": {all: a}, "b": {all: ta, parts: tp}})
	for _, c := range []struct {
		topic string
		p     int32
		want  bool
	}{{"a", 7, true}, {"b", 0, true}, {"b", 2, true}, {"b", 1, false}, {"c", 0, false}} {
		if got := q.Throttled(c.topic, c.p); got != c.want {
			t.Errorf("Throttled(%s, %d) = %v, want %v", c.topic, c.p, got, c.want)
		}
	}
}

// TestQuotaLeaderHoldsBackOutOfISRFollower: with the topic's
// leader.replication.throttled.replicas naming this broker (0:1) and
// leader.replication.throttled.rate exceeded, the leader answers the
// out-of-ISR follower (3) with no records and a wait hint, still records
// its position; the in-sync follower (2) gets records; once the rate
// falls, 3 gets records again.
func TestQuotaLeaderHoldsBackOutOfISRFollower(t *testing.T) {
	c := newCluster(t, map[string]string{"leader.replication.throttled.replicas": "0:1,0:2"}, "leader.replication.throttled.rate=100")
	clk := &fakeClock{t: time.Unix(1000, 0)}
	c.m.leaderQuota.now = clk.now
	c.set(mp(1, 1, 1, 1, 2))
	p := c.part(0)
	if !c.m.LeaderQuota().Throttled("t", 0) || c.m.FollowerQuota().Throttled("t", 0) || c.m.LeaderQuota().Limit() != 100 {
		t.Fatalf("throttles from the configs: leader %v follower %v limit %d",
			c.m.LeaderQuota().Throttled("t", 0), c.m.FollowerQuota().Throttled("t", 0), c.m.LeaderQuota().Limit())
	}
	leo := produce(t, p, 10, 1)
	first := followerFetch(t, p, 3, 0)
	if len(first.Records) == 0 || first.Throttled != 0 {
		t.Fatalf("first fetch: %d bytes, throttled %v", len(first.Records), first.Throttled)
	}
	held := followerFetch(t, p, 3, 2)
	if len(held.Records) != 0 || held.Throttled <= 0 || held.LogEndOffset != leo {
		t.Fatalf("over the limit: %d bytes, throttled %v", len(held.Records), held.Throttled)
	}
	if in := followerFetch(t, p, 2, 0); len(in.Records) == 0 {
		t.Fatal("the in-sync follower was held back")
	}
	clk.advance(20 * time.Second) // the samples aged out
	if again := followerFetch(t, p, 3, 2); len(again.Records) == 0 {
		t.Fatal("still held back once the rate fell")
	}
	if st := c.m.LeaderQuota().Stats(); st.Bytes <= int64(len(first.Records)) || st.Throttled <= 0 {
		t.Fatalf("stats %+v", st)
	}
	// The configs gone: nothing is throttled.
	c.cfgs = nil
	c.set(mp(1, 1, 1, 1, 2))
	if c.m.LeaderQuota().Throttled("t", 0) {
		t.Fatal("still throttled after the config was deleted")
	}
}
