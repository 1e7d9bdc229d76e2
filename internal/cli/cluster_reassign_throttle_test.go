package cli

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestReassignThrottleLists(t *testing.T) {
	r := &reassignment{Version: 1, Partitions: []reassignPartitionDoc{
		{Topic: "a", Partition: 0, Replicas: []int32{2, 3}},
		{Topic: "a", Partition: 1, Replicas: []int32{1, 2}}, // unchanged
		{Topic: "b", Partition: 4, Replicas: []int32{3, 4}},
	}}
	cur := &reassignment{Version: 1, Partitions: []reassignPartitionDoc{
		{Topic: "a", Partition: 0, Replicas: []int32{1, 2}},
		{Topic: "a", Partition: 1, Replicas: []int32{1, 2}},
		// A running move of b-4 from {1,3} to {3,4}: Metadata shows the
		// union, the move is adding 4.
		{Topic: "b", Partition: 4, Replicas: []int32{3, 4, 1}},
	}}
	moves := moveMap(r, cur, map[topicPartition][]int32{{"b", 4}: {4}})
	leader, follower := throttleLists(moves)
	want := map[string][2]string{"a": {"0:1,0:2", "0:3"}, "b": {"4:1,4:3", "4:4"}}
	for topic, w := range want {
		if leader[topic] != w[0] || follower[topic] != w[1] {
			t.Errorf("%s: leader %q follower %q, want %q %q", topic, leader[topic], follower[topic], w[0], w[1])
		}
	}
	if len(leader) != 2 {
		t.Errorf("leader lists %v", leader)
	}
	if got := joinIDs(throttleBrokers(moves)); got != "1,2,3,4" {
		t.Errorf("brokers %s", got)
	}
}

// TestClusterReassignThrottle: a partition with 32 MiB moves from broker
// 1 to broker 2 under `--execute --throttle 8388608` (8 MiB/s): the tool
// sets the rates on brokers 1 and 2 and the topic's throttled replicas
// lists (0:1 leader, 0:2 follower); --execute --throttle 6291456 on the
// running move lowers the rate; the move takes at least half of
// size/rate (an unthrottled in-process move of 32 MiB takes well under
// a second; the measured rate is logged, the precise measurement is
// `make bench-reassign`); --verify then clears the throttle.
func TestClusterReassignThrottle(t *testing.T) {
	const (
		size = 32 << 20
		rate = 8 << 20
	)
	_, addrs := startNodes(t, 3)
	c := &cluster{addr: strings.Join(addrs, ",")}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("big"),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	waitBrokers(ctx, t, cl, 3)
	createOn(ctx, t, cl, "big", [][]int32{{1}}, nil)
	value := make([]byte, 64<<10)
	for sent := 0; sent < size; {
		var rs []*kgo.Record
		for range 16 {
			v := make([]byte, len(value))
			_, _ = rand.Read(v) // incompressible
			rs = append(rs, &kgo.Record{Partition: 0, Value: v})
			sent += len(v)
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	plan := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(plan, []byte(`{"version":1,"partitions":[{"topic":"big","partition":0,"replicas":[2]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	o := c.mustRun(t, "", "cluster", "reassign", "--execute", "-f", plan, "--throttle", "8388608")
	for _, want := range []string{
		"Warning: You must run --verify periodically",
		"The inter-broker throttle limit was set to 8388608 B/s on brokers 1,2",
		"Successfully started partition reassignments for big-0",
	} {
		if !strings.Contains(o, want) {
			t.Fatalf("execute output lacks %q:\n%s", want, o)
		}
	}
	// The configs the tool set.
	topicCfg := func() map[string]string {
		rc, err := adm.DescribeTopicConfigs(ctx, "big")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, c := range rc[0].Configs {
			if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
				out[c.Key] = c.MaybeValue()
			}
		}
		return out
	}
	brokerRate := func(id int32) (string, kmsg.ConfigSource) {
		rc, err := adm.DescribeBrokerConfigs(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rc[0].Configs {
			if c.Key == leaderRateKey {
				return c.MaybeValue(), c.Source
			}
		}
		return "", 0
	}
	if tc := topicCfg(); tc[leaderReplicasKey] != "0:1" || tc[followerReplicasKey] != "0:2" {
		t.Fatalf("topic configs %v", tc)
	}
	for _, id := range []int32{1, 2} {
		if v, src := brokerRate(id); v != "8388608" || src != kmsg.ConfigSourceDynamicBrokerConfig {
			t.Fatalf("broker %d %s = %q (%v)", id, leaderRateKey, v, src)
		}
	}
	// --execute --throttle again on the running move changes the rate
	// (lower, so the bound below holds); the lists stay those of the
	// move (its original replica leads, the adding one follows).
	o = c.mustRun(t, "", "cluster", "reassign", "--execute", "-f", plan, "--throttle", "6291456")
	if !strings.Contains(o, "The inter-broker throttle limit was set to 6291456 B/s on brokers 1,2") {
		t.Fatalf("execute on the running move:\n%s", o)
	}
	if tc := topicCfg(); tc[leaderReplicasKey] != "0:1" || tc[followerReplicasKey] != "0:2" {
		t.Fatalf("topic configs after the update %v", tc)
	}
	for _, id := range []int32{1, 2} {
		if v, _ := brokerRate(id); v != "6291456" {
			t.Fatalf("broker %d %s = %q after the update", id, leaderRateKey, v)
		}
	}

	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		l, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"big": {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(l["big"]) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("move not done: %+v", l)
		}
	}
	took := time.Since(start)
	t.Logf("moved %d MiB at --throttle 8 then 6 MiB/s in %v: %.2f MiB/s", size>>20, took.Round(time.Millisecond), float64(size)/took.Seconds()/(1<<20))
	// Only a lower bound (no timed upper bound on a shared machine): half
	// of size/rate proves the throttle held the move back.
	if minTook := time.Duration(float64(size) / rate * 0.5 * float64(time.Second)); took < minTook {
		t.Fatalf("the move took %v, under %v: not throttled", took, minTook)
	}

	o = c.mustRun(t, "", "cluster", "reassign", "--verify", "-f", plan)
	for _, want := range []string{"Reassignment of partition big-0 is completed.", "Clearing broker-level throttles on brokers 1,2,3", "Clearing topic-level throttles on topics big"} {
		if !strings.Contains(o, want) {
			t.Fatalf("verify output lacks %q:\n%s", want, o)
		}
	}
	// Brokers apply the metadata change within moments of each other.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		tc := topicCfg()
		v1, src1 := brokerRate(1)
		v2, src2 := brokerRate(2)
		if len(tc) == 0 && src1 == kmsg.ConfigSourceDefaultConfig && src2 == kmsg.ConfigSourceDefaultConfig {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after --verify: topic configs %v, broker 1 rate %q (%v), broker 2 rate %q (%v)", tc, v1, src1, v2, src2)
		}
	}
}
