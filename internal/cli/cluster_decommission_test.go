package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// throttleState is what DescribeConfigs says of a plan's throttle: the
// dynamic throttle lists of a topic and, per broker, the dynamic
// (per-broker) leader and follower rates ("" when not set).
type throttleState struct {
	topic map[string]string
	rates map[int32][2]string
}

func describeThrottle(ctx context.Context, t *testing.T, adm *kadm.Client, topic string, brokers ...int32) throttleState {
	t.Helper()
	st := throttleState{topic: map[string]string{}, rates: map[int32][2]string{}}
	rc, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rc[0].Configs {
		if c.Source == kmsg.ConfigSourceDynamicTopicConfig && (c.Key == leaderReplicasKey || c.Key == followerReplicasKey) {
			st.topic[c.Key] = c.MaybeValue()
		}
	}
	for _, id := range brokers {
		bc, err := adm.DescribeBrokerConfigs(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var r [2]string
		for _, c := range bc[0].Configs {
			if c.Source != kmsg.ConfigSourceDynamicBrokerConfig {
				continue
			}
			switch c.Key {
			case leaderRateKey:
				r[0] = c.MaybeValue()
			case followerRateKey:
				r[1] = c.MaybeValue()
			}
		}
		st.rates[id] = r
	}
	return st
}

// waitThrottle polls describeThrottle until ok holds (brokers apply
// metadata changes moments after the controller), failing after 10 s.
func waitThrottle(ctx context.Context, t *testing.T, adm *kadm.Client, what, topic string, ok func(throttleState) bool, brokers ...int32) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st := describeThrottle(ctx, t, adm, topic, brokers...)
		if ok(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: topic %s %v, broker rates %v", what, topic, st.topic, st.rates)
		}
	}
}

// waitLive waits until the cluster lists n live brokers.
func waitLive(ctx context.Context, t *testing.T, cl *kgo.Client, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		md, err := freshMetadata(ctx, cl, []string{})
		if err == nil && len(md.Brokers) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("live brokers: %v %v, want %d", md.Brokers, err, n)
		}
	}
}

// createOn creates topic with the given replica lists (one per partition).
// waitBrokers waits (20 s at most) until Metadata through cl lists n
// brokers.
func waitBrokers(ctx context.Context, t *testing.T, cl *kgo.Client, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		m, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		if err == nil && len(m.Brokers) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("brokers: %v", err)
		}
	}
}

func createOn(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, reps [][]int32, configs map[string]string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for i, r := range reps {
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, kmsg.CreateTopicsRequestTopicReplicaAssignment{Partition: int32(i), Replicas: r})
	}
	for k, v := range configs {
		rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: k, Value: kmsg.StringPtr(v)})
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create %s: %v %+v", topic, err, resp)
	}
}

