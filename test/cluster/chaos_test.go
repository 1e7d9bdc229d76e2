package cluster

// The fault checker of issue 7 ("Tests"): idempotent acks=all producers
// on an RF 3 / min.insync.replicas=2 topic while partition leaders are
// killed -9, SIGSTOPped past their broker session (zombies) and cut off
// the network, then a full read that counts lost acknowledged records,
// duplicates and order breaks. A negative control (acks=1, unclean
// leader election) shows the same checker sees loss. docs/testing.md,
// "Fault checker".

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/test/brokerproc"
)

// chaosDefaultFaults is the fault count of `make test`; `make chaos`
// sets SAMSA_CHAOS_FAULTS (100 or more).
const chaosDefaultFaults = 4

// chaosSessionMS is broker.session.timeout.ms of the chaos clusters
// (fastLiveness): a SIGSTOPped leader stays stopped longer than this.
const chaosSessionMS = 4000

// TestChaosNoAckedLoss runs 3 nodes (each in its own network namespace
// when the test may make them, else on loopback) with a 3-partition RF 3,
// min.insync.replicas=2 topic and an idempotent acks=all producer writing
// sequence-numbered records to every partition, and applies
// SAMSA_CHAOS_FAULTS faults in turn to the leader of partition i%3:
//
//   - kill: kill -9, wait until its partitions are served elsewhere,
//     restart;
//   - stop: SIGSTOP until the controller fenced it and its partitions are
//     served elsewhere (past broker.session.timeout.ms), then SIGCONT; at
//     once, an acks=all produce is sent to the zombie for each partition
//     it led: it must not be acknowledged unless it survives;
//   - cut (network namespaces only): its bridge port goes down until its
//     partitions are served elsewhere, then comes back; the same zombie
//     produce follows.
//
// After each fault the ISR must be whole again. Finally everything is
// read (read_uncommitted) and checked: 0 acknowledged records lost, 0
// duplicated, order kept per partition; the counts are printed.
func TestChaosNoAckedLoss(t *testing.T) {
	faults := envRounds(t, "SAMSA_CHAOS_FAULTS", chaosDefaultFaults)
	c, lab, namespaces := startChaosCluster(t)
	kinds := []string{"kill", "stop"}
	if lab != nil {
		kinds = append(kinds, "cut")
	}
	const topic, parts = "chaos", 3
	createTopic(t, c.Nodes[0].KafkaAddr, topic, parts, nil, map[string]string{"min.insync.replicas": "2"})
	waitISR(t, c, topic, 3)

	p := startSeqProducer(t, c.Bootstrap(), topic, parts, true)
	z := &zombieLog{acked: make([]map[string]bool, parts)}
	for i := range z.acked {
		z.acked[i] = map[string]bool{}
	}
	count := map[string]int{}
	t0 := time.Now()
	for f := range faults {
		kind := kinds[f%len(kinds)]
		pr := newProber(t) // one per fault: its error codes are logged per fault
		victim, led := leaderOf(t, c, topic, int32(f%parts))
		start := time.Now()
		var stale map[int32]int32 // partition -> leader epoch elected while the victim was away
		switch kind {
		case "kill":
			victim.Kill()
			d := pr.waitServed(t, c, victim.ID, topic, led, start)
			t.Logf("fault %d: kill -9 of node %d (leader of %v): served elsewhere after %v", f, victim.ID, led, d.Round(time.Millisecond))
			victim.Restart(t)
		case "stop":
			victim.Pause(t)
			d := pr.waitServed(t, c, victim.ID, topic, led, start)
			if rest := chaosSessionMS*time.Millisecond - time.Since(start); rest > 0 {
				time.Sleep(rest) // stopped past its session, whatever the election took
			}
			tm := mustTopicMeta(t, c, victim.ID, topic)
			stale = epochsOf(tm, led)
			victim.Resume(t)
			z.probe(t, f, kind, victim, tm, led)
			t.Logf("fault %d: SIGSTOP of node %d (leader of %v) for %v: served elsewhere after %v", f, victim.ID, led, time.Since(start).Round(time.Millisecond), d.Round(time.Millisecond))
		case "cut":
			i := int(victim.ID)
			lab.cut(t, i)
			d := pr.waitServed(t, c, victim.ID, topic, led, start)
			tm := mustTopicMeta(t, c, victim.ID, topic)
			stale = epochsOf(tm, led)
			z.isolated(t, f, namespaces[i-1], victim, topic, led[0])
			lab.heal(t, i)
			z.probe(t, f, kind, victim, tm, led)
			t.Logf("fault %d: network cut of node %d (leader of %v): served elsewhere after %v", f, victim.ID, led, d.Round(time.Millisecond))
		}
		count[kind]++
		if len(pr.codes) > 0 {
			t.Logf("fault %d: the failover probes met:", f)
			pr.checkCodes(t)
		}
		waitISR(t, c, topic, 3)
		if kind != "kill" {
			zombieCaughtUp(t, c, victim, topic, stale)
		}
	}
	p.stop(t)
	res := verifyChaos(t, c.Bootstrap(), topic, parts, p.ackedSnapshot(), z.snapshot())
	for _, err := range p.errors() {
		t.Errorf("producer error: %v (retriable %v)", err, kerr.IsRetriable(err))
	}
	t.Logf("%d faults (%v) in %v; %s; zombie produces: %s", faults, count, time.Since(t0).Round(time.Second), res, z.summary())
	fmt.Printf("CHAOS faults=%d kill=%d stop=%d cut=%d %s\n", faults, count["kill"], count["stop"], count["cut"], res)
	if res.acked == 0 {
		t.Error("nothing was acknowledged")
	}
	if res.lost != 0 || res.dup != 0 || res.reordered != 0 {
		t.Errorf("checker: %s", res)
	}
}

