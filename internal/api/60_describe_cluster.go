package api

// DescribeCluster (key 60), versions 0-2.
//
// Answers the cluster id, the controller id and the brokers with their
// endpoint on the listener the request came in on; fenced brokers only
// when IncludeFencedBrokers (v2+) is set, marked IsFenced.
//
// Differences from Kafka: EndpointType 2 (controllers, KIP-919, asked on
// the controller listener by KRaft tools) answers UNSUPPORTED_ENDPOINT_TYPE
// until the controller quorum is reachable through its own listener.
// Authorized operations are not computed (no ACLs): the "not requested"
// value -2147483648 is returned.
//
// Versions: v0 flexible (KIP-700); v1 endpoint type (KIP-919); v2 fenced
// brokers (KIP-1073).

import (
	"context"

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

func (h *Handler) describeCluster(_ context.Context, c *network.Conn, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = req.EndpointType
	resp.ClusterAuthorizedOperations = -2147483648
	if req.Version >= 1 && req.EndpointType != endpointTypeBrokers {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		msg := "samsa: only broker endpoints (EndpointType 1) are described"
		resp.ErrorMessage = &msg
		return resp, nil
	}
	im := h.image()
	resp.ClusterID = h.d.ClusterID
	resp.ControllerID = im.ControllerID
	for _, b := range brokersOn(im, c.Listener(), req.IncludeFencedBrokers) {
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.Rack, rb.IsFenced = b.id, b.host, b.port, b.rack, b.fenced
		resp.Brokers = append(resp.Brokers, rb)
	}
	return resp, nil
}
