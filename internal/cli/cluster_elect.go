package cli

// `samsa cluster elect-leaders`: ElectLeaders (43), as Kafka's
// kafka-leader-election.sh runs it: a preferred or unclean election for
// one topic's partitions, for partitions listed in a JSON file
// ({"partitions": [{"topic": "t", "partition": 0}, ...]}), or for every
// partition of the cluster. It prints one row per partition answered and
// exits non-zero when any partition failed for another reason than
// ELECTION_NOT_NEEDED (which Kafka's tool reports as "valid replica
// already elected", not as a failure).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// defaultElectTimeout is the election's timeout, sent as the request's
// TimeoutMs (Kafka's default for it: 60 s).
const defaultElectTimeout = 60 * time.Second

// electOptions are the flags of `cluster elect-leaders`.
type electOptions struct {
	electionType string
	topic        string
	partitions   []int32
	all          bool
	jsonFile     string
	timeout      time.Duration
}

// electPartition is one partition of a --path-to-json-file (Kafka's
// format).
type electPartition struct {
	Topic     string `json:"topic"`
	Partition *int32 `json:"partition"`
}

// electResult is the answer for one partition.
type electResult struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Error is the Kafka error name, "" when the leader was elected.
	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
}

// electReport is what `cluster elect-leaders` shows.
type electReport struct {
	ElectionType string        `json:"election_type"`
	Results      []electResult `json:"results"`
	Elected      int           `json:"elected"`
	NotNeeded    int           `json:"not_needed"`
	Failed       int           `json:"failed"`
}

func newClusterElectCommand(g *globals) *cobra.Command {
	o := electOptions{electionType: "preferred", timeout: defaultElectTimeout}
	cmd := &cobra.Command{
		Use:   "elect-leaders",
		Short: "Elect the preferred (or, unclean, any live) replica as partition leader",
		Long: `Run leader elections through ElectLeaders, as kafka-leader-election.sh does.

--election-type preferred (the default) makes each partition's preferred
replica (the first of its replica list) the leader, if it is alive and in
the ISR. --election-type unclean elects a leader for partitions that have
none, from live replicas outside the ISR if no ISR member is alive: records
the new leader never had are lost.

Choose the partitions with exactly one of:
  --topic T [--partition N ...]  partitions N of T (every partition of T
                                 without --partition)
  --path-to-json-file FILE       {"partitions": [{"topic": "T", "partition": N}, ...]}
  --all-topic-partitions         every partition of the cluster; only those
                                 that needed an election are listed

Each partition's result is ELECTED, or the Kafka error: ELECTION_NOT_NEEDED
(the preferred replica already leads; for unclean, the partition has a
leader), PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE,
UNKNOWN_TOPIC_OR_PARTITION. The command exits non-zero when a partition
failed for any other reason than ELECTION_NOT_NEEDED.`,
		Example: `  samsa cluster elect-leaders --topic orders --partition 0 --partition 3
  samsa cluster elect-leaders --all-topic-partitions
  samsa cluster elect-leaders --election-type unclean --topic orders --partition 2
  samsa cluster elect-leaders --path-to-json-file elect.json --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			typ, err := parseElectionType(o.electionType)
			if err != nil {
				return err
			}
			sources := 0
			for _, set := range []bool{o.topic != "", o.all, o.jsonFile != ""} {
				if set {
					sources++
				}
			}
			if sources != 1 {
				return errors.New("give exactly one of --topic, --all-topic-partitions and --path-to-json-file")
			}
			if len(o.partitions) > 0 && o.topic == "" {
				return errors.New("--partition needs --topic")
			}
			var fromFile map[string][]int32
			if o.jsonFile != "" {
				if fromFile, err = readElectFile(o.jsonFile); err != nil {
					return err
				}
			}
			// The request's own timeout plus time to find the
			// controller and answer.
			return g.runClusterAdmin(cmd, o.timeout+15*time.Second, func(ctx context.Context, cl *kgo.Client, adm *kadm.Client) error {
				req := kmsg.NewPtrElectLeadersRequest()
				req.ElectionType = typ
				req.TimeoutMillis = int32(min(o.timeout.Milliseconds(), 1<<31-1))
				switch {
				case o.topic != "":
					parts := o.partitions
					if len(parts) == 0 {
						if parts, err = topicPartitions(ctx, adm, o.topic); err != nil {
							return err
						}
					}
					rt := kmsg.NewElectLeadersRequestTopic()
					rt.Topic, rt.Partitions = o.topic, parts
					req.Topics = append(req.Topics, rt)
				case fromFile != nil:
					for _, name := range slices.Sorted(maps.Keys(fromFile)) {
						rt := kmsg.NewElectLeadersRequestTopic()
						rt.Topic, rt.Partitions = name, fromFile[name]
						req.Topics = append(req.Topics, rt)
					}
				}
				resp, err := req.RequestWith(ctx, cl)
				if err != nil {
					return fmt.Errorf("elect leaders: %w", err)
				}
				rep := electReportFrom(o.electionType, resp)
				if resp.ErrorCode != 0 && len(rep.Results) == 0 {
					return fmt.Errorf("elect leaders: %w", kerr.ErrorForCode(resp.ErrorCode))
				}
				if err := printElectReport(out(cmd), g, rep); err != nil {
					return err
				}
				if rep.Failed > 0 {
					return errReported
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.electionType, "election-type", o.electionType, "preferred or unclean")
	f.StringVar(&o.topic, "topic", "", "topic whose partitions to elect")
	f.Int32SliceVar(&o.partitions, "partition", nil, "partition of --topic (repeatable; default: all of them)")
	f.BoolVar(&o.all, "all-topic-partitions", false, "elect every partition of the cluster that needs it")
	f.StringVar(&o.jsonFile, "path-to-json-file", "", `JSON file listing partitions: {"partitions": [{"topic": "t", "partition": 0}]}`)
	f.DurationVar(&o.timeout, "timeout", o.timeout, "how long the controller may take (the request's timeout)")
	return cmd
}

// parseElectionType maps --election-type to ElectLeaders' ElectionType
// (Kafka's tool accepts the names in any case).
func parseElectionType(s string) (int8, error) {
	switch strings.ToLower(s) {
	case "preferred":
		return 0, nil
	case "unclean":
		return 1, nil
	}
	return 0, fmt.Errorf("--election-type %q: want preferred or unclean", s)
}

// topicPartitions lists the partitions of topic.
func topicPartitions(ctx context.Context, adm *kadm.Client, topic string) ([]int32, error) {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return nil, err
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		if ok && !errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("topic %q: %w", topic, td.Err)
		}
		return nil, fmt.Errorf("topic %q does not exist", topic)
	}
	var out []int32
	for p := range td.Partitions {
		out = append(out, p)
	}
	slices.Sort(out)
	return out, nil
}

// readElectFile reads a --path-to-json-file: topic -> partitions. A
// partition listed twice is refused, as Kafka's tool refuses it.
func readElectFile(path string) (map[string][]int32, error) {
	b, err := readDoc(path)
	if err != nil {
		return nil, err
	}
	return parseElectFile(b)
}

// parseElectFile parses the JSON of a --path-to-json-file.
func parseElectFile(b []byte) (map[string][]int32, error) {
	var doc struct {
		Partitions []electPartition `json:"partitions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("partitions file: %w", err)
	}
	if len(doc.Partitions) == 0 {
		return nil, errors.New(`partitions file: no partitions (want {"partitions": [{"topic": "t", "partition": 0}, ...]})`)
	}
	out := map[string][]int32{}
	for _, p := range doc.Partitions {
		if p.Topic == "" || p.Partition == nil {
			return nil, errors.New(`partitions file: every entry needs "topic" and "partition"`)
		}
		if slices.Contains(out[p.Topic], *p.Partition) {
			return nil, fmt.Errorf("partitions file: %s-%d is listed more than once", p.Topic, *p.Partition)
		}
		out[p.Topic] = append(out[p.Topic], *p.Partition)
	}
	return out, nil
}

