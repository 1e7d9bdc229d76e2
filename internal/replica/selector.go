package replica

import (
	"slices"
	"sync/atomic"

	"samsa/internal/config"
	"samsa/internal/metadata"
)

// This file is follower fetching (KIP-392) on the leader's side: the
// replica selector (replica.selector.class) that names a consumer's
// preferred read replica, as Kafka's RackAwareReplicaSelector and
// ReplicaManager.findPreferredReadReplica do. The follower's side (a
// follower serving a consumer's read up to its own high watermark) is in
// Partition.Fetch.

// readSelector is the manager's replica selector and its counter of
// follower-served consumer reads. Set by New; the counter is the only
// mutable part.
type readSelector struct {
	// rackAware is replica.selector.class =
	// config.RackAwareReplicaSelector; false: leader only (Kafka's
	// default, no selector).
	rackAware bool
	// followerReads counts the consumer reads this broker served as a
	// follower (Fetch with replica id -1 on a partition it does not
	// lead), records or not.
	followerReads atomic.Int64
}

// newReadSelector reads replica.selector.class from cfg (validated by
// internal/config; nil cfg: none).
func newReadSelector(cfg *config.Config) *readSelector {
	return &readSelector{rackAware: cfg != nil && cfg.Cluster.ReplicaSelector == config.RackAwareReplicaSelector}
}

// FollowerReads is the number of consumer fetches of a partition this
// broker served as a follower (KIP-392), since start.
func (m *Manager) FollowerReads() int64 { return m.sel.followerReads.Load() }

// replicaView is one replica as the selector sees it (Kafka's
// ReplicaView): its broker, rack, log end offset and how long ago it was
// last caught up with the leader (0 for the leader).
type replicaView struct {
	id              int32
	rack            string // "" when unset or the broker is not reachable
	reachable       bool   // unfenced, with an endpoint on the client's listener
	logEndOffset    int64
	sinceCaughtUpMs int64 // ms
}

// betterView orders candidates as Kafka's ReplicaView.comparator, taking
// its maximum: the larger log end offset, then the more recently caught
// up, then the larger broker id.
func betterView(a, b replicaView) bool {
	if a.logEndOffset != b.logEndOffset {
		return a.logEndOffset > b.logEndOffset
	}
	if a.sinceCaughtUpMs != b.sinceCaughtUpMs {
		return a.sinceCaughtUpMs < b.sinceCaughtUpMs
	}
	return a.id > b.id
}

// selectRackAware is Kafka's RackAwareReplicaSelector.select: no client
// rack, or no replica in it, selects the leader; the leader when it is in
// the client's rack; otherwise the best (betterView) replica there.
// views hold the leader and the eligible followers; a view that is not
// reachable has no rack (Kafka's Node.noNode()) and never matches. It
// returns the selected broker id.
func selectRackAware(clientRack string, leader replicaView, views []replicaView) int32 {
	if clientRack == "" {
		return leader.id
	}
	var best *replicaView
	for i := range views {
		v := &views[i]
		if !v.reachable || v.rack != clientRack {
			continue
		}
		if v.id == leader.id {
			return leader.id
		}
		if best == nil || betterView(*v, *best) {
			best = v
		}
	}
	if best == nil {
		return leader.id
	}
	return best.id
}

// preferredReadReplica is Kafka's findPreferredReadReplica for a
// consumer's fetch at fetchOffset on this leader: -1 (read here) unless
// the rack-aware selector picks a follower. Candidates are the followers
// in the committed ISR whose last fetch showed fetchOffset in their log
// (log start <= fetchOffset <= log end); a replica's broker must be in
// the image, unfenced and have an endpoint on listener (the client's;
// "" matches any), else it has no rack. Brokers' racks are broker.rack
// from the image. Caller holds roleMu (read); takes mu.
func (p *Partition) preferredReadReplica(clientRack, listener string, fetchOffset, nowMs int64) int32 {
	if !p.m.sel.rackAware || clientRack == "" {
		return -1
	}
	im := p.m.published.Load()
	self := p.m.nodeID
	view := func(id int32, leo, since int64) replicaView {
		v := replicaView{id: id, logEndOffset: leo, sinceCaughtUpMs: since}
		if b, ok := im.Brokers[id]; ok && !b.Fenced && hasListener(b, listener) {
			v.reachable, v.rack = true, b.Rack
		}
		return v
	}
	leader := view(self, p.log.LogEndOffset(), 0)
	views := []replicaView{leader}
	p.mu.Lock()
	for id, f := range p.mu.followers {
		if !slices.Contains(p.mu.isr, id) || f.logEndOffset < fetchOffset || f.logStartOffset > fetchOffset {
			continue
		}
		views = append(views, view(id, f.logEndOffset, nowMs-f.lastCaughtUpTimeMs))
	}
	p.mu.Unlock()
	if id := selectRackAware(clientRack, leader, views); id != self {
		return id
	}
	return -1
}

// hasListener reports whether b advertises an endpoint on listener ("":
// any).
func hasListener(b metadata.Broker, listener string) bool {
	return listener == "" || b.Addr(listener) != ""
}
