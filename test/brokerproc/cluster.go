package brokerproc

// Multi-node clusters of broker processes. Every node is a combined
// broker+controller started from its own Kafka-style server.properties
// (KRaft keys, as Kafka spells them). controller.quorum.voters must name
// every voter's port before any node starts, so the ports are reserved up
// front: bind 127.0.0.1:0, note the port, close. Another process could
// take such a port before the node binds it; on a test machine that is
// rare, and the node then fails to start with a clear bind error.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// ReservePorts returns n distinct free loopback ports.
func ReservePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	// All are held open together so that no port is returned twice.
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("brokerproc: reserve a port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	// Nodes is the number of nodes (combined broker+controller).
	Nodes int
	// Racks are assigned round robin as broker.rack; none when empty.
	Racks []string
	// Extra are "key=value" lines appended to every node's file.
	Extra []string
	// BrokerOnly more nodes (ids after the combined ones) run
	// process.roles=broker: no controller listener, metadata learners.
	// With them, a test can lose brokers without losing the quorum.
	BrokerOnly int
	// Hosts, when set, gives node i (0-based) its own IP address (one
	// per network namespace): its ports are then 9092 (PLAINTEXT) and
	// 9093 (CONTROLLER) on it, nothing reserved on loopback.
	Hosts []string
	// Wrappers, when set, runs node i under Wrappers[i] (e.g. "ip netns
	// exec NS"), at start and at every Restart; it must exec the binary.
	Wrappers [][]string
}

// Node is one node of a Cluster: its fixed addresses and files, and the
// process currently running it.
type Node struct {
	ID             int32
	KafkaAddr      string // PLAINTEXT, 127.0.0.1:port (fixed across restarts)
	ControllerAddr string // CONTROLLER, 127.0.0.1:port; "" on a broker-only node
	Rack           string
	ConfigFile     string   // server.properties
	Dir            string   // log.dirs
	wrapper        []string // ClusterOptions.Wrappers entry; constant

	mu     sync.Mutex
	broker *Broker // guarded by mu; the latest process
}

// Broker is the node's latest process.
func (n *Node) Broker() *Broker {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.broker
}

// Cluster is a set of node processes forming one cluster.
type Cluster struct {
	Nodes []*Node
}

// NodeProperties renders a node's server.properties: Kafka's KRaft keys
// for a combined node, HTTP on a free port, extra lines last.
func NodeProperties(n *Node, voters string, extra []string) string {
	var b strings.Builder
	if n.ControllerAddr == "" {
		fmt.Fprintf(&b, "process.roles=broker\n")
	} else {
		fmt.Fprintf(&b, "process.roles=broker,controller\n")
	}
	fmt.Fprintf(&b, "node.id=%d\n", n.ID)
	fmt.Fprintf(&b, "controller.quorum.voters=%s\n", voters)
	if n.ControllerAddr == "" {
		fmt.Fprintf(&b, "listeners=PLAINTEXT://%s\n", n.KafkaAddr)
	} else {
		fmt.Fprintf(&b, "listeners=PLAINTEXT://%s,CONTROLLER://%s\n", n.KafkaAddr, n.ControllerAddr)
	}
	fmt.Fprintf(&b, "advertised.listeners=PLAINTEXT://%s\n", n.KafkaAddr)
	fmt.Fprintf(&b, "inter.broker.listener.name=PLAINTEXT\n")
	fmt.Fprintf(&b, "controller.listener.names=CONTROLLER\n")
	fmt.Fprintf(&b, "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n")
	if n.Rack != "" {
		fmt.Fprintf(&b, "broker.rack=%s\n", n.Rack)
	}
	fmt.Fprintf(&b, "log.dirs=%s\n", n.Dir)
	fmt.Fprintf(&b, "http.listener=127.0.0.1:0\n")
	// Internal topics replicated as in the example cluster files: on up
	// to three brokers, two in sync for transactions.
	voterCount := strings.Count(voters, ",") + 1
	rf, isr := min(voterCount, 3), min(voterCount, 2)
	fmt.Fprintf(&b, "offsets.topic.replication.factor=%d\n", rf)
	fmt.Fprintf(&b, "transaction.state.log.replication.factor=%d\n", rf)
	fmt.Fprintf(&b, "transaction.state.log.min.isr=%d\n", isr)
	fmt.Fprintf(&b, "group.initial.rebalance.delay.ms=0\n")
	for _, e := range extra {
		fmt.Fprintln(&b, e)
	}
	return b.String()
}

