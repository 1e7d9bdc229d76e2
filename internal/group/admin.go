package group

import (
	"context"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/coordinator"
	"samsa/internal/record"
)

// Group administration: ListGroups (key 16, v0-v5), DescribeGroups (key
// 15, v0-v6) and DeleteGroups (key 42, v0-v3).

// groupType is the KIP-848 group type every group here has (ListGroups v5).
const groupType = "classic"

// groupAuthorizedOperations is the KIP-430 bit field DescribeGroups
// answers when asked: READ, DELETE and DESCRIBE (there are no ACLs).
const groupAuthorizedOperations = 1<<3 | 1<<6 | 1<<8

// partitionsSnapshot returns the partitions currently coordinated here,
// sorted.
func (c *Coordinator) partitionsSnapshot() []*partition {
	return c.parts.All()
}

// ListGroups serves ListGroups v0-v5: every group coordinated here, with
// the v4 state filter and the v5 type filter (case-insensitive). While a
// partition is still loading the answer is COORDINATOR_LOAD_IN_PROGRESS
// with the groups known so far.
func (c *Coordinator) ListGroups(_ context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	resp.Version = req.Version
	matches := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	var states, types []string
	if req.Version >= 4 {
		states = req.StatesFilter
	}
	if req.Version >= 5 {
		types = req.TypesFilter
	}
	for _, ps := range c.partitionsSnapshot() {
		ps.mu.Lock()
		if ps.state == coordinator.Loading {
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		}
		if ps.state == coordinator.Loaded {
			for _, g := range ps.groups {
				state := g.state.String()
				if !matches(states, state) || !matches(types, groupType) {
					continue
				}
				lg := kmsg.NewListGroupsResponseGroup()
				lg.Group = g.id
				lg.ProtocolType = g.protocolType
				lg.GroupState = state
				lg.GroupType = groupType
				resp.Groups = append(resp.Groups, lg)
			}
		}
		ps.mu.Unlock()
	}
	sort.Slice(resp.Groups, func(i, j int) bool { return resp.Groups[i].Group < resp.Groups[j].Group })
	return resp
}

// DescribeGroups serves DescribeGroups v0-v6. A group that does not exist
// is described as Dead (v6+: with GROUP_ID_NOT_FOUND, KIP-1043). Member
// metadata and assignments are shown only while the group is Stable, and
// the protocol only then, as in Kafka.
func (c *Coordinator) DescribeGroups(_ context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	resp.Version = req.Version
	answered := make(map[string]bool, len(req.Groups))
	for _, id := range req.Groups {
		// A group listed more than once is answered once: a description
		// carries every member's metadata and assignment, so repeats
		// would multiply a small request into a huge response.
		if answered[id] {
			continue
		}
		answered[id] = true
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		c.describeGroup(id, &dg)
		if req.IncludeAuthorizedOperations && dg.ErrorCode == 0 {
			dg.AuthorizedOperations = groupAuthorizedOperations
		}
		if req.Version < 6 && dg.ErrorCode == kerr.GroupIDNotFound.Code {
			dg.ErrorCode = 0
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (c *Coordinator) describeGroup(id string, dg *kmsg.DescribeGroupsResponseGroup) {
	ps, code := c.lookup(id)
	if code != nil {
		dg.ErrorCode = code.Code
		return
	}
	defer ps.mu.Unlock()
	g := ps.groups[id]
	if g == nil {
		dg.State = stateDead.String()
		dg.ErrorCode = kerr.GroupIDNotFound.Code
		return
	}
	dg.State = g.state.String()
	dg.ProtocolType = g.protocolType
	if g.state == stateStable {
		dg.Protocol = g.protocol
	}
	for _, m := range g.sortedMembersLocked() {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		dm.ProtocolMetadata = []byte{}
		dm.MemberAssignment = []byte{}
		if g.state == stateStable {
			if md := m.metadataFor(g.protocol); md != nil {
				dm.ProtocolMetadata = md
			}
			if m.assignment != nil {
				dm.MemberAssignment = m.assignment
			}
		}
		dg.Members = append(dg.Members, dm)
	}
}

// DeleteGroups serves DeleteGroups v0-v3: an Empty group is deleted with
// tombstones for its metadata and every committed or pending
// (transactional) offset, written (one
// batch per __consumer_offsets partition) before the answer. A group with
// members answers NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.Version = req.Version
	codes := make([]*kerr.Error, len(req.Groups))
	byPart := make(map[*partition][]int)
	for i, id := range req.Groups {
		ps, code := c.partitionOf(id)
		if code != nil {
			codes[i] = code
			continue
		}
		byPart[ps] = append(byPart[ps], i)
	}
	for ps, idx := range byPart {
		c.deleteGroups(ctx, ps, req.Groups, idx, codes)
	}
	for i, id := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		if codes[i] != nil {
			rg.ErrorCode = codes[i].Code
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// deleteGroups deletes the groups ids[idx...] of one partition.
func (c *Coordinator) deleteGroups(ctx context.Context, ps *partition, ids []string, idx []int, codes []*kerr.Error) {
	if code := ps.beginWrite(ctx); code != nil {
		for _, i := range idx {
			codes[i] = code
		}
		return
	}
	now := c.now()
	var recs []record.Record
	var doomed []int
	seen := make(map[string]bool)
	for _, i := range idx {
		id := ids[i]
		g := ps.groups[id]
		switch {
		case g == nil:
			codes[i] = kerr.GroupIDNotFound
			continue
		case g.state != stateEmpty:
			codes[i] = kerr.NonEmptyGroup
			continue
		}
		doomed = append(doomed, i)
		if seen[id] {
			continue
		}
		seen[id] = true
		for _, tp := range sortedTopicPartitions(g.offsets) {
			recs = append(recs, offsetTombstone(id, tp, now))
		}
		// Offsets of open transactions get tombstones too, so that the
		// replay drops them (OffsetMetadataManager.deleteAllOffsets).
		for _, tp := range sortedTopicPartitions(g.txnOnlyTopicPartitionsLocked()) {
			recs = append(recs, offsetTombstone(id, tp, now))
		}
		recs = append(recs, groupTombstone(id, now))
	}
	if len(doomed) == 0 {
		ps.unlockWrite()
		ps.mu.Unlock()
		return
	}
	ps.mu.Unlock()
	err := ps.appendRecords(ctx, recs)
	ps.mu.Lock()
	if err == nil && ps.state != coordinator.Loaded {
		err = errNotCoordinator
	}
	if err != nil {
		code := c.appendErrorCode(err)
		for _, i := range doomed {
			codes[i] = code
		}
	} else {
		for _, i := range doomed {
			if g := ps.groups[ids[i]]; g != nil {
				ps.removeGroupLocked(g)
			}
		}
	}
	ps.unlockWrite()
	ps.unlock()
}
