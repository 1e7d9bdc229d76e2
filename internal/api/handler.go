// Package api serves Kafka requests: one file per API key, named like
// franz-go's kfake (00_produce.go, 01_fetch.go, ...), each opening with the
// versions served and where Samsa differs from Kafka. errors.go is the one
// place that maps Go errors to Kafka error codes.
//
// The Handler plugs into internal/network: it tells the network layer the
// versions it serves (VersionRange, also what ApiVersions advertises) and
// which requests may park (MayWait: long-poll fetches, JoinGroup and
// SyncGroup).
package api

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/config"
	"samsa/internal/controller"
	"samsa/internal/group"
	"samsa/internal/metadata"
	"samsa/internal/network"
	"samsa/internal/raft"
	"samsa/internal/replica"
	"samsa/internal/txn"
)

// Controller is how handlers change cluster metadata: the local
// controller (*controller.Controller) when this node is the active one,
// or a client that forwards to the active controller over the
// inter-broker listener (internal/interbroker). Both answer Kafka error
// codes, NOT_CONTROLLER included when the quorum has no active
// controller.
type Controller interface {
	CreateTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse
	DeleteTopics(ctx context.Context, req *kmsg.DeleteTopicsRequest) *kmsg.DeleteTopicsResponse
	CreatePartitions(ctx context.Context, req *kmsg.CreatePartitionsRequest) *kmsg.CreatePartitionsResponse
	AlterConfigs(ctx context.Context, req *kmsg.AlterConfigsRequest) *kmsg.AlterConfigsResponse
	IncrementalAlterConfigs(ctx context.Context, req *kmsg.IncrementalAlterConfigsRequest) *kmsg.IncrementalAlterConfigsResponse
	// AutoCreateTopics creates topics with the broker defaults and
	// returns each one's error code.
	AutoCreateTopics(ctx context.Context, topics []string) map[string]int16
	// AllocateProducerID returns a producer id never handed out before.
	AllocateProducerID(ctx context.Context) (int64, error)
	// CreateInternalTopic creates an internal topic unless it exists.
	CreateInternalTopic(ctx context.Context, name string, partitions int32, rf int16, configs map[string]string) error
	ElectLeaders(ctx context.Context, req *kmsg.ElectLeadersRequest) *kmsg.ElectLeadersResponse
	// AlterPartitionReassignments starts or cancels replica moves.
	AlterPartitionReassignments(ctx context.Context, req *kmsg.AlterPartitionAssignmentsRequest) *kmsg.AlterPartitionAssignmentsResponse
	// UnregisterBroker removes a stopped broker's registration.
	UnregisterBroker(ctx context.Context, req *kmsg.UnregisterBrokerRequest) *kmsg.UnregisterBrokerResponse
}

var _ LocalController = (*controller.Controller)(nil)

// LocalController is the controller of this node (controller role).
type LocalController interface {
	Controller
	BrokerRegistration(ctx context.Context, req *kmsg.BrokerRegistrationRequest) *kmsg.BrokerRegistrationResponse
	BrokerHeartbeat(ctx context.Context, req *kmsg.BrokerHeartbeatRequest) *kmsg.BrokerHeartbeatResponse
	AllocateProducerIDsBlock(ctx context.Context, req *kmsg.AllocateProducerIDsRequest) *kmsg.AllocateProducerIDsResponse
	AlterPartition(ctx context.Context, req *kmsg.AlterPartitionRequest) *kmsg.AlterPartitionResponse
	AssignReplicasToDirs(ctx context.Context, req *kmsg.AssignReplicasToDirsRequest) *kmsg.AssignReplicasToDirsResponse
}

// onControllerListener marks the context of a request that arrived on a
// controller listener.
type onControllerListener struct{}

// ctrl is the controller a request's admin operations go to: the local
// one for requests on a controller listener (a forwarded request is
// never forwarded again; not active: NOT_CONTROLLER), else Deps.Controller.
func (h *Handler) ctrl(ctx context.Context) Controller {
	if ctx.Value(onControllerListener{}) != nil && h.d.LocalController != nil {
		return h.d.LocalController
	}
	return h.d.Controller
}

