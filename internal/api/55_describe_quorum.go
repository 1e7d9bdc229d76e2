package api

// DescribeQuorum (key 55), versions 0-2.
//
// Describes the metadata quorum (topic __cluster_metadata, partition 0):
// the raft leader and its term (LeaderEpoch), the high watermark (the
// commit index), and per voter and observer (learner) the last log offset
// known on it and, v1+, when the leader last heard from it and when it
// was last caught up (-1 when unknown). Only the leader knows its peers'
// progress, so, as in Kafka (brokers forward DescribeQuorum to the
// controller), a node that does not lead the quorum forwards the request
// to the active controller; a request that arrives on a controller
// listener is answered there, NOT_LEADER_OR_FOLLOWER when that node does
// not lead. v2 Nodes lists the voters' controller listener addresses
// (controller.quorum.voters).
//
// Differences from Kafka: raft offsets are entry indexes (one entry per
// committed change), not record offsets; ReplicaDirectoryID is zero.

import (
	"context"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
	"samsa/internal/raft"
)

// metadataTopic is the metadata quorum's topic name.
const metadataTopicName = "__cluster_metadata"

func (h *Handler) describeQuorum(ctx context.Context, _ *network.Conn, req *kmsg.DescribeQuorumRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
	var st raft.Status
	var err error
	if h.d.QuorumStatus != nil {
		st, err = h.d.QuorumStatus(ctx)
	}
	leads := h.d.QuorumStatus != nil && err == nil && st.LeaderID == st.NodeID && st.LeaderID >= 0
	if !leads && ctx.Value(onControllerListener{}) == nil && h.d.ForwardToController != nil {
		version := req.Version
		r, ferr := h.d.ForwardToController(ctx, req, func(r kmsg.Response) bool {
			dr := r.(*kmsg.DescribeQuorumResponse)
			return dr.ErrorCode == kerr.NotController.Code || len(dr.Topics) == 1 && len(dr.Topics[0].Partitions) == 1 &&
				dr.Topics[0].Partitions[0].ErrorCode == kerr.NotLeaderForPartition.Code
		})
		req.Version = version
		if ferr == nil {
			r.SetVersion(version)
			return r, nil
		}
		h.logger.Debug("describe quorum: forward", "err", ferr)
	}
	for _, rt := range req.Topics {
		t := kmsg.NewDescribeQuorumResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewDescribeQuorumResponseTopicPartition()
			p.Partition = rp.Partition
			switch {
			case rt.Topic != metadataTopicName || rp.Partition != 0:
				p.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case !leads:
				p.ErrorCode = kerr.NotLeaderForPartition.Code
				p.LeaderID, p.LeaderEpoch, p.HighWatermark = -1, -1, -1
				if err == nil && h.d.QuorumStatus != nil {
					p.LeaderID, p.LeaderEpoch = st.LeaderID, int32(st.Term)
				}
			default:
				p.LeaderID, p.LeaderEpoch, p.HighWatermark = st.LeaderID, int32(st.Term), int64(st.HighWatermark)
				p.CurrentVoters = replicaStates(st.Voters)
				p.Observers = replicaStates(st.Learners)
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	if req.Version >= 2 && leads && h.d.Config != nil {
		name := "CONTROLLER"
		if len(h.d.Config.ControllerListenerNames) > 0 {
			name = h.d.Config.ControllerListenerNames[0]
		}
		for _, v := range st.Voters {
			addr, ok := h.d.Config.Cluster.Voters[v.NodeID]
			if !ok {
				continue
			}
			host, port, _ := net.SplitHostPort(addr)
			pn, _ := strconv.Atoi(port)
			n := kmsg.NewDescribeQuorumResponseNode()
			n.NodeID = v.NodeID
			l := kmsg.NewDescribeQuorumResponseNodeListener()
			l.Name, l.Host, l.Port = name, host, uint16(pn)
			n.Listeners = append(n.Listeners, l)
			resp.Nodes = append(resp.Nodes, n)
		}
	}
	return resp, nil
}

func replicaStates(rs []raft.ReplicaStatus) []kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
	out := make([]kmsg.DescribeQuorumResponseTopicPartitionReplicaState, 0, len(rs))
	ms := func(ts interface {
		IsZero() bool
		UnixMilli() int64
	}) int64 {
		if ts.IsZero() {
			return -1
		}
		return ts.UnixMilli()
	}
	for _, r := range rs {
		s := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		s.ReplicaID, s.LogEndOffset = r.NodeID, r.LogEndOffset
		s.LastFetchTimestamp, s.LastCaughtUpTimestamp = ms(r.LastFetch), ms(r.LastCaughtUp)
		out = append(out, s)
	}
	return out
}
