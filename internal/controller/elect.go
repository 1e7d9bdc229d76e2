package controller

// ElectLeaders (43): an operator asks for leader elections (KIP-183
// preferred, KIP-460 unclean), as Kafka's
// ReplicationControlManager.electLeaders and electLeader do in KRaft:
//
//   - preferred (ElectionType 0): the partition's first replica leads if
//     it is in the ISR and active (unfenced, not in controlled
//     shutdown). ELECTION_NOT_NEEDED when it already leads;
//     PREFERRED_LEADER_NOT_AVAILABLE when it cannot (the current leader
//     then stays). A leaderless partition whose preferred replica cannot
//     lead gets another active ISR member, as Kafka's
//     PartitionChangeBuilder.electPreferredLeader does, and answers NONE.
//   - unclean (ElectionType 1): only a partition without a leader is
//     elected, whatever unclean.leader.election.enable says: an active
//     ISR member if there is one (a clean election), else the first
//     active replica with the ISR reset to it (possible data loss,
//     counted in UncleanLeaderElections). ELECTION_NOT_NEEDED when the
//     partition has a leader; ELIGIBLE_LEADERS_NOT_AVAILABLE when no
//     replica is active.
//
// A null topic list means every partition of every topic; the answer
// then lists every topic and only the partitions whose answer is not
// ELECTION_NOT_NEEDED (Kafka's answer to the "all partitions" request).
// An empty list elects nothing. Every change is a PartitionChangeRecord
// (leader epoch and partition epoch bumped by the image).

import (
	"context"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
)

// Election types of ElectLeaders v1+ (Kafka's ElectionType).
const (
	// ElectPreferred makes a partition's first replica its leader.
	ElectPreferred int8 = 0
	// ElectUnclean elects a leader for a leaderless partition, from
	// outside the ISR if it must.
	ElectUnclean int8 = 1
)

// electResult is the answer for one partition of an ElectLeaders
// request; rec is the change to commit (nil: nothing to commit).
type electResult struct {
	topic     string
	partition int32
	err       *codeErr
	rec       *metadata.PartitionChangeRecord
	unclean   bool
}

// errDescribed is a codeErr with kerr's description of err as message
// (what Kafka's ApiError(Errors) carries).
func errDescribed(err *kerr.Error) *codeErr {
	return &codeErr{code: err.Code, msg: err.Description}
}

// ElectLeaders serves ElectLeaders (43), versions 0-2 (v0 is always a
// preferred election). Errors of the whole request (NOT_CONTROLLER, an
// unknown election type: INVALID_REQUEST, the deadline passed:
// REQUEST_TIMED_OUT) are set at the top level and on every listed
// partition, as Kafka's ElectLeadersRequest.getErrorResponse does.
func (c *Controller) ElectLeaders(ctx context.Context, req *kmsg.ElectLeadersRequest) *kmsg.ElectLeadersResponse {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	resp.Version = req.Version
	if req.Topics != nil && len(req.Topics) == 0 {
		return resp // QuorumController.electLeaders: nothing asked, nothing done
	}
	typ := req.ElectionType
	if req.Version == 0 {
		typ = ElectPreferred
	}
	if typ != ElectPreferred && typ != ElectUnclean {
		return electFailed(req, resp, fail(kerr.InvalidRequest, "Unknown election type %d", typ))
	}
	c.lock()
	defer c.unlock(ctx)
	if e := c.activeLocked(); e != nil {
		return electFailed(req, resp, e)
	}
	if err := checkDeadline(ctx); err != nil {
		return electFailed(req, resp, fail(kerr.RequestTimedOut, "%v", err))
	}
	im := c.image()
	var results []electResult
	if req.Topics == nil {
		for _, name := range slices.Sorted(maps.Keys(im.Topics)) {
			t := im.Topics[name]
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = name
			resp.Topics = append(resp.Topics, rt)
			for i := range t.Partitions {
				r := c.electLeaderLocked(im, name, t.Partitions[i].ID, typ)
				if r.err != nil && r.err.code == kerr.ElectionNotNeeded.Code {
					continue
				}
				results = append(results, r)
			}
		}
	} else {
		// A partition listed twice is elected once; every listing
		// gets its answer.
		seen := map[string]map[int32]bool{}
		listed := map[string]bool{}
		for _, rt := range req.Topics {
			// Every listed topic is answered, even with no partition
			// (Kafka adds its result before electing).
			if !listed[rt.Topic] {
				listed[rt.Topic] = true
				out := kmsg.NewElectLeadersResponseTopic()
				out.Topic = rt.Topic
				resp.Topics = append(resp.Topics, out)
			}
			for _, p := range rt.Partitions {
				if seen[rt.Topic][p] {
					results = append(results, electResult{topic: rt.Topic, partition: p, err: &codeErr{code: -1}})
					continue
				}
				if seen[rt.Topic] == nil {
					seen[rt.Topic] = map[int32]bool{}
				}
				seen[rt.Topic][p] = true
				results = append(results, c.electLeaderLocked(im, rt.Topic, p, typ))
			}
		}
	}
	c.commitElectionsLocked(ctx, results, "elect leaders")
	electAnswer(resp, results)
	return resp
}

