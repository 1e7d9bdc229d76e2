package group

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/coordinator"
	"samsa/internal/record"
)

// Committed offsets: OffsetCommit (key 8, v0-v9), OffsetFetch (key 9,
// v0-v9) and OffsetDelete (key 47, v0), as Kafka's OffsetMetadataManager
// serves them for classic groups. v10 of OffsetCommit/OffsetFetch name
// topics by id and are not served.

// OffsetCommit serves OffsetCommit v0-v9. The offsets of one request are
// written as one batch and acknowledged only once it is committed; on a
// failed write nothing is kept and every partition answers the mapped error.
// v0 is treated as a commit without generation (a "simple" commit). A v1
// partition's commit timestamp, when given, is stored as the commit
// timestamp; a v2-v4 retention time gives the offsets an explicit expire
// timestamp (now + retention), as Kafka did before removing them.
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	resp.Version = req.Version
	codes := newCodeGrid(req.Topics, func(t kmsg.OffsetCommitRequestTopic) int { return len(t.Partitions) })
	c.offsetCommit(ctx, req, codes)
	for i, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codes.code(i, j)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// codeGrid is the answer of a request over topics and partitions: one code
// per partition of each topic, nil for success.
type codeGrid [][]*kerr.Error

func newCodeGrid[T any](topics []T, partitions func(T) int) codeGrid {
	g := make(codeGrid, len(topics))
	for i, t := range topics {
		g[i] = make([]*kerr.Error, partitions(t))
	}
	return g
}

// setUnset gives code to every partition that has none yet.
func (g codeGrid) setUnset(code *kerr.Error) {
	for i := range g {
		for j := range g[i] {
			if g[i][j] == nil {
				g[i][j] = code
			}
		}
	}
}

// code is the error code of partition j of topic i.
func (g codeGrid) code(i, j int) int16 {
	if g[i][j] == nil {
		return 0
	}
	return g[i][j].Code
}

// offsetCommit fills codes.
func (c *Coordinator) offsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest, codes codeGrid) {
	setAll := codes.setUnset
	gen, memberID, instanceID := req.Generation, req.MemberID, req.InstanceID
	if req.Version == 0 {
		gen, memberID = -1, ""
	}
	if req.Version < 7 {
		instanceID = nil
	}
	ps, code := c.beginGroupWrite(ctx, req.Group)
	if code != nil {
		setAll(code)
		return
	}
	now := c.now()
	expireTimestamp := int64(noExpireTimestamp)
	if req.Version >= 2 && req.Version <= 4 && req.RetentionTimeMillis != -1 {
		expireTimestamp = now.UnixMilli() + req.RetentionTimeMillis
	}
	g, created, code := ps.commitGroupLocked(req.Group, gen, now, func(g *group) *kerr.Error {
		return g.validateCommitLocked(memberID, instanceID, gen)
	})
	if code != nil {
		setAll(code)
		return
	}
	if m := g.members[memberID]; m != nil {
		g.touchLocked(m, time.Now())
	}

	pend, recs := c.pendingCommits(req.Group, codes, func(i, j int) (topicPartition, *string, offsetValue) {
		t := &req.Topics[i]
		p := &t.Partitions[j]
		v := offsetValue{offset: p.Offset, leaderEpoch: -1,
			commitTimestamp: now.UnixMilli(), expireTimestamp: expireTimestamp}
		if req.Version >= 6 {
			v.leaderEpoch = p.LeaderEpoch
		}
		if req.Version == 1 && p.Timestamp != -1 {
			v.commitTimestamp = p.Timestamp
		}
		return topicPartition{t.Topic, p.Partition}, p.Metadata, v
	})
	if len(pend) == 0 {
		ps.dropCreatedLocked(g, created)
		ps.unlockWrite()
		ps.unlock()
		return
	}
	base, err := ps.appendForGroupLocked(ctx, g, record.BuildOptions{}, recs)
	if err != nil {
		pend.fail(codes, c.appendErrorCode(err))
		ps.dropCreatedLocked(g, created)
	} else {
		for k, pc := range pend {
			pc.v.recordOffset = base + int64(k)
			g.offsets[pc.tp] = pc.v
		}
	}
	ps.unlockWrite()
	ps.unlock()
}

