package group

import (
	"cmp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/record"
)

// groupState is a classic group's state (Kafka's ClassicGroupState).
type groupState int8

const (
	stateEmpty               groupState = iota // no members (maybe offsets)
	statePreparingRebalance                    // waiting for members to (re)join
	stateCompletingRebalance                   // joined; waiting for the leader's assignment
	stateStable                                // assignment distributed
	stateDead                                  // deleted; no longer in the partition's map
)

// String is the name DescribeGroups and ListGroups use.
func (s groupState) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// protocol is one assignment protocol a member supports, with its metadata
// (for "consumer" groups, the encoded subscription).
type protocol struct {
	name     string
	metadata []byte
}

// member is one member of a group. Guarded by the partition's mu.
type member struct {
	id               string
	instanceID       *string // group.instance.id (KIP-345); nil for dynamic members
	clientID         string
	clientHost       string
	protocolType     string
	protocols        []protocol // in the member's order of preference
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	assignment       []byte // from the leader's SyncGroup for the current generation
	seq              uint64 // join order within the group (leader choice, listing order)

	// joinCh is non-nil while the member's JoinGroup is parked; the state
	// machine sends exactly one response on it (capacity 1, never blocks).
	joinCh chan *kmsg.JoinGroupResponse
	// syncCh is the same for a parked SyncGroup.
	syncCh chan *kmsg.SyncGroupResponse

	// deadline is when the member's session expires unless it heartbeats.
	deadline time.Time
	// timer fires at fireAt (<= deadline) to check the session.
	timer  *time.Timer
	fireAt time.Time
}

// metadataFor returns the member's metadata for protocol name.
func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

// matches reports whether the member's protocols equal ps.
func (m *member) matches(ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i, p := range ps {
		if p.Name != m.protocols[i].name || string(p.Metadata) != string(m.protocols[i].metadata) {
			return false
		}
	}
	return true
}

// group is one classic group. Every field is guarded by ps.mu.
type group struct {
	ps    *partition
	id    string
	state groupState
	// stateTimestamp is when the group entered state, on the wall clock
	// (Config.Now); zero when unknown (restored from a value before
	// version 2). An Empty group's offsets expire from it.
	stateTimestamp time.Time
	protocolType   string // set by the first member; kept while Empty
	protocol       string // chosen protocol of the generation; "" while Empty
	generation     int32
	leader         string // member id; "" iff no members

	members map[string]*member
	// static maps group.instance.id to the member id that holds it.
	static map[string]string
	// pending are member ids handed out with MEMBER_ID_REQUIRED (KIP-394),
	// each expiring after the session timeout unless it joins.
	pending map[string]*time.Timer
	nextSeq uint64

	// joinTimer ends the join phase (rebalance timeout or initial delay);
	// joinToken invalidates callbacks of replaced timers.
	joinTimer *time.Timer
	joinToken uint64
	// initialDelay: the current rebalance started from Empty and waits
	// group.initial.rebalance.delay.ms, extended while members keep coming
	// (newMemberAdded) until remainingDelay (of the rebalance timeout) is used
	// up (Kafka's InitialDelayedJoin).
	initialDelay   bool
	newMemberAdded bool
	remainingDelay time.Duration

	// pendingSync are the members that have not sent SyncGroup since the
	// join phase completed; syncTimer removes them after the rebalance
	// timeout.
	pendingSync map[string]struct{}
	syncTimer   *time.Timer
	syncToken   uint64
	// storingGen is the generation whose assignment is being written, -1
	// if none.
	storingGen int32

	offsets map[topicPartition]offsetValue
	// txnOffsets are the offsets TxnOffsetCommit wrote whose transaction
	// has not ended, by producer id (Kafka's pendingTransactionalOffsets):
	// invisible to OffsetFetch until the commit marker (see txn.go).
	// Indexed by partition.txnGroups. nil when empty.
	txnOffsets map[int64]map[topicPartition]offsetValue
}

