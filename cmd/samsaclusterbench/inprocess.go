package main

// In-process mode (-inprocess): the CreateTopics cluster runs as
// server.Start nodes inside this process, so one CPU profile
// (-cpuprofile) covers every node, the active controller included.
// Listeners are bound to 127.0.0.1:0 first so controller.quorum.voters
// can name them. The figures are comparable with each other, not with
// the process mode (three nodes share one Go runtime).

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"samsa/internal/server"
)

// inProcessCluster starts o.nodes combined broker+controller nodes in
// this process under root and returns them with their Kafka addresses.
// The caller closes every returned server.
func inProcessCluster(o options, root string) ([]*server.Server, []string, error) {
	type node struct {
		id    int32
		socks map[string]net.Listener
		plain string
		over  []string
	}
	var nodes []*node
	var voters []string
	closeSocks := func() {
		for _, n := range nodes {
			for _, l := range n.socks {
				l.Close()
			}
		}
	}
	for i := range o.nodes {
		plain, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			closeSocks()
			return nil, nil, err
		}
		ctl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			plain.Close()
			closeSocks()
			return nil, nil, err
		}
		n := &node{id: int32(i + 1), socks: map[string]net.Listener{"PLAINTEXT": plain, "CONTROLLER": ctl}, plain: plain.Addr().String()}
		n.over = []string{
			fmt.Sprintf("node.id=%d", n.id), "process.roles=broker,controller",
			"listeners=PLAINTEXT://" + n.plain + ",CONTROLLER://" + ctl.Addr().String(),
			"inter.broker.listener.name=PLAINTEXT", "controller.listener.names=CONTROLLER",
			"log.dirs=" + filepath.Join(root, fmt.Sprintf("node%d", n.id)), "http.listener=",
		}
		voters = append(voters, fmt.Sprintf("%d@%s", n.id, ctl.Addr()))
		nodes = append(nodes, n)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	servers := make([]*server.Server, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		n.over = append(n.over, "controller.quorum.voters="+strings.Join(voters, ","))
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i], errs[i] = server.Start(context.Background(), server.Options{
				Overrides: n.over, Logger: logger, Listeners: n.socks, StartTimeout: o.timeout,
			})
		}()
	}
	wg.Wait()
	var addrs []string
	var started []*server.Server
	for i, s := range servers {
		if errs[i] != nil {
			for _, s := range started {
				s.Close()
			}
			return nil, nil, fmt.Errorf("node %d: %w", i+1, errs[i])
		}
		started = append(started, s)
		addrs = append(addrs, nodes[i].plain)
	}
	// Registrations reach every node a moment after Start returns.
	time.Sleep(200 * time.Millisecond)
	return started, addrs, nil
}
