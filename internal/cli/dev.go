package cli

// `samsa dev cluster`: a local multi-node cluster in one command. It writes
// one Kafka-style server.properties per node (Kafka's KRaft keys, exactly
// as Kafka spells them) and runs each node as a child process of this same
// binary (`samsa start --config FILE`), so what runs is what a user would
// run by hand from the files. The CLI stays a client: it imports no broker
// internals, it only starts processes and talks the Kafka protocol to them.
//
// Ports are derived from --base-port B: node i (1-based) listens on
//
//	Kafka (PLAINTEXT)       B + 10*(i-1)
//	controller (CONTROLLER) B + 10*(i-1) + 1
//	HTTP (console, metrics) B + 10*(i-1) + 2
//
// so with the default 19092 node 1 is 19092/19093/19094, node 2
// 19102/19103/19104, node 3 19112/19113/19114 — the ports of the example
// files in config/cluster/. Node i keeps everything under DIR/node<i>:
// server.properties, samsa.log (its stdout and stderr, appended) and data/
// (log.dirs).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Bounds and defaults of `dev cluster`.
const (
	devMaxNodes        = 9
	devDefaultBasePort = 19092
	devDefaultDir      = "./samsa-dev-cluster"
	// devPortStride is the port distance between two nodes.
	devPortStride = 10
	// devLogTailLines is how much of a dead node's log is shown.
	devLogTailLines = 15
	// devLogTailBytes bounds what is read from the end of a log file.
	devLogTailBytes = 16 << 10
)

// devNode is one node of a dev cluster: its derived ports and paths.
type devNode struct {
	ID             int32
	Host           string
	KafkaPort      int
	ControllerPort int
	HTTPPort       int
	Rack           string // "" when no --rack
	Dir            string // DIR/node<i>
	DataDir        string // log.dirs: DIR/node<i>/data
	ConfigFile     string // DIR/node<i>/server.properties
	LogFile        string // DIR/node<i>/samsa.log
}

func (n devNode) kafkaAddr() string { return net.JoinHostPort(n.Host, strconv.Itoa(n.KafkaPort)) }
func (n devNode) controllerAddr() string {
	return net.JoinHostPort(n.Host, strconv.Itoa(n.ControllerPort))
}
func (n devNode) httpAddr() string { return net.JoinHostPort(n.Host, strconv.Itoa(n.HTTPPort)) }

// devNodes derives the nodes of a cluster of count nodes. dir is used as
// given (the command makes it absolute first); racks are assigned round
// robin when not empty.
func devNodes(count, basePort int, host, dir string, racks []string) ([]devNode, error) {
	if count < 1 || count > devMaxNodes {
		return nil, fmt.Errorf("--nodes %d: want 1..%d", count, devMaxNodes)
	}
	if last := basePort + devPortStride*(count-1) + 2; basePort < 1 || last > 65535 {
		return nil, fmt.Errorf("--base-port %d: the ports of %d nodes run to %d; want 1..65535", basePort, count, last)
	}
	for _, r := range racks {
		if r == "" || strings.ContainsAny(r, " \t\r\n=:#!\\") {
			return nil, fmt.Errorf("--rack %q: a rack name is a non-empty word", r)
		}
	}
	nodes := make([]devNode, count)
	for i := range nodes {
		p := basePort + devPortStride*i
		nd := filepath.Join(dir, fmt.Sprintf("node%d", i+1))
		nodes[i] = devNode{
			ID: int32(i + 1), Host: host,
			KafkaPort: p, ControllerPort: p + 1, HTTPPort: p + 2,
			Dir: nd, DataDir: filepath.Join(nd, "data"),
			ConfigFile: filepath.Join(nd, "server.properties"), LogFile: filepath.Join(nd, "samsa.log"),
		}
		if len(racks) > 0 {
			nodes[i].Rack = racks[i%len(racks)]
		}
	}
	return nodes, nil
}