// newGroup returns an Empty group that became Empty at wall.
func newGroup(ps *partition, id string, wall time.Time) *group {
	return &group{
		ps:             ps,
		id:             id,
		state:          stateEmpty,
		stateTimestamp: wall,
		members:        make(map[string]*member),
		static:         make(map[string]string),
		pending:        make(map[string]*time.Timer),
		storingGen:     -1,
		offsets:        make(map[topicPartition]offsetValue),
	}
}

func (g *group) alive() bool { return g.ps.groups[g.id] == g && g.state != stateDead }

func (g *group) setStateLocked(s groupState) {
	g.state = s
	g.stateTimestamp = g.ps.c.now()
}

// sortedMembersLocked returns the members in join order.
func (g *group) sortedMembersLocked() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int { return cmp.Compare(a.seq, b.seq) })
	return ms
}

func (g *group) firstMemberLocked() string {
	var first *member
	for _, m := range g.members {
		if first == nil || m.seq < first.seq {
			first = m
		}
	}
	if first == nil {
		return ""
	}
	return first.id
}

// rebalanceTimeoutLocked is the largest rebalance timeout of the members.
func (g *group) rebalanceTimeoutLocked() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// addMemberLocked adds m and starts its session.
func (g *group) addMemberLocked(m *member, now time.Time) {
	if len(g.members) == 0 && m.protocolType != "" {
		g.protocolType = m.protocolType
	}
	g.nextSeq++
	m.seq = g.nextSeq
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
	g.touchLocked(m, now)
}

// touchLocked restarts m's session (a heartbeat, join, sync or commit).
func (g *group) touchLocked(m *member, now time.Time) {
	m.deadline = now.Add(m.sessionTimeout)
	switch {
	case m.timer == nil:
		m.fireAt = m.deadline
		m.timer = g.ps.afterFunc(m.sessionTimeout, func() { g.checkSessionLocked(m) })
	case m.deadline.Before(m.fireAt):
		// The session timeout shrank: fire earlier.
		m.fireAt = m.deadline
		m.timer.Reset(m.sessionTimeout)
	}
}

// checkSessionLocked runs when m's timer fires: it removes the member if
// its session expired (Kafka's DelayedHeartbeat), else rearms the timer.
// Members parked in JoinGroup or SyncGroup are kept alive: the rebalance
// and pending-sync timeouts bound those waits.
func (g *group) checkSessionLocked(m *member) {
	if !g.alive() || g.members[m.id] != m {
		return
	}
	now := time.Now()
	if m.joinCh != nil || m.syncCh != nil {
		m.deadline = now.Add(m.sessionTimeout)
	}
	if now.Before(m.deadline) {
		m.fireAt = m.deadline
		m.timer.Reset(m.deadline.Sub(now))
		return
	}
	g.ps.c.log.Info("group: member session expired", "group", g.id, "member", m.id,
		"generation", g.generation)
	g.removeMemberLocked(m, kerr.UnknownMemberID)
	g.afterRemovalLocked()
}

// removeMemberLocked drops m; its parked requests answer code. The caller
// then calls afterRemovalLocked (unless it completes the join itself).
func (g *group) removeMemberLocked(m *member, code *kerr.Error) {
	g.releaseMemberLocked(m, code)
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	delete(g.pendingSync, m.id)
	if g.leader == m.id {
		g.leader = g.firstMemberLocked()
	}
}

// releaseMemberLocked stops m's session timer and answers its parked
// JoinGroup and SyncGroup with code.
func (g *group) releaseMemberLocked(m *member, code *kerr.Error) {
	if m.timer != nil {
		m.timer.Stop()
	}
	if m.joinCh != nil {
		m.joinCh <- g.joinErrorResponse(m.id, code)
		m.joinCh = nil
	}
	if m.syncCh != nil {
		m.syncCh <- syncErrorResponse(code)
		m.syncCh = nil
	}
}