// TestChaosNegativeControlSeesLoss proves the checker sees loss: on 3
// controllers and 2 broker-only nodes, a topic on brokers 3, 4, 5 with
// unclean.leader.election.enable=true takes acks=1 records. Broker 5 is
// killed, broker 4 SIGSTOPped until it leaves the ISR (fenced), more
// acks=1 records are acknowledged by 3 alone, then 3 is killed -9 and 4
// resumed: the only replica left is out of sync and is elected
// uncleanly. The same checker must count lost acknowledged records.
func TestChaosNegativeControlSeesLoss(t *testing.T) {
	c := startRFCluster(t, 3, 2)
	const topic = "chaos-negative"
	createTopic(t, c.Nodes[0].KafkaAddr, topic, 1, [][]int32{{3, 4, 5}},
		map[string]string{"unclean.leader.election.enable": "true", "min.insync.replicas": "1"})
	waitISR(t, c, topic, 3)
	ask := c.Nodes[0].KafkaAddr
	seeds := []string{c.Node(1).KafkaAddr, c.Node(2).KafkaAddr, c.Node(3).KafkaAddr}

	c.Node(5).Kill()
	waitPartition(t, ask, topic, 0, "ISR [3 4] led by 3", func(p kmsg.MetadataResponseTopicPartition) bool {
		return p.Leader == 3 && len(p.ISR) == 2
	})
	p := startSeqProducer(t, seeds, topic, 1, false)
	p.waitAcked(t, 200)
	c.Node(4).Pause(t)
	waitPartition(t, ask, topic, 0, "ISR [3]", func(p kmsg.MetadataResponseTopicPartition) bool {
		return p.Leader == 3 && slices.Equal(p.ISR, []int32{3})
	})
	p.waitAcked(t, p.ackedCount()+500) // acknowledged by broker 3 alone
	before := uncleanElections(t, c)
	c.Node(3).Kill()
	p.cancel()
	<-p.done
	c.Node(4).Resume(t)
	waitPartition(t, ask, topic, 0, "led by 4", func(p kmsg.MetadataResponseTopicPartition) bool { return p.Leader == 4 })
	after := uncleanElections(t, c)
	res := verifyChaos(t, []string{c.Node(1).KafkaAddr, c.Node(2).KafkaAddr, c.Node(4).KafkaAddr}, topic, 1, p.ackedSnapshot(), nil)
	t.Logf("negative control (acks=1, unclean election of broker 4; unclean elections %v -> %v): %s", before, after, res)
	fmt.Printf("CHAOS-NEGATIVE %s\n", res)
	if res.lost == 0 {
		t.Errorf("the checker saw no loss after an unclean election of a lagging replica: %s", res)
	}
	if after <= before {
		t.Errorf("samsa_controller_unclean_leader_elections_total %v -> %v: no unclean election counted", before, after)
	}
}

