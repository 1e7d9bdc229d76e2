package controller

// Dynamic topic configs: AlterConfigs (replace the whole override set) and
// IncrementalAlterConfigs (SET / DELETE / APPEND / SUBTRACT per key). Both
// compute a resource's new override set from the image, validate the
// whole set (config.ValidateTopicConfig) and commit the difference as
// ConfigRecords (value nil removes an override) in one append, so a
// resource changes entirely or not at all. The replica manager applies the
// new image to the open logs (storage.Log.SetConfig) before the call
// returns. Kafka's equivalents: ConfigurationControlManager.
// incrementalAlterConfigs / legacyAlterConfigs.
//
// BROKER resources (dynamic broker configs, KIP-226) are altered by
// alterBrokerLocked (configs_broker.go).

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/config"
	"samsa/internal/metadata"
)

// Incremental config operations (Kafka's AlterConfigOp.OpType).
const (
	opSet      = kmsg.IncrementalAlterConfigOpSet
	opDelete   = kmsg.IncrementalAlterConfigOpDelete
	opAppend   = kmsg.IncrementalAlterConfigOpAppend
	opSubtract = kmsg.IncrementalAlterConfigOpSubtract
)

// configOp is one key of an alter request, in the incremental form.
type configOp struct {
	name  string
	op    kmsg.IncrementalAlterConfigOp
	value *string
}

