package cli

// `samsa cluster decommission N`: take broker N out of the cluster with
// Kafka's APIs only. A dry run (the default) prints the plan that moves
// every replica off N (cluster_plan.go: rack-aware, evening replica
// counts, one move per replica). --execute runs it in bounded batches
// with live progress (cluster_plan_exec.go) and waits for it; once N
// holds nothing, the broker must be stopped: with --wait the command
// waits for N to be fenced and then unregisters it (UnregisterBroker,
// 64); without, it says to stop N and run --unregister, which
// unregisters a stopped broker that holds no replica.
//
// Safety: a plan never lowers a partition's replica count (a replica
// on N is replaced, never dropped), and is refused when fewer brokers
// than the largest replication factor would remain. --unregister is
// refused while a partition still lists N or N is still live (the
// controller refuses an active broker too).
//
// --throttle B throttles the moves as `cluster reassign --throttle`
// does, batch by batch, and clears the throttle when the plan ends
// (cluster_plan_exec.go).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// defaultDecommissionTimeout bounds a decommission (moves included).
const defaultDecommissionTimeout = 24 * time.Hour

// decommissionOpts are the flags of `cluster decommission`.
type decommissionOpts struct {
	execOpts
	execute, wait, unregister bool
	timeout                   time.Duration
}

// decommissionReport is the JSON document of `cluster decommission`.
type decommissionReport struct {
	Broker int32        `json:"broker"`
	DryRun bool         `json:"dry_run"`
	Plan   *clusterPlan `json:"plan,omitempty"`
	// Results are the submissions' answers (--execute).
	Results []partitionResult `json:"results,omitempty"`
	// Moved: every replica left the broker.
	Moved bool `json:"moved"`
	// Unregistered: UnregisterBroker succeeded.
	Unregistered bool   `json:"unregistered"`
	Next         string `json:"next,omitempty"`
}

