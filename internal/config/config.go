// Package config reads Kafka-style server.properties files and holds the
// broker configuration and the topic-config defaults derived from it.
package config

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Listener is one entry of listeners / advertised.listeners.
type Listener struct {
	Name string // "PLAINTEXT", "CONTROLLER", ...
	Host string
	Port int // 0: ephemeral
}

// Config is the parsed broker configuration. Fields use Kafka's key names.
type Config struct {
	NodeID                      int32             // node.id
	ProcessRoles                []string          // process.roles
	Listeners                   []Listener        // listeners
	AdvertisedListeners         []Listener        // advertised.listeners (defaults to listeners)
	ControllerListenerNames     []string          // controller.listener.names
	InterBrokerListenerName     string            // inter.broker.listener.name
	ListenerSecurityProtocolMap map[string]string // listener.security.protocol.map
	ControllerQuorumVoters      string            // controller.quorum.voters
	LogDirs                     []string          // log.dirs (log.dir)
	MetadataLogDir              string            // metadata.log.dir (defaults to first log dir)
	NumPartitions               int32             // num.partitions (1)
	DefaultReplicationFactor    int16             // default.replication.factor (1)
	MinInsyncReplicas           int32             // min.insync.replicas (1)
	AutoCreateTopicsEnable      bool              // auto.create.topics.enable (true)
	DeleteTopicEnable           bool              // delete.topic.enable (true)
	MessageMaxBytes             int32             // message.max.bytes (1048588)
	SocketRequestMaxBytes       int32             // socket.request.max.bytes (104857600)
	FetchMaxBytes               int32             // fetch.max.bytes (57671680, at least 1024): cap of every fetch response
	FetchSessionCacheSlots      int               // max.incremental.fetch.session.cache.slots (1000; 0: no sessions)
	FetchSessionEviction        time.Duration     // min.incremental.fetch.session.eviction.ms (120000)
	NumIOThreads                int               // num.io.threads (8), informational
	NumReplicaFetchers          int               // num.replica.fetchers (1): follower fetchers per source broker
	HTTPListener                string            // samsa: http.listener (127.0.0.1:8080), "" disables
	GCMinHeapBytes              int64             // samsa: gc.min.heap.bytes (64 MiB): floor of the GC heap goal, 0 disables

	// Connection and request memory limits: see network.go.
	QueuedMaxRequestBytes        int64              // queued.max.request.bytes (134217728; -1: the default)
	ConnectionsMaxIdle           time.Duration      // connections.max.idle.ms (600000)
	MaxConnections               int                // max.connections (10000)
	MaxConnectionsPerIP          int                // max.connections.per.ip (1000)
	MaxConnectionsPerIPOverrides map[netip.Addr]int // max.connections.per.ip.overrides
	SocketRequestReadTimeout     time.Duration      // samsa: socket.request.read.timeout.ms (30000)

	// Group coordinator (Kafka's names).
	OffsetsTopicReplicationFactor int16         // offsets.topic.replication.factor (3; 1 without controller.quorum.voters)
	OffsetsTopicNumPartitions     int32         // offsets.topic.num.partitions (50)
	OffsetsTopicSegmentBytes      int32         // offsets.topic.segment.bytes (104857600)
	OffsetsRetention              time.Duration // offsets.retention.minutes (10080)
	OffsetsRetentionCheckInterval time.Duration // offsets.retention.check.interval.ms (600000)
	GroupInitialRebalanceDelay    time.Duration // group.initial.rebalance.delay.ms (3000)
	GroupMinSessionTimeout        time.Duration // group.min.session.timeout.ms (6000)
	GroupMaxSessionTimeout        time.Duration // group.max.session.timeout.ms (1800000)
	GroupMaxSize                  int           // group.max.size (2147483647)
	OffsetMetadataMaxBytes        int           // offset.metadata.max.bytes (4096)

	// Transaction coordinator (Kafka's names).
	TransactionStateLogReplicationFactor int16         // transaction.state.log.replication.factor (3; 1 without controller.quorum.voters)
	TransactionStateLogNumPartitions     int32         // transaction.state.log.num.partitions (50)
	TransactionStateLogSegmentBytes      int32         // transaction.state.log.segment.bytes (104857600)
	TransactionStateLogMinISR            int32         // transaction.state.log.min.isr (2, capped by the replication factor; 1 without controller.quorum.voters)
	TransactionMaxTimeout                time.Duration // transaction.max.timeout.ms (900000)
	TransactionalIDExpiration            time.Duration // transactional.id.expiration.ms (604800000)
	TransactionAbortTimedOutInterval     time.Duration // transaction.abort.timed.out.transaction.cleanup.interval.ms (10000)
	TransactionRemoveExpiredInterval     time.Duration // transaction.remove.expired.transaction.cleanup.interval.ms (3600000)

	// Cluster holds the quorum and broker liveness settings (cluster.go).
	Cluster Cluster

	// Entries is unused; kept for the contract. Use Broker() and Topic().
	Entries map[string]Entry

	// raw holds the keys set in the file or by overrides, validated;
	// in a Config built by WithDynamic, merged with the dynamic configs.
	raw map[string]string
	// dyn and base are set on a Config built by WithDynamic: the
	// dynamic levels it applied and the static Config below them.
	dyn  *dynamicLayers
	base *Config
	// cache is the last WithDynamic result of this (static) Config,
	// created once.
	cacheOnce sync.Once
	cache     *dynamicCache
}

