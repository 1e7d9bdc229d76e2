package controller

import (
	"context"
	"slices"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
)

// Failed log dirs (KIP-858's shape, kept in the active controller's
// memory rather than in the metadata log). A broker whose log dir failed
// tells the controller which of its replicas were in that dir with
// AssignReplicasToDirs (key 73) and lists the dir in every heartbeat's
// OfflineLogDirs. For each such replica the controller removes the broker
// from the partition's ISR and, where it led, elects a new leader from
// the rest of the ISR (unclean only if the topic allows it), as it does
// for a fenced broker but only for those partitions: the broker keeps
// leading and following the partitions of its other dirs.
//
// Differences from Kafka: Kafka records each replica's directory in the
// partition records (PartitionRecord.Directories) for every replica, at
// creation and on every move; here only the replicas of failed dirs are
// reported, and only to the active controller's memory. A new active
// controller learns them again: the broker resends its assignment with
// every heartbeat while a replica of a failed dir still leads or is in an
// ISR. The state of a broker is dropped when it registers again (a
// restart: its dirs are whatever they are now).

// brokerDirs is what one broker reported about its failed dirs.
type brokerDirs struct {
	epoch   int64                        // broker epoch of the reports
	offline map[metadata.UUID]bool       // dirs in OfflineLogDirs
	dirOf   map[dirReplica]metadata.UUID // replica -> its dir (AssignReplicasToDirs)
}

type dirReplica struct {
	topicID   metadata.UUID
	partition int32
}

// failedDirs is the controller's memory of failed log dirs, by broker.
type failedDirs struct {
	mu sync.Mutex
	m  map[int32]*brokerDirs
}

// forBrokerLocked returns broker id's state for epoch, a fresh one if the
// epoch changed. Caller holds mu.
func (f *failedDirs) forBrokerLocked(id int32, epoch int64) *brokerDirs {
	if f.m == nil {
		f.m = map[int32]*brokerDirs{}
	}
	b := f.m[id]
	if b == nil || b.epoch != epoch {
		b = &brokerDirs{epoch: epoch, offline: map[metadata.UUID]bool{}, dirOf: map[dirReplica]metadata.UUID{}}
		f.m[id] = b
	}
	return b
}

// noteOfflineDirs records the OfflineLogDirs of a heartbeat and reports
// whether replicas of broker id are known to be in one of them.
func (c *Controller) noteOfflineDirs(id int32, epoch int64, dirs [][16]byte) bool {
	if len(dirs) == 0 {
		return false
	}
	c.dirs.mu.Lock()
	defer c.dirs.mu.Unlock()
	b := c.dirs.forBrokerLocked(id, epoch)
	for _, d := range dirs {
		b.offline[metadata.UUID(d)] = true
	}
	for _, d := range b.dirOf {
		if b.offline[d] {
			return true
		}
	}
	return false
}

// replicasInOfflineDirs lists broker id's replicas known to be in a
// failed dir.
func (c *Controller) replicasInOfflineDirs(id int32, epoch int64) []dirReplica {
	c.dirs.mu.Lock()
	defer c.dirs.mu.Unlock()
	b := c.dirs.m[id]
	if b == nil || b.epoch != epoch {
		return nil
	}
	var out []dirReplica
	for r, d := range b.dirOf {
		if b.offline[d] {
			out = append(out, r)
		}
	}
	return out
}

// AssignReplicasToDirs records which dir each listed replica of the
// broker is in (key 73); replicas of a dir the broker reported offline
// leave their ISRs and leaderships.
func (c *Controller) AssignReplicasToDirs(ctx context.Context, req *kmsg.AssignReplicasToDirsRequest) *kmsg.AssignReplicasToDirsResponse {
	resp := req.ResponseKind().(*kmsg.AssignReplicasToDirsResponse)
	fail := func(code int16) *kmsg.AssignReplicasToDirsResponse {
		resp.ErrorCode = code
		return resp
	}
	if active, _ := c.q.Active(); !active {
		return fail(notController(c.image().ControllerID).code)
	}
	b, ok := c.image().Brokers[req.BrokerID]
	if !ok {
		return fail(kerr.BrokerIDNotRegistered.Code)
	}
	if b.Epoch != req.BrokerEpoch {
		return fail(kerr.StaleBrokerEpoch.Code)
	}
	c.dirs.mu.Lock()
	st := c.dirs.forBrokerLocked(req.BrokerID, req.BrokerEpoch)
	for _, d := range req.Directories {
		rd := kmsg.NewAssignReplicasToDirsResponseDirectory()
		rd.ID = d.ID
		for _, t := range d.Topics {
			rt := kmsg.NewAssignReplicasToDirsResponseDirectoryTopic()
			rt.TopicID = t.TopicID
			for _, p := range t.Partitions {
				st.dirOf[dirReplica{metadata.UUID(t.TopicID), p.Partition}] = metadata.UUID(d.ID)
				rp := kmsg.NewAssignReplicasToDirsResponseDirectoryTopicPartition()
				rp.Partition = p.Partition
				rt.Partitions = append(rt.Partitions, rp)
			}
			rd.Topics = append(rd.Topics, rt)
		}
		resp.Directories = append(resp.Directories, rd)
	}
	c.dirs.mu.Unlock()
	if e := c.moveOffOfflineDirs(ctx, req.BrokerID, req.BrokerEpoch); e != nil {
		return fail(e.code)
	}
	return resp
}

