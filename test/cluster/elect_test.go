package cluster

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/test/brokerproc"
)

// TestClusterPreferredElectionAfterRestart: three processes, the
// automatic rebalance off. Broker 2, preferred leader of pref-1, is
// stopped (SIGTERM: its leadership moves away) and started again; once
// it is back in the ISR, a preferred election moves the leadership back
// to it: by kadm, then (after another restart) by sarama's ClusterAdmin,
// then by `samsa cluster elect-leaders --all-topic-partitions`. kafka-go's
// ElectLeaders and an unclean election by kadm then answer
// ELECTION_NOT_NEEDED.
func TestClusterPreferredElectionAfterRestart(t *testing.T) {
	c, err := brokerproc.StartCluster(t, brokerproc.ClusterOptions{
		Nodes: 3, Extra: append(slices.Clone(fastLiveness), "auto.leader.rebalance.enable=false"),
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFormed(t, c.Bootstrap(), 3)
	const topic = "pref"
	createTopic(t, c.Nodes[0].KafkaAddr, topic, 3, [][]int32{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}}, nil)
	waitISR(t, c, topic, 3)
	const victim, part = int32(2), int32(1)
	asker := c.Node(1).KafkaAddr

	bounce := func() {
		t.Helper()
		if err := c.Node(victim).Broker().Stop(); err != nil {
			t.Fatal(err)
		}
		c.Node(victim).Restart(t)
		waitPartition(t, asker, topic, part, "led by another broker, 2 back in the ISR", func(p kmsg.MetadataResponseTopicPartition) bool {
			return p.Leader >= 0 && p.Leader != victim && slices.Contains(p.ISR, victim)
		})
	}
	ledByVictim := func(how string) {
		t.Helper()
		waitPartition(t, asker, topic, part, "led by 2 after "+how, func(p kmsg.MetadataResponseTopicPartition) bool {
			return p.Leader == victim
		})
	}

	// kadm.
	bounce()
	adm := kadm.NewClient(nodeClient(t, asker))
	rs, err := adm.ElectLeaders(ctxFor(t, 30*time.Second), kadm.ElectPreferredReplica, kadm.TopicsSet{topic: {part: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := rs[topic][part]; r.Err != nil {
		t.Fatalf("kadm preferred election: %v %s", r.Err, r.ErrMessage)
	}
	ledByVictim("kadm")

	// sarama.
	bounce()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.ClientID = "samsa-elect-test"
	sa, err := sarama.NewClusterAdmin([]string{asker}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	res, err := sa.ElectLeaders(sarama.PreferredElection, map[string][]int32{topic: {part}})
	if err != nil {
		t.Fatalf("sarama ElectLeaders: %v", err)
	}
	if r := res[topic][part]; r == nil || !errors.Is(r.ErrorCode, sarama.ErrNoError) {
		t.Fatalf("sarama preferred election: %+v", r)
	}
	ledByVictim("sarama")

	// The CLI, for every partition.
	bounce()
	run := runSamsa(t, "cluster", "elect-leaders", "-X", asker, "--all-topic-partitions", "--format", "json")
	if run.exitCode != 0 {
		t.Fatalf("samsa cluster elect-leaders: exit %d\n%s%s", run.exitCode, run.stdout, run.stderr)
	}
	var rep struct {
		Results []electRow `json:"results"`
	}
	if err := json.Unmarshal([]byte(run.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, run.stdout)
	}
	if !slices.ContainsFunc(rep.Results, func(r electRow) bool {
		return r.Topic == topic && r.Partition == part && r.Error == ""
	}) {
		t.Fatalf("samsa cluster elect-leaders did not elect %s-%d:\n%s", topic, part, run.stdout)
	}
	ledByVictim("samsa cluster elect-leaders")

	// Nothing left to do: kafka-go, and an unclean election by kadm.
	kc := &kafka.Client{Addr: kafka.TCP(asker), Timeout: 30 * time.Second}
	kr, err := kc.ElectLeaders(ctxFor(t, 30*time.Second), &kafka.ElectLeadersRequest{Addr: kafka.TCP(asker), Topic: topic, Partitions: []int{int(part)}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("kafka-go ElectLeaders: %v", err)
	}
	if kr.Error != nil || len(kr.PartitionResults) != 1 || !errors.Is(kr.PartitionResults[0].Error, kafka.ElectionNotNeeded) {
		t.Fatalf("kafka-go ElectLeaders: %+v", kr)
	}
	rs, err = adm.ElectLeaders(ctxFor(t, 30*time.Second), kadm.ElectLiveReplica, kadm.TopicsSet{topic: {part: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := rs[topic][part]; !errors.Is(r.Err, kerr.ElectionNotNeeded) {
		t.Fatalf("kadm unclean election of a led partition: %v", r.Err)
	}
}

// electRow is one result of `samsa cluster elect-leaders --format json`.
type electRow struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Error     string `json:"error"`
}
