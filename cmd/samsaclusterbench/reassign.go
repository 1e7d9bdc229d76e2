package main

// Reassignment mode (-reassign, `make bench-reassign`): what issue 8
// ("Cluster III") asks to report, on -nodes (at least 3) processes of
// the binary:
//
//  1. a partition of -reassign-bytes (1 GiB) on broker 1 moves to broker
//     2 unthrottled, then from broker 2 to broker 3 with `samsa cluster
//     reassign --execute --throttle -reassign-throttle` (50 MiB/s); each
//     move is timed from the --execute to ListPartitionReassignments no
//     longer listing it, and --verify then clears the throttle;
//  2. meanwhile a producer (its own client, acks=all, batches of 100
//     records of 1 KiB, one request in flight) writes to a 3-partition
//     topic replicated on every node: its throughput and latency
//     percentiles are reported for -reassign-idle of no move, for each
//     move, and the rate of the throttled move against its throttle.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// loadSample is one produce request of the load generator.
type loadSample struct {
	at      time.Time // when it was acknowledged
	latency time.Duration
	bytes   int
}

// loadGen produces to a topic until stopped, recording every request.
type loadGen struct {
	cl   *kgo.Client
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	samples []loadSample // guarded by mu
	err     error        // first produce error, guarded by mu
}

const (
	loadRecordBytes = 1 << 10
	loadBatch       = 100
)

func startLoadGen(addrs []string, topic string) (*loadGen, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(loadBatch*4))
	if err != nil {
		return nil, err
	}
	g := &loadGen{cl: cl, stop: make(chan struct{}), done: make(chan struct{})}
	value := make([]byte, loadRecordBytes)
	_, _ = rand.Read(value)
	go func() {
		defer close(g.done)
		for {
			select {
			case <-g.stop:
				return
			default:
			}
			rs := make([]*kgo.Record, loadBatch)
			for i := range rs {
				rs[i] = &kgo.Record{Value: value}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			began := time.Now()
			err := g.cl.ProduceSync(ctx, rs...).FirstErr()
			cancel()
			g.mu.Lock()
			if err != nil {
				if g.err == nil {
					g.err = err
				}
			} else {
				now := time.Now()
				g.samples = append(g.samples, loadSample{at: now, latency: now.Sub(began), bytes: loadBatch * loadRecordBytes})
			}
			g.mu.Unlock()
		}
	}()
	return g, nil
}