// afterRemovalLocked moves the group on after members left
// (GroupCoordinator.removeMemberAndUpdateGroup): a rebalance starts and, as
// Kafka's maybeCompleteJoinElseSchedule does, completes at once when every
// remaining member is already waiting in JoinGroup — so a group whose last
// member left is Empty right away.
func (g *group) afterRemovalLocked() {
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.prepareRebalanceLocked()
		g.tryCompleteJoinLocked()
	case statePreparingRebalance:
		g.tryCompleteJoinLocked()
	}
}

// addPendingLocked records a member id handed out with MEMBER_ID_REQUIRED.
func (g *group) addPendingLocked(id string, session time.Duration) {
	g.pending[id] = g.ps.afterFunc(session, func() {
		if !g.alive() || g.pending[id] == nil {
			return
		}
		delete(g.pending, id)
		g.tryCompleteJoinLocked()
	})
}

func (g *group) removePendingLocked(id string) bool {
	t, ok := g.pending[id]
	if ok {
		t.Stop()
		delete(g.pending, id)
	}
	return ok
}

// maybePrepareRebalanceLocked starts a rebalance unless one is running.
func (g *group) maybePrepareRebalanceLocked() {
	switch g.state {
	case stateStable, stateCompletingRebalance, stateEmpty:
		g.prepareRebalanceLocked()
	}
}

// prepareRebalanceLocked enters PreparingRebalance: the join phase lasts
// until every member rejoined (or the rebalance timeout), or, for a group
// that was Empty, the initial rebalance delay.
func (g *group) prepareRebalanceLocked() {
	if g.state == stateCompletingRebalance {
		g.resetAssignmentsLocked(kerr.RebalanceInProgress)
	}
	g.stopSyncTimerLocked()
	delay := g.rebalanceTimeoutLocked()
	g.initialDelay = false
	if initial := g.ps.c.cfg.InitialRebalanceDelay; g.state == stateEmpty && initial > 0 {
		d := min(initial, delay)
		g.initialDelay = true
		g.newMemberAdded = false
		g.remainingDelay = delay - d
		delay = d
	}
	g.setStateLocked(statePreparingRebalance)
	g.scheduleJoinLocked(delay)
}

// resetAssignmentsLocked forgets the assignment of the generation and
// answers parked SyncGroups with code.
func (g *group) resetAssignmentsLocked(code *kerr.Error) {
	for _, m := range g.members {
		m.assignment = nil
		if m.syncCh != nil {
			m.syncCh <- syncErrorResponse(code)
			m.syncCh = nil
		}
	}
}

func (g *group) scheduleJoinLocked(d time.Duration) {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
	}
	g.joinToken++
	tok := g.joinToken
	g.joinTimer = g.ps.afterFunc(d, func() {
		if g.alive() && g.joinToken == tok {
			g.onJoinTimerLocked()
		}
	})
}

func (g *group) stopJoinTimerLocked() { stopTimer(&g.joinTimer, &g.joinToken) }

// stopTimer stops *t if set, clears it, and bumps its token so that a
// callback already running sees it was replaced.
func stopTimer(t **time.Timer, token *uint64) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
	*token++
}

func (g *group) onJoinTimerLocked() {
	if g.state != statePreparingRebalance {
		return
	}
	if g.initialDelay && g.newMemberAdded && g.remainingDelay > 0 {
		d := min(g.ps.c.cfg.InitialRebalanceDelay, g.remainingDelay)
		g.newMemberAdded = false
		g.remainingDelay -= d
		g.scheduleJoinLocked(d)
		return
	}
	g.completeJoinLocked()
}

// tryCompleteJoinLocked completes the join phase early once every member
// rejoined and no KIP-394 member id is outstanding (DelayedJoin.tryComplete).
// The initial delay is always waited out.
func (g *group) tryCompleteJoinLocked() {
	if g.state != statePreparingRebalance || g.initialDelay || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.joinCh == nil {
			return
		}
	}
	g.completeJoinLocked()
}

