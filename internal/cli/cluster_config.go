package cli

// `samsa cluster config get|set|delete`: dynamic broker configs (KIP-226)
// with kafka-configs.sh's semantics (--entity-type brokers, --entity-name
// N or --entity-default), through kadm: DescribeConfigs and
// IncrementalAlterConfigs on BROKER resources. --broker N is broker N's
// own level (DYNAMIC_BROKER_CONFIG), --broker-defaults the cluster-wide
// default (DYNAMIC_DEFAULT_BROKER_CONFIG, resource ""). kadm sends a
// broker's resource to that broker, as Kafka requires for DescribeConfigs.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// brokerConfigView is one BROKER resource as `cluster config get` shows
// it.
type brokerConfigView struct {
	// Resource is "" for the cluster-wide default, else the broker id.
	Resource string              `json:"resource"`
	Configs  []brokerConfigEntry `json:"configs"`
	Error    string              `json:"error,omitempty"`
}

type brokerConfigEntry struct {
	Key       string          `json:"key"`
	Value     *string         `json:"value"`
	Source    string          `json:"source"`
	Sensitive bool            `json:"sensitive,omitempty"`
	Synonyms  []configSynonym `json:"synonyms,omitempty"`
}

type configSynonym struct {
	Key    string  `json:"key"`
	Value  *string `json:"value"`
	Source string  `json:"source"`
}

// brokerConfigTarget is the --broker / --broker-defaults choice.
type brokerConfigTarget struct {
	broker   int32
	defaults bool
}

func (t *brokerConfigTarget) flags(cmd *cobra.Command) {
	cmd.Flags().Int32Var(&t.broker, "broker", -1, "the broker's own configs (DYNAMIC_BROKER_CONFIG)")
	cmd.Flags().BoolVar(&t.defaults, "broker-defaults", false, "the cluster-wide defaults of every broker (DYNAMIC_DEFAULT_BROKER_CONFIG)")
}

// resource returns the BROKER resource name, or an error when the flags
// name none or both (required: a change must name its level).
func (t *brokerConfigTarget) resource(required bool) (string, bool, error) {
	switch {
	case t.defaults && t.broker >= 0:
		return "", false, errors.New("give --broker N or --broker-defaults, not both")
	case t.defaults:
		return "", true, nil
	case t.broker >= 0:
		return strconv.Itoa(int(t.broker)), true, nil
	case required:
		return "", false, errors.New("give --broker N (one broker) or --broker-defaults (the cluster-wide default)")
	}
	return "", false, nil
}

func newClusterConfigCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show and change dynamic broker configs (per broker and cluster-wide default)",
		Long: `Dynamic broker configs (Kafka's KIP-226, kafka-configs.sh --entity-type brokers):
stored in the metadata log and applied by every broker while it runs. A key
set for one broker (--broker N) wins over the cluster-wide default
(--broker-defaults), which wins over server.properties, which wins over
Kafka's default. Only the keys Kafka updates dynamically are accepted (the
log.* topic defaults, max.connections*, num.replica.fetchers, the
replication throttle rates); the
others answer "Cannot update these configs dynamically". docs/config.md lists
them.`,
	}
	cmd.AddCommand(newClusterConfigGetCommand(g), newClusterConfigAlterCommand(g, "set"), newClusterConfigAlterCommand(g, "delete"))
	return cmd
}

