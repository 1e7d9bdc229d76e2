package cli

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

func newTopicCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "topic",
		Aliases: []string{"topics"},
		Short:   "Create, list, describe, delete, produce to and consume from topics",
	}
	cmd.AddCommand(
		newTopicCreateCommand(g),
		newTopicListCommand(g),
		newTopicDescribeCommand(g),
		newTopicDeleteCommand(g),
		newTopicAddPartitionsCommand(g),
		newTopicProduceCommand(g),
		newTopicConsumeCommand(g),
		newTopicAlterConfigCommand(g),
		newTopicTrimPrefixCommand(g),
	)
	return cmd
}

// topicResult is one topic's outcome of create, delete or add-partitions.
type topicResult struct {
	Topic             string `json:"topic"`
	Partitions        int32  `json:"partitions,omitempty"`
	ReplicationFactor int16  `json:"replication_factor,omitempty"`
	Error             string `json:"error,omitempty"` // Kafka error name and message; "" on success
}

// printTopicResults prints per-topic outcomes (sorted by name) and returns
// errReported when any failed, so the process exits non-zero.
func printTopicResults(w io.Writer, g *globals, rs []topicResult, withCounts bool) error {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Topic < rs[j].Topic })
	if g.json() {
		if err := writeJSON(w, rs); err != nil {
			return err
		}
	} else {
		var t *table
		if withCounts {
			t = newTable(w, "TOPIC", "PARTITIONS", "REPLICAS", "STATUS")
		} else {
			t = newTable(w, "TOPIC", "STATUS")
		}
		for _, r := range rs {
			if withCounts {
				p, rf := "-", "-"
				if r.Error == "" {
					p, rf = fmt.Sprint(r.Partitions), fmt.Sprint(r.ReplicationFactor)
				}
				t.row(r.Topic, p, rf, status(r.Error))
			} else {
				t.row(r.Topic, status(r.Error))
			}
		}
		t.flush()
	}
	return reportFailures(rs, func(r topicResult) string { return r.Error })
}

// parseKeyValues turns repeated key=value flags into a map.
func parseKeyValues(flag string, kvs []string) (map[string]*string, error) {
	m := make(map[string]*string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: want key=value", flag, kv)
		}
		m[k] = &v
	}
	return m, nil
}

func newTopicCreateCommand(g *globals) *cobra.Command {
	var (
		partitions   int32
		replicas     int16
		configs      []string
		validateOnly bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME...",
		Short: "Create topics",
		Long: `Create topics. -p and -r default to the broker's num.partitions and
default.replication.factor. -c sets a topic config (Kafka names), repeatable.
--validate-only asks the broker to check the request without creating anything.`,
		Example: `  samsa topic create orders -p 3
  samsa topic create events -p 6 -r 3 -c retention.ms=86400000 -c cleanup.policy=compact`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, names []string) error {
			cfg, err := parseKeyValues("-c", configs)
			if err != nil {
				return err
			}
			return g.runAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				create := adm.CreateTopics
				if validateOnly {
					create = adm.ValidateCreateTopics
				}
				resp, err := create(ctx, partitions, replicas, cfg, names...)
				if err != nil {
					return err
				}
				var rs []topicResult
				for _, name := range names {
					r, ok := resp[name]
					if !ok {
						rs = append(rs, topicResult{Topic: name, Error: "missing from the broker's response"})
						continue
					}
					rs = append(rs, topicResult{
						Topic: name, Partitions: r.NumPartitions, ReplicationFactor: r.ReplicationFactor,
						Error: kafkaError(r.Err, r.ErrMessage),
					})
				}
				return printTopicResults(out(cmd), g, rs, true)
			})
		},
	}
	f := cmd.Flags()
	f.Int32VarP(&partitions, "partitions", "p", -1, "number of partitions (-1: broker default)")
	f.Int16VarP(&replicas, "replicas", "r", -1, "replication factor (-1: broker default)")
	f.StringArrayVarP(&configs, "config", "c", nil, "topic config key=value, repeatable")
	f.BoolVar(&validateOnly, "validate-only", false, "validate the request without creating the topics")
	return cmd
}

// topicListEntry is one row of `topic list`.
type topicListEntry struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
	Replicas   int    `json:"replicas"`
	Internal   bool   `json:"internal,omitempty"`
	Error      string `json:"error,omitempty"`
}

