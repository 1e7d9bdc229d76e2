package controller

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
)

// session is a broker's heartbeat session with this controller (Kafka's
// BrokerHeartbeatManager): soft state, rebuilt by a new controller, which
// gives every registered broker a whole session to heartbeat it. Fields
// are guarded by sessions.mu.
type session struct {
	// incarnation is the broker process's random id (registration);
	// zero when the session was rebuilt after a takeover.
	incarnation [16]byte
	// epoch is the broker epoch: the metadata offset of its registration;
	// -1 when rebuilt (the first heartbeat's epoch is then adopted).
	epoch int64
	// deadline is when the broker is fenced without a heartbeat: a
	// heartbeat's arrival plus broker.session.timeout.ms, moved later
	// by the time the controller itself did not watch (expiry stalls).
	deadline time.Time
	// shuttingDown is set by a heartbeat with WantShutdown.
	shuttingDown bool
	// shutdownOffset is the metadata offset of the commit that took the
	// broker into controlled shutdown (its leaderships moved away): it
	// may stop once it has applied it. -1: none.
	shutdownOffset int64
}

// sessions are the brokers' heartbeat sessions under their own lock, so
// that a heartbeat renews its session, and the expiry check reads the
// deadlines, without waiting for Controller.mu (which a large
// CreateTopics holds while it commits). A heartbeat's arrival time is
// its contact time (as Kafka's BrokerHeartbeatTracker records it before
// the request waits for the controller's event queue).
type sessions struct {
	mu sync.Mutex
	// epoch is the controller epoch m belongs to; a new one (a takeover)
	// empties m. Guarded by mu.
	epoch int32
	// m holds the sessions by broker id. Guarded by mu.
	m map[int32]*session
	// lastCheck is when ExpireSessions last looked at the deadlines
	// (zero: never in this epoch). A gap far longer than its period
	// means the controller itself stalled (CPU starvation, a long pause)
	// and could not have received heartbeats on time: the gap is added
	// to every live deadline instead of being charged to the brokers.
	// Guarded by mu.
	lastCheck time.Time
}

// forEpochLocked drops the sessions of an earlier controller epoch: a
// new controller knows no heartbeat, so every broker gets a whole
// session from now to find it.
func (s *sessions) forEpochLocked(epoch int32) {
	if s.epoch != epoch || s.m == nil {
		s.epoch = epoch
		s.m = map[int32]*session{}
		s.lastCheck = time.Time{}
	}
}

// SetAddLearner installs the quorum membership hooks: voters are the
// voter ids (controller.quorum.voters); addLearner adds a broker-only
// node as a raft learner at addr (raft.Node.AddLearner). Call before
// serving requests.
func (c *Controller) SetAddLearner(voters []int32, addLearner func(ctx context.Context, id int32, addr string) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.voters = map[int32]bool{}
	for _, v := range voters {
		c.voters[v] = true
	}
	c.addLearner = addLearner
}

// sessionTimeout is broker.session.timeout.ms.
func (c *Controller) sessionTimeout() time.Duration { return c.cfg.Cluster.SessionTimeout }

