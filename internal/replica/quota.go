package replica

import (
	"maps"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"samsa/internal/config"
	"samsa/internal/metadata"
)

// This file is the replication throttle (KIP-73, Kafka's
// ReplicationQuotaManager): one Quota per side and broker. The leader's
// (leader.replication.throttled.rate) meters the bytes it sends to
// followers of the partitions its topics' leader.replication.throttled.
// replicas name for this broker; the follower's
// (follower.replication.throttled.rate) the bytes this broker's fetchers
// append for the partitions of follower.replication.throttled.replicas.
// While the measured rate is above the limit, the leader answers a
// throttled partition's out-of-ISR follower with no records (fetch.go)
// and the follower leaves throttled partitions that are not caught up
// out of its requests (internal/replication); in-sync replicas are never
// held back, but their bytes count, as in Kafka.
//
// The rate is Kafka's sampled Rate: replication.quota.window.num samples
// of replication.quota.window.size.seconds each; the rate is the bytes of
// the samples not older than num*size over the time since the oldest of
// them began. Kafka stretches that time to at least num-1 windows, which
// after an idle period lets (num-1)*size*limit bytes (10 s worth by
// default) through at full speed before the limit holds; Samsa stretches
// it to one window only, so a move of a few seconds is already held to
// the limit (the point of "honoured within 20 %" in docs/cluster.md).

// Quota is one side's replication throttle. Safe for concurrent use.
type Quota struct {
	// window is one sample's span; num the samples kept. Set by NewQuota.
	window time.Duration
	num    int
	// now is the clock (tests inject one).
	now func() time.Time

	// limit is the rate in bytes/s; math.MaxInt64 (Kafka's default) is
	// unlimited: nothing is ever held back.
	limit atomic.Int64
	// throttled is the set of throttled partitions of this broker on this
	// side, replaced as a whole; nil or empty: none.
	throttled atomic.Pointer[throttledSet]

	// recorded counts every byte recorded (samsa_replication_throttle_bytes_total);
	// throttledNs the time the rate was found above the limit
	// (samsa_replication_throttled_seconds_total), closed intervals only.
	recorded, throttledNs atomic.Int64

	mu struct {
		sync.Mutex
		// samples is a ring of num samples; cur the one being filled.
		samples []quotaSample
		cur     int
		// exceededSince is when checks began finding the rate above the
		// limit; zero when the last check did not.
		exceededSince time.Time
	}
}

// quotaSample is the bytes recorded from start for one window.
type quotaSample struct {
	start time.Time // zero: unused
	bytes int64
}

// throttledSet is the throttled partitions per topic.
type throttledSet map[string]throttledTopic

// throttledTopic is one topic's throttled partitions: all, or those in
// parts.
type throttledTopic struct {
	all   bool
	parts map[int32]bool
}

// Kafka's defaults of replication.quota.window.num and
// replication.quota.window.size.seconds.
const (
	DefaultQuotaWindowNum  = 11
	DefaultQuotaWindowSize = time.Second
)

// NewQuota returns an unlimited quota over num samples of window each
// (<= 0: Kafka's defaults); now nil is time.Now.
func NewQuota(num int, window time.Duration, now func() time.Time) *Quota {
	if num <= 0 {
		num = DefaultQuotaWindowNum
	}
	if window <= 0 {
		window = DefaultQuotaWindowSize
	}
	if now == nil {
		now = time.Now
	}
	q := &Quota{window: window, num: num, now: now}
	q.limit.Store(math.MaxInt64)
	q.mu.samples = make([]quotaSample, num)
	return q
}

// SetLimit sets the rate in bytes/s; <= 0 is taken as 0 (everything
// throttled is held back once anything was recorded), math.MaxInt64 is
// unlimited.
func (q *Quota) SetLimit(bytesPerSec int64) { q.limit.Store(max(bytesPerSec, 0)) }

// Limit is the rate in bytes/s (math.MaxInt64: unlimited).
func (q *Quota) Limit() int64 { return q.limit.Load() }

