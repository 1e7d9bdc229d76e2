package replication_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/replica"
	"samsa/internal/replication"
)

// TestReplicationFollowerThrottle: with follower.replication.throttled.rate
// exceeded, a throttled partition that is not caught up is left out of
// the requests (an unthrottled one is still fetched), until the quota's
// rate falls back under the limit; the bytes appended for it are
// recorded; once caught up it is fetched whatever the quota says.
func TestReplicationFollowerThrottle(t *testing.T) {
	clock := time.Unix(5000, 0)
	q := replica.NewQuota(11, time.Second, func() time.Time { return clock })
	q.Throttle("thr")
	byID := map[[16]byte]*stepLeader{}
	var fs []replication.Follower
	logs := map[string]*replication.LogFollower{}
	for i, topic := range []string{"thr", "free"} {
		id := [16]byte{11, byte(i)}
		sl := &stepLeader{l: openLog(t, topic, id)}
		appendEpoch(t, sl.l, 0, 4, "r")
		sl.l.SetHighWatermark(sl.l.LogEndOffset())
		byID[id] = sl
		f := replication.NewLogFollower(openLog(t, topic, id), 0)
		logs[topic] = f
		fs = append(fs, f)
	}
	answer := func(req *kmsg.FetchRequest) *kmsg.FetchResponse {
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = 16
		for _, rt := range req.Topics {
			one := *req
			one.Topics = []kmsg.FetchRequestTopic{rt}
			resp.Topics = append(resp.Topics, byID[rt.TopicID].answer(&one).Topics...)
		}
		return resp
	}
	// One batch per fetch (replica.fetch.max.bytes 1, KIP-74).
	sf, err := replication.NewStepFetcher(replication.Options{BrokerID: 2, FetchMaxBytes: 1, Quota: q, DisableFetchSessions: true, Logger: quiet}, fs)
	if err != nil {
		t.Fatal(err)
	}
	thr, free := logs["thr"], logs["free"]

	// Unlimited: both fetched, the throttled one's bytes recorded.
	sf.Step(clock, answer)
	if thr.LogEndOffset() != 1 || free.LogEndOffset() != 1 {
		t.Fatalf("first round: thr %d free %d", thr.LogEndOffset(), free.LogEndOffset())
	}
	batch := q.Stats().Bytes
	if batch <= 0 {
		t.Fatal("nothing recorded for the throttled partition")
	}
	// A limit of half a batch per second: exceeded now (one batch over
	// the one-second minimum window) for about one more second.
	q.SetLimit(batch / 2)
	sf.Step(clock, answer)
	if thr.LogEndOffset() != 1 || free.LogEndOffset() != 2 {
		t.Fatalf("over the limit: thr %d free %d, want 1 and 2", thr.LogEndOffset(), free.LogEndOffset())
	}
	if q.Stats().Bytes != batch {
		t.Fatal("bytes of the unthrottled partition recorded")
	}
	clock = clock.Add(2100 * time.Millisecond) // rate: batch/2.1s < batch/2
	sf.Step(clock, answer)
	if thr.LogEndOffset() != 2 {
		t.Fatalf("under the limit again: thr %d, want 2", thr.LogEndOffset())
	}
	// Caught up (lag 0) it is never held back: drain it with an
	// unlimited quota, then limit to 0.
	q.SetLimit(1 << 62)
	for range 4 {
		sf.Step(clock, answer)
	}
	if thr.LogEndOffset() != 4 {
		t.Fatalf("drained to %d, want 4", thr.LogEndOffset())
	}
	q.SetLimit(0)
	appendEpoch(t, byID[[16]byte{11, 0}].l, 0, 1, "more")
	byID[[16]byte{11, 0}].l.SetHighWatermark(5)
	sf.Step(clock, answer)
	if thr.LogEndOffset() != 5 {
		t.Fatalf("in-sync partition held back: end %d, want 5", thr.LogEndOffset())
	}
	if st := q.Stats(); st.Throttled <= 0 {
		t.Fatalf("no throttled time: %+v", st)
	}
}
