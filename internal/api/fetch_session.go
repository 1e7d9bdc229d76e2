package api

// Fetch sessions (KIP-227), as Kafka's FetchSession.scala keeps them.
//
// A full fetch with epoch 0 creates a session holding the request's
// partitions with their fetch parameters and what the response told the
// client about each (high watermark, last stable offset, log start
// offset); its id goes back in the response and the client's next epoch
// is 1. An incremental fetch (epoch > 0) names the session and sends only
// the partitions whose parameters changed, plus ForgottenTopics to drop;
// the broker reads every partition of the session and answers only those
// with something new: records, an error, or a changed high watermark,
// last stable offset or log start offset. A partition that returned
// records moves to the end of the session so that, under MaxBytes, the
// others get their turn. Each incremental fetch bumps the epoch; a
// request with another epoch answers INVALID_FETCH_SESSION_EPOCH, one for
// an unknown id FETCH_SESSION_ID_NOT_FOUND, one switching between topic
// names and topic ids (v13) FETCH_SESSION_TOPIC_ID_ERROR.
//
// The cache is bounded: max.incremental.fetch.session.cache.slots
// sessions (1000; 0 turns sessions off). When it is full a new session
// replaces the least recently used one if that was idle longer than
// min.incremental.fetch.session.eviction.ms (120 s), or else the smallest
// session older than that if the new one has more partitions; otherwise
// no session is created (id 0, the client keeps sending full fetches).
// Follower sessions (replica id >= 0) are privileged as in Kafka.
//
// Beyond Kafka, which bounds only the number of sessions, the partitions
// held by all sessions together are bounded (maxFetchSessionPartitions):
// a full fetch that would pass the bound gets no session, and an
// incremental fetch that would grow its session past it closes the
// session and answers FETCH_SESSION_ID_NOT_FOUND (the client then sends
// full fetches). Without it a client could make every session hold
// millions of partitions.

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's defaults for the session cache.
const (
	defaultFetchSessionSlots    = 1000
	defaultFetchSessionEviction = 120 * time.Second
)

// maxFetchSessionPartitions bounds the partitions all sessions hold
// together (a few hundred bytes each): 1000 consumers of 200 partitions.
const maxFetchSessionPartitions = 200_000

// sessionPartition is one partition of a fetch session.
type sessionPartition struct {
	key     fetchKey
	topic   string   // name (before v13; may be empty from v13 on)
	topicID [16]byte // id (v13+)
	// req is the last fetch parameters the client sent for it.
	req kmsg.FetchRequestTopicPartition
	// What the client was last told; -1 before the first answer. An
	// error resets hw to -1 so the next answer is sent in any case.
	hw, lso, logStart int64
}

// fetchSession is one session. Guarded by mu; the cache's mu is taken
// before it when both are needed.
type fetchSession struct {
	id         int32
	privileged bool // a follower's

	mu sync.Mutex
	// dead is set when the session leaves the cache; a request that
	// found it just before answers FETCH_SESSION_ID_NOT_FOUND.
	dead bool
	// epoch is the epoch the next incremental fetch must carry.
	epoch        int32
	usesTopicIDs bool
	created      time.Time
	lastUsed     time.Time
	// parts in session order; index finds them by key.
	parts []*sessionPartition
	index map[fetchKey]*sessionPartition
}

// fetchSessions is the bounded session cache.
type fetchSessions struct {
	slots    int           // max.incremental.fetch.session.cache.slots; 0: no sessions
	eviction time.Duration // min.incremental.fetch.session.eviction.ms
	now      func() time.Time

	// partitions counts the partitions of every session in the cache.
	// Invariant: <= maxFetchSessionPartitions, but for the moment an
	// incremental fetch has grown a session and not yet closed it.
	partitions atomic.Int64

	mu       sync.Mutex
	sessions map[int32]*fetchSession // guarded by mu
}

