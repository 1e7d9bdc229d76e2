package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Cluster settings (Kafka's KRaft names), filled by deriveCluster.
type Cluster struct {
	// Voters is controller.quorum.voters parsed: node id -> host:port of
	// its controller listener. Empty: a one-voter quorum of this node
	// (the server fills in its own controller address).
	Voters map[int32]string
	// ElectionTimeout is controller.quorum.election.timeout.ms.
	ElectionTimeout time.Duration
	// SnapshotBytes is metadata.log.max.record.bytes.between.snapshots.
	SnapshotBytes int64
	// SnapshotInterval is metadata.log.max.snapshot.interval.ms; < 0
	// disables (Kafka's 0).
	SnapshotInterval time.Duration
	// SessionTimeout is broker.session.timeout.ms: a broker that has not
	// heartbeated this long is fenced.
	SessionTimeout time.Duration
	// HeartbeatInterval is broker.heartbeat.interval.ms.
	HeartbeatInterval time.Duration
	// Rack is broker.rack ("" when unset).
	Rack string
	// ReplicaSelector is replica.selector.class: "" (consumers read from
	// the leader) or RackAwareReplicaSelector.
	ReplicaSelector string
	// AutoLeaderRebalance is auto.leader.rebalance.enable: the active
	// controller elects preferred leaders of imbalanced brokers.
	AutoLeaderRebalance bool
	// LeaderImbalanceCheckInterval is
	// leader.imbalance.check.interval.seconds: the period of that check.
	LeaderImbalanceCheckInterval time.Duration
	// LeaderImbalancePerBrokerPercentage is
	// leader.imbalance.per.broker.percentage (0-100): a broker is
	// imbalanced when more than this percentage of the partitions it is
	// the preferred replica of are led by another broker.
	LeaderImbalancePerBrokerPercentage int
}

// RackAwareReplicaSelector is Kafka's rack-aware replica selector class
// (KIP-392), the one non-empty replica.selector.class Samsa accepts.
const RackAwareReplicaSelector = "org.apache.kafka.common.replica.RackAwareReplicaSelector"

// ParseVoters parses controller.quorum.voters ("id@host:port,..."). Port
// 0 is accepted (this node's own entry: its bound port); the server
// refuses it for another node.
func ParseVoters(s string) (map[int32]string, error) {
	out := map[int32]string{}
	for _, v := range splitList(s) {
		idS, addr, ok := strings.Cut(v, "@")
		if !ok {
			return nil, fmt.Errorf("config: controller.quorum.voters: entry %q is not id@host:port", v)
		}
		id, err := strconv.ParseInt(idS, 10, 32)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("config: controller.quorum.voters: entry %q: bad node id", v)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" {
			return nil, fmt.Errorf("config: controller.quorum.voters: entry %q: bad host:port", v)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("config: controller.quorum.voters: entry %q: bad port", v)
		}
		if _, dup := out[int32(id)]; dup {
			return nil, fmt.Errorf("config: controller.quorum.voters: node %d is listed twice", id)
		}
		out[int32(id)] = addr
	}
	return out, nil
}

// deriveCluster fills c.Cluster.
func (c *Config) deriveCluster() error {
	var err error
	if c.Cluster.Voters, err = ParseVoters(c.ControllerQuorumVoters); err != nil {
		return err
	}
	if bs, _ := c.Get("controller.quorum.bootstrap.servers"); strings.TrimSpace(bs) != "" && len(c.Cluster.Voters) == 0 {
		return fmt.Errorf("config: controller.quorum.bootstrap.servers is set but controller.quorum.voters is empty: Samsa runs static quorums only (no KIP-853 dynamic quorum); list the voters in controller.quorum.voters (id@host:port,...) instead")
	}
	ms := func(k string) time.Duration { return time.Duration(c.int64Of(k)) * time.Millisecond }
	c.Cluster.ElectionTimeout = ms("controller.quorum.election.timeout.ms")
	c.Cluster.SnapshotBytes = c.int64Of("metadata.log.max.record.bytes.between.snapshots")
	c.Cluster.SnapshotInterval = ms("metadata.log.max.snapshot.interval.ms")
	if c.Cluster.SnapshotInterval == 0 {
		c.Cluster.SnapshotInterval = -1
	}
	c.Cluster.SessionTimeout = ms("broker.session.timeout.ms")
	c.Cluster.HeartbeatInterval = ms("broker.heartbeat.interval.ms")
	c.Cluster.Rack, _ = c.Get("broker.rack")
	c.Cluster.AutoLeaderRebalance = c.boolOf("auto.leader.rebalance.enable")
	c.Cluster.LeaderImbalanceCheckInterval = time.Duration(c.int64Of("leader.imbalance.check.interval.seconds")) * time.Second
	c.Cluster.LeaderImbalancePerBrokerPercentage = int(c.int64Of("leader.imbalance.per.broker.percentage"))
	c.Cluster.ReplicaSelector, _ = c.Get("replica.selector.class")
	c.Cluster.ReplicaSelector = strings.TrimSpace(c.Cluster.ReplicaSelector)
	if s := c.Cluster.ReplicaSelector; s != "" && s != RackAwareReplicaSelector {
		return fmt.Errorf("config: replica.selector.class %q is not supported: leave it unset (consumers read from leaders) or set %s", s, RackAwareReplicaSelector)
	}
	switch {
	case c.Cluster.ElectionTimeout < 10*time.Millisecond:
		return fmt.Errorf("config: controller.quorum.election.timeout.ms must be >= 10")
	case c.Cluster.SnapshotBytes < 1:
		return fmt.Errorf("config: metadata.log.max.record.bytes.between.snapshots must be >= 1")
	case c.Cluster.SnapshotInterval < -1:
		return fmt.Errorf("config: metadata.log.max.snapshot.interval.ms must be >= 0")
	case c.Cluster.HeartbeatInterval < time.Millisecond:
		return fmt.Errorf("config: broker.heartbeat.interval.ms must be >= 1")
	case c.Cluster.SessionTimeout <= c.Cluster.HeartbeatInterval:
		return fmt.Errorf("config: broker.session.timeout.ms must be larger than broker.heartbeat.interval.ms")
	case c.Cluster.LeaderImbalanceCheckInterval < time.Second || c.int64Of("leader.imbalance.check.interval.seconds") > 1<<31:
		return fmt.Errorf("config: leader.imbalance.check.interval.seconds must be >= 1")
	case c.Cluster.LeaderImbalancePerBrokerPercentage < 0 || c.Cluster.LeaderImbalancePerBrokerPercentage > 100:
		return fmt.Errorf("config: leader.imbalance.per.broker.percentage must be between 0 and 100")
	}
	if c.HasRole("controller") && len(c.Cluster.Voters) > 0 {
		if _, ok := c.Cluster.Voters[c.NodeID]; !ok {
			return fmt.Errorf("config: controller.quorum.voters does not list node.id %d, but process.roles has controller", c.NodeID)
		}
	}
	if !c.HasRole("controller") {
		if len(c.Cluster.Voters) == 0 {
			return fmt.Errorf("config: controller.quorum.voters is empty: a process.roles=broker node needs the controllers' addresses")
		}
		if _, ok := c.Cluster.Voters[c.NodeID]; ok {
			return fmt.Errorf("config: controller.quorum.voters lists node.id %d, but process.roles has no controller", c.NodeID)
		}
	}
	return nil
}
