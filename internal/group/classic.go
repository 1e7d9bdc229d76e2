package group

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/coordinator"
	"samsa/internal/record"
)

// The rebalance protocol: JoinGroup (key 11, v0-v9), SyncGroup (key 14,
// v0-v5), Heartbeat (key 12, v0-v4) and LeaveGroup (key 13, v0-v5), as
// Kafka's classic group coordinator serves them (GroupMetadataManager's
// classicGroupJoin / classicGroupSync / classicGroupHeartbeat /
// classicGroupLeave).

type clientKey struct{}

type clientInfo struct{ id, host string }

// WithClient returns ctx carrying the request header's client id and the
// connection's client host. JoinGroup uses them for new member ids
// (clientId-UUID) and DescribeGroups shows them; without them both are "".
func WithClient(ctx context.Context, clientID, clientHost string) context.Context {
	return context.WithValue(ctx, clientKey{}, clientInfo{clientID, clientHost})
}

func clientFrom(ctx context.Context) clientInfo {
	ci, _ := ctx.Value(clientKey{}).(clientInfo)
	return ci
}

// newMemberID is Kafka's member id: the client id (or, for a static member,
// the group instance id), a dash, and a random UUID.
func newMemberID(prefix string) string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// validateMemberLocked checks that memberID (with instanceID, for static
// members) belongs to g (ClassicGroup.validateMember).
func (g *group) validateMemberLocked(memberID string, instanceID *string) *kerr.Error {
	if instanceID != nil {
		cur, ok := g.static[*instanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID
		case cur != memberID:
			return kerr.FencedInstanceID
		}
		return nil
	}
	if g.members[memberID] == nil {
		return kerr.UnknownMemberID
	}
	return nil
}

// JoinGroup serves JoinGroup v0-v9. It parks until the join phase of the
// rebalance completes, and returns early (COORDINATOR_NOT_AVAILABLE) when
// ctx is done.
func (c *Coordinator) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	resp := c.joinGroup(ctx, req)
	resp.Version = req.Version
	return resp
}

func (c *Coordinator) joinGroup(ctx context.Context, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	fail := func(code *kerr.Error) *kmsg.JoinGroupResponse {
		r := kmsg.NewPtrJoinGroupResponse()
		r.ErrorCode = code.Code
		r.Generation = -1
		r.MemberID = req.MemberID
		return r
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID)
	}
	if req.Version < 5 {
		req.InstanceID = nil
	}
	session := millis(req.SessionTimeoutMillis)
	if session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout)
	}
	rebalance := millis(req.RebalanceTimeoutMillis)
	if req.Version == 0 || rebalance <= 0 {
		rebalance = session
	}
	ps, code := c.lookup(req.Group)
	if code != nil {
		return fail(code)
	}
	ch, resp, code := ps.joinLocked(clientFrom(ctx), req, session, rebalance)
	ps.unlock()
	switch {
	case code != nil:
		r := fail(code)
		if code == kerr.MemberIDRequired {
			r.MemberID = resp.MemberID
		}
		return r
	case ch == nil:
		return resp
	}
	return awaitParked(ctx, ch, func() *kmsg.JoinGroupResponse { return fail(kerr.CoordinatorNotAvailable) })
}

// awaitParked waits for the answer of a parked JoinGroup or SyncGroup, or
// returns gone() when ctx ends first.
func awaitParked[R any](ctx context.Context, ch <-chan R, gone func() R) R {
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		return gone()
	}
}