func newFetchSessions(slots int, eviction time.Duration) *fetchSessions {
	return &fetchSessions{slots: slots, eviction: eviction, now: time.Now, sessions: map[int32]*fetchSession{}}
}

// nextFetchEpoch is FetchMetadata.nextEpoch: 1 after MaxInt32.
func nextFetchEpoch(e int32) int32 {
	switch {
	case e < 0:
		return -1
	case e == math.MaxInt32:
		return 1
	}
	return e + 1
}

// remove drops session id (a full fetch naming it closes it).
func (c *fetchSessions) remove(id int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sessions[id]; s != nil {
		c.removeLocked(s)
	}
}

// removeLocked takes s out of the cache. c.mu is held; s.mu is not.
func (c *fetchSessions) removeLocked(s *fetchSession) {
	if c.sessions[s.id] != s {
		return
	}
	delete(c.sessions, s.id)
	s.mu.Lock()
	s.dead = true
	c.partitions.Add(-int64(len(s.parts)))
	s.mu.Unlock()
}

// incremental is an incremental fetch in progress on a session.
type incremental struct {
	s *fetchSession
	// epoch is the session's epoch once this request was accepted: the
	// answer is built only if no other request moved it meanwhile.
	epoch int32
}

// beginIncremental applies KIP-227 to an incremental request: it checks
// the session and epoch, adds or updates the request's partitions,
// removes the forgotten ones and returns the session's partitions (a
// snapshot, in session order) to read. A zero code with a nil
// *incremental means the session became empty: it is closed and the
// request is served without a session from its own partitions.
func (c *fetchSessions) beginIncremental(req *kmsg.FetchRequest) (*incremental, []fetchEntry, int16) {
	c.mu.Lock()
	s := c.sessions[req.SessionID]
	c.mu.Unlock()
	if s == nil {
		return nil, nil, kerr.FetchSessionIDNotFound.Code
	}
	inc, entries, code, closeIt := c.updateSession(s, req)
	if closeIt {
		c.remove(s.id)
	}
	return inc, entries, code
}

// updateSession is beginIncremental on session s under s.mu; closeIt
// asks the caller to take s out of the cache (that needs c.mu, which is
// taken before s.mu).
func (c *fetchSessions) updateSession(s *fetchSession, req *kmsg.FetchRequest) (inc *incremental, entries []fetchEntry, code int16, closeIt bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		return nil, nil, kerr.FetchSessionIDNotFound.Code, false
	}
	if s.epoch != req.SessionEpoch {
		return nil, nil, kerr.InvalidFetchSessionEpoch.Code, false
	}
	if s.usesTopicIDs != (req.Version >= 13) {
		return nil, nil, kerr.FetchSessionTopicIDError.Code, false
	}
	before := len(s.parts)
	// The session's size changes only here (under s.mu) and the
	// counter follows it before the lock is released.
	defer func() { c.partitions.Add(int64(len(s.parts) - before)) }()
	for i := range req.Topics {
		rt := &req.Topics[i]
		for _, rp := range rt.Partitions {
			k := keyOf(req.Version, rt.Topic, rt.TopicID, rp.Partition)
			if sp := s.index[k]; sp != nil {
				sp.req = rp
				continue
			}
			sp := &sessionPartition{key: k, topic: rt.Topic, topicID: rt.TopicID, req: rp, hw: -1, lso: -1, logStart: -1}
			s.index[k] = sp
			s.parts = append(s.parts, sp)
		}
	}
	if len(req.ForgottenTopics) > 0 {
		for _, ft := range req.ForgottenTopics {
			for _, p := range ft.Partitions {
				delete(s.index, keyOf(req.Version, ft.Topic, ft.TopicID, p))
			}
		}
		kept := s.parts[:0]
		for _, sp := range s.parts {
			if s.index[sp.key] == sp {
				kept = append(kept, sp)
			}
		}
		clear(s.parts[len(kept):])
		s.parts = kept
	}
	if len(s.parts) == 0 {
		return nil, nil, 0, true
	}
	if c.partitions.Load()+int64(len(s.parts)-before) > maxFetchSessionPartitions {
		return nil, nil, kerr.FetchSessionIDNotFound.Code, true
	}
	s.lastUsed = c.now()
	s.epoch = nextFetchEpoch(s.epoch)
	entries = make([]fetchEntry, len(s.parts))
	for i, sp := range s.parts {
		rp := sp.req
		entries[i] = fetchEntry{key: sp.key, topic: sp.topic, topicID: sp.topicID, req: &rp}
	}
	return &incremental{s: s, epoch: s.epoch}, entries, 0, false
}

