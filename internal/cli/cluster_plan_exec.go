package cli

// What `cluster decommission` and `cluster balance` share: the model of
// the cluster a planner works on (Metadata, DescribeCluster v2 for
// fenced brokers, ListPartitionReassignments for moves in progress,
// DescribeLogDirs for sizes), the plan's rendering, and its execution:
// AlterPartitionReassignments in batches of at most --batch partitions,
// each batch watched until it completes with the progress of
// `cluster reassign --verify` (bytes remaining per moving replica, the
// rate, the ETA) before the next is sent, so a plan never has more than
// a batch of moves copying at once. With --throttle the replication
// throttle of `cluster reassign` (cluster_reassign_throttle.go) holds
// the moves back: the rates on the brokers and the throttled replicas
// lists of each batch's partitions are set before the batch is sent,
// and everything is cleared once the plan ends, finished or not.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// defaultPlanBatch is how many partitions move at once by default.
const defaultPlanBatch = 20

// maxPlanBatch bounds --batch (the controller takes at most 10,000
// changes per request).
const maxPlanBatch = 1000

// clusterModel is the cluster as the planners see it.
type clusterModel struct {
	// live are the unfenced brokers (Metadata), by id.
	live []planBroker
	// registered holds every registered broker, true when fenced
	// (DescribeCluster v2); nil when the broker did not answer it.
	registered map[int32]bool
	controller int32
	// parts are every partition; a move in progress has its target as
	// Replicas and Fixed set.
	parts []planPartition
	// current holds the replicas Metadata lists (a move in progress:
	// target and original), by topic and partition.
	current map[topicPartition][]int32
	// moving are the partitions with a move in progress.
	moving map[topicPartition]kmsg.ListPartitionReassignmentsResponseTopicPartition
}

// gatherModel describes the cluster for a planner.
func gatherModel(ctx context.Context, cl *kgo.Client, adm *kadm.Client) (*clusterModel, error) {
	md, err := freshMetadata(ctx, cl, nil)
	if err != nil {
		return nil, err
	}
	m := &clusterModel{controller: md.ControllerID, current: map[topicPartition][]int32{},
		moving: map[topicPartition]kmsg.ListPartitionReassignmentsResponseTopicPartition{}}
	for _, b := range md.Brokers {
		pb := planBroker{ID: b.NodeID}
		if b.Rack != nil {
			pb.Rack = *b.Rack
		}
		m.live = append(m.live, pb)
	}
	// The controller answers the rest too, so the list of moves and the
	// replicas agree (brokers apply metadata at slightly different
	// moments).
	var via kmsg.Requestor = cl
	if md.ControllerID >= 0 {
		via = cl.Broker(int(md.ControllerID))
	}
	dreq := kmsg.NewPtrDescribeClusterRequest()
	dreq.IncludeFencedBrokers = true
	if dresp, err := dreq.RequestWith(ctx, via); err == nil && dresp.ErrorCode == 0 && dresp.Version >= 2 {
		m.registered = map[int32]bool{}
		for _, b := range dresp.Brokers {
			m.registered[b.NodeID] = b.IsFenced
		}
	}
	lreq := kmsg.NewPtrListPartitionReassignmentsRequest()
	lreq.TimeoutMillis = 30000
	lresp, err := lreq.RequestWith(ctx, via)
	if err != nil {
		return nil, fmt.Errorf("list partition reassignments: %w", err)
	}
	if err := kerr.ErrorForCode(lresp.ErrorCode); err != nil {
		return nil, fmt.Errorf("list partition reassignments: %s", kafkaError(err, strPtr(lresp.ErrorMessage)))
	}
	for _, t := range lresp.Topics {
		for _, p := range t.Partitions {
			m.moving[topicPartition{t.Topic, p.Partition}] = p
		}
	}
	slices.SortFunc(md.Topics, func(a, b kmsg.MetadataResponseTopic) int { return strings.Compare(strPtr(a.Topic), strPtr(b.Topic)) })
	var topics []string
	for _, t := range md.Topics {
		if t.ErrorCode == 0 && t.Topic != nil {
			topics = append(topics, *t.Topic)
		}
	}
	sizes := sizesByBroker(ctx, adm, topics)
	for _, t := range md.Topics {
		if t.ErrorCode != 0 || t.Topic == nil {
			continue
		}
		slices.SortFunc(t.Partitions, func(a, b kmsg.MetadataResponseTopicPartition) int { return int(a.Partition) - int(b.Partition) })
		for _, p := range t.Partitions {
			tp := topicPartition{*t.Topic, p.Partition}
			pp := planPartition{Topic: *t.Topic, Partition: p.Partition, Replicas: slices.Clone(p.Replicas)}
			m.current[tp] = slices.Clone(p.Replicas)
			if mv, ok := m.moving[tp]; ok {
				pp.Replicas = without32(mv.Replicas, mv.RemovingReplicas)
				pp.Fixed = true
			}
			for _, bs := range sizes {
				pp.Bytes = max(pp.Bytes, bs[tp])
			}
			m.parts = append(m.parts, pp)
		}
	}
	return m, nil
}

