package sim

import (
	"context"
	"errors"
	"slices"
	"testing/synctest"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/replica"
)

// AlterPartition between the leaders and the controller: queued by the
// replica managers' ISRUpdater, delayed, dropped or answered by the
// harness.

// takeAlters moves newly queued AlterPartitions to held, in a
// deterministic order, each with its delay.
func (w *world) takeAlters() {
	synctest.Wait()
	w.mu.Lock()
	calls := w.alters
	w.alters = nil
	w.mu.Unlock()
	slices.SortFunc(calls, func(a, b *alterCall) int {
		if a.from != b.from {
			return int(a.from - b.from)
		}
		return int(a.req.Partition - b.req.Partition)
	})
	for _, c := range calls {
		c.due = w.step
		if !w.o.calm && w.rng.Intn(10) >= 6 {
			c.due = w.step + 1 + w.rng.Intn(30)
		}
		w.held = append(w.held, c)
	}
}

// processAlters answers the held AlterPartitions that are due: dropped
// when the sender cannot reach the controller (or by chance), otherwise
// sent to the controller, whose answer is sometimes lost.
func (w *world) processAlters() {
	w.takeAlters()
	var keep []*alterCall
	for _, c := range w.held {
		b := w.brokers[c.from-1]
		if c.ctx.Err() != nil || !b.alive || b.inc != c.inc {
			continue // its manager closed; the sender returned
		}
		if c.due > w.step {
			keep = append(keep, c)
			continue
		}
		ids := make([]int32, len(c.req.NewISR))
		for i, m := range c.req.NewISR {
			ids[i] = m.BrokerID
		}
		if !w.reachable(c.from, controllerNode) || w.chance(1, 20) {
			w.event("AlterPartition from %d p%d isr %v dropped", c.from, c.req.Partition, ids)
			w.stats["alters dropped"]++
			c.reply <- alterReply{err: errDropped}
			continue
		}
		res, err := w.sendAlter(c.req)
		w.captureImage()
		if err == nil && w.chance(1, 20) {
			w.event("AlterPartition from %d p%d isr %v: answer lost (%d)", c.from, c.req.Partition, ids, res.ErrorCode)
			w.stats["alter answers lost"]++
			err = errDropped
		} else {
			w.event("AlterPartition from %d p%d isr %v pepoch %d: %d pepoch %d isr %v", c.from, c.req.Partition, ids, c.req.PartitionEpoch, res.ErrorCode, res.PartitionEpoch, res.ISR)
			w.stats["alters answered"]++
		}
		c.reply <- alterReply{res: res, err: err}
	}
	w.held = keep
	synctest.Wait()
}

// sendAlter is the server's isrUpdater without the network: the request
// as AlterPartition v3 to the controller, the partition's answer back.
func (w *world) sendAlter(r replica.AlterISR) (replica.AlterISRResult, error) {
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version = 3
	req.BrokerID, req.BrokerEpoch = r.LeaderID, r.BrokerEpoch
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.TopicID, rt.Topic = r.TopicID, r.Topic
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = r.Partition, r.LeaderEpoch, r.PartitionEpoch
	for _, m := range r.NewISR {
		rp.NewISR = append(rp.NewISR, m.BrokerID)
		e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		e.BrokerID, e.BrokerEpoch = m.BrokerID, m.BrokerEpoch
		rp.NewEpochISR = append(rp.NewEpochISR, e)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := w.ctl.AlterPartition(context.Background(), req)
	if resp.ErrorCode != 0 {
		return replica.AlterISRResult{ErrorCode: resp.ErrorCode}, nil
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Partition == r.Partition {
				return replica.AlterISRResult{ErrorCode: p.ErrorCode, LeaderID: p.LeaderID, LeaderEpoch: p.LeaderEpoch,
					PartitionEpoch: p.PartitionEpoch, ISR: p.ISR}, nil
			}
		}
	}
	return replica.AlterISRResult{}, errors.New("sim: AlterPartition answer without the partition")
}