// finishIncremental keeps in resp only the partitions with something
// new for the client and records what it was told. It answers
// INVALID_FETCH_SESSION_EPOCH with no partitions when another request on
// the session was accepted meanwhile (a duplicate).
func (h *Handler) finishIncremental(inc *incremental, resp *kmsg.FetchResponse, parts []fetchPartition, entries []fetchEntry) {
	s := inc.s
	s.mu.Lock()
	defer s.mu.Unlock()
	resp.SessionID = s.id
	if s.epoch != inc.epoch {
		h.Release(resp)
		resp.Topics = nil
		resp.ErrorCode = kerr.InvalidFetchSessionEpoch.Code
		return
	}
	var moved []*sessionPartition
	keep := make([]bool, len(parts))
	for i := range parts {
		sp := s.index[entries[i].key]
		if sp == nil {
			continue // forgotten by a later request: not answered
		}
		keep[i] = sp.observe(parts[i].resp)
		if len(parts[i].resp.RecordBatches) > 0 {
			moved = append(moved, sp)
		}
	}
	if len(moved) > 0 {
		// Partitions that returned records go to the end, in order.
		isMoved := make(map[*sessionPartition]bool, len(moved))
		for _, sp := range moved {
			isMoved[sp] = true
		}
		order := make([]*sessionPartition, 0, len(s.parts))
		for _, sp := range s.parts {
			if !isMoved[sp] {
				order = append(order, sp)
			}
		}
		s.parts = append(order, moved...)
	}
	resp.Topics = keepPartitions(resp.Topics, parts, keep)
}

// observe records what the response tells the client about the
// partition and reports whether it must be answered (Kafka's
// CachedPartition.maybeUpdateResponseData, which leaves out the last
// stable offset; Samsa answers its changes too, for read_committed
// consumers). A preferred read replica (KIP-392) is always answered.
func (sp *sessionPartition) observe(rp *kmsg.FetchResponseTopicPartition) bool {
	// Records, a preferred read replica (KIP-392) or a diverging epoch
	// (KIP-320: the follower must truncate) are always answered.
	must := len(rp.RecordBatches) > 0 || rp.PreferredReadReplica >= 0 ||
		rp.DivergingEpoch.Epoch != -1 || rp.DivergingEpoch.EndOffset != -1
	if rp.ErrorCode != 0 {
		sp.hw = -1
		return true
	}
	if sp.hw != rp.HighWatermark {
		sp.hw, must = rp.HighWatermark, true
	}
	if sp.lso != rp.LastStableOffset {
		sp.lso, must = rp.LastStableOffset, true
	}
	if sp.logStart != rp.LogStartOffset {
		sp.logStart, must = rp.LogStartOffset, true
	}
	return must
}

