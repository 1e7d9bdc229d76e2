package config

// Dynamic broker configs (KIP-226). The controller stores them in the
// metadata log at two levels: the cluster-wide default (BROKER resource
// "") and per broker (resource "N"). A broker's effective configuration
// is, key by key, the first of
//
//	DYNAMIC_BROKER_CONFIG          per broker, metadata log
//	DYNAMIC_DEFAULT_BROKER_CONFIG  cluster default, metadata log
//	STATIC_BROKER_CONFIG           server.properties and -o
//	DEFAULT_CONFIG                 Kafka's default
//
// where a level that sets any synonym of a key (log.retention.ms /
// .minutes / .hours) hides every synonym of the levels below it, as
// Kafka's DynamicBrokerConfig.overrideProps does. WithDynamic builds that
// configuration; it is the one place the precedence is computed, and every
// consumer (replica manager, network limits, controller, DescribeConfigs)
// reads a *Config it returned.
//
// The keys that may be set dynamically are Kafka's
// (DynamicBrokerConfig.AllDynamicConfigs) that Samsa acts on: the keys
// whose entry in brokerKeys is not readOnly. Kafka's dynamic keys that
// Samsa cannot change while running (the thread counts, the listeners,
// log.cleaner.*) are readOnly here and refused
// with Kafka's "Cannot update these configs dynamically" error.

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Errors of ValidateDynamic; the controller maps them to Kafka codes.
var (
	// ErrNotDynamic: a key that cannot be updated dynamically (Kafka's
	// ConfigException "Cannot update these configs dynamically").
	ErrNotDynamic = errors.New("config: not dynamically updatable")
	// ErrUnknownKey: a key Samsa does not know.
	ErrUnknownKey = errors.New("config: unknown broker config")
	// ErrInvalidValue: a value that does not parse or is out of range.
	ErrInvalidValue = errors.New("config: invalid value")
)

// dynamicError is a ValidateDynamic error: Kafka's message, wrapping
// one of the sentinels above.
type dynamicError struct {
	kind error
	msg  string
}

func (e *dynamicError) Error() string { return e.msg }
func (e *dynamicError) Unwrap() error { return e.kind }

// brokerSynonyms are the broker keys that set the same value, highest
// precedence first (Kafka's DynamicBrokerConfig.brokerConfigSynonyms).
var brokerSynonyms = [][]string{
	{"log.roll.ms", "log.roll.hours"},
	{"log.roll.jitter.ms", "log.roll.jitter.hours"},
	{"log.flush.interval.ms", "log.flush.scheduler.interval.ms"},
	{"log.retention.ms", "log.retention.minutes", "log.retention.hours"},
}

// synonymsOf returns the synonyms of a broker key, itself included, in
// precedence order.
func synonymsOf(name string) []string {
	for _, g := range brokerSynonyms {
		if slices.Contains(g, name) {
			return g
		}
	}
	return []string{name}
}

// IsDynamicBrokerConfig reports whether a broker key may be set
// dynamically (AlterConfigs on a BROKER resource).
func IsDynamicBrokerConfig(name string) bool {
	k, ok := brokerKeys[name]
	return ok && !k.readOnly
}

// IsBrokerConfig reports whether name is a broker key Samsa knows.
func IsBrokerConfig(name string) bool { _, ok := brokerKeys[name]; return ok }

// IsBrokerListConfig reports whether the broker key name holds a
// comma-separated list (IncrementalAlterConfigs APPEND / SUBTRACT).
func IsBrokerListConfig(name string) bool { return brokerKeys[name].kind == kList }

// BrokerDefault returns Kafka's default of a broker key (ok false when
// the default is null).
func BrokerDefault(name string) (string, bool) {
	k, ok := brokerKeys[name]
	if !ok || k.null {
		return "", false
	}
	return k.def, true
}

// topicOfBroker maps a broker key to the topic config it is the default
// of (log.segment.bytes -> segment.bytes).
var topicOfBroker = func() map[string]string {
	m := map[string]string{}
	for t, tk := range topicKeys {
		if tk.broker != "" {
			m[tk.broker] = t
		}
	}
	return m
}()