// freshMetadata sends Metadata (topics nil: all; empty: none) to the
// active controller, bypassing the client's metadata cache (kadm's
// Metadata answers from it, up to seconds old): the planners and the
// waits must see the moves they just made.
func freshMetadata(ctx context.Context, cl *kgo.Client, topics []string) (*kmsg.MetadataResponse, error) {
	via, err := activeController(ctx, cl)
	if err != nil {
		return nil, err
	}
	resp, err := metadataRequest(topics).RequestWith(ctx, via)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return resp, nil
}

// activeController is the broker to send admin requests to: the
// controller a fresh Metadata names (kgo sends admin requests there),
// else any broker.
func activeController(ctx context.Context, cl *kgo.Client) (kmsg.Requestor, error) {
	probe := kmsg.NewPtrMetadataRequest()
	probe.Topics = []kmsg.MetadataRequestTopic{}
	pr, err := probe.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if pr.ControllerID >= 0 {
		return cl.Broker(int(pr.ControllerID)), nil
	}
	return cl, nil
}

// metadataRequest asks for topics (nil: all; empty: none).
func metadataRequest(topics []string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
		for _, t := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
	}
	return req
}

// transientTries and transientBackoff bound retries of a request that
// failed for a reason a moment may cure (a broker that just stopped, a
// controller failover: a new one is elected within seconds, while the
// old one may still be named for a while) while a plan runs: 30 s.
const (
	transientTries   = 120
	transientBackoff = 250 * time.Millisecond
)

// retrying calls fn until it succeeds, transientTries times at most, or
// ctx ends; it returns fn's last error.
func retrying[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	var v T
	var err error
	for range transientTries {
		if v, err = fn(); err == nil {
			return v, nil
		}
		t := time.NewTimer(transientBackoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, err
		case <-t.C:
		}
	}
	return v, err
}

// gatherModelRetrying is gatherModel, retried (retrying).
func gatherModelRetrying(ctx context.Context, cl *kgo.Client, adm *kadm.Client) (*clusterModel, error) {
	return retrying(ctx, func() (*clusterModel, error) { return gatherModel(ctx, cl, adm) })
}

// without32 is s without the members of drop, in s's order.
func without32(s, drop []int32) []int32 {
	out := make([]int32, 0, len(s))
	for _, r := range s {
		if !slices.Contains(drop, r) {
			out = append(out, r)
		}
	}
	return out
}

// printPlan renders a plan's moves, reorders and loads as text.
func printPlan(w io.Writer, pl *clusterPlan) {
	if len(pl.Moves) > 0 {
		t := newTable(w, "TOPIC", "PARTITION", "FROM", "TO", "BYTES")
		for _, m := range pl.Moves {
			t.row(m.Topic, m.Partition, m.From, m.To, m.Bytes)
		}
		t.flush()
		fmt.Fprintln(w)
	}
	reorders := 0
	for _, c := range pl.Changes {
		if c.LeaderOnly {
			reorders++
		}
	}
	fmt.Fprintf(w, "%d replica move%s (%s to copy), %d partition%s reordered for preferred leaders.\n",
		len(pl.Moves), plural(len(pl.Moves)), humanBytes(float64(pl.MoveBytes)), reorders, plural(reorders))
	if pl.Truncated {
		fmt.Fprintln(w, "The plan stopped at --max-moves; run again after it to continue.")
	}
	fmt.Fprintln(w)
	after := map[int32]brokerLoad{}
	for _, l := range pl.After {
		after[l.ID] = l
	}
	t := newTable(w, "BROKER", "RACK", "REPLICAS", "LEADERS", "BYTES")
	for _, b := range pl.Before {
		a, ok := after[b.ID]
		arrow := func(x, y int64) string {
			if !ok {
				return fmt.Sprintf("%d -> -", x)
			}
			if x == y {
				return fmt.Sprint(x)
			}
			return fmt.Sprintf("%d -> %d", x, y)
		}
		t.row(b.ID, b.Rack, arrow(int64(b.Replicas), int64(a.Replicas)), arrow(int64(b.Leaders), int64(a.Leaders)), arrow(b.Bytes, a.Bytes))
	}
	t.flush()
}