// StartCluster writes a server.properties per node with reserved ports
// and starts every node. It returns an error (rather than failing) when a
// node exits while starting, so a test of bad configurations can look at
// its output (ExitError); every process is reaped at test cleanup either
// way.
func StartCluster(t testing.TB, opts ClusterOptions) (*Cluster, error) {
	t.Helper()
	if opts.Nodes < 1 {
		return nil, errors.New("brokerproc: StartCluster needs at least one node")
	}
	ports := ReservePorts(t, 2*(opts.Nodes+opts.BrokerOnly))
	c := &Cluster{}
	var voters []string
	for i := range opts.Nodes + opts.BrokerOnly {
		root := t.TempDir()
		n := &Node{
			ID:         int32(i + 1),
			KafkaAddr:  fmt.Sprintf("127.0.0.1:%d", ports[2*i]),
			ConfigFile: filepath.Join(root, "server.properties"),
			Dir:        filepath.Join(root, "data"),
		}
		ctrlAddr := fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])
		if i < len(opts.Hosts) {
			n.KafkaAddr, ctrlAddr = opts.Hosts[i]+":9092", opts.Hosts[i]+":9093"
		}
		if i < len(opts.Wrappers) {
			n.wrapper = opts.Wrappers[i]
		}
		if i < opts.Nodes {
			n.ControllerAddr = ctrlAddr
			voters = append(voters, fmt.Sprintf("%d@%s", n.ID, n.ControllerAddr))
		}
		if len(opts.Racks) > 0 {
			n.Rack = opts.Racks[i%len(opts.Racks)]
		}
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		if err := os.MkdirAll(n.Dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(n.ConfigFile, []byte(NodeProperties(n, strings.Join(voters, ","), opts.Extra)), 0o644); err != nil {
			return nil, err
		}
	}
	files := make([]string, len(c.Nodes))
	wrappers := make([][]string, len(c.Nodes))
	for i, n := range c.Nodes {
		files[i], wrappers[i] = n.ConfigFile, n.wrapper
	}
	bs, err := startConfigs(t, files, wrappers)
	if err != nil {
		return nil, err
	}
	for i, n := range c.Nodes {
		n.broker = bs[i]
		if bs[i].Addr != n.KafkaAddr {
			return nil, fmt.Errorf("brokerproc: node %d bound %s, its file says %s", n.ID, bs[i].Addr, n.KafkaAddr)
		}
	}
	return c, nil
}

// StartConfigs starts one broker per server.properties file, all before
// waiting for any (the nodes of a multi-voter quorum may need each other
// to start), and waits for each to be ready. The working directory of
// each is its file's directory.
func StartConfigs(t testing.TB, files []string) ([]*Broker, error) {
	t.Helper()
	return startConfigs(t, files, nil)
}

// startConfigs is StartConfigs with file i run under wrappers[i] when
// there is one.
func startConfigs(t testing.TB, files []string, wrappers [][]string) ([]*Broker, error) {
	t.Helper()
	type pending struct {
		b     *Broker
		addrc <-chan string
	}
	var ps []pending
	for i, f := range files {
		var w []string
		if i < len(wrappers) {
			w = wrappers[i]
		}
		b, addrc, err := spawn(t, Options{Dir: filepath.Dir(f), ConfigFile: f, Wrapper: w})
		if err != nil {
			return nil, err
		}
		ps = append(ps, pending{b, addrc})
	}
	var out []*Broker
	var errs []error
	for _, p := range ps {
		if err := p.b.waitReady(p.addrc); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p.b)
	}
	if len(errs) > 0 {
		// Stop the others now: with a refused config they would wait for
		// their peers until the test ends.
		for _, b := range out {
			b.Kill()
		}
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Bootstrap is every node's Kafka address.
func (c *Cluster) Bootstrap() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.KafkaAddr
	}
	return out
}

// Node returns the node with id, or nil.
func (c *Cluster) Node(id int32) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Kill SIGKILLs the node's process (a crash) and reaps it.
func (n *Node) Kill() { n.Broker().Kill() }

// Pause SIGSTOPs the node's process; Resume SIGCONTs it. A paused node
// is resumed at test cleanup before it is reaped.
func (n *Node) Pause(t testing.TB) {
	t.Helper()
	b := n.Broker()
	if err := syscall.Kill(b.PID(), syscall.SIGSTOP); err != nil {
		t.Fatalf("brokerproc: SIGSTOP node %d (pid %d): %v", n.ID, b.PID(), err)
	}
	t.Cleanup(func() {
		if b.Running() { // never signal a PID that was reaped (and maybe reused)
			_ = syscall.Kill(b.PID(), syscall.SIGCONT)
		}
	})
}

// Resume SIGCONTs a paused node.
func (n *Node) Resume(t testing.TB) {
	t.Helper()
	b := n.Broker()
	if err := syscall.Kill(b.PID(), syscall.SIGCONT); err != nil {
		t.Fatalf("brokerproc: SIGCONT node %d (pid %d): %v", n.ID, b.PID(), err)
	}
}

// Restart starts the node again from its file (same ports, same data)
// after Kill or Stop, and waits until it is ready.
func (n *Node) Restart(t testing.TB) {
	t.Helper()
	bs, err := startConfigs(t, []string{n.ConfigFile}, [][]string{n.wrapper})
	if err != nil {
		t.Fatalf("brokerproc: restart node %d: %v", n.ID, err)
	}
	n.mu.Lock()
	n.broker = bs[0]
	n.mu.Unlock()
}
