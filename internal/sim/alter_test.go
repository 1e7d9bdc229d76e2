package sim

import (
	"context"
	"errors"
	"slices"
	"testing/synctest"

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
	req := r.Request()
	resp := w.ctl.AlterPartition(context.Background(), req)
	if res, ok := r.Result(resp); ok {
		return res, nil
	}
	return replica.AlterISRResult{}, errors.New("sim: AlterPartition answer without the partition")
}