// Source says where a config value came from (Kafka's ConfigSource).
type Source int8

// Kafka's DescribeConfigs config sources.
const (
	SourceUnknown             Source = 0
	SourceDynamicTopic        Source = 1 // DYNAMIC_TOPIC_CONFIG
	SourceDynamicBroker       Source = 2 // DYNAMIC_BROKER_CONFIG
	SourceDynamicDefault      Source = 3 // DYNAMIC_DEFAULT_BROKER_CONFIG
	SourceStaticBroker        Source = 4 // STATIC_BROKER_CONFIG
	SourceDefault             Source = 5 // DEFAULT_CONFIG
	SourceDynamicBrokerLogger Source = 6
)

// Entry is one config value as DescribeConfigs reports it.
type Entry struct {
	Name      string
	Value     *string // nil for sensitive or unset
	Source    Source
	ReadOnly  bool
	Sensitive bool
	Type      int8 // kmsg ConfigType: 1 BOOLEAN, 2 STRING, 3 INT, 4 SHORT, 5 LONG, 6 DOUBLE, 7 LIST, 8 CLASS, 9 PASSWORD
	Doc       string
	// Synonyms are the levels that set the value, highest precedence
	// first (DescribeConfigs IncludeSynonyms, KIP-226).
	Synonyms []Synonym
}

// Load reads a server.properties file (path "" means none) and applies the
// key=value overrides after it. Unknown keys are logged as warnings; an
// invalid value is an error naming the key.
func Load(path string, overrides []string, logger *slog.Logger) (*Config, error) {
	if logger == nil {
		logger = slog.Default()
	}
	raw := map[string]string{}
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		props, err := ParseProperties(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", path, err)
		}
		for k, v := range props {
			raw[k] = v
		}
	}
	for _, o := range overrides {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return nil, fmt.Errorf("config: override %q is not key=value", o)
		}
		raw[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return FromMap(raw, logger)
}

// ParseProperties reads Java properties: "key=value", "key: value" or
// "key value" lines, '#' and '!' comments, backslash line continuations.
func ParseProperties(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var pending string
	for sc.Scan() {
		line := strings.TrimLeft(sc.Text(), " \t\f")
		if pending == "" && (line == "" || line[0] == '#' || line[0] == '!') {
			continue
		}
		if strings.HasSuffix(line, "\\") && !strings.HasSuffix(line, "\\\\") {
			pending += strings.TrimSuffix(line, "\\")
			continue
		}
		line = pending + line
		pending = ""
		i := strings.IndexAny(line, "=: \t")
		var k, v string
		if i < 0 {
			k = line
		} else {
			k = line[:i]
			v = strings.TrimLeft(line[i+1:], " \t")
			if line[i] == ' ' || line[i] == '\t' {
				if v != "" && (v[0] == '=' || v[0] == ':') {
					v = strings.TrimLeft(v[1:], " \t")
				}
			}
		}
		out[k] = strings.TrimRight(v, " \t\r")
	}
	if pending != "" {
		return nil, fmt.Errorf("unterminated line continuation")
	}
	return out, sc.Err()
}

