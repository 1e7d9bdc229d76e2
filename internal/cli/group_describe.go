package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// groupDescription is everything `group describe` shows about one group.
type groupDescription struct {
	Group        string `json:"group"`
	Coordinator  int32  `json:"coordinator"` // node id; -1 if unknown
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	// Balancer is the assignor the members agreed on (DescribeGroups'
	// protocol: range, cooperative-sticky, ...); "" unless Stable.
	Balancer string        `json:"balancer"`
	Members  []groupMember `json:"members"`
	// TotalLag sums the LAG column: partitions without a commit add
	// nothing, as their lag is unknown.
	TotalLag   int64               `json:"total_lag"`
	Partitions []groupPartitionLag `json:"partitions"`
	Error      string              `json:"error,omitempty"` // group-level Kafka error
}

// groupMember is one member of a group (DescribeGroups).
type groupMember struct {
	MemberID   string  `json:"member_id"`
	InstanceID *string `json:"instance_id"` // KIP-345 static membership; nil if dynamic
	ClientID   string  `json:"client_id"`
	Host       string  `json:"host"`
}

// groupPartitionLag is one row of the kafka-consumer-groups table.
type groupPartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// CurrentOffset is the group's committed offset; nil if the group
	// never committed for this partition.
	CurrentOffset *int64 `json:"current_offset"`
	LogEndOffset  int64  `json:"log_end_offset"` // high watermark; -1 when it could not be listed
	// Lag is LogEndOffset - CurrentOffset (never negative); nil without a
	// commit or a log end offset, where kafka-consumer-groups prints "-".
	Lag      *int64 `json:"lag"`
	MemberID string `json:"member_id"` // "" when no member owns the partition
	ClientID string `json:"client_id"`
	Host     string `json:"host"`
	Error    string `json:"error,omitempty"`
}

func newGroupDescribeCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "describe GROUP...",
		Aliases: []string{"info"},
		Short:   "Describe consumer groups: state, members, committed offsets and lag",
		Long: `Describe groups: coordinator, state, balancer, members and total lag, then one
row per partition the group owns or committed to, with kafka-consumer-groups'
columns. CURRENT-OFFSET is the committed offset, LOG-END-OFFSET the high
watermark, LAG their difference. A partition the group never committed to shows
"-" for both CURRENT-OFFSET and LAG, and counts nothing in TOTAL-LAG. Members
that own no partition (for example during a rebalance) get a row with TOPIC "-".`,
		Example: `  samsa group describe my-app
  samsa group describe my-app other-app --format json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, names []string) error {
			return g.runAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				// kadm's Lag reorders and shrinks the slice it is given in
				// place; names must keep the order the user typed.
				lags, err := adm.Lag(ctx, slices.Clone(names)...)
				if err != nil {
					return err
				}
				ds := make([]groupDescription, 0, len(names))
				for _, name := range names {
					l, ok := lags[name]
					if !ok {
						ds = append(ds, groupDescription{Group: name, Coordinator: -1, Members: []groupMember{}, Partitions: []groupPartitionLag{}, Error: "missing from the broker's response"})
						continue
					}
					ds = append(ds, describeGroupLag(l))
				}
				if err := printGroupDescriptions(out(cmd), g, ds); err != nil {
					return err
				}
				return reportFailures(ds, func(d groupDescription) string { return d.Error })
			})
		},
	}
}

// describeGroupLag turns kadm's view of a group into the rows
// kafka-consumer-groups prints (ConsumerGroupCommand.describeGroups).
func describeGroupLag(l kadm.DescribedGroupLag) groupDescription {
	d := groupDescription{
		Group: l.Group, Coordinator: l.Coordinator.NodeID, State: l.State,
		ProtocolType: l.ProtocolType, Balancer: l.Protocol,
		Members: []groupMember{}, Partitions: []groupPartitionLag{},
	}
	if err := l.Error(); err != nil {
		d.Error = kafkaError(err, "")
		return d
	}
	// Before DescribeGroups v6 a group the coordinator does not know is
	// answered as Dead with no error.
	if l.State == "Dead" && len(l.Members) == 0 && len(l.Lag) == 0 {
		d.Error = kafkaError(kerr.GroupIDNotFound, "")
		return d
	}
	for _, m := range l.Members {
		d.Members = append(d.Members, groupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, Host: m.ClientHost})
	}
	for _, ml := range l.Lag.Sorted() {
		p := groupPartitionLag{Topic: ml.Topic, Partition: ml.Partition, LogEndOffset: -1}
		if ml.Member != nil {
			p.MemberID, p.ClientID, p.Host = ml.Member.MemberID, ml.Member.ClientID, ml.Member.ClientHost
		}
		if ml.End.Err == nil && ml.End.Offset >= 0 {
			p.LogEndOffset = ml.End.Offset
		}
		if ml.Commit.At >= 0 {
			at := ml.Commit.At
			p.CurrentOffset = &at
			if ml.Err == nil && ml.Lag >= 0 {
				lag := ml.Lag
				p.Lag = &lag
				d.TotalLag += lag
			}
		}
		if ml.Err != nil {
			p.Error = kafkaError(ml.Err, "")
		}
		d.Partitions = append(d.Partitions, p)
	}
	return d
}

// printGroupDescriptions renders descriptions as a header block plus the
// partition table per group (text), or a JSON array.
func printGroupDescriptions(w io.Writer, g *globals, ds []groupDescription) error {
	return printEach(w, g, ds, func(d groupDescription) {
		t := newTable(w)
		t.row("GROUP", d.Group)
		if d.Error != "" {
			t.row("ERROR", d.Error)
			t.flush()
			return
		}
		t.row("COORDINATOR", d.Coordinator)
		t.row("STATE", d.State)
		t.row("BALANCER", dash(d.Balancer))
		t.row("MEMBERS", len(d.Members))
		t.row("TOTAL-LAG", d.TotalLag)
		t.flush()

		withErr := false
		owned := make(map[string]bool, len(d.Members))
		for _, p := range d.Partitions {
			withErr = withErr || p.Error != ""
			owned[p.MemberID] = true
		}
		var idle []groupMember // members without partitions
		for _, m := range d.Members {
			if !owned[m.MemberID] {
				idle = append(idle, m)
			}
		}
		if len(d.Partitions) == 0 && len(idle) == 0 {
			return
		}
		sort.Slice(idle, func(i, j int) bool { return idle[i].MemberID < idle[j].MemberID })

		fmt.Fprintln(w)
		header := []string{"TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID", "CLIENT-ID", "HOST"}
		if withErr {
			header = append(header, "ERROR")
		}
		t = newTable(w, header...)
		for _, p := range d.Partitions {
			cells := []any{p.Topic, p.Partition, optOffsetCell(p.CurrentOffset), offsetCell(p.LogEndOffset), optOffsetCell(p.Lag), dash(p.MemberID), dash(p.ClientID), dash(p.Host)}
			if withErr {
				cells = append(cells, p.Error)
			}
			t.row(cells...)
		}
		for _, m := range idle {
			t.row("-", "-", "-", "-", "-", m.MemberID, dash(m.ClientID), dash(m.Host))
		}
		t.flush()
	})
}

// optOffsetCell renders an optional offset, "-" when absent.
func optOffsetCell(o *int64) string {
	if o == nil {
		return "-"
	}
	return offsetCell(*o)
}
