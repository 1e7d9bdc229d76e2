package controller

// Partition reassignment (KIP-455): AlterPartitionReassignments (45) and
// ListPartitionReassignments (46), as Kafka's KRaft controller does them
// (ReplicationControlManager.alterPartitionReassignments,
// PartitionReassignmentReplicas, PartitionReassignmentRevert and the
// reassignment steps of PartitionChangeBuilder.build).
//
// A move goes through three states, all in the metadata log (so a new
// controller after a failover carries on where the old one stopped):
//
//  1. The request commits one PartitionChangeRecord: Replicas becomes
//     the target replicas followed by the removing ones (target ∪
//     original), AddingReplicas = target − original, RemovingReplicas =
//     original − target. The brokers of the adding replicas create the
//     log and follow the leader; the leader counts them as followers
//     and proposes them for the ISR once they have caught up
//     (AlterPartition), as for any replica.
//  2. When the ISR holds every target replica (checked at the request
//     and at every ISR change a leader asks for), the same record that
//     changes the ISR completes the move: Replicas := target, the
//     removing replicas leave the ISR, the reassignment fields are
//     cleared, and, when the leader was a removing replica, the first
//     target replica of the ISR that is active leads. The removed
//     brokers stop fetching and delete their logs when they apply it.
//  3. Cancelling (Replicas null in the request) reverts to the original
//     replicas: the adding replicas leave Replicas and the ISR. An ISR of
//     adding replicas only cannot be reverted without an unclean
//     election: INVALID_REPLICA_ASSIGNMENT unless the topic enables
//     unclean.leader.election.enable.
//
// Throttling a move (leader/follower.replication.throttled.*) is not
// done here: it belongs to the brokers' fetch paths, which see a move as
// the partition's AddingReplicas and RemovingReplicas in the image.

import (
	"context"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
)

// changeTarget is the state one partition change moves a partition to
// (the targets of Kafka's PartitionChangeBuilder). Lists are owned.
type changeTarget struct {
	isr, replicas, adding, removing []int32
}

// targetOf is p's current state as a target (no change yet).
func targetOf(p *metadata.Partition) changeTarget {
	return changeTarget{
		isr: slices.Clone(p.ISR), replicas: slices.Clone(p.Replicas),
		adding: slices.Clone(p.AddingReplicas), removing: slices.Clone(p.RemovingReplicas),
	}
}

// without returns s without the members of drop, in s's order.
func without(s, drop []int32) []int32 {
	out := make([]int32, 0, len(s))
	for _, r := range s {
		if !slices.Contains(drop, r) {
			out = append(out, r)
		}
	}
	return out
}

// maybeComplete completes an ongoing reassignment of the target when its
// ISR allows (Kafka's PartitionReassignmentReplicas.maybeCompleteReassignment):
// once the removing replicas are taken out, the ISR must be non-empty
// and hold every remaining replica. It reports whether it completed.
func (t *changeTarget) maybeComplete() bool {
	if len(t.adding) == 0 && len(t.removing) == 0 {
		return false
	}
	isr, reps := t.isr, t.replicas
	if len(t.removing) > 0 {
		isr, reps = without(t.isr, t.removing), without(t.replicas, t.removing)
		if len(isr) == 0 || len(reps) == 0 {
			return false
		}
	}
	for _, r := range reps {
		if !slices.Contains(isr, r) {
			return false
		}
	}
	t.isr, t.replicas, t.adding, t.removing = isr, reps, nil, nil
	return true
}