// electReportFrom turns the answer into a report, sorted by topic and
// partition.
func electReportFrom(typ string, resp *kmsg.ElectLeadersResponse) electReport {
	rep := electReport{ElectionType: strings.ToLower(typ), Results: []electResult{}}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			r := electResult{Topic: rt.Topic, Partition: rp.Partition}
			switch {
			case rp.ErrorCode == 0:
				rep.Elected++
			case rp.ErrorCode == kerr.ElectionNotNeeded.Code:
				rep.NotNeeded++
			default:
				rep.Failed++
			}
			if rp.ErrorCode != 0 {
				r.Error = errName(rp.ErrorCode)
				if rp.ErrorMessage != nil {
					r.Message = *rp.ErrorMessage
				}
			}
			rep.Results = append(rep.Results, r)
		}
	}
	slices.SortFunc(rep.Results, func(a, b electResult) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition) - int(b.Partition)
	})
	return rep
}

// errName is the Kafka name of an error code.
func errName(code int16) string {
	var ke *kerr.Error
	if err := kerr.ErrorForCode(code); errors.As(err, &ke) {
		return ke.Message
	} else if err != nil {
		return err.Error()
	}
	return ""
}

func printElectReport(w io.Writer, g *globals, rep electReport) error {
	if g.json() {
		return writeJSON(w, rep)
	}
	if len(rep.Results) > 0 {
		tb := newTable(w, "TOPIC", "PARTITION", "RESULT", "MESSAGE")
		for _, r := range rep.Results {
			res := r.Error
			if res == "" {
				res = "ELECTED"
			}
			tb.row(r.Topic, r.Partition, res, r.Message)
		}
		tb.flush()
	}
	fmt.Fprintf(w, "%s election: %d elected, %d not needed, %d failed\n", rep.ElectionType, rep.Elected, rep.NotNeeded, rep.Failed)
	return nil
}
