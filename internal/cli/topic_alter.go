package cli

// `samsa topic alter-config` (IncrementalAlterConfigs) and `samsa topic
// trim-prefix` (DeleteRecords), both through kadm, so they work against
// Samsa and Apache Kafka alike.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newTopicAlterConfigCommand(g *globals) *cobra.Command {
	var sets, appends, subtracts, deletes []string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "alter-config TOPIC...",
		Short: "Set, append to, subtract from or delete topic configs",
		Long: `Change topic config overrides key by key (Kafka's IncrementalAlterConfigs).
--set key=value sets an override; --delete key removes it, so the key returns to
the broker's default; --append / --subtract add or remove items of a list-typed
key (cleanup.policy). Each flag is repeatable and also takes comma-separated
pairs: --set retention.ms=1000,segment.bytes=1048576. A comma followed by text
without '=' continues the previous value, so --set cleanup.policy=compact,delete
sets both policies. --dry-run asks the broker to validate the change and store
nothing. A topic changes entirely or not at all.`,
		Example: `  samsa topic alter-config orders --set retention.ms=86400000
  samsa topic alter-config orders events --set cleanup.policy=compact,delete --delete retention.bytes
  samsa topic alter-config orders --append cleanup.policy=compact --dry-run`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, names []string) error {
			var ops []kadm.AlterConfig
			for _, f := range []struct {
				flag string
				op   kadm.IncrementalOp
				kvs  []string
			}{{"--set", kadm.SetConfig, sets}, {"--append", kadm.AppendConfig, appends}, {"--subtract", kadm.SubtractConfig, subtracts}} {
				pairs, err := parseConfigPairs(f.flag, f.kvs)
				if err != nil {
					return err
				}
				for _, p := range pairs {
					ops = append(ops, kadm.AlterConfig{Op: f.op, Name: p[0], Value: &p[1]})
				}
			}
			for _, d := range deletes {
				for _, k := range strings.Split(d, ",") {
					if k = strings.TrimSpace(k); k != "" {
						ops = append(ops, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
					}
				}
			}
			if len(ops) == 0 {
				return errors.New("nothing to change: give --set, --append, --subtract or --delete")
			}
			return g.runAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				alter := adm.AlterTopicConfigs
				if dryRun {
					alter = adm.ValidateAlterTopicConfigs
				}
				resp, err := alter(ctx, ops, names...)
				if err != nil {
					return err
				}
				byName := make(map[string]kadm.AlterConfigsResponse, len(resp))
				for _, r := range resp {
					byName[r.Name] = r
				}
				rs := topicResults(names, func(name string) (string, bool, error) {
					r, ok := byName[name]
					return r.ErrMessage, ok, r.Err
				})
				return printTopicResults(out(cmd), g, rs, false)
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&sets, "set", nil, "set key=value (repeatable, comma-separated pairs allowed)")
	f.StringArrayVar(&appends, "append", nil, "append items to a list config, key=value")
	f.StringArrayVar(&subtracts, "subtract", nil, "remove items from a list config, key=value")
	f.StringArrayVar(&deletes, "delete", nil, "remove the override of key (repeatable, comma-separated)")
	f.BoolVar(&dryRun, "dry-run", false, "validate the change on the broker without storing it")
	return cmd
}

// parseConfigPairs splits "k=v,k2=v2" flags into pairs. A comma-separated
// piece without '=' belongs to the previous value (list values such as
// cleanup.policy=compact,delete).
func parseConfigPairs(flag string, kvs []string) ([][2]string, error) {
	var out [][2]string
	for _, kv := range kvs {
		for _, piece := range strings.Split(kv, ",") {
			k, v, ok := strings.Cut(piece, "=")
			switch {
			case ok && strings.TrimSpace(k) != "":
				out = append(out, [2]string{strings.TrimSpace(k), v})
			case !ok && len(out) > 0:
				out[len(out)-1][1] += "," + piece
			default:
				return nil, fmt.Errorf("%s %q: want key=value", flag, kv)
			}
		}
	}
	return out, nil
}