// BrokerRegistration serves BrokerRegistration (62): a broker process
// (re)joins with its listeners, rack and incarnation id. The controller
// checks the cluster id (INCONSISTENT_CLUSTER_ID) and that no other live
// process holds the node id (DUPLICATE_BROKER_REGISTRATION: a different
// incarnation whose session has not expired), adds a broker-only node as
// a raft learner at the address of its inter-broker listener, and
// commits a RegisterBroker record (unfenced), with the leaderless
// partitions whose ISR holds the broker led by it again. The broker epoch
// is the offset of the entry holding the record.
func (c *Controller) BrokerRegistration(ctx context.Context, req *kmsg.BrokerRegistrationRequest) *kmsg.BrokerRegistrationResponse {
	resp := req.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	resp.BrokerEpoch = -1
	c.lock()
	defer c.unlock(ctx)
	if e := c.activeLocked(); e != nil {
		resp.ErrorCode = e.code
		return resp
	}
	im := c.image()
	if req.ClusterID != im.ClusterID {
		c.logger.Error("broker registration from another cluster", "node", req.BrokerID, "peer_cluster_id", req.ClusterID, "our_cluster_id", im.ClusterID)
		resp.ErrorCode = kerr.InconsistentClusterID.Code
		return resp
	}
	now := time.Now()
	c.sess.mu.Lock()
	s := c.sess.m[req.BrokerID]
	dup := s != nil && s.incarnation != req.IncarnationID && s.incarnation != ([16]byte{}) &&
		now.Before(s.deadline) && !s.shuttingDown
	newProcess := s == nil || s.incarnation != req.IncarnationID
	c.sess.mu.Unlock()
	if dup {
		c.logger.Error("duplicate broker registration: node.id is used by another live process", "node", req.BrokerID)
		resp.ErrorCode = kerr.DuplicateBrokerRegistration.Code
		return resp
	}
	rec := metadata.RegisterBrokerRecord{BrokerID: req.BrokerID, IncarnationID: metadata.UUID(req.IncarnationID)}
	if req.Rack != nil {
		rec.Rack = *req.Rack
	}
	for _, l := range req.Listeners {
		rec.Endpoints = append(rec.Endpoints, metadata.Endpoint{
			Listener: l.Name, Host: l.Host, Port: int32(l.Port), SecurityProtocol: securityProtocolName(l.SecurityProtocol),
		})
	}
	if len(rec.Endpoints) == 0 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	if c.addLearner != nil && !c.voters[req.BrokerID] {
		addr := metadata.Broker{Endpoints: rec.Endpoints}.AddrOrFirst(c.cfg.InterBrokerListenerName)
		if err := c.addLearner(ctx, req.BrokerID, addr); err != nil {
			e := c.commitErr("add learner", err)
			resp.ErrorCode = e.code
			return resp
		}
	}
	// A new process of a broker the image still shows unfenced (it
	// restarted and its old session expired before the expiry check
	// fenced it, or this controller does not know its incarnation) first
	// leaves every ISR and leadership, as a fence does, in the same commit
	// (Kafka's handleBrokerUncleanShutdown, KIP-966 without ELR).
	// Otherwise it led on in the same leader epoch with what its disk
	// recovered: a high watermark checkpoint behind the one it had
	// answered with (found by internal/sim), after a power loss a log
	// shorter than its followers' that it would extend in the same epoch.
	var recs []metadata.Record
	old, known := im.Brokers[req.BrokerID]
	if known && old.IncarnationID != (metadata.UUID{}) {
		// The image knows the process that registered last, also on a
		// controller that took over since (its sessions do not).
		newProcess = old.IncarnationID != metadata.UUID(req.IncarnationID)
	}
	if known && !old.Fenced && newProcess {
		recs = c.leaderAndISRUpdatesLocked(im, req.BrokerID, noLeader, "broker "+strconv.Itoa(int(req.BrokerID))+" restarted")
		if len(recs) > 0 {
			next, err := im.Apply(recs)
			if err != nil {
				resp.ErrorCode = c.commitErr("register broker", err).code
				return resp
			}
			im = next
		}
	}
	// Registered unfenced: leaderless partitions whose ISR holds it get
	// it as leader in the same commit (Kafka: handleBrokerUnfenced). The
	// registration is the entry's last record, so its offset is the
	// broker epoch in every Quorum.
	recs = append(recs, c.leaderAndISRUpdatesLocked(im, noLeader, req.BrokerID, "broker registered")...)
	off, err := c.commitChangesLocked(ctx, recs, metadata.Record{Type: metadata.TypeRegisterBroker, RegisterBroker: &rec})
	if err != nil {
		resp.ErrorCode = c.commitErr("register broker", err).code
		return resp
	}
	c.sess.mu.Lock()
	c.sess.m[req.BrokerID] = &session{incarnation: req.IncarnationID, epoch: off, deadline: time.Now().Add(c.sessionTimeout()), shutdownOffset: -1}
	c.sess.mu.Unlock()
	c.logger.Info("broker registered", "node", req.BrokerID, "rack", rec.Rack, "broker_epoch", off)
	resp.BrokerEpoch = off
	return resp
}

