package api

// IncrementalAlterConfigs (key 44), versions 0-1 (KIP-339).
//
// Delegated to the controller (internal/controller configs.go). Each
// config of a TOPIC resource names an operation: SET (0) sets the
// override, DELETE (1) removes it (the key returns to its default; a key
// with no override is not an error), APPEND (2) and SUBTRACT (3) add or
// remove comma-separated items of a list-typed key (cleanup.policy),
// starting from the effective value. The resulting override set is
// validated as a whole and stored as ConfigRecords in the metadata log;
// a resource changes entirely or not at all. Error codes are
// AlterConfigs' (33_alter_configs.go), plus INVALID_CONFIG for APPEND or
// SUBTRACT on a key that is not a list. ValidateOnly checks without
// storing.
//
// BROKER resources (dynamic broker configs, KIP-226; controller
// configs_broker.go): "" is the cluster-wide default, "N" broker N. The
// same operations apply to the resource's dynamic configs (APPEND and
// SUBTRACT start from the resource's value, else Kafka's default, as
// Kafka). A key that cannot be updated dynamically answers
// INVALID_REQUEST "Cannot update these configs dynamically: Set(...)",
// an invalid value INVALID_REQUEST naming it (Kafka's codes); every
// broker applies the change before the response is sent.
//
// Differences from Kafka: a BROKER resource "N" is accepted by any
// broker (Kafka's broker takes only its own id; Samsa validates on the
// controller, which needs no local state); an unknown broker key is
// refused with INVALID_CONFIG (Kafka stores it as a custom config).
// Other resource types answer INVALID_REQUEST. TOPIC APPEND/SUBTRACT
// start from the effective value (override, else the broker's log.*
// default); Kafka starts from the override, else the static default.
//
// Versions: v1 flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) incrementalAlterConfigs(ctx context.Context, _ *network.Conn, req *kmsg.IncrementalAlterConfigsRequest) (kmsg.Response, error) {
	return h.ctrl(ctx).IncrementalAlterConfigs(ctx, req), nil
}