func newTopicListCommand(g *globals) *cobra.Command {
	var internal bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics",
		Example: `  samsa topic list
  samsa topic list -i --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.runAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				list := adm.ListTopics
				if internal {
					list = adm.ListTopicsWithInternal
				}
				tds, err := list(ctx)
				if err != nil {
					return err
				}
				var es []topicListEntry
				for _, name := range tds.Names() {
					td := tds[name]
					e := topicListEntry{Name: name, Partitions: len(td.Partitions), Internal: td.IsInternal, Error: kafkaError(td.Err, "")}
					if p, ok := td.Partitions[0]; ok {
						e.Replicas = len(p.Replicas)
					}
					es = append(es, e)
				}
				return printTopicList(out(cmd), g, es)
			})
		},
	}
	cmd.Flags().BoolVarP(&internal, "internal", "i", false, "include internal topics (__consumer_offsets, ...)")
	return cmd
}

func printTopicList(w io.Writer, g *globals, es []topicListEntry) error {
	if g.json() {
		if es == nil {
			es = []topicListEntry{}
		}
		return writeJSON(w, es)
	}
	withErr := false
	for _, e := range es {
		withErr = withErr || e.Error != ""
	}
	header := []string{"NAME", "PARTITIONS", "REPLICAS"}
	if withErr {
		header = append(header, "ERROR")
	}
	t := newTable(w, header...)
	for _, e := range es {
		if withErr {
			t.row(e.Name, e.Partitions, e.Replicas, e.Error)
		} else {
			t.row(e.Name, e.Partitions, e.Replicas)
		}
	}
	t.flush()
	return nil
}

func newTopicDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME...",
		Aliases: []string{"rm"},
		Short:   "Delete topics",
		Example: `  samsa topic delete orders events`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, names []string) error {
			return g.runAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				resp, err := adm.DeleteTopics(ctx, names...)
				if err != nil {
					return err
				}
				rs := topicResults(names, func(name string) (string, bool, error) {
					r, ok := resp[name]
					return r.ErrMessage, ok, r.Err
				})
				return printTopicResults(out(cmd), g, rs, false)
			})
		},
	}
}

func newTopicAddPartitionsCommand(g *globals) *cobra.Command {
	var add, total int
	cmd := &cobra.Command{
		Use:   "add-partitions NAME...",
		Short: "Add partitions to topics (partition counts never shrink)",
		Long: `Add partitions to existing topics: -n adds that many to each topic (like rpk),
--total sets the final count instead. Kafka never removes partitions: a total
below the current count fails with INVALID_PARTITIONS.`,
		Example: `  samsa topic add-partitions orders -n 3
  samsa topic add-partitions orders --total 12`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, names []string) error {
			if (add > 0) == (total > 0) {
				return errors.New("give exactly one of -n/--num (partitions to add) or --total (final count), positive")
			}
			return g.runAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				var resp kadm.CreatePartitionsResponses
				var err error
				if add > 0 {
					resp, err = adm.CreatePartitions(ctx, add, names...)
				} else {
					resp, err = adm.UpdatePartitions(ctx, total, names...)
				}
				if err != nil {
					return err
				}
				rs := topicResults(names, func(name string) (string, bool, error) {
					r, ok := resp[name]
					return r.ErrMessage, ok, r.Err
				})
				return printTopicResults(out(cmd), g, rs, false)
			})
		},
	}
	cmd.Flags().IntVarP(&add, "num", "n", 0, "number of partitions to add to each topic")
	cmd.Flags().IntVar(&total, "total", 0, "final partition count of each topic")
	return cmd
}

// topicResults turns per-topic admin answers into results in the order of
// names; lookup returns a topic's error message, whether it was answered, and its error.
func topicResults(names []string, lookup func(name string) (string, bool, error)) []topicResult {
	rs := make([]topicResult, 0, len(names))
	for _, name := range names {
		msg, ok, err := lookup(name)
		if !ok {
			rs = append(rs, topicResult{Topic: name, Error: "missing from the broker's response"})
			continue
		}
		rs = append(rs, topicResult{Topic: name, Error: kafkaError(err, msg)})
	}
	return rs
}