// quorumVoters is controller.quorum.voters of nodes: id@host:port,...
func quorumVoters(nodes []devNode) string {
	vs := make([]string, len(nodes))
	for i, n := range nodes {
		vs[i] = fmt.Sprintf("%d@%s", n.ID, n.controllerAddr())
	}
	return strings.Join(vs, ",")
}

// serverProperties renders node's server.properties for the cluster of
// nodes. The keys are Kafka's (KRaft mode), plus Samsa's http.listener;
// the example files config/cluster/node*.properties are this function's
// output for the default ports (a test keeps them equal).
func serverProperties(node devNode, nodes []devNode) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Samsa node %d of a %d-node local cluster (KRaft mode, Kafka's keys).\n", node.ID, len(nodes))
	w("# Start it with: samsa start --config <this file>. docs/cluster.md explains every key.\n\n")
	w("# The roles this process plays: a broker serves clients, a controller votes in\n")
	w("# the Raft quorum that keeps the cluster metadata. Both here (a combined node).\n")
	w("process.roles=broker,controller\n\n")
	w("# This node's id: unique in the cluster, and the id it has in the voter list below.\n")
	w("node.id=%d\n\n", node.ID)
	w("# Every voter of the metadata quorum as id@host:port of its controller listener.\n")
	w("# All nodes of one cluster carry the same list.\n")
	w("controller.quorum.voters=%s\n\n", quorumVoters(nodes))
	w("# The sockets this node binds: PLAINTEXT for Kafka clients and other brokers,\n")
	w("# CONTROLLER for the Raft quorum and broker registration/heartbeats.\n")
	w("listeners=PLAINTEXT://%s,CONTROLLER://%s\n\n", node.kafkaAddr(), node.controllerAddr())
	w("# What clients are told to connect to (Metadata answers). Only broker listeners.\n")
	w("advertised.listeners=PLAINTEXT://%s\n\n", node.kafkaAddr())
	w("# The listener brokers use to reach each other.\n")
	w("inter.broker.listener.name=PLAINTEXT\n\n")
	w("# Which listeners belong to the controller (not served to clients).\n")
	w("controller.listener.names=CONTROLLER\n\n")
	w("# The security protocol of each listener name (only PLAINTEXT so far).\n")
	w("listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\n")
	if node.Rack != "" {
		w("# The rack (or zone) of this node: new partitions are spread across racks.\n")
		w("broker.rack=%s\n\n", node.Rack)
	}
	w("# Where this node keeps its partition logs and the metadata log.\n")
	w("log.dirs=%s\n\n", node.DataDir)
	rf, isr := min(len(nodes), 3), min(len(nodes), 2)
	w("# Replication: every partition on %d brokers, acks=all needs %d of them.\n", rf, isr)
	w("default.replication.factor=%d\n", rf)
	w("min.insync.replicas=%d\n", isr)
	w("offsets.topic.replication.factor=%d\n", rf)
	w("transaction.state.log.replication.factor=%d\n", rf)
	w("transaction.state.log.min.isr=%d\n\n", isr)
	w("# Samsa's own key: the web console, /metrics and /healthz (empty disables).\n")
	w("http.listener=%s\n", node.httpAddr())
	return b.String()
}

// readProperty returns key's value in a properties file ("" when absent).
func readProperty(path, key string) (string, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v), true, nil
		}
	}
	return "", false, sc.Err()
}