// Deps are the components the handlers use.
type Deps struct {
	Config     *config.Config
	ClusterID  string
	NodeID     int32
	Controller Controller
	// LocalController is this node's own controller, nil on a
	// broker-only node. It serves the controller RPCs (BrokerRegistration,
	// BrokerHeartbeat, AllocateProducerIds) and every admin request that
	// arrives on a controller listener (forwarded ones: never forwarded
	// again).
	LocalController LocalController
	// Voters are the metadata quorum's voters, id -> controller listener
	// address (DescribeCluster EndpointType 2).
	Voters map[int32]string
	// QuorumStatus reports the metadata quorum's raft status
	// (DescribeQuorum); nil: DescribeQuorum answers NOT_LEADER_OR_FOLLOWER.
	QuorumStatus func(ctx context.Context) (raft.Status, error)
	// ForwardToController sends a request to the active controller
	// (interbroker.Controllers.Do); notController tells a response of a
	// node that is not it. nil: nothing is forwarded.
	ForwardToController func(ctx context.Context, req kmsg.Request, notController func(kmsg.Response) bool) (kmsg.Response, error)
	// VerifyTxnRemote checks that a partition is in an ongoing
	// transaction whose coordinator is another broker (KIP-890
	// verification over the inter-broker listener); nil: only the local
	// coordinator is asked.
	VerifyTxnRemote func(ctx context.Context, id string, pid int64, epoch int16, tp txn.TopicPartition) *kerr.Error
	// LocalMarkers writes transaction markers to this broker's
	// partitions (WriteTxnMarkers).
	LocalMarkers txn.MarkerWriter
	// Metadata publishes the metadata image this node has applied; every
	// handler reads the cluster's state from it.
	Metadata *metadata.Publisher
	Replicas *replica.Manager
	Groups   *group.Coordinator
	Txns     *txn.Coordinator // nil: transactional requests answer COORDINATOR_NOT_AVAILABLE
	Logger   *slog.Logger     // nil: slog.Default()
}

// Handler serves every API key listed in apiVersionsServed. It is safe for
// concurrent use; its only state of its own is the fetch session cache.
type Handler struct {
	d        Deps
	logger   *slog.Logger
	sessions *fetchSessions // KIP-227 fetch sessions (fetch_session.go)
}

// New returns a Handler over d.
func New(d Deps) *Handler {
	logger := d.Logger
	if logger == nil {
		logger = slog.Default()
	}
	slots, eviction := defaultFetchSessionSlots, defaultFetchSessionEviction
	if d.Config != nil {
		slots, eviction = d.Config.FetchSessionCacheSlots, d.Config.FetchSessionEviction
	}
	return &Handler{d: d, logger: logger, sessions: newFetchSessions(slots, eviction)}
}

var (
	_ network.Handler  = (*Handler)(nil)
	_ network.Versions = (*Handler)(nil)
	_ network.Waiter   = (*Handler)(nil)
)

// image is the latest metadata image published on this node.
func (h *Handler) image() *metadata.Image { return h.d.Metadata.Image() }

