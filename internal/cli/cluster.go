package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newClusterCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect the cluster",
	}
	cmd.AddCommand(newClusterInfoCommand(g))
	return cmd
}

// clusterInfo is what `cluster info` shows.
type clusterInfo struct {
	ClusterID  string       `json:"cluster_id"`
	Controller int32        `json:"controller"` // node id; -1 if unknown
	Brokers    []brokerInfo `json:"brokers"`
}

type brokerInfo struct {
	NodeID int32   `json:"node_id"`
	Host   string  `json:"host"`
	Port   int32   `json:"port"`
	Rack   *string `json:"rack"`
}

func newClusterInfoCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "info",
		Aliases: []string{"metadata"},
		Short:   "Show the cluster id, the controller and the brokers",
		Example: `  samsa cluster info
  samsa cluster info -X broker1:9092 --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.runAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				md, err := adm.BrokerMetadata(ctx)
				if err != nil {
					return err
				}
				ci := clusterInfo{ClusterID: md.Cluster, Controller: md.Controller, Brokers: []brokerInfo{}}
				for _, b := range md.Brokers {
					ci.Brokers = append(ci.Brokers, brokerInfo{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
				}
				return printClusterInfo(out(cmd), g, ci)
			})
		},
	}
}

func printClusterInfo(w io.Writer, g *globals, ci clusterInfo) error {
	if g.json() {
		return writeJSON(w, ci)
	}
	section(w, "CLUSTER")
	t := newTable(w)
	t.row("CLUSTER-ID", ci.ClusterID)
	t.row("CONTROLLER", ci.Controller)
	t.flush()
	fmt.Fprintln(w)
	section(w, "BROKERS")
	t = newTable(w, "ID", "HOST", "PORT", "RACK")
	for _, b := range ci.Brokers {
		id := fmt.Sprint(b.NodeID)
		if b.NodeID == ci.Controller {
			id += "*" // rpk marks the controller the same way
		}
		rack := ""
		if b.Rack != nil {
			rack = *b.Rack
		}
		t.row(id, b.Host, b.Port, rack)
	}
	t.flush()
	return nil
}
