package cli

// The replication throttle of `samsa cluster reassign` (KIP-73), as
// kafka-reassign-partitions.sh sets and clears it:
//
//   - --execute --throttle N sets leader.replication.throttled.rate and
//     follower.replication.throttled.rate to N on every broker of the
//     moves (source and destination replicas, per-broker dynamic
//     configs), and on every topic of the moves
//     leader.replication.throttled.replicas to the partitions' current
//     replicas and follower.replication.throttled.replicas to the
//     replicas being added, as partition:broker lists (Kafka's
//     ReassignPartitionsCommand.modifyReassignmentThrottle). Given again
//     on a running move it updates the rate (and the lists).
//   - --verify, once every move of the file completed, deletes the two
//     rates on every broker and the two lists on the file's topics
//     (Kafka's clearAllThrottles), unless --preserve-throttles.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's names of the throttle configs.
const (
	leaderRateKey       = "leader.replication.throttled.rate"
	followerRateKey     = "follower.replication.throttled.rate"
	leaderReplicasKey   = "leader.replication.throttled.replicas"
	followerReplicasKey = "follower.replication.throttled.replicas"
)

// throttleMove is one partition move of the file: the replicas it moves
// from (the current ones, without those a running move is adding) and
// those it adds.
type throttleMove struct {
	topic     string
	partition int32
	sources   []int32
	adding    []int32
}

// moveMap computes the moves of r against the current assignment cur
// and the moves in progress (Kafka's calculateProposedMoveMap): for a
// running move the sources are its original replicas.
func moveMap(r, cur *reassignment, ongoing map[topicPartition][]int32) []throttleMove {
	var out []throttleMove
	for i, p := range r.Partitions {
		sources := slices.Clone(cur.Partitions[i].Replicas)
		if adding, ok := ongoing[topicPartition{p.Topic, p.Partition}]; ok {
			sources = slices.DeleteFunc(sources, func(b int32) bool { return slices.Contains(adding, b) })
		}
		var adding []int32
		for _, b := range p.Replicas {
			if !slices.Contains(sources, b) {
				adding = append(adding, b)
			}
		}
		if len(adding) == 0 && slices.Equal(sources, p.Replicas) {
			continue // nothing moves
		}
		out = append(out, throttleMove{topic: p.Topic, partition: p.Partition, sources: sources, adding: adding})
	}
	return out
}

// throttleLists returns per topic the leader and follower throttled
// replicas lists ("p:b,...", sorted) of the moves.
func throttleLists(moves []throttleMove) (leader, follower map[string]string) {
	type pb struct{ p, b int32 }
	lead, fol := map[string][]pb{}, map[string][]pb{}
	for _, m := range moves {
		for _, b := range m.sources {
			lead[m.topic] = append(lead[m.topic], pb{m.partition, b})
		}
		for _, b := range m.adding {
			fol[m.topic] = append(fol[m.topic], pb{m.partition, b})
		}
		if _, ok := fol[m.topic]; !ok {
			fol[m.topic] = nil
		}
	}
	render := func(in map[string][]pb) map[string]string {
		out := map[string]string{}
		for t, xs := range in {
			slices.SortFunc(xs, func(a, b pb) int {
				if a.p != b.p {
					return int(a.p - b.p)
				}
				return int(a.b - b.b)
			})
			xs = slices.Compact(xs)
			s := make([]string, len(xs))
			for i, x := range xs {
				s[i] = fmt.Sprintf("%d:%d", x.p, x.b)
			}
			out[t] = strings.Join(s, ",")
		}
		return out
	}
	return render(lead), render(fol)
}

// throttleBrokers are the brokers of the moves, sorted.
func throttleBrokers(moves []throttleMove) []int32 {
	var out []int32
	for _, m := range moves {
		for _, b := range append(slices.Clone(m.sources), m.adding...) {
			if !slices.Contains(out, b) {
				out = append(out, b)
			}
		}
	}
	slices.Sort(out)
	return out
}

// ongoingAdding returns the replicas each running move of r's partitions
// is adding (ListPartitionReassignments).
func ongoingAdding(ctx context.Context, adm *kadm.Client, r *reassignment) (map[topicPartition][]int32, error) {
	set := kadm.TopicsSet{}
	for _, p := range r.Partitions {
		set.Add(p.Topic, p.Partition)
	}
	resp, err := adm.ListPartitionReassignments(ctx, set)
	if err != nil {
		return nil, fmt.Errorf("list partition reassignments: %w", err)
	}
	out := map[topicPartition][]int32{}
	for _, ps := range resp {
		for _, s := range ps {
			out[topicPartition{s.Topic, s.Partition}] = s.AddingReplicas
		}
	}
	return out, nil
}