// prepareDevDir writes every node's server.properties. A node directory
// from an earlier run is reused, unless it belongs to another cluster
// shape (other --nodes, --base-port or --host): its data would not match
// the new quorum.
func prepareDevDir(nodes []devNode) error {
	for _, n := range nodes {
		if old, ok, err := readProperty(n.ConfigFile, "controller.quorum.voters"); err == nil && ok {
			if want := quorumVoters(nodes); old != want {
				return fmt.Errorf("%s belongs to a cluster with controller.quorum.voters=%s, not %s: run with the same --nodes, --base-port and --host, or use another --dir", n.Dir, old, want)
			}
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := os.MkdirAll(n.DataDir, 0o755); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		if err := os.WriteFile(n.ConfigFile, []byte(serverProperties(n, nodes)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// checkPortsFree fails when a port a node needs is taken (a cluster from
// an earlier run still up, or anything else).
func checkPortsFree(nodes []devNode) error {
	for _, n := range nodes {
		for _, p := range []struct {
			name string
			port int
		}{{"Kafka", n.KafkaPort}, {"controller", n.ControllerPort}, {"HTTP", n.HTTPPort}} {
			addr := net.JoinHostPort(n.Host, strconv.Itoa(p.port))
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("node %d: %s port %s is not free (%v): stop what holds it or pick another --base-port", n.ID, p.name, addr, err)
			}
			l.Close()
		}
	}
	return nil
}

// devChild is one running node process.
type devChild struct {
	node devNode
	cmd  *exec.Cmd
	// exited is closed once Wait returned; err is its result (written
	// before exited is closed).
	exited chan struct{}
	err    error
	// reported: its unexpected exit was already told to the user. Only
	// the command's goroutine touches it.
	reported bool
}

func (c *devChild) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

type devClusterFlags struct {
	nodes        int
	basePort     int
	host         string
	dir          string
	racks        []string
	logLevel     string
	startTimeout time.Duration
	stopTimeout  time.Duration
	// bin is the samsa binary the nodes run; "" means this executable.
	bin string
}

func newDevCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Development helpers: run a local cluster",
	}
	cmd.AddCommand(newDevClusterCommand(g))
	return cmd
}

func newDevClusterCommand(g *globals) *cobra.Command {
	f := devClusterFlags{}
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Run a local multi-node cluster until Ctrl-C",
		Long: `Run a local cluster of --nodes combined broker+controller nodes, each a child
process running ` + "`samsa start --config DIR/node<i>/server.properties`" + `.

Ports come from --base-port B: node i uses B+10*(i-1) for Kafka clients,
+1 for its controller listener and +2 for the HTTP console and /metrics
(default: node 1 19092/19093/19094, node 2 19102/19103/19104, ...).
Each node keeps its server.properties, its log (samsa.log) and its data
(data/) under DIR/node<i>; running again on the same --dir reuses them.

The command waits until every node's Kafka listener answers, prints the
nodes and the bootstrap string, and runs until Ctrl-C (SIGINT) or SIGTERM,
which stop every node cleanly (SIGTERM, then SIGKILL after --stop-timeout).
A node that dies on its own is reported; the others keep running.`,
		Example: `  samsa dev cluster
  samsa dev cluster --nodes 5 --rack a,b,c
  samsa dev cluster --nodes 1 --base-port 29092 --dir /tmp/one`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDevCluster(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&f.nodes, "nodes", "n", 3, fmt.Sprintf("number of nodes, 1..%d", devMaxNodes))
	fl.IntVar(&f.basePort, "base-port", devDefaultBasePort, "Kafka port of node 1; node i uses base+10*(i-1) (+1 controller, +2 HTTP)")
	fl.StringVar(&f.host, "host", "127.0.0.1", "address every listener binds and advertises")
	fl.StringVar(&f.dir, "dir", devDefaultDir, "directory holding every node's config, log and data")
	fl.StringSliceVar(&f.racks, "rack", nil, "racks assigned round robin (broker.rack), e.g. a,b,c")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level of the nodes: debug, info, warn, error")
	fl.DurationVar(&f.startTimeout, "start-timeout", 60*time.Second, "how long each node may take to answer on its Kafka listener")
	fl.DurationVar(&f.stopTimeout, "stop-timeout", 30*time.Second, "how long a node may take to stop after SIGTERM before SIGKILL")
	fl.StringVar(&f.bin, "samsa-bin", "", "samsa binary the nodes run (default: this executable)")
	_ = fl.MarkHidden("samsa-bin")
	return cmd
}

func runDevCluster(cmd *cobra.Command, g *globals, f devClusterFlags) error {
	if f.startTimeout <= 0 || f.stopTimeout <= 0 {
		return errors.New("--start-timeout and --stop-timeout must be positive")
	}
	switch f.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	if ip := net.ParseIP(f.host); f.host == "" || (ip != nil && ip.IsUnspecified()) {
		return fmt.Errorf("--host %q: the nodes advertise it to clients, so it must be an address they can reach (not a wildcard)", f.host)
	}
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		return err
	}
	nodes, err := devNodes(f.nodes, f.basePort, f.host, dir, f.racks)
	if err != nil {
		return err
	}
	bin := f.bin
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return fmt.Errorf("find the samsa executable: %w", err)
		}
	}
	if err := checkPortsFree(nodes); err != nil {
		return err
	}
	if err := prepareDevDir(nodes); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(contextOrBackground(cmd), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stderr := errOut(cmd)

	exits := make(chan *devChild, len(nodes))
	var children []*devChild
	// Whatever happens below, no child outlives this function.
	defer func() { stopDevChildren(stderr, children, f.stopTimeout) }()
	for _, n := range nodes {
		c, err := startDevChild(bin, n, f.logLevel, exits)
		if err != nil {
			return err
		}
		children = append(children, c)
		fmt.Fprintf(stderr, "started node %d (pid %d), log %s\n", n.ID, c.cmd.Process.Pid, n.LogFile)
	}
	// Every node is started before any is waited for: a node of a
	// multi-voter quorum may need the others before it serves.
	for _, c := range children {
		if err := waitDevNodeReady(ctx, c, f.startTimeout); err != nil {
			if ctx.Err() == nil {
				return err
			}
			break // interrupted while starting: stop below, cleanly
		}
	}
	if ctx.Err() == nil {
		printDevNodes(out(cmd), children)
	}

	// Tell when Metadata lists every broker: the quorum has formed and
	// each node registered. Not fatal: the nodes are up either way.
	formed := make(chan error, 1)
	go func() { formed <- waitDevClusterFormed(ctx, g, nodes, f.startTimeout) }()

	running := len(children)
	for {
		select {
		case err := <-formed:
			formed = nil
			if err == nil {
				fmt.Fprintf(stderr, "cluster formed: Metadata lists all %d brokers\n", len(nodes))
			} else if ctx.Err() == nil {
				fmt.Fprintf(stderr, "warning: %v\n", err)
			}
		case c := <-exits:
			running--
			c.reported = true
			fmt.Fprintf(stderr, "node %d (pid %d) exited unexpectedly: %s; last lines of %s:\n%s",
				c.node.ID, c.cmd.Process.Pid, exitText(c.err), c.node.LogFile, logTail(c.node.LogFile))
			if running == 0 {
				return errors.New("every node has exited")
			}
			fmt.Fprintf(stderr, "%d of %d nodes still running; Ctrl-C stops them\n", running, len(children))
		case <-ctx.Done():
			fmt.Fprintln(stderr, "stopping every node...")
			stop() // a second Ctrl-C kills this process at once
			if bad := stopDevChildren(stderr, children, f.stopTimeout); bad > 0 {
				return fmt.Errorf("%d node(s) did not stop cleanly", bad)
			}
			children = nil
			fmt.Fprintln(stderr, "every node stopped")
			return nil
		}
	}
}