// ValidateDynamic checks a dynamic broker config set (the whole set of a
// resource after the change) as Kafka's DynamicBrokerConfig.validateConfigs
// and KafkaConfig do: every key known and dynamically updatable, every
// value of the key's type and in range, and the configuration that
// results on top of c valid. perBroker is false for the cluster default.
// The error wraps ErrUnknownKey, ErrNotDynamic or ErrInvalidValue.
func (c *Config) ValidateDynamic(clusterDefault, broker map[string]string, perBroker bool) error {
	props := clusterDefault
	if perBroker {
		props = broker
	}
	var unknown, readOnly []string
	for _, name := range sortedKeys(props) {
		if !IsBrokerConfig(name) {
			unknown = append(unknown, name)
		} else if !IsDynamicBrokerConfig(name) {
			readOnly = append(readOnly, name)
		}
	}
	if len(unknown) > 0 {
		return &dynamicError{ErrUnknownKey, strings.Join(unknown, ", ")}
	}
	if len(readOnly) > 0 {
		// Kafka prints the Scala Set: "Set(a, b)".
		return &dynamicError{ErrNotDynamic, "Cannot update these configs dynamically: Set(" + strings.Join(readOnly, ", ") + ")"}
	}
	for _, name := range sortedKeys(props) {
		if err := checkDynamicValue(name, props[name]); err != nil {
			return err
		}
	}
	// The configuration that results must be valid (cross-key checks,
	// as Kafka builds a KafkaConfig). Values already stored that a later
	// check refuses are left out, not held against this change.
	if _, _, err := c.Static().withDynamic(clusterDefault, broker); err != nil {
		return &dynamicError{ErrInvalidValue, "Invalid dynamic configuration: " + err.Error()}
	}
	return nil
}

// checkDynamicValue checks one dynamic value: its type, and the range of
// the topic config it is the default of.
func checkDynamicValue(name, v string) error {
	if err := checkValue(brokerKeys[name].kind, v); err != nil {
		return &dynamicError{ErrInvalidValue, fmt.Sprintf("Invalid value %s for configuration %s: %v", v, name, err)}
	}
	if t, ok := topicOfBroker[name]; ok {
		if err := ValidateTopicConfig(map[string]string{t: v}); err != nil {
			return &dynamicError{ErrInvalidValue, fmt.Sprintf("Invalid value %s for configuration %s: %v", v, name, err)}
		}
	}
	switch name {
	case "num.replica.fetchers":
		if n, _ := strconv.ParseInt(v, 10, 64); n < 1 {
			return &dynamicError{ErrInvalidValue, fmt.Sprintf("Invalid value %s for configuration %s: Value must be at least 1", v, name)}
		}
	case "leader.replication.throttled.rate", "follower.replication.throttled.rate", "replica.alter.log.dirs.io.max.bytes.per.second":
		if n, _ := strconv.ParseInt(v, 10, 64); n < 0 {
			return &dynamicError{ErrInvalidValue, fmt.Sprintf("Invalid value %s for configuration %s: Value must be at least 0", v, name)}
		}
	}
	return nil
}

// dynamicLayers are the dynamic configs a Config was built with, kept to
// report each key's source.
type dynamicLayers struct {
	static         map[string]string // the file and -o (raw of the static Config)
	clusterDefault map[string]string // BROKER resource ""
	broker         map[string]string // BROKER resource "N"
}

// dynamicCache remembers the last WithDynamic results of a static
// Config: every image change and every DescribeConfigs asks again, and
// the dynamic configs rarely change. A few entries, because the
// controller (cluster default only) and the broker (default and its own)
// ask with different levels.
type dynamicCache struct {
	mu      sync.Mutex
	entries []dynamicCacheEntry // most recent last; guarded by mu
}

type dynamicCacheEntry struct {
	clusterDefault, broker map[string]string
	out                    *Config
	err                    error
}

// dynamicCacheSize bounds dynamicCache.entries.
const dynamicCacheSize = 4

