package server_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// electSetup creates topic "e" (3 partitions, replication factor 3) on
// a three-node cluster and picks a victim broker that is not the active
// controller, a partition it is the preferred replica of, and an asker
// that is neither (its requests are forwarded).
func electSetup(ctx context.Context, t *testing.T, c *testCluster) (victim, asker, part int32) {
	t.Helper()
	ctrl := c.controllerID(ctx, 1)
	victim = ctrl%3 + 1
	asker = victim%3 + 1
	if asker == ctrl {
		asker = asker%3 + 1
	}
	adm := kadm.NewClient(c.client(asker))
	if r, err := adm.CreateTopic(ctx, 3, 3, nil, "e"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	part = -1
	for deadline := time.Now().Add(10 * time.Second); part < 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		md, err := adm.Metadata(ctx, "e")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range md.Topics["e"].Partitions {
			if len(p.Replicas) == 3 && p.Replicas[0] == victim && p.Leader == victim {
				part = p.Partition
			}
		}
	}
	if part < 0 {
		t.Fatalf("no partition of e led by its preferred replica %d", victim)
	}
	return victim, asker, part
}

// bounceAway stops the victim (controlled shutdown moves its
// leaderships), starts it again and waits until it is back in the ISR
// of part, which another broker still leads.
func bounceAway(ctx context.Context, t *testing.T, c *testCluster, victim, asker, part int32) {
	t.Helper()
	if err := c.nodes[victim].s.Close(); err != nil {
		t.Fatal(err)
	}
	c.nodes[victim].s = nil
	c.restart(victim)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		leader, _, isr := partitionState(ctx, t, c, asker, "e", part)
		if leader >= 0 && leader != victim && slices.Contains(isr, victim) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("e-%d: leader %d isr %v; want the victim %d back in the ISR, not leading", part, leader, isr, victim)
		}
	}
}

// TestClusterElectLeadersPreferredAfterRestart: a broker restarts, its
// leadership has moved away; an ElectLeaders (preferred) sent to a
// broker that is not the controller, moves it back (the asker's
// metadata shows it when the answer arrives); asked again the answer is
// ELECTION_NOT_NEEDED; an unclean election of a led partition is not
// needed either; the "all partitions" form lists nothing left to do; the new leader
// takes an acks=all produce.
func TestClusterElectLeadersPreferredAfterRestart(t *testing.T) {
	c := startCluster(t, specs(3), "auto.leader.rebalance.enable=false")
	ctx := ctxFor(t, 120*time.Second)
	victim, asker, part := electSetup(ctx, t, c)
	_, epochBefore, _ := partitionState(ctx, t, c, asker, "e", part)
	bounceAway(ctx, t, c, victim, asker, part)

	// Sent to the asker itself: kadm would send it to the controller the
	// metadata names, whose answer does not wait for other brokers.
	req := kmsg.NewPtrElectLeadersRequest()
	req.TimeoutMillis = 30_000
	rt := kmsg.NewElectLeadersRequestTopic()
	rt.Topic, rt.Partitions = "e", []int32{part}
	req.Topics = append(req.Topics, rt)
	kr, err := c.client(asker).Broker(int(asker)).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp := kr.(*kmsg.ElectLeadersResponse); len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("preferred election of e-%d via %d: %+v", part, asker, resp)
	}
	leader, epoch, _ := partitionState(ctx, t, c, asker, "e", part)
	if leader != victim || epoch <= epochBefore+1 {
		t.Fatalf("after the election: leader %d epoch %d; want %d, epoch past %d", leader, epoch, victim, epochBefore+1)
	}

	adm := kadm.NewClient(c.client(asker))
	set := kadm.TopicsSet{"e": {part: {}}}
	rs, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, set)
	if err != nil {
		t.Fatal(err)
	}
	if r := rs["e"][part]; !errors.Is(r.Err, kerr.ElectionNotNeeded) {
		t.Fatalf("second election: %v", r.Err)
	}
	rs, err = adm.ElectLeaders(ctx, kadm.ElectLiveReplica, set)
	if err != nil {
		t.Fatal(err)
	}
	if r := rs["e"][part]; !errors.Is(r.Err, kerr.ElectionNotNeeded) {
		t.Fatalf("unclean election of a led partition: %v", r.Err)
	}
	rs, err = adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs["e"]) != 0 {
		t.Fatalf("all partitions when balanced: %+v", rs["e"])
	}
	// The new leader serves: an acks=all produce to the partition.
	prod := c.client(asker, kgo.DefaultProduceTopic("e"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := prod.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte("back")}).FirstErr(); err != nil {
		t.Fatalf("produce after the election: %v", err)
	}
}

// TestClusterAutoLeaderRebalance: with auto.leader.rebalance.enable
// (the default) and a check every second, the restarted broker's
// leadership comes back without any request.
func TestClusterAutoLeaderRebalance(t *testing.T) {
	c := startCluster(t, specs(3), "leader.imbalance.check.interval.seconds=1")
	ctx := ctxFor(t, 120*time.Second)
	victim, asker, part := electSetup(ctx, t, c)
	if err := c.nodes[victim].s.Close(); err != nil {
		t.Fatal(err)
	}
	c.nodes[victim].s = nil
	if l := c.leaders(ctx, asker, "e")[part]; l == victim {
		t.Fatalf("e-%d still led by the stopped %d", part, victim)
	}
	c.restart(victim)
	began := time.Now()
	for deadline := began.Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if leader, _, _ := partitionState(ctx, t, c, asker, "e", part); leader == victim {
			t.Logf("leadership back %v after the restart", time.Since(began).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			leader, _, isr := partitionState(ctx, t, c, asker, "e", part)
			t.Fatalf("e-%d: leader %d isr %v 30 s after the restart; want %d", part, leader, isr, victim)
		}
	}
}
