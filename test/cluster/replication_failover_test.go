package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/interbroker"
	"samsa/internal/record"
	"samsa/test/brokerproc"
)

// Issue 7's failover goals: a partition led by a broker that gets
// SIGTERM is served by a new leader within 1 s (controlled shutdown moves
// it first); after kill -9, within broker.session.timeout.ms (fastLiveness:
// 4 s) + 1 s. The test reports p50/p99 against them and fails only past
// leaderFailoverLimit, a bound on "served again at all".
const (
	sigtermGoal         = time.Second
	kill9Goal           = 4*time.Second + time.Second
	leaderFailoverLimit = 30 * time.Second
)

// TestReplicationFailoverNoAckedLoss runs a 3-node cluster with an RF 3,
// min.insync.replicas=2 topic and an idempotent acks=all producer writing
// continuously, while the leader of partition 0 is stopped with SIGTERM
// and then killed -9, SAMSA_REPLICATION_FAILOVER_ROUNDS times each (2 by
// default; `make failover-replication` runs more), restarted each time.
// Each round measures how long until every partition the victim led is
// served (an acks=all produce succeeds) by a new leader. Afterwards every
// acknowledged record is read back (read_uncommitted) exactly once and in
// order, the producer saw no error, and every error code a raw produce
// met during the failovers is retriable.
func TestReplicationFailoverNoAckedLoss(t *testing.T) {
	rounds := envRounds(t, "SAMSA_REPLICATION_FAILOVER_ROUNDS", 2)
	c := startRFCluster(t, 3, 0)
	const topic, parts = "failover", 3
	createTopic(t, c.Nodes[0].KafkaAddr, topic, parts, nil, map[string]string{"min.insync.replicas": "2"})
	waitISR(t, c, topic, 3)

	p := startSeqProducer(t, c.Bootstrap(), topic, parts, true)
	pr := newProber(t)
	var sigterm, kill9 []time.Duration
	for round := range rounds {
		for _, kill := range []bool{false, true} {
			victim, led := leaderOf(t, c, topic, 0)
			how := "SIGTERM"
			var stopped chan error
			var exited time.Time // when the SIGTERMed process was gone
			t0 := time.Now()
			if kill {
				how = "kill -9"
				victim.Kill()
			} else {
				stopped = make(chan error, 1)
				b := victim.Broker()
				go func() {
					err := b.Stop()
					exited = time.Now()
					stopped <- err
				}()
			}
			d := pr.waitServed(t, c, victim.ID, topic, led, t0)
			if stopped != nil {
				if err := <-stopped; err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				// Controlled shutdown: the controller fences a broker that
				// asked to stop only once it leads nothing.
				if out := victim.Broker().Output(); !strings.Contains(out, `msg="controlled shutdown: fenced by the controller"`) {
					t.Errorf("round %d: node %d stopped without a completed controlled shutdown:\n%s", round, victim.ID, out)
				}
				t.Logf("round %d: node %d exited %v after SIGTERM", round, victim.ID, exited.Sub(t0).Round(time.Millisecond))
			}
			if kill {
				kill9 = append(kill9, d)
			} else {
				sigterm = append(sigterm, d)
			}
			t.Logf("round %d: %s of node %d (leader of partitions %v): served by new leaders after %v (%d acked so far)",
				round, how, victim.ID, led, d.Round(time.Millisecond), p.ackedCount())
			victim.Restart(t)
			waitISR(t, c, topic, 3)
		}
	}
	p.stop(t)
	p.check(t, c.Bootstrap(), topic, parts)
	pr.checkCodes(t)

	report := func(name string, ds []time.Duration, goal time.Duration) {
		p50, p99 := percentile(ds, 50), percentile(ds, 99)
		t.Logf("leader failover after %s over %d rounds: p50 %v, p99 %v, max %v (goal %v)", name, len(ds),
			p50.Round(time.Millisecond), p99.Round(time.Millisecond), percentile(ds, 100).Round(time.Millisecond), goal)
		fmt.Printf("LEADER-FAILOVER %s rounds=%d p50=%v p99=%v goal=%v met=%v\n", name, len(ds),
			p50.Round(time.Millisecond), p99.Round(time.Millisecond), goal, p99 <= goal)
	}
	report("sigterm", sigterm, sigtermGoal)
	report("kill9", kill9, kill9Goal)
}

