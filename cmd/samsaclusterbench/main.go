// Command samsaclusterbench (`make bench-cluster`) measures what issue 6
// ("Cluster I") asks to report, with real processes of the static binary
// (`CGO_ENABLED=0 go build ./cmd/samsa`, as make build does):
//
//  1. CreateTopics of -topics topics × -partitions partitions on a
//     -nodes cluster (combined broker+controller nodes, each started from
//     its own server.properties as test/brokerproc writes them), sent in
//     requests of -batch topics each (kadm.CreateTopics with that many
//     names, routed by franz-go to the active controller), one after the
//     other; then every node's Metadata is polled until it lists every
//     partition with a leader. A fresh cluster is started for each batch
//     size, so no run inherits another's partitions.
//  2. Start-up of a single node (`samsa start`) whose data directory holds
//     -startup-topics × -partitions partitions, some with records: exec
//     to the Kafka "listener bound" log line and to "samsa started", after
//     a SIGTERM stop (clean) and after kill -9 (recovery runs).
//
// With -reassign (`make bench-reassign`) it measures instead what issue 8
// ("Cluster III") asks: the time to move a 1 GiB partition unthrottled
// and throttled, and a producer's throughput and latency during the
// moves against without them (reassign.go).
//
// Controller failover p50/p99 is measured by `make failover`
// (test/cluster/failover_test.go), not here.
//
// Every child inherits this process's RLIMIT_NOFILE, which is raised to
// -nofile first (soft and hard; raising the hard limit needs root). The
// figure in effect is read back from /proc/PID/limits of a child and
// printed.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/server"
	"samsa/test/brokerproc"
)

// options are the command-line flags.
type options struct {
	nodes         int           // cluster size for the CreateTopics run
	topics        int           // topics created on the cluster
	partitions    int           // partitions per topic (both measurements)
	batches       []int         // topics per CreateTopics request; one cluster run each
	startupTopics int           // topics in the start-up node's data dir; 0 skips it
	produceEvery  int           // produce to partition 0 of every Nth topic before the stops
	records       int           // records per produced partition
	nofile        uint64        // RLIMIT_NOFILE given to every child
	bin           string        // samsa binary; empty: build one
	dir           string        // parent of the temporary directories
	timeout       time.Duration // bound on each wait (a request, a start, Metadata convergence)
	quick         bool          // 10 topics each: a smoke run
	inProcess     bool          // CreateTopics cluster nodes run in this process
	cpuProfile    string        // CPU profile of the CreateTopics runs (-inprocess), file prefix
	// reassign runs the reassignment measurement (reassign.go) instead:
	// a partition of reassignBytes moved unthrottled and at
	// reassignThrottle bytes/s, a producer measured for reassignIdle
	// without a move and during the moves.
	reassign         bool
	reassignBytes    int64
	reassignThrottle int64
	reassignIdle     time.Duration
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("samsaclusterbench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.IntVar(&o.nodes, "nodes", 3, "nodes in the CreateTopics cluster")
	fs.IntVar(&o.topics, "topics", 1000, "topics to create on the cluster")
	fs.IntVar(&o.partitions, "partitions", 10, "partitions per topic")
	batches := fs.String("batch", "100", "topics per CreateTopics request, comma-separated (e.g. 100,1); a fresh cluster for each")
	fs.IntVar(&o.startupTopics, "startup-topics", 1000, "topics (× -partitions) in the start-up node's data dir; 0 skips the start-up measurement")
	fs.IntVar(&o.produceEvery, "produce-every", 10, "before each stop, produce to partition 0 of every Nth topic")
	fs.IntVar(&o.records, "records", 10, "records produced per chosen partition")
	fs.Uint64Var(&o.nofile, "nofile", 65536, "RLIMIT_NOFILE (soft and hard) for every samsa process")
	fs.StringVar(&o.bin, "bin", "", "samsa binary (default: build ./cmd/samsa with CGO_ENABLED=0)")
	fs.StringVar(&o.dir, "dir", "", "parent directory for data dirs (default: $TMPDIR)")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "bound on each wait")
	fs.BoolVar(&o.inProcess, "inprocess", false, "run the CreateTopics cluster's nodes in this process (see -cpuprofile)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "with -inprocess: write a CPU profile of each CreateTopics run to FILE.batchN")
	fs.BoolVar(&o.quick, "quick", false, "10 topics on the cluster and 10 in the start-up node (a smoke run)")
	fs.BoolVar(&o.reassign, "reassign", false, "measure partition reassignment instead (time to move -reassign-bytes unthrottled and throttled, load during it)")
	fs.Int64Var(&o.reassignBytes, "reassign-bytes", 1<<30, "with -reassign: size of the moved partition")
	fs.Int64Var(&o.reassignThrottle, "reassign-throttle", 50<<20, "with -reassign: --throttle of the second move, bytes/s")
	fs.DurationVar(&o.reassignIdle, "reassign-idle", 15*time.Second, "with -reassign: how long the load is measured without a move")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(*batches, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-batch: %q is not a positive number", s)
		}
		o.batches = append(o.batches, n)
	}
	if o.quick {
		o.topics, o.startupTopics = 10, 10
		o.reassignBytes, o.reassignIdle = 64<<20, 3*time.Second
	}
	switch {
	case o.nodes < 1:
		return o, errors.New("-nodes must be at least 1")
	case o.topics < 1 || o.partitions < 1:
		return o, errors.New("-topics and -partitions must be at least 1")
	case o.startupTopics < 0 || o.produceEvery < 1 || o.records < 0:
		return o, errors.New("-startup-topics, -produce-every and -records must not be negative (-produce-every at least 1)")
	case o.cpuProfile != "" && !o.inProcess:
		return o, errors.New("-cpuprofile needs -inprocess (the nodes must run in this process)")
	case o.reassign && (o.reassignBytes < 1<<20 || o.reassignThrottle < 1<<10 || o.reassignIdle < 2*time.Second):
		return o, errors.New("-reassign-bytes must be at least 1 MiB, -reassign-throttle 1 KiB/s, -reassign-idle 2s")
	case o.reassign && o.inProcess:
		return o, errors.New("-reassign runs processes of the binary (no -inprocess)")
	case o.nofile < 256:
		return o, errors.New("-nofile must be at least 256")
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "samsaclusterbench:", err)
		os.Exit(2)
	}
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "samsaclusterbench:", err)
		os.Exit(1)
	}
}