// startChaosCluster starts 3 nodes with fast liveness, each in its own
// network namespace when the test may make them (the lab is then
// returned, so the cut fault is possible); without root and with
// SAMSA_REQUIRE_CLIENTS unset, on loopback with no lab.
func startChaosCluster(t *testing.T) (*brokerproc.Cluster, *netLab, []string) {
	t.Helper()
	opts := brokerproc.ClusterOptions{Nodes: 3, Extra: fastLiveness}
	var lab *netLab
	var namespaces []string
	if os.Geteuid() == 0 || os.Getenv("SAMSA_REQUIRE_CLIENTS") == "1" {
		requireNetAdmin(t) // fails with SAMSA_REQUIRE_CLIENTS=1 when not root
		lab = newNetLab(t)
		for range 3 {
			ns, ip := lab.addNode(t)
			opts.Hosts = append(opts.Hosts, ip)
			namespaces = append(namespaces, ns)
			opts.Wrappers = append(opts.Wrappers, []string{"ip", "netns", "exec", ns})
		}
	} else {
		t.Log("not root: no network namespaces, so no cut faults (kill -9 and SIGSTOP only)")
	}
	c, err := brokerproc.StartCluster(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	waitFormed(t, c.Bootstrap(), 3)
	return c, lab, namespaces
}

// mustTopicMeta is topic's metadata from a node other than skip.
func mustTopicMeta(t *testing.T, c *brokerproc.Cluster, skip int32, topic string) *kmsg.MetadataResponseTopic {
	t.Helper()
	var lastErr error
	for _, n := range c.Nodes {
		if n.ID == skip || !n.Broker().Running() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		tm, err := topicMeta(ctx, t, n.KafkaAddr, topic)
		cancel()
		if err == nil {
			return tm
		}
		lastErr = err
	}
	t.Fatalf("metadata of %s: %v", topic, lastErr)
	return nil
}

// epochsOf is the leader epoch of each partition in led.
func epochsOf(tm *kmsg.MetadataResponseTopic, led []int32) map[int32]int32 {
	out := map[int32]int32{}
	for _, p := range tm.Partitions {
		if slices.Contains(led, p.Partition) {
			out[p.Partition] = p.LeaderEpoch
		}
	}
	return out
}

// zombieCaughtUp checks that the fenced old leader, running and
// reachable again, no longer presents itself as leader with the epoch it
// had: its own Metadata shows, for every partition it led, a leader epoch
// at least the one elected while it was away (within 10 s).
func zombieCaughtUp(t *testing.T, c *brokerproc.Cluster, victim *brokerproc.Node, topic string, elected map[int32]int32) {
	t.Helper()
	eventually(t, 10*time.Second, func(ctx context.Context) error {
		tm, err := topicMeta(ctx, t, victim.KafkaAddr, topic)
		if err != nil {
			return err
		}
		for _, p := range tm.Partitions {
			if e, ok := elected[p.Partition]; ok && p.LeaderEpoch < e {
				return fmt.Errorf("node %d still shows %s-%d led by %d at epoch %d; epoch %d was elected while it was away",
					victim.ID, topic, p.Partition, p.Leader, p.LeaderEpoch, e)
			}
		}
		return nil
	})
}

// zombieLog keeps the outcome of the produces sent to a fenced leader
// the moment it runs (or is reachable) again.
type zombieLog struct {
	mu    sync.Mutex
	acked []map[string]bool // per partition: acknowledged zombie values
	codes map[string]int    // "fault kind:outcome" -> times
}

// probe sends one acks=all record, value "z<fault>-<partition>", to the
// old leader for each partition it led, at once; an acknowledged one
// must be in the final read. The answer is waited for at most 3 s.
func (z *zombieLog) probe(t *testing.T, fault int, kind string, victim *brokerproc.Node, tm *kmsg.MetadataResponseTopic, led []int32) {
	t.Helper()
	pr := newProber(t)
	for _, part := range led {
		val := fmt.Sprintf("z%d-%d", fault, part)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := zombieProduce(ctx, pr, victim.KafkaAddr, *tm.Topic, tm.TopicID, part, val)
		cancel()
		z.mu.Lock()
		if z.codes == nil {
			z.codes = map[string]int{}
		}
		out := "acknowledged"
		if err != nil {
			out = err.Error()
			if i := strings.IndexByte(out, ':'); i > 0 {
				out = out[:i]
			}
		} else {
			z.acked[part][val] = true
		}
		z.codes[kind+":"+out]++
		z.mu.Unlock()
	}
}

// isolated runs `samsa topic produce --acks all` inside the cut-off
// leader's namespace, where it is still reachable and still believes it
// leads, with one record (key "zombie", value "zc<fault>-<partition>"),
// bounded to 4 s. The new leader was elected already: an acknowledged
// record must be in the final read, whoever acknowledged it.
func (z *zombieLog) isolated(t *testing.T, fault int, ns string, victim *brokerproc.Node, topic string, part int32) {
	t.Helper()
	bin, err := brokerproc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	val := fmt.Sprintf("zc%d-%d", fault, part)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, bin, "topic", "produce", topic,
		"-X", victim.KafkaAddr, "-p", strconv.Itoa(int(part)), "-k", "zombie", "--acks", "all")
	cmd.Stdin = strings.NewReader(val + "\n")
	out, err := cmd.CombinedOutput()
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.codes == nil {
		z.codes = map[string]int{}
	}
	switch {
	case err == nil:
		z.acked[part][val] = true
		z.codes["isolated:acknowledged"]++
		t.Logf("fault %d: the isolated node %d's produce was acknowledged: %s", fault, victim.ID, strings.TrimSpace(string(out)))
	case ctx.Err() != nil:
		z.codes["isolated:no ack within 4s"]++
	default:
		z.codes["isolated:refused"]++
		t.Logf("fault %d: produce inside the isolated node %d's namespace: %v: %s", fault, victim.ID, err, strings.TrimSpace(string(out)))
	}
}