func newClusterConfigGetCommand(g *globals) *cobra.Command {
	var target brokerConfigTarget
	var all bool
	cmd := &cobra.Command{
		Use:   "get [KEY...]",
		Short: "Show dynamic broker configs",
		Long: `Show the dynamic configs of one broker (--broker N), of the cluster-wide default
(--broker-defaults), or of the default and every broker (neither flag), as
kafka-configs.sh --describe does: KEY, VALUE and SOURCE (DYNAMIC_BROKER_CONFIG,
DYNAMIC_DEFAULT_BROKER_CONFIG). --all with --broker N lists every config of the
broker with its effective value and source (STATIC_BROKER_CONFIG,
DEFAULT_CONFIG too) and SYNONYMS, the lower levels that also set it. KEY
arguments keep only those keys.`,
		Example: `  samsa cluster config get --broker-defaults
  samsa cluster config get --broker 2 --all log.retention.ms log.segment.bytes
  samsa cluster config get --format json`,
		RunE: func(cmd *cobra.Command, keys []string) error {
			res, named, err := target.resource(false)
			if err != nil {
				return err
			}
			if all && (!named || res == "") {
				return errors.New("--all needs --broker N (the cluster-wide default has only dynamic configs)")
			}
			return g.runAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				var rcs kadm.ResourceConfigs
				switch {
				case named && res == "":
					rcs, err = adm.DescribeBrokerConfigs(ctx)
				case named:
					rcs, err = adm.DescribeBrokerConfigs(ctx, target.broker)
				default:
					var md kadm.Metadata
					if md, err = adm.BrokerMetadata(ctx); err != nil {
						return err
					}
					if rcs, err = adm.DescribeBrokerConfigs(ctx); err != nil {
						break
					}
					var more kadm.ResourceConfigs
					ids := md.Brokers.NodeIDs()
					slices.Sort(ids)
					more, err = adm.DescribeBrokerConfigs(ctx, ids...)
					rcs = append(rcs, more...)
				}
				if err := unlessSharded(err); err != nil {
					return err
				}
				views := brokerConfigViews(rcs, keys, all)
				if err := printBrokerConfigs(out(cmd), g, views, all); err != nil {
					return err
				}
				return reportFailures(views, func(v brokerConfigView) string { return v.Error })
			})
		},
	}
	target.flags(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "list every config of the broker (with --broker N), not only the dynamic ones")
	return cmd
}

// brokerConfigViews turns described resources into views: the dynamic
// entries only unless all, filtered by keys when given, the cluster
// default first and brokers by id.
func brokerConfigViews(rcs kadm.ResourceConfigs, keys []string, all bool) []brokerConfigView {
	views := make([]brokerConfigView, 0, len(rcs))
	for _, rc := range rcs {
		v := brokerConfigView{Resource: rc.Name, Configs: []brokerConfigEntry{}, Error: kafkaError(rc.Err, rc.ErrMessage)}
		for _, c := range rc.Configs {
			dynamic := c.Source == kmsg.ConfigSourceDynamicBrokerConfig || c.Source == kmsg.ConfigSourceDynamicDefaultBrokerConfig
			if (!all && !dynamic) || (len(keys) > 0 && !slices.Contains(keys, c.Key)) {
				continue
			}
			e := brokerConfigEntry{Key: c.Key, Value: c.Value, Source: c.Source.String(), Sensitive: c.Sensitive}
			for _, s := range c.Synonyms {
				if s.Key == c.Key && s.Source == c.Source {
					continue // the entry itself
				}
				e.Synonyms = append(e.Synonyms, configSynonym{Key: s.Key, Value: s.Value, Source: s.Source.String()})
			}
			v.Configs = append(v.Configs, e)
		}
		slices.SortFunc(v.Configs, func(a, b brokerConfigEntry) int { return strings.Compare(a.Key, b.Key) })
		views = append(views, v)
	}
	slices.SortFunc(views, func(a, b brokerConfigView) int {
		if (a.Resource == "") != (b.Resource == "") {
			if a.Resource == "" {
				return -1
			}
			return 1
		}
		x, _ := strconv.Atoi(a.Resource)
		y, _ := strconv.Atoi(b.Resource)
		return x - y
	})
	return views
}

// resourceTitle names a BROKER resource as kafka-configs.sh does.
func resourceTitle(res string) string {
	if res == "" {
		return "Default configs for brokers in the cluster"
	}
	return "Configs for broker " + res
}

func printBrokerConfigs(w io.Writer, g *globals, views []brokerConfigView, all bool) error {
	if g.json() {
		return writeJSON(w, views)
	}
	for i, v := range views {
		if i > 0 {
			fmt.Fprintln(w)
		}
		section(w, resourceTitle(v.Resource))
		if v.Error != "" {
			fmt.Fprintln(w, "error:", v.Error)
			continue
		}
		if len(v.Configs) == 0 {
			fmt.Fprintln(w, "(no dynamic configs)")
			continue
		}
		header := []string{"KEY", "VALUE", "SOURCE"}
		if all {
			header = append(header, "SYNONYMS")
		}
		t := newTable(w, header...)
		for _, c := range v.Configs {
			val := "(null)"
			if c.Sensitive {
				val = "(sensitive)"
			} else if c.Value != nil {
				val = *c.Value
			}
			cells := []any{c.Key, val, c.Source}
			if all {
				var syn []string
				for _, s := range c.Synonyms {
					sv := "(null)"
					if s.Value != nil {
						sv = *s.Value
					}
					syn = append(syn, s.Source+":"+s.Key+"="+sv)
				}
				cells = append(cells, strings.Join(syn, " "))
			}
			t.row(cells...)
		}
		t.flush()
	}
	return nil
}

