package controller

// Quorum learners of unregistered brokers.
//
// A broker-only node becomes a raft learner of the metadata quorum when it
// registers (BrokerRegistration, SetAddLearner). In Kafka's KRaft an
// observer is not a configured member: once an unregistered broker stops
// fetching it simply drops out of DescribeQuorum's observers. Samsa's
// learners are explicit members (etcd raft pushes the log to them), so the
// controller removes them:
//
//   - UnregisterBroker removes the learner right after the
//     UnregisterBrokerRecord commits (the broker is stopped: it was refused
//     while active);
//   - if that fails (a leader change, a timeout), ReconcileLearners, run
//     on every session-expiry tick of the active controller, retries it at
//     the next tick; it also finds learners left behind by an earlier
//     controller (the controller that unregistered the broker died before
//     removing it, or a registration added the learner but its record
//     never committed).
//
// Which learners ReconcileLearners removes: those (not voters) that have
// no registration in the image and have had none, as this controller saw
// at its ticks, for broker.session.timeout.ms since it first noticed
// them in its current controller epoch (at once for the ids whose removal
// UnregisterBroker already tried). The removal runs under mu, which
// BrokerRegistration holds from AddLearner until its RegisterBroker
// record commits, and the image is checked again under it, so a
// registration in flight is never undone. A broker that starts up and
// registers later is simply added again (raft.Node.AddLearner works for a
// removed id). Dropped alternative: keeping the unregistered ids in the
// metadata image (a new record field, snapshot format change) for no
// gain in safety, since a learner is only ever added by a registration.

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// learnerChangeTimeout bounds one learner removal (a raft ConfChange
// committed and applied on this node: milliseconds when the quorum is
// healthy).
const learnerChangeTimeout = 5 * time.Second

// learnerSweep is the state of the learner removal. Lock order: mu
// before learnerSweep.mu.
type learnerSweep struct {
	mu sync.Mutex
	// remove drops learner id from the quorum (raft.Node.RemoveLearner);
	// learners lists the quorum's learners (raft.Node.Learners). nil:
	// learners are never removed. Guarded by mu.
	remove   func(ctx context.Context, id int32) error
	learners func() map[int32]string
	// epoch is the controller epoch absentSince belongs to; a new one
	// (a takeover) starts afresh. Guarded by mu.
	epoch int32
	// absentSince is, per learner without a registration, when a tick of
	// this controller first saw it so. Guarded by mu.
	absentSince map[int32]time.Time
	// retry holds the ids UnregisterBroker failed to remove: removed at
	// the next tick. Guarded by mu.
	retry map[int32]bool
}

// SetRemoveLearner installs the hooks that drop unregistered broker-only
// nodes from the quorum's learners: learners lists them
// (raft.Node.Learners), removeLearner removes one
// (raft.Node.RemoveLearner). Call before serving requests, after
// SetAddLearner (which gives the voters).
func (c *Controller) SetRemoveLearner(learners func() map[int32]string, removeLearner func(ctx context.Context, id int32) error) {
	c.sweep.mu.Lock()
	defer c.sweep.mu.Unlock()
	c.sweep.learners, c.sweep.remove = learners, removeLearner
}

// removeUnregisteredLocked removes the learner of broker id, just
// unregistered; a failure is logged and left to ReconcileLearners.
func (c *Controller) removeUnregisteredLocked(ctx context.Context, id int32) {
	if c.voters[id] {
		return
	}
	asked, err := c.removeLearner(ctx, id)
	if !asked {
		return
	}
	if err != nil {
		c.logger.Warn("unregistered broker not removed from the quorum's learners; retried at the next tick", "node", id, "err", err)
		c.sweep.mu.Lock()
		if c.sweep.retry == nil {
			c.sweep.retry = map[int32]bool{}
		}
		c.sweep.retry[id] = true
		c.sweep.mu.Unlock()
		return
	}
	c.logger.Info("unregistered broker removed from the quorum's learners", "node", id)
}

// ReconcileLearners removes, on the active controller, the quorum's
// learners that belong to no registered broker (see the file comment for
// which and when). The server calls it with every session-expiry tick.
// It never waits for mu: when a change holds it, the next tick retries.
func (c *Controller) ReconcileLearners(ctx context.Context) {
	active, epoch := c.q.Active()
	if !active {
		return
	}
	due := c.dueLearners(epoch, time.Now())
	if len(due) == 0 {
		return
	}
	if !c.mu.TryLock() {
		return
	}
	c.callCommit = -1
	defer c.unlockNoWait()
	if c.activeLocked() != nil {
		return
	}
	im := c.image()
	for _, id := range due {
		if _, registered := im.Brokers[id]; registered || c.voters[id] {
			continue
		}
		if _, err := c.removeLearner(ctx, id); err != nil {
			c.logger.Warn("learner without a registration not removed from the quorum; retried at the next tick", "node", id, "err", err)
			continue
		}
		c.logger.Info("learner without a broker registration removed from the quorum", "node", id)
		c.sweep.mu.Lock()
		delete(c.sweep.absentSince, id)
		delete(c.sweep.retry, id)
		c.sweep.mu.Unlock()
	}
}

// dueLearners updates the absence times and returns the learners whose
// removal is due, sorted. It reads the published state only (no mu).
func (c *Controller) dueLearners(epoch int32, now time.Time) []int32 {
	c.sweep.mu.Lock()
	defer c.sweep.mu.Unlock()
	if c.sweep.learners == nil || c.sweep.remove == nil {
		return nil
	}
	if c.sweep.epoch != epoch || c.sweep.absentSince == nil {
		c.sweep.epoch = epoch
		c.sweep.absentSince = map[int32]time.Time{}
	}
	learners := c.sweep.learners()
	im := c.image()
	var due []int32
	for id := range c.sweep.absentSince {
		if _, ok := learners[id]; !ok {
			delete(c.sweep.absentSince, id)
		}
	}
	for id := range c.sweep.retry {
		if _, ok := learners[id]; !ok {
			delete(c.sweep.retry, id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(learners)) {
		if _, registered := im.Brokers[id]; registered {
			delete(c.sweep.absentSince, id)
			delete(c.sweep.retry, id)
			continue
		}
		since, seen := c.sweep.absentSince[id]
		if !seen {
			c.sweep.absentSince[id], since = now, now
		}
		if c.sweep.retry[id] || now.Sub(since) >= c.sessionTimeout() {
			due = append(due, id)
		}
	}
	return due
}

// removeLearner asks raft, through the hook, to remove learner id,
// bounded by learnerChangeTimeout; asked is false when there is no hook.
func (c *Controller) removeLearner(ctx context.Context, id int32) (asked bool, err error) {
	c.sweep.mu.Lock()
	remove := c.sweep.remove
	c.sweep.mu.Unlock()
	if remove == nil {
		return false, nil
	}
	rctx, cancel := context.WithTimeout(ctx, learnerChangeTimeout)
	defer cancel()
	return true, remove(rctx, id)
}
