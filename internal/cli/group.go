package cli

// `samsa group`: consumer groups as Kafka's kafka-consumer-groups.sh and
// rpk show them. Every verb is a plain admin client of the group
// coordinator (ListGroups, DescribeGroups, OffsetFetch, OffsetCommit,
// DeleteGroups through kadm), so it works against Samsa and Apache Kafka.
// Only classic groups are described for now: a KIP-848 group answers
// DescribeGroups with an error and is shown with it.

import (
	"context"
	"errors"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newGroupCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "group",
		Aliases: []string{"groups", "g"},
		Short:   "List, describe and delete consumer groups, and reset their committed offsets",
	}
	cmd.AddCommand(
		newGroupListCommand(g),
		newGroupDescribeCommand(g),
		newGroupDeleteCommand(g),
		newGroupSeekCommand(g),
	)
	return cmd
}

// groupListEntry is one row of `group list`.
type groupListEntry struct {
	Group        string `json:"group"`
	Coordinator  int32  `json:"coordinator"`   // node id of the group coordinator
	State        string `json:"state"`         // Stable, Empty, ...; "" from brokers before Kafka 2.6
	ProtocolType string `json:"protocol_type"` // "consumer", "connect", or "" for offsets-only groups
}

// groupStates are the group states Kafka names (classic and KIP-848), used
// to accept --state in any case, as kafka-consumer-groups.sh does.
var groupStates = []string{
	"PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Empty",
	"Assigning", "Reconciling", "Unknown",
}

// canonicalStates maps each state to Kafka's spelling; unknown names are
// passed on unchanged for the broker to judge.
func canonicalStates(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		for _, known := range groupStates {
			if strings.EqualFold(s, known) {
				s = known
				break
			}
		}
		out = append(out, s)
	}
	return out
}

func newGroupListCommand(g *globals) *cobra.Command {
	var states []string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups with their coordinator, state and protocol type",
		Long: `List the groups every broker coordinates. --state keeps only groups in the
given states (comma separated, any case: Stable, Empty, PreparingRebalance,
CompletingRebalance, Dead, ...).`,
		Example: `  samsa group list
  samsa group list --state empty,stable --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.runAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				filter := canonicalStates(states)
				listed, err := adm.ListGroups(ctx, filter...)
				// ListGroups goes to every broker: show what the others
				// answered and name the brokers that failed.
				partial, err := reportBrokerErrors(cmd, err)
				if err != nil {
					return err
				}
				var es []groupListEntry
				for _, l := range listed.Sorted() {
					// Brokers before Kafka 2.6 ignore the filter.
					if len(filter) > 0 && l.State != "" && !containsFold(filter, l.State) {
						continue
					}
					es = append(es, groupListEntry{Group: l.Group, Coordinator: l.Coordinator, State: l.State, ProtocolType: l.ProtocolType})
				}
				if err := printGroupList(out(cmd), g, es); err != nil {
					return err
				}
				if partial {
					return errReported
				}
				return nil
			})
		},
	}
	cmd.Flags().StringSliceVarP(&states, "state", "s", nil, "only groups in these states, comma separated")
	return cmd
}

func containsFold(ss []string, s string) bool {
	for _, x := range ss {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func printGroupList(w io.Writer, g *globals, es []groupListEntry) error {
	if g.json() {
		if es == nil {
			es = []groupListEntry{}
		}
		return writeJSON(w, es)
	}
	t := newTable(w, "GROUP", "COORDINATOR", "STATE", "PROTOCOL-TYPE")
	for _, e := range es {
		t.row(e.Group, e.Coordinator, dash(e.State), dash(e.ProtocolType))
	}
	t.flush()
	return nil
}

// dash renders an empty cell as "-", as Kafka's tools do.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// groupResult is one group's outcome of delete.
type groupResult struct {
	Group string `json:"group"`
	Error string `json:"error,omitempty"` // Kafka error name and message; "" on success
}

func newGroupDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "delete GROUP...",
		Aliases: []string{"rm"},
		Short:   "Delete consumer groups and their committed offsets",
		Long: `Delete groups with their committed offsets. Kafka deletes only empty groups:
a group with live members fails with NON_EMPTY_GROUP (stop its consumers first).
Each group succeeds or fails on its own; the exit status is 1 if any failed.`,
		Example: `  samsa group delete old-app
  samsa group delete a b c --format json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, names []string) error {
			return g.runAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				resp, err := adm.DeleteGroups(ctx, names...)
				failed, err := groupShardErrors(err)
				if err != nil {
					return err
				}
				rs := make([]groupResult, 0, len(names))
				for _, name := range names {
					r := groupResult{Group: name}
					if d, ok := resp[name]; ok {
						r.Error = kafkaError(d.Err, d.ErrMessage)
					} else if e, ok := failed[name]; ok {
						r.Error = e
					} else {
						r.Error = "missing from the broker's response"
					}
					rs = append(rs, r)
				}
				return printGroupResults(out(cmd), g, rs)
			})
		},
	}
}

// groupShardErrors splits a sharded group request's error: the groups of
// failed shards (a coordinator that could not be found or did not answer)
// map to their error, and only an error that is not per shard is returned.
func groupShardErrors(err error) (map[string]string, error) {
	var se *kadm.ShardErrors
	if !errors.As(err, &se) {
		return nil, err
	}
	failed := make(map[string]string)
	for _, e := range se.Errs {
		var groups []string
		switch req := e.Req.(type) {
		case *kmsg.DeleteGroupsRequest:
			groups = req.Groups
		case *kmsg.DescribeGroupsRequest:
			groups = req.Groups
		}
		for _, name := range groups {
			failed[name] = kafkaError(e.Err, "")
		}
	}
	return failed, nil
}

// printGroupResults prints per-group outcomes in the order given and
// returns errReported when any failed, so the process exits non-zero.
func printGroupResults(w io.Writer, g *globals, rs []groupResult) error {
	if g.json() {
		if err := writeJSON(w, rs); err != nil {
			return err
		}
	} else {
		t := newTable(w, "GROUP", "STATUS")
		for _, r := range rs {
			t.row(r.Group, status(r.Error))
		}
		t.flush()
	}
	return reportFailures(rs, func(r groupResult) string { return r.Error })
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
