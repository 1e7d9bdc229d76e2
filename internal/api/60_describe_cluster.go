package api

// DescribeCluster (key 60), versions 0-2.
//
// Answers the cluster id, the controller id (the active controller when
// it is a live broker, else a live broker that forwards admin requests to
// it, as in Kafka) and the brokers with their
// endpoint on the listener the request came in on; fenced brokers only
// when IncludeFencedBrokers (v2+) is set, marked IsFenced.
//
// EndpointType 2 (controllers, KIP-919, asked on the controller listener
// by KRaft tools such as kafka-metadata-quorum --bootstrap-controller)
// answers the quorum's voters (controller.quorum.voters) with the raft
// leader as controller id; on a broker listener it answers
// UNSUPPORTED_ENDPOINT_TYPE, as Kafka's brokers do.
//
// Differences from Kafka:
// Authorized operations are not computed (no ACLs): the "not requested"
// value -2147483648 is returned.
//
// Versions: v0 flexible (KIP-700); v1 endpoint type (KIP-919); v2 fenced
// brokers (KIP-1073).

import (
	"context"
	"maps"
	"net"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

// endpointTypeBrokers and endpointTypeControllers are DescribeCluster's
// EndpointType values.
const (
	endpointTypeBrokers     = 1
	endpointTypeControllers = 2
)

func (h *Handler) describeCluster(ctx context.Context, c *network.Conn, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = req.EndpointType
	resp.ClusterAuthorizedOperations = -2147483648
	if req.Version >= 1 && req.EndpointType == endpointTypeControllers && ctx.Value(onControllerListener{}) != nil && len(h.d.Voters) > 0 {
		// KIP-919: asked on a controller listener, the controllers are
		// the quorum's voters and the controller id the raft leader.
		resp.ClusterID = h.d.ClusterID
		resp.ControllerID = h.image().ControllerID
		for _, id := range slices.Sorted(maps.Keys(h.d.Voters)) {
			host, port, err := net.SplitHostPort(h.d.Voters[id])
			pn, perr := strconv.Atoi(port)
			if err != nil || perr != nil {
				continue
			}
			rb := kmsg.NewDescribeClusterResponseBroker()
			rb.NodeID, rb.Host, rb.Port = id, host, int32(pn)
			resp.Brokers = append(resp.Brokers, rb)
		}
		return resp, nil
	}
	if req.Version >= 1 && req.EndpointType != endpointTypeBrokers {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		msg := "samsa: controller endpoints (EndpointType 2) are described on a controller listener only"
		resp.ErrorMessage = &msg
		return resp, nil
	}
	im := h.image()
	resp.ClusterID = h.d.ClusterID
	resp.ControllerID = h.clientControllerID(im, c.Listener())
	for _, b := range brokersOn(im, c.Listener(), req.IncludeFencedBrokers) {
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.Rack, rb.IsFenced = b.id, b.host, b.port, b.rack, b.fenced
		resp.Brokers = append(resp.Brokers, rb)
	}
	return resp, nil
}
