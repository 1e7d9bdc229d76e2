package controller

// Broker unregistration (KIP-841, UnregisterBroker 64), as Kafka's
// ReplicationControlManager.unregisterBroker and handleBrokerUnregistered:
// the broker leaves every ISR it is in (the last member of an ISR stays,
// as at any fence; a partition it led gets a new leader from its ISR or
// none), then an UnregisterBrokerRecord carrying its broker epoch removes
// the registration. Partitions keep listing the broker among their
// replicas, as an offline replica, until they are reassigned: the
// operator moves them first (`samsa cluster decommission`). A
// broker-only node is then removed from the metadata quorum's learners
// (learners.go), so DescribeQuorum stops listing it among the observers.
//
// One deviation from Kafka 4, on purpose: Kafka unregisters a broker that
// is still running (it then re-registers at its next heartbeat, which
// makes the call useless and, with its ISR memberships dropped, risky);
// Samsa refuses a broker that is active — unfenced (in controlled
// shutdown included), or fenced but heartbeating within
// broker.session.timeout.ms without having shut down — with
// INVALID_REQUEST and a message saying to stop it first.

import (
	"context"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
)

// UnregisterBroker serves UnregisterBroker (64), version 0:
// NOT_CONTROLLER off the active controller; BROKER_ID_NOT_REGISTERED for
// an id with no registration (Kafka's message); INVALID_REQUEST for a
// broker that is still active (see the file comment); else the
// broker's ISR memberships and registration are removed in the metadata
// log, its heartbeat session is dropped and, for a broker-only node, its
// raft learner is removed (a failure there is retried by
// ReconcileLearners; the answer is success, the registration is gone).
func (c *Controller) UnregisterBroker(ctx context.Context, req *kmsg.UnregisterBrokerRequest) *kmsg.UnregisterBrokerResponse {
	resp := req.ResponseKind().(*kmsg.UnregisterBrokerResponse)
	c.lock()
	defer c.unlock(ctx)
	if e := c.activeLocked(); e != nil {
		resp.ErrorCode, resp.ErrorMessage = e.code, &e.msg
		return resp
	}
	im := c.image()
	b, ok := im.Brokers[req.BrokerID]
	if !ok {
		e := fail(kerr.BrokerIDNotRegistered, "Broker ID %d is not currently registered", req.BrokerID)
		resp.ErrorCode, resp.ErrorMessage = e.code, &e.msg
		return resp
	}
	if why := c.stillActive(b, time.Now()); why != "" {
		e := fail(kerr.InvalidRequest, "Broker %d is still active (%s): stop it, and let it be fenced, before unregistering it.", b.ID, why)
		resp.ErrorCode, resp.ErrorMessage = e.code, &e.msg
		return resp
	}
	recs := c.leaderAndISRUpdatesLocked(im, b.ID, noLeader, "broker "+strconv.Itoa(int(b.ID))+" unregistered")
	if _, err := c.commitChangesLocked(ctx, recs, metadata.Record{Type: metadata.TypeUnregisterBroker,
		UnregisterBroker: &metadata.UnregisterBrokerRecord{BrokerID: b.ID, BrokerEpoch: b.Epoch}}); err != nil {
		e := c.commitErr("unregister broker", err)
		resp.ErrorCode, resp.ErrorMessage = e.code, &e.msg
		return resp
	}
	c.sess.mu.Lock()
	delete(c.sess.m, b.ID)
	c.sess.mu.Unlock()
	c.logger.Info("broker unregistered", "node", b.ID, "broker_epoch", b.Epoch, "partition_changes", len(recs))
	c.removeUnregisteredLocked(ctx, b.ID)
	return resp
}

// stillActive says why registered broker b cannot be unregistered yet
// ("" when it can): it is unfenced, or its process heartbeated within
// its session and did not shut down. A session this controller made up
// at a takeover (epoch -1, no heartbeat seen) does not count.
func (c *Controller) stillActive(b metadata.Broker, now time.Time) string {
	switch {
	case b.InControlledShutdown && !b.Fenced:
		return "in controlled shutdown, not yet fenced"
	case !b.Fenced:
		return "unfenced"
	}
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	if s := c.sess.m[b.ID]; s != nil && s.epoch >= 0 && !s.shuttingDown && now.Before(s.deadline) {
		return "fenced but still heartbeating"
	}
	return ""
}
