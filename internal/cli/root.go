// Package cli is the `samsa` command line: `samsa start` runs a node
// through the function cmd/samsa injects (Deps.RunNode), every other
// command is a Kafka client of a running cluster, built on franz-go's kgo
// and kadm only, so it works the same against Samsa or Apache Kafka. The
// package imports no broker internals (DESIGN.md); `samsa dev cluster`
// runs nodes as child processes of the samsa binary.
//
// Commands follow rpk's noun/verb shape (`samsa topic create`), Kafka's
// column names, and print either aligned text tables or, with
// `--format json`, one JSON document (or one JSON object per record for
// consume). docs/cli.md documents every command.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Environment variables read for flag defaults.
const (
	envBrokers = "SAMSA_BROKERS"
	// envClientMaxVersion pins the Kafka version the client speaks (for
	// example "4.0"); franz-go's kfake needs it (see DESIGN.md §6).
	envClientMaxVersion = "SAMSA_CLIENT_MAX_VERSION"
)

// errReported is returned by a command that already printed why it failed
// (for example a table with a per-topic error column): Execute exits
// non-zero without printing it again.
var errReported = errors.New("cli: failure already reported")

// globals are the persistent flags every client command shares.
type globals struct {
	brokers          []string // seed brokers, host:port
	format           string   // "text" or "json"
	clientMaxVersion string   // "" or a Kafka version such as "4.0"; hidden
}

// NodeOptions is what `samsa start` hands to the node runner.
type NodeOptions struct {
	ConfigFile string       // --config; "" for the built-in defaults
	Overrides  []string     // -o key=value, applied after the file
	Logger     *slog.Logger // the node's log
}

// Deps are the functions the command line cannot have itself without
// importing the broker: cmd/samsa provides them.
type Deps struct {
	// RunNode runs a node until ctx is cancelled (SIGINT, SIGTERM) and
	// returns once it has stopped.
	RunNode func(ctx context.Context, opts NodeOptions) error
}

// Execute runs the samsa command line with os.Args and returns the error
// that made it fail (already printed to stderr).
func Execute(d Deps) error {
	cmd := NewRootCommand(d)
	err := cmd.Execute()
	if err != nil && !errors.Is(err, errReported) {
		fmt.Fprintln(cmd.ErrOrStderr(), "error:", err)
	}
	return err
}

// NewRootCommand builds the whole command tree. Tests build one per run and
// set its arguments and streams.
func NewRootCommand(d Deps) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "samsa",
		Short:         "Samsa: a Kafka-compatible event-streaming broker",
		Long:          "Samsa is a Kafka-compatible event-streaming broker. `samsa start` runs a node;\nthe other commands talk to a running cluster with the Kafka protocol.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	defBrokers := "127.0.0.1:9092"
	if v := os.Getenv(envBrokers); v != "" {
		defBrokers = v
	}
	pf := root.PersistentFlags()
	pf.StringSliceVarP(&g.brokers, "brokers", "X", strings.Split(defBrokers, ","), "seed brokers, comma separated host:port (env "+envBrokers+")")
	pf.StringVar(&g.format, "format", "text", "output format: text or json")
	pf.StringVar(&g.clientMaxVersion, "client-max-version", os.Getenv(envClientMaxVersion), "highest Kafka version the client speaks, e.g. 4.0 (env "+envClientMaxVersion+")")
	_ = pf.MarkHidden("client-max-version")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if g.format != "text" && g.format != "json" {
			return fmt.Errorf("--format %q: want text or json", g.format)
		}
		return nil
	}

	root.AddCommand(
		newStartCommand(d),
		newTopicCommand(g),
		newGroupCommand(g),
		newClusterCommand(g),
		newPerfCommand(g),
		newTxnCommand(g),
		newDevCommand(g),
	)
	return root
}

// clientOpts are the kgo options every client command starts from.
func (g *globals) clientOpts() ([]kgo.Opt, error) {
	var seeds []string
	for _, b := range g.brokers {
		if b = strings.TrimSpace(b); b != "" {
			seeds = append(seeds, b)
		}
	}
	if len(seeds) == 0 {
		return nil, errors.New("no brokers: set -X/--brokers or " + envBrokers)
	}
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...)}
	if g.clientMaxVersion != "" {
		v := kversion.FromString(g.clientMaxVersion)
		if v == nil {
			return nil, fmt.Errorf("--client-max-version %q: unknown Kafka version", g.clientMaxVersion)
		}
		opts = append(opts, kgo.MaxVersions(v))
	}
	return opts, nil
}

// client builds a kgo client with the global options plus extra.
func (g *globals) client(extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := g.clientOpts()
	if err != nil {
		return nil, err
	}
	return kgo.NewClient(append(opts, extra...)...)
}

// admin builds a kadm client; close the returned kgo client when done.
func (g *globals) admin() (*kadm.Client, *kgo.Client, error) {
	cl, err := g.client()
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl, nil
}

// runAdmin runs fn with an admin client of the cluster and the command's
// context, and closes the client afterwards.
func (g *globals) runAdmin(cmd *cobra.Command, fn func(ctx context.Context, adm *kadm.Client) error) error {
	adm, cl, err := g.admin()
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(contextOrBackground(cmd), adm)
}

// reportBrokerErrors prints, for a request kadm sent to every broker,
// the brokers that failed, and says whether any did. It returns err when
// every broker failed or err is not a per-broker error.
func reportBrokerErrors(cmd *cobra.Command, err error) (partial bool, _ error) {
	var se *kadm.ShardErrors
	if errors.As(err, &se) && !se.AllFailed {
		for _, e := range se.Errs {
			fmt.Fprintf(errOut(cmd), "error: broker %d: %v\n", e.Broker.NodeID, e.Err)
		}
		return true, nil
	}
	return false, err
}

// unlessSharded returns err unless it is kadm's per-broker error, whose
// failed items the caller shows in its own rows.
func unlessSharded(err error) error {
	var se *kadm.ShardErrors
	if errors.As(err, &se) {
		return nil
	}
	return err
}

// reportFailures returns errReported when any result has an error text,
// so the process exits non-zero after the table said why.
func reportFailures[T any](rs []T, errText func(T) string) error {
	for _, r := range rs {
		if errText(r) != "" {
			return errReported
		}
	}
	return nil
}

// printEach renders items as one JSON array, or as text blocks (written
// by text) separated by blank lines.
func printEach[T any](w io.Writer, g *globals, items []T, text func(T)) error {
	if g.json() {
		return writeJSON(w, items)
	}
	for i, it := range items {
		if i > 0 {
			fmt.Fprintln(w)
		}
		text(it)
	}
	return nil
}

func (g *globals) json() bool { return g.format == "json" }

// out and errOut are the command's streams (settable by tests).
func out(cmd *cobra.Command) io.Writer    { return cmd.OutOrStdout() }
func errOut(cmd *cobra.Command) io.Writer { return cmd.ErrOrStderr() }
