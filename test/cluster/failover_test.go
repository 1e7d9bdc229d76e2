package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// failoverGoal is issue 6's target: admin requests work again within 2 s
// of the active controller's death. The test reports p50/p99 against it
// and fails only past failoverLimit, a bound on "works again at all".
const (
	failoverGoal  = 2 * time.Second
	failoverLimit = 30 * time.Second
)

// TestClusterControllerFailover kills -9 the active controller (the Raft
// leader of the metadata quorum) SAMSA_FAILOVER_ROUNDS times (2 by
// default; `make failover` runs 25) and measures how long until a new
// client's CreateTopics through a surviving node succeeds. After each
// round: another voter leads, every topic created before the kill still
// exists, and the killed node restarts and rejoins.
func TestClusterControllerFailover(t *testing.T) {
	rounds := envRounds(t, "SAMSA_FAILOVER_ROUNDS", 2)
	c := startCluster(t, 3)
	var created []string
	var took []time.Duration
	for round := range rounds {
		ctx := ctxFor(t, 30*time.Second)
		q, err := quorumOf(ctx, t, c.Nodes[round%3].KafkaAddr)
		if err != nil {
			t.Fatalf("round %d: DescribeQuorum: %v", round, err)
		}
		victim := c.Node(q.LeaderID)
		if victim == nil {
			t.Fatalf("round %d: quorum leader %d is no node", round, q.LeaderID)
		}
		var others []string
		for _, n := range c.Nodes {
			if n != victim {
				others = append(others, n.KafkaAddr)
			}
		}

		victim.Kill()
		t0 := time.Now()
		topic := fmt.Sprintf("after-kill-%d", round)
		for {
			err := createWithFreshClient(others, topic)
			if err == nil {
				break
			}
			if time.Since(t0) > failoverLimit {
				t.Fatalf("round %d: CreateTopics still failing %v after killing controller %d: %v", round, failoverLimit, victim.ID, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		d := time.Since(t0)
		took = append(took, d)
		created = append(created, topic)

		q2, err := quorumOf(ctx, t, others[0])
		if err != nil {
			t.Fatalf("round %d: DescribeQuorum after failover: %v", round, err)
		}
		if q2.LeaderID == victim.ID || q2.LeaderID < 0 || q2.LeaderEpoch <= q.LeaderEpoch {
			t.Errorf("round %d: after killing %d (epoch %d) the leader is %d (epoch %d)", round, victim.ID, q.LeaderEpoch, q2.LeaderID, q2.LeaderEpoch)
		}
		t.Logf("round %d: killed controller %d, node %d leads (epoch %d), CreateTopics works again after %v",
			round, victim.ID, q2.LeaderID, q2.LeaderEpoch, d.Round(time.Millisecond))
		// Nothing committed is lost.
		md, err := metadataOf(ctx, t, others[1], created...)
		if err != nil {
			t.Fatal(err)
		}
		for _, tp := range md.Topics {
			if err := kerr.ErrorForCode(tp.ErrorCode); err != nil {
				t.Errorf("round %d: topic %s created before: %v", round, *tp.Topic, err)
			}
		}

		victim.Restart(t)
		waitFormed(t, c.Bootstrap(), 3)
	}
	p50, p99 := percentile(took, 50), percentile(took, 99)
	t.Logf("controller failover over %d kills: p50 %v, p99 %v, max %v (goal %v)",
		len(took), p50.Round(time.Millisecond), p99.Round(time.Millisecond), percentile(took, 100).Round(time.Millisecond), failoverGoal)
	fmt.Printf("FAILOVER rounds=%d p50=%v p99=%v goal=%v\n", len(took), p50.Round(time.Millisecond), p99.Round(time.Millisecond), failoverGoal)
}

// failoverAttempt bounds one CreateTopics attempt: the measured time is
// quantized by it (an attempt that started before the new leader was
// known waits it out), so it is short; a healthy CreateTopics takes
// milliseconds.
const failoverAttempt = 400 * time.Millisecond

// createWithFreshClient creates topic through a new client of the seeds,
// within failoverAttempt; an already existing topic (an earlier attempt
// that timed out after the controller committed it) counts as success.
func createWithFreshClient(seeds []string, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DialTimeout(failoverAttempt),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), failoverAttempt)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, 1, 1, nil, topic)
	if err == nil {
		err = resp.Error()
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return nil
	}
	return err
}
