package api

// ListPartitionReassignments (key 46), version 0.
//
// Answered from this broker's metadata image, which holds every
// partition's reassignment state (AddingReplicas and RemovingReplicas,
// replicated through the metadata log): with Topics null every
// partition being reassigned, else the named partitions that are (names
// of unknown topics or partitions, and partitions not moving, are left
// out, as Kafka does). Each partition lists its replicas (the target
// followed by the removing ones), the adding and the removing replicas.
//
// Differences from Kafka: Kafka 4 forwards the request to the active
// controller; Samsa answers locally, from an image at most a metadata
// propagation behind (an AlterPartitionReassignments answered by this
// broker is already in it). No authorization (no ACLs yet).
//
// Versions: v0 flexible (KIP-455).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/controller"
	"samsa/internal/network"
)

func (h *Handler) listPartitionReassignments(_ context.Context, _ *network.Conn, req *kmsg.ListPartitionReassignmentsRequest) (kmsg.Response, error) {
	return controller.ListPartitionReassignments(h.image(), req), nil
}