func (z *zombieLog) snapshot() []map[string]bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	out := make([]map[string]bool, len(z.acked))
	for i, m := range z.acked {
		out[i] = maps(m)
	}
	return out
}

func (z *zombieLog) summary() string {
	z.mu.Lock()
	defer z.mu.Unlock()
	if len(z.codes) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range z.codes {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func maps(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// zombieProduce sends one acks=all record (key "zombie") to addr.
func zombieProduce(ctx context.Context, pr *prober, addr, topic string, topicID [16]byte, partition int32, value string) error {
	code, err := pr.send(ctx, addr, topic, topicID, partition, "zombie", value, 2000)
	if err != nil {
		return fmt.Errorf("no answer: %w", err)
	}
	return kerr.ErrorForCode(code)
}

// seqProducer writes seq values 0, 1, 2, ... to every partition with a
// franz-go producer (idempotent acks=all, or plain acks=1) and records
// which were acknowledged and every error.
type seqProducer struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{} // closed when the producing goroutine returned

	mu    sync.Mutex
	acked []map[int64]bool // guarded by mu; per partition
	errs  []error          // guarded by mu
}

func startSeqProducer(t *testing.T, seeds []string, topic string, parts int32, acksAll bool) *seqProducer {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(2 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond })}
	if acksAll {
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	} else {
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithCancel(context.Background())
	p := &seqProducer{cl: cl, cancel: cancel, done: make(chan struct{})}
	for range parts {
		p.acked = append(p.acked, map[int64]bool{})
	}
	t.Cleanup(func() { cancel(); <-p.done })
	go func() {
		defer close(p.done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for seq := int64(0); ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for part := range parts {
				r := &kgo.Record{Partition: part, Value: []byte(strconv.FormatInt(seq, 10))}
				cl.Produce(ctx, r, func(r *kgo.Record, err error) {
					p.mu.Lock()
					defer p.mu.Unlock()
					if err != nil {
						if !errors.Is(err, context.Canceled) { // still buffered at stop
							p.errs = append(p.errs, err)
						}
						return
					}
					p.acked[r.Partition][seq] = true
				})
			}
		}
	}()
	return p
}

func (p *seqProducer) ackedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, m := range p.acked {
		n += len(m)
	}
	return n
}

// waitAcked waits (30 s at most) until n records are acknowledged.
func (p *seqProducer) waitAcked(t *testing.T, n int) {
	t.Helper()
	eventually(t, 30*time.Second, func(context.Context) error {
		if got := p.ackedCount(); got < n {
			return fmt.Errorf("%d acknowledged, waiting for %d", got, n)
		}
		return nil
	})
}