// commitGroupLocked returns group id for an offset commit by a client at
// generation gen: an existing group once validate accepts the commit, or,
// for a commit without generation, a new Empty group (created: a group
// only using Kafka to store offsets), which the commit drops again when it
// stores nothing (dropCreatedLocked). The caller holds writeSem and mu; on
// failure (the code the commit answers) it holds neither.
func (ps *partition) commitGroupLocked(id string, gen int32, now time.Time, validate func(*group) *kerr.Error) (g *group, created bool, code *kerr.Error) {
	g = ps.groups[id]
	if g == nil {
		if gen >= 0 {
			ps.unlockWrite()
			ps.mu.Unlock()
			return nil, false, kerr.IllegalGeneration
		}
		g = newGroup(ps, id, now)
		ps.groups[id] = g
		return g, true, nil
	}
	if code := validate(g); code != nil {
		ps.unlockWrite()
		ps.unlock()
		return nil, false, code
	}
	return g, false, nil
}

// dropCreatedLocked removes g if the commit that created it (created, see
// commitGroupLocked) left it with nothing to keep.
func (ps *partition) dropCreatedLocked(g *group, created bool) {
	if created && g.alive() && len(g.offsets) == 0 && len(g.txnOffsets) == 0 && len(g.members) == 0 && len(g.pending) == 0 {
		delete(ps.groups, g.id)
		g.state = stateDead
	}
}

// pendingCommit is one partition of an offset commit whose record is being
// written: its offset and where its code goes in the answer.
type pendingCommit struct {
	tp topicPartition
	v  offsetValue
	i  int
	j  int
}

type pendingCommits []pendingCommit

// fail answers code for every partition of pend.
func (pend pendingCommits) fail(codes codeGrid, code *kerr.Error) {
	for _, pc := range pend {
		codes[pc.i][pc.j] = code
	}
}

// pendingCommits checks every partition of an (OffsetCommit or
// TxnOffsetCommit) request of group, shaped as codes, and returns those
// accepted with their records, in order; the others get their code
// (OFFSET_METADATA_TOO_LARGE, UNKNOWN_TOPIC_OR_PARTITION). at returns
// partition j of topic i: its topic-partition, its metadata and its offset
// value without metadata.
func (c *Coordinator) pendingCommits(group string, codes codeGrid, at func(i, j int) (topicPartition, *string, offsetValue)) (pendingCommits, []record.Record) {
	var pend pendingCommits
	var recs []record.Record
	exists := c.cfg.TopicPartitionExists
	for i := range codes {
		for j := range codes[i] {
			tp, mdp, v := at(i, j)
			if mdp != nil {
				v.metadata = *mdp
			}
			switch {
			case len(v.metadata) > c.cfg.OffsetMetadataMaxBytes:
				codes[i][j] = kerr.OffsetMetadataTooLarge
				continue
			case exists != nil && !exists(tp.topic, tp.partition):
				codes[i][j] = kerr.UnknownTopicOrPartition
				continue
			}
			pend = append(pend, pendingCommit{tp, v, i, j})
			recs = append(recs, offsetRecord(group, tp, v))
		}
	}
	return pend, recs
}

// validateCommitLocked applies Kafka's rules for who may commit
// (ClassicGroup.validateOffsetCommit): without generation only while the
// group is Empty; otherwise a current member of the current generation,
// and not while the group waits for the leader's assignment.
func (g *group) validateCommitLocked(memberID string, instanceID *string, gen int32) *kerr.Error {
	if gen < 0 && g.state == stateEmpty {
		return nil
	}
	if gen >= 0 || memberID != "" || instanceID != nil {
		if code := g.validateMemberLocked(memberID, instanceID); code != nil {
			return code
		}
		if gen != g.generation {
			return kerr.IllegalGeneration
		}
	} else if g.state != stateEmpty {
		return kerr.UnknownMemberID
	}
	if g.state == stateCompletingRebalance {
		return kerr.RebalanceInProgress
	}
	return nil
}