// BrokerHeartbeat serves BrokerHeartbeat (63): it renews the broker's
// session; a fenced broker that heartbeats is unfenced (unless it asks to
// stay fenced) and leads again the leaderless partitions whose ISR holds
// it. A broker that asks to shut down (Kafka's BrokerHeartbeatManager
// states): if it leads partitions, it enters controlled shutdown (still
// unfenced, out of every ISR, its leaderships moved to other ISR
// members) and is told to wait; once it leads nothing and has applied
// that change, it is fenced and told it may shut down.
//
// The session is renewed at the heartbeat's arrival under the sessions'
// own lock; a heartbeat that changes nothing (an active broker's, every
// broker.heartbeat.interval.ms) answers from the applied image without
// taking the controller's lock, so it never waits behind a commit.
// Only a heartbeat that fences, unfences or shuts down takes it, and it
// does not wait for this node's listeners afterwards.
func (c *Controller) BrokerHeartbeat(ctx context.Context, req *kmsg.BrokerHeartbeatRequest) *kmsg.BrokerHeartbeatResponse {
	arrived := time.Now()
	resp := req.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
	resp.IsFenced = true
	active, epoch := c.q.Active()
	if !active {
		resp.ErrorCode = notController(c.image().ControllerID).code
		return resp
	}
	im := c.image()
	b, ok := im.Brokers[req.BrokerID]
	if !ok {
		resp.ErrorCode = kerr.BrokerIDNotRegistered.Code
		return resp
	}
	if req.BrokerEpoch != b.Epoch {
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		return resp
	}
	c.sess.mu.Lock()
	c.sess.forEpochLocked(epoch)
	s := c.sess.m[req.BrokerID]
	if s == nil {
		s = &session{shutdownOffset: -1}
		c.sess.m[req.BrokerID] = s
	}
	s.epoch = req.BrokerEpoch
	s.deadline = arrived.Add(c.sessionTimeout())
	c.sess.mu.Unlock()
	if c.noteOfflineDirs(req.BrokerID, req.BrokerEpoch, req.OfflineLogDirs) {
		if e := c.moveOffOfflineDirs(ctx, req.BrokerID, req.BrokerEpoch); e != nil {
			resp.ErrorCode = e.code
			return resp
		}
	}
	if !heartbeatChanges(req, b) {
		resp.IsFenced = b.Fenced
		resp.IsCaughtUp = req.CurrentMetadataOffset >= req.BrokerEpoch
		return resp
	}
	c.mu.Lock()
	defer c.unlockNoWait()
	if e := c.activeLocked(); e != nil {
		resp.ErrorCode = e.code
		return resp
	}
	// Re-read under mu: a change committed meanwhile (a fence by
	// expiry, a registration) is in the image now.
	im = c.image()
	if b, ok = im.Brokers[req.BrokerID]; !ok || b.Epoch != req.BrokerEpoch {
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		return resp
	}
	c.sess.mu.Lock()
	if cur := c.sess.m[req.BrokerID]; cur != nil {
		s = cur // replaced meanwhile (a takeover)
	} else {
		c.sess.m[req.BrokerID] = s
	}
	c.sess.mu.Unlock()
	switch {
	case req.WantShutdown:
		c.sess.mu.Lock()
		s.shuttingDown = true
		shutdownOffset := s.shutdownOffset
		c.sess.mu.Unlock()
		if !b.Fenced && leadsAny(im, b.ID) {
			off, err := c.controlledShutdownLocked(ctx, b)
			if err != nil {
				resp.ErrorCode = c.commitErr("controlled shutdown", err).code
				return resp
			}
			c.sess.mu.Lock()
			if s.shutdownOffset < 0 {
				s.shutdownOffset = off
			}
			c.sess.mu.Unlock()
			resp.IsFenced = false
			resp.IsCaughtUp = req.CurrentMetadataOffset >= req.BrokerEpoch
			return resp
		}
		if !b.Fenced && b.InControlledShutdown && shutdownOffset >= 0 && req.CurrentMetadataOffset < shutdownOffset {
			// Its leaderships moved; it has not applied that yet.
			resp.IsFenced = false
			return resp
		}
		if !b.Fenced {
			if err := c.fenceLocked(ctx, b, "controlled shutdown"); err != nil {
				resp.ErrorCode = c.commitErr("broker heartbeat", err).code
				return resp
			}
		}
		resp.ShouldShutdown = true
	case req.WantFence && !b.Fenced:
		if err := c.fenceLocked(ctx, b, "asked"); err != nil {
			resp.ErrorCode = c.commitErr("broker heartbeat", err).code
			return resp
		}
	case !req.WantFence && (b.Fenced || b.InControlledShutdown) && req.CurrentMetadataOffset >= b.Epoch:
		// Unfenced once it has caught up with its registration (Kafka's
		// BrokerHeartbeatManager): it may lead again at once.
		if err := c.unfenceLocked(ctx, b); err != nil {
			resp.ErrorCode = c.commitErr("broker heartbeat", err).code
			return resp
		}
		c.sess.mu.Lock()
		s.shuttingDown, s.shutdownOffset = false, -1
		c.sess.mu.Unlock()
	}
	resp.IsFenced = c.image().Brokers[req.BrokerID].Fenced
	resp.IsCaughtUp = req.CurrentMetadataOffset >= req.BrokerEpoch
	return resp
}

