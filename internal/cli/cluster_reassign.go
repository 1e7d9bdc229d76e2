package cli

// `samsa cluster reassign`: Kafka's kafka-reassign-partitions.sh with the
// same JSON files, over the Kafka protocol only:
//
//   - --generate: a proposed assignment of the partitions of the topics
//     in --topics-to-move-json-file over --broker-list (from Metadata);
//   - --execute: prints the current assignment (keep it to roll back),
//     then AlterPartitionReassignments (45) with the file's targets;
//   - --verify: per partition, completed or in progress
//     (ListPartitionReassignments (46) and Metadata), and for every
//     replica being added the bytes it still lacks (the leader's log
//     size minus its own, DescribeLogDirs (35) on both brokers), the
//     rate it catches up at (two samples --interval apart) and the ETA;
//     --watch repeats until every move completed;
//   - --cancel: AlterPartitionReassignments with null replicas (revert).
//
// --throttle and its removal by --verify: cluster_reassign_throttle.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxJSONFileBytes bounds a JSON file the cluster commands read
// (reassignment plans, topic lists, election lists).
const maxJSONFileBytes = 64 << 20

// maxReassignPartitions bounds the partitions of one reassignment file
// (the controller commits at most 10,000 changes per request too).
const maxReassignPartitions = 10000

// reassignment is kafka-reassign-partitions.sh's JSON document.
type reassignment struct {
	Version    int                    `json:"version"`
	Partitions []reassignPartitionDoc `json:"partitions"`
}

// reassignPartitionDoc is one partition of a reassignment document.
// LogDirs, when present, has one entry per replica; only "any" is
// accepted (AlterReplicaLogDirs is not served).
type reassignPartitionDoc struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Replicas  []int32  `json:"replicas"`
	LogDirs   []string `json:"log_dirs,omitempty"`
}

// topicsToMove is the --topics-to-move-json-file document.
type topicsToMove struct {
	Version int `json:"version"`
	Topics  []struct {
		Topic string `json:"topic"`
	} `json:"topics"`
}

// parseReassignment decodes and checks a reassignment document as
// Kafka's ReassignPartitionsCommand.parsePartitionReassignmentData does:
// version 1, at least one partition, none listed twice, replica lists
// non-empty without duplicates (unless forCancel, which ignores them),
// log_dirs matching the replicas and all "any".
func parseReassignment(b []byte, forCancel bool) (*reassignment, error) {
	var r reassignment
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("reassignment JSON: %w", err)
	}
	if r.Version != 1 {
		return nil, fmt.Errorf("reassignment JSON: version %d, want 1", r.Version)
	}
	if len(r.Partitions) == 0 {
		return nil, errors.New("reassignment JSON: partition reassignment list cannot be empty")
	}
	if len(r.Partitions) > maxReassignPartitions {
		return nil, fmt.Errorf("reassignment JSON: %d partitions, at most %d", len(r.Partitions), maxReassignPartitions)
	}
	seen := map[string]bool{}
	for _, p := range r.Partitions {
		name := fmt.Sprintf("%s-%d", p.Topic, p.Partition)
		if p.Topic == "" || p.Partition < 0 {
			return nil, fmt.Errorf("reassignment JSON: bad partition %q", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("reassignment JSON: duplicate reassignment of partition %s", name)
		}
		seen[name] = true
		if forCancel {
			continue
		}
		if len(p.Replicas) == 0 {
			return nil, fmt.Errorf("reassignment JSON: partition %s has an empty replica list", name)
		}
		if s := slices.Sorted(slices.Values(p.Replicas)); len(slices.Compact(s)) != len(p.Replicas) {
			return nil, fmt.Errorf("reassignment JSON: partition %s lists a replica more than once: %v", name, p.Replicas)
		}
		if p.LogDirs != nil {
			if len(p.LogDirs) != len(p.Replicas) {
				return nil, fmt.Errorf("reassignment JSON: partition %s has %d log_dirs for %d replicas", name, len(p.LogDirs), len(p.Replicas))
			}
			for _, d := range p.LogDirs {
				if d != "any" {
					return nil, fmt.Errorf("reassignment JSON: partition %s: log dir %q: only \"any\" is supported (AlterReplicaLogDirs is not served)", name, d)
				}
			}
		}
	}
	return &r, nil
}