func (g *loadGen) halt() error {
	close(g.stop)
	<-g.done
	g.cl.Close()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// loadStats are the producer's figures over one phase.
type loadStats struct {
	requests      int
	mibPerSec     float64
	p50, p99, max time.Duration
}

func (g *loadGen) stats(from, to time.Time) loadStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	var lat []time.Duration
	var bytes int
	for _, s := range g.samples {
		if s.at.Before(from) || s.at.After(to) {
			continue
		}
		lat = append(lat, s.latency)
		bytes += s.bytes
	}
	st := loadStats{requests: len(lat)}
	if len(lat) == 0 {
		return st
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	st.mibPerSec = float64(bytes) / to.Sub(from).Seconds() / (1 << 20)
	st.p50, st.p99, st.max = lat[len(lat)/2], lat[min(len(lat)*99/100, len(lat)-1)], lat[len(lat)-1]
	return st
}

// moveResult is one timed move.
type moveResult struct {
	name      string
	throttle  int64 // bytes/s, -1 none
	took      time.Duration
	from, to  time.Time
	load      loadStats
	mibPerSec float64
}

func benchReassign(ctx context.Context, o options, root string, out io.Writer) error {
	if o.nodes < 3 {
		return errors.New("-reassign needs -nodes 3 or more")
	}
	procs, addrs, err := startCluster(o, root)
	defer func() {
		for _, p := range procs {
			p.stop(syscall.SIGTERM, o.timeout)
		}
	}()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("bulk"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.RequestTimeoutOverhead(o.timeout))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(o.timeout / time.Millisecond))
	for deadline := time.Now().Add(o.timeout); ; time.Sleep(100 * time.Millisecond) {
		md, err := adm.BrokerMetadata(ctx)
		if err == nil && len(md.Brokers) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the brokers did not register: %v", err)
		}
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(o.timeout / time.Millisecond)
	bulk := kmsg.NewCreateTopicsRequestTopic()
	bulk.Topic, bulk.NumPartitions, bulk.ReplicationFactor = "bulk", -1, -1
	bulk.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1}}}
	load := kmsg.NewCreateTopicsRequestTopic()
	load.Topic, load.NumPartitions, load.ReplicationFactor = "load", 3, 3
	req.Topics = append(req.Topics, bulk, load)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return fmt.Errorf("create %s: %w", t.Topic, err)
		}
	}

	// Fill bulk-0 (incompressible 64 KiB records).
	fmt.Fprintf(out, "filling bulk-0 with %s ...\n", mib(o.reassignBytes))
	began := time.Now()
	value := make([]byte, 64<<10)
	_, _ = rand.Read(value)
	for sent := int64(0); sent < o.reassignBytes; {
		var rs []*kgo.Record
		for range 64 {
			rs = append(rs, &kgo.Record{Partition: 0, Value: value})
			sent += int64(len(value))
		}
		pctx, cancel := context.WithTimeout(ctx, o.timeout)
		err := cl.ProduceSync(pctx, rs...).FirstErr()
		cancel()
		if err != nil {
			return fmt.Errorf("fill: %w", err)
		}
	}
	fmt.Fprintf(out, "filled in %.1fs (%.0f MiB/s)\n", time.Since(began).Seconds(), float64(o.reassignBytes)/time.Since(began).Seconds()/(1<<20))

	lg, err := startLoadGen(addrs, "load")
	if err != nil {
		return err
	}
	idleFrom := time.Now()
	time.Sleep(o.reassignIdle)
	idleTo := time.Now()
	idle := lg.stats(idleFrom.Add(time.Second), idleTo) // the first second warms the client up

	var moves []moveResult
	for _, m := range []struct {
		name     string
		to       int32
		throttle int64
	}{
		{"1 -> 2 unthrottled", 2, -1},
		{fmt.Sprintf("2 -> 3 at --throttle %s/s", mib(o.reassignThrottle)), 3, o.reassignThrottle},
	} {
		fmt.Fprintf(out, "moving bulk-0 %s ...\n", m.name)
		r, err := timedMove(ctx, o, root, addrs, adm, m.to, m.throttle)
		if err != nil {
			_ = lg.halt()
			return fmt.Errorf("move %s: %w", m.name, err)
		}
		r.name, r.throttle = m.name, m.throttle
		r.load = lg.stats(r.from, r.to)
		r.mibPerSec = float64(o.reassignBytes) / r.took.Seconds() / (1 << 20)
		moves = append(moves, r)
		fmt.Fprintf(out, "  %.1fs (%.1f MiB/s)\n", r.took.Seconds(), r.mibPerSec)
		time.Sleep(2 * time.Second) // let the cluster settle
	}
	if err := lg.halt(); err != nil {
		return fmt.Errorf("load producer: %w", err)
	}

	fmt.Fprintf(out, "\nsamsaclusterbench -reassign %s (%d CPUs, %d nodes; partition of %s; load: acks=all, %d x %d B per request, one in flight, topic of 3 partitions x RF 3)\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), o.nodes, mib(o.reassignBytes), loadBatch, loadRecordBytes)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "phase\ttime s\tmove MiB/s\tvs throttle\tload MiB/s\tload p50 ms\tload p99 ms\tload max ms")
	row := func(name string, took time.Duration, rate, vs string, st loadStats) {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\n", name, strconv.FormatFloat(took.Seconds(), 'f', 1, 64), rate, vs,
			st.mibPerSec, ms(st.p50), ms(st.p99), ms(st.max))
	}
	row("no move", idleTo.Sub(idleFrom), "-", "-", idle)
	for _, m := range moves {
		vs := "-"
		if m.throttle > 0 {
			vs = fmt.Sprintf("%+.1f %%", (m.mibPerSec*(1<<20)/float64(m.throttle)-1)*100)
		}
		row("move "+m.name, m.took, fmt.Sprintf("%.1f", m.mibPerSec), vs, m.load)
	}
	return w.Flush()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(n int64) string {
	if n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

// timedMove moves bulk-0 to broker to with the samsa CLI (--execute,
// with --throttle when throttle >= 0), waits until the move is no longer
// listed, then runs --verify (which clears the throttle).
func timedMove(ctx context.Context, o options, root string, addrs []string, adm *kadm.Client, to int32, throttle int64) (moveResult, error) {
	var r moveResult
	plan := filepath.Join(root, fmt.Sprintf("plan-%d.json", to))
	if err := os.WriteFile(plan, fmt.Appendf(nil, `{"version":1,"partitions":[{"topic":"bulk","partition":0,"replicas":[%d]}]}`, to), 0o644); err != nil {
		return r, err
	}
	cli := func(args ...string) error {
		args = append([]string{"cluster", "reassign", "-X", strings.Join(addrs, ","), "-f", plan}, args...)
		b, err := exec.CommandContext(ctx, o.bin, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("samsa %v: %w\n%s", args, err, b)
		}
		return nil
	}
	args := []string{"--execute"}
	if throttle >= 0 {
		args = append(args, "--throttle", strconv.FormatInt(throttle, 10))
	}
	r.from = time.Now()
	if err := cli(args...); err != nil {
		return r, err
	}
	for deadline := time.Now().Add(o.timeout + time.Duration(o.reassignBytes/max(throttle, 1<<20))*time.Second); ; time.Sleep(20 * time.Millisecond) {
		l, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"bulk": {0: {}}})
		if err == nil && len(l["bulk"]) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("not done after %v (last error %v)", time.Since(r.from), err)
		}
	}
	r.to = time.Now()
	r.took = r.to.Sub(r.from)
	return r, cli("--verify")
}
