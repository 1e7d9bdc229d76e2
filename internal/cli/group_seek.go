package cli

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// seekResult is one partition's outcome of `group seek`.
type seekResult struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// PriorOffset is the committed offset before the seek; nil if the
	// group had none for this partition.
	PriorOffset *int64 `json:"prior_offset"`
	// CurrentOffset is the offset committed now (or, with --dry-run, the
	// one that would be); nil when the commit failed.
	CurrentOffset *int64 `json:"current_offset"`
	Error         string `json:"error,omitempty"`
}

func newGroupSeekCommand(g *globals) *cobra.Command {
	var (
		to     string
		topics []string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "seek GROUP --to start|end|OFFSET|-N|@TIMESTAMP_MS",
		Short: "Reset a group's committed offsets (the group must be empty)",
		Long: `Commit new offsets for a group, like kafka-consumer-groups --reset-offsets.

--to picks the offset in every partition:
  start (oldest, beginning)   the log start offset
  end (newest)                the high watermark (skip everything)
  N                           offset N, clamped to the partition's offsets
  -N                          N records before the end
  @MS                         the first record with timestamp >= MS (Unix ms);
                              the end if there is none

Without --topics, every partition the group has a committed offset for is
reset; --topics resets every partition of the named topics instead.

Kafka accepts these commits only while the group has no members: a live group
answers UNKNOWN_MEMBER_ID (or REBALANCE_IN_PROGRESS), shown per partition.
Stop the group's consumers first. --dry-run shows the plan and commits nothing.`,
		Example: `  samsa group seek my-app --to start
  samsa group seek my-app --to @1700000000000 --topics orders,payments
  samsa group seek my-app --to 42 --topics orders --dry-run`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			group := args[0]
			spec, err := parseOffsetSpec(to)
			if err != nil {
				return fmt.Errorf("--to %q: want start, end, N, -N or @timestamp-ms", to)
			}
			return g.runAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {

				prior, err := adm.FetchOffsets(ctx, group)
				if err != nil {
					return fmt.Errorf("fetch the committed offsets of %s: %w", group, err)
				}
				var plan []consumePartition
				if len(topics) > 0 {
					if plan, err = planConsume(ctx, adm, topics, nil, spec); err != nil {
						return err
					}
				} else {
					committed := make(map[string][]int32)
					prior.Each(func(o kadm.OffsetResponse) {
						if o.Err == nil && o.At >= 0 {
							committed[o.Topic] = append(committed[o.Topic], o.Partition)
						}
					})
					if len(committed) == 0 {
						return fmt.Errorf("group %s has no committed offsets: name the topics with --topics", group)
					}
					for _, t := range sortedKeys(committed) {
						tp, err := planConsume(ctx, adm, []string{t}, committed[t], spec)
						if err != nil {
							return err
						}
						plan = append(plan, tp...)
					}
				}

				offsets := make(kadm.Offsets)
				for _, p := range plan {
					offsets.Add(kadm.Offset{Topic: p.topic, Partition: p.partition, At: p.start, LeaderEpoch: -1})
				}
				var committed kadm.OffsetResponses
				if !dryRun {
					if committed, err = adm.CommitOffsets(ctx, group, offsets); err != nil {
						return fmt.Errorf("commit offsets for %s: %w", group, err)
					}
				}

				rs := make([]seekResult, 0, len(plan))
				for _, p := range plan {
					r := seekResult{Topic: p.topic, Partition: p.partition}
					if o, ok := prior.Lookup(p.topic, p.partition); ok && o.Err == nil && o.At >= 0 {
						at := o.At
						r.PriorOffset = &at
					}
					at := p.start
					switch c, ok := committed.Lookup(p.topic, p.partition); {
					case dryRun:
						r.CurrentOffset = &at
					case !ok:
						r.Error = "missing from the broker's response"
					case c.Err != nil:
						r.Error = kafkaError(c.Err, "")
					default:
						r.CurrentOffset = &at
					}
					rs = append(rs, r)
				}
				if dryRun {
					fmt.Fprintln(errOut(cmd), "dry run: nothing was committed")
				}
				return printSeekResults(out(cmd), errOut(cmd), g, rs)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "new offset: start, end, N, -N or @timestamp-ms (required)")
	f.StringSliceVarP(&topics, "topics", "t", nil, "topics to reset, comma separated (default: every topic the group committed to)")
	f.BoolVar(&dryRun, "dry-run", false, "print the new offsets without committing them")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

// printSeekResults prints the per-partition outcome sorted by topic and
// partition, with a hint when the group was not empty, and returns
// errReported if any partition failed.
func printSeekResults(w, ew io.Writer, g *globals, rs []seekResult) error {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Topic != rs[j].Topic {
			return rs[i].Topic < rs[j].Topic
		}
		return rs[i].Partition < rs[j].Partition
	})
	failed, live := false, false
	for _, r := range rs {
		failed = failed || r.Error != ""
		for _, e := range []*kerr.Error{kerr.UnknownMemberID, kerr.IllegalGeneration, kerr.RebalanceInProgress} {
			live = live || (r.Error != "" && r.Error == e.Message)
		}
	}
	if g.json() {
		if err := writeJSON(w, rs); err != nil {
			return err
		}
	} else {
		header := []string{"TOPIC", "PARTITION", "PRIOR-OFFSET", "CURRENT-OFFSET"}
		if failed {
			header = append(header, "ERROR")
		}
		t := newTable(w, header...)
		for _, r := range rs {
			cells := []any{r.Topic, r.Partition, optOffsetCell(r.PriorOffset), optOffsetCell(r.CurrentOffset)}
			if failed {
				cells = append(cells, r.Error)
			}
			t.row(cells...)
		}
		t.flush()
	}
	if live {
		fmt.Fprintln(ew, "hint: Kafka resets offsets only while the group has no members; stop its consumers and retry")
	}
	if failed {
		return errReported
	}
	return nil
}
