package api

// UnregisterBroker (key 64), version 0.
//
// Delegated to the active controller (forwarded from any broker, as
// Kafka 4's KafkaApis forwards it), which removes the broker's
// registration (internal/controller/unregister.go): it leaves every ISR
// (the last member of one stays), the partitions it led get a new leader
// from their ISR, and an UnregisterBrokerRecord drops it from the
// metadata; the partitions that list it keep it as an offline replica
// until reassigned. BROKER_ID_NOT_REGISTERED for an unknown id, as
// Kafka. The answer comes once the change is in the metadata of the
// broker that answers (a forwarding broker waits for it, bounded; the
// broker's own 30 s bound: the request has no timeout field), so a
// Metadata sent there next no longer lists the broker.
//
// Differences from Kafka: a broker that is still active (unfenced, in
// controlled shutdown, or fenced but heartbeating) is refused with
// INVALID_REQUEST and a message (Kafka unregisters it, and it registers
// again at its next heartbeat); stop it first. No ACLs: no
// CLUSTER_AUTHORIZATION_FAILED. The node stays a learner of the Raft
// metadata quorum (Samsa's raft layer only adds learners).
//
// Versions: v0 flexible (KIP-841).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) unregisterBroker(ctx context.Context, _ *network.Conn, req *kmsg.UnregisterBrokerRequest) (kmsg.Response, error) {
	ctx, cancel := adminDeadline(ctx, 0)
	defer cancel()
	resp := h.ctrl(ctx).UnregisterBroker(ctx, req)
	resp.Version = req.Version
	return resp, nil
}