// buildChange is Kafka's PartitionChangeBuilder.build for a partition
// with reassignment state (ONLINE election, or UNCLEAN when unclean; no
// ELR): complete the reassignment if the target ISR allows, elect (the
// current leader stays if it is in the target ISR and acceptable, else
// the first acceptable target replica of the target ISR, else, unclean,
// the first acceptable replica with the ISR [it]), and write the fields
// that differ from p. It returns nil when nothing changes, and whether
// the change completes a reassignment or elects uncleanly.
func buildChange(topicID metadata.UUID, p *metadata.Partition, tgt changeTarget, acceptable func(int32) bool, unclean bool) (rec *metadata.PartitionChangeRecord, completed, uncleanElected bool) {
	completed = tgt.maybeComplete()
	leader, uncleanElected := electLeader(p.Leader, tgt.replicas, tgt.isr, acceptable, unclean)
	rec = &metadata.PartitionChangeRecord{TopicID: topicID, PartitionID: p.ID}
	changed := false
	if leader != p.Leader {
		rec.Leader = &leader
		changed = true
	}
	isr := tgt.isr
	if uncleanElected {
		isr = []int32{leader}
	}
	if len(isr) > 0 && !slices.Equal(isr, p.ISR) {
		rec.ISR = slices.Clone(isr)
		changed = true
	}
	if len(tgt.replicas) > 0 && !slices.Equal(tgt.replicas, p.Replicas) {
		rec.Replicas = slices.Clone(tgt.replicas)
		changed = true
	}
	if !slices.Equal(tgt.adding, p.AddingReplicas) {
		a := slices.Clone(tgt.adding)
		if a == nil {
			a = []int32{}
		}
		rec.AddingReplicas = &a
		changed = true
	}
	if !slices.Equal(tgt.removing, p.RemovingReplicas) {
		r := slices.Clone(tgt.removing)
		if r == nil {
			r = []int32{}
		}
		rec.RemovingReplicas = &r
		changed = true
	}
	if !changed {
		return nil, false, false
	}
	return rec, completed, uncleanElected
}

// alterISRChange is the change an AlterPartition asking for ISR isr makes
// to p: the ISR alone (partitionChange) when no reassignment is in
// progress, else the ISR with the reassignment completed if the new ISR
// allows it (which may move the leadership off the sender).
func alterISRChange(topicID metadata.UUID, p *metadata.Partition, isr []int32, acceptable func(int32) bool) (*metadata.PartitionChangeRecord, bool) {
	if !p.Reassigning() {
		rec, _ := partitionChange(topicID, p, isr, acceptable, false)
		return rec, false
	}
	tgt := targetOf(p)
	tgt.isr = slices.Clone(isr)
	rec, completed, _ := buildChange(topicID, p, tgt, acceptable, false)
	return rec, completed
}