// joinLocked runs a JoinGroup against the state machine. It returns either
// a channel the answer will come on, an immediate answer, or an error
// (with resp.MemberID set for MEMBER_ID_REQUIRED).
func (ps *partition) joinLocked(ci clientInfo, req *kmsg.JoinGroupRequest, session, rebalance time.Duration) (chan *kmsg.JoinGroupResponse, *kmsg.JoinGroupResponse, *kerr.Error) {
	now := time.Now()
	unknown := req.MemberID == ""
	g := ps.groups[req.Group]
	if g == nil {
		if !unknown {
			return nil, nil, kerr.UnknownMemberID
		}
		if req.ProtocolType == "" || len(req.Protocols) == 0 {
			return nil, nil, kerr.InconsistentGroupProtocol
		}
		g = newGroup(ps, req.Group, ps.c.now())
		ps.groups[req.Group] = g
	}

	var staticOld *member // the member a static rejoin replaces
	if req.InstanceID != nil && unknown {
		if id, ok := g.static[*req.InstanceID]; ok {
			staticOld = g.members[id]
		}
	}
	self := req.MemberID
	if staticOld != nil {
		self = staticOld.id
	}
	if !g.supportsProtocolsLocked(req.ProtocolType, req.Protocols, self) {
		return nil, nil, kerr.InconsistentGroupProtocol
	}
	if max := ps.c.cfg.MaxSize; max > 0 && g.members[req.MemberID] == nil && staticOld == nil && len(g.members) >= max {
		if !unknown {
			g.removePendingLocked(req.MemberID)
		}
		return nil, nil, kerr.GroupMaxSizeReached
	}
	newMember := func(id string) *member {
		m := &member{
			id:               id,
			clientID:         ci.id,
			clientHost:       ci.host,
			protocolType:     req.ProtocolType,
			sessionTimeout:   session,
			rebalanceTimeout: rebalance,
		}
		if req.InstanceID != nil {
			iid := *req.InstanceID
			m.instanceID = &iid
		}
		m.protocols = toProtocols(req.Protocols)
		return m
	}

	if unknown {
		prefix := ci.id
		if req.InstanceID != nil {
			prefix = *req.InstanceID
		}
		id := newMemberID(prefix)
		switch {
		case staticOld != nil:
			return g.replaceStaticLocked(staticOld, newMember(id), req.Version, now)
		case req.InstanceID == nil && req.Version >= 4:
			// KIP-394: hand out the id; the member must come back with it.
			g.addPendingLocked(id, session)
			r := kmsg.NewPtrJoinGroupResponse()
			r.MemberID = id
			return nil, r, kerr.MemberIDRequired
		default:
			return g.addMemberAndRebalanceLocked(newMember(id), now), nil, nil
		}
	}

	if g.removePendingLocked(req.MemberID) {
		return g.addMemberAndRebalanceLocked(newMember(req.MemberID), now), nil, nil
	}
	if code := g.validateMemberLocked(req.MemberID, req.InstanceID); code != nil {
		return nil, nil, code
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		return g.updateMemberAndRebalanceLocked(m, req, session, rebalance, now), nil, nil
	case stateCompletingRebalance:
		if m.matches(req.Protocols) {
			// The member lost the JoinGroup answer: give it again.
			g.touchLocked(m, now)
			return nil, g.joinResponseLocked(m), nil
		}
		return g.updateMemberAndRebalanceLocked(m, req, session, rebalance, now), nil, nil
	case stateStable:
		if m.id == g.leader || !m.matches(req.Protocols) {
			return g.updateMemberAndRebalanceLocked(m, req, session, rebalance, now), nil, nil
		}
		g.touchLocked(m, now)
		return nil, g.joinResponseLocked(m), nil
	default:
		return nil, nil, kerr.UnknownMemberID
	}
}

func toProtocols(ps []kmsg.JoinGroupRequestProtocol) []protocol {
	out := make([]protocol, len(ps))
	for i, p := range ps {
		out[i] = protocol{name: p.Name, metadata: p.Metadata}
	}
	return out
}

// addMemberAndRebalanceLocked adds a new member parked in its JoinGroup
// and starts (or continues) a rebalance.
func (g *group) addMemberAndRebalanceLocked(m *member, now time.Time) chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	m.joinCh = ch
	if g.state == statePreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	g.addMemberLocked(m, now)
	g.maybePrepareRebalanceLocked()
	g.tryCompleteJoinLocked()
	return ch
}

// updateMemberAndRebalanceLocked parks a known member's JoinGroup with its
// new protocols and timeouts, and starts (or continues) a rebalance. A
// JoinGroup of the member still parked stays unanswered, as in Kafka.
func (g *group) updateMemberAndRebalanceLocked(m *member, req *kmsg.JoinGroupRequest, session, rebalance time.Duration, now time.Time) chan *kmsg.JoinGroupResponse {
	m.protocols = toProtocols(req.Protocols)
	m.sessionTimeout = session
	m.rebalanceTimeout = rebalance
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	m.joinCh = ch
	g.touchLocked(m, now)
	g.maybePrepareRebalanceLocked()
	g.tryCompleteJoinLocked()
	return ch
}