// readDoc reads a JSON file of at most maxJSONFileBytes.
func readDoc(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxJSONFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxJSONFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxJSONFileBytes)
	}
	return b, nil
}

// reassignOpts are the flags of `cluster reassign`.
type reassignOpts struct {
	file, topicsFile, brokerList string
	execute, verify, cancel      bool
	generate, watch              bool
	interval, timeout            time.Duration
	// throttle is --throttle in bytes/s, -1 none; preserveThrottles is
	// --preserve-throttles.
	throttle          int64
	preserveThrottles bool
}

func newClusterReassignCommand(g *globals) *cobra.Command {
	o := reassignOpts{interval: time.Second, timeout: 60 * time.Second, throttle: -1}
	cmd := &cobra.Command{
		Use:   "reassign",
		Short: "Move partition replicas between brokers (kafka-reassign-partitions.sh)",
		Long: `Move partition replicas between brokers with Kafka's reassignment JSON:

  {"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[2,3]}]}

--generate proposes a file for the topics of --topics-to-move-json-file
({"version":1,"topics":[{"topic":"orders"}]}) over --broker-list.
--execute prints the current assignment (save it to roll back) and starts
the moves: the new replicas are added and catch up, then the removed ones
leave, then leadership moves if the leader was removed.
--verify shows, per partition, whether its move completed and, for every
replica being added, the bytes it still lacks behind the leader, the rate
it catches up at (measured over --interval) and the ETA; with --watch it
repeats until every move completed.
--cancel reverts the moves in progress to the original replicas.

--throttle B (with --execute) limits the replication of the moves to B
bytes/s: it sets leader.replication.throttled.rate and
follower.replication.throttled.rate on the brokers of the moves and the
topics' leader/follower.replication.throttled.replicas (the current
replicas / the replicas being added). Run --execute --throttle again
while the moves run to change the rate. --verify removes the throttle
once every move of the file completed, and --cancel at once (unless
--preserve-throttles).`,
		Example: `  samsa cluster reassign --generate --topics-to-move-json-file topics.json --broker-list 2,3,4
  samsa cluster reassign --execute --reassignment-json-file plan.json > rollback.txt
  samsa cluster reassign --execute --reassignment-json-file plan.json --throttle 52428800
  samsa cluster reassign --verify --reassignment-json-file plan.json --watch
  samsa cluster reassign --cancel --reassignment-json-file plan.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n := 0
			for _, b := range []bool{o.execute, o.verify, o.cancel, o.generate} {
				if b {
					n++
				}
			}
			if n != 1 {
				return errors.New("give exactly one of --generate, --execute, --verify, --cancel")
			}
			if o.throttle >= 0 && !o.execute {
				return errors.New("--throttle is only valid with --execute")
			}
			if o.preserveThrottles && !o.verify && !o.cancel {
				return errors.New("--preserve-throttles is only valid with --verify or --cancel")
			}
			if o.interval <= 0 {
				return fmt.Errorf("--interval %v: want a positive duration", o.interval)
			}
			return g.runClusterAdmin(cmd, o.timeout, func(ctx context.Context, cl *kgo.Client, adm *kadm.Client) error {
				switch {
				case o.generate:
					return runReassignGenerate(ctx, cmd, g, adm, &o)
				case o.execute:
					return runReassignExecute(ctx, cmd, g, adm, &o)
				case o.cancel:
					return runReassignCancel(ctx, cmd, g, adm, &o)
				}
				return runReassignVerify(ctx, cmd, g, cl, adm, &o)
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.file, "reassignment-json-file", "f", "", "the reassignment JSON (--execute, --verify, --cancel)")
	f.StringVar(&o.topicsFile, "topics-to-move-json-file", "", "the topics JSON (--generate)")
	f.StringVar(&o.brokerList, "broker-list", "", "brokers to place the replicas on, e.g. 1,2,3 (--generate)")
	f.BoolVar(&o.generate, "generate", false, "propose an assignment of the topics over the brokers")
	f.BoolVar(&o.execute, "execute", false, "start the reassignment")
	f.BoolVar(&o.verify, "verify", false, "show the status and progress of the reassignment")
	f.BoolVar(&o.cancel, "cancel", false, "cancel the reassignment (revert to the original replicas)")
	f.BoolVar(&o.watch, "watch", false, "with --verify: repeat until every move completed (bounded by --timeout)")
	f.DurationVar(&o.interval, "interval", o.interval, "with --verify: time between the two size samples that give the rate")
	f.DurationVar(&o.timeout, "timeout", o.timeout, "give up after this long")
	f.Int64Var(&o.throttle, "throttle", o.throttle, "with --execute: replication throttle of the moves in bytes/s (-1: none)")
	f.BoolVar(&o.preserveThrottles, "preserve-throttles", false, "with --verify or --cancel: keep the throttle")
	return cmd
}

func (o *reassignOpts) load(forCancel bool) (*reassignment, error) {
	if o.file == "" {
		return nil, errors.New("--reassignment-json-file is required")
	}
	b, err := readDoc(o.file)
	if err != nil {
		return nil, err
	}
	return parseReassignment(b, forCancel)
}

// currentAssignment returns the replicas of the document's partitions as
// Metadata shows them, as a reassignment document (for rollback).
func currentAssignment(ctx context.Context, adm *kadm.Client, r *reassignment) (*reassignment, kadm.Metadata, error) {
	var topics []string
	for _, p := range r.Partitions {
		if !slices.Contains(topics, p.Topic) {
			topics = append(topics, p.Topic)
		}
	}
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return nil, md, fmt.Errorf("metadata: %w", err)
	}
	cur := &reassignment{Version: 1, Partitions: []reassignPartitionDoc{}}
	for _, p := range r.Partitions {
		t, ok := md.Topics[p.Topic]
		if !ok || t.Err != nil {
			return nil, md, fmt.Errorf("topic %s: %v", p.Topic, kafkaError(t.Err, ""))
		}
		pd, ok := t.Partitions[p.Partition]
		if !ok {
			return nil, md, fmt.Errorf("partition %s-%d does not exist", p.Topic, p.Partition)
		}
		cur.Partitions = append(cur.Partitions, reassignPartitionDoc{Topic: p.Topic, Partition: p.Partition, Replicas: slices.Clone(pd.Replicas)})
	}
	return cur, md, nil
}

// compactJSON is v as one line of JSON (what Kafka's tool prints).
func compactJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// partitionResult is the answer for one partition of --execute/--cancel.
type partitionResult struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Error     string `json:"error,omitempty"`
}

// alterAssignments sends one AlterPartitionReassignments (replicas nil
// for every partition: cancel) and returns the per-partition results.
func alterAssignments(ctx context.Context, adm *kadm.Client, r *reassignment, cancel bool) ([]partitionResult, error) {
	var req kadm.AlterPartitionAssignmentsReq
	for _, p := range r.Partitions {
		reps := p.Replicas
		if cancel {
			reps = nil
		}
		req.Assign(p.Topic, p.Partition, reps)
	}
	resps, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("alter partition reassignments: %w", err)
	}
	var out []partitionResult
	for _, p := range r.Partitions {
		res := partitionResult{Topic: p.Topic, Partition: p.Partition}
		if x, ok := resps[p.Topic][p.Partition]; !ok {
			res.Error = "no answer for the partition"
		} else if x.Err != nil {
			res.Error = kafkaError(x.Err, x.ErrMessage)
		}
		out = append(out, res)
	}
	return out, nil
}

func partitionNames(rs []partitionResult, ok bool) string {
	var names []string
	for _, r := range rs {
		if (r.Error == "") == ok {
			names = append(names, fmt.Sprintf("%s-%d", r.Topic, r.Partition))
		}
	}
	return strings.Join(names, ",")
}

func runReassignExecute(ctx context.Context, cmd *cobra.Command, g *globals, adm *kadm.Client, o *reassignOpts) error {
	r, err := o.load(false)
	if err != nil {
		return err
	}
	cur, _, err := currentAssignment(ctx, adm, r)
	if err != nil {
		return err
	}
	// The rollback document goes out before anything changes.
	w := out(cmd)
	if !g.json() {
		fmt.Fprintf(w, "Current partition replica assignment\n\n%s\n\nSave this to use as the --reassignment-json-file option during rollback\n", compactJSON(cur))
	}
	if o.throttle >= 0 {
		// Before the moves start, as Kafka's executeAssignment.
		var tw io.Writer
		if !g.json() {
			tw = w
			fmt.Fprintln(w, "Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is removed.")
		}
		if err := setReassignThrottle(ctx, adm, r, cur, o.throttle, tw, errOut(cmd)); err != nil {
			return err
		}
	}
	res, err := alterAssignments(ctx, adm, r, false)
	if err != nil {
		return err
	}
	if g.json() {
		if err := writeJSON(w, struct {
			Current *reassignment     `json:"current"`
			Results []partitionResult `json:"results"`
		}{cur, res}); err != nil {
			return err
		}
		return reportFailures(res, func(r partitionResult) string { return r.Error })
	}
	if names := partitionNames(res, true); names != "" {
		fmt.Fprintf(w, "Successfully started partition reassignments for %s\n", names)
	}
	for _, x := range res {
		if x.Error != "" {
			fmt.Fprintf(errOut(cmd), "error: %s-%d: %s\n", x.Topic, x.Partition, x.Error)
		}
	}
	return reportFailures(res, func(r partitionResult) string { return r.Error })
}

func runReassignCancel(ctx context.Context, cmd *cobra.Command, g *globals, adm *kadm.Client, o *reassignOpts) error {
	r, err := o.load(true)
	if err != nil {
		return err
	}
	res, err := alterAssignments(ctx, adm, r, true)
	if err != nil {
		return err
	}
	w := out(cmd)
	if g.json() {
		if err := writeJSON(w, struct {
			Results []partitionResult `json:"results"`
		}{res}); err != nil {
			return err
		}
	} else {
		if names := partitionNames(res, true); names != "" {
			fmt.Fprintf(w, "Successfully cancelled partition reassignments for: %s\n", names)
		}
		for _, x := range res {
			if x.Error != "" {
				fmt.Fprintf(errOut(cmd), "error: %s-%d: %s\n", x.Topic, x.Partition, x.Error)
			}
		}
	}
	if !o.preserveThrottles {
		// As Kafka's cancelAssignment: the moves are over.
		var tw io.Writer
		if !g.json() {
			tw = w
		}
		if err := clearReassignThrottle(ctx, adm, r, tw, errOut(cmd)); err != nil {
			return err
		}
	}
	return reportFailures(res, func(r partitionResult) string { return r.Error })
}

// parseBrokerList parses "1,2,3".
func parseBrokerList(s string) ([]int32, error) {
	var out []int32
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.ParseInt(f, 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("--broker-list: bad broker id %q", f)
		}
		if slices.Contains(out, int32(n)) {
			return nil, fmt.Errorf("--broker-list: broker %d listed twice", n)
		}
		out = append(out, int32(n))
	}
	if len(out) == 0 {
		return nil, errors.New("--broker-list is required with --generate")
	}
	return out, nil
}

// proposeAssignment places each partition's replicas (as many as it has
// now) over brokers, round robin: partition p's first replica is
// brokers[(start+p) mod n], the others follow it with a shift that grows
// every n partitions, so leaders and followers spread evenly (Kafka's
// AdminUtils.assignReplicasToBrokers without racks, with a fixed start
// per topic instead of a random one, so the proposal is reproducible).
func proposeAssignment(topic string, topicIndex int, parts map[int32][]int32, brokers []int32) ([]reassignPartitionDoc, error) {
	n := len(brokers)
	sorted := slices.Sorted(slices.Values(brokers))
	ids := slices.Sorted(func(yield func(int32) bool) {
		for id := range parts {
			if !yield(id) {
				return
			}
		}
	})
	var out []reassignPartitionDoc
	for _, p := range ids {
		rf := len(parts[p])
		if rf > n {
			return nil, fmt.Errorf("topic %s partition %d has %d replicas but --broker-list names %d brokers", topic, p, rf, n)
		}
		first := (topicIndex + int(p)) % n
		shift := 1 + (int(p)/n)%max(n-1, 1)
		reps := []int32{sorted[first]}
		for i := 1; i < rf; i++ {
			idx := (first + shift + i - 1) % n
			for slices.Contains(reps, sorted[idx]) {
				idx = (idx + 1) % n
			}
			reps = append(reps, sorted[idx])
		}
		out = append(out, reassignPartitionDoc{Topic: topic, Partition: p, Replicas: reps})
	}
	return out, nil
}

func runReassignGenerate(ctx context.Context, cmd *cobra.Command, g *globals, adm *kadm.Client, o *reassignOpts) error {
	if o.topicsFile == "" {
		return errors.New("--topics-to-move-json-file is required with --generate")
	}
	brokers, err := parseBrokerList(o.brokerList)
	if err != nil {
		return err
	}
	b, err := readDoc(o.topicsFile)
	if err != nil {
		return err
	}
	var tm topicsToMove
	if err := json.Unmarshal(b, &tm); err != nil {
		return fmt.Errorf("topics JSON: %w", err)
	}
	if tm.Version != 1 || len(tm.Topics) == 0 {
		return errors.New(`topics JSON: want {"version":1,"topics":[{"topic":"..."}]}`)
	}
	var topics []string
	for _, t := range tm.Topics {
		if t.Topic != "" && !slices.Contains(topics, t.Topic) {
			topics = append(topics, t.Topic)
		}
	}
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	for _, id := range brokers {
		if !slices.ContainsFunc(md.Brokers, func(b kadm.BrokerDetail) bool { return b.NodeID == id }) {
			return fmt.Errorf("--broker-list: broker %d is not in the cluster", id)
		}
	}
	cur := &reassignment{Version: 1, Partitions: []reassignPartitionDoc{}}
	prop := &reassignment{Version: 1, Partitions: []reassignPartitionDoc{}}
	for i, name := range topics {
		t, ok := md.Topics[name]
		if !ok || t.Err != nil {
			return fmt.Errorf("topic %s: %v", name, kafkaError(t.Err, ""))
		}
		parts := map[int32][]int32{}
		for id, p := range t.Partitions {
			parts[id] = slices.Clone(p.Replicas)
		}
		for _, id := range slices.Sorted(func(yield func(int32) bool) {
			for id := range parts {
				if !yield(id) {
					return
				}
			}
		}) {
			cur.Partitions = append(cur.Partitions, reassignPartitionDoc{Topic: name, Partition: id, Replicas: parts[id]})
		}
		ps, err := proposeAssignment(name, i, parts, brokers)
		if err != nil {
			return err
		}
		prop.Partitions = append(prop.Partitions, ps...)
	}
	w := out(cmd)
	if g.json() {
		return writeJSON(w, struct {
			Current  *reassignment `json:"current"`
			Proposed *reassignment `json:"proposed"`
		}{cur, prop})
	}
	fmt.Fprintf(w, "Current partition replica assignment\n%s\n\nProposed partition reassignment configuration\n%s\n", compactJSON(cur), compactJSON(prop))
	return nil
}

// movingReplica is the progress of one replica being added.
type movingReplica struct {
	Replica      int32 `json:"replica"`
	Leader       int32 `json:"leader"`
	LeaderBytes  int64 `json:"leader_bytes"`  // -1: unknown
	ReplicaBytes int64 `json:"replica_bytes"` // -1: unknown (no log there yet)
	// BytesRemaining is LeaderBytes - ReplicaBytes (at least 0); -1
	// unknown.
	BytesRemaining int64 `json:"bytes_remaining"`
	// BytesPerSecond is how fast BytesRemaining shrank between the two
	// samples (-1: unknown, 0: not moving); ETASeconds is
	// BytesRemaining at that rate (-1: unknown).
	BytesPerSecond float64 `json:"bytes_per_second"`
	ETASeconds     float64 `json:"eta_seconds"`
}

// partitionStatus is --verify's answer for one partition.
type partitionStatus struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Status is "completed", "in_progress" or "not_in_progress" (no
	// move runs, yet the replicas are not the target's).
	Status   string          `json:"status"`
	Target   []int32         `json:"target"`
	Replicas []int32         `json:"replicas"`
	Adding   []int32         `json:"adding,omitempty"`
	Removing []int32         `json:"removing,omitempty"`
	Moving   []movingReplica `json:"moving,omitempty"`
}

// verifyReport is --verify's document.
type verifyReport struct {
	Complete   bool              `json:"complete"`
	Partitions []partitionStatus `json:"partitions"`
}

type topicPartition struct {
	topic     string
	partition int32
}

// sizesByBroker returns, for every broker, the sizes of its replicas
// (DescribeLogDirs on each broker; a broker that does not answer is left
// out).
func sizesByBroker(ctx context.Context, adm *kadm.Client, topics []string) map[int32]map[topicPartition]int64 {
	out := map[int32]map[topicPartition]int64{}
	set := kadm.TopicsSet{}
	for _, t := range topics {
		set.Add(t)
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil && unlessSharded(err) != nil {
		return out
	}
	dirs.Each(func(d kadm.DescribedLogDir) {
		if d.Err != nil {
			return
		}
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if _, ok := set[p.Topic]; !ok {
				return
			}
			if out[p.Broker] == nil {
				out[p.Broker] = map[topicPartition]int64{}
			}
			out[p.Broker][topicPartition{p.Topic, p.Partition}] += p.Size
		})
	})
	return out
}

// sampleVerify takes one sample of every partition's status.
func sampleVerify(ctx context.Context, cl *kgo.Client, adm *kadm.Client, r *reassignment) (*verifyReport, error) {
	var topics []string
	for _, p := range r.Partitions {
		if !slices.Contains(topics, p.Topic) {
			topics = append(topics, p.Topic)
		}
	}
	// ListPartitionReassignments for exactly the file's partitions.
	lreq := kmsg.NewPtrListPartitionReassignmentsRequest()
	lreq.TimeoutMillis = 30000
	for _, t := range topics {
		rt := kmsg.NewListPartitionReassignmentsRequestTopic()
		rt.Topic = t
		for _, p := range r.Partitions {
			if p.Topic == t {
				rt.Partitions = append(rt.Partitions, p.Partition)
			}
		}
		lreq.Topics = append(lreq.Topics, rt)
	}
	// ListPartitionReassignments and Metadata go to one broker (the
	// controller, where kgo sends admin requests), so that a move the
	// list no longer shows is in that broker's Metadata too: brokers
	// apply metadata at slightly different moments.
	// (a fresh Metadata, not kadm's cached BrokerMetadata: a controller
	// that stopped must not be asked again for minutes.)
	via, err := activeController(ctx, cl)
	if err != nil {
		return nil, err
	}
	lresp, err := lreq.RequestWith(ctx, via)
	if err != nil {
		return nil, fmt.Errorf("list partition reassignments: %w", err)
	}
	if err := kerr.ErrorForCode(lresp.ErrorCode); err != nil {
		return nil, fmt.Errorf("list partition reassignments: %s", kafkaError(err, strPtr(lresp.ErrorMessage)))
	}
	ongoing := map[topicPartition]kmsg.ListPartitionReassignmentsResponseTopicPartition{}
	for _, t := range lresp.Topics {
		for _, p := range t.Partitions {
			ongoing[topicPartition{t.Topic, p.Partition}] = p
		}
	}
	mresp, err := metadataRequest(topics).RequestWith(ctx, via)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	type detail struct {
		replicas, isr []int32
		leader        int32
	}
	parts := map[topicPartition]detail{}
	for _, t := range mresp.Topics {
		if t.Topic == nil {
			continue
		}
		for _, p := range t.Partitions {
			parts[topicPartition{*t.Topic, p.Partition}] = detail{p.Replicas, p.ISR, p.Leader}
		}
	}
	var sizes map[int32]map[topicPartition]int64
	if len(ongoing) > 0 {
		sizes = sizesByBroker(ctx, adm, topics)
	}
	size := func(b int32, tp topicPartition) int64 {
		if m, ok := sizes[b]; ok {
			if n, ok := m[tp]; ok {
				return n
			}
		}
		return -1
	}
	rep := &verifyReport{Complete: true, Partitions: []partitionStatus{}}
	for _, p := range r.Partitions {
		tp := topicPartition{p.Topic, p.Partition}
		st := partitionStatus{Topic: p.Topic, Partition: p.Partition, Target: slices.Clone(p.Replicas), Replicas: []int32{}}
		var leader int32 = -1
		var isr []int32
		if d, ok := parts[tp]; ok {
			st.Replicas, isr, leader = slices.Clone(d.replicas), d.isr, d.leader
		}
		if o, ok := ongoing[tp]; ok {
			st.Status = "in_progress"
			st.Replicas, st.Adding, st.Removing = slices.Clone(o.Replicas), slices.Clone(o.AddingReplicas), slices.Clone(o.RemovingReplicas)
			// The replicas still catching up: the adding ones, and any
			// target replica outside the ISR (a plan submitted again
			// while it runs has no adding replicas left: Kafka computes
			// them against the current replicas, which hold them).
			catching := slices.Clone(o.AddingReplicas)
			for _, r := range o.Replicas {
				if len(isr) > 0 && !slices.Contains(o.RemovingReplicas, r) && !slices.Contains(isr, r) && !slices.Contains(catching, r) {
					catching = append(catching, r)
				}
			}
			for _, a := range catching {
				m := movingReplica{Replica: a, Leader: leader, LeaderBytes: size(leader, tp), ReplicaBytes: size(a, tp),
					BytesRemaining: -1, BytesPerSecond: -1, ETASeconds: -1}
				if m.LeaderBytes >= 0 {
					m.BytesRemaining = max(m.LeaderBytes-max(m.ReplicaBytes, 0), 0)
				}
				st.Moving = append(st.Moving, m)
			}
			rep.Complete = false
		} else if slices.Equal(st.Replicas, p.Replicas) {
			st.Status = "completed"
		} else {
			st.Status = "not_in_progress"
		}
		rep.Partitions = append(rep.Partitions, st)
	}
	return rep, nil
}

func strPtr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// withRates fills the rates and ETAs of now from the sample taken dt
// before it.
func withRates(before, now *verifyReport, dt time.Duration) {
	type key struct {
		tp      topicPartition
		replica int32
	}
	prev := map[key]int64{}
	for _, p := range before.Partitions {
		for _, m := range p.Moving {
			prev[key{topicPartition{p.Topic, p.Partition}, m.Replica}] = m.BytesRemaining
		}
	}
	for i := range now.Partitions {
		p := &now.Partitions[i]
		for j := range p.Moving {
			m := &p.Moving[j]
			b, ok := prev[key{topicPartition{p.Topic, p.Partition}, m.Replica}]
			if !ok || b < 0 || m.BytesRemaining < 0 || dt <= 0 {
				continue
			}
			m.BytesPerSecond = max(float64(b-m.BytesRemaining)/dt.Seconds(), 0)
			switch {
			case m.BytesRemaining == 0:
				m.ETASeconds = 0
			case m.BytesPerSecond > 0:
				m.ETASeconds = float64(m.BytesRemaining) / m.BytesPerSecond
			}
		}
	}
}

func runReassignVerify(ctx context.Context, cmd *cobra.Command, g *globals, cl *kgo.Client, adm *kadm.Client, o *reassignOpts) error {
	r, err := o.load(false)
	if err != nil {
		return err
	}
	prev, err := sampleVerify(ctx, cl, adm, r)
	if err != nil {
		return err
	}
	for {
		rep := prev
		if !prev.Complete {
			// A second sample gives the rate.
			t := time.NewTimer(o.interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			if rep, err = sampleVerify(ctx, cl, adm, r); err != nil {
				return err
			}
			withRates(prev, rep, o.interval)
		}
		if err := printVerify(out(cmd), g, rep); err != nil {
			return err
		}
		if rep.Complete && !o.preserveThrottles {
			var w io.Writer
			if !g.json() {
				w = out(cmd)
			}
			return clearReassignThrottle(ctx, adm, r, w, errOut(cmd))
		}
		if !o.watch || rep.Complete {
			return nil
		}
		prev = rep
	}
}

// humanBytes renders n bytes with a binary unit.
func humanBytes(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", n, units[i])
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}

func printVerify(w io.Writer, g *globals, rep *verifyReport) error {
	if g.json() {
		return writeJSON(w, rep)
	}
	fmt.Fprintln(w, "Status of partition reassignment:")
	var moving bool
	for _, p := range rep.Partitions {
		switch p.Status {
		case "completed":
			fmt.Fprintf(w, "Reassignment of partition %s-%d is completed.\n", p.Topic, p.Partition)
		case "in_progress":
			fmt.Fprintf(w, "Reassignment of partition %s-%d is still in progress.\n", p.Topic, p.Partition)
			moving = moving || len(p.Moving) > 0
		default:
			fmt.Fprintf(w, "There is no active reassignment of partition %s-%d, but replica set is %s rather than %s.\n",
				p.Topic, p.Partition, joinIDs(p.Replicas), joinIDs(p.Target))
		}
	}
	if !moving {
		return nil
	}
	fmt.Fprintln(w)
	t := newTable(w, "PARTITION", "REPLICA", "LEADER", "LEADER-BYTES", "REPLICA-BYTES", "REMAINING", "RATE", "ETA")
	for _, p := range rep.Partitions {
		for _, m := range p.Moving {
			unknown := func(n int64) string {
				if n < 0 {
					return "-"
				}
				return strconv.FormatInt(n, 10)
			}
			rate, eta := "-", "-"
			if m.BytesPerSecond >= 0 {
				rate = humanBytes(m.BytesPerSecond) + "/s"
			}
			if m.ETASeconds >= 0 {
				eta = (time.Duration(m.ETASeconds*float64(time.Second)) / time.Second * time.Second).String()
			}
			t.row(fmt.Sprintf("%s-%d", p.Topic, p.Partition), m.Replica, m.Leader, unknown(m.LeaderBytes), unknown(m.ReplicaBytes),
				unknown(m.BytesRemaining), rate, eta)
		}
	}
	t.flush()
	return nil
}

func joinIDs(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}
