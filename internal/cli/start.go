package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func newStartCommand(d Deps) *cobra.Command {
	var (
		configFile string
		overrides  []string
		logLevel   string
	)
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run a Samsa node until SIGINT or SIGTERM",
		Long: `Run a Samsa node. With no flags it is a single development node (broker and
controller): Kafka listener 127.0.0.1:9092, controller listener 127.0.0.1:9093,
data in ./samsa-data, and on http://127.0.0.1:8080 (http.listener; empty
disables it) the read-only web console (cluster, topics, partitions, consumer
groups with lag in records and seconds, a record browser; docs/console.md),
Prometheus /metrics and /healthz.

--config reads a Kafka-style server.properties; -o key=value overrides any key
after the file. Ctrl-C (SIGINT) or SIGTERM stops the node cleanly.`,
		Example: `  samsa start
  samsa start --config server.properties
  samsa start -o log.dirs=/var/lib/samsa -o num.partitions=3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			for _, o := range overrides {
				if !strings.Contains(o, "=") {
					return fmt.Errorf("-o %q: want key=value", o)
				}
			}
			logger := slog.New(slog.NewTextHandler(errOut(cmd), &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(contextOrBackground(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if d.RunNode == nil {
				return errors.New("this samsa build cannot run a node (no node runner)")
			}
			return d.RunNode(ctx, NodeOptions{ConfigFile: configFile, Overrides: overrides, Logger: logger})
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "server.properties file (Kafka keys)")
	f.StringArrayVarP(&overrides, "override", "o", nil, "key=value config override, repeatable; applied after --config")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

// contextOrBackground guards against commands run without a context (cobra
// sets one only through ExecuteContext).
func contextOrBackground(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}