// FromMap builds a Config from raw key/values (file plus overrides).
func FromMap(raw map[string]string, logger *slog.Logger) (*Config, error) {
	if logger == nil {
		logger = slog.Default()
	}
	c := &Config{Entries: map[string]Entry{}, raw: map[string]string{}}
	for k, v := range raw {
		kd, ok := brokerKeys[k]
		if !ok {
			if tk, isTopic := topicKeys[k]; isTopic && tk.broker == "" {
				kd, ok = tk.key, true
			}
		}
		if !ok {
			logger.Warn("unknown config key ignored", "key", k)
			continue
		}
		if err := checkValue(kd.kind, v); err != nil {
			return nil, fmt.Errorf("config: invalid value %q for %s: %w", v, k, err)
		}
		if kd.ignored {
			logger.Debug("config key accepted but not acted on", "key", k)
		}
		c.raw[k] = v
	}
	c.singleNodeDefaults()
	if err := c.derive(); err != nil {
		return nil, err
	}
	if bs, _ := c.Get("controller.quorum.bootstrap.servers"); strings.TrimSpace(bs) != "" {
		// derive refused it without voters; Kafka prefers the voters too.
		logger.Warn("controller.quorum.bootstrap.servers is ignored: the static controller.quorum.voters define the quorum", "key", "controller.quorum.bootstrap.servers")
	}
	return c, nil
}

// singleNodeKeys are the replication settings of the internal topics
// that a node without controller.quorum.voters (the `samsa start`
// single node, which no other broker can join) sets to 1 unless given:
// Kafka's default of 3 could never be met by one broker, and Kafka's
// own single-node sample server.properties sets them to 1 too.
var singleNodeKeys = []string{
	"offsets.topic.replication.factor",
	"transaction.state.log.replication.factor",
	"transaction.state.log.min.isr",
}

// singleNodeDefaults sets singleNodeKeys to 1 on a node without
// controller.quorum.voters, where not set (as if server.properties said
// so: DescribeConfigs reports them as static broker configs).
func (c *Config) singleNodeDefaults() {
	if v := c.raw["controller.quorum.voters"]; strings.TrimSpace(v) != "" {
		return
	}
	for _, k := range singleNodeKeys {
		if _, ok := c.raw[k]; !ok {
			c.raw[k] = "1"
		}
	}
}

// Get returns the value of a broker key: the set value or the default.
// ok is false for a null default that was not set.
func (c *Config) Get(k string) (string, bool) {
	if v, ok := c.raw[k]; ok {
		return v, true
	}
	if kd, ok := brokerKeys[k]; ok && !kd.null {
		return kd.def, true
	}
	return "", false
}

// IsSet reports whether k was given in the file or an override.
func (c *Config) IsSet(k string) bool { _, ok := c.raw[k]; return ok }

func (c *Config) int64Of(k string) int64 {
	v, _ := c.Get(k)
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

func (c *Config) boolOf(k string) bool {
	v, _ := c.Get(k)
	return strings.EqualFold(v, "true")
}

func checkValue(k kind, v string) error {
	var err error
	switch k {
	case kBool:
		if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			err = fmt.Errorf("not a boolean")
		}
	case kInt:
		_, err = strconv.ParseInt(v, 10, 32)
	case kShort:
		_, err = strconv.ParseInt(v, 10, 16)
	case kLong:
		_, err = strconv.ParseInt(v, 10, 64)
	case kDouble:
		var f float64
		f, err = strconv.ParseFloat(v, 64)
		// ParseFloat accepts "NaN" and "Inf": no config of Kafka's
		// means anything with them, and NaN passes every range check.
		if err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			err = fmt.Errorf("not a finite number")
		}
	}
	if ne, ok := err.(*strconv.NumError); ok {
		err = ne.Err
	}
	return err
}