// startDevChild starts node's process; its exit is sent on exits unless
// it was asked to stop.
func startDevChild(bin string, n devNode, logLevel string, exits chan<- *devChild) (*devChild, error) {
	logf, err := os.OpenFile(n.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	fmt.Fprintf(logf, "\n--- samsa dev cluster: starting node %d at %s ---\n", n.ID, time.Now().UTC().Format(time.RFC3339))
	c := &devChild{node: n, exited: make(chan struct{})}
	c.cmd = exec.Command(bin, "start", "--config", n.ConfigFile, "--log-level", logLevel)
	c.cmd.Dir = n.Dir
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.SysProcAttr = devChildAttrs()
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("node %d: start %s: %w", n.ID, bin, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
		exits <- c // buffered for every child
	}()
	return c, nil
}

// waitDevNodeReady polls ApiVersions on the node's Kafka listener until it
// answers, the node exits, or timeout passes.
func waitDevNodeReady(ctx context.Context, c *devChild, timeout time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.node.kafkaAddr()), kgo.RequestRetries(0), kgo.DialTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(timeout)
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := kmsg.NewPtrApiVersionsRequest().RequestWith(actx, cl)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("node %d (pid %d) exited while starting: %s; last lines of %s:\n%s",
				c.node.ID, c.cmd.Process.Pid, exitText(c.err), c.node.LogFile, logTail(c.node.LogFile))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %d: Kafka listener %s did not answer within %v (%v); see %s", c.node.ID, c.node.kafkaAddr(), timeout, err, c.node.LogFile)
		}
	}
}