// trimResult is one partition's outcome of `topic trim-prefix`.
type trimResult struct {
	Topic          string `json:"topic"`
	Partition      int32  `json:"partition"`        // -1 when the topic itself failed
	NewStartOffset int64  `json:"new_start_offset"` // -1 on error
	Error          string `json:"error,omitempty"`
}

func newTopicTrimPrefixCommand(g *globals) *cobra.Command {
	var (
		offset     int64
		partitions []int32
	)
	cmd := &cobra.Command{
		Use:   "trim-prefix TOPIC",
		Short: "Delete the records of partitions below an offset (DeleteRecords)",
		Long: `Move the log start offset of partitions up to --offset (Kafka's DeleteRecords,
like kafka-delete-records.sh): records below it can no longer be read and the
broker deletes the segments that lie wholly below it. --offset -1 trims up to
the high watermark (everything written so far). -p limits the partitions
(default: all). Topics whose cleanup.policy is compact only refuse with
POLICY_VIOLATION; an offset above the high watermark fails with
OFFSET_OUT_OF_RANGE. An offset below the current start changes nothing and
shows the current start.`,
		Example: `  samsa topic trim-prefix orders --offset 1000
  samsa topic trim-prefix orders --offset -1 -p 0,2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			if !cmd.Flags().Changed("offset") {
				return errors.New("--offset is required (-1: up to the high watermark)")
			}
			return g.runAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				tds, err := adm.ListTopics(ctx, topic)
				if err != nil {
					return err
				}
				td, ok := tds[topic]
				if !ok || td.Err != nil {
					msg := "missing from the broker's response"
					if ok {
						msg = kafkaError(td.Err, "")
					}
					return printTrimResults(out(cmd), g, []trimResult{{Topic: topic, Partition: -1, NewStartOffset: -1, Error: msg}})
				}
				want := partitions
				if len(want) == 0 {
					for p := range td.Partitions {
						want = append(want, p)
					}
				}
				os := kadm.Offsets{}
				for _, p := range want {
					os.AddOffset(topic, p, offset, -1)
				}
				resp, err := adm.DeleteRecords(ctx, os)
				var se *kadm.ShardErrors
				if err != nil && !errors.As(err, &se) {
					return err
				}
				rs := make([]trimResult, 0, len(want))
				for _, p := range want {
					r := trimResult{Topic: topic, Partition: p, NewStartOffset: -1}
					if _, exists := td.Partitions[p]; !exists {
						r.Error = "UNKNOWN_TOPIC_OR_PARTITION: no such partition"
					} else if d, ok := resp.Lookup(topic, p); !ok {
						r.Error = "missing from the broker's response"
						if se != nil && len(se.Errs) > 0 {
							r.Error = kafkaError(se.Errs[0].Err, "")
						}
					} else if d.Err != nil {
						r.Error = kafkaError(d.Err, "")
					} else {
						r.NewStartOffset = d.LowWatermark
					}
					rs = append(rs, r)
				}
				sort.Slice(rs, func(i, j int) bool { return rs[i].Partition < rs[j].Partition })
				return printTrimResults(out(cmd), g, rs)
			})
		},
	}
	cmd.Flags().Int64Var(&offset, "offset", 0, "new start offset of each partition (-1: the high watermark)")
	cmd.Flags().Int32SliceVarP(&partitions, "partitions", "p", nil, "partitions to trim, comma separated (default: all)")
	return cmd
}

// printTrimResults prints per-partition outcomes and returns errReported
// when any failed.
func printTrimResults(w io.Writer, g *globals, rs []trimResult) error {
	if g.json() {
		if err := writeJSON(w, rs); err != nil {
			return err
		}
	} else {
		t := newTable(w, "TOPIC", "PARTITION", "NEW-START-OFFSET", "ERROR")
		for _, r := range rs {
			p, o := fmt.Sprint(r.Partition), fmt.Sprint(r.NewStartOffset)
			if r.Partition < 0 {
				p = "-"
			}
			if r.Error != "" {
				o = "-"
			}
			t.row(r.Topic, p, o, r.Error)
		}
		t.flush()
	}
	return reportFailures(rs, func(r trimResult) string { return r.Error })
}