// replaceStaticLocked gives a static member's instance id to nm, a new
// member id (KIP-345): the old member id is fenced. In Stable, when the
// chosen protocol would not change, no rebalance happens: the group is
// stored and nm gets the current generation (the leader, from v9, the
// members with SkipAssignment).
func (g *group) replaceStaticLocked(old, nm *member, version int16, now time.Time) (chan *kmsg.JoinGroupResponse, *kmsg.JoinGroupResponse, *kerr.Error) {
	wasLeader := g.leader == old.id
	_, wasPendingSync := g.pendingSync[old.id]
	nm.assignment = old.assignment
	g.removeMemberLocked(old, kerr.FencedInstanceID)
	g.addMemberLocked(nm, now)
	if wasLeader {
		g.leader = nm.id
	}
	if wasPendingSync {
		g.pendingSync[nm.id] = struct{}{}
	}
	switch g.state {
	case stateStable:
		if g.selectProtocolLocked() == g.protocol {
			g.ps.markDirtyLocked(g)
			r := g.joinGenerationLocked(nm.id)
			if version >= 9 && g.leader == nm.id {
				r = g.joinResponseLocked(nm)
				r.SkipAssignment = true
			}
			return nil, r, nil
		}
		nm.joinCh = make(chan *kmsg.JoinGroupResponse, 1)
		g.prepareRebalanceLocked()
		return nm.joinCh, nil, nil
	case stateCompletingRebalance:
		// The leader may already assign to the old member id: rebalance.
		ch := make(chan *kmsg.JoinGroupResponse, 1)
		nm.joinCh = ch
		g.prepareRebalanceLocked()
		return ch, nil, nil
	default: // PreparingRebalance (a static member cannot exist while Empty)
		ch := make(chan *kmsg.JoinGroupResponse, 1)
		nm.joinCh = ch
		g.tryCompleteJoinLocked()
		return ch, nil, nil
	}
}

// SyncGroup serves SyncGroup v0-v5. Followers park until the leader's
// assignment is stored; the leader's assignment is written to the
// partition before anyone is answered.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := c.syncGroup(ctx, req)
	resp.Version = req.Version
	return resp
}

func (c *Coordinator) syncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	if req.Group == "" {
		return syncErrorResponse(kerr.InvalidGroupID)
	}
	if req.Version < 3 {
		req.InstanceID = nil
	}
	ps, code := c.lookup(req.Group)
	if code != nil {
		return syncErrorResponse(code)
	}
	ch, resp, code := ps.syncLocked(req)
	ps.unlock()
	switch {
	case code != nil:
		return syncErrorResponse(code)
	case ch == nil:
		return resp
	}
	return awaitParked(ctx, ch, func() *kmsg.SyncGroupResponse { return syncErrorResponse(kerr.CoordinatorNotAvailable) })
}

func (ps *partition) syncLocked(req *kmsg.SyncGroupRequest) (chan *kmsg.SyncGroupResponse, *kmsg.SyncGroupResponse, *kerr.Error) {
	g := ps.groups[req.Group]
	if g == nil {
		return nil, nil, kerr.UnknownMemberID
	}
	if code := g.validateMemberLocked(req.MemberID, req.InstanceID); code != nil {
		return nil, nil, code
	}
	if req.Generation != g.generation {
		return nil, nil, kerr.IllegalGeneration
	}
	if (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) ||
		(req.Protocol != nil && *req.Protocol != g.protocol) {
		return nil, nil, kerr.InconsistentGroupProtocol
	}
	m := g.members[req.MemberID]
	now := time.Now()
	switch g.state {
	case statePreparingRebalance:
		return nil, nil, kerr.RebalanceInProgress
	case stateStable:
		delete(g.pendingSync, m.id)
		g.touchLocked(m, now)
		r := kmsg.NewPtrSyncGroupResponse()
		pt, p := g.protocolType, g.protocol
		r.ProtocolType = &pt
		r.Protocol = &p
		r.MemberAssignment = m.assignment
		if r.MemberAssignment == nil {
			r.MemberAssignment = []byte{}
		}
		return nil, r, nil
	case stateCompletingRebalance:
		delete(g.pendingSync, m.id)
		g.touchLocked(m, now)
		ch := make(chan *kmsg.SyncGroupResponse, 1)
		m.syncCh = ch
		if m.id == g.leader && g.storingGen != g.generation {
			assignments := make(map[string][]byte, len(req.GroupAssignment))
			for _, a := range req.GroupAssignment {
				if g.members[a.MemberID] != nil {
					assignments[a.MemberID] = a.MemberAssignment
				}
			}
			g.storingGen = g.generation
			gen := g.generation
			ps.goBackground(func() { ps.storeAssignment(g, gen, assignments) })
		}
		return ch, nil, nil
	default:
		return nil, nil, kerr.UnknownMemberID
	}
}