// TestClusterDecommissionCommand: on four nodes, broker 4 holds replicas
// of an RF 3 topic written by an idempotent acks=all producer. The dry
// run plans a move per replica on 4 and changes nothing; --execute
// (batches of 2, with progress lines, --throttle: set during each batch,
// cleared after) moves them all while the producer runs; --unregister is refused while 4 runs; once 4 is stopped it is
// unregistered and no longer listed, fenced or not; every acknowledged
// record is there exactly once.
func TestClusterDecommissionCommand(t *testing.T) {
	srvs, addrs := startNodes(t, 4)
	c := &cluster{addr: strings.Join(addrs[:3], ",")}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs[:3]...), kgo.DefaultProduceTopic("load"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(1000), kgo.RetryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	waitLive(ctx, t, cl, 4)
	createOn(ctx, t, cl, "load", [][]int32{{4, 1, 2}, {1, 4, 3}, {2, 3, 4}, {3, 1, 2}}, map[string]string{"min.insync.replicas": "2"})

	// The producer: values "k-<n>" keyed by n, acknowledged ones counted.
	var mu sync.Mutex
	acked := map[string]bool{}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for n := 0; ; n += 20 {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			var rs []*kgo.Record
			for i := n; i < n+20; i++ {
				rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("k-%d", i))})
			}
			if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				done <- err
				return
			}
			mu.Lock()
			for _, r := range rs {
				acked[string(r.Value)] = true
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	halt := func() {
		select {
		case <-stop:
			return
		default:
		}
		close(stop)
		if err := <-done; err != nil {
			t.Fatalf("producer: %v", err)
		}
	}
	defer halt()
	ackedNow := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	for deadline := time.Now().Add(30 * time.Second); ackedNow() < 200; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the producer is stuck at %d records", ackedNow())
		}
	}

	var dry decommissionReport
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "cluster", "decommission", "4", "--format", "json")), &dry); err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || dry.Moved || dry.Plan == nil || len(dry.Plan.Moves) < 3 {
		t.Fatalf("dry run: %+v", dry)
	}
	for _, m := range dry.Plan.Moves {
		if m.From != 4 || m.To == 4 {
			t.Fatalf("dry-run move %+v", m)
		}
	}
	if md, _ := freshMetadata(ctx, cl, []string{"load"}); !slices.ContainsFunc(md.Topics[0].Partitions, func(p kmsg.MetadataResponseTopicPartition) bool {
		return p.Partition == 0 && slices.Contains(p.Replicas, 4)
	}) {
		t.Fatal("the dry run changed load-0")
	}
	text := c.mustRun(t, "", "cluster", "decommission", "4")
	if !strings.Contains(text, "TOPIC  PARTITION  FROM  TO  BYTES") || !strings.Contains(text, "Dry run: nothing changed.") {
		t.Fatalf("dry run text:\n%s", text)
	}

	// --throttle: while each batch moves, broker 4 (the source of every
	// move) has the rates and the topic lists name its replicas as
	// leaders and the new ones as followers; after the plan nothing is
	// left. The check runs from inside the executor, after the batch was
	// sent and before it is waited for.
	if _, _, err := c.run(t, "", "cluster", "decommission", "4", "--throttle", "1000"); err == nil {
		t.Fatal("--throttle without --execute accepted")
	}
	adm := kadm.NewClient(cl)
	const rate = "104857600"
	var throttledBatches []int
	planBatchSent = func(batch int) {
		throttledBatches = append(throttledBatches, batch)
		waitThrottle(ctx, t, adm, fmt.Sprintf("throttle of batch %d", batch), "load", func(st throttleState) bool {
			return st.rates[4] == [2]string{rate, rate} && strings.Contains(st.topic[leaderReplicasKey], ":4") &&
				st.topic[followerReplicasKey] != "" && !strings.Contains(st.topic[followerReplicasKey], ":4")
		}, 4)
	}
	t.Cleanup(func() { planBatchSent = nil })
	beforeMoves := ackedNow()
	o := c.mustRun(t, "", "cluster", "decommission", "4", "--execute", "--batch", "2", "--interval", "100ms", "--throttle", rate)
	afterMoves := ackedNow()
	planBatchSent = nil
	if len(throttledBatches) < 2 {
		t.Fatalf("throttle checked in batches %v, want every batch of a plan of %d moves", throttledBatches, len(dry.Plan.Moves))
	}
	waitThrottle(ctx, t, adm, "throttle after the plan", "load", func(st throttleState) bool {
		if len(st.topic) > 0 {
			return false
		}
		for _, r := range st.rates {
			if r != [2]string{} {
				return false
			}
		}
		return true
	}, 1, 2, 3, 4)
	for _, want := range []string{"The inter-broker throttle limit was set to " + rate + " B/s on brokers ", "Clearing broker-level throttles on brokers 1,2,3,4", "Clearing topic-level throttles on topics load",
		"batch 1/", "partitions moved", "Broker 4 holds no replica.", "Next: stop broker 4, then: samsa cluster decommission 4 --unregister"} {
		if !strings.Contains(o, want) {
			t.Fatalf("execute output lacks %q:\n%s", want, o)
		}
	}
	md, err := freshMetadata(ctx, cl, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, td := range md.Topics {
		for _, p := range td.Partitions {
			if slices.Contains(p.Replicas, 4) || len(p.Replicas) == 0 {
				t.Fatalf("%s-%d replicas %v", strPtr(td.Topic), p.Partition, p.Replicas)
			}
			if strPtr(td.Topic) == "load" && len(p.Replicas) != 3 {
				t.Fatalf("load-%d has %d replicas", p.Partition, len(p.Replicas))
			}
		}
	}
	// Still running: refused.
	if _, e, err := c.run(t, "", "cluster", "decommission", "4", "--unregister"); err == nil || !strings.Contains(e+fmt.Sprint(err), "still running") {
		t.Fatalf("unregister of a running broker: %v %s", err, e)
	}
	// Stopped (controlled shutdown): unregistered.
	_ = srvs[3].Close()
	waitLive(ctx, t, cl, 3)
	var un decommissionReport
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "cluster", "decommission", "4", "--unregister", "--format", "json")), &un); err != nil {
		t.Fatal(err)
	}
	if !un.Unregistered {
		t.Fatalf("unregister: %+v", un)
	}
	dreq := kmsg.NewPtrDescribeClusterRequest()
	dreq.IncludeFencedBrokers = true
	for _, a := range addrs[:3] {
		one, err := kgo.NewClient(kgo.SeedBrokers(a))
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			dr, err := dreq.RequestWith(ctx, one)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(dr.Brokers, func(b kmsg.DescribeClusterResponseBroker) bool { return b.NodeID == 4 }) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still lists broker 4: %+v", a, dr.Brokers)
			}
		}
		one.Close()
	}
	if _, e, err := c.run(t, "", "cluster", "decommission", "4", "--unregister"); err == nil || !strings.Contains(e+fmt.Sprint(err), "not registered") {
		t.Fatalf("second unregister: %v %s", err, e)
	}

	// The producer goes on after the broker left; then it stops.
	t.Logf("acknowledged: %d before the moves, %d after them, %d after unregistering", beforeMoves, afterMoves, ackedNow())
	for deadline := time.Now().Add(20 * time.Second); ackedNow() < afterMoves+100; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the producer is stuck at %d records", ackedNow())
		}
	}
	halt()
	want := ackedNow()
	cons, err := kgo.NewClient(kgo.SeedBrokers(addrs[:3]...), kgo.ConsumeTopics("load"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]int{}
	for len(seen) < want {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume after %d: %v", len(seen), err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	for v := range acked {
		if seen[v] != 1 {
			t.Fatalf("acknowledged %s seen %d times", v, seen[v])
		}
	}
}