// stop ends the production and waits (60 s at most) until every buffered
// record is answered.
func (p *seqProducer) stop(t *testing.T) {
	t.Helper()
	p.cancel()
	<-p.done
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func (p *seqProducer) ackedSnapshot() []map[int64]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]map[int64]bool, len(p.acked))
	for i, m := range p.acked {
		out[i] = make(map[int64]bool, len(m))
		for k := range m {
			out[i][k] = true
		}
	}
	return out
}

func (p *seqProducer) errors() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.errs)
}

// chaosResult is what the checker counted.
type chaosResult struct {
	read      int // producer records read back
	acked     int // producer records acknowledged
	lost      int // acknowledged, not read back
	dup       int // read back more than once
	reordered int // read back after a greater seq of the same partition (not a duplicate)
	zombie    int // zombie records read back
	zombieAck int // acknowledged zombie records
	zLost     int // acknowledged zombie records not read back
}

func (r chaosResult) String() string {
	return fmt.Sprintf("read=%d acked=%d lost=%d duplicated=%d reordered=%d zombie_acked=%d zombie_read=%d zombie_acked_lost=%d",
		r.read, r.acked, r.lost, r.dup, r.reordered, r.zombieAck, r.zombie, r.zLost)
}

// verifyChaos reads every partition of topic from its start to its end
// offset (read_uncommitted) and counts against what was acknowledged.
// Records keyed "probe" (the failover prober's) are skipped; "zombie"
// ones are matched against zombieAcked. Acknowledged zombie records that
// are lost count in lost too.
func verifyChaos(t *testing.T, seeds []string, topic string, parts int32, acked []map[int64]bool, zombieAcked []map[string]bool) chaosResult {
	t.Helper()
	adm := kadm.NewClient(nodeClient(t, seeds...))
	var ends kadm.ListedOffsets
	eventually(t, 30*time.Second, func(ctx context.Context) error {
		var err error
		ends, err = adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		return err
	})
	offsets := map[int32]kgo.Offset{}
	for part := range parts {
		offsets[part] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := make([][]int64, parts)
	zseen := make([]map[string]int, parts)
	for i := range zseen {
		zseen[i] = map[string]int{}
	}
	next := map[int32]int64{}
	ctx := ctxFor(t, 120*time.Second)
	for {
		done := true
		for part := range parts {
			end, _ := ends.Lookup(topic, part)
			if next[part] < end.Offset {
				done = false
			}
		}
		if done {
			break
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading back: %v (at %v, ends %v)", ctx.Err(), next, ends)
		}
		fs.EachError(func(_ string, part int32, err error) { t.Logf("fetch %d: %v", part, err) })
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			switch string(r.Key) {
			case "probe":
				return
			case "zombie":
				zseen[r.Partition][string(r.Value)]++
				return
			}
			seq, err := strconv.ParseInt(string(r.Value), 10, 64)
			if err != nil {
				t.Fatalf("%s-%d@%d: value %q", r.Topic, r.Partition, r.Offset, r.Value)
			}
			seen[r.Partition] = append(seen[r.Partition], seq)
		})
	}
	var res chaosResult
	for part := range parts {
		s := seen[part]
		count := make(map[int64]int, len(s))
		var maxSeq int64 = -1
		for i, v := range s {
			count[v]++
			if count[v] > 1 {
				res.dup++
				if res.dup <= 5 {
					t.Logf("partition %d: seq %d again at record %d", part, v, i)
				}
			} else if v < maxSeq {
				res.reordered++
				if res.reordered <= 5 {
					t.Logf("partition %d: seq %d after %d at record %d", part, v, maxSeq, i)
				}
			}
			maxSeq = max(maxSeq, v)
		}
		for seq := range acked[part] {
			if count[seq] == 0 {
				res.lost++
			}
		}
		res.read += len(s)
		res.acked += len(acked[part])
		for _, n := range zseen[part] {
			res.zombie += n
		}
		if int(part) < len(zombieAcked) {
			for v := range zombieAcked[part] {
				res.zombieAck++
				if zseen[part][v] == 0 {
					res.zLost++
					res.lost++
				}
			}
		}
	}
	return res
}
