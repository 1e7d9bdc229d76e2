package cli

// `samsa cluster balance`: even replicas, preferred leaders and bytes
// over the live brokers and their racks (the planner and its bounds are
// in cluster_plan.go). A dry run (the default) lists the moves — topic,
// partition, from, to, bytes — and each broker's load before and after;
// --execute runs them in bounded batches with live progress
// (cluster_plan_exec.go) and then a preferred leader election
// (ElectLeaders, 43) of the partitions it changed, so the leaders follow
// the new first replicas; --throttle throttles the moves as for a
// decommission. Partitions with a move in progress, or with a
// replica on a broker that is not live, are left as they are.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// defaultBalanceMaxMoves bounds the replica moves of one plan.
const defaultBalanceMaxMoves = 500

// balanceOpts are the flags of `cluster balance`.
type balanceOpts struct {
	execOpts
	execute  bool
	maxMoves int
	timeout  time.Duration
}

// balanceReport is the JSON document of `cluster balance`.
type balanceReport struct {
	DryRun bool         `json:"dry_run"`
	Plan   *clusterPlan `json:"plan"`
	// Skipped counts partitions left alone (a move in progress).
	Skipped int               `json:"skipped"`
	Results []partitionResult `json:"results,omitempty"`
	// Elected counts the partitions whose preferred leader the election
	// after the moves made leader; ElectionErrors are its failures
	// (ELECTION_NOT_NEEDED is neither).
	Elected        int      `json:"elected"`
	ElectionErrors []string `json:"election_errors,omitempty"`
}

func newClusterBalanceCommand(g *globals) *cobra.Command {
	o := balanceOpts{execOpts: defaultExecOpts(), maxMoves: defaultBalanceMaxMoves,
		timeout: defaultDecommissionTimeout}
	cmd := &cobra.Command{
		Use:   "balance",
		Short: "Even replicas, leaders and disk use over the brokers and racks",
		Long: `Propose, and with --execute run, a plan that evens the replica count of
every live broker, the partitions each is the preferred leader of (the first
replica) and the bytes each stores (DescribeLogDirs), never putting two
replicas of a partition on one rack when another rack can take one.

The plan is greedy and makes few moves: first partitions with two replicas
on one rack, then replicas from the most to the least loaded broker until
counts differ by at most one, then moves or swaps that narrow the byte gap
within those counts, then replica reorders (no data copied) for preferred
leaders. At most --max-moves replica moves per run.

Without --execute it prints the moves and each broker's load before and
after, and changes nothing. --execute moves --batch partitions at a time,
showing the bytes remaining, rate and ETA every --interval, then runs a
preferred leader election for the partitions it changed. --throttle B
(with --execute) limits the replication of the moves to B bytes/s, as
cluster decommission --throttle does, and removes the throttle when the
plan ends.`,
		Example: `  samsa cluster balance
  samsa cluster balance --execute
  samsa cluster balance --execute --throttle 52428800
  samsa cluster balance --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.throttle >= 0 && !o.execute {
				return errors.New("--throttle is only valid with --execute")
			}
			if o.maxMoves <= 0 {
				return fmt.Errorf("--max-moves %d: want a positive number", o.maxMoves)
			}
			return g.runClusterAdmin(cmd, o.timeout, func(ctx context.Context, cl *kgo.Client, adm *kadm.Client) error {
				return runBalance(ctx, cmd, g, cl, adm, &o)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.execute, "execute", false, "run the plan (default: print it only)")
	f.IntVar(&o.maxMoves, "max-moves", o.maxMoves, "at most this many replica moves")
	o.addExecFlags(cmd)
	f.DurationVar(&o.timeout, "timeout", o.timeout, "give up after this long (moves in progress go on)")
	return cmd
}

func runBalance(ctx context.Context, cmd *cobra.Command, g *globals, cl *kgo.Client, adm *kadm.Client, o *balanceOpts) error {
	w := out(cmd)
	m, err := gatherModel(ctx, cl, adm)
	if err != nil {
		return err
	}
	if len(m.live) == 0 {
		return errors.New("no live broker")
	}
	pl := planBalance(m.live, m.parts, o.maxMoves)
	rep := balanceReport{DryRun: !o.execute, Plan: pl, Skipped: len(m.moving)}
	progressOut := w
	if g.json() {
		progressOut = errOut(cmd)
	} else {
		if len(pl.Changes) == 0 {
			fmt.Fprintln(w, "The cluster is balanced: nothing to move.")
		}
		printPlan(w, pl)
		if rep.Skipped > 0 {
			fmt.Fprintf(w, "%d partition%s with a move in progress left as they are.\n", rep.Skipped, plural(rep.Skipped))
		}
		fmt.Fprintln(w)
	}
	if !o.execute || len(pl.Changes) == 0 {
		if g.json() {
			return writeJSON(w, rep)
		}
		if len(pl.Changes) > 0 {
			fmt.Fprintln(w, "Dry run: nothing changed. Run with --execute to move them.")
		}
		return nil
	}
	res, err := executePlan(ctx, progressOut, errOut(cmd), cl, adm, pl.Changes, o.execOpts)
	rep.Results = res
	if err != nil {
		if g.json() {
			_ = writeJSON(w, rep)
		}
		return err
	}
	// The leaders follow the new first replicas.
	set := kadm.TopicsSet{}
	for _, c := range pl.Changes {
		set.Add(c.Topic, c.Partition)
	}
	elected, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, set)
	if err != nil {
		return fmt.Errorf("preferred leader election: %w", err)
	}
	for _, ps := range elected {
		for _, r := range ps {
			switch {
			case r.Err == nil:
				rep.Elected++
			case errors.Is(r.Err, kerr.ElectionNotNeeded):
			default:
				rep.ElectionErrors = append(rep.ElectionErrors, fmt.Sprintf("%s-%d: %s", r.Topic, r.Partition, kafkaError(r.Err, r.ErrMessage)))
			}
		}
	}
	if g.json() {
		if err := writeJSON(w, rep); err != nil {
			return err
		}
		return reportFailures(rep.ElectionErrors, func(s string) string { return s })
	}
	fmt.Fprintf(w, "Balanced: %d partition%s changed, %d preferred leader%s elected.\n", len(pl.Changes), plural(len(pl.Changes)), rep.Elected, plural(rep.Elected))
	for _, e := range rep.ElectionErrors {
		fmt.Fprintf(errOut(cmd), "election: %s\n", e)
	}
	if len(rep.ElectionErrors) > 0 {
		return errReported
	}
	return nil
}