// TestClusterBalanceCommand: four nodes, topics placed on brokers 1-3
// only (broker 4 is the one added to a three-broker cluster); the dry
// run lists moves onto 4 and changes nothing; --execute moves them and
// elects the preferred leaders: every broker holds its share of
// replicas and leaders (within one); a second run finds nothing to do;
// on a new topic, a throttled run interrupted by SIGINT in its first
// batch clears the throttle it set.
func TestClusterBalanceCommand(t *testing.T) {
	_, addrs := startNodes(t, 4)
	c := &cluster{addr: strings.Join(addrs, ",")}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	waitLive(ctx, t, cl, 4)
	var reps [][]int32
	for i := range 12 {
		reps = append(reps, []int32{int32(i%3 + 1), int32((i+1)%3 + 1)})
	}
	createOn(ctx, t, cl, "grow", reps, nil)
	var rs []*kgo.Record
	for i := range 1200 {
		rs = append(rs, &kgo.Record{Topic: "grow", Partition: int32(i % 12), Value: []byte(strings.Repeat("v", 200))})
	}
	pcl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	if err := pcl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Only "grow" counts: the internal topics the nodes made stay as
	// they are in this check (they are balanced too, which is fine).
	count := func() (map[int32]int, map[int32]int) {
		md, err := freshMetadata(ctx, cl, []string{"grow"})
		if err != nil {
			t.Fatal(err)
		}
		replicas, leaders := map[int32]int{}, map[int32]int{}
		for _, p := range md.Topics[0].Partitions {
			for _, r := range p.Replicas {
				replicas[r]++
			}
			leaders[p.Leader]++
		}
		return replicas, leaders
	}
	var dry balanceReport
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "cluster", "balance", "--format", "json")), &dry); err != nil {
		t.Fatal(err)
	}
	onto4 := 0
	for _, m := range dry.Plan.Moves {
		if m.To == 4 {
			onto4++
		}
	}
	if !dry.DryRun || onto4 < 6 {
		t.Fatalf("dry run: %d moves onto 4: %+v", onto4, dry.Plan.Moves)
	}
	if r, _ := count(); r[4] != 0 {
		t.Fatalf("the dry run moved replicas: %v", r)
	}
	if o := c.mustRun(t, "", "cluster", "balance"); !strings.Contains(o, "TOPIC  PARTITION  FROM  TO  BYTES") || !strings.Contains(o, "Dry run") {
		t.Fatalf("dry run text:\n%s", o)
	}
	o := c.mustRun(t, "", "cluster", "balance", "--execute", "--batch", "4", "--interval", "100ms")
	if !strings.Contains(o, "Balanced:") {
		t.Fatalf("execute output:\n%s", o)
	}
	spread := func(m map[int32]int) int {
		lo, hi := 1<<30, 0
		for id := int32(1); id <= 4; id++ {
			lo, hi = min(lo, m[id]), max(hi, m[id])
		}
		return hi - lo
	}
	replicas, leaders := count()
	if spread(replicas) > 1 || replicas[4] < 5 {
		t.Fatalf("replicas per broker after balance: %v", replicas)
	}
	// Leaders follow the preferred replicas; the election may need a
	// moment to show everywhere.
	for deadline := time.Now().Add(10 * time.Second); spread(leaders) > 1; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("leaders per broker after balance: %v", leaders)
		}
		_, leaders = count()
	}
	var again balanceReport
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "cluster", "balance", "--format", "json")), &again); err != nil {
		t.Fatal(err)
	}
	if len(again.Plan.Changes) != 0 {
		t.Fatalf("second balance plans %+v", again.Plan.Changes)
	}

	// A topic on brokers 1-3 again. Interrupted (SIGINT) during its first
	// batch, a throttled run stops waiting and clears the throttle it set;
	// the batch's moves go on.
	var more [][]int32
	for i := range 8 {
		more = append(more, []int32{int32(i%3 + 1), int32((i+1)%3 + 1)})
	}
	createOn(ctx, t, cl, "more", more, nil)
	var e string
	adm := kadm.NewClient(cl)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	planBatchSent = func(batch int) {
		// The first batch may move another topic (the internal ones are
		// balanced too): some broker has the rates.
		waitThrottle(ctx, t, adm, "throttle of the first batch", "more", func(st throttleState) bool {
			return slices.ContainsFunc([]int32{1, 2, 3, 4}, func(id int32) bool { return st.rates[id] == [2]string{"1048576", "1048576"} })
		}, 1, 2, 3, 4)
		self, err := os.FindProcess(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if err := self.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		<-sigs // the executor's context got it too
	}
	t.Cleanup(func() { planBatchSent = nil })
	o, e, err = c.run(t, "", "cluster", "balance", "--execute", "--batch", "1", "--interval", "100ms", "--throttle", "1048576")
	planBatchSent = nil
	if err == nil || !strings.Contains(o, "Clearing broker-level throttles on brokers 1,2,3,4") {
		t.Fatalf("interrupted balance: %v\nstdout:\n%s\nstderr:\n%s", err, o, e)
	}
	t.Logf("interrupted balance: %v", err)
	waitThrottle(ctx, t, adm, "throttle after the interruption", "more", func(st throttleState) bool {
		return len(st.topic) == 0 && !slices.ContainsFunc([]int32{1, 2, 3, 4}, func(id int32) bool { return st.rates[id] != [2]string{} })
	}, 1, 2, 3, 4)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		l, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"more": nil})
		if err != nil {
			t.Fatal(err)
		}
		if len(l["more"]) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the interrupted batch's moves are not done: %+v", l)
		}
	}

}