// execOpts are the execution flags shared by decommission and balance.
type execOpts struct {
	batch    int
	interval time.Duration
	// throttle is --throttle in bytes/s, -1 none.
	throttle int64
}

// addExecFlags registers the execution flags on cmd.
func (o *execOpts) addExecFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.IntVar(&o.batch, "batch", o.batch, "partitions moving at once")
	f.DurationVar(&o.interval, "interval", o.interval, "time between progress lines")
	f.Int64Var(&o.throttle, "throttle", o.throttle, "with --execute: replication throttle of the moves in bytes/s (-1: none)")
}

// defaultExecOpts are the execution flags' defaults.
func defaultExecOpts() execOpts {
	return execOpts{batch: defaultPlanBatch, interval: 2 * time.Second, throttle: -1}
}

// throttleClearTimeout bounds the clearing of the throttle after a plan
// (its context may be over: the clearing outlives an interruption).
const throttleClearTimeout = 30 * time.Second

// planBatchSent, when set (tests), is called after each batch was sent,
// before it is waited for.
var planBatchSent func(batch int)

// progress is one sample of a running batch.
type progress struct {
	Batch          int     `json:"batch"`
	Batches        int     `json:"batches"`
	Moving         int     `json:"moving"`
	Partitions     int     `json:"partitions"`
	BytesRemaining int64   `json:"bytes_remaining"`
	BytesPerSecond float64 `json:"bytes_per_second"`
	ETASeconds     float64 `json:"eta_seconds"` // -1: unknown
}

// progressOf sums a verify sample.
func progressOf(rep *verifyReport) progress {
	p := progress{Partitions: len(rep.Partitions), ETASeconds: -1}
	rate := 0.0
	for _, ps := range rep.Partitions {
		if ps.Status == "in_progress" {
			p.Moving++
		}
		for _, m := range ps.Moving {
			if m.BytesRemaining > 0 {
				p.BytesRemaining += m.BytesRemaining
			}
			if m.BytesPerSecond > 0 {
				rate += m.BytesPerSecond
			}
		}
	}
	p.BytesPerSecond = rate
	switch {
	case p.BytesRemaining == 0:
		p.ETASeconds = 0
	case rate > 0:
		p.ETASeconds = float64(p.BytesRemaining) / rate
	}
	return p
}

func (p progress) String() string {
	eta := "-"
	if p.ETASeconds >= 0 {
		eta = (time.Duration(p.ETASeconds*float64(time.Second)) / time.Second * time.Second).String()
	}
	return fmt.Sprintf("batch %d/%d: %d of %d partitions moving, %s remaining at %s/s, ETA %s",
		p.Batch, p.Batches, p.Moving, p.Partitions, humanBytes(float64(p.BytesRemaining)), humanBytes(p.BytesPerSecond), eta)
}

// errPlanIncomplete marks a plan whose moves did not all land.
var errPlanIncomplete = errors.New("cli: plan not completed")