// derive fills the typed fields from raw values and defaults.
func (c *Config) derive() error {
	id := c.int64Of("node.id")
	if !c.IsSet("node.id") && c.IsSet("broker.id") && c.int64Of("broker.id") >= 0 {
		id = c.int64Of("broker.id")
	}
	if id < 0 {
		return fmt.Errorf("config: node.id must be >= 0, got %d", id)
	}
	c.NodeID = int32(id)
	roles, _ := c.Get("process.roles")
	c.ProcessRoles = splitList(roles)
	for _, r := range c.ProcessRoles {
		if r != "broker" && r != "controller" {
			return fmt.Errorf("config: process.roles: unknown role %q", r)
		}
	}
	if len(c.ProcessRoles) == 0 {
		return fmt.Errorf("config: process.roles is empty")
	}
	pm, _ := c.Get("listener.security.protocol.map")
	c.ListenerSecurityProtocolMap = map[string]string{}
	for _, e := range splitList(pm) {
		name, proto, ok := strings.Cut(e, ":")
		if !ok {
			return fmt.Errorf("config: listener.security.protocol.map: bad entry %q", e)
		}
		c.ListenerSecurityProtocolMap[strings.ToUpper(name)] = strings.ToUpper(proto)
	}
	ls, _ := c.Get("listeners")
	var err error
	if c.Listeners, err = parseListeners(ls); err != nil {
		return fmt.Errorf("config: listeners: %w", err)
	}
	if len(c.Listeners) == 0 {
		return fmt.Errorf("config: listeners is empty")
	}
	c.AdvertisedListeners = nil
	if als, ok := c.Get("advertised.listeners"); ok && als != "" {
		if c.AdvertisedListeners, err = parseListeners(als); err != nil {
			return fmt.Errorf("config: advertised.listeners: %w", err)
		}
	}
	cln, _ := c.Get("controller.listener.names")
	c.ControllerListenerNames = splitList(strings.ToUpper(cln))
	c.InterBrokerListenerName, _ = c.Get("inter.broker.listener.name")
	c.ControllerQuorumVoters, _ = c.Get("controller.quorum.voters")
	for _, l := range c.Listeners {
		if _, ok := c.ListenerSecurityProtocolMap[l.Name]; !ok {
			if l.Name != "PLAINTEXT" {
				return fmt.Errorf("config: listeners: listener %s has no entry in listener.security.protocol.map", l.Name)
			}
			c.ListenerSecurityProtocolMap[l.Name] = "PLAINTEXT"
		}
		if p := c.ListenerSecurityProtocolMap[l.Name]; p != "PLAINTEXT" {
			return fmt.Errorf("config: listeners: listener %s uses security protocol %s, which is not supported yet (only PLAINTEXT)", l.Name, p)
		}
	}
	if len(c.BrokerListeners()) == 0 && c.HasRole("broker") {
		return fmt.Errorf("config: listeners: no broker listener (every listener is in controller.listener.names)")
	}
	if dirs, ok := c.Get("log.dirs"); ok && dirs != "" {
		c.LogDirs = splitList(dirs)
	} else {
		d, _ := c.Get("log.dir")
		c.LogDirs = []string{d}
	}
	if md, ok := c.Get("metadata.log.dir"); ok && md != "" {
		c.MetadataLogDir = md
	} else {
		c.MetadataLogDir = c.LogDirs[0]
	}
	c.NumPartitions = int32(c.int64Of("num.partitions"))
	if c.NumPartitions < 1 {
		return fmt.Errorf("config: num.partitions must be >= 1")
	}
	c.DefaultReplicationFactor = int16(c.int64Of("default.replication.factor"))
	if c.DefaultReplicationFactor < 1 {
		return fmt.Errorf("config: default.replication.factor must be >= 1")
	}
	c.MinInsyncReplicas = int32(c.int64Of("min.insync.replicas"))
	if c.MinInsyncReplicas < 1 {
		return fmt.Errorf("config: min.insync.replicas must be >= 1")
	}
	c.AutoCreateTopicsEnable = c.boolOf("auto.create.topics.enable")
	c.DeleteTopicEnable = c.boolOf("delete.topic.enable")
	c.MessageMaxBytes = int32(c.int64Of("message.max.bytes"))
	c.SocketRequestMaxBytes = int32(c.int64Of("socket.request.max.bytes"))
	if c.SocketRequestMaxBytes <= 0 {
		return fmt.Errorf("config: socket.request.max.bytes must be > 0")
	}
	if err := c.deriveNetwork(); err != nil {
		return err
	}
	c.FetchMaxBytes = int32(c.int64Of("fetch.max.bytes"))
	if c.FetchMaxBytes < 1024 {
		return fmt.Errorf("config: fetch.max.bytes must be >= 1024")
	}
	c.FetchSessionCacheSlots = int(c.int64Of("max.incremental.fetch.session.cache.slots"))
	if c.FetchSessionCacheSlots < 0 {
		return fmt.Errorf("config: max.incremental.fetch.session.cache.slots must be >= 0")
	}
	c.FetchSessionEviction = time.Duration(c.int64Of("min.incremental.fetch.session.eviction.ms")) * time.Millisecond
	if c.FetchSessionEviction < 0 {
		return fmt.Errorf("config: min.incremental.fetch.session.eviction.ms must be >= 0")
	}
	c.NumIOThreads = int(c.int64Of("num.io.threads"))
	c.NumReplicaFetchers = int(c.int64Of("num.replica.fetchers"))
	if c.NumReplicaFetchers < 1 {
		return fmt.Errorf("config: num.replica.fetchers must be >= 1")
	}
	c.HTTPListener, _ = c.Get("http.listener")
	if c.GCMinHeapBytes = c.int64Of("gc.min.heap.bytes"); c.GCMinHeapBytes < 0 {
		return fmt.Errorf("config: gc.min.heap.bytes must be >= 0")
	}
	if err := c.deriveGroup(); err != nil {
		return err
	}
	if err := c.deriveTxn(); err != nil {
		return err
	}
	if err := c.deriveCluster(); err != nil {
		return err
	}
	if mt, _ := c.Get("log.message.timestamp.type"); mt != "CreateTime" && mt != "LogAppendTime" {
		return fmt.Errorf("config: log.message.timestamp.type must be CreateTime or LogAppendTime, got %q", mt)
	}
	return nil
}

