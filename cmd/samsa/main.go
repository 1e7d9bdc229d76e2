// Command samsa is the Samsa broker and its command-line tool: `samsa start`
// runs a node, the other subcommands (topic, group, cluster, dev, perf) talk
// to a running cluster with the Kafka protocol. See docs/cli.md.
//
// This is the one place that joins the two: internal/cli imports no broker
// internals (DESIGN.md), so the node runner is handed to it from here.
package main

import (
	"context"
	"os"

	"samsa/internal/cli"
	"samsa/internal/server"
)

func main() {
	deps := cli.Deps{RunNode: func(ctx context.Context, o cli.NodeOptions) error {
		return server.Run(ctx, server.Options{ConfigFile: o.ConfigFile, Overrides: o.Overrides, Logger: o.Logger})
	}}
	if err := cli.Execute(deps); err != nil {
		os.Exit(1)
	}
}