// TestReplicationUncleanLeaderElection: on 3 controllers and 2
// broker-only nodes (so two brokers can die with the quorum intact), an
// RF 3 partition on brokers 3, 4, 5 loses 4 and 5 (kill -9: its ISR
// shrinks to [3]), then 3 (the ISR stays [3], a dead broker: offline).
// With 4 back, the partition stays offline while
// unclean.leader.election.enable is false (the default); turned true on
// the topic, the controller elects 4 and counts it in
// samsa_controller_unclean_leader_elections_total. kcat -L (librdkafka)
// shows the replicas and ISR, then the ISR without the dead replicas.
func TestReplicationUncleanLeaderElection(t *testing.T) {
	c := startRFCluster(t, 3, 2)
	const topic = "unclean"
	createTopic(t, c.Nodes[0].KafkaAddr, topic, 1, [][]int32{{3, 4, 5}}, nil)
	waitISR(t, c, topic, 3)
	cl := nodeClient(t, c.Nodes[0].KafkaAddr)
	pcl, err := kgo.NewClient(kgo.SeedBrokers(c.Nodes[0].KafkaAddr), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	for i := range 10 {
		if err := pcl.ProduceSync(ctxFor(t, 30*time.Second), &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	kcatShows(t, c.Nodes[0].KafkaAddr, topic, 3, []int32{3, 4, 5}, []int32{3, 4, 5}, 5)

	c.Node(4).Kill()
	c.Node(5).Kill()
	waitPartition(t, c.Nodes[0].KafkaAddr, topic, 0, "ISR [3] led by 3", func(p kmsg.MetadataResponseTopicPartition) bool {
		return p.Leader == 3 && slices.Equal(p.ISR, []int32{3})
	})
	kcatShows(t, c.Nodes[0].KafkaAddr, topic, 3, []int32{3, 4, 5}, []int32{3}, 3)
	md := partitionMeta(t, c.Nodes[1].KafkaAddr, topic, 0)
	if off := slices.Sorted(slices.Values(md.OfflineReplicas)); !slices.Equal(off, []int32{4, 5}) {
		t.Errorf("offline replicas %v, want [4 5]", md.OfflineReplicas)
	}

	c.Node(3).Kill()
	waitPartition(t, c.Nodes[0].KafkaAddr, topic, 0, "offline, ISR [3]", func(p kmsg.MetadataResponseTopicPartition) bool {
		return p.Leader == -1 && slices.Equal(p.ISR, []int32{3})
	})
	c.Node(4).Restart(t)
	eventually(t, 30*time.Second, func(ctx context.Context) error {
		md, err := metadataOf(ctx, t, c.Nodes[0].KafkaAddr)
		if err != nil {
			return err
		}
		if !slices.Contains(brokerIDs(md), 4) {
			return fmt.Errorf("broker 4 not back: %v", brokerIDs(md))
		}
		return nil
	})
	before := uncleanElections(t, c)
	// Broker 4 is active and a replica, but not in the ISR: clean
	// election has no candidate, so the partition stays offline.
	time.Sleep(2 * time.Second)
	if p := partitionMeta(t, c.Nodes[1].KafkaAddr, topic, 0); p.Leader != -1 || !slices.Equal(p.ISR, []int32{3}) {
		t.Fatalf("with unclean.leader.election.enable=false: leader %d ISR %v, want offline with ISR [3]", p.Leader, p.ISR)
	}

	adm := kadm.NewClient(cl)
	rs, err := adm.AlterTopicConfigs(ctxFor(t, 30*time.Second), []kadm.AlterConfig{{Name: "unclean.leader.election.enable", Value: kadm.StringPtr("true")}}, topic)
	if err == nil {
		_, err = rs.On(topic, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	waitPartition(t, c.Nodes[0].KafkaAddr, topic, 0, "led by 4 with ISR [4]", func(p kmsg.MetadataResponseTopicPartition) bool {
		return p.Leader == 4 && slices.Equal(p.ISR, []int32{4})
	})
	eventually(t, 10*time.Second, func(context.Context) error {
		if after := uncleanElections(t, c); after != before+1 {
			return fmt.Errorf("samsa_controller_unclean_leader_elections_total %v, want %v", after, before+1)
		}
		return nil
	})
	// The new leader serves what it had: the acks=all records (it was in
	// the ISR when they were written).
	ends, err := adm.ListEndOffsets(ctxFor(t, 30*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup(topic, 0); o.Err != nil || o.Offset != 10 {
		t.Fatalf("end offset on the unclean leader: %+v", o)
	}
}

// startRFCluster starts combined nodes plus broker-only ones with fast
// liveness and waits until all are registered.
func startRFCluster(t *testing.T, combined, brokerOnly int) *brokerproc.Cluster {
	t.Helper()
	c, err := brokerproc.StartCluster(t, brokerproc.ClusterOptions{Nodes: combined, BrokerOnly: brokerOnly, Extra: fastLiveness})
	if err != nil {
		t.Fatal(err)
	}
	waitFormed(t, c.Bootstrap(), combined+brokerOnly)
	return c
}

// createTopic creates topic with RF 3 (or the explicit assignment).
func createTopic(t *testing.T, addr, topic string, parts int32, assignment [][]int32, configs map[string]string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, parts, 3
	if assignment != nil {
		rt.NumPartitions, rt.ReplicationFactor = -1, -1
		for i, reps := range assignment {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = int32(i), reps
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		}
	}
	for k, v := range configs {
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, cfg)
	}
	req.Topics = append(req.Topics, rt)
	r, err := req.RequestWith(ctxFor(t, 40*time.Second), nodeClient(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(r.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// topicMeta is topic's Metadata from the node at addr.
func topicMeta(ctx context.Context, t *testing.T, addr, topic string) (*kmsg.MetadataResponseTopic, error) {
	md, err := metadataOf(ctx, t, addr, topic)
	if err != nil {
		return nil, err
	}
	if len(md.Topics) != 1 {
		return nil, fmt.Errorf("metadata: %d topics", len(md.Topics))
	}
	if err := kerr.ErrorForCode(md.Topics[0].ErrorCode); err != nil {
		return nil, err
	}
	return &md.Topics[0], nil
}

func partitionMeta(t *testing.T, addr, topic string, partition int32) kmsg.MetadataResponseTopicPartition {
	t.Helper()
	tm, err := topicMeta(ctxFor(t, 10*time.Second), t, addr, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range tm.Partitions {
		if p.Partition == partition {
			return p
		}
	}
	t.Fatalf("%s-%d not in metadata", topic, partition)
	return kmsg.MetadataResponseTopicPartition{}
}

// waitPartition waits until the partition's metadata on addr satisfies ok.
func waitPartition(t *testing.T, addr, topic string, partition int32, what string, ok func(kmsg.MetadataResponseTopicPartition) bool) {
	t.Helper()
	eventually(t, 30*time.Second, func(ctx context.Context) error {
		tm, err := topicMeta(ctx, t, addr, topic)
		if err != nil {
			return err
		}
		for _, p := range tm.Partitions {
			if p.Partition == partition {
				if ok(p) {
					return nil
				}
				return fmt.Errorf("%s-%d: leader %d replicas %v ISR %v offline %v, waiting for %s", topic, partition, p.Leader, p.Replicas, p.ISR, p.OfflineReplicas, what)
			}
		}
		return fmt.Errorf("%s-%d missing", topic, partition)
	})
}

// waitISR waits until every partition of topic has a leader and an ISR
// of n on every running node's metadata.
func waitISR(t *testing.T, c *brokerproc.Cluster, topic string, n int) {
	t.Helper()
	eventually(t, 60*time.Second, func(ctx context.Context) error {
		for _, node := range c.Nodes {
			if !node.Broker().Running() {
				continue
			}
			tm, err := topicMeta(ctx, t, node.KafkaAddr, topic)
			if err != nil {
				return err
			}
			for _, p := range tm.Partitions {
				if p.Leader < 0 || len(p.ISR) != n {
					return fmt.Errorf("node %d: %s-%d leader %d ISR %v", node.ID, topic, p.Partition, p.Leader, p.ISR)
				}
			}
		}
		return nil
	})
}

// leaderOf returns the node leading topic-partition and every partition
// of topic it leads.
func leaderOf(t *testing.T, c *brokerproc.Cluster, topic string, partition int32) (*brokerproc.Node, []int32) {
	t.Helper()
	tm, err := topicMeta(ctxFor(t, 10*time.Second), t, c.Nodes[0].KafkaAddr, topic)
	if err != nil {
		t.Fatal(err)
	}
	var leader int32 = -1
	for _, p := range tm.Partitions {
		if p.Partition == partition {
			leader = p.Leader
		}
	}
	n := c.Node(leader)
	if n == nil {
		t.Fatalf("%s-%d: leader %d", topic, partition, leader)
	}
	var led []int32
	for _, p := range tm.Partitions {
		if p.Leader == leader {
			led = append(led, p.Partition)
		}
	}
	slices.Sort(led)
	return n, led
}

// prober measures failovers with raw requests: Metadata from surviving
// nodes, then an acks=all Produce of one record (key "probe") straight to
// the partition's new leader. It keeps every error code it met.
type prober struct {
	cl    *interbroker.Client
	codes map[int16]int // error code -> times seen
}

func newProber(t *testing.T) *prober {
	cl := interbroker.New(interbroker.Options{DialTimeout: 300 * time.Millisecond, RequestTimeout: 2 * time.Second})
	t.Cleanup(func() { cl.Close() })
	return &prober{cl: cl, codes: map[int16]int{}}
}

// waitServed returns how long after t0 every partition in parts has a
// leader other than victim that takes an acks=all produce.
func (pr *prober) waitServed(t *testing.T, c *brokerproc.Cluster, victim int32, topic string, parts []int32, t0 time.Time) time.Duration {
	t.Helper()
	var survivors []string
	for _, n := range c.Nodes {
		if n.ID != victim {
			survivors = append(survivors, n.KafkaAddr)
		}
	}
	pending := slices.Clone(parts)
	var lastErr error
	for i := 0; len(pending) > 0; i++ {
		if time.Since(t0) > leaderFailoverLimit {
			t.Fatalf("partitions %v of %s not served %v after node %d went: %v", pending, topic, leaderFailoverLimit, victim, lastErr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		pending, lastErr = pr.try(ctx, c, survivors[i%len(survivors)], victim, topic, pending)
		cancel()
		if len(pending) > 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return time.Since(t0)
}

// try probes the pending partitions once and returns those not served.
func (pr *prober) try(ctx context.Context, c *brokerproc.Cluster, via string, victim int32, topic string, pending []int32) ([]int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	r, err := pr.cl.Request(ctx, via, req)
	if err != nil {
		return pending, err
	}
	md := r.(*kmsg.MetadataResponse)
	if len(md.Topics) != 1 {
		return pending, fmt.Errorf("metadata: %d topics", len(md.Topics))
	}
	var left []int32
	var lastErr error
	for _, p := range md.Topics[0].Partitions {
		if !slices.Contains(pending, p.Partition) {
			continue
		}
		if p.Leader < 0 || p.Leader == victim {
			left = append(left, p.Partition)
			lastErr = fmt.Errorf("partition %d: leader %d", p.Partition, p.Leader)
			continue
		}
		if err := pr.produce(ctx, c.Node(p.Leader).KafkaAddr, topic, md.Topics[0].TopicID, p.Partition); err != nil {
			left = append(left, p.Partition)
			lastErr = fmt.Errorf("partition %d on %d: %w", p.Partition, p.Leader, err)
		}
	}
	return left, lastErr
}

// produce sends one probe record to addr and counts the error code.
func (pr *prober) produce(ctx context.Context, addr, topic string, topicID [16]byte, partition int32) error {
	code, err := pr.send(ctx, addr, topic, topicID, partition, "probe", "", 1000)
	if err != nil {
		return err
	}
	if code != 0 {
		pr.codes[code]++
	}
	return kerr.ErrorForCode(code)
}

// send produces one acks=all record (key, value) to addr itself (Produce
// v13+ names the topic by id) and returns the partition's error code.
func (pr *prober) send(ctx context.Context, addr, topic string, topicID [16]byte, partition int32, key, value string, timeoutMs int32) (int16, error) {
	batch, err := record.Build(record.BuildOptions{}, []record.Record{{Timestamp: time.Now().UnixMilli(), Key: []byte(key), Value: []byte(value)}})
	if err != nil {
		return 0, err
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, timeoutMs
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, topicID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	r, err := pr.cl.Request(ctx, addr, req)
	if err != nil {
		return 0, err
	}
	resp := r.(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, errors.New("produce: malformed answer")
	}
	return resp.Topics[0].Partitions[0].ErrorCode, nil
}

// checkCodes fails on any non-retriable error code a probe met.
func (pr *prober) checkCodes(t *testing.T) {
	t.Helper()
	for code, n := range pr.codes {
		err := kerr.ErrorForCode(code)
		t.Logf("probe produce error %v: %d times", err, n)
		if !kerr.IsRetriable(err) {
			t.Errorf("non-retriable produce error during failover: %v (%d times)", err, n)
		}
	}
}

// check reads every partition from the start to its end (verifyChaos)
// and checks the producer's records are there exactly once, in order,
// with no acknowledged one missing; the producer got no error (franz-go
// retries the retriable ones itself, with no delivery timeout set).
func (p *seqProducer) check(t *testing.T, seeds []string, topic string, parts int32) {
	t.Helper()
	for _, err := range p.errors() {
		t.Errorf("producer error: %v (retriable %v)", err, kerr.IsRetriable(err))
	}
	res := verifyChaos(t, seeds, topic, parts, p.ackedSnapshot(), nil)
	if res.dup > 0 || res.reordered > 0 {
		t.Errorf("%d records read more than once, %d out of order", res.dup, res.reordered)
	}
	if res.lost > 0 {
		t.Errorf("%d acknowledged records lost", res.lost)
	}
	t.Logf("read back %d records, %d acknowledged: none lost, none duplicated, order kept", res.read, res.acked)
	if res.acked == 0 {
		t.Error("nothing was acknowledged")
	}
}

// kcatPartition is a partition line of `kcat -L`.
var kcatPartition = regexp.MustCompile(`^partition (\d+), leader (-?\d+), replicas: ([\d,]*), isrs: ([\d,]*)`)

// kcatShows runs `kcat -L -t topic` on addr and checks that librdkafka
// sees partition 0 led by leader with the replicas and ISR given (in any
// order) and brokers brokers.
func kcatShows(t *testing.T, addr, topic string, leader int32, replicas, isr []int32, brokers int) {
	t.Helper()
	kcat := requireKcat(t)
	ctx := ctxFor(t, 30*time.Second)
	out, err := execOutput(ctx, kcat, "-b", addr, "-L", "-t", topic)
	if err != nil {
		t.Fatalf("kcat -L: %v\n%s", err, out)
	}
	var gotLeader int32 = -2
	var gotReps, gotISR string
	var nBrokers int
	for _, line := range splitLines(out) {
		line = strings.TrimSpace(line)
		if n, ok := strings.CutSuffix(line, " brokers:"); ok {
			nBrokers, _ = strconv.Atoi(n)
		}
		if m := kcatPartition.FindStringSubmatch(line); m != nil && m[1] == "0" {
			l, _ := strconv.Atoi(m[2])
			gotLeader, gotReps, gotISR = int32(l), m[3], m[4]
		}
	}
	want := func(ids []int32) string {
		s := slices.Sorted(slices.Values(ids))
		var out string
		for i, id := range s {
			if i > 0 {
				out += ","
			}
			out += strconv.Itoa(int(id))
		}
		return out
	}
	norm := func(s string) string {
		var ids []int32
		for _, f := range splitComma(s) {
			if n, err := strconv.Atoi(f); err == nil {
				ids = append(ids, int32(n))
			}
		}
		return want(ids)
	}
	if gotLeader != leader || norm(gotReps) != want(replicas) || norm(gotISR) != want(isr) || nBrokers != brokers {
		t.Errorf("kcat -L: leader %d replicas %q isrs %q, %d brokers; want %d, %s, %s, %d\n%s",
			gotLeader, gotReps, gotISR, nBrokers, leader, want(replicas), want(isr), brokers, out)
	}
}

// uncleanElections reads samsa_controller_unclean_leader_elections_total
// from the active controller's /metrics.
func uncleanElections(t *testing.T, c *brokerproc.Cluster) float64 {
	t.Helper()
	var addr string
	for _, n := range c.Nodes {
		if n.ControllerAddr != "" && n.Broker().Running() {
			addr = n.KafkaAddr
			break
		}
	}
	q, err := quorumOf(ctxFor(t, 10*time.Second), t, addr)
	if err != nil {
		t.Fatal(err)
	}
	ctrl := c.Node(q.LeaderID)
	if ctrl == nil || !ctrl.Broker().Running() {
		t.Fatalf("active controller %d not running", q.LeaderID)
	}
	v, err := scrapeMetric(ctrl.Broker().HTTPAddr(), "samsa_controller_unclean_leader_elections_total")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// requireKcat returns kcat's path; missing, it fails the test under
// SAMSA_REQUIRE_CLIENTS=1 (make test) and skips it otherwise.
func requireKcat(t *testing.T) string {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("SAMSA_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("required client missing: kcat: %v", err)
		}
		t.Skipf("kcat missing (set SAMSA_REQUIRE_CLIENTS=1 to fail instead): %v", err)
	}
	return kcat
}

func execOutput(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

func splitLines(s string) []string { return strings.Split(s, "\n") }

func splitComma(s string) []string {
	return strings.Split(strings.TrimSuffix(strings.TrimSpace(s), ","), ",")
}

// scrapeMetric reads one unlabelled sample from http://addr/metrics.
func scrapeMetric(addr, name string) (float64, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s not in %s/metrics", name, addr)
}