// electFailed answers every listed partition (and, v1+, the top level)
// with e.
func electFailed(req *kmsg.ElectLeadersRequest, resp *kmsg.ElectLeadersResponse, e *codeErr) *kmsg.ElectLeadersResponse {
	resp.ErrorCode = e.code
	for _, t := range req.Topics {
		rt := kmsg.NewElectLeadersResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewElectLeadersResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, e.code
			msg := e.msg
			rp.ErrorMessage = &msg
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// electAnswer fills resp with results, grouped by topic in the order the
// topics first appear (after the topics resp already lists, which keep
// their place). A result with code -1 repeats the earlier answer for
// the same partition.
func electAnswer(resp *kmsg.ElectLeadersResponse, results []electResult) {
	idx := map[string]int{}
	for i, rt := range resp.Topics {
		idx[rt.Topic] = i
	}
	first := map[string]map[int32]*codeErr{}
	for _, r := range results {
		e := r.err
		if e != nil && e.code == -1 {
			e = first[r.topic][r.partition]
		} else {
			if first[r.topic] == nil {
				first[r.topic] = map[int32]*codeErr{}
			}
			first[r.topic][r.partition] = e
		}
		i, ok := idx[r.topic]
		if !ok {
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = r.topic
			resp.Topics = append(resp.Topics, rt)
			i = len(resp.Topics) - 1
			idx[r.topic] = i
		}
		rp := kmsg.NewElectLeadersResponseTopicPartition()
		rp.Partition = r.partition
		if e != nil {
			msg := e.msg
			rp.ErrorCode, rp.ErrorMessage = e.code, &msg
		}
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
	}
}

// commitElectionsLocked commits the changes of results, at most
// MaxRecordsPerUserOp per entry (Kafka refuses an "all partitions"
// election over that bound; Samsa splits it), and on a failed commit
// sets that error on the results not committed. It logs each election.
func (c *Controller) commitElectionsLocked(ctx context.Context, results []electResult, op string) {
	var pending []int
	for i := range results {
		if results[i].rec != nil {
			pending = append(pending, i)
		}
	}
	for len(pending) > 0 {
		n := min(len(pending), MaxRecordsPerUserOp)
		recs := make([]metadata.Record, 0, n)
		for _, i := range pending[:n] {
			recs = append(recs, metadata.Record{Type: metadata.TypePartitionChange, PartitionChange: results[i].rec})
		}
		if err := c.commitLocked(ctx, recs); err != nil {
			e := c.commitErr(op, err)
			for _, i := range pending {
				results[i].err, results[i].rec = e, nil
			}
			return
		}
		for _, i := range pending[:n] {
			r := &results[i]
			if r.unclean {
				c.uncleanElections.Add(1)
				c.logger.Warn("unclean leader election: possible data loss", "topic", r.topic, "partition", r.partition,
					"leader", *r.rec.Leader, "reason", op)
			} else {
				c.logger.Info("leader elected", "topic", r.topic, "partition", r.partition, "leader", *r.rec.Leader, "reason", op)
			}
		}
		pending = pending[n:]
	}
}

// electLeaderLocked computes the election of one partition (Kafka's
// ReplicationControlManager.electLeader): its error, or its change.
func (c *Controller) electLeaderLocked(im *metadata.Image, topic string, partition int32, typ int8) electResult {
	r := electResult{topic: topic, partition: partition}
	t := im.Topics[topic]
	if t == nil {
		r.err = fail(kerr.UnknownTopicOrPartition, "No such topic as %s", topic)
		return r
	}
	if partition < 0 || int(partition) >= len(t.Partitions) {
		r.err = fail(kerr.UnknownTopicOrPartition, "No such partition as %s-%d", topic, partition)
		return r
	}
	p := &t.Partitions[partition]
	if len(p.Replicas) == 0 {
		// Not reached: the image keeps every partition's replicas.
		r.err = fail(kerr.InvalidReplicaAssignment, "partition %s-%d has no replicas", topic, partition)
		return r
	}
	acceptable := func(id int32) bool { return isActive(im, id) }
	switch typ {
	case ElectPreferred:
		if p.Leader == p.Replicas[0] {
			r.err = errDescribed(kerr.ElectionNotNeeded)
			return r
		}
		if r.rec = preferredChange(t.ID, p, acceptable); r.rec == nil {
			r.err = errDescribed(kerr.PreferredLeaderNotAvailable)
		}
	default:
		if p.Leader >= 0 {
			r.err = errDescribed(kerr.ElectionNotNeeded)
			return r
		}
		if r.rec, r.unclean = partitionChange(t.ID, p, nil, acceptable, true); r.rec == nil {
			r.err = errDescribed(kerr.EligibleLeadersNotAvailable)
		}
	}
	return r
}

// preferredChange is Kafka's PartitionChangeBuilder.electPreferredLeader
// over the current ISR: the preferred replica if it is in the ISR and
// acceptable; else the current leader stays if it still may lead (no
// change: nil); else the first other ISR member that may lead; else no
// leader. It returns nil when the leader does not change.
func preferredChange(topicID metadata.UUID, p *metadata.Partition, acceptable func(int32) bool) *metadata.PartitionChangeRecord {
	valid := func(r int32) bool { return r >= 0 && slices.Contains(p.ISR, r) && acceptable(r) }
	leader := int32(noLeader)
	switch {
	case valid(p.Replicas[0]):
		leader = p.Replicas[0]
	case valid(p.Leader):
		leader = p.Leader
	default:
		for _, r := range p.Replicas[1:] {
			if valid(r) {
				leader = r
				break
			}
		}
	}
	if leader == p.Leader {
		return nil
	}
	return &metadata.PartitionChangeRecord{TopicID: topicID, PartitionID: p.ID, Leader: &leader}
}