// heartbeatChanges reports whether a heartbeat from registered broker b
// asks for a state change (and so needs the controller's lock): a
// controlled shutdown, a fence, or an unfence (a fenced broker, or one
// in controlled shutdown, that caught up with its registration).
func heartbeatChanges(req *kmsg.BrokerHeartbeatRequest, b metadata.Broker) bool {
	switch {
	case req.WantShutdown:
		return true
	case req.WantFence:
		return !b.Fenced
	default:
		return (b.Fenced || b.InControlledShutdown) && req.CurrentMetadataOffset >= b.Epoch
	}
}

// commitChangesLocked commits partition changes followed by final (a
// broker's registration or state change) and returns the offset of the
// entry holding final. Changes beyond MaxRecordsPerUserOp go in earlier
// entries of that many records each (a broker in very many ISRs), so no
// entry grows without bound; each entry leaves a consistent image.
func (c *Controller) commitChangesLocked(ctx context.Context, changes []metadata.Record, final ...metadata.Record) (int64, error) {
	for len(changes)+len(final) > MaxRecordsPerUserOp && len(changes) > 0 {
		n := min(len(changes), MaxRecordsPerUserOp)
		if _, err := c.commitOffsetLocked(ctx, changes[:n]); err != nil {
			return 0, err
		}
		changes = changes[n:]
	}
	return c.commitOffsetLocked(ctx, append(changes, final...))
}

// fenceLocked fences b: it leaves every ISR (the last member stays), the
// partitions it led get a new leader from their ISR or none (Kafka's
// handleBrokerFenced), in one commit with its BrokerChangeRecord.
func (c *Controller) fenceLocked(ctx context.Context, b metadata.Broker, why string) error {
	im := c.image()
	recs := c.leaderAndISRUpdatesLocked(im, b.ID, noLeader, "broker "+strconv.Itoa(int(b.ID))+" fenced: "+why)
	fenced, off := true, false
	if _, err := c.commitChangesLocked(ctx, recs, metadata.Record{Type: metadata.TypeBrokerChange, BrokerChange: &metadata.BrokerChangeRecord{
		BrokerID: b.ID, Fenced: &fenced, InControlledShutdown: &off,
	}}); err != nil {
		return err
	}
	c.logger.Info("broker fenced", "node", b.ID, "reason", why, "partition_changes", len(recs))
	return nil
}

// unfenceLocked unfences b (or takes it out of controlled shutdown): the
// leaderless partitions whose ISR holds it get it as leader (Kafka's
// handleBrokerUnfenced), in one commit with its BrokerChangeRecord.
func (c *Controller) unfenceLocked(ctx context.Context, b metadata.Broker) error {
	im := c.image()
	recs := c.leaderAndISRUpdatesLocked(im, noLeader, b.ID, "broker "+strconv.Itoa(int(b.ID))+" unfenced")
	fenced, off := false, false
	if _, err := c.commitChangesLocked(ctx, recs, metadata.Record{Type: metadata.TypeBrokerChange, BrokerChange: &metadata.BrokerChangeRecord{
		BrokerID: b.ID, Fenced: &fenced, InControlledShutdown: &off,
	}}); err != nil {
		return err
	}
	c.logger.Info("broker unfenced", "node", b.ID, "partition_changes", len(recs))
	return nil
}

// controlledShutdownLocked takes b into controlled shutdown (Kafka's
// handleBrokerInControlledShutdown): it stays unfenced but leaves every
// ISR (the last member stays) and its leaderships move to other ISR
// members. It returns the commit's offset.
func (c *Controller) controlledShutdownLocked(ctx context.Context, b metadata.Broker) (int64, error) {
	im := c.image()
	recs := c.leaderAndISRUpdatesLocked(im, b.ID, noLeader, "broker "+strconv.Itoa(int(b.ID))+" in controlled shutdown")
	var final []metadata.Record
	if !b.InControlledShutdown {
		on := true
		final = append(final, metadata.Record{Type: metadata.TypeBrokerChange, BrokerChange: &metadata.BrokerChangeRecord{
			BrokerID: b.ID, InControlledShutdown: &on,
		}})
	}
	off, err := c.commitChangesLocked(ctx, recs, final...)
	if err != nil {
		return 0, err
	}
	if len(recs) > 0 {
		c.logger.Info("broker in controlled shutdown: leaderships moved", "node", b.ID, "partition_changes", len(recs))
	}
	return off, nil
}

