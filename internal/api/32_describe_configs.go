package api

// DescribeConfigs (key 32), versions 0-4.
//
// TOPIC resources list every topic config with its effective value: the
// topic's override (DYNAMIC_TOPIC_CONFIG), else the broker's log.* setting
// (STATIC_BROKER_CONFIG), else Kafka's default (DEFAULT_CONFIG). An
// invalid name answers INVALID_TOPIC_EXCEPTION, a missing topic
// UNKNOWN_TOPIC_OR_PARTITION. BROKER resources (name = this node's id)
// list the broker configs with STATIC_BROKER_CONFIG for keys set in
// server.properties or by -o, DEFAULT_CONFIG otherwise; sensitive values
// are null. ConfigNames filters (null: all); IncludeSynonyms (v1+) lists
// the entry itself as its one synonym; IncludeDocumentation (v3+) adds the
// key's documentation.
//
// Differences from Kafka: a resource listed more than once is answered
// once (at its first place, with its last mention's config names); Kafka
// answers every mention. The BROKER resource "" (cluster-wide default) is
// answered like this broker's configs, not with only the dynamic defaults
// (Samsa has no dynamic broker configs yet, so Kafka's answer would be
// empty and less useful). Another broker's id, BROKER_LOGGER,
// CLIENT_METRICS and GROUP resources answer INVALID_REQUEST. Synonyms are
// not expanded into the whole chain (override, log.* key, default).
//
// Versions: v1 synonyms and sources (KIP-226); v2 throttle after
// response; v3 documentation and types (KIP-569); v4 flexible.

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/config"
	"samsa/internal/controller"
	"samsa/internal/network"
)

func (h *Handler) describeConfigs(_ context.Context, _ *network.Conn, req *kmsg.DescribeConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	im := h.image()
	self := strconv.Itoa(int(h.d.NodeID))
	// A resource listed more than once is answered once, where it is
	// first listed, with the config names of its last mention: each
	// answer lists every config (with documentation, kilobytes), so
	// repeats would multiply a small request into a huge response.
	type resourceKey struct {
		typ  kmsg.ConfigResourceType
		name string
	}
	last := make(map[resourceKey]int, len(req.Resources))
	for i, rr := range req.Resources {
		last[resourceKey{rr.ResourceType, rr.ResourceName}] = i
	}
	for i := range req.Resources {
		k := resourceKey{req.Resources[i].ResourceType, req.Resources[i].ResourceName}
		at, ok := last[k]
		if !ok {
			continue // answered already
		}
		delete(last, k)
		rr := &req.Resources[at]
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []config.Entry
		var code int16
		var msg string
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if err := controller.ValidateTopicName(rr.ResourceName); err != nil {
				code, msg = kerr.InvalidTopicException.Code, err.Error()
			} else if t := im.Topics[rr.ResourceName]; t == nil {
				code, msg = kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("topic %q does not exist", rr.ResourceName)
			} else {
				entries = h.d.Config.Topic(t.Configs)
			}
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != self {
				code, msg = kerr.InvalidRequest.Code, fmt.Sprintf("unexpected broker id %q, this is broker %s", rr.ResourceName, self)
			} else {
				entries = h.d.Config.Broker()
			}
		default:
			code, msg = kerr.InvalidRequest.Code, fmt.Sprintf("describing resource type %d is not supported", rr.ResourceType)
		}
		if code != 0 {
			sr.ErrorCode, sr.ErrorMessage = code, &msg
			sr.Configs = []kmsg.DescribeConfigsResponseResourceConfig{}
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		sr.Configs = describeEntries(req, rr.ConfigNames, entries)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// describeEntries turns config entries into response configs, keeping
// only the names asked for (all when names is nil).
func describeEntries(req *kmsg.DescribeConfigsRequest, names []string, entries []config.Entry) []kmsg.DescribeConfigsResponseResourceConfig {
	var want map[string]bool
	if names != nil {
		want = make(map[string]bool, len(names))
		for _, n := range names {
			want[n] = true
		}
	}
	out := make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(entries))
	for _, e := range entries {
		if want != nil && !want[e.Name] {
			continue
		}
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name = e.Name
		rc.Value = e.Value
		if e.Sensitive {
			rc.Value = nil
		}
		rc.ReadOnly = e.ReadOnly
		rc.IsSensitive = e.Sensitive
		rc.Source = kmsg.ConfigSource(e.Source)
		rc.IsDefault = e.Source == config.SourceDefault
		rc.ConfigType = kmsg.ConfigType(e.Type)
		if req.IncludeSynonyms {
			syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			syn.Name, syn.Value, syn.Source = rc.Name, rc.Value, rc.Source
			rc.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{syn}
		}
		if req.IncludeDocumentation && e.Doc != "" {
			doc := e.Doc
			rc.Documentation = &doc
		}
		out = append(out, rc)
	}
	return out
}