// completeJoinLocked ends the join phase (GroupCoordinator.onCompleteJoin):
// members that did not rejoin are removed, the next generation starts, and
// every parked JoinGroup is answered — the leader with the member list.
func (g *group) completeJoinLocked() {
	g.stopJoinTimerLocked()
	g.initialDelay = false
	for _, m := range g.sortedMembersLocked() {
		if m.joinCh == nil {
			g.ps.c.log.Info("group: member did not rejoin in time", "group", g.id, "member", m.id)
			g.removeMemberLocked(m, kerr.UnknownMemberID)
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol = ""
		g.leader = ""
		g.setStateLocked(stateEmpty)
		g.ps.markDirtyLocked(g)
		return
	}
	if g.members[g.leader] == nil {
		g.leader = g.firstMemberLocked()
	}
	g.protocol = g.selectProtocolLocked()
	g.setStateLocked(stateCompletingRebalance)
	g.pendingSync = make(map[string]struct{}, len(g.members))
	now := time.Now()
	for _, m := range g.sortedMembersLocked() {
		g.pendingSync[m.id] = struct{}{}
		resp := g.joinResponseLocked(m)
		m.joinCh <- resp
		m.joinCh = nil
		g.touchLocked(m, now)
	}
	g.scheduleSyncTimerLocked(g.rebalanceTimeoutLocked())
}

// joinResponseLocked is m's JoinGroup answer for the current generation;
// the leader also gets every member's metadata for the chosen protocol.
func (g *group) joinResponseLocked(m *member) *kmsg.JoinGroupResponse {
	resp := g.joinGenerationLocked(m.id)
	if m.id == g.leader {
		for _, o := range g.sortedMembersLocked() {
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID = o.id
			jm.InstanceID = o.instanceID
			jm.ProtocolMetadata = o.metadataFor(g.protocol)
			resp.Members = append(resp.Members, jm)
		}
	}
	return resp
}

// joinGenerationLocked is a JoinGroup answer for memberID naming the current
// generation, without the member list.
func (g *group) joinGenerationLocked(memberID string) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Generation = g.generation
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType = &pt
	resp.Protocol = &p
	resp.LeaderID = g.leader
	resp.MemberID = memberID
	return resp
}

func (g *group) joinErrorResponse(memberID string, code *kerr.Error) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.ErrorCode = code.Code
	resp.Generation = -1
	resp.MemberID = memberID
	return resp
}

func syncErrorResponse(code *kerr.Error) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.ErrorCode = code.Code
	resp.MemberAssignment = []byte{}
	return resp
}