// waitDevClusterFormed waits until Metadata from the first node lists
// every node as a broker.
func waitDevClusterFormed(ctx context.Context, g *globals, nodes []devNode, timeout time.Duration) error {
	seeds := make([]string, len(nodes))
	for i, n := range nodes {
		seeds[i] = n.kafkaAddr()
	}
	gg := *g
	gg.brokers = seeds
	adm, cl, err := gg.admin()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	seen := 0
	for {
		md, err := adm.BrokerMetadata(ctx)
		if err == nil {
			if seen = len(md.Brokers); seen >= len(nodes) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %v Metadata lists %d of %d brokers; see the nodes' logs", timeout, seen, len(nodes))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func printDevNodes(w io.Writer, children []*devChild) {
	t := newTable(w, "NODE", "KAFKA", "CONTROLLER", "HTTP", "RACK", "PID", "DATA-DIR")
	seeds := make([]string, len(children))
	for i, c := range children {
		n := c.node
		t.row(n.ID, n.kafkaAddr(), n.controllerAddr(), "http://"+n.httpAddr(), n.Rack, c.cmd.Process.Pid, n.DataDir)
		seeds[i] = n.kafkaAddr()
	}
	t.flush()
	fmt.Fprintln(w)
	fmt.Fprintf(w, "bootstrap: %s\n", strings.Join(seeds, ","))
	fmt.Fprintf(w, "try:       samsa -X %s cluster info\n", strings.Join(seeds, ","))
	fmt.Fprintln(w, "Ctrl-C stops every node.")
}

// stopDevChildren sends SIGTERM to every running child, waits up to
// timeout for them all, then SIGKILLs the rest (by PID, each our own
// child). It returns how many did not exit cleanly.
func stopDevChildren(w io.Writer, children []*devChild, timeout time.Duration) int {
	for _, c := range children {
		if c.running() {
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	bad := 0
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, c := range children {
		select {
		case <-c.exited:
		case <-deadline.C:
			// The timer fired once; later children get no more time.
			deadline.Reset(0)
		}
		if c.running() {
			fmt.Fprintf(w, "node %d (pid %d) did not stop within %v of SIGTERM: killing it\n", c.node.ID, c.cmd.Process.Pid, timeout)
			_ = c.cmd.Process.Signal(syscall.SIGKILL)
			<-c.exited
			bad++
			continue
		}
		if c.err != nil && !c.reported {
			fmt.Fprintf(w, "node %d (pid %d) stopped: %s\n", c.node.ID, c.cmd.Process.Pid, exitText(c.err))
			bad++
		}
	}
	return bad
}

// exitText describes a Wait result.
func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// logTail returns the last lines of a node's log file.
func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "  (" + err.Error() + ")\n"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > devLogTailBytes {
		_, _ = f.Seek(-devLogTailBytes, io.SeekEnd)
	}
	data, _ := io.ReadAll(io.LimitReader(f, devLogTailBytes))
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > devLogTailLines {
		lines = lines[len(lines)-devLogTailLines:]
	}
	return "  " + strings.Join(lines, "\n  ") + "\n"
}
