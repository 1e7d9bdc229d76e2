package controller

// Dynamic broker configs (KIP-226): AlterConfigs and
// IncrementalAlterConfigs on BROKER resources. Resource "" is the
// cluster-wide default, "N" broker N (any non-negative id, registered or
// not, as Kafka's ControllerConfigurationValidator.validateBrokerName
// accepts). The resource's new config set is validated as a whole
// (config.ValidateDynamic) and committed as ConfigRecords (ResourceType 4)
// in one append; every broker applies the new image (config.WithDynamic)
// before it answers anything else.
//
// Errors follow Kafka's broker-side check (ConfigAdminManager.preprocess
// and validateBrokerConfigChange), which Kafka runs before forwarding the
// request to the controller: a key that cannot be updated dynamically,
// and an invalid value, answer INVALID_REQUEST with Kafka's message
// ("Cannot update these configs dynamically: Set(log.dirs)"; Kafka
// converts the ConfigException to InvalidRequestException, KAFKA-13609).
// APPEND / SUBTRACT on a key that is not a list: INVALID_CONFIG.
//
// Difference from Kafka: an unknown key is refused (INVALID_CONFIG);
// Kafka stores unknown broker keys as custom configs for plugins, which
// Samsa has none of, so a typo would be stored and silently do nothing.

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/internal/config"
	"samsa/internal/metadata"
)

// controllerConfig is the configuration the controller's cluster-wide
// decisions use (the default of unclean.leader.election.enable): its
// static config with the cluster-wide dynamic defaults, not any broker's
// own overrides, so the decision does not depend on which node is the
// active controller (Kafka's currentControllerConfig).
func (c *Controller) controllerConfig(im *metadata.Image) *config.Config {
	eff, _ := c.cfg.WithDynamic(im.BrokerConfigs[""], nil)
	return eff
}

// alterBrokerLocked applies ops to BROKER resource name.
func (c *Controller) alterBrokerLocked(ctx context.Context, name string, ops []configOp, replace, validateOnly bool) *codeErr {
	if name != "" {
		id, err := strconv.ParseInt(name, 10, 32)
		if err != nil || strconv.FormatInt(id, 10) != name {
			return fail(kerr.InvalidRequest, "Unable to parse broker name as a base 10 number.")
		}
		if id < 0 {
			return fail(kerr.InvalidRequest, "Invalid negative broker ID.")
		}
	}
	im := c.image()
	cur := im.BrokerConfigs[name]
	next, e := nextBrokerConfigs(cur, ops, replace)
	if e != nil {
		return e
	}
	def, brk := im.BrokerConfigs[""], map[string]string(nil)
	if name == "" {
		def = next
	} else {
		brk = next
	}
	if err := c.cfg.ValidateDynamic(def, brk, name != ""); err != nil {
		if errors.Is(err, config.ErrUnknownKey) {
			return fail(kerr.InvalidConfig, "Unknown broker configs: %v", err)
		}
		return fail(kerr.InvalidRequest, "%v", err)
	}
	recs := configDiff(metadata.ResourceBroker, name, cur, next)
	if validateOnly || len(recs) == 0 {
		return nil
	}
	oldUnclean := c.controllerConfig(im).TopicValue(nil, "unclean.leader.election.enable")
	if err := c.commitLocked(ctx, recs); err != nil {
		return c.commitErr("alter broker configs", err)
	}
	resource := name
	if resource == "" {
		resource = "<default>"
	}
	c.logger.Info("altered broker configs", "broker", resource, "changes", len(recs))
	// unclean.leader.election.enable turned on for the cluster: elect
	// the leaderless partitions of topics without an override now (as
	// Kafka's DynamicLogConfig.reconfigure triggers).
	im = c.image()
	if name == "" && !strings.EqualFold(oldUnclean, "true") {
		for _, tn := range slices.Sorted(maps.Keys(im.Topics)) {
			t := im.Topics[tn]
			if !c.uncleanEnabled(t) {
				continue
			}
			if recs := c.electLeaderlessLocked(im, t); len(recs) > 0 {
				if err := c.commitLocked(ctx, recs); err != nil {
					c.logger.Warn("unclean leader election", "topic", tn, "err", err)
					break
				}
				im = c.image()
			}
		}
	}
	return nil
}

// nextBrokerConfigs returns a BROKER resource's config set after ops,
// with Kafka's request checks (ConfigAdminManager.preprocess and
// prepareIncrementalConfigs): a key listed twice, a null value for an
// operation that needs one or an unknown operation are INVALID_REQUEST;
// APPEND / SUBTRACT on an unknown key or one that is not a list is
// INVALID_CONFIG. APPEND and SUBTRACT start from the resource's value,
// else Kafka's default of the key (not the static value), as Kafka does.
func nextBrokerConfigs(cur map[string]string, ops []configOp, replace bool) (map[string]string, *codeErr) {
	seen := map[string]bool{}
	var nulls []string
	for _, o := range ops {
		if seen[o.name] {
			return nil, fail(kerr.InvalidRequest, "Error due to duplicate config keys")
		}
		seen[o.name] = true
		if o.value == nil && o.op != opDelete {
			nulls = append(nulls, o.name)
		}
	}
	if len(nulls) > 0 {
		return nil, fail(kerr.InvalidRequest, "Null value not supported for : %s", strings.Join(nulls, ", "))
	}
	next := map[string]string{}
	if !replace {
		maps.Copy(next, cur)
	}
	for _, o := range ops {
		switch o.op {
		case opSet:
			next[o.name] = *o.value
		case opDelete:
			delete(next, o.name)
		case opAppend, opSubtract:
			if !config.IsBrokerConfig(o.name) {
				return nil, fail(kerr.InvalidConfig, "Unknown config name: %s", o.name)
			}
			if !config.IsBrokerListConfig(o.name) {
				return nil, fail(kerr.InvalidConfig, "Config value %s is not allowed for config key: %s", strings.ToLower(o.op.String()), o.name)
			}
			old, ok := next[o.name]
			if !ok {
				old, _ = config.BrokerDefault(o.name)
			}
			next[o.name] = o.applyToList(old)
		default:
			return nil, fail(kerr.InvalidRequest, "Unknown operations type %d", o.op)
		}
	}
	return next, nil
}