// moveOffOfflineDirs removes broker id from the ISR of every partition
// whose replica on it is in a failed dir, electing a new leader where it
// led, in one commit.
func (c *Controller) moveOffOfflineDirs(ctx context.Context, id int32, epoch int64) *codeErr {
	rs := c.replicasInOfflineDirs(id, epoch)
	// Most heartbeats of a broker with a failed dir find nothing left to
	// change: check the applied image before taking mu.
	if !slices.ContainsFunc(rs, func(r dirReplica) bool { return inISROrLeads(c.image(), r, id) }) {
		return nil
	}
	c.mu.Lock()
	defer c.unlockNoWait()
	if e := c.activeLocked(); e != nil {
		return e
	}
	im := c.image()
	if b, ok := im.Brokers[id]; !ok || b.Epoch != epoch {
		return nil
	}
	acceptable := func(r int32) bool { return r != id && isActive(im, r) }
	var recs []metadata.Record
	slices.SortFunc(rs, func(a, b dirReplica) int {
		if a.topicID != b.topicID {
			return slices.Compare(a.topicID[:], b.topicID[:])
		}
		return int(a.partition - b.partition)
	})
	for _, r := range rs {
		t, ok := im.TopicsByID[r.topicID]
		if !ok || r.partition < 0 || int(r.partition) >= len(t.Partitions) {
			continue
		}
		if !inISROrLeads(im, r, id) {
			continue
		}
		p := &t.Partitions[r.partition]
		target := slices.DeleteFunc(slices.Clone(p.ISR), func(x int32) bool { return x == id })
		if len(target) == 0 {
			// The failed replica was the whole ISR: the partition has
			// no leader until it comes back (or an unclean election).
			target = []int32{}
		}
		rec, wasUnclean := partitionChange(t.ID, p, target, acceptable, c.uncleanEnabled(t))
		if rec == nil {
			continue
		}
		if wasUnclean {
			c.uncleanElections.Add(1)
		}
		recs = append(recs, metadata.Record{Type: metadata.TypePartitionChange, PartitionChange: rec})
	}
	if len(recs) == 0 {
		return nil
	}
	if _, err := c.commitChangesLocked(ctx, recs); err != nil {
		return c.commitErr("log dir failure", err)
	}
	c.logger.Warn("replicas in a failed log dir left their ISRs and leaderships", "node", id, "partition_changes", len(recs),
		"reason", "broker "+strconv.Itoa(int(id))+" log dir failed")
	return nil
}

// inISROrLeads reports whether broker id leads replica r's partition or
// is in its ISR.
func inISROrLeads(im *metadata.Image, r dirReplica, id int32) bool {
	t, ok := im.TopicsByID[r.topicID]
	if !ok || r.partition < 0 || int(r.partition) >= len(t.Partitions) {
		return false
	}
	p := &t.Partitions[r.partition]
	return p.Leader == id || slices.Contains(p.ISR, id)
}

// offlineDirIneligible refuses an ISR expansion that adds a replica known
// to be in a failed log dir (KIP-858: such a replica is ineligible, as a
// fenced broker is). Called after validateAlterPartition passed.
func (c *Controller) offlineDirIneligible(t *metadata.Topic, partition int32, version int16, isr []isrMember) int16 {
	p := &t.Partitions[partition]
	im := c.image()
	c.dirs.mu.Lock()
	defer c.dirs.mu.Unlock()
	for _, m := range isr {
		if slices.Contains(p.ISR, m.BrokerID) {
			continue
		}
		b := c.dirs.m[m.BrokerID]
		if reg, ok := im.Brokers[m.BrokerID]; b == nil || !ok || reg.Epoch != b.epoch {
			continue // a registration since: the reports are stale
		}
		if d, ok := b.dirOf[dirReplica{t.ID, partition}]; ok && b.offline[d] {
			if version > 1 {
				return kerr.IneligibleReplica.Code
			}
			return kerr.OperationNotAttempted.Code
		}
	}
	return 0
}