// alterErrors collects the failures of an IncrementalAlterConfigs: the
// resources answered with an error fail it; a broker that did not answer
// (per-broker configs go to that broker, as Kafka requires: a stopped
// one cannot be reached) is only a warning on ew, so that a stopped
// broker does not block the throttle of the others or its removal.
func alterErrors(what string, resps kadm.AlterConfigsResponses, err error, ew io.Writer) error {
	if err != nil && unlessSharded(err) != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var bad []string
	for _, r := range resps {
		if r.Err != nil {
			bad = append(bad, fmt.Sprintf("%s: %s", r.Name, kafkaError(r.Err, r.ErrMessage)))
		}
	}
	var se *kadm.ShardErrors
	if errors.As(err, &se) {
		for _, e := range se.Errs {
			fmt.Fprintf(ew, "warning: %s: broker %d did not answer: %v\n", what, e.Broker.NodeID, e.Err)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s: %s", what, strings.Join(bad, "; "))
	}
	return nil
}

// setReassignThrottle sets the throttle of the moves of r (--execute
// --throttle) and says what it set on w (nil: silent); warnings go to
// ew.
func setReassignThrottle(ctx context.Context, adm *kadm.Client, r, cur *reassignment, rate int64, w, ew io.Writer) error {
	ongoing, err := ongoingAdding(ctx, adm, r)
	if err != nil {
		return err
	}
	moves := moveMap(r, cur, ongoing)
	if len(moves) == 0 {
		return nil
	}
	leader, follower := throttleLists(moves)
	for _, topic := range slices.Sorted(func(yield func(string) bool) {
		for t := range leader {
			if !yield(t) {
				return
			}
		}
	}) {
		cfgs := []kadm.AlterConfig{
			{Op: kadm.SetConfig, Name: leaderReplicasKey, Value: kmsg.StringPtr(leader[topic])},
			{Op: kadm.SetConfig, Name: followerReplicasKey, Value: kmsg.StringPtr(follower[topic])},
		}
		resps, err := adm.AlterTopicConfigs(ctx, cfgs, topic)
		if err := alterErrors("set topic throttled replicas", resps, err, ew); err != nil {
			return err
		}
	}
	brokers := throttleBrokers(moves)
	v := strconv.FormatInt(rate, 10)
	cfgs := []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: leaderRateKey, Value: kmsg.StringPtr(v)},
		{Op: kadm.SetConfig, Name: followerRateKey, Value: kmsg.StringPtr(v)},
	}
	resps, err := adm.AlterBrokerConfigs(ctx, cfgs, brokers...)
	if err := alterErrors("set broker throttle rates", resps, err, ew); err != nil {
		return err
	}
	if w != nil {
		fmt.Fprintf(w, "The inter-broker throttle limit was set to %d B/s on brokers %s\n", rate, joinIDs(brokers))
	}
	return nil
}

// clearReassignThrottle removes the throttle rates from every broker and
// the throttled replicas lists from the file's topics (Kafka's
// clearAllThrottles) and says so on w (nil: silent); warnings go to ew.
func clearReassignThrottle(ctx context.Context, adm *kadm.Client, r *reassignment, w, ew io.Writer) error {
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	brokers := md.Brokers.NodeIDs()
	slices.Sort(brokers)
	cfgs := []kadm.AlterConfig{
		{Op: kadm.DeleteConfig, Name: leaderRateKey},
		{Op: kadm.DeleteConfig, Name: followerRateKey},
	}
	resps, err := adm.AlterBrokerConfigs(ctx, cfgs, brokers...)
	if err := alterErrors("clear broker throttle rates", resps, err, ew); err != nil {
		return err
	}
	var topics []string
	for _, p := range r.Partitions {
		if !slices.Contains(topics, p.Topic) {
			topics = append(topics, p.Topic)
		}
	}
	slices.Sort(topics)
	tcfgs := []kadm.AlterConfig{
		{Op: kadm.DeleteConfig, Name: leaderReplicasKey},
		{Op: kadm.DeleteConfig, Name: followerReplicasKey},
	}
	tresps, err := adm.AlterTopicConfigs(ctx, tcfgs, topics...)
	// A topic deleted meanwhile has nothing to clear.
	kept := tresps[:0]
	for _, x := range tresps {
		if !errors.Is(x.Err, kerr.UnknownTopicOrPartition) {
			kept = append(kept, x)
		}
	}
	if err := alterErrors("clear topic throttled replicas", kept, err, ew); err != nil {
		return err
	}
	if w != nil {
		fmt.Fprintf(w, "Clearing broker-level throttles on brokers %s\nClearing topic-level throttles on topics %s\n", joinIDs(brokers), strings.Join(topics, ","))
	}
	return nil
}