// TestClusterDecommissionWait: on three nodes, `decommission 3 --execute
// --wait` moves broker 3's replicas, then waits for it to stop; once it
// is stopped the command unregisters it by itself.
func TestClusterDecommissionWait(t *testing.T) {
	srvs, addrs := startNodes(t, 3)
	c := &cluster{addr: strings.Join(addrs[:2], ",")}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs[:2]...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	waitLive(ctx, t, cl, 3)
	createOn(ctx, t, cl, "w", [][]int32{{3, 1}, {2, 3}}, nil)
	type result struct {
		out, errOut string
		err         error
	}
	done := make(chan result, 1)
	go func() {
		o, e, err := c.run(t, "", "cluster", "decommission", "3", "--execute", "--wait", "--interval", "100ms", "--format", "json")
		done <- result{o, e, err}
	}()
	// Once nothing lists broker 3, it is stopped.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		md, err := freshMetadata(ctx, cl, []string{"w"})
		if err == nil && !slices.ContainsFunc(md.Topics[0].Partitions, func(p kmsg.MetadataResponseTopicPartition) bool { return slices.Contains(p.Replicas, 3) }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker 3 still holds replicas: %v", err)
		}
	}
	_ = srvs[2].Close()
	r := <-done
	if r.err != nil {
		t.Fatalf("decommission --wait: %v\n%s\n%s", r.err, r.out, r.errOut)
	}
	var rep decommissionReport
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.out)
	}
	// (It may have found broker 3 already stopped, without waiting.)
	if !rep.Moved || !rep.Unregistered {
		t.Fatalf("report %+v\nstderr:\n%s", rep, r.errOut)
	}
	md, err := freshMetadata(ctx, cl, []string{})
	if err != nil || slices.ContainsFunc(md.Brokers, func(b kmsg.MetadataResponseBroker) bool { return b.NodeID == 3 }) {
		t.Fatalf("brokers after: %v %v", md, err)
	}
}
