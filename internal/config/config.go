// Package config reads Kafka-style server.properties files and holds the
// broker configuration and the topic-config defaults derived from it.
package config

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
	NumIOThreads                int               // num.io.threads (8), informational
	HTTPListener                string            // samsa: http.listener (127.0.0.1:8080), "" disables

	// Entries holds every key with its value and source, for DescribeConfigs.
	Entries map[string]Entry
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
}

// Broker returns every broker config entry, sorted by name.
func (c *Config) Broker() []Entry { panic("unimplemented") }

// Topic returns every topic config entry for a topic with the given
// overrides (source DYNAMIC_TOPIC_CONFIG), the rest from the broker's
// log.* settings (STATIC_BROKER_CONFIG) or Kafka's defaults (DEFAULT_CONFIG),
// sorted by name.
func (c *Config) Topic(overrides map[string]string) []Entry { panic("unimplemented") }

// ValidateTopicConfig checks topic config overrides (known key, valid
// value) as CreateTopics/AlterConfigs must; the error names the key.
func ValidateTopicConfig(overrides map[string]string) error { panic("unimplemented") }