// executePlan submits the plan's changes in batches and waits for each
// batch to complete, writing a progress line to w every interval
// (warnings to ew). It returns the per-partition results of the
// submissions. With o.throttle >= 0 it throttles each batch before
// sending it and clears the throttle when it returns; then an interrupt
// (SIGINT, SIGTERM) ends the wait rather than the process, so the
// throttle is cleared.
func executePlan(ctx context.Context, w, ew io.Writer, cl *kgo.Client, adm *kadm.Client, changes []planChange, o execOpts) ([]partitionResult, error) {
	if o.batch <= 0 || o.batch > maxPlanBatch {
		return nil, fmt.Errorf("--batch %d: want 1..%d", o.batch, maxPlanBatch)
	}
	if o.interval <= 0 {
		return nil, fmt.Errorf("--interval %v: want a positive duration", o.interval)
	}
	if o.throttle < -1 {
		return nil, fmt.Errorf("--throttle %d: want bytes/s, or -1 for none", o.throttle)
	}
	if o.throttle >= 0 && len(changes) > 0 {
		parent := ctx
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		plan := &reassignment{Version: 1}
		for _, c := range changes {
			plan.Partitions = append(plan.Partitions, reassignPartitionDoc{Topic: c.Topic, Partition: c.Partition, Replicas: c.Target})
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(parent), throttleClearTimeout)
			defer cancel()
			if cerr := clearReassignThrottle(cctx, adm, plan, w, ew); cerr != nil {
				fmt.Fprintf(ew, "warning: the replication throttle may still be set: %v\n%s", cerr, throttleClearHint(plan))
			}
		}()
	}
	var all []partitionResult
	batches := (len(changes) + o.batch - 1) / o.batch
	for b := 0; b < batches; b++ {
		chunk := changes[b*o.batch : min((b+1)*o.batch, len(changes))]
		doc := &reassignment{Version: 1}
		cur := &reassignment{Version: 1}
		for _, c := range chunk {
			doc.Partitions = append(doc.Partitions, reassignPartitionDoc{Topic: c.Topic, Partition: c.Partition, Replicas: c.Target})
			cur.Partitions = append(cur.Partitions, reassignPartitionDoc{Topic: c.Topic, Partition: c.Partition, Replicas: c.Current})
		}
		if o.throttle >= 0 {
			if err := setReassignThrottle(ctx, adm, doc, cur, o.throttle, w, ew); err != nil {
				return all, err
			}
		}
		res, err := alterAssignments(ctx, adm, doc, false)
		if err != nil {
			return all, err
		}
		all = append(all, res...)
		for _, r := range res {
			if r.Error != "" {
				return all, fmt.Errorf("%w: %s-%d: %s", errPlanIncomplete, r.Topic, r.Partition, r.Error)
			}
		}
		if planBatchSent != nil {
			planBatchSent(b + 1)
		}
		if err := waitBatch(ctx, w, cl, adm, doc, b+1, batches, o.interval); err != nil {
			if ctx.Err() != nil && !errors.Is(err, errPlanIncomplete) {
				// Ended (interrupt, --timeout) in the middle of a sample.
				err = fmt.Errorf("%w: batch %d/%d: %v (the moves go on; see `samsa cluster reassign --verify` or run the command again)", errPlanIncomplete, b+1, batches, err)
			}
			return all, err
		}
	}
	return all, nil
}

// throttleClearHint says how to clear by hand the throttle a plan over
// r set: the rates on every broker, the lists on r's topics.
func throttleClearHint(r *reassignment) string {
	var topics []string
	for _, p := range r.Partitions {
		if !slices.Contains(topics, p.Topic) {
			topics = append(topics, p.Topic)
		}
	}
	slices.Sort(topics)
	return fmt.Sprintf("Clear it with, for every broker N:\n  samsa cluster config delete --broker N %s %s\nand:\n  samsa topic alter-config %s --delete %s,%s\n",
		leaderRateKey, followerRateKey, strings.Join(topics, " "), leaderReplicasKey, followerReplicasKey)
}

// waitBatch polls a submitted batch until every move completed.
func waitBatch(ctx context.Context, w io.Writer, cl *kgo.Client, adm *kadm.Client, doc *reassignment, batch, batches int, interval time.Duration) error {
	sample := func() (*verifyReport, error) { return sampleVerify(ctx, cl, adm, doc) }
	prev, err := retrying(ctx, sample)
	if err != nil {
		return err
	}
	for !prev.Complete {
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: batch %d/%d still moving: %v (the moves go on; see `samsa cluster reassign --verify` or run the command again)", errPlanIncomplete, batch, batches, ctx.Err())
		case <-t.C:
		}
		rep, err := retrying(ctx, sample)
		if err != nil {
			return err
		}
		withRates(prev, rep, interval)
		p := progressOf(rep)
		p.Batch, p.Batches = batch, batches
		fmt.Fprintln(w, p.String())
		prev = rep
	}
	var bad []string
	for _, p := range prev.Partitions {
		if p.Status != "completed" {
			bad = append(bad, fmt.Sprintf("%s-%d has replicas %v, not %v", p.Topic, p.Partition, p.Replicas, p.Target))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", errPlanIncomplete, strings.Join(bad, "; "))
	}
	fmt.Fprintf(w, "batch %d/%d: %d partition%s moved\n", batch, batches, len(prev.Partitions), plural(len(prev.Partitions)))
	return nil
}