// ExpireSessions fences every unfenced broker whose session has expired
// (no heartbeat for broker.session.timeout.ms), moving its leaderships;
// the server calls it periodically (every half heartbeat interval). Only
// the active controller does anything.
//
// The check reads the sessions under their own lock, so it never waits
// behind a commit; only a fence takes the controller's lock, and the
// session is checked again under it (a heartbeat may have arrived while
// it waited). Time the controller itself did not watch is not charged to
// the brokers: when the previous check is much longer ago than the
// checking period (a stalled process, a starved goroutine), every
// deadline not yet passed at that check moves later by the gap minus one
// period.
func (c *Controller) ExpireSessions(ctx context.Context) {
	active, epoch := c.q.Active()
	if !active {
		return
	}
	now := time.Now()
	im := c.image()
	ids := slices.Sorted(maps.Keys(im.Brokers))
	var expired []int32
	c.sess.mu.Lock()
	c.sess.forEpochLocked(epoch)
	if last := c.sess.lastCheck; !last.IsZero() {
		if gap := now.Sub(last); gap > c.expiryStall() {
			// Only the time beyond the checking period is forgiven, so
			// deadlines still come closer at every check however late.
			extra := gap - c.cfg.Cluster.HeartbeatInterval/2
			for _, s := range c.sess.m {
				if s.deadline.After(last) {
					s.deadline = s.deadline.Add(extra)
				}
			}
			c.logger.Warn("broker session expiry check stalled: deadlines extended", "stalled", gap)
		}
	}
	c.sess.lastCheck = now
	for _, id := range ids {
		s := c.sess.m[id]
		if s == nil {
			c.sess.m[id] = &session{epoch: -1, deadline: now.Add(c.sessionTimeout()), shutdownOffset: -1}
			continue
		}
		if !im.Brokers[id].Fenced && !now.Before(s.deadline) {
			expired = append(expired, id)
		}
	}
	c.sess.mu.Unlock()
	for _, id := range expired {
		if !c.expire(ctx, id) {
			return
		}
	}
}

// expiryStall is the gap between two expiry checks beyond which the
// controller counts itself stalled: two heartbeat intervals (the checks
// run every half interval).
func (c *Controller) expiryStall() time.Duration {
	return max(2*c.cfg.Cluster.HeartbeatInterval, 10*time.Millisecond)
}

// expire fences broker id if its session is still expired under the
// controller's lock. It reports whether the caller may go on (false:
// not the controller any more, or the commit failed).
func (c *Controller) expire(ctx context.Context, id int32) bool {
	c.mu.Lock()
	defer c.unlockNoWait()
	if c.activeLocked() != nil {
		return false
	}
	b, ok := c.image().Brokers[id]
	if !ok || b.Fenced {
		return true
	}
	c.sess.mu.Lock()
	s := c.sess.m[id]
	stillExpired := s != nil && !time.Now().Before(s.deadline)
	c.sess.mu.Unlock()
	if !stillExpired {
		return true // a heartbeat arrived while this waited
	}
	c.logger.Warn("broker session expired", "node", id, "broker.session.timeout.ms", c.sessionTimeout().Milliseconds())
	if err := c.fenceLocked(ctx, b, "session expired"); err != nil {
		c.logger.Warn("fence broker", "node", id, "err", err)
		return false
	}
	return true
}

// AllocateProducerIDsBlock serves AllocateProducerIds (67): a broker asks for
// a block of producer ids, reserved by a ProducerIdsRecord.
func (c *Controller) AllocateProducerIDsBlock(ctx context.Context, req *kmsg.AllocateProducerIDsRequest) *kmsg.AllocateProducerIDsResponse {
	resp := req.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
	c.lock()
	defer c.unlock(ctx)
	if e := c.activeLocked(); e != nil {
		resp.ErrorCode = e.code
		return resp
	}
	im := c.image()
	b, ok := im.Brokers[req.BrokerID]
	if !ok || b.Fenced {
		resp.ErrorCode = kerr.BrokerIDNotRegistered.Code
		return resp
	}
	if b.Epoch != req.BrokerEpoch {
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		return resp
	}
	start := im.NextProducerID
	if err := c.commitLocked(ctx, []metadata.Record{{Type: metadata.TypeProducerIDs, ProducerIDs: &metadata.ProducerIDsRecord{
		BrokerID: req.BrokerID, NextProducerID: start + producerIDBlock,
	}}}); err != nil {
		resp.ErrorCode = c.commitErr("allocate producer ids", err).code
		return resp
	}
	resp.ProducerIDStart, resp.ProducerIDLen = start, producerIDBlock
	return resp
}

// securityProtocolName maps Kafka's security protocol id to its name.
func securityProtocolName(id int16) string {
	switch id {
	case 1:
		return "SSL"
	case 2:
		return "SASL_PLAINTEXT"
	case 3:
		return "SASL_SSL"
	}
	return "PLAINTEXT"
}