// Throttled reports whether the partition is throttled on this side
// (Kafka's ReplicationQuotaManager.isThrottled).
func (q *Quota) Throttled(topic string, partition int32) bool {
	s := q.throttled.Load()
	if s == nil {
		return false
	}
	t, ok := (*s)[topic]
	return ok && (t.all || t.parts[partition])
}

// setThrottled replaces the throttled set.
func (q *Quota) setThrottled(s throttledSet) { q.throttled.Store(&s) }

// Record adds n bytes sent (leader) or fetched (follower) for throttled
// partitions.
func (q *Quota) Record(n int) {
	if n <= 0 {
		return
	}
	q.recorded.Add(int64(n))
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	s := &q.mu.samples[q.mu.cur]
	if s.start.IsZero() || now.Sub(s.start) >= q.window {
		q.mu.cur = (q.mu.cur + 1) % q.num
		s = &q.mu.samples[q.mu.cur]
		*s = quotaSample{start: now}
	}
	s.bytes += int64(n)
}

// rateLocked is the measured rate in bytes/s at now and how long the
// rate stays above limit if nothing more is recorded (0 when it is not
// above it).
func (q *Quota) rateLocked(now time.Time, limit int64) (rate float64, wait time.Duration) {
	var total int64
	var oldest time.Time
	horizon := now.Add(-time.Duration(q.num) * q.window)
	for i := range q.mu.samples {
		s := &q.mu.samples[i]
		if s.start.IsZero() || !s.start.After(horizon) {
			continue
		}
		total += s.bytes
		if oldest.IsZero() || s.start.Before(oldest) {
			oldest = s.start
		}
	}
	if total == 0 {
		return 0, 0
	}
	elapsed := max(now.Sub(oldest), q.window)
	rate = float64(total) / elapsed.Seconds()
	if limit > 0 && rate > float64(limit) {
		// total/limit is the elapsed time at which the rate falls to the
		// limit; samples ageing out only shorten it.
		need := time.Duration(float64(total) / float64(limit) * float64(time.Second))
		wait = max(need-elapsed, time.Millisecond)
	} else if limit <= 0 {
		wait = q.window
	}
	return rate, wait
}

// Exceeded reports whether the measured rate is above the limit (Kafka's
// isQuotaExceeded) and, if so, how long it will stay above it when
// nothing more is recorded: a follower waits that long before asking for
// throttled partitions again.
func (q *Quota) Exceeded() (bool, time.Duration) {
	limit := q.limit.Load()
	if limit == math.MaxInt64 {
		return false, 0
	}
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	rate, wait := q.rateLocked(now, limit)
	exceeded := rate > float64(limit) || (limit == 0 && rate > 0)
	switch {
	case exceeded && q.mu.exceededSince.IsZero():
		q.mu.exceededSince = now
	case !exceeded && !q.mu.exceededSince.IsZero():
		q.throttledNs.Add(int64(now.Sub(q.mu.exceededSince)))
		q.mu.exceededSince = time.Time{}
	}
	return exceeded, wait
}

// QuotaStats are a quota's counters (metrics).
type QuotaStats struct {
	// Limit is the rate in bytes/s; math.MaxInt64: unlimited.
	Limit int64
	// Rate is the measured rate in bytes/s (Kafka's byte-rate).
	Rate float64
	// Bytes is every byte recorded for throttled partitions.
	Bytes int64
	// Throttled is the time the rate was found above the limit.
	Throttled time.Duration
}

// Stats returns the quota's counters.
func (q *Quota) Stats() QuotaStats {
	now := q.now()
	st := QuotaStats{Limit: q.limit.Load(), Bytes: q.recorded.Load(), Throttled: time.Duration(q.throttledNs.Load())}
	q.mu.Lock()
	st.Rate, _ = q.rateLocked(now, st.Limit)
	if !q.mu.exceededSince.IsZero() {
		st.Throttled += now.Sub(q.mu.exceededSince)
	}
	q.mu.Unlock()
	return st
}

