package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ThrottledReplicas is the value of a topic's
// leader.replication.throttled.replicas or
// follower.replication.throttled.replicas (KIP-73): "*" (every replica of
// every partition) or a list of partition:broker pairs, as Kafka's
// ThrottledReplicaListValidator accepts it. An empty list throttles
// nothing.
type ThrottledReplicas struct {
	// All is "*".
	All bool
	// Pairs are the listed replicas, in the order given.
	Pairs []ThrottledReplica
}

// ThrottledReplica is one partition:broker pair.
type ThrottledReplica struct {
	Partition int32
	Broker    int32
}

// maxThrottledPairs bounds the pairs of one value (a topic of 10,000
// partitions with 3 replicas each is 30,000).
const maxThrottledPairs = 1 << 20

// ParseThrottledReplicas parses a throttled replicas value: "*", "" or
// "p:b,p:b,..." with non-negative integers (spaces around entries are
// ignored).
func ParseThrottledReplicas(v string) (ThrottledReplicas, error) {
	v = strings.TrimSpace(v)
	if v == "*" {
		return ThrottledReplicas{All: true}, nil
	}
	var out ThrottledReplicas
	if v == "" {
		return out, nil
	}
	for entry := range strings.SplitSeq(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if len(out.Pairs) >= maxThrottledPairs {
			return ThrottledReplicas{}, fmt.Errorf("more than %d replicas", maxThrottledPairs)
		}
		ps, bs, ok := strings.Cut(entry, ":")
		p, perr := strconv.ParseInt(strings.TrimSpace(ps), 10, 32)
		b, berr := strconv.ParseInt(strings.TrimSpace(bs), 10, 32)
		if !ok || perr != nil || berr != nil || p < 0 || b < 0 {
			return ThrottledReplicas{}, errors.New("must be the literal '*' or a list of replicas in the format [partitionId]:[brokerId],[partitionId]:[brokerId]")
		}
		out.Pairs = append(out.Pairs, ThrottledReplica{Partition: int32(p), Broker: int32(b)})
	}
	return out, nil
}

// PartitionsOf returns the partitions whose replica on broker is
// throttled: all (for "*"), or the set listed for it (nil when none).
// Kafka's TopicConfigHandler.parseThrottledPartitions.
func (t ThrottledReplicas) PartitionsOf(broker int32) (all bool, parts map[int32]bool) {
	if t.All {
		return true, nil
	}
	for _, r := range t.Pairs {
		if r.Broker != broker {
			continue
		}
		if parts == nil {
			parts = map[int32]bool{}
		}
		parts[r.Partition] = true
	}
	return false, parts
}

// String renders the value as Kafka writes it.
func (t ThrottledReplicas) String() string {
	if t.All {
		return "*"
	}
	var b strings.Builder
	for i, r := range t.Pairs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d:%d", r.Partition, r.Broker)
	}
	return b.String()
}