// createResult is one CreateTopics run.
type createResult struct {
	batch    int           // topics per request
	requests int           // requests sent
	create   time.Duration // first request sent to last response
	visible  time.Duration // last response to every node listing every partition with a leader
	fds      []int         // open descriptors per node afterwards
}

// startResult is one start-up of the single node.
type startResult struct {
	after   string        // what preceded it
	bound   time.Duration // exec to the Kafka "listener bound" line
	started time.Duration // exec to "samsa started"
	fds     int           // open descriptors once Metadata listed every partition
}

func run(ctx context.Context, o options, out io.Writer) error {
	tmp, err := os.MkdirTemp(o.dir, "samsaclusterbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	needBin := !o.inProcess || o.startupTopics > 0 || o.reassign
	if needBin && o.bin == "" {
		o.bin = filepath.Join(tmp, "samsa")
		fmt.Fprintln(out, "building samsa (CGO_ENABLED=0) ...")
		build := exec.CommandContext(ctx, "go", "build", "-o", o.bin, "./cmd/samsa")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if err := build.Run(); err != nil {
			return fmt.Errorf("build samsa: %w", err)
		}
	}
	// Each node runs in its own directory: a relative -bin must not break.
	if needBin {
		if o.bin, err = filepath.Abs(o.bin); err != nil {
			return err
		}
	}
	if err := setNoFile(o.nofile); err != nil {
		return fmt.Errorf("raise RLIMIT_NOFILE to %d (needs root above the hard limit): %w", o.nofile, err)
	}
	if o.reassign {
		return benchReassign(ctx, o, filepath.Join(tmp, "reassign"), out)
	}
	var childLimit string
	var creates []createResult
	for i, batch := range o.batches {
		r, lim, err := benchCreate(ctx, o, filepath.Join(tmp, fmt.Sprintf("cluster%d", i)), batch)
		if err != nil {
			return fmt.Errorf("CreateTopics, %d topics per request: %w", batch, err)
		}
		childLimit = lim
		creates = append(creates, r)
		fmt.Fprintf(out, "created %d topics × %d partitions on %d nodes, %d per request: %.2fs (+%.2fs until every node lists them with leaders)\n",
			o.topics, o.partitions, o.nodes, batch, r.create.Seconds(), r.visible.Seconds())
	}
	var starts []startResult
	if o.startupTopics > 0 {
		starts, err = benchStartup(ctx, o, filepath.Join(tmp, "single"))
		if err != nil {
			return fmt.Errorf("start-up: %w", err)
		}
	}

	fmt.Fprintf(out, "\nsamsaclusterbench %s (%d CPUs; RLIMIT_NOFILE of the children: %s)\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), childLimit)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "CreateTopics, %d nodes\ttopics/request\trequests\tcreate s\t+s until all nodes list leaders\tpartitions/s\topen fds per node\n", o.nodes)
	for _, r := range creates {
		fmt.Fprintf(w, "%d × %d\t%d\t%d\t%.2f\t%.2f\t%.0f\t%s\n",
			o.topics, o.partitions, r.batch, r.requests, r.create.Seconds(), r.visible.Seconds(),
			float64(o.topics*o.partitions)/r.create.Seconds(), joinInts(r.fds))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(starts) > 0 {
		fmt.Fprintln(out)
		w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintf(w, "start-up, 1 node, %d partitions\tlistener bound s\tsamsa started s\topen fds once all listed\n", o.startupTopics*o.partitions)
		for _, s := range starts {
			fmt.Fprintf(w, "after %s\t%.2f\t%.2f\t%d\n", s.after, s.bound.Seconds(), s.started.Seconds(), s.fds)
		}
	}
	return w.Flush()
}

// benchCreate starts a cluster, creates the topics in requests of batch
// topics and waits until every node's Metadata lists every partition with
// a leader.
func benchCreate(ctx context.Context, o options, root string, batch int) (createResult, string, error) {
	r := createResult{batch: batch}
	var procs []*proc
	var addrs []string
	var err error
	limit := "this process's"
	if o.inProcess {
		var servers []*server.Server
		servers, addrs, err = inProcessCluster(o, root)
		defer func() {
			for _, s := range servers {
				s.Close()
			}
		}()
	} else {
		procs, addrs, err = startCluster(o, root)
		defer func() {
			for _, p := range procs {
				p.stop(syscall.SIGTERM, o.timeout)
			}
		}()
	}
	if err != nil {
		return r, "", err
	}
	if len(procs) > 0 {
		limit, _ = nofileOf(procs[0].cmd.Process.Pid)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RequestTimeoutOverhead(o.timeout))
	if err != nil {
		return r, limit, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(o.timeout / time.Millisecond))
	names := topicNames("t", o.topics)
	if o.cpuProfile != "" {
		f, err := os.Create(fmt.Sprintf("%s.batch%d", o.cpuProfile, batch))
		if err != nil {
			return r, limit, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return r, limit, err
		}
		defer pprof.StopCPUProfile()
	}
	began := time.Now()
	for i := 0; i < len(names); i += batch {
		part := names[i:min(i+batch, len(names))]
		rctx, cancel := context.WithTimeout(ctx, o.timeout)
		resp, err := adm.CreateTopics(rctx, int32(o.partitions), 1, nil, part...)
		cancel()
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return r, limit, fmt.Errorf("request %d (topics %s..): %w", r.requests+1, part[0], err)
		}
		r.requests++
	}
	r.create = time.Since(began)
	began = time.Now()
	if err := waitLeaders(ctx, o, addrs, "t", o.topics*o.partitions); err != nil {
		return r, limit, err
	}
	r.visible = time.Since(began)
	for _, p := range procs {
		r.fds = append(r.fds, openFDs(p.cmd.Process.Pid))
	}
	return r, limit, nil
}

// startCluster writes one server.properties per node (as test/brokerproc
// does) and starts every node before waiting for any.
func startCluster(o options, root string) ([]*proc, []string, error) {
	ports, err := freePorts(2 * o.nodes)
	if err != nil {
		return nil, nil, err
	}
	var nodes []*brokerproc.Node
	var voters []string
	for i := range o.nodes {
		dir := filepath.Join(root, fmt.Sprintf("node%d", i+1))
		n := &brokerproc.Node{
			ID:             int32(i + 1),
			KafkaAddr:      fmt.Sprintf("127.0.0.1:%d", ports[2*i]),
			ControllerAddr: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]),
			ConfigFile:     filepath.Join(dir, "server.properties"),
			Dir:            filepath.Join(dir, "data"),
		}
		nodes = append(nodes, n)
		voters = append(voters, fmt.Sprintf("%d@%s", n.ID, n.ControllerAddr))
	}
	var procs []*proc
	var addrs []string
	for _, n := range nodes {
		if err := os.MkdirAll(n.Dir, 0o755); err != nil {
			return procs, nil, err
		}
		if err := os.WriteFile(n.ConfigFile, []byte(brokerproc.NodeProperties(n, strings.Join(voters, ","), nil)), 0o644); err != nil {
			return procs, nil, err
		}
		p, err := startProc(o.bin, filepath.Dir(n.ConfigFile), "start", "--config", n.ConfigFile)
		if err != nil {
			return procs, nil, err
		}
		procs = append(procs, p)
		addrs = append(addrs, n.KafkaAddr)
	}
	for i, p := range procs {
		if err := p.waitReady(o.timeout); err != nil {
			return procs, nil, fmt.Errorf("node %d: %w", i+1, err)
		}
	}
	return procs, addrs, nil
}

