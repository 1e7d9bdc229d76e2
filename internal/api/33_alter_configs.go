package api

// AlterConfigs (key 33), versions 0-2.
//
// Delegated to the controller (internal/controller configs.go). Each TOPIC
// resource's config overrides are replaced by exactly the configs listed,
// as Kafka does: an override not listed returns to its default. The new
// set is validated as a whole (unknown key or bad value: INVALID_CONFIG
// naming the key; unknown topic: UNKNOWN_TOPIC_OR_PARTITION; invalid
// name: INVALID_TOPIC_EXCEPTION; a null value, a key listed twice or a
// resource listed twice: INVALID_REQUEST) and stored as ConfigRecords in
// the metadata log, so it survives restarts; open logs take the new
// configs before the response is sent. ValidateOnly checks without
// storing. DescribeConfigs then reports the overrides with source
// DYNAMIC_TOPIC_CONFIG.
//
// BROKER resources (dynamic broker configs, KIP-226): the dynamic configs
// of resource "" (cluster-wide default) or "N" (broker N) are replaced
// likewise; errors and differences as IncrementalAlterConfigs
// (44_incremental_alter_configs.go). BROKER_LOGGER and other resource
// types answer INVALID_REQUEST.
//
// Versions: v1 throttle after response; v2 flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) alterConfigs(ctx context.Context, _ *network.Conn, req *kmsg.AlterConfigsRequest) (kmsg.Response, error) {
	return h.ctrl(ctx).AlterConfigs(ctx, req), nil
}
