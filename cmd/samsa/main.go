// Command samsa is the Samsa broker and its command-line tool: `samsa start`
// runs a node, the other subcommands (topic, cluster, perf) talk to a running
// cluster with the Kafka protocol. See docs/cli.md.
package main

import (
	"os"

	"samsa/internal/cli"
)

func main() {
	if err := cli.Execute(); err != nil {
		os.Exit(1)
	}
}