// WithDynamic returns the configuration with the dynamic broker configs
// applied: clusterDefault (BROKER resource "") over the static keys, then
// broker (this broker's resource) over both, a level hiding the synonyms
// of every key it sets. The receiver is not changed. A dynamic value that
// does not parse, or a result that is not a valid configuration, is an
// error; the returned Config is then the static one with only the valid
// dynamic keys (or none), never nil. Called on a Config built by
// WithDynamic, it applies to that Config's static base.
func (c *Config) WithDynamic(clusterDefault, broker map[string]string) (*Config, error) {
	base := c.Static()
	if len(clusterDefault) == 0 && len(broker) == 0 {
		return base, nil
	}
	base.cacheOnce.Do(func() { base.cache = &dynamicCache{} })
	ca := base.cache
	ca.mu.Lock()
	defer ca.mu.Unlock()
	for _, e := range ca.entries {
		if maps.Equal(e.clusterDefault, clusterDefault) && maps.Equal(e.broker, broker) {
			return e.out, e.err
		}
	}
	out, dropped, err := base.withDynamic(clusterDefault, broker)
	if err == nil {
		err = dropped
	}
	if len(ca.entries) == dynamicCacheSize {
		ca.entries = slices.Delete(ca.entries, 0, 1)
	}
	ca.entries = append(ca.entries, dynamicCacheEntry{maps.Clone(clusterDefault), maps.Clone(broker), out, err})
	return out, err
}

// withDynamic builds the configuration of WithDynamic. dropped names the
// dynamic keys left out (not dynamic, or an invalid value); err is set
// when the result is not a valid configuration, and out is then c.
func (c *Config) withDynamic(clusterDefault, broker map[string]string) (out *Config, dropped, err error) {
	var bad []string
	clean := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			if !IsDynamicBrokerConfig(k) || checkDynamicValue(k, v) != nil {
				bad = append(bad, k)
				continue
			}
			out[k] = v
		}
		return out
	}
	layers := &dynamicLayers{static: c.raw, clusterDefault: clean(clusterDefault), broker: clean(broker)}
	raw := maps.Clone(c.raw)
	for _, level := range []map[string]string{layers.clusterDefault, layers.broker} {
		for k, v := range level {
			for _, s := range synonymsOf(k) {
				delete(raw, s)
			}
			raw[k] = v
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		dropped = fmt.Errorf("config: dynamic broker configs ignored (not dynamic or invalid): %s", strings.Join(bad, ", "))
	}
	out = &Config{Entries: c.Entries, raw: raw, dyn: layers, base: c}
	if err := out.derive(); err != nil {
		return c, dropped, fmt.Errorf("config: dynamic broker configs ignored: %w", err)
	}
	return out, dropped, nil
}

// Static returns the configuration without dynamic configs (the one Load
// returned).
func (c *Config) Static() *Config {
	if c.dyn != nil {
		return c.base
	}
	return c
}

// Synonym is one level that sets a config (DescribeConfigs synonyms, in
// precedence order).
type Synonym struct {
	Name   string
	Value  *string
	Source Source
}

// chain returns every level that sets a synonym of name, in Kafka's order
// (ConfigHelper.configSynonyms): the per-broker values of each synonym,
// then the cluster defaults, the static values and Kafka's defaults.
func (c *Config) chain(name string) []Synonym {
	syns := synonymsOf(name)
	var out []Synonym
	add := func(m map[string]string, src Source) {
		for _, s := range syns {
			if v, ok := m[s]; ok {
				out = append(out, Synonym{Name: s, Value: &v, Source: src})
			}
		}
	}
	static := c.raw
	if c.dyn != nil {
		add(c.dyn.broker, SourceDynamicBroker)
		add(c.dyn.clusterDefault, SourceDynamicDefault)
		static = c.dyn.static
	}
	add(static, SourceStaticBroker)
	for _, s := range syns {
		if k, ok := brokerKeys[s]; ok && !k.null {
			v := k.def
			out = append(out, Synonym{Name: s, Value: &v, Source: SourceDefault})
		}
	}
	return out
}

// DynamicDefaults returns the entries of the cluster-wide dynamic
// defaults (DescribeConfigs of BROKER resource ""): only the keys set
// there, source DYNAMIC_DEFAULT_BROKER_CONFIG, as Kafka lists them.
func (c *Config) DynamicDefaults() []Entry {
	if c.dyn == nil {
		return []Entry{}
	}
	out := []Entry{}
	for _, name := range sortedKeys(c.dyn.clusterDefault) {
		v := c.dyn.clusterDefault[name]
		kd := brokerKeys[name]
		out = append(out, Entry{Name: name, Value: &v, Source: SourceDynamicDefault, ReadOnly: kd.readOnly,
			Type: int8(kd.kind), Doc: kd.doc, Synonyms: []Synonym{{Name: name, Value: &v, Source: SourceDynamicDefault}}})
	}
	return out
}