// waitLeaders polls every node's Metadata (all topics) until it lists want
// partitions of topics named prefix-* with a leader and no error.
func waitLeaders(ctx context.Context, o options, addrs []string, prefix string, want int) error {
	deadline := time.Now().Add(o.timeout)
	for _, addr := range addrs {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			return err
		}
		got := 0
		for {
			got, err = leadersOn(ctx, cl, prefix)
			if err == nil && got == want {
				break
			}
			if time.Now().After(deadline) {
				cl.Close()
				return fmt.Errorf("node %s lists %d of %d partitions with a leader after %v (last error: %v)", addr, got, want, o.timeout, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cl.Close()
	}
	return nil
}

// leadersOn asks the client's seed broker itself (not any broker it
// learned of) for Metadata of every topic.
func leadersOn(ctx context.Context, cl *kgo.Client, prefix string) (int, error) {
	seeds := cl.SeedBrokers()
	if len(seeds) == 0 {
		return 0, errors.New("no seed broker")
	}
	req := kmsg.NewPtrMetadataRequest() // nil Topics: all topics
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := req.RequestWith(rctx, seeds[0])
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range resp.Topics {
		if t.Topic == nil || !strings.HasPrefix(*t.Topic, prefix+"-") || t.ErrorCode != 0 {
			continue
		}
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 && p.Leader >= 0 {
				n++
			}
		}
	}
	return n, nil
}

// benchStartup fills a single node's data dir, then times its start-ups
// after a clean stop and after kill -9.
func benchStartup(ctx context.Context, o options, root string) ([]startResult, error) {
	data := filepath.Join(root, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	args := []string{"start",
		"-o", "listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"-o", "log.dirs=" + data,
		"-o", "http.listener="}
	// Fill: create, produce, SIGTERM.
	p, err := startProc(o.bin, root, args...)
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(o.timeout); err != nil {
		p.stop(syscall.SIGKILL, o.timeout)
		return nil, err
	}
	names := topicNames("s", o.startupTopics)
	if err := fill(ctx, o, p.addr, names, true); err != nil {
		p.stop(syscall.SIGKILL, o.timeout)
		return nil, err
	}
	if err := p.stop(syscall.SIGTERM, o.timeout); err != nil {
		return nil, fmt.Errorf("stop after filling: %w", err)
	}
	var res []startResult
	// after SIGTERM, twice (the second with the page cache warm from the
	// first), then kill -9 with unflushed records, twice.
	stops := []string{"SIGTERM", "SIGTERM", "kill -9", "kill -9"}
	for i, after := range stops {
		p, err := startProc(o.bin, root, args...)
		if err != nil {
			return res, err
		}
		if err := p.waitReady(o.timeout); err != nil {
			p.stop(syscall.SIGKILL, o.timeout)
			return res, fmt.Errorf("start %d (after %s): %w", i+1, after, err)
		}
		sr := startResult{after: after, bound: p.bound, started: p.started}
		if err := waitLeaders(ctx, o, []string{p.addr}, "s", o.startupTopics*o.partitions); err != nil {
			p.stop(syscall.SIGKILL, o.timeout)
			return res, fmt.Errorf("after %s: %w", after, err)
		}
		sr.fds = openFDs(p.cmd.Process.Pid)
		res = append(res, sr)
		if i+1 < len(stops) && stops[i+1] == "kill -9" {
			// Records the kill leaves for recovery to check.
			err := fill(ctx, o, p.addr, names, false)
			p.stop(syscall.SIGKILL, o.timeout)
			if err != nil {
				return res, err
			}
			continue
		}
		if err := p.stop(syscall.SIGTERM, o.timeout); err != nil {
			return res, err
		}
	}
	return res, nil
}

// fill creates the topics (when create is set) in requests of 100, then
// produces o.records records to partition 0 of every o.produceEvery-th one.
func fill(ctx context.Context, o options, addr string, names []string, create bool) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestTimeoutOverhead(o.timeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return err
	}
	defer cl.Close()
	if create {
		adm := kadm.NewClient(cl)
		adm.SetTimeoutMillis(int32(o.timeout / time.Millisecond))
		for i := 0; i < len(names); i += 100 {
			rctx, cancel := context.WithTimeout(ctx, o.timeout)
			resp, err := adm.CreateTopics(rctx, int32(o.partitions), 1, nil, names[i:min(i+100, len(names))]...)
			cancel()
			if err == nil {
				err = resp.Error()
			}
			if err != nil {
				return fmt.Errorf("create: %w", err)
			}
		}
	}
	var recs []*kgo.Record
	for i := 0; i < len(names); i += o.produceEvery {
		for j := range o.records {
			recs = append(recs, &kgo.Record{Topic: names[i], Partition: 0, Value: fmt.Appendf(nil, "record %d of %s", j, names[i])})
		}
	}
	pctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	return cl.ProduceSync(pctx, recs...).FirstErr()
}

func topicNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%05d", prefix, i)
	}
	return out
}