// HasRole reports whether process.roles contains role.
func (c *Config) HasRole(role string) bool {
	for _, r := range c.ProcessRoles {
		if r == role {
			return true
		}
	}
	return false
}

// IsControllerListener reports whether the listener name is in
// controller.listener.names.
func (c *Config) IsControllerListener(name string) bool {
	for _, n := range c.ControllerListenerNames {
		if n == name {
			return true
		}
	}
	return false
}

// BrokerListeners are the listeners that serve Kafka clients.
func (c *Config) BrokerListeners() []Listener {
	var out []Listener
	for _, l := range c.Listeners {
		if !c.IsControllerListener(l.Name) {
			out = append(out, l)
		}
	}
	return out
}

// SplitList splits a comma-separated list value (cleanup.policy,
// process.roles, ...) into its trimmed, non-empty items.
func SplitList(s string) []string { return splitList(s) }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseListeners parses "NAME://host:port,..." (an empty host means all
// interfaces, as in Kafka).
func parseListeners(s string) ([]Listener, error) {
	var out []Listener
	seen := map[string]bool{}
	for _, e := range splitList(s) {
		name, addr, ok := strings.Cut(e, "://")
		if !ok {
			return nil, fmt.Errorf("%q is not NAME://host:port", e)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", e, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("%q: bad port", e)
		}
		name = strings.ToUpper(name)
		if seen[name] {
			return nil, fmt.Errorf("listener name %s used twice", name)
		}
		seen[name] = true
		out = append(out, Listener{Name: name, Host: host, Port: p})
	}
	return out, nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// deriveGroup fills the group coordinator settings.
func (c *Config) deriveGroup() error {
	c.OffsetsTopicReplicationFactor = int16(c.int64Of("offsets.topic.replication.factor"))
	c.OffsetsTopicNumPartitions = int32(c.int64Of("offsets.topic.num.partitions"))
	c.OffsetsTopicSegmentBytes = int32(c.int64Of("offsets.topic.segment.bytes"))
	c.OffsetsRetention = time.Duration(c.int64Of("offsets.retention.minutes")) * time.Minute
	ms := func(k string) time.Duration { return time.Duration(c.int64Of(k)) * time.Millisecond }
	c.GroupInitialRebalanceDelay = ms("group.initial.rebalance.delay.ms")
	c.GroupMinSessionTimeout = ms("group.min.session.timeout.ms")
	c.GroupMaxSessionTimeout = ms("group.max.session.timeout.ms")
	c.GroupMaxSize = int(c.int64Of("group.max.size"))
	c.OffsetMetadataMaxBytes = int(c.int64Of("offset.metadata.max.bytes"))
	c.OffsetsRetentionCheckInterval = ms("offsets.retention.check.interval.ms")
	switch {
	case c.OffsetsTopicReplicationFactor < 1:
		return fmt.Errorf("config: offsets.topic.replication.factor must be >= 1")
	case c.OffsetsTopicNumPartitions < 1:
		return fmt.Errorf("config: offsets.topic.num.partitions must be >= 1")
	case c.OffsetsTopicSegmentBytes < 1:
		return fmt.Errorf("config: offsets.topic.segment.bytes must be >= 1")
	case c.GroupInitialRebalanceDelay < 0:
		return fmt.Errorf("config: group.initial.rebalance.delay.ms must be >= 0")
	case c.GroupMinSessionTimeout < 0 || c.GroupMaxSessionTimeout < c.GroupMinSessionTimeout:
		return fmt.Errorf("config: group.min.session.timeout.ms must be >= 0 and <= group.max.session.timeout.ms")
	case c.GroupMaxSize < 1:
		return fmt.Errorf("config: group.max.size must be >= 1")
	case c.OffsetMetadataMaxBytes < 0:
		return fmt.Errorf("config: offset.metadata.max.bytes must be >= 0")
	case c.OffsetsRetention < time.Minute:
		return fmt.Errorf("config: offsets.retention.minutes must be >= 1")
	case c.OffsetsRetentionCheckInterval < time.Millisecond:
		return fmt.Errorf("config: offsets.retention.check.interval.ms must be >= 1")
	}
	return nil
}

// deriveTxn fills the transaction coordinator settings.
func (c *Config) deriveTxn() error {
	ms := func(k string) time.Duration { return time.Duration(c.int64Of(k)) * time.Millisecond }
	c.TransactionStateLogReplicationFactor = int16(c.int64Of("transaction.state.log.replication.factor"))
	c.TransactionStateLogNumPartitions = int32(c.int64Of("transaction.state.log.num.partitions"))
	c.TransactionStateLogSegmentBytes = int32(c.int64Of("transaction.state.log.segment.bytes"))
	c.TransactionStateLogMinISR = int32(c.int64Of("transaction.state.log.min.isr"))
	c.TransactionMaxTimeout = ms("transaction.max.timeout.ms")
	c.TransactionalIDExpiration = ms("transactional.id.expiration.ms")
	c.TransactionAbortTimedOutInterval = ms("transaction.abort.timed.out.transaction.cleanup.interval.ms")
	c.TransactionRemoveExpiredInterval = ms("transaction.remove.expired.transaction.cleanup.interval.ms")
	switch {
	case c.TransactionStateLogReplicationFactor < 1:
		return fmt.Errorf("config: transaction.state.log.replication.factor must be >= 1")
	case c.TransactionStateLogNumPartitions < 1:
		return fmt.Errorf("config: transaction.state.log.num.partitions must be >= 1")
	case c.TransactionStateLogSegmentBytes < 1:
		return fmt.Errorf("config: transaction.state.log.segment.bytes must be >= 1")
	case c.TransactionStateLogMinISR < 1:
		return fmt.Errorf("config: transaction.state.log.min.isr must be >= 1")
	case c.TransactionMaxTimeout < time.Millisecond:
		return fmt.Errorf("config: transaction.max.timeout.ms must be >= 1")
	case c.TransactionalIDExpiration < time.Millisecond:
		return fmt.Errorf("config: transactional.id.expiration.ms must be >= 1")
	case c.TransactionAbortTimedOutInterval < time.Millisecond:
		return fmt.Errorf("config: transaction.abort.timed.out.transaction.cleanup.interval.ms must be >= 1")
	case c.TransactionRemoveExpiredInterval < time.Millisecond:
		return fmt.Errorf("config: transaction.remove.expired.transaction.cleanup.interval.ms must be >= 1")
	}
	return nil
}
