package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"samsa/internal/perf"
)

// The cluster group (issue 7's benchmark) runs when samsa3 is a target:
// an end-to-end latency run at a fixed rate on the cluster, first thing
// in the bench, and, after the single-node workloads, the acks=all
// produce workload on the three-node cluster with RF 3 against the
// single node with RF 1, alternated and repeated like the other
// workloads.

// clusterWorkload is the workload of the cluster comparison.
var clusterWorkload = workload{RecordSize: 1024, Partitions: 8, Acks: -1}

const (
	kindClusterProduce = "cluster-produce" // clusterWorkload on samsa (RF 1) or samsa3 (RF 3)
	kindEndToEnd       = "e2e"             // end-to-end latency on samsa3
	clusterGoalRatio   = 0.5               // samsa3 rec/s ≥ 0.5 × samsa rec/s
	e2eGoalP99         = 5 * time.Millisecond
)

// clusterTopic is the topic of the cluster group's runs.
func clusterTopic() string {
	return "bench-cluster-" + strings.TrimPrefix(clusterWorkload.topic(), "bench-")
}

// benchCluster runs the cluster's produce comparison and returns its
// runs. The samsa target is optional (without it there is no ratio).
func benchCluster(ctx context.Context, o options, reps int, targets map[string][]kgo.Opt, dirs map[string]string, progressOut io.Writer) ([]run, error) {
	order := []string{"samsa3"}
	if _, ok := targets["samsa"]; ok {
		order = append(order, "samsa")
	}
	topic := clusterTopic()
	var runs []run
	for i := range reps {
		for _, target := range repOrder(order, i) {
			if ctx.Err() != nil {
				return runs, ctx.Err()
			}
			r := run{Target: target, Kind: kindClusterProduce, Rep: i, Workload: clusterWorkload}
			var err error
			r.Result, err = perf.Produce(ctx, perf.ProduceConfig{
				Topic: topic, Records: o.records, Duration: o.duration, RecordSize: clusterWorkload.RecordSize,
				Partitions: clusterWorkload.Partitions, Acks: clusterWorkload.Acks, ClientOpts: targets[target],
			})
			if err != nil {
				r.Error = err.Error()
			}
			fmt.Fprintf(progressOut, "%-8s %-7s %-22s run %d: %s\n", target, "produce", clusterWorkload.name(), i+1, progress(r))
			runs = append(runs, r)
		}
	}
	for _, target := range order {
		if err := deleteTopic(ctx, targets[target], topic, dirs[target]); err != nil {
			return runs, fmt.Errorf("%s: delete %s: %w", target, topic, err)
		}
	}

	return runs, nil
}

// benchEndToEnd runs the end-to-end latency run on samsa3: a fixed rate,
// well below what the cluster sustains, so the latency is the
// replication path's and not a queue's. It runs before every other
// workload, on a cluster just started: the gigabytes the throughput
// runs write and then delete leave the kernel writing back and freeing
// pages for many seconds after, which stalls a disk write now and then
// by tens of milliseconds; a cluster at 10,000 records/s in steady state
// does not have that behind it.
func benchEndToEnd(ctx context.Context, o options, targets map[string][]kgo.Opt, dirs map[string]string, progressOut io.Writer) (run, error) {
	rate := o.e2eRate
	if rate <= 0 {
		rate = 10_000
	}
	e2eTopic := clusterTopic() + "-e2e"
	r := run{Target: "samsa3", Kind: kindEndToEnd, Workload: clusterWorkload, Rate: rate}
	res, err := perf.EndToEnd(ctx, perf.EndToEndConfig{
		Topic: e2eTopic, Rate: rate, Duration: o.duration, RecordSize: clusterWorkload.RecordSize,
		Partitions: clusterWorkload.Partitions, Acks: clusterWorkload.Acks, ClientOpts: targets["samsa3"],
	})
	r.Result = res
	if err != nil {
		r.Error = err.Error()
	}
	fmt.Fprintf(progressOut, "%-8s %-7s %-22s at %d rec/s: %s\n", "samsa3", "e2e", clusterWorkload.name(), rate, progress(r))
	if err := deleteTopic(ctx, targets["samsa3"], e2eTopic, dirs["samsa3"]); err != nil {
		return r, fmt.Errorf("samsa3: delete %s: %w", e2eTopic, err)
	}
	return r, nil
}

// printCluster prints the cluster group's table, if it ran.
func printCluster(w io.Writer, rep report) {
	c := median(rep.Runs, "samsa3", kindClusterProduce, clusterWorkload)
	if c == nil {
		return
	}
	s := median(rep.Runs, "samsa", kindClusterProduce, clusterWorkload)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "cluster: samsa3 = 3 nodes on loopback, RF 3, min.insync.replicas 2; samsa = the single node, RF 1")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	// Left-aligned names in a right-aligned table: pad them to one width.
	name := clusterWorkload.name()
	rows := []string{"workload", "produce " + name + " rec/s", "produce " + name + " p99",
		"end-to-end " + name + " p50", "end-to-end " + name + " p99"}
	width := 0
	for _, r := range rows {
		width = max(width, len([]rune(r)))
	}
	pad := func(s string) string { return s + strings.Repeat(" ", width-len([]rune(s))) }
	fmt.Fprintf(tw, "%s\tsamsa3\tsamsa\tratio\tgoal\tmet\t\n", pad(rows[0]))
	ratio, met := "-", "-"
	if c.Error == "" && s != nil && s.Error == "" && s.Result.RecordsPerSec > 0 {
		v := c.Result.RecordsPerSec / s.Result.RecordsPerSec
		ratio, met = fmt.Sprintf("%.2f", v), yesNo(v >= clusterGoalRatio)
	}
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t≥ %.2f\t%s\t\n", pad(rows[1]), rate(c), rate(s), ratio, clusterGoalRatio, met)
	fmt.Fprintf(tw, "%s\t%s\t%s\t\t\t\t\n", pad(rows[2]), p99(c), p99(s))
	for i := range rep.Runs {
		e := &rep.Runs[i]
		if e.Kind != kindEndToEnd {
			continue
		}
		p50, p99v, met := "error", "error", "-"
		if e.Error == "" {
			p50 = fmt.Sprintf("%.2fms", float64(e.Result.Latency.P50)/float64(time.Millisecond))
			p99v = fmt.Sprintf("%.2fms", float64(e.Result.Latency.P99)/float64(time.Millisecond))
			met = yesNo(e.Result.Latency.P99 <= e2eGoalP99)
		}
		fmt.Fprintf(tw, "%s\t%s\t\t\t\t\t\n", pad(rows[3]), p50)
		fmt.Fprintf(tw, "%s\t%s\t\t\t≤ %s\t%s\t\n", pad(rows[4]), p99v, e2eGoalP99, met)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "rec/s: median of %d alternated runs; end-to-end: one producer at a fixed rate (%s), one consumer, receive time − send time per record\n",
		rep.Reps, e2eRateOf(rep.Runs))
	for _, e := range rep.Runs {
		if e.Kind == kindEndToEnd && e.Error != "" {
			fmt.Fprintf(w, "end-to-end error: %s\n", e.Error)
		}
	}
}

// e2eRateOf describes the end-to-end run's achieved rate.
func e2eRateOf(runs []run) string {
	for _, e := range runs {
		if e.Kind == kindEndToEnd {
			return fmt.Sprintf("%d records/s for %s", e.Rate, e.Result.Elapsed.Round(time.Second))
		}
	}
	return "not run"
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}
