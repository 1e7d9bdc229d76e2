package controller

// AlterPartition (56): a partition leader asks the controller to change
// its ISR (shrink a lagging follower out, expand a caught-up one in,
// KIP-497). Validation and error codes follow Kafka's
// ReplicationControlManager.alterPartition and
// validateAlterPartitionData, in the same order.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
)

// leaderRecovered is AlterPartition's LeaderRecoveryState (v1+, KIP-704)
// of a leader not recovering from an unclean election; Samsa never sets
// the other state (1, RECOVERING).
const leaderRecovered = 0

// AlterPartition serves AlterPartition (56), versions 0-3, from a
// partition leader:
//
//   - NOT_CONTROLLER (top level) off the active controller;
//     STALE_BROKER_EPOCH (top level) when the sender is not registered
//     or its BrokerEpoch is not its registration's.
//   - per topic: UNKNOWN_TOPIC_ID (v2+, topics by id) or
//     UNKNOWN_TOPIC_OR_PARTITION (v0-v1, by name).
//   - per partition, in Kafka's order: UNKNOWN_TOPIC_OR_PARTITION (no
//     such partition); NOT_CONTROLLER when the request's leader or
//     partition epoch is ahead of the controller's (it is likely stale);
//     FENCED_LEADER_EPOCH (leader epoch behind); INVALID_REQUEST (sender
//     not the leader, as Kafka's controller answers); INVALID_UPDATE_VERSION
//     (partition epoch behind); INVALID_REQUEST (a new ISR member not a
//     replica or listed twice, the leader missing, or a leader recovery
//     state of RECOVERING, which Samsa never sets); INELIGIBLE_REPLICA
//     (v2+; OPERATION_NOT_ATTEMPTED before) when a new ISR member is
//     not registered, is fenced, is in controlled shutdown, or (v3,
//     KIP-903) its broker epoch is not -1 and not its registration's.
//   - success: the ISR is changed by a PartitionChangeRecord (partition
//     epoch + 1; the leader stays) and the answer carries the leader,
//     ISR, leader epoch and partition epoch after it. An unchanged ISR
//     commits nothing and answers the current state.
//   - during a reassignment (reassign.go), a new ISR holding every
//     target replica completes it in the same record; when that moves
//     the leadership off the sender (it was being removed), the change is
//     committed and the sender is answered NEW_LEADER_ELECTED (v2+;
//     FENCED_LEADER_EPOCH before), as Kafka does.
func (c *Controller) AlterPartition(ctx context.Context, req *kmsg.AlterPartitionRequest) *kmsg.AlterPartitionResponse {
	resp := req.ResponseKind().(*kmsg.AlterPartitionResponse)
	resp.Version = req.Version
	c.lock()
	defer c.unlock(ctx)
	if e := c.activeLocked(); e != nil {
		resp.ErrorCode = e.code
		return resp
	}
	im := c.image()
	if b, ok := im.Brokers[req.BrokerID]; !ok || b.Epoch != req.BrokerEpoch {
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		return resp
	}
	type pending struct {
		ti, pi int // index into resp.Topics / Partitions
		topic  *metadata.Topic
		rec    *metadata.PartitionChangeRecord
		// leaderMoved: the change completed a reassignment that took
		// the leadership from the sender.
		leaderMoved bool
	}
	var changes []pending
	var recs []metadata.Record
	for _, rt := range req.Topics {
		out := kmsg.NewAlterPartitionResponseTopic()
		out.Topic, out.TopidID = rt.Topic, rt.TopicID
		var t *metadata.Topic
		if req.Version > 1 {
			t = im.TopicsByID[rt.TopicID]
		} else {
			t = im.Topics[rt.Topic]
		}
		for _, rp := range rt.Partitions {
			op := kmsg.NewAlterPartitionResponseTopicPartition()
			op.Partition = rp.Partition
			switch {
			case t == nil && req.Version > 1:
				op.ErrorCode = kerr.UnknownTopicID.Code
			case t == nil:
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			if t == nil {
				out.Partitions = append(out.Partitions, op)
				continue
			}
			isr := requestedISR(req.Version, &rp)
			code := validateAlterPartition(im, t, req.BrokerID, req.Version, &rp, isr)
			if code == 0 {
				code = c.offlineDirIneligible(t, rp.Partition, req.Version, isr)
			}
			if code != 0 {
				op.ErrorCode = code
				out.Partitions = append(out.Partitions, op)
				continue
			}
			p := &t.Partitions[rp.Partition]
			ids := make([]int32, len(isr))
			for i, m := range isr {
				ids[i] = m.BrokerID
			}
			// The leader is in the new ISR and active, so it stays and
			// only the ISR changes, unless the new ISR completes a
			// reassignment that removes the leader (reassign.go).
			rec, _ := alterISRChange(t.ID, p, ids, func(r int32) bool { return isActive(im, r) })
			if rec != nil {
				moved := rec.Leader != nil && *rec.Leader != req.BrokerID
				changes = append(changes, pending{ti: len(resp.Topics), pi: len(out.Partitions), topic: t, rec: rec, leaderMoved: moved})
				recs = append(recs, metadata.Record{Type: metadata.TypePartitionChange, PartitionChange: rec})
			}
			fillAlterPartition(&op, p)
			out.Partitions = append(out.Partitions, op)
		}
		resp.Topics = append(resp.Topics, out)
	}
	if len(recs) == 0 {
		return resp
	}
	if err := c.commitLocked(ctx, recs); err != nil {
		e := c.commitErr("alter partition", err)
		for _, ch := range changes {
			op := &resp.Topics[ch.ti].Partitions[ch.pi]
			*op = kmsg.NewAlterPartitionResponseTopicPartition()
			op.Partition, op.ErrorCode = ch.rec.PartitionID, e.code
		}
		return resp
	}
	after := c.image()
	for _, ch := range changes {
		t := after.TopicsByID[ch.topic.ID]
		if t == nil || int(ch.rec.PartitionID) >= len(t.Partitions) {
			continue // not reached: deleted under c.mu is impossible
		}
		if ch.leaderMoved {
			// Committed, yet an error for the sender, which must learn
			// its new role from the metadata (Kafka answers the same).
			op := &resp.Topics[ch.ti].Partitions[ch.pi]
			*op = kmsg.NewAlterPartitionResponseTopicPartition()
			op.Partition, op.ErrorCode = ch.rec.PartitionID, kerr.FencedLeaderEpoch.Code
			if req.Version > 1 {
				op.ErrorCode = kerr.NewLeaderElected.Code
			}
			c.logger.Info("partition reassignment completed; leadership moved", "topic", t.Name, "partition", ch.rec.PartitionID,
				"from", req.BrokerID, "leader", *ch.rec.Leader, "replicas", ch.rec.Replicas, "isr", ch.rec.ISR)
			continue
		}
		fillAlterPartition(&resp.Topics[ch.ti].Partitions[ch.pi], &t.Partitions[ch.rec.PartitionID])
		if ch.rec.AddingReplicas != nil || ch.rec.RemovingReplicas != nil {
			c.logger.Info("partition reassignment completed", "topic", t.Name, "partition", ch.rec.PartitionID,
				"replicas", ch.rec.Replicas, "isr", ch.rec.ISR)
			continue
		}
		c.logger.Info("partition ISR altered", "topic", t.Name, "partition", ch.rec.PartitionID,
			"leader", req.BrokerID, "isr", ch.rec.ISR)
	}
	return resp
}

// isrMember is one member of a requested ISR with its broker epoch (-1:
// not checked, as before v3).
type isrMember struct {
	BrokerID    int32
	BrokerEpoch int64
}

// requestedISR returns the new ISR of a partition of the request: v3's
// NewEpochISR, or NewISR with epochs -1 before (Kafka's
// newIsrToSimpleNewIsrWithBrokerEpochs).
func requestedISR(version int16, rp *kmsg.AlterPartitionRequestTopicPartition) []isrMember {
	var out []isrMember
	if version >= 3 {
		for _, m := range rp.NewEpochISR {
			out = append(out, isrMember{BrokerID: m.BrokerID, BrokerEpoch: m.BrokerEpoch})
		}
		return out
	}
	for _, id := range rp.NewISR {
		out = append(out, isrMember{BrokerID: id, BrokerEpoch: -1})
	}
	return out
}

// validateAlterPartition checks one partition of an AlterPartition
// request against the image (Kafka's validateAlterPartitionData) and
// returns its error code, 0 when valid.
func validateAlterPartition(im *metadata.Image, t *metadata.Topic, sender int32, version int16, rp *kmsg.AlterPartitionRequestTopicPartition, isr []isrMember) int16 {
	if rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
		return kerr.UnknownTopicOrPartition.Code
	}
	p := &t.Partitions[rp.Partition]
	switch {
	case rp.LeaderEpoch > p.LeaderEpoch, rp.PartitionEpoch > p.PartitionEpoch:
		// The sender knows a newer partition than this controller:
		// probably no longer the active one.
		return kerr.NotController.Code
	case rp.LeaderEpoch < p.LeaderEpoch:
		return kerr.FencedLeaderEpoch.Code
	case sender != p.Leader:
		return kerr.InvalidRequest.Code
	case rp.PartitionEpoch < p.PartitionEpoch:
		return kerr.InvalidUpdateVersion.Code
	}
	seen := map[int32]bool{}
	for _, m := range isr {
		if seen[m.BrokerID] || !slices.Contains(p.Replicas, m.BrokerID) {
			return kerr.InvalidRequest.Code
		}
		seen[m.BrokerID] = true
	}
	if !seen[p.Leader] {
		return kerr.InvalidRequest.Code
	}
	if version >= 1 && rp.LeaderRecoveryState != leaderRecovered {
		// Samsa never marks a leader RECOVERING (no KIP-704 state), and
		// Kafka refuses a RECOVERED partition going back to it.
		return kerr.InvalidRequest.Code
	}
	for _, m := range isr {
		b, ok := im.Brokers[m.BrokerID]
		if !ok || b.Fenced || b.InControlledShutdown || (m.BrokerEpoch != -1 && m.BrokerEpoch != b.Epoch) {
			if version > 1 {
				return kerr.IneligibleReplica.Code
			}
			return kerr.OperationNotAttempted.Code
		}
	}
	return 0
}

// fillAlterPartition sets a successful answer from partition p.
func fillAlterPartition(op *kmsg.AlterPartitionResponseTopicPartition, p *metadata.Partition) {
	op.ErrorCode = 0
	op.LeaderID = p.Leader
	op.LeaderEpoch = p.LeaderEpoch
	op.ISR = slices.Clone(p.ISR)
	op.LeaderRecoveryState = leaderRecovered
	op.PartitionEpoch = p.PartitionEpoch
}
