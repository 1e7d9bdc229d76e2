package metadata

// Record is one entry of the metadata log. Exactly one of the pointer
// fields is set; Type names it (Kafka's metadata record names, so the log
// reads like KRaft's). Records are immutable once appended.
type Record struct {
	Type            RecordType             `json:"type"`
	RegisterBroker  *RegisterBrokerRecord  `json:"registerBroker,omitempty"`
	BrokerChange    *BrokerChangeRecord    `json:"brokerChange,omitempty"`
	Topic           *TopicRecord           `json:"topic,omitempty"`
	Partition       *PartitionRecord       `json:"partition,omitempty"`
	PartitionChange *PartitionChangeRecord `json:"partitionChange,omitempty"`
	Config          *ConfigRecord          `json:"config,omitempty"`
	RemoveTopic     *RemoveTopicRecord     `json:"removeTopic,omitempty"`
	ProducerIDs     *ProducerIDsRecord     `json:"producerIds,omitempty"`
	// UnregisterBroker removes a broker's registration (KIP-841).
	UnregisterBroker *UnregisterBrokerRecord `json:"unregisterBroker,omitempty"`
}

// RecordType names a metadata record.
type RecordType string

// Metadata record types (named after KRaft's).
const (
	TypeRegisterBroker  RecordType = "RegisterBrokerRecord"
	TypeBrokerChange    RecordType = "BrokerRegistrationChangeRecord"
	TypeTopic           RecordType = "TopicRecord"
	TypePartition       RecordType = "PartitionRecord"
	TypePartitionChange RecordType = "PartitionChangeRecord"
	TypeConfig          RecordType = "ConfigRecord"
	TypeRemoveTopic     RecordType = "RemoveTopicRecord"
	TypeProducerIDs     RecordType = "ProducerIdsRecord"
)

// TypeUnregisterBroker is KRaft's UnregisterBrokerRecord (KIP-841).
const TypeUnregisterBroker RecordType = "UnregisterBrokerRecord"

// RegisterBrokerRecord registers (or re-registers) a broker. The broker
// epoch is the offset of the entry that holds the record (Kafka: the
// offset of the RegisterBrokerRecord), unless BrokerEpoch is set, which
// only snapshots do (Image.Records keeps the epoch of the original
// registration).
type RegisterBrokerRecord struct {
	BrokerID  int32      `json:"brokerId"`
	Rack      string     `json:"rack,omitempty"`
	Endpoints []Endpoint `json:"endpoints"`
	Fenced    bool       `json:"fenced,omitempty"`
	// BrokerEpoch is the broker epoch to keep (snapshots); nil: the
	// entry's offset.
	BrokerEpoch *int64 `json:"brokerEpoch,omitempty"`
	// InControlledShutdown is set by snapshots of a broker in
	// controlled shutdown; a registration clears it.
	InControlledShutdown bool `json:"inControlledShutdown,omitempty"`
	// IncarnationID is the registering process's random id (Kafka's
	// RegisterBrokerRecord.IncarnationId): a registration with another
	// one is a restart. Zero in entries written before it was kept.
	IncarnationID UUID `json:"incarnationId,omitzero"`
}

// BrokerChangeRecord changes a registered broker's state without a new
// registration, so its broker epoch stays (Kafka's
// BrokerRegistrationChangeRecord): fencing, unfencing, entering
// controlled shutdown. Nil fields are unchanged.
type BrokerChangeRecord struct {
	BrokerID             int32 `json:"brokerId"`
	Fenced               *bool `json:"fenced,omitempty"`
	InControlledShutdown *bool `json:"inControlledShutdown,omitempty"`
}

// UnregisterBrokerRecord removes the registration of broker BrokerID,
// whose broker epoch must be BrokerEpoch (Kafka's UnregisterBrokerRecord;
// its replay refuses another epoch). The partitions that list the broker
// keep it among their replicas (an offline replica) until reassigned.
type UnregisterBrokerRecord struct {
	BrokerID    int32 `json:"brokerId"`
	BrokerEpoch int64 `json:"brokerEpoch"`
}

// TopicRecord creates a topic.
type TopicRecord struct {
	Name    string `json:"name"`
	TopicID UUID   `json:"topicId"`
}

// PartitionRecord creates a partition of a topic.
type PartitionRecord struct {
	TopicID        UUID    `json:"topicId"`
	PartitionID    int32   `json:"partitionId"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leaderEpoch"`
	PartitionEpoch int32   `json:"partitionEpoch"`
	// AddingReplicas and RemovingReplicas are the replicas an ongoing
	// reassignment adds and removes (KIP-455; Kafka's PartitionRecord
	// fields of the same names); absent (older logs): none.
	AddingReplicas   []int32 `json:"addingReplicas,omitempty"`
	RemovingReplicas []int32 `json:"removingReplicas,omitempty"`
}

// PartitionChangeRecord changes a partition's leader, ISR, replicas or
// ongoing reassignment; nil fields are unchanged (an ISR is never empty:
// Kafka keeps the last member). The applier bumps the epochs as KRaft's
// PartitionRegistration.merge does: the leader epoch when the leader
// changes, the partition epoch on every change record.
type PartitionChangeRecord struct {
	TopicID     UUID    `json:"topicId"`
	PartitionID int32   `json:"partitionId"`
	Leader      *int32  `json:"leader,omitempty"`
	ISR         []int32 `json:"isr,omitempty"`
	Replicas    []int32 `json:"replicas,omitempty"`
	// AddingReplicas and RemovingReplicas replace the partition's
	// reassignment state when non-nil; a pointer to an empty list clears
	// it (JSON [] , while absent means unchanged: Kafka's null).
	AddingReplicas   *[]int32 `json:"addingReplicas,omitempty"`
	RemovingReplicas *[]int32 `json:"removingReplicas,omitempty"`
}

// ConfigRecord sets (Value non-nil) or removes a config of a resource.
// ResourceType is Kafka's: 2 topic, 4 broker.
type ConfigRecord struct {
	ResourceType int8    `json:"resourceType"`
	ResourceName string  `json:"resourceName"`
	Name         string  `json:"name"`
	Value        *string `json:"value"`
}

// RemoveTopicRecord deletes a topic and its partitions.
type RemoveTopicRecord struct {
	TopicID UUID `json:"topicId"`
}

// ProducerIDsRecord reserves producer ids below NextProducerID.
type ProducerIDsRecord struct {
	BrokerID       int32 `json:"brokerId"`
	NextProducerID int64 `json:"nextProducerId"`
}

// Config resource types (Kafka's ConfigResource.Type).
const (
	ResourceTopic  int8 = 2
	ResourceBroker int8 = 4
)
