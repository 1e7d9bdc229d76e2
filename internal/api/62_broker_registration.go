package api

// BrokerRegistration (key 62), versions 0-4; BrokerHeartbeat (key 63),
// versions 0-2; AllocateProducerIds (key 67), version 0;
// AssignReplicasToDirs (key 73), version 0.
//
// Controller RPCs: a broker registers with the active controller (its
// listeners, rack, incarnation id), heartbeats every
// broker.heartbeat.interval.ms (a broker silent for
// broker.session.timeout.ms is fenced; WantShutdown is a controlled
// shutdown) and asks for blocks of producer ids. Served by the node's own
// controller (internal/controller, brokers.go): NOT_CONTROLLER on a node
// without the controller role or that is not the active controller;
// brokers find the active one among controller.quorum.voters
// (internal/interbroker).
//
// A heartbeat's OfflineLogDirs (v1+) and AssignReplicasToDirs report a
// failed log dir: the controller moves the leaderships and ISR
// memberships of the broker's replicas in it (controller/logdirs.go).
//
// Differences from Kafka: features, the registration's log dirs and the
// ZooKeeper migration fields are ignored; AssignReplicasToDirs is sent
// only for the replicas of failed dirs (Kafka sends every assignment); a registration is committed unfenced (Kafka
// registers fenced and unfences on the first caught-up heartbeat), since
// a broker registers only once it has followed the metadata quorum.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) brokerRegistration(ctx context.Context, _ *network.Conn, req *kmsg.BrokerRegistrationRequest) (kmsg.Response, error) {
	if h.d.LocalController == nil {
		resp := req.ResponseKind().(*kmsg.BrokerRegistrationResponse)
		resp.ErrorCode, resp.BrokerEpoch = kerr.NotController.Code, -1
		return resp, nil
	}
	return h.d.LocalController.BrokerRegistration(ctx, req), nil
}

func (h *Handler) brokerHeartbeat(ctx context.Context, _ *network.Conn, req *kmsg.BrokerHeartbeatRequest) (kmsg.Response, error) {
	if h.d.LocalController == nil {
		resp := req.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
		resp.ErrorCode, resp.IsFenced = kerr.NotController.Code, true
		return resp, nil
	}
	return h.d.LocalController.BrokerHeartbeat(ctx, req), nil
}

func (h *Handler) allocateProducerIDs(ctx context.Context, _ *network.Conn, req *kmsg.AllocateProducerIDsRequest) (kmsg.Response, error) {
	if h.d.LocalController == nil {
		resp := req.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
		resp.ErrorCode = kerr.NotController.Code
		return resp, nil
	}
	return h.d.LocalController.AllocateProducerIDsBlock(ctx, req), nil
}

// assignReplicasToDirs (key 73, v0, KIP-858): a broker tells the
// controller which log dir each listed replica is in; it sends the
// replicas of a failed log dir, whose leaderships and ISR memberships the
// controller then moves (controller/logdirs.go).
func (h *Handler) assignReplicasToDirs(ctx context.Context, _ *network.Conn, req *kmsg.AssignReplicasToDirsRequest) (kmsg.Response, error) {
	if h.d.LocalController == nil {
		resp := req.ResponseKind().(*kmsg.AssignReplicasToDirsResponse)
		resp.ErrorCode = kerr.NotController.Code
		return resp, nil
	}
	return h.d.LocalController.AssignReplicasToDirs(ctx, req), nil
}