// throttledSetOf returns the partitions of the image's topics whose
// replica on broker the topic config key (leader. or
// follower.replication.throttled.replicas) throttles. Invalid values
// (refused by the controller, so never expected) throttle nothing.
func throttledSetOf(im *metadata.Image, key string, broker int32) throttledSet {
	var out throttledSet
	for _, t := range im.Topics {
		v, ok := t.Configs[key]
		if !ok || v == "" {
			continue
		}
		tr, err := config.ParseThrottledReplicas(v)
		if err != nil {
			continue
		}
		all, parts := tr.PartitionsOf(broker)
		if !all && len(parts) == 0 {
			continue
		}
		if out == nil {
			out = throttledSet{}
		}
		out[t.Name] = throttledTopic{all: all, parts: parts}
	}
	return out
}

// quotaWindow reads replication.quota.window.num and
// replication.quota.window.size.seconds (0: the defaults).
func quotaWindow(cfg *config.Config) (int, time.Duration) {
	if cfg == nil {
		return 0, 0
	}
	num, size := 0, 0
	if v, ok := cfg.Get("replication.quota.window.num"); ok {
		num, _ = strconv.Atoi(v)
	}
	if v, ok := cfg.Get("replication.quota.window.size.seconds"); ok {
		size, _ = strconv.Atoi(v)
	}
	return num, time.Duration(size) * time.Second
}

// rateOf reads a throttle rate key of the effective config; unset or
// invalid: unlimited.
func rateOf(cfg *config.Config, key string) int64 {
	if cfg == nil {
		return math.MaxInt64
	}
	v, ok := cfg.Get(key)
	if !ok {
		return math.MaxInt64
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return math.MaxInt64
	}
	return n
}

// applyThrottles takes the throttle rates of the effective broker config
// and the throttled replicas of the image's topics (Kafka's
// DynamicConfig and TopicConfigHandler updating the quota managers).
// Called by Apply.
func (m *Manager) applyThrottles(cfg *config.Config, im *metadata.Image) {
	m.leaderQuota.SetLimit(rateOf(cfg, "leader.replication.throttled.rate"))
	m.followerQuota.SetLimit(rateOf(cfg, "follower.replication.throttled.rate"))
	m.leaderQuota.setThrottled(throttledSetOf(im, "leader.replication.throttled.replicas", m.nodeID))
	m.followerQuota.setThrottled(throttledSetOf(im, "follower.replication.throttled.replicas", m.nodeID))
}

// LeaderQuota is the leader side's replication throttle.
func (m *Manager) LeaderQuota() *Quota { return m.leaderQuota }

// FollowerQuota is the follower side's replication throttle (the
// fetchers, internal/replication, use it).
func (m *Manager) FollowerQuota() *Quota { return m.followerQuota }

// leaderThrottles returns, when the leader holds back a fetch of
// replica for this throttled partition, how long the quota stays
// exceeded; 0 when it does not hold it back. It holds it back when the
// replica is not in the ISR and the leader's quota is exceeded (Kafka's
// ReplicaManager.shouldLeaderThrottle).
func (p *Partition) leaderThrottles(replica int32) time.Duration {
	p.mu.Lock()
	inISR := contains(p.mu.isr, replica)
	p.mu.Unlock()
	if inISR {
		return 0
	}
	if exceeded, wait := p.m.leaderQuota.Exceeded(); exceeded {
		return max(wait, time.Millisecond)
	}
	return 0
}

// Throttle marks the partitions of topic as throttled on this side (none
// given: every partition), in addition to the throttled replicas of the
// topics' configs until the next image replaces them. For tools and
// tests that drive a Quota without a metadata image.
func (q *Quota) Throttle(topic string, partitions ...int32) {
	next := throttledSet{}
	if s := q.throttled.Load(); s != nil {
		maps.Copy(next, *s)
	}
	t := throttledTopic{all: len(partitions) == 0}
	if !t.all {
		t.parts = map[int32]bool{}
		for _, p := range partitions {
			t.parts[p] = true
		}
	}
	next[topic] = t
	q.setThrottled(next)
}