// applyToList applies an APPEND (values not yet listed are added at the
// end) or SUBTRACT (listed values are dropped) of o to the comma-separated
// list old, as Kafka's IncrementalAlterConfigs does for list configs.
func (o configOp) applyToList(old string) string {
	list, vals := config.SplitList(old), config.SplitList(*o.value)
	var out []string
	if o.op == opAppend {
		out = list
		for _, v := range vals {
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	} else {
		for _, v := range list {
			if !slices.Contains(vals, v) {
				out = append(out, v)
			}
		}
	}
	return strings.Join(out, ",")
}

// alterResource is one resource of an alter request, in the incremental
// form.
type alterResource struct {
	typ  kmsg.ConfigResourceType
	name string
	ops  []configOp
}

// AlterConfigs serves AlterConfigs: each TOPIC (or BROKER) resource's
// overrides are replaced by exactly the configs given (keys not listed return to their
// defaults).
func (c *Controller) AlterConfigs(ctx context.Context, req *kmsg.AlterConfigsRequest) *kmsg.AlterConfigsResponse {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	resp.Version = req.Version
	rs := make([]alterResource, len(req.Resources))
	for i, r := range req.Resources {
		rs[i] = alterResource{typ: r.ResourceType, name: r.ResourceName}
		for _, kv := range r.Configs {
			rs[i].ops = append(rs[i].ops, configOp{name: kv.Name, op: opSet, value: kv.Value})
		}
	}
	for i, e := range c.alterResources(ctx, rs, true, req.ValidateOnly) {
		rr := kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = rs[i].typ, rs[i].name
		if e != nil {
			rr.ErrorCode, rr.ErrorMessage = e.code, &e.msg
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp
}

// IncrementalAlterConfigs serves IncrementalAlterConfigs: each TOPIC
// resource's overrides are changed key by key.
func (c *Controller) IncrementalAlterConfigs(ctx context.Context, req *kmsg.IncrementalAlterConfigsRequest) *kmsg.IncrementalAlterConfigsResponse {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	resp.Version = req.Version
	rs := make([]alterResource, len(req.Resources))
	for i, r := range req.Resources {
		rs[i] = alterResource{typ: r.ResourceType, name: r.ResourceName}
		for _, kv := range r.Configs {
			rs[i].ops = append(rs[i].ops, configOp{name: kv.Name, op: kv.Op, value: kv.Value})
		}
	}
	for i, e := range c.alterResources(ctx, rs, false, req.ValidateOnly) {
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = rs[i].typ, rs[i].name
		if e != nil {
			rr.ErrorCode, rr.ErrorMessage = e.code, &e.msg
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp
}

// alterResources applies each resource's ops in turn and returns each
// one's error (nil: altered, or valid with validateOnly). A resource
// named more than once in the request fails with INVALID_REQUEST, as in
// Kafka.
func (c *Controller) alterResources(ctx context.Context, rs []alterResource, replace, validateOnly bool) []*codeErr {
	type key struct {
		typ  kmsg.ConfigResourceType
		name string
	}
	counts := map[key]int{}
	for _, r := range rs {
		counts[key{r.typ, r.name}]++
	}
	c.lock()
	defer c.unlock(ctx)
	out := make([]*codeErr, len(rs))
	if e := c.activeLocked(); e != nil {
		for i := range out {
			out[i] = e
		}
		return out
	}
	for i, r := range rs {
		if counts[key{r.typ, r.name}] > 1 {
			out[i] = fail(kerr.InvalidRequest, "resource %s %q is listed more than once", r.typ, r.name)
			continue
		}
		out[i] = c.alterResourceLocked(ctx, r.typ, r.name, r.ops, replace, validateOnly)
	}
	return out
}

// alterResourceLocked applies ops to one resource. replace drops every
// override not named by ops (AlterConfigs).
func (c *Controller) alterResourceLocked(ctx context.Context, typ kmsg.ConfigResourceType, name string, ops []configOp, replace, validateOnly bool) *codeErr {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
	case kmsg.ConfigResourceTypeBroker:
		return c.alterBrokerLocked(ctx, name, ops, replace, validateOnly)
	default:
		return fail(kerr.InvalidRequest, "altering configs of resource type %s is not supported", typ)
	}
	if name == "" {
		return fail(kerr.InvalidRequest, "default topic resources are not allowed")
	}
	if err := ValidateTopicName(name); err != nil {
		return fail(kerr.InvalidTopicException, "%v", err)
	}
	t := c.image().Topics[name]
	if t == nil {
		return fail(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
	}
	next, e := c.nextTopicConfigs(t.Configs, ops, replace)
	if e != nil {
		return e
	}
	if err := config.ValidateTopicConfig(next); err != nil {
		return fail(kerr.InvalidConfig, "%v", err)
	}
	recs := configDiff(metadata.ResourceTopic, name, t.Configs, next)
	if validateOnly || len(recs) == 0 {
		return nil
	}
	if err := c.commitLocked(ctx, recs); err != nil {
		return c.commitErr("alter configs", err)
	}
	c.logger.Info("altered topic configs", "topic", name, "changes", len(recs))
	// unclean.leader.election.enable turned on: elect its leaderless
	// partitions now (Kafka's controller does on the config change).
	im := c.image()
	if t := im.Topics[name]; t != nil && c.uncleanEnabled(t) {
		if recs := c.electLeaderlessLocked(im, t); len(recs) > 0 {
			if err := c.commitLocked(ctx, recs); err != nil {
				c.logger.Warn("unclean leader election", "topic", name, "err", err)
			}
		}
	}
	return nil
}

// nextTopicConfigs returns the override set after ops. Errors follow
// Kafka's ConfigAdminManager: a key named twice or a null value for an
// operation that needs one is INVALID_REQUEST; an unknown key, or APPEND /
// SUBTRACT on a key that is not a list, INVALID_CONFIG.
func (c *Controller) nextTopicConfigs(cur map[string]string, ops []configOp, replace bool) (map[string]string, *codeErr) {
	next := map[string]string{}
	if !replace {
		maps.Copy(next, cur)
	}
	seen := map[string]bool{}
	for _, o := range ops {
		if seen[o.name] {
			return nil, fail(kerr.InvalidRequest, "config %s is listed more than once", o.name)
		}
		seen[o.name] = true
		if !config.IsTopicConfig(o.name) {
			return nil, fail(kerr.InvalidConfig, "unknown topic config %s", o.name)
		}
		if o.value == nil && o.op != opDelete {
			return nil, fail(kerr.InvalidRequest, "null value is not supported for topic config %s", o.name)
		}
		switch o.op {
		case opSet:
			next[o.name] = *o.value
		case opDelete:
			delete(next, o.name)
		case opAppend, opSubtract:
			if !config.IsListConfig(o.name) {
				return nil, fail(kerr.InvalidConfig, "%s is not allowed for topic config %s, which is not a list", strings.ToLower(o.op.String()), o.name)
			}
			// The list starts from the effective value (override, else
			// the broker's default), so appending "compact" to a topic
			// on the default policy gives "delete,compact".
			next[o.name] = o.applyToList(c.controllerConfig(c.image()).TopicValue(next, o.name))
		default:
			return nil, fail(kerr.InvalidRequest, "unknown config operation %d for %s", o.op, o.name)
		}
	}
	return next, nil
}

// configDiff returns the ConfigRecords that turn the configs of resource
// name (of type typ: a topic's overrides, a broker's or the cluster
// default's dynamic configs) from cur into next, in key order.
func configDiff(typ int8, name string, cur, next map[string]string) []metadata.Record {
	keys := map[string]bool{}
	for k := range cur {
		keys[k] = true
	}
	for k := range next {
		keys[k] = true
	}
	var recs []metadata.Record
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		ov, had := cur[k]
		nv, has := next[k]
		if had == has && ov == nv {
			continue
		}
		rec := &metadata.ConfigRecord{ResourceType: typ, ResourceName: name, Name: k}
		if has {
			v := nv
			rec.Value = &v
		}
		recs = append(recs, metadata.Record{Type: metadata.TypeConfig, Config: rec})
	}
	return recs
}