// brokerAlterResult is the outcome of `cluster config set|delete`.
type brokerAlterResult struct {
	Resource string `json:"resource"`
	Error    string `json:"error,omitempty"`
}

func newClusterConfigAlterCommand(g *globals, verb string) *cobra.Command {
	var target brokerConfigTarget
	var dryRun bool
	use, short, example := "set KEY=VALUE...", "Set dynamic broker configs", `  samsa cluster config set --broker-defaults log.retention.ms=86400000 log.segment.bytes=268435456
  samsa cluster config set --broker 2 leader.replication.throttled.rate=10485760 follower.replication.throttled.rate=10485760
  samsa cluster config set --broker 1 max.connections.per.ip=200 --dry-run`
	long := `Set dynamic broker configs of one broker (--broker N) or of the cluster-wide
default (--broker-defaults), like kafka-configs.sh --alter --add-config
(IncrementalAlterConfigs SET). The brokers apply the change at once: the log.*
keys become the default of every topic without an override of its own, and
max.connections* apply to new connections. --dry-run has the controller
validate the change and store nothing. The change is one request: all keys
or none.`
	if verb == "delete" {
		use, short, example = "delete KEY...", "Delete dynamic broker configs (the next level applies again)", `  samsa cluster config delete --broker 2 leader.replication.throttled.rate follower.replication.throttled.rate
  samsa cluster config delete --broker-defaults log.retention.ms`
		long = `Delete dynamic broker configs of one broker (--broker N) or of the cluster-wide
default (--broker-defaults), like kafka-configs.sh --alter --delete-config
(IncrementalAlterConfigs DELETE): the next level applies again (the cluster
default, server.properties, Kafka's default). Deleting a key that is not set
is not an error.`
	}
	cmd := &cobra.Command{
		Use: use, Short: short, Long: long, Example: example,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, _, err := target.resource(true)
			if err != nil {
				return err
			}
			var ops []kadm.AlterConfig
			for _, a := range args {
				if verb == "delete" {
					if strings.Contains(a, "=") {
						return fmt.Errorf("delete %q: give the key only", a)
					}
					ops = append(ops, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: a})
					continue
				}
				k, v, ok := strings.Cut(a, "=")
				if !ok || strings.TrimSpace(k) == "" {
					return fmt.Errorf("set %q: want KEY=VALUE", a)
				}
				ops = append(ops, kadm.AlterConfig{Op: kadm.SetConfig, Name: strings.TrimSpace(k), Value: &v})
			}
			return g.runAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				alter := adm.AlterBrokerConfigs
				if dryRun {
					alter = adm.ValidateAlterBrokerConfigs
				}
				var brokers []int32
				if res != "" {
					brokers = []int32{target.broker}
				}
				rs, err := alter(ctx, ops, brokers...)
				if err := unlessSharded(err); err != nil {
					return err
				}
				r := brokerAlterResult{Resource: res, Error: "missing from the broker's response"}
				for _, x := range rs {
					if x.Name == res {
						r.Error = kafkaError(x.Err, x.ErrMessage)
					}
				}
				w := out(cmd)
				if g.json() {
					if err := writeJSON(w, []brokerAlterResult{r}); err != nil {
						return err
					}
				} else {
					what := "Completed updating " + strings.ToLower(resourceTitle(res)[:1]) + resourceTitle(res)[1:]
					if dryRun {
						what = "Validated the change of " + strings.ToLower(resourceTitle(res)[:1]) + resourceTitle(res)[1:]
					}
					if r.Error != "" {
						fmt.Fprintf(w, "error: %s: %s\n", resourceTitle(res), r.Error)
					} else {
						fmt.Fprintln(w, what+".")
					}
				}
				return reportFailures([]brokerAlterResult{r}, func(r brokerAlterResult) string { return r.Error })
			})
		},
	}
	target.flags(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate the change on the controller without storing it")
	return cmd
}
