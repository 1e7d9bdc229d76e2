package cli

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// topicDescription is everything `topic describe` shows about one topic.
type topicDescription struct {
	Name              string                 `json:"name"`
	Internal          bool                   `json:"internal"`
	PartitionCount    int                    `json:"partition_count"`
	ReplicationFactor int                    `json:"replication_factor"`
	Configs           []configEntry          `json:"configs"`
	Partitions        []partitionDescription `json:"partitions"`
	Error             string                 `json:"error,omitempty"` // topic-level Kafka error
	ConfigsError      string                 `json:"configs_error,omitempty"`
}

// configEntry is one topic config and where its value comes from
// (DescribeConfigs' source: DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG, ...).
type configEntry struct {
	Key       string  `json:"key"`
	Value     *string `json:"value"` // nil for null or sensitive values
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive,omitempty"`
}

// partitionDescription is one row of the PARTITIONS section.
type partitionDescription struct {
	Partition      int32   `json:"partition"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leader_epoch"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	LogStartOffset int64   `json:"log_start_offset"` // -1 when it could not be listed
	HighWatermark  int64   `json:"high_watermark"`   // -1 when it could not be listed
	Error          string  `json:"error,omitempty"`
}

func newTopicDescribeCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "describe NAME...",
		Aliases: []string{"info"},
		Short:   "Describe topics: summary, configs with sources, partitions with offsets",
		Example: `  samsa topic describe orders
  samsa topic describe orders events --format json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, names []string) error {
			return g.runAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				ds, err := describeTopics(ctx, adm, names)
				if err != nil {
					return err
				}
				if err := printTopicDescriptions(out(cmd), g, ds); err != nil {
					return err
				}
				return reportFailures(ds, func(d topicDescription) string { return d.Error })
			})
		},
	}
}

// describeTopics gathers metadata, configs and offsets for names, in the
// order given.
func describeTopics(ctx context.Context, adm *kadm.Client, names []string) ([]topicDescription, error) {
	md, err := adm.Metadata(ctx, names...)
	if err != nil {
		return nil, err
	}
	// Configs and offsets are best effort: a failure shows up in the
	// output instead of hiding the metadata.
	rcs, cfgErr := adm.DescribeTopicConfigs(ctx, names...)
	starts, startErr := adm.ListStartOffsets(ctx, names...)
	ends, endErr := adm.ListEndOffsets(ctx, names...)

	var ds []topicDescription
	for _, name := range names {
		td, ok := md.Topics[name]
		d := topicDescription{Name: name, Configs: []configEntry{}, Partitions: []partitionDescription{}}
		if !ok {
			d.Error = "missing from the broker's metadata response"
			ds = append(ds, d)
			continue
		}
		if td.Err != nil {
			d.Error = kafkaError(td.Err, "")
			ds = append(ds, d)
			continue
		}
		d.Internal = td.IsInternal
		d.PartitionCount = len(td.Partitions)
		for _, p := range td.Partitions.Sorted() {
			if len(p.Replicas) > d.ReplicationFactor {
				d.ReplicationFactor = len(p.Replicas)
			}
			pd := partitionDescription{
				Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR),
				LogStartOffset: -1, HighWatermark: -1, Error: kafkaError(p.Err, ""),
			}
			if o, ok := starts.Lookup(name, p.Partition); ok && o.Err == nil && startErr == nil {
				pd.LogStartOffset = o.Offset
			}
			if o, ok := ends.Lookup(name, p.Partition); ok && o.Err == nil && endErr == nil {
				pd.HighWatermark = o.Offset
			}
			d.Partitions = append(d.Partitions, pd)
		}
		if cfgErr != nil {
			d.ConfigsError = cfgErr.Error()
		} else if rc, err := rcs.On(name, nil); err != nil {
			d.ConfigsError = kafkaError(err, "")
		} else if rc.Err != nil {
			d.ConfigsError = kafkaError(rc.Err, rc.ErrMessage)
		} else {
			for _, c := range rc.Configs {
				d.Configs = append(d.Configs, configEntry{Key: c.Key, Value: c.Value, Source: c.Source.String(), Sensitive: c.Sensitive})
			}
			sort.Slice(d.Configs, func(i, j int) bool { return d.Configs[i].Key < d.Configs[j].Key })
		}
		ds = append(ds, d)
	}
	return ds, nil
}

func nonNil(ns []int32) []int32 {
	if ns == nil {
		return []int32{}
	}
	return ns
}

// printTopicDescriptions renders descriptions as rpk-style sections (text)
// or a JSON array.
func printTopicDescriptions(w io.Writer, g *globals, ds []topicDescription) error {
	return printEach(w, g, ds, func(d topicDescription) {
		section(w, "SUMMARY")
		t := newTable(w)
		t.row("NAME", d.Name)
		if d.Error != "" {
			t.row("ERROR", d.Error)
			t.flush()
			return
		}
		if d.Internal {
			t.row("INTERNAL", "true")
		}
		t.row("PARTITIONS", d.PartitionCount)
		t.row("REPLICAS", d.ReplicationFactor)
		t.flush()

		fmt.Fprintln(w)
		section(w, "CONFIGS")
		if d.ConfigsError != "" {
			fmt.Fprintf(w, "error: %s\n", d.ConfigsError)
		} else {
			t = newTable(w, "KEY", "VALUE", "SOURCE")
			for _, c := range d.Configs {
				v := ""
				switch {
				case c.Sensitive:
					v = "(sensitive)"
				case c.Value != nil:
					v = *c.Value
				}
				t.row(c.Key, v, c.Source)
			}
			t.flush()
		}

		fmt.Fprintln(w)
		section(w, "PARTITIONS")
		withErr := false
		for _, p := range d.Partitions {
			withErr = withErr || p.Error != ""
		}
		header := []string{"PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START-OFFSET", "HIGH-WATERMARK"}
		if withErr {
			header = append(header, "ERROR")
		}
		t = newTable(w, header...)
		for _, p := range d.Partitions {
			cells := []any{p.Partition, p.Leader, p.LeaderEpoch, int32List(p.Replicas), int32List(p.ISR), offsetCell(p.LogStartOffset), offsetCell(p.HighWatermark)}
			if withErr {
				cells = append(cells, p.Error)
			}
			t.row(cells...)
		}
		t.flush()
	})
}

func offsetCell(o int64) string {
	if o < 0 {
		return "-"
	}
	return fmt.Sprint(o)
}