// keepPartitions rebuilds the response topics with the partitions keep
// marks; parts[i].resp points into topics. Topics left empty are dropped.
func keepPartitions(topics []kmsg.FetchResponseTopic, parts []fetchPartition, keep []bool) []kmsg.FetchResponseTopic {
	kept := make(map[*kmsg.FetchResponseTopicPartition]bool, len(parts))
	for i := range parts {
		if keep[i] {
			kept[parts[i].resp] = true
		}
	}
	out := topics[:0]
	for ti := range topics {
		t := topics[ti]
		ps := make([]kmsg.FetchResponseTopicPartition, 0, len(t.Partitions))
		for pi := range t.Partitions {
			if kept[&topics[ti].Partitions[pi]] {
				ps = append(ps, t.Partitions[pi])
			}
		}
		if len(ps) > 0 {
			t.Partitions = ps
			out = append(out, t)
		}
	}
	return out
}

// create makes a session of a full fetch's partitions (epoch 0) with
// what resp told the client, and returns its id; 0 when sessions are off
// or the cache is full of sessions it may not evict.
func (c *fetchSessions) create(req *kmsg.FetchRequest, entries []fetchEntry, parts []fetchPartition) int32 {
	if c.slots <= 0 || len(entries) == 0 {
		return 0
	}
	id, _ := replicaOf(req)
	privileged := id >= 0
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.partitions.Load()+int64(len(entries)) > maxFetchSessionPartitions {
		return 0
	}
	if len(c.sessions) >= c.slots && !c.evictLocked(privileged, len(entries), now) {
		return 0
	}
	s := &fetchSession{
		privileged: privileged, epoch: 1, usesTopicIDs: req.Version >= 13,
		created: now, lastUsed: now,
		parts: make([]*sessionPartition, len(entries)), index: make(map[fetchKey]*sessionPartition, len(entries)),
	}
	for i, e := range entries {
		sp := &sessionPartition{key: e.key, topic: e.topic, topicID: e.topicID, req: *e.req, hw: -1, lso: -1, logStart: -1}
		sp.observe(parts[i].resp)
		s.parts[i] = sp
		s.index[e.key] = sp
	}
	for {
		s.id = rand.Int32N(math.MaxInt32) + 1 // 1..MaxInt32; 0 means "no session"
		if c.sessions[s.id] == nil {
			break
		}
	}
	c.sessions[s.id] = s
	c.partitions.Add(int64(len(s.parts)))
	return s.id
}

// evictLocked frees a slot for a new session of size partitions, as
// Kafka's FetchSessionCache.tryEvict: the least recently used session if
// it is stale, else the least valuable session old enough to be
// evictable (not privileged before privileged, then fewer partitions)
// when the new one is worth more.
func (c *fetchSessions) evictLocked(privileged bool, size int, now time.Time) bool {
	var lru, victim *fetchSession
	var lruUsed time.Time
	var victimSize int
	for _, s := range c.sessions {
		s.mu.Lock()
		used, created, n := s.lastUsed, s.created, len(s.parts)
		s.mu.Unlock()
		if lru == nil || used.Before(lruUsed) {
			lru, lruUsed = s, used
		}
		if now.Sub(created) <= c.eviction && !(privileged && !s.privileged) {
			continue // too young to be evicted by size
		}
		if victim == nil || lessValuable(s.privileged, n, victim.privileged, victimSize) {
			victim, victimSize = s, n
		}
	}
	if lru != nil && now.Sub(lruUsed) > c.eviction {
		c.removeLocked(lru)
		return true
	}
	if victim != nil && !lessValuable(privileged, size, victim.privileged, victimSize) && (privileged != victim.privileged || size > victimSize) {
		c.removeLocked(victim)
		return true
	}
	return false
}

// lessValuable orders sessions for eviction: not privileged first, then
// fewer partitions.
func lessValuable(aPriv bool, aSize int, bPriv bool, bSize int) bool {
	if aPriv != bPriv {
		return !aPriv
	}
	return aSize < bSize
}

// keyOf is the session key of a partition: by name before v13, by topic
// id from v13 on.
func keyOf(version int16, topic string, topicID [16]byte, partition int32) fetchKey {
	if version >= 13 {
		return fetchKey{topicID: topicID, partition: partition}
	}
	return fetchKey{topic: topic, partition: partition}
}