func newClusterDecommissionCommand(g *globals) *cobra.Command {
	o := decommissionOpts{execOpts: defaultExecOpts(), timeout: defaultDecommissionTimeout}
	cmd := &cobra.Command{
		Use:   "decommission BROKER-ID",
		Short: "Move every replica off a broker, then unregister it once stopped",
		Long: `Take a broker out of the cluster.

Without flags, print the plan (a dry run): for every partition with a
replica on the broker, the broker that takes it — one on a rack the
partition does not use yet when there is one, then the least loaded — and
the bytes to copy. Partitions keep their replication factor; the command
refuses when fewer brokers than the largest replication factor would
remain.

--execute starts the moves in batches of --batch partitions, shows the
bytes remaining, the rate and the ETA every --interval, and waits until
every replica has left the broker. Stop the broker then (a controlled
shutdown), and run the command again with --unregister to remove its
registration (UnregisterBroker). With --execute --wait the command waits
for the broker to be stopped (fenced) and unregisters it itself.

--throttle B (with --execute) limits the replication of the moves to B
bytes/s, as cluster reassign --throttle: before each batch it sets
leader/follower.replication.throttled.rate on the brokers of the batch's
moves and the topics' leader/follower.replication.throttled.replicas;
when the plan ends, completed or interrupted, it removes them.

Running --execute again after an interruption continues the plan.`,
		Example: `  samsa cluster decommission 4
  samsa cluster decommission 4 --execute
  samsa cluster decommission 4 --execute --throttle 52428800
  samsa cluster decommission 4 --unregister
  samsa cluster decommission 4 --execute --wait --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(args[0], 10, 32)
			if err != nil || n < 0 {
				return fmt.Errorf("bad broker id %q", args[0])
			}
			if o.throttle >= 0 && !o.execute {
				return errors.New("--throttle is only valid with --execute")
			}
			if o.wait && !o.execute {
				return errors.New("--wait needs --execute")
			}
			if o.unregister && o.execute {
				return errors.New("give --execute or --unregister, not both")
			}
			return g.runClusterAdmin(cmd, o.timeout, func(ctx context.Context, cl *kgo.Client, adm *kadm.Client) error {
				return runDecommission(ctx, cmd, g, cl, adm, int32(n), &o)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.execute, "execute", false, "move the replicas (default: print the plan only)")
	f.BoolVar(&o.wait, "wait", false, "with --execute: then wait for the broker to be stopped and unregister it")
	f.BoolVar(&o.unregister, "unregister", false, "unregister the broker (stopped, holding no replica)")
	o.addExecFlags(cmd)
	f.DurationVar(&o.timeout, "timeout", o.timeout, "give up after this long (moves in progress go on)")
	return cmd
}

// holding lists the partitions whose replicas (Metadata's, a move's
// original ones included) name broker n.
func (m *clusterModel) holding(n int32) []string {
	var out []string
	for _, p := range m.parts {
		tp := topicPartition{p.Topic, p.Partition}
		if slices.Contains(m.current[tp], n) {
			out = append(out, fmt.Sprintf("%s-%d", p.Topic, p.Partition))
		}
	}
	return out
}

// liveBroker reports whether n is an unfenced broker.
func (m *clusterModel) liveBroker(n int32) bool {
	return slices.ContainsFunc(m.live, func(b planBroker) bool { return b.ID == n })
}

func runDecommission(ctx context.Context, cmd *cobra.Command, g *globals, cl *kgo.Client, adm *kadm.Client, n int32, o *decommissionOpts) error {
	w := out(cmd)
	rep := decommissionReport{Broker: n, DryRun: !o.execute && !o.unregister}
	m, err := gatherModel(ctx, cl, adm)
	if err != nil {
		return err
	}
	if _, ok := m.registered[n]; m.registered != nil && !ok && len(m.holding(n)) == 0 {
		return fmt.Errorf("broker %d is not registered and holds no replica", n)
	}
	if o.unregister {
		if err := unregisterStopped(ctx, cl, m, n); err != nil {
			return err
		}
		rep.Moved, rep.Unregistered = true, true
		if g.json() {
			return writeJSON(w, rep)
		}
		fmt.Fprintf(w, "Broker %d unregistered.\n", n)
		return nil
	}
	pl, err := planDecommission(m.live, m.parts, n)
	if err != nil {
		return err
	}
	rep.Plan = pl
	// Moves in progress whose target already leaves n out are watched
	// with the plan (submitted again: harmless, as Kafka's tool does).
	changes := slices.Clone(pl.Changes)
	for _, p := range m.parts {
		tp := topicPartition{p.Topic, p.Partition}
		if _, ok := m.moving[tp]; ok && slices.Contains(m.current[tp], n) && !slices.Contains(p.Replicas, n) {
			changes = append(changes, planChange{Topic: p.Topic, Partition: p.Partition, Current: m.current[tp], Target: p.Replicas})
		}
	}
	progressOut := w
	if g.json() {
		progressOut = errOut(cmd)
	} else {
		fmt.Fprintf(w, "Decommission of broker %d: %d partition%s to move off it.\n\n", n, len(changes), plural(len(changes)))
		printPlan(w, pl)
		fmt.Fprintln(w)
	}
	if !o.execute {
		rep.Moved = len(m.holding(n)) == 0
		rep.Next = fmt.Sprintf("samsa cluster decommission %d --execute", n)
		if rep.Moved {
			rep.Next = fmt.Sprintf("stop broker %d, then: samsa cluster decommission %d --unregister", n, n)
		}
		if g.json() {
			return writeJSON(w, rep)
		}
		fmt.Fprintf(w, "Dry run: nothing changed. Next: %s\n", rep.Next)
		return nil
	}
	res, err := executePlan(ctx, progressOut, errOut(cmd), cl, adm, changes, o.execOpts)
	rep.Results = res
	if err != nil {
		if g.json() {
			_ = writeJSON(w, rep)
		}
		return err
	}
	// Every move landed: nothing may list n any more.
	if m, err = gatherModelRetrying(ctx, cl, adm); err != nil {
		return err
	}
	if left := m.holding(n); len(left) > 0 {
		return fmt.Errorf("%w: broker %d still holds %d partition(s) (placed there meanwhile?): %v; run the command again", errPlanIncomplete, n, len(left), left)
	}
	rep.Moved = true
	if o.wait && m.liveBroker(n) {
		fmt.Fprintf(progressOut, "Broker %d holds no replica. Stop it now (a controlled shutdown); waiting for it to be fenced...\n", n)
		if err := waitFenced(ctx, cl, n, o.interval); err != nil {
			return err
		}
		if m, err = gatherModelRetrying(ctx, cl, adm); err != nil {
			return err
		}
	}
	if !m.liveBroker(n) {
		if err := unregisterStopped(ctx, cl, m, n); err != nil {
			return err
		}
		rep.Unregistered = true
	} else {
		rep.Next = fmt.Sprintf("stop broker %d, then: samsa cluster decommission %d --unregister", n, n)
	}
	if g.json() {
		return writeJSON(w, rep)
	}
	fmt.Fprintf(w, "Broker %d holds no replica.\n", n)
	if rep.Unregistered {
		fmt.Fprintf(w, "Broker %d unregistered.\n", n)
	} else {
		fmt.Fprintf(w, "Next: %s\n", rep.Next)
	}
	return nil
}

// unregisterStopped unregisters broker n after checking that it holds
// no replica and is not live.
func unregisterStopped(ctx context.Context, cl *kgo.Client, m *clusterModel, n int32) error {
	if left := m.holding(n); len(left) > 0 {
		return fmt.Errorf("broker %d still holds %d partition(s) (%s...): run `samsa cluster decommission %d --execute` first", n, len(left), left[0], n)
	}
	if m.liveBroker(n) {
		return fmt.Errorf("broker %d is still running: stop it (a controlled shutdown) before unregistering it", n)
	}
	req := kmsg.NewPtrUnregisterBrokerRequest()
	req.BrokerID = n
	// Sent to the active controller, found afresh at each try: a request
	// that reached no broker (the controller moving) is sent again; a
	// Kafka error is an answer.
	resp, err := retrying(ctx, func() (*kmsg.UnregisterBrokerResponse, error) {
		var via kmsg.Requestor = cl
		if md, err := freshMetadata(ctx, cl, []string{}); err == nil && md.ControllerID >= 0 && md.ControllerID != n {
			via = cl.Broker(int(md.ControllerID))
		}
		return req.RequestWith(ctx, via)
	})
	if err != nil {
		return fmt.Errorf("unregister broker %d: %w", n, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("unregister broker %d: %s", n, kafkaError(err, strPtr(resp.ErrorMessage)))
	}
	return nil
}

// waitFenced waits until broker n is no live broker (Metadata), polling
// every interval until ctx ends.
func waitFenced(ctx context.Context, cl *kgo.Client, n int32, interval time.Duration) error {
	for {
		md, err := freshMetadata(ctx, cl, []string{})
		if err == nil && !slices.ContainsFunc(md.Brokers, func(b kmsg.MetadataResponseBroker) bool { return b.NodeID == n }) {
			return nil
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("broker %d was not stopped in time: %w", n, ctx.Err())
		case <-t.C:
		}
	}
}
