package controller

// Replica placement and leader election: how the controller picks a new
// partition's replicas (Kafka's StripedReplicaPlacer) and how it changes
// a partition's leader and ISR when brokers come and go (Kafka's
// PartitionChangeBuilder, ReplicationControlManager.
// generateLeaderAndIsrUpdates).
//
// Invariants the changes keep, for every partition of the image:
//   - ISR is a non-empty subset of Replicas: removing the last ISR member
//     leaves it in (Kafka does the same without ELR), so a returning
//     broker that was the last in sync can lead again without loss.
//   - Leader is -1 or an ISR member that is active (registered,
//     unfenced, not in controlled shutdown) when the change is made.
//   - A leader change bumps the leader epoch, every change the partition
//     epoch (metadata.PartitionChangeRecord, applied by the image).

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/internal/metadata"
)

// noLeader is a partition's leader when none is elected.
const noLeader = -1

// activeBrokers returns the ids of the brokers that may hold new
// replicas and lead: unfenced and not in controlled shutdown (Kafka's
// usable brokers), sorted.
func activeBrokers(im *metadata.Image) []int32 {
	var ids []int32
	for id, b := range im.Brokers {
		if b.Active() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// isActive reports whether broker id may lead or join an ISR.
func isActive(im *metadata.Image, id int32) bool {
	b, ok := im.Brokers[id]
	return ok && b.Active()
}

// stripedBrokers orders the active brokers for placement as Kafka's
// StripedReplicaPlacer does: racks interleaved (the first broker of every
// rack, then the second of every rack, ...; racks and brokers in id
// order), so consecutive brokers sit on different racks when there are
// several. Brokers without broker.rack form one rack.
func stripedBrokers(im *metadata.Image) []int32 {
	live := activeBrokers(im)
	byRack := map[string][]int32{}
	for _, id := range live {
		r := im.Brokers[id].Rack
		byRack[r] = append(byRack[r], id)
	}
	racks := make([]string, 0, len(byRack))
	for r := range byRack {
		racks = append(racks, r)
	}
	slices.Sort(racks)
	var out []int32
	for i := 0; len(out) < len(live); i++ {
		for _, r := range racks {
			if i < len(byRack[r]) {
				out = append(out, byRack[r][i])
			}
		}
	}
	return out
}

// errReplication is Kafka's INVALID_REPLICATION_FACTOR message for a
// placement that cannot be made (ReplicationControlManager wraps the
// StripedReplicaPlacer's reason this way).
func errReplication(rf int16, format string, args ...any) *codeErr {
	e := fail(kerr.InvalidReplicationFactor, format, args...)
	e.msg = "Unable to replicate the partition " + strconv.Itoa(int(rf)) + " time(s): " + e.msg
	return e
}

// placeLocked assigns rf replicas to each of partitions new partitions
// over the active brokers (Kafka's StripedReplicaPlacer, without its
// random start: Samsa's rr makes placement deterministic for tests).
// Partition p's leader is the next broker of the rack-striped order (rr
// continues across requests), so leaders spread evenly (8 partitions on
// 4 brokers: 2 each) and consecutive partitions alternate racks. Its
// other replicas are distinct brokers chosen in striped order after the
// leader, each time from a rack the partition uses least: every replica
// on a different rack while there are racks left, then racks evenly.
func (c *Controller) placeLocked(im *metadata.Image, partitions int32, rf int16) ([][]int32, *codeErr) {
	if rf <= 0 {
		return nil, errReplication(rf, "Invalid replication factor %d: the replication factor must be positive.", rf)
	}
	ids := stripedBrokers(im)
	if len(ids) == 0 {
		return nil, errReplication(rf, "All brokers are currently fenced.")
	}
	if int(rf) > len(ids) {
		return nil, errReplication(rf, "The target replication factor of %d cannot be reached because only %d broker(s) are registered.", rf, len(ids))
	}
	out := make([][]int32, partitions)
	load := map[int32]int{}
	for p := range out {
		start := c.rr % len(ids)
		c.rr++
		out[p] = stripe(im, ids, start, int(rf), load)
	}
	return out, nil
}

// stripe picks rf distinct brokers of ids (striped order) for one
// partition: ids[start] leads; each next replica is, among the brokers
// not picked yet, one on the rack the partition uses least, then the one
// holding the fewest replicas of this placement (load, updated), then
// the first in ring order after the previous pick.
func stripe(im *metadata.Image, ids []int32, start, rf int, load map[int32]int) []int32 {
	reps := make([]int32, 0, rf)
	used := map[int32]bool{}
	rackUse := map[string]int{}
	pick := func(i int) {
		id := ids[i]
		reps = append(reps, id)
		used[id] = true
		rackUse[im.Brokers[id].Rack]++
		load[id]++
	}
	pick(start)
	last := start
	for len(reps) < rf {
		best := -1
		for k := 1; k <= len(ids); k++ {
			i := (last + k) % len(ids)
			if used[ids[i]] {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			ru, bu := rackUse[im.Brokers[ids[i]].Rack], rackUse[im.Brokers[ids[best]].Rack]
			if ru < bu || ru == bu && load[ids[i]] < load[ids[best]] {
				best = i
			}
		}
		pick(best)
		last = best
	}
	return reps
}

// checkAssignment validates a manual replica assignment as Kafka's
// ReplicationControlManager.validateManualPartitionAssignment does: no
// empty list, no broker twice, every broker registered (fenced ones are
// allowed: they start out of the ISR), the same replica count in every
// partition, and at least one active broker per partition.
func checkAssignment(im *metadata.Image, first int32, parts [][]int32) *codeErr {
	if len(parts) == 0 {
		return fail(kerr.InvalidReplicaAssignment, "empty replica assignment")
	}
	for i, reps := range parts {
		if len(reps) == 0 {
			return fail(kerr.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list.")
		}
		seen := map[int32]bool{}
		for _, b := range slices.Sorted(slices.Values(reps)) {
			if _, ok := im.Brokers[b]; !ok {
				return fail(kerr.InvalidReplicaAssignment, "The manual partition assignment includes broker %d, but no such broker is registered.", b)
			}
			if seen[b] {
				return fail(kerr.InvalidReplicaAssignment, "The manual partition assignment includes the broker %d more than once.", b)
			}
			seen[b] = true
		}
		if len(reps) != len(parts[0]) {
			return fail(kerr.InvalidReplicaAssignment, "The manual partition assignment includes a partition with %d replica(s), but this is not consistent with previous partitions, which have %d replica(s).", len(reps), len(parts[0]))
		}
		if len(activeOf(im, reps)) == 0 {
			return fail(kerr.InvalidReplicaAssignment, "All brokers specified in the manual partition assignment for partition %d are fenced or in controlled shutdown.", first+int32(i))
		}
	}
	return nil
}

// activeOf returns the active brokers of reps, in reps' order: the ISR
// of a new partition (Kafka: replicas filtered by isActive).
func activeOf(im *metadata.Image, reps []int32) []int32 {
	var out []int32
	for _, r := range reps {
		if isActive(im, r) {
			out = append(out, r)
		}
	}
	return out
}

// uncleanEnabled reports whether topic t allows unclean leader election
// (unclean.leader.election.enable: the topic's override, else the
// broker's setting, false by default).
func (c *Controller) uncleanEnabled(t *metadata.Topic) bool {
	return strings.EqualFold(c.controllerConfig(c.image()).TopicValue(t.Configs, "unclean.leader.election.enable"), "true")
}

// partitionChange computes the change of one partition toward targetISR
// (nil: the current ISR) with leaders acceptable by acceptable, as
// Kafka's PartitionChangeBuilder.build does for an ONLINE election (or
// UNCLEAN when unclean):
//
//   - the current leader stays if it is in the target ISR and acceptable;
//   - else the first replica (in replica order: the preferred first) in
//     the target ISR that is acceptable leads;
//   - else, unclean, the first acceptable replica leads with the ISR
//     [it] (possible data loss: uncleanElected is set);
//   - else no leader (-1).
//
// An empty target ISR keeps the current ISR (the last member stays).
// It returns nil when nothing changes.
func partitionChange(topicID metadata.UUID, p *metadata.Partition, targetISR []int32, acceptable func(int32) bool, unclean bool) (rec *metadata.PartitionChangeRecord, uncleanElected bool) {
	if targetISR == nil {
		targetISR = p.ISR
	}
	leader, uncleanElected := electLeader(p.Leader, p.Replicas, targetISR, acceptable, unclean)
	rec = &metadata.PartitionChangeRecord{TopicID: topicID, PartitionID: p.ID}
	changed := false
	if leader != p.Leader {
		l := leader
		rec.Leader = &l
		changed = true
	}
	switch {
	case uncleanElected:
		rec.ISR = []int32{leader}
		changed = true
	case len(targetISR) > 0 && !slices.Equal(targetISR, p.ISR):
		rec.ISR = slices.Clone(targetISR)
		changed = true
	}
	if !changed {
		return nil, false
	}
	return rec, uncleanElected
}

// electLeader is the election of Kafka's PartitionChangeBuilder: the
// current leader stays if it is in isr and acceptable; else the first of
// replicas (in order: the preferred first) in isr that is acceptable;
// else, when unclean, the first acceptable replica (uncleanElected: its
// ISR becomes [it]); else noLeader.
func electLeader(current int32, replicas, isr []int32, acceptable func(int32) bool, unclean bool) (leader int32, uncleanElected bool) {
	valid := func(r int32) bool { return slices.Contains(isr, r) && acceptable(r) }
	if current >= 0 && valid(current) {
		return current, false
	}
	for _, r := range replicas {
		if valid(r) {
			return r, false
		}
	}
	if unclean {
		for _, r := range replicas {
			if acceptable(r) {
				return r, true
			}
		}
	}
	return noLeader, false
}

// leaderAndISRUpdatesLocked returns the partition changes that follow a
// broker state change (Kafka's generateLeaderAndIsrUpdates): remove (-1
// none) leaves every ISR it is in and can lead nothing; add (-1 none) is
// acceptable as leader although the image still shows it fenced (it is
// being unfenced in the same commit). With remove set, the partitions
// whose ISR holds it change; with only add set, the leaderless ones.
// Unclean elections (topics with unclean.leader.election.enable) are
// logged as possible data loss and counted.
func (c *Controller) leaderAndISRUpdatesLocked(im *metadata.Image, remove, add int32, why string) []metadata.Record {
	acceptable := func(r int32) bool { return r != remove && (r == add || isActive(im, r)) }
	var recs []metadata.Record
	for _, name := range slices.Sorted(maps.Keys(im.Topics)) {
		t := im.Topics[name]
		unclean := c.uncleanEnabled(t)
		for i := range t.Partitions {
			p := &t.Partitions[i]
			var target []int32
			switch {
			case remove >= 0 && slices.Contains(p.ISR, remove):
				target = slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return r == remove })
			case remove < 0 && p.Leader < 0:
				target = p.ISR
			default:
				continue
			}
			rec, wasUnclean := partitionChange(t.ID, p, target, acceptable, unclean)
			if rec == nil {
				continue
			}
			if wasUnclean {
				c.uncleanElections.Add(1)
				c.logger.Warn("unclean leader election: possible data loss", "topic", t.Name, "partition", p.ID,
					"leader", *rec.Leader, "previous_isr", p.ISR, "reason", why)
			}
			recs = append(recs, metadata.Record{Type: metadata.TypePartitionChange, PartitionChange: rec})
		}
	}
	return recs
}

// electLeaderlessLocked returns the changes that elect a leader for the
// leaderless partitions of topic t (after unclean.leader.election.enable
// was turned on for it: Kafka's controller elects such partitions then).
func (c *Controller) electLeaderlessLocked(im *metadata.Image, t *metadata.Topic) []metadata.Record {
	unclean := c.uncleanEnabled(t)
	var recs []metadata.Record
	for i := range t.Partitions {
		p := &t.Partitions[i]
		if p.Leader >= 0 {
			continue
		}
		rec, wasUnclean := partitionChange(t.ID, p, nil, func(r int32) bool { return isActive(im, r) }, unclean)
		if rec == nil {
			continue
		}
		if wasUnclean {
			c.uncleanElections.Add(1)
			c.logger.Warn("unclean leader election: possible data loss", "topic", t.Name, "partition", p.ID,
				"leader", *rec.Leader, "previous_isr", p.ISR, "reason", "unclean.leader.election.enable set")
		}
		recs = append(recs, metadata.Record{Type: metadata.TypePartitionChange, PartitionChange: rec})
	}
	return recs
}

// leadsAny reports whether broker id leads a partition.
func leadsAny(im *metadata.Image, id int32) bool {
	for _, t := range im.Topics {
		for i := range t.Partitions {
			if t.Partitions[i].Leader == id {
				return true
			}
		}
	}
	return false
}
