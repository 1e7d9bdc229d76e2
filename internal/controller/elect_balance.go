package controller

// Automatic preferred leader elections (auto.leader.rebalance.enable):
// every leader.imbalance.check.interval.seconds the active controller
// looks, per broker, at the partitions whose preferred replica (first
// replica) it is; when more than leader.imbalance.per.broker.percentage
// of them are led by another broker, it elects it leader of those where
// it is active and in the ISR. This is the per-broker test of Kafka's
// ZooKeeper-era KafkaController.checkAndTriggerAutoLeaderRebalance; KRaft's
// QuorumController.balancePartitionLeaders ignores the percentage and
// moves every imbalanced partition. Samsa keeps the percentage, so a
// cluster with a few stray leaders is not churned every period.

import (
	"context"
	"maps"
	"slices"
	"time"

	"samsa/internal/metadata"
)

// imbalance is one broker's preferred partitions: how many it is the
// preferred replica of, and those it does not lead.
type imbalance struct {
	preferred int
	notLed    []electResult // topic and partition set
}

// leaderImbalance groups the partitions of im by preferred replica.
func leaderImbalance(im *metadata.Image) map[int32]*imbalance {
	out := map[int32]*imbalance{}
	for _, name := range slices.Sorted(maps.Keys(im.Topics)) {
		t := im.Topics[name]
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if len(p.Replicas) == 0 {
				continue
			}
			b := out[p.Replicas[0]]
			if b == nil {
				b = &imbalance{}
				out[p.Replicas[0]] = b
			}
			b.preferred++
			if p.Leader != p.Replicas[0] {
				b.notLed = append(b.notLed, electResult{topic: name, partition: p.ID})
			}
		}
	}
	return out
}

// BalanceLeaders runs one check of the automatic leader rebalance (even
// when auto.leader.rebalance.enable is false: the caller decides) and
// returns how many preferred leaders it elected. Only the active
// controller does anything.
func (c *Controller) BalanceLeaders(ctx context.Context) int {
	c.lock()
	defer c.unlockNoWait()
	if c.activeLocked() != nil {
		return 0
	}
	im := c.image()
	pct := c.cfg.Cluster.LeaderImbalancePerBrokerPercentage
	var results []electResult
	byBroker := leaderImbalance(im)
	for _, id := range slices.Sorted(maps.Keys(byBroker)) {
		b := byBroker[id]
		// ratio > pct/100, in integers.
		if len(b.notLed)*100 <= pct*b.preferred || !isActive(im, id) {
			continue
		}
		n := len(results)
		for _, r := range b.notLed {
			t := im.Topics[r.topic]
			p := &t.Partitions[r.partition]
			if p.Reassigning() {
				// A move decides its own leader when it completes (Kafka's
				// rebalance skips partitions being reassigned too).
				continue
			}
			rec := preferredChange(t.ID, p, func(r int32) bool { return isActive(im, r) })
			// Only a move to the preferred replica: the check must not
			// move leaders elsewhere.
			if rec == nil || *rec.Leader != id {
				continue
			}
			r.rec = rec
			results = append(results, r)
		}
		if len(results) > n {
			c.logger.Info("leader imbalance above leader.imbalance.per.broker.percentage: electing preferred leaders", "node", id,
				"not_led", len(b.notLed), "preferred", b.preferred, "percentage", pct, "electing", len(results)-n)
		}
	}
	if len(results) == 0 {
		return 0
	}
	c.commitElectionsLocked(ctx, results, "auto leader rebalance")
	n := 0
	for _, r := range results {
		if r.err == nil {
			n++
		}
	}
	return n
}

// LeaderRebalancer runs BalanceLeaders every
// leader.imbalance.check.interval.seconds on one goroutine, owned by
// the LeaderRebalancer: Close stops it and waits for it.
type LeaderRebalancer struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// StartLeaderRebalance starts the automatic leader rebalance when
// auto.leader.rebalance.enable is true; the returned LeaderRebalancer
// (nil when disabled; Close accepts nil) must be closed before the
// quorum is.
func (c *Controller) StartLeaderRebalance() *LeaderRebalancer {
	if !c.cfg.Cluster.AutoLeaderRebalance {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &LeaderRebalancer{cancel: cancel, done: make(chan struct{})}
	go c.rebalanceLoop(ctx, r.done, c.cfg.Cluster.LeaderImbalanceCheckInterval)
	return r
}

// Close stops the rebalance loop, cancelling a check in progress, and
// waits until it has returned.
func (r *LeaderRebalancer) Close() {
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
}

// rebalanceLoop checks every interval until ctx ends; a check is
// bounded by the interval (and by ctx), and waits for no lock between
// checks.
func (c *Controller) rebalanceLoop(ctx context.Context, done chan<- struct{}, interval time.Duration) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !c.Active() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, min(interval, 30*time.Second))
		if n := c.BalanceLeaders(cctx); n > 0 {
			c.logger.Info("auto leader rebalance: preferred leaders elected", "partitions", n)
		}
		cancel()
	}
}