// selectProtocolLocked picks the protocol of the generation among those all
// members support: each member votes for its most preferred candidate and
// the most voted wins; ties go to the leader's preference
// (ClassicGroup.selectProtocol).
func (g *group) selectProtocolLocked() string {
	ms := g.sortedMembersLocked()
	if len(ms) == 0 {
		return ""
	}
	if l := g.members[g.leader]; l != nil {
		ms = append([]*member{l}, ms...)
	}
	supported := func(name string) bool {
		for _, m := range g.members {
			if !hasProtocol(m, name) {
				return false
			}
		}
		return true
	}
	var candidates []string
	for _, p := range ms[0].protocols {
		if supported(p.name) {
			candidates = append(candidates, p.name)
		}
	}
	if len(candidates) == 0 {
		return ms[0].protocols[0].name
	}
	votes := make(map[string]int)
	for _, m := range g.members {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.name) {
				votes[p.name]++
				break
			}
		}
	}
	best := candidates[0]
	for _, c := range candidates[1:] {
		if votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func hasProtocol(m *member, name string) bool {
	for _, p := range m.protocols {
		if p.name == name {
			return true
		}
	}
	return false
}

// supportsProtocolsLocked reports whether a member (other than self) with
// protocolType and ps may join: an Empty group takes any non-empty type with
// at least one protocol; otherwise the type must match and one of ps must be
// supported by every other member (ClassicGroup.supportsProtocols).
func (g *group) supportsProtocolsLocked(protocolType string, ps []kmsg.JoinGroupRequestProtocol, self string) bool {
	if protocolType == "" || len(ps) == 0 {
		return false
	}
	others := 0
	for id := range g.members {
		if id != self {
			others++
		}
	}
	if others == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range ps {
		ok := true
		for id, m := range g.members {
			if id != self && !hasProtocol(m, p.Name) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (g *group) scheduleSyncTimerLocked(d time.Duration) {
	g.stopSyncTimerLocked()
	tok := g.syncToken
	gen := g.generation
	g.syncTimer = g.ps.afterFunc(d, func() {
		if !g.alive() || g.syncToken != tok || g.generation != gen || len(g.pendingSync) == 0 {
			return
		}
		if g.state != stateCompletingRebalance && g.state != stateStable {
			return
		}
		for id := range g.pendingSync {
			if m := g.members[id]; m != nil {
				g.ps.c.log.Info("group: member did not sync in time", "group", g.id, "member", id)
				g.removeMemberLocked(m, kerr.UnknownMemberID)
			}
		}
		g.pendingSync = nil
		g.afterRemovalLocked()
	})
}

func (g *group) stopSyncTimerLocked() {
	stopTimer(&g.syncTimer, &g.syncToken)
	g.pendingSync = nil
}

// applySyncLocked ends a rebalance once the leader's assignment of gen is
// written (err nil): members get their assignment and the group is Stable.
// On a failed write the assignment is dropped, parked SyncGroups get the
// error and the group rebalances again.
func (g *group) applySyncLocked(gen int32, assignments map[string][]byte, err error) {
	if g.generation != gen || g.state != stateCompletingRebalance {
		return
	}
	if err != nil {
		code := g.ps.c.appendErrorCode(err)
		g.resetAssignmentsLocked(code)
		g.prepareRebalanceLocked()
		return
	}
	pt, p := g.protocolType, g.protocol
	for _, m := range g.members {
		m.assignment = assignments[m.id]
		if m.assignment == nil {
			m.assignment = []byte{}
		}
		if m.syncCh != nil {
			resp := kmsg.NewPtrSyncGroupResponse()
			resp.ProtocolType = &pt
			resp.Protocol = &p
			resp.MemberAssignment = m.assignment
			m.syncCh <- resp
			m.syncCh = nil
		}
	}
	g.setStateLocked(stateStable)
}

// metadataRecordLocked is the GroupMetadataValue record of the group, with
// assignments instead of the members' current ones when not nil.
func (g *group) metadataRecordLocked(assignments map[string][]byte) record.Record {
	val := kmsg.NewGroupMetadataValue()
	val.Version = groupValueVersion
	val.ProtocolType = g.protocolType
	val.Generation = g.generation
	if !g.stateTimestamp.IsZero() {
		val.CurrentStateTimestamp = g.stateTimestamp.UnixMilli()
	}
	if len(g.members) > 0 {
		p, l := g.protocol, g.leader
		val.Protocol = &p
		val.Leader = &l
	}
	for _, m := range g.sortedMembersLocked() {
		mm := kmsg.NewGroupMetadataValueMember()
		mm.MemberID = m.id
		mm.InstanceID = m.instanceID
		mm.ClientID = m.clientID
		mm.ClientHost = m.clientHost
		mm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		mm.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		mm.Subscription = m.metadataFor(g.protocol)
		if mm.Subscription == nil {
			mm.Subscription = []byte{}
		}
		mm.Assignment = m.assignment
		if assignments != nil {
			mm.Assignment = assignments[m.id]
		}
		if mm.Assignment == nil {
			mm.Assignment = []byte{}
		}
		val.Members = append(val.Members, mm)
	}
	return record.Record{Timestamp: g.ps.c.now().UnixMilli(), Key: groupKey(g.id), Value: val.AppendTo(nil)}
}

// stopLocked stops the group's timers and answers its parked requests
// (unload, close, deletion).
func (g *group) stopLocked(code *kerr.Error) {
	g.stopJoinTimerLocked()
	g.stopSyncTimerLocked()
	for id := range g.pending {
		g.removePendingLocked(id)
	}
	for _, m := range g.members {
		g.releaseMemberLocked(m, code)
	}
	g.state = stateDead
}