// proc is one samsa process whose stderr is read for its start-up lines.
type proc struct {
	cmd   *exec.Cmd
	began time.Time
	ready chan struct{} // closed when "samsa started" followed the Kafka listener line
	done  chan struct{} // closed once the process has exited and been reaped

	mu      sync.Mutex
	tail    []string      // last lines of output, guarded by mu
	addr    string        // bound PLAINTEXT address (set before ready is closed)
	bound   time.Duration // exec to the PLAINTEXT "listener bound" line
	started time.Duration // exec to "samsa started"
}

func startProc(bin, dir string, args ...string) (*proc, error) {
	p := &proc{ready: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	// A node must not outlive the benchmark (Ctrl-C, a failure): the
	// kernel kills it when this process goes.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p.began = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		ready := false
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.tail = append(p.tail, line)
			if len(p.tail) > 40 {
				p.tail = p.tail[1:]
			}
			if !ready {
				if a, ok := brokerproc.ParseListenerBound(line, "PLAINTEXT"); ok && p.addr == "" {
					p.addr, p.bound = a, time.Since(p.began)
				}
				if p.addr != "" && strings.Contains(line, `msg="samsa started"`) {
					p.started = time.Since(p.began)
					ready = true
					close(p.ready)
				}
			}
			p.mu.Unlock()
		}
		_ = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

func (p *proc) waitReady(timeout time.Duration) error {
	select {
	case <-p.ready:
		return nil
	case <-p.done:
		return fmt.Errorf("samsa exited while starting; output:\n%s", p.output())
	case <-time.After(timeout):
		return fmt.Errorf("samsa not started within %v; output:\n%s", timeout, p.output())
	}
}

// stop signals the process and waits for it to exit; after timeout it is
// killed and an error returned.
func (p *proc) stop(sig syscall.Signal, timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("samsa did not exit within %v of %v", timeout, sig)
	}
}

// freePorts returns n distinct free loopback ports (held open together,
// then closed; another process could take one before a node binds it).
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// setNoFile sets this process's RLIMIT_NOFILE (soft and hard) to n unless
// it is already at least n; children started afterwards inherit it.
func setNoFile(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= n {
		return nil
	}
	want := syscall.Rlimit{Cur: n, Max: max(lim.Max, n)}
	err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
	if err != nil && n > lim.Max {
		// No CAP_SYS_RESOURCE (e.g. root in a container): the hard limit
		// is as far as it goes; the table prints the figure in effect.
		fmt.Fprintf(os.Stderr, "samsaclusterbench: cannot raise RLIMIT_NOFILE to %d (%v); using the hard limit %d\n", n, err, lim.Max)
		lim.Cur = lim.Max
		return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	return err
}

// nofileOf reads "Max open files" (soft/hard) from /proc/PID/limits.
func nofileOf(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return "unknown", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) >= 2 {
				return f[0] + "/" + f[1], nil
			}
		}
	}
	return "unknown", errors.New("no Max open files line")
}

// openFDs counts /proc/PID/fd entries (-1 when unreadable).
func openFDs(pid int) int {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(es)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, "/")
}
