package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Broker returns every broker config entry, sorted by name, with its
// effective value and source (DYNAMIC_BROKER_CONFIG, then
// DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG; see
// dynamic.go) and the levels that set it as synonyms. As in Kafka's
// ConfigHelper, the synonyms start at the first level that sets the key
// itself: log.retention.hours shows its own value even when a higher
// level sets log.retention.ms.
func (c *Config) Broker() []Entry {
	out := make([]Entry, 0, len(brokerKeys))
	for _, name := range sortedKeys(brokerKeys) {
		kd := brokerKeys[name]
		e := Entry{Name: name, Type: int8(kd.kind), Doc: kd.doc, ReadOnly: kd.readOnly, Source: SourceDefault}
		chain := c.chain(name)
		for len(chain) > 0 && chain[0].Name != name {
			chain = chain[1:]
		}
		if len(chain) > 0 {
			e.Source, e.Value = chain[0].Source, chain[0].Value
		}
		e.Synonyms = chain
		out = append(out, e)
	}
	return out
}

// topicDefault returns the broker-level default of a topic config and
// whether the broker's file set it.
func (c *Config) topicDefault(name string) (string, bool) {
	ms := func(keys []string, mult []int64) (string, bool) {
		for i, k := range keys {
			if v, ok := c.raw[k]; ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				if n >= 0 {
					n *= mult[i]
				}
				return strconv.FormatInt(n, 10), true
			}
		}
		return "", false
	}
	switch name {
	case "retention.ms":
		if v, ok := ms([]string{"log.retention.ms", "log.retention.minutes", "log.retention.hours"}, []int64{1, 60_000, 3_600_000}); ok {
			return v, true
		}
	case "segment.ms":
		if v, ok := ms([]string{"log.roll.ms", "log.roll.hours"}, []int64{1, 3_600_000}); ok {
			return v, true
		}
	case "segment.jitter.ms":
		if v, ok := ms([]string{"log.roll.jitter.ms", "log.roll.jitter.hours"}, []int64{1, 3_600_000}); ok {
			return v, true
		}
	}
	tk := topicKeys[name]
	if tk.broker != "" {
		if v, ok := c.raw[tk.broker]; ok {
			return v, true
		}
	}
	return tk.def, false
}

// TopicValue returns the effective value of a topic config for a topic
// with the given overrides.
func (c *Config) TopicValue(overrides map[string]string, name string) string {
	if v, ok := overrides[name]; ok {
		return v
	}
	v, _ := c.topicDefault(name)
	return v
}

// Topic returns every topic config entry for a topic with the given
// overrides, sorted by name: the override (DYNAMIC_TOPIC_CONFIG), else
// the broker key that is its default, from the level that sets it
// (DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG,
// STATIC_BROKER_CONFIG), else Kafka's default (DEFAULT_CONFIG). Synonyms
// list every level, the override first.
func (c *Config) Topic(overrides map[string]string) []Entry {
	out := make([]Entry, 0, len(topicKeys))
	for _, name := range sortedKeys(topicKeys) {
		tk := topicKeys[name]
		e := Entry{Name: name, Type: int8(tk.kind), Doc: tk.doc, Source: SourceDefault}
		v := c.TopicValue(overrides, name)
		e.Value = &v
		var chain []Synonym
		if o, ok := overrides[name]; ok {
			chain = append(chain, Synonym{Name: name, Value: &o, Source: SourceDynamicTopic})
		}
		if tk.broker != "" {
			chain = append(chain, c.chain(tk.broker)...)
		} else {
			d := tk.def
			chain = append(chain, Synonym{Name: name, Value: &d, Source: SourceDefault})
		}
		if len(chain) > 0 {
			e.Source = chain[0].Source
		}
		e.Synonyms = chain
		out = append(out, e)
	}
	return out
}

// IsTopicConfig reports whether name is a topic-level config key.
func IsTopicConfig(name string) bool { _, ok := topicKeys[name]; return ok }

// IsListConfig reports whether the topic config name holds a
// comma-separated list (IncrementalAlterConfigs APPEND and SUBTRACT apply
// only to those).
func IsListConfig(name string) bool { return topicKeys[name].kind == kList }

// ValidateTopicConfig checks topic config overrides (known key, valid
// value) as CreateTopics/AlterConfigs must; the error names the key.
func ValidateTopicConfig(overrides map[string]string) error {
	for _, name := range sortedKeys(overrides) {
		v := overrides[name]
		tk, ok := topicKeys[name]
		if !ok {
			return fmt.Errorf("unknown topic config %s", name)
		}
		if err := checkValue(tk.kind, v); err != nil {
			return fmt.Errorf("invalid value %q for topic config %s: %v", v, name, err)
		}
		bad := func(why string) error { return fmt.Errorf("invalid value %q for topic config %s: %s", v, name, why) }
		n, _ := strconv.ParseInt(v, 10, 64)
		switch name {
		case "cleanup.policy":
			for _, p := range splitList(v) {
				if p != "delete" && p != "compact" {
					return bad("must be delete and/or compact")
				}
			}
		case "message.timestamp.type":
			if v != "CreateTime" && v != "LogAppendTime" {
				return bad("must be CreateTime or LogAppendTime")
			}
		case "compression.type":
			switch strings.ToLower(v) {
			case "producer", "uncompressed", "gzip", "snappy", "lz4", "zstd":
			default:
				return bad("unknown compression type")
			}
		case "compression.gzip.level":
			if n != -1 && (n < 1 || n > 9) {
				return bad("must be -1 or between 1 and 9")
			}
		case "compression.lz4.level":
			if n < 1 || n > 17 {
				return bad("must be between 1 and 17")
			}
		case "compression.zstd.level":
			if n < -131072 || n > 22 {
				return bad("must be between -131072 and 22")
			}
		case "message.timestamp.before.max.ms", "message.timestamp.after.max.ms":
			if n < 0 {
				return bad("must be >= 0")
			}
		case "segment.bytes":
			if n < 14 {
				return bad("must be at least 14")
			}
		case "segment.index.bytes":
			if n < 8 {
				return bad("must be at least 8")
			}
		case "max.message.bytes", "index.interval.bytes":
			if n < 0 {
				return bad("must be >= 0")
			}
		case "min.insync.replicas", "flush.messages", "segment.ms":
			if n < 1 {
				return bad("must be >= 1")
			}
		case "flush.ms", "delete.retention.ms", "file.delete.delay.ms", "min.compaction.lag.ms", "max.compaction.lag.ms", "segment.jitter.ms":
			if n < 0 {
				return bad("must be >= 0")
			}
		case "retention.ms", "retention.bytes":
			if n < -1 {
				return bad("must be >= -1")
			}
		case "leader.replication.throttled.replicas", "follower.replication.throttled.replicas":
			if _, err := ParseThrottledReplicas(v); err != nil {
				return bad(err.Error())
			}
		case "min.cleanable.dirty.ratio":
			f, _ := strconv.ParseFloat(v, 64)
			if f < 0 || f > 1 {
				return bad("must be between 0 and 1")
			}
		}
	}
	return nil
}
