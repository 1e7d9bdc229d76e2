// Package metadata holds the cluster metadata model: the records of the
// metadata log (__cluster_metadata), the immutable Image every node replays
// them into, and the publisher that hands new images to components.
//
// A node's handle on the replicated log is a Quorum (apply, then publish):
// LocalQuorum on one node's LocalLog file, raft.MetadataLog on a Raft
// quorum. Entries and snapshots are encoded by EncodeEntry and
// EncodeSnapshot (layouts in snapshot.go); a snapshot is the image written
// as records (Image.Records). The contract every Quorum meets is the suite
// in package quorumtest.
package metadata

import (
	"net"
	"slices"
	"strconv"
)

// UUID is a Kafka UUID (topic id, directory id).
type UUID [16]byte

// Endpoint is one listener a broker advertises.
type Endpoint struct {
	Listener         string // listener name, e.g. "PLAINTEXT"
	Host             string
	Port             int32
	SecurityProtocol string // "PLAINTEXT", "SSL", ...
}

// Broker is a registered broker.
type Broker struct {
	ID        int32
	Rack      string // "" when unset
	Endpoints []Endpoint
	Fenced    bool
	// Epoch is the broker epoch: the offset of the entry of its last
	// registration. A broker's requests carry it; a stale one is refused
	// (STALE_BROKER_EPOCH, KIP-903 INELIGIBLE_REPLICA).
	Epoch int64
	// InControlledShutdown: the broker asked to shut down and is
	// unfenced while its leaderships move away (Kafka's
	// BrokerRegistration.inControlledShutdown). It leads nothing new
	// and joins no ISR.
	InControlledShutdown bool
	// IncarnationID is the process id of its last registration (zero:
	// not recorded, an entry of an older release).
	IncarnationID UUID
}

// Addr is the host:port of the broker's endpoint on listener ("" when it
// has none there).
func (b Broker) Addr(listener string) string {
	for _, e := range b.Endpoints {
		if e.Listener == listener {
			return e.Addr()
		}
	}
	return ""
}

// AddrOrFirst is Addr, or the first endpoint's when the broker has none
// on listener ("" with no endpoint at all).
func (b Broker) AddrOrFirst(listener string) string {
	if a := b.Addr(listener); a != "" || len(b.Endpoints) == 0 {
		return a
	}
	return b.Endpoints[0].Addr()
}

// Addr is the endpoint's host:port.
func (e Endpoint) Addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port))) }

// Active reports whether the broker can lead and be in an ISR: unfenced
// and not in controlled shutdown (Kafka's ClusterControlManager.isActive).
func (b Broker) Active() bool { return !b.Fenced && !b.InControlledShutdown }

// Partition is one partition's replication state (Kafka's
// PartitionRegistration). Invariants kept by the controller: ISR is a
// non-empty subset of Replicas; Leader is -1 or a member of ISR.
type Partition struct {
	ID       int32
	Replicas []int32 // in preference order: Replicas[0] is the preferred leader
	ISR      []int32
	Leader   int32 // -1 when offline
	// LeaderEpoch is bumped at every leader change (KIP-101/279).
	LeaderEpoch int32
	// PartitionEpoch is bumped at every change of the partition (leader,
	// ISR, replicas); AlterPartition must name the current one.
	PartitionEpoch int32
	// AddingReplicas and RemovingReplicas describe an ongoing
	// reassignment (KIP-455, Kafka's PartitionRegistration): Replicas is
	// then the target replicas followed by the removing ones, so both
	// the old and the new replicas hold the partition while the adding
	// ones catch up. nil (never empty) when none.
	AddingReplicas   []int32
	RemovingReplicas []int32
}

// Reassigning reports whether a reassignment of the partition is in
// progress (Kafka's PartitionReassignmentReplicas.isReassignmentInProgress).
func (p *Partition) Reassigning() bool {
	return len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0
}

// TargetReplicas is the replica list the partition has once its ongoing
// reassignment completes: Replicas without RemovingReplicas.
func (p *Partition) TargetReplicas() []int32 {
	out := make([]int32, 0, len(p.Replicas))
	for _, r := range p.Replicas {
		if !slices.Contains(p.RemovingReplicas, r) {
			out = append(out, r)
		}
	}
	return out
}

// OriginalReplicas is the replica list before the ongoing reassignment
// (what cancelling it reverts to): Replicas without AddingReplicas
// (Kafka's PartitionReassignmentReplicas.originalReplicas).
func (p *Partition) OriginalReplicas() []int32 {
	out := make([]int32, 0, len(p.Replicas))
	for _, r := range p.Replicas {
		if !slices.Contains(p.AddingReplicas, r) {
			out = append(out, r)
		}
	}
	return out
}

// Topic is one topic.
type Topic struct {
	Name       string
	ID         UUID
	Partitions []Partition       // index == partition id
	Configs    map[string]string // dynamic topic config overrides
}

// Image is an immutable view of the cluster metadata at one offset of the
// metadata log. Never modify an Image or anything reachable from it: a new
// image is built for every change.
type Image struct {
	ClusterID    string
	Offset       int64 // metadata log offset of the last record applied; -1 empty
	ControllerID int32
	Brokers      map[int32]Broker
	Topics       map[string]*Topic
	TopicsByID   map[UUID]*Topic
	// BrokerConfigs are the dynamic broker configs (KIP-226) by
	// resource name: "" the cluster-wide default, "N" broker N; name ->
	// value. A resource with no config has no entry.
	BrokerConfigs  map[string]map[string]string
	NextProducerID int64 // first producer id not yet handed out
}

// Topic returns a topic by name.
func (im *Image) Topic(name string) (*Topic, bool) {
	t, ok := im.Topics[name]
	return t, ok
}

// TopicByID returns a topic by id.
func (im *Image) TopicByID(id UUID) (*Topic, bool) {
	t, ok := im.TopicsByID[id]
	return t, ok
}

// DynamicBrokerConfigs returns the cluster-wide default and broker id's
// dynamic configs (nil maps when none). Never modify them.
func (im *Image) DynamicBrokerConfigs(id int32) (clusterDefault, broker map[string]string) {
	return im.BrokerConfigs[""], im.BrokerConfigs[strconv.Itoa(int(id))]
}
