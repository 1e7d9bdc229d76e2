package api

// DescribeConfigs (key 32), versions 0-4.
//
// TOPIC resources list every topic config with its effective value: the
// topic's override (DYNAMIC_TOPIC_CONFIG), else the broker key that is its
// default from the level that sets it (DYNAMIC_BROKER_CONFIG,
// DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG), else Kafka's
// default (DEFAULT_CONFIG). An invalid name answers
// INVALID_TOPIC_EXCEPTION, a missing topic UNKNOWN_TOPIC_OR_PARTITION.
//
// BROKER resources, as Kafka's ConfigHelper: this node's id lists every
// broker config with its effective value (config.WithDynamic over the
// image's dynamic broker configs) and its source, the highest of
// DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG,
// STATIC_BROKER_CONFIG and DEFAULT_CONFIG; ReadOnly is true for every key
// that cannot be altered dynamically. The name "" lists only the
// cluster-wide dynamic defaults (DYNAMIC_DEFAULT_BROKER_CONFIG). Another
// broker's id answers INVALID_REQUEST ("Unexpected broker id, expected 1
// or empty string, but received 2"): only that broker knows its static
// configs, so clients send the request to it (kadm and the Java admin
// client do). Sensitive values are null. ConfigNames filters (null: all);
// IncludeSynonyms (v1+) lists every level that sets the key (for a topic:
// the override, then the broker key's levels; for log.retention.ms its
// .minutes and .hours synonyms too), highest first; IncludeDocumentation
// (v3+) adds the key's documentation.
//
// Differences from Kafka: a resource listed more than once is answered
// once (at its first place, with its last mention's config names); Kafka
// answers every mention. BROKER_LOGGER, CLIENT_METRICS and GROUP
// resources answer INVALID_REQUEST. A topic's synonyms are the whole
// chain (Kafka drops the levels above the first that sets the key's
// first broker synonym).
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
	"samsa/internal/metadata"
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
				entries = h.brokerConfig(im).Topic(t.Configs)
			}
		case kmsg.ConfigResourceTypeBroker:
			switch id, err := strconv.ParseInt(rr.ResourceName, 10, 32); {
			case rr.ResourceName == "":
				entries = h.brokerConfig(im).DynamicDefaults()
			case err != nil:
				code, msg = kerr.InvalidRequest.Code, fmt.Sprintf("Broker id must be an integer, but it is: %s", rr.ResourceName)
			case int32(id) != h.d.NodeID:
				code, msg = kerr.InvalidRequest.Code, fmt.Sprintf("Unexpected broker id, expected %s or empty string, but received %s", self, rr.ResourceName)
			default:
				entries = h.brokerConfig(im).Broker()
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
			rc.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{}
			for _, s := range e.Synonyms {
				syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				syn.Name, syn.Value, syn.Source = s.Name, s.Value, kmsg.ConfigSource(s.Source)
				if e.Sensitive {
					syn.Value = nil
				}
				rc.ConfigSynonyms = append(rc.ConfigSynonyms, syn)
			}
		}
		if req.IncludeDocumentation && e.Doc != "" {
			doc := e.Doc
			rc.Documentation = &doc
		}
		out = append(out, rc)
	}
	return out
}

// brokerConfig is this broker's effective configuration under image im:
// the static configuration with the image's dynamic broker configs
// (config.WithDynamic; invalid dynamic values are left out, as the
// replica manager leaves them out).
func (h *Handler) brokerConfig(im *metadata.Image) *config.Config {
	eff, _ := h.d.Config.WithDynamic(im.DynamicBrokerConfigs(h.d.NodeID))
	return eff
}