// OffsetFetch serves OffsetFetch v0-v9 (v8+: several groups). A partition
// never committed answers offset -1 and no error; null topics (v2+) mean
// every committed offset of the group. Offsets of open transactions are
// not visible; with RequireStable (v7+) a partition that has one answers
// UNSTABLE_OFFSET_COMMIT (offset -1) so that the client retries, as
// OffsetMetadataManager.fetchOffsets does.
func (c *Coordinator) OffsetFetch(_ context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	resp.Version = req.Version
	if req.Version >= 8 {
		answered := make(map[string]bool, len(req.Groups))
		for _, rg := range req.Groups {
			if answered[rg.Group] {
				continue // a group listed more than once is answered once
			}
			answered[rg.Group] = true
			var topics []requestedTopic
			if rg.Topics != nil {
				topics = make([]requestedTopic, 0, len(rg.Topics))
				for _, t := range rg.Topics {
					topics = append(topics, requestedTopic{t.Topic, t.Partitions})
				}
				topics = dedupeRequested(topics)
			}
			out, code := c.fetchOffsets(rg.Group, topics, req.RequireStable)
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group = rg.Group
			if code != nil {
				g.ErrorCode = code.Code
			}
			for _, t := range out {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic = t.topic
				for _, p := range t.partitions {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition = p.partition
					rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.answer()
					rt.Partitions = append(rt.Partitions, rp)
				}
				g.Topics = append(g.Topics, rt)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}
	topics := make([]requestedTopic, 0, len(req.Topics))
	for _, t := range req.Topics {
		topics = append(topics, requestedTopic{t.Topic, t.Partitions})
	}
	if req.Topics == nil && req.Version >= 2 {
		topics = nil
	} else {
		topics = dedupeRequested(topics)
	}
	out, code := c.fetchOffsets(req.Group, topics, req.Version >= 7 && req.RequireStable)
	if code != nil {
		if req.Version >= 2 {
			resp.ErrorCode = code.Code
		}
		// v0-v1 have no top-level error: every partition carries it.
		out = out[:0]
		for _, t := range topics {
			ft := fetchedTopic{topic: t.topic}
			for _, p := range t.partitions {
				ft.partitions = append(ft.partitions, fetchedPartition{p, offsetValue{offset: -1, leaderEpoch: -1}, code})
			}
			out = append(out, ft)
		}
	}
	for _, t := range out {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.topic
		for _, p := range t.partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition = p.partition
			rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.answer()
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

type requestedTopic struct {
	topic      string
	partitions []int32
}

// dedupeRequested answers each partition once: a topic listed in several
// entries is merged into its first, a repeated partition dropped. Each
// answer may carry up to offset.metadata.max.bytes of metadata, so
// repeats would multiply a small request into a huge response. The
// result is never nil (nil means "all topics").
func dedupeRequested(topics []requestedTopic) []requestedTopic {
	out := make([]requestedTopic, 0, len(topics))
	at := make(map[string]int, len(topics))
	seen := map[topicPartition]bool{}
	for _, t := range topics {
		i, ok := at[t.topic]
		if !ok {
			i = len(out)
			at[t.topic] = i
			out = append(out, requestedTopic{topic: t.topic, partitions: make([]int32, 0, len(t.partitions))})
		}
		for _, p := range t.partitions {
			tp := topicPartition{t.topic, p}
			if seen[tp] {
				continue
			}
			seen[tp] = true
			out[i].partitions = append(out[i].partitions, p)
		}
	}
	return out
}

type fetchedPartition struct {
	partition int32
	v         offsetValue
	code      *kerr.Error
}

// answer is p's offset, leader epoch, metadata and error code as an
// OffsetFetch response carries them.
func (p fetchedPartition) answer() (offset int64, leaderEpoch int32, metadata *string, errorCode int16) {
	md := p.v.metadata
	if p.code != nil {
		errorCode = p.code.Code
	}
	return p.v.offset, p.v.leaderEpoch, &md, errorCode
}

type fetchedTopic struct {
	topic      string
	partitions []fetchedPartition
}

// fetchOffsets returns the committed offsets of topics (nil: all of the
// group's committed offsets, sorted), or the group-level error. With
// requireStable a partition with an offset of an open transaction answers
// UNSTABLE_OFFSET_COMMIT.
func (c *Coordinator) fetchOffsets(groupID string, topics []requestedTopic, requireStable bool) ([]fetchedTopic, *kerr.Error) {
	ps, code := c.lookup(groupID)
	if code != nil {
		return nil, code
	}
	defer ps.mu.Unlock()
	g := ps.groups[groupID]
	var offs map[topicPartition]offsetValue
	if g != nil {
		offs = g.offsets
	}
	none := offsetValue{offset: -1, leaderEpoch: -1}
	fetched := func(tp topicPartition) fetchedPartition {
		if requireStable && g != nil && g.hasTxnOffsetLocked(tp) {
			return fetchedPartition{partition: tp.partition, v: none, code: kerr.UnstableOffsetCommit}
		}
		v, ok := offs[tp]
		if !ok {
			v = none
		}
		return fetchedPartition{partition: tp.partition, v: v}
	}
	if topics != nil {
		out := make([]fetchedTopic, 0, len(topics))
		for _, t := range topics {
			ft := fetchedTopic{topic: t.topic, partitions: make([]fetchedPartition, 0, len(t.partitions))}
			for _, p := range t.partitions {
				ft.partitions = append(ft.partitions, fetched(topicPartition{t.topic, p}))
			}
			out = append(out, ft)
		}
		return out, nil
	}
	var out []fetchedTopic
	for _, tp := range sortedTopicPartitions(offs) {
		if len(out) == 0 || out[len(out)-1].topic != tp.topic {
			out = append(out, fetchedTopic{topic: tp.topic})
		}
		last := &out[len(out)-1]
		last.partitions = append(last.partitions, fetched(tp))
	}
	return out, nil
}

// OffsetDelete serves OffsetDelete v0: it deletes committed offsets of an
// Empty group, or of a "consumer" group for topics no member subscribes to
// (GROUP_SUBSCRIBED_TO_TOPIC otherwise; NON_EMPTY_GROUP for other protocol
// types). Tombstones are written before the answer.
func (c *Coordinator) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	resp.Version = req.Version
	codes := newCodeGrid(req.Topics, func(t kmsg.OffsetDeleteRequestTopic) int { return len(t.Partitions) })
	if code := c.offsetDelete(ctx, req, codes); code != nil {
		resp.ErrorCode = code.Code
		return resp
	}
	for i, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codes.code(i, j)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (c *Coordinator) offsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest, codes codeGrid) *kerr.Error {
	ps, code := c.beginGroupWrite(ctx, req.Group)
	if code != nil {
		return code
	}
	g := ps.groups[req.Group]
	if g == nil {
		ps.unlockWrite()
		ps.mu.Unlock()
		return kerr.GroupIDNotFound
	}
	var subscribed map[string]bool // nil: every topic counts as subscribed
	if g.state != stateEmpty {
		if g.protocolType != "consumer" {
			ps.unlockWrite()
			ps.mu.Unlock()
			return kerr.NonEmptyGroup
		}
		subscribed = g.subscribedTopicsLocked()
	}
	now := c.now()
	type del struct {
		tp topicPartition
		i  int
		j  int
	}
	var dels []del
	var recs []record.Record
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			if g.state != stateEmpty && (subscribed == nil || subscribed[t.Topic]) {
				codes[i][j] = kerr.GroupSubscribedToTopic
				continue
			}
			tp := topicPartition{t.Topic, p.Partition}
			if _, ok := g.offsets[tp]; !ok && !g.hasTxnOffsetLocked(tp) {
				continue
			}
			dels = append(dels, del{tp, i, j})
			recs = append(recs, offsetTombstone(req.Group, tp, now))
		}
	}
	if len(recs) == 0 {
		ps.unlockWrite()
		ps.mu.Unlock()
		return nil
	}
	ps.mu.Unlock()
	err := ps.appendRecords(ctx, recs)
	ps.mu.Lock()
	if err == nil && (ps.state != coordinator.Loaded || !g.alive()) {
		err = errNotCoordinator
	}
	if err != nil {
		code := c.appendErrorCode(err)
		for _, d := range dels {
			codes[d.i][d.j] = code
		}
	} else {
		for _, d := range dels {
			delete(g.offsets, d.tp)
			ps.dropTxnOffsetsLocked(g, d.tp)
		}
	}
	ps.unlockWrite()
	ps.unlock()
	return nil
}

// subscribedTopicsLocked returns the topics the members of a "consumer"
// group subscribe to, read from the version-0 prefix every consumer
// protocol subscription shares; nil when one does not parse (then every
// topic counts as subscribed, as in ClassicGroup.isSubscribedToTopic).
func (g *group) subscribedTopicsLocked() map[string]bool {
	topics := make(map[string]bool)
	for _, m := range g.members {
		md := m.metadataFor(g.protocol)
		if md == nil {
			return nil
		}
		r := kbin.Reader{Src: md}
		r.Int16()
		n := r.ArrayLen()
		for i := int32(0); i < n && r.Ok(); i++ {
			topics[r.String()] = true
		}
		if !r.Ok() {
			return nil
		}
	}
	return topics
}