// Handle serves one request (network.Handler).
func (h *Handler) Handle(ctx context.Context, c *network.Conn, req kmsg.Request) (kmsg.Response, error) {
	if c != nil && h.d.Config != nil && h.d.Config.IsControllerListener(c.Listener()) {
		ctx = context.WithValue(ctx, onControllerListener{}, true)
	}
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		return h.produce(ctx, c, r)
	case *kmsg.FetchRequest:
		return h.fetch(ctx, c, r)
	case *kmsg.ListOffsetsRequest:
		return h.listOffsets(ctx, c, r)
	case *kmsg.MetadataRequest:
		return h.metadata(ctx, c, r)
	case *kmsg.FindCoordinatorRequest:
		return h.findCoordinator(ctx, c, r)
	case *kmsg.ApiVersionsRequest:
		return h.apiVersions(ctx, c, r)
	case *kmsg.CreateTopicsRequest:
		return h.createTopics(ctx, c, r)
	case *kmsg.DeleteTopicsRequest:
		return h.deleteTopics(ctx, c, r)
	case *kmsg.DeleteRecordsRequest:
		return h.deleteRecords(ctx, c, r)
	case *kmsg.InitProducerIDRequest:
		return h.initProducerID(ctx, c, r)
	case *kmsg.OffsetForLeaderEpochRequest:
		return h.offsetForLeaderEpoch(ctx, c, r)
	case *kmsg.DescribeConfigsRequest:
		return h.describeConfigs(ctx, c, r)
	case *kmsg.AlterConfigsRequest:
		return h.alterConfigs(ctx, c, r)
	case *kmsg.IncrementalAlterConfigsRequest:
		return h.incrementalAlterConfigs(ctx, c, r)
	case *kmsg.CreatePartitionsRequest:
		return h.createPartitions(ctx, c, r)
	case *kmsg.ElectLeadersRequest:
		return h.electLeaders(ctx, c, r)
	case *kmsg.AlterReplicaLogDirsRequest:
		return h.alterReplicaLogDirs(ctx, c, r)
	case *kmsg.DescribeLogDirsRequest:
		return h.describeLogDirs(ctx, c, r)
	case *kmsg.AlterPartitionAssignmentsRequest:
		return h.alterPartitionReassignments(ctx, c, r)
	case *kmsg.ListPartitionReassignmentsRequest:
		return h.listPartitionReassignments(ctx, c, r)
	case *kmsg.DescribeClusterRequest:
		return h.describeCluster(ctx, c, r)
	case *kmsg.UnregisterBrokerRequest:
		return h.unregisterBroker(ctx, c, r)
	case *kmsg.OffsetCommitRequest:
		return h.offsetCommit(ctx, c, r)
	case *kmsg.OffsetFetchRequest:
		return h.offsetFetch(ctx, c, r)
	case *kmsg.JoinGroupRequest:
		return h.joinGroup(ctx, c, r)
	case *kmsg.HeartbeatRequest:
		return h.heartbeat(ctx, c, r)
	case *kmsg.LeaveGroupRequest:
		return h.leaveGroup(ctx, c, r)
	case *kmsg.SyncGroupRequest:
		return h.syncGroup(ctx, c, r)
	case *kmsg.DescribeGroupsRequest:
		return h.describeGroups(ctx, c, r)
	case *kmsg.ListGroupsRequest:
		return h.listGroups(ctx, c, r)
	case *kmsg.DeleteGroupsRequest:
		return h.deleteGroups(ctx, c, r)
	case *kmsg.OffsetDeleteRequest:
		return h.offsetDelete(ctx, c, r)
	case *kmsg.TxnOffsetCommitRequest:
		return h.txnOffsetCommit(ctx, c, r)
	case *kmsg.AddPartitionsToTxnRequest:
		return h.addPartitionsToTxn(ctx, c, r)
	case *kmsg.AddOffsetsToTxnRequest:
		return h.addOffsetsToTxn(ctx, c, r)
	case *kmsg.EndTxnRequest:
		return h.endTxn(ctx, c, r)
	case *kmsg.WriteTxnMarkersRequest:
		return h.writeTxnMarkers(ctx, c, r)
	case *kmsg.DescribeProducersRequest:
		return h.describeProducers(ctx, c, r)
	case *kmsg.DescribeTransactionsRequest:
		return h.describeTransactions(ctx, c, r)
	case *kmsg.ListTransactionsRequest:
		return h.listTransactions(ctx, c, r)
	case *kmsg.DescribeQuorumRequest:
		return h.describeQuorum(ctx, c, r)
	case *kmsg.BrokerRegistrationRequest:
		return h.brokerRegistration(ctx, c, r)
	case *kmsg.BrokerHeartbeatRequest:
		return h.brokerHeartbeat(ctx, c, r)
	case *kmsg.AllocateProducerIDsRequest:
		return h.allocateProducerIDs(ctx, c, r)
	case *kmsg.AlterPartitionRequest:
		return h.alterPartition(ctx, c, r)
	case *kmsg.AssignReplicasToDirsRequest:
		return h.assignReplicasToDirs(ctx, c, r)
	}
	// network only passes keys VersionRange admits, so this is a bug.
	return nil, fmt.Errorf("api: no handler for %s", kmsg.NameForKey(req.Key()))
}

// MayWait reports whether serving req may park (network.Waiter): a fetch
// that waits for data, a JoinGroup waiting for the rebalance, a SyncGroup
// waiting for the leader's assignment.
func (h *Handler) MayWait(req kmsg.Request) bool {
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		return r.MaxWaitMillis > 0 && r.MinBytes > 0
	case *kmsg.JoinGroupRequest, *kmsg.SyncGroupRequest:
		return true
	}
	return false
}

// FrameFree reports the requests whose frame the network layer may reuse
// once Handle returned (network.FrameKeeper): Produce, whose records are
// copied into the log (or recompressed into new memory) and never kept.
// Any change that keeps a Produce request's bytes past its handler (a
// cache of recent batches, a wait that outlives Handle) must copy them or
// drop Produce from this list.
func (h *Handler) FrameFree(req kmsg.Request) bool {
	_, ok := req.(*kmsg.ProduceRequest)
	return ok
}

// VersionRange reports the versions of key served (network.Versions).
func (h *Handler) VersionRange(key int16) (minVersion, maxVersion int16, ok bool) {
	return servedRange(key)
}