// AlterPartitionReassignments serves AlterPartitionReassignments (45),
// versions 0-1 (v1: AllowReplicationFactorChange, KIP-860):
//
//   - NOT_CONTROLLER (top level) off the active controller.
//   - per partition, in Kafka's order: UNKNOWN_TOPIC_OR_PARTITION (no
//     such topic or partition); for a cancel (Replicas null)
//     NO_REASSIGNMENT_IN_PROGRESS when none is, INVALID_REPLICA_ASSIGNMENT
//     when reverting needs an unclean election the topic does not allow;
//     for a move INVALID_REPLICA_ASSIGNMENT for an empty list, a broker
//     listed twice or not registered (fenced brokers may be named: they
//     join when they return), INVALID_REPLICATION_FACTOR (v1) when the
//     replica count changes and the request does not allow it.
//   - a partition listed twice in one request: INVALID_REQUEST for the
//     second (Kafka's controller would apply both, the last one winning;
//     its admin tools never send it).
//
// Every accepted change is committed in one entry (atomic, as Kafka's
// ControllerResult.atomicOf); more than MaxRecordsPerUserOp changes
// answer POLICY_VIOLATION for all. A move already satisfied by the ISR
// (a reorder, a removal of replicas) completes in the same record.
func (c *Controller) AlterPartitionReassignments(ctx context.Context, req *kmsg.AlterPartitionAssignmentsRequest) *kmsg.AlterPartitionAssignmentsResponse {
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.Version = req.Version
	resp.AllowReplicationFactorChange = req.AllowReplicationFactorChange
	c.lock()
	defer c.unlock(ctx)
	if e := c.activeLocked(); e != nil {
		resp.ErrorCode, resp.ErrorMessage = e.code, &e.msg
		return resp
	}
	im := c.image()
	allowRF := req.Version < 1 || req.AllowReplicationFactorChange
	var recs []metadata.Record
	type done struct{ topic, part int }
	var accepted []done
	seen := map[string]map[int32]bool{}
	for _, rt := range req.Topics {
		out := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		out.Topic = rt.Topic
		if seen[rt.Topic] == nil {
			seen[rt.Topic] = map[int32]bool{}
		}
		for _, rp := range rt.Partitions {
			op := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			op.Partition = rp.Partition
			var e *codeErr
			var rec *metadata.PartitionChangeRecord
			if seen[rt.Topic][rp.Partition] {
				e = fail(kerr.InvalidRequest, "Partition %s:%d is listed more than once.", rt.Topic, rp.Partition)
			} else {
				seen[rt.Topic][rp.Partition] = true
				rec, e = c.reassignLocked(im, rt.Topic, rp.Partition, rp.Replicas, allowRF)
			}
			if e != nil {
				op.ErrorCode, op.ErrorMessage = e.code, &e.msg
			} else if rec != nil {
				recs = append(recs, metadata.Record{Type: metadata.TypePartitionChange, PartitionChange: rec})
				accepted = append(accepted, done{len(resp.Topics), len(out.Partitions)})
			}
			out.Partitions = append(out.Partitions, op)
		}
		resp.Topics = append(resp.Topics, out)
	}
	var e *codeErr
	switch {
	case len(recs) > MaxRecordsPerUserOp:
		e = fail(kerr.PolicyViolation, "%s", errTooLargeMessage)
		resp.ErrorCode, resp.ErrorMessage = e.code, &e.msg
		for ti := range resp.Topics {
			for pi := range resp.Topics[ti].Partitions {
				op := &resp.Topics[ti].Partitions[pi]
				op.ErrorCode, op.ErrorMessage = e.code, &e.msg
			}
		}
		return resp
	case len(recs) > 0:
		if err := c.commitLocked(ctx, recs); err != nil {
			e = c.commitErr("alter partition reassignments", err)
		}
	}
	for i, d := range accepted {
		op := &resp.Topics[d.topic].Partitions[d.part]
		if e != nil {
			op.ErrorCode, op.ErrorMessage = e.code, &e.msg
			continue
		}
		r := recs[i].PartitionChange
		c.logger.Info("partition reassignment changed", "topic", resp.Topics[d.topic].Topic, "partition", r.PartitionID,
			"replicas", r.Replicas, "adding", r.AddingReplicas, "removing", r.RemovingReplicas, "leader", r.Leader)
	}
	return resp
}

// reassignLocked validates one partition of an AlterPartitionReassignments
// request against im and returns its change (nil: nothing to change), as
// Kafka's alterPartitionReassignment: a cancel when replicas is nil, a
// new target otherwise.
func (c *Controller) reassignLocked(im *metadata.Image, topic string, partition int32, replicas []int32, allowRF bool) (*metadata.PartitionChangeRecord, *codeErr) {
	t := im.Topics[topic]
	if t == nil {
		return nil, fail(kerr.UnknownTopicOrPartition, "Unable to find a topic named %s.", topic)
	}
	if partition < 0 || int(partition) >= len(t.Partitions) {
		return nil, fail(kerr.UnknownTopicOrPartition, "Unable to find partition %s:%d.", topic, partition)
	}
	p := &t.Partitions[partition]
	acceptable := func(r int32) bool { return isActive(im, r) }
	if replicas == nil {
		return c.cancelReassignment(t, p, acceptable)
	}
	if e := checkReassignment(im, replicas); e != nil {
		return nil, e
	}
	if orig := p.OriginalReplicas(); !allowRF && len(replicas) != len(orig) {
		return nil, fail(kerr.InvalidReplicationFactor, "The replication factor is changed from %d to %d but allowReplicationFactorChange is false.", len(orig), len(replicas))
	}
	// Kafka's PartitionReassignmentReplicas(current, target): removing
	// and adding are sorted (TreeSet); the replicas are the target
	// followed by the removing ones. The current replicas include the
	// adding ones of a move in progress, which a new target not naming
	// them removes again.
	removing := slices.Sorted(slices.Values(without(p.Replicas, replicas)))
	adding := slices.Sorted(slices.Values(without(replicas, p.Replicas)))
	tgt := targetOf(p)
	tgt.replicas = append(slices.Clone(replicas), removing...)
	tgt.adding, tgt.removing = adding, removing
	rec, _, _ := buildChange(t.ID, p, tgt, acceptable, false)
	return rec, nil
}

