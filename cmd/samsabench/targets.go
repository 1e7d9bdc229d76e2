package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"samsa/internal/server"
)

// The targets run each in a process of its own by default, as brokers do:
// the clients' heap, kfake's in-memory log and Samsa's runtime do not
// share one garbage collector, and what one target leaves behind (kfake's
// records, Samsa's dirty pages) weighs on the other only through the
// machine, not through the other's heap. The process is this binary
// again, started with --serve; it prints "addr HOST:PORT" and serves
// until its standard input closes. --in-process keeps both in the bench's
// own process (needed for --cpuprofile to see the brokers).

// startTarget starts target name and returns its Kafka address (comma
// separated for a cluster) and a function that stops it. dir is the
// target's data directory.
func startTarget(ctx context.Context, name, dir string, inProcess bool) (addr string, stop func(), err error) {
	if name == "samsa3" {
		return startCluster(ctx, dir, inProcess)
	}
	if inProcess {
		return serveTarget(ctx, name, dir)
	}
	return startProcess(ctx, name, dir)
}

// clusterNodes is the size of the samsa3 target.
const clusterNodes = 3

// startCluster starts the samsa3 target: three combined broker and
// controller nodes (KRaft keys, as a Kafka cluster is configured), each
// in its own process unless inProcess, with RF 3 defaults and
// min.insync.replicas=2. Their ports are reserved by binding 127.0.0.1:0
// and closing, then handed to the nodes, which all need every
// controller's address before any starts.
func startCluster(ctx context.Context, dir string, inProcess bool) (string, func(), error) {
	var kafka, ctl []string
	// Every reserving listener stays open until all are bound: one
	// closed at once could hand its port to the next (a node's Kafka
	// and controller listeners then got the same port). They are closed
	// before the nodes start, which bind the ports.
	var held []net.Listener
	release := func() {
		for _, l := range held {
			l.Close()
		}
	}
	for range 2 * clusterNodes {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			release()
			return "", nil, err
		}
		held = append(held, l)
		a := l.Addr().String()
		if len(kafka) < clusterNodes {
			kafka = append(kafka, a)
		} else {
			ctl = append(ctl, a)
		}
	}
	release()
	type started struct {
		addr string
		stop func()
		err  error
	}
	results := make(chan started, clusterNodes)
	for i := range clusterNodes {
		spec := fmt.Sprintf("%s%d/%s/%s", nodePrefix, i+1, strings.Join(kafka, ","), strings.Join(ctl, ","))
		nodeDir := filepath.Join(dir, fmt.Sprintf("node%d", i+1))
		go func() {
			var r started
			if inProcess {
				r.addr, r.stop, r.err = serveTarget(ctx, spec, nodeDir)
			} else {
				r.addr, r.stop, r.err = startProcess(ctx, spec, nodeDir)
			}
			results <- r
		}()
	}
	var stops []func()
	// The nodes stop together: one left alone waits for a quorum.
	stopAll := func() {
		var wg sync.WaitGroup
		for _, s := range stops {
			wg.Add(1)
			go func() { defer wg.Done(); s() }()
		}
		wg.Wait()
	}
	var firstErr error
	for range clusterNodes {
		r := <-results
		if r.err != nil {
			firstErr = cmp.Or(firstErr, r.err)
			continue
		}
		stops = append(stops, r.stop)
	}
	if firstErr != nil {
		stopAll()
		return "", nil, fmt.Errorf("samsa3: %w", firstErr)
	}
	return strings.Join(kafka, ","), stopAll, nil
}

// nodePrefix starts the --serve name of one samsa3 node:
// "samsa3-node" ID "/" Kafka addresses "/" controller addresses, the
// addresses comma separated in node id order.
const nodePrefix = "samsa3-node"

// clusterNodeOverrides returns the configuration of the samsa3 node
// described by spec, keeping its data in dir.
func clusterNodeOverrides(spec, dir string) ([]string, error) {
	parts := strings.Split(strings.TrimPrefix(spec, nodePrefix), "/")
	if len(parts) != 3 {
		return nil, fmt.Errorf("bad cluster node spec %q", spec)
	}
	id, err := strconv.Atoi(parts[0])
	kafka, ctl := strings.Split(parts[1], ","), strings.Split(parts[2], ",")
	if err != nil || id < 1 || id > len(kafka) || len(kafka) != len(ctl) {
		return nil, fmt.Errorf("bad cluster node spec %q", spec)
	}
	voters := make([]string, len(ctl))
	for i, a := range ctl {
		voters[i] = fmt.Sprintf("%d@%s", i+1, a)
	}
	return []string{
		fmt.Sprintf("node.id=%d", id), "process.roles=broker,controller",
		"listeners=PLAINTEXT://" + kafka[id-1] + ",CONTROLLER://" + ctl[id-1],
		"inter.broker.listener.name=PLAINTEXT", "controller.listener.names=CONTROLLER",
		"controller.quorum.voters=" + strings.Join(voters, ","),
		"log.dirs=" + dir, "http.listener=", "log.segment.delete.delay.ms=0",
		"default.replication.factor=3", "min.insync.replicas=2",
		"offsets.topic.replication.factor=3", "transaction.state.log.replication.factor=3",
		"transaction.state.log.min.isr=2", "group.initial.rebalance.delay.ms=0",
	}, nil
}

// startProcess starts target name (a --serve name) in a process of its
// own: this binary again.
func startProcess(ctx context.Context, name, dir string) (addr string, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, "--serve", name, "--dir", dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-lines:
		if a, found := strings.CutPrefix(line, "addr "); ok && found {
			return a, stop, nil
		}
		stop()
		return "", nil, fmt.Errorf("%s process: unexpected first line %q", name, line)
	case <-time.After(60 * time.Second):
		stop()
		return "", nil, fmt.Errorf("%s process: no address within 60s", name)
	case <-ctx.Done():
		stop()
		return "", nil, ctx.Err()
	}
}

// serveTarget starts target name in this process.
func serveTarget(ctx context.Context, name, dir string) (string, func(), error) {
	if strings.HasPrefix(name, nodePrefix) {
		overrides, err := clusterNodeOverrides(name, dir)
		if err != nil {
			return "", nil, err
		}
		s, err := server.Start(ctx, server.Options{
			Overrides: overrides, StartTimeout: 60 * time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			return "", nil, fmt.Errorf("start samsa node: %w", err)
		}
		return s.KafkaAddr(), func() { s.Close() }, nil
	}
	switch name {
	case "samsa":
		s, err := server.Start(ctx, server.Options{
			Overrides: []string{
				"listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
				"log.dirs=" + dir, "http.listener=", "log.segment.delete.delay.ms=0",
			},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			return "", nil, fmt.Errorf("start samsa: %w", err)
		}
		return s.KafkaAddr(), func() { s.Close() }, nil
	case "samsa3":
		return "", nil, fmt.Errorf("samsa3 is started by startCluster, one node per --serve")
	case "kfake":
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return "", nil, fmt.Errorf("start kfake: %w", err)
		}
		return c.ListenAddrs()[0], c.Close, nil
	}
	return "", nil, fmt.Errorf("unknown target %q: want samsa or kfake", name)
}

// serveMain is the --serve process: it serves target until standard
// input closes (the bench ended or died) or a signal arrives.
func serveMain(target, dir string) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	// The replica fetchers log through slog.Default, not through the
	// server's Logger: keep their transient warnings (a partition not yet
	// created on its leader) out of the bench's output.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	addr, stop, err := serveTarget(ctx, target, dir)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Printf("addr %s\n", addr)
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return nil
}