// storeAssignment writes the group with the leader's assignment of gen,
// then distributes it (or, on failure, restarts the rebalance).
func (ps *partition) storeAssignment(g *group, gen int32, assignments map[string][]byte) {
	err := ps.lockWrite(ps.ctx)
	if err != nil {
		return // unloaded or closed: parked requests are answered there
	}
	ps.mu.Lock()
	if ps.state != coordinator.Loaded || !g.alive() || g.generation != gen || g.state != stateCompletingRebalance {
		if g.storingGen == gen {
			g.storingGen = -1
		}
		ps.unlockWrite()
		ps.unlock()
		return
	}
	rec := g.metadataRecordLocked(assignments)
	ps.mu.Unlock()
	err = ps.appendRecords(ps.ctx, []record.Record{rec})
	ps.mu.Lock()
	if g.storingGen == gen {
		g.storingGen = -1
	}
	if ps.state == coordinator.Loaded && g.alive() {
		g.applySyncLocked(gen, assignments, err)
	}
	ps.unlockWrite()
	ps.unlock()
}

// Heartbeat serves Heartbeat v0-v4.
func (c *Coordinator) Heartbeat(_ context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.Version = req.Version
	if req.Version < 3 {
		req.InstanceID = nil
	}
	if code := c.heartbeat(req); code != nil {
		resp.ErrorCode = code.Code
	}
	return resp
}

func (c *Coordinator) heartbeat(req *kmsg.HeartbeatRequest) *kerr.Error {
	if req.Group == "" {
		return kerr.InvalidGroupID
	}
	ps, code := c.lookup(req.Group)
	if code != nil {
		return code
	}
	defer ps.unlock()
	g := ps.groups[req.Group]
	if g == nil {
		return kerr.UnknownMemberID
	}
	if code := g.validateMemberLocked(req.MemberID, req.InstanceID); code != nil {
		return code
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		g.touchLocked(m, time.Now())
		return kerr.RebalanceInProgress
	case stateCompletingRebalance, stateStable:
		g.touchLocked(m, time.Now())
		return nil
	default:
		return kerr.UnknownMemberID
	}
}

// LeaveGroup serves LeaveGroup v0-v5: one dynamic member (v0-v2) or a
// batch of members, static ones by group instance id (v3+, KIP-345).
func (c *Coordinator) LeaveGroup(_ context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	resp.Version = req.Version
	leaving := req.Members
	if req.Version < 3 {
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = req.MemberID
		leaving = []kmsg.LeaveGroupRequestMember{m}
	}
	codes, top := c.leaveGroup(req.Group, leaving)
	if top != nil {
		resp.ErrorCode = top.Code
		return resp
	}
	if req.Version < 3 {
		if codes[0] != nil {
			resp.ErrorCode = codes[0].Code
		}
		return resp
	}
	for i, l := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID = l.MemberID
		rm.InstanceID = l.InstanceID
		if codes[i] != nil {
			rm.ErrorCode = codes[i].Code
		}
		resp.Members = append(resp.Members, rm)
	}
	return resp
}

func (c *Coordinator) leaveGroup(groupID string, leaving []kmsg.LeaveGroupRequestMember) ([]*kerr.Error, *kerr.Error) {
	if groupID == "" {
		return nil, kerr.InvalidGroupID
	}
	ps, code := c.lookup(groupID)
	if code != nil {
		return nil, code
	}
	defer ps.unlock()
	codes := make([]*kerr.Error, len(leaving))
	g := ps.groups[groupID]
	if g == nil {
		for i := range codes {
			codes[i] = kerr.UnknownMemberID
		}
		return codes, nil
	}
	removed := false
	for i, l := range leaving {
		if l.InstanceID != nil {
			id, ok := g.static[*l.InstanceID]
			switch {
			case !ok:
				codes[i] = kerr.UnknownMemberID
			case l.MemberID != "" && l.MemberID != id:
				codes[i] = kerr.FencedInstanceID
			default:
				g.removeMemberLocked(g.members[id], kerr.UnknownMemberID)
				removed = true
			}
			continue
		}
		if g.removePendingLocked(l.MemberID) {
			removed = true
			continue
		}
		m := g.members[l.MemberID]
		if m == nil {
			codes[i] = kerr.UnknownMemberID
			continue
		}
		g.removeMemberLocked(m, kerr.UnknownMemberID)
		removed = true
	}
	if removed {
		g.afterRemovalLocked()
	}
	return codes, nil
}