// cancelReassignment reverts p's ongoing reassignment (Kafka's
// cancelPartitionReassignment and PartitionReassignmentRevert): back to
// the original replicas, the adding replicas out of the ISR; when only
// adding replicas are in the ISR, the first original replica becomes
// the ISR, an unclean election the topic must allow.
func (c *Controller) cancelReassignment(t *metadata.Topic, p *metadata.Partition, acceptable func(int32) bool) (*metadata.PartitionChangeRecord, *codeErr) {
	if !p.Reassigning() {
		return nil, fail(kerr.NoReassignmentInProgress, "No partition reassignment is in progress for %s:%d.", t.Name, p.ID)
	}
	unclean := c.uncleanEnabled(t)
	reps := p.OriginalReplicas()
	isr := without(p.ISR, p.AddingReplicas)
	if len(isr) == 0 {
		if !unclean {
			return nil, fail(kerr.InvalidReplicaAssignment, "Unable to revert partition assignment for %s:%d because it would require an unclean leader election.", t.Name, p.ID)
		}
		isr = []int32{reps[0]}
	}
	rec, _, wasUnclean := buildChange(t.ID, p, changeTarget{isr: isr, replicas: reps}, acceptable, unclean)
	if wasUnclean {
		c.uncleanElections.Add(1)
		c.logger.Warn("unclean leader election: possible data loss", "topic", t.Name, "partition", p.ID,
			"leader", *rec.Leader, "previous_isr", p.ISR, "reason", "reassignment cancelled")
	}
	return rec, nil
}

// checkReassignment validates a target replica list as Kafka's
// validateManualPartitionAssignment does without a replication factor:
// not empty, every broker registered (fenced ones too), none twice.
func checkReassignment(im *metadata.Image, replicas []int32) *codeErr {
	if len(replicas) == 0 {
		return fail(kerr.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list.")
	}
	sorted := slices.Sorted(slices.Values(replicas))
	for i, b := range sorted {
		if _, ok := im.Brokers[b]; !ok {
			return fail(kerr.InvalidReplicaAssignment, "The manual partition assignment includes broker %d, but no such broker is registered.", b)
		}
		if i > 0 && sorted[i-1] == b {
			return fail(kerr.InvalidReplicaAssignment, "The manual partition assignment includes the broker %d more than once.", b)
		}
	}
	return nil
}

// ListPartitionReassignments answers ListPartitionReassignments (46),
// version 0, from image im (every node's image holds the reassignment
// state): Topics null lists every partition being reassigned, else the
// named partitions that are (unknown topics and partitions, and
// partitions not being reassigned, are left out, as Kafka does). Each
// carries its replicas (target ∪ original), adding and removing replicas.
func ListPartitionReassignments(im *metadata.Image, req *kmsg.ListPartitionReassignmentsRequest) *kmsg.ListPartitionReassignmentsResponse {
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	resp.Version = req.Version
	list := func(t *metadata.Topic, parts []int32) {
		out := kmsg.NewListPartitionReassignmentsResponseTopic()
		out.Topic = t.Name
		for _, id := range parts {
			if id < 0 || int(id) >= len(t.Partitions) || !t.Partitions[id].Reassigning() {
				continue
			}
			p := &t.Partitions[id]
			op := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			op.Partition = id
			op.Replicas = slices.Clone(p.Replicas)
			op.AddingReplicas = append([]int32{}, p.AddingReplicas...)
			op.RemovingReplicas = append([]int32{}, p.RemovingReplicas...)
			out.Partitions = append(out.Partitions, op)
		}
		if len(out.Partitions) > 0 {
			resp.Topics = append(resp.Topics, out)
		}
	}
	if req.Topics == nil {
		for _, name := range slices.Sorted(maps.Keys(im.Topics)) {
			t := im.Topics[name]
			all := make([]int32, len(t.Partitions))
			for i := range all {
				all[i] = int32(i)
			}
			list(t, all)
		}
		return resp
	}
	for _, rt := range req.Topics {
		if t := im.Topics[rt.Topic]; t != nil {
			list(t, rt.Partitions)
		}
	}
	return resp
}
