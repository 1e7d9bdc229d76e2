package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"samsa/test/brokerproc"
)

// TestClusterISRShrinksAndExpandsOnLag: a follower that stops fetching
// (SIGSTOP) while records keep arriving leaves the ISR after
// replica.lag.time.max.ms, through the leader's AlterPartition, before
// its broker session expires; once it runs again it catches up and
// rejoins the ISR the same way. Records produced meanwhile are all there.
func TestClusterISRShrinksAndExpandsOnLag(t *testing.T) {
	c, err := brokerproc.StartCluster(t, brokerproc.ClusterOptions{Nodes: 3, Extra: []string{
		"replica.lag.time.max.ms=2000",
		// Sessions outlive the lag time: the ISR shrinks by lag, not by
		// fencing.
		"broker.session.timeout.ms=30000", "broker.heartbeat.interval.ms=500",
	}})
	if err != nil {
		t.Fatal(err)
	}
	waitFormed(t, c.Bootstrap(), 3)
	ctx := ctxFor(t, 120*time.Second)
	adm := kadm.NewClient(nodeClient(t, c.Bootstrap()...))
	const topic = "lagging"
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	// Asked of node 1, or of the leader once known: never of the paused
	// broker, whose answer would wait for its resume.
	askAddr := c.Node(1).KafkaAddr
	state := func(ctx context.Context) (leader int32, isr []int32, err error) {
		md, err := metadataOf(ctx, t, askAddr, topic)
		if err != nil {
			return -1, nil, err
		}
		if len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 1 {
			return -1, nil, fmt.Errorf("metadata without %s-0", topic)
		}
		p := md.Topics[0].Partitions[0]
		isr = slices.Clone(p.ISR)
		slices.Sort(isr)
		return p.Leader, isr, nil
	}
	var leader int32
	eventually(t, 30*time.Second, func(ctx context.Context) error {
		l, isr, err := state(ctx)
		if err != nil || l < 0 || len(isr) != 3 {
			return fmt.Errorf("leader %d ISR %v err %v", l, isr, err)
		}
		leader = l
		return nil
	})
	// The victim is a follower that is not the active controller (its
	// pause would move the controller too).
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var victim int32 = -1
	for _, n := range c.Nodes {
		if n.ID != leader && n.ID != md.Controller {
			victim = n.ID
		}
	}
	if victim < 0 {
		t.Fatalf("no follower outside the controller (leader %d, controller %d)", leader, md.Controller)
	}

	askAddr = c.Node(leader).KafkaAddr
	// Produce all along, acks=1 so a paused follower does not hold it up.
	prod := nodeClient(t, c.Node(leader).KafkaAddr)
	var produced atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r := &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("v%06d", i))}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("produce: %v", err)
				}
				return
			}
			produced.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()

	c.Node(victim).Pause(t)
	paused := time.Now()
	eventually(t, 20*time.Second, func(ctx context.Context) error {
		if _, isr, err := state(ctx); err != nil || slices.Contains(isr, victim) {
			return fmt.Errorf("ISR %v still has paused broker %d (err %v)", isr, victim, err)
		}
		return nil
	})
	shrunk := time.Since(paused)
	c.Node(victim).Resume(t)
	resumed := time.Now()
	eventually(t, 30*time.Second, func(ctx context.Context) error {
		if _, isr, err := state(ctx); err != nil || len(isr) != 3 {
			return fmt.Errorf("ISR %v (err %v)", isr, err)
		}
		return nil
	})
	t.Logf("ISR shrank %v after the pause (replica.lag.time.max.ms=2000), rejoined %v after the resume", shrunk.Round(time.Millisecond), time.Since(resumed).Round(time.Millisecond))
	close(stop)
	wg.Wait()
	if produced.Load() == 0 {
		t.Fatal("nothing produced")
	}
	// The rejoined follower holds every record: it is in the ISR, so the
	// high watermark covers what it has; compare end offsets.
	eventually(t, 20*time.Second, func(ctx context.Context) error {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return err
		}
		if o, _ := ends.Lookup(topic, 0); o.Offset < produced.Load() {
			return fmt.Errorf("end offset %d, produced %d", o.Offset, produced.Load())
		}
		return nil
	})
}
