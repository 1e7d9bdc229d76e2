package sim

import (
	"fmt"
	"slices"
	"strconv"

	"samsa/internal/record"
	"samsa/internal/replica"
	"samsa/internal/storage"
)

// The checker: mirrors of every log and the invariants checked after
// every step and after healing.

func (w *world) syncMirrors(b *broker) {
	for i := range w.o.partitions {
		w.syncMirror(b, int32(i))
	}
}

// syncMirror brings b's mirror of partition i up to date: cut to the
// log end offset when it shrank, then read what was appended. The
// harness syncs after every action that can change a log, so a
// truncation and an append never fall between two syncs (verifyMirrors
// checks it).
func (w *world) syncMirror(b *broker, i int32) {
	m := b.mirrors[i]
	p, err := b.rm.Replica(topicName, i)
	if err != nil {
		return
	}
	leo := p.LogEndOffset()
	if leo < int64(len(m.values)) {
		m.values = m.values[:leo]
		for len(m.batches) > 0 && m.batches[len(m.batches)-1].last >= leo {
			m.batches = m.batches[:len(m.batches)-1]
		}
		if end := m.end(); end < leo {
			m.values = m.values[:end]
		}
	}
	if err := readInto(p, m, leo); err != nil {
		w.violate("mirror", "broker %d p%d: %v", b.id, i, err)
	}
}

func (m *mirror) end() int64 {
	if len(m.batches) == 0 {
		return 0
	}
	return m.batches[len(m.batches)-1].last + 1
}

// readInto reads p's log from m's end to leo into m.
func readInto(p *replica.Partition, m *mirror, leo int64) error {
	for m.end() < leo {
		data, err := p.ReadLocal(m.end(), 64<<10)
		if err != nil {
			return err
		}
		if len(data) == 0 {
			return fmt.Errorf("no batch at %d below the log end offset %d", m.end(), leo)
		}
		err = record.Split(data, func(batch []byte, h record.Header) error {
			if h.BaseOffset != m.end() {
				return fmt.Errorf("batch at %d where %d was expected", h.BaseOffset, m.end())
			}
			m.batches = append(m.batches, batchInfo{base: h.BaseOffset, last: h.LastOffset(), epoch: h.PartitionLeaderEpoch, crc: h.CRC})
			return record.ForEachRecord(batch, func(_ *record.Header, r *record.Record) error {
				m.values = append(m.values, string(r.Value))
				return nil
			})
		})
		storage.ReleaseBuffer(data)
		if err != nil {
			return err
		}
	}
	return nil
}

// verifyMirrors rereads every live log from the start and compares it
// with its mirror.
func (w *world) verifyMirrors() {
	for _, b := range w.brokers {
		if !b.alive {
			continue
		}
		for i, m := range b.mirrors {
			p, err := b.rm.Replica(topicName, int32(i))
			if err != nil {
				continue
			}
			fresh := &mirror{}
			if err := readInto(p, fresh, p.LogEndOffset()); err != nil {
				w.violate("mirror", "broker %d p%d: %v", b.id, i, err)
				continue
			}
			if !slices.Equal(fresh.batches, m.batches) || !slices.Equal(fresh.values, m.values) {
				w.violate("mirror", "broker %d p%d: the mirror differs from the log (%d/%d batches)", b.id, i, len(m.batches), len(fresh.batches))
			}
		}
	}
}

// checkInvariants runs after every step.
//  1. Every acknowledged record is in the log of the partition's current
//     leader (the controller's), with the same value, when that broker
//     is up, and in the log of every live member of the controller's ISR
//     (the candidates of the next clean election).
//  2. On a leader that applied its epoch, the logs of its ISR members
//     equal its own below the high watermark: same batches (offsets,
//     epochs, CRCs), same records.
//  3. A leader's high watermark never goes back within a leader epoch.
//  4. The leader epoch a broker knows for a partition never goes back.
func (w *world) checkInvariants() {
	im := w.images[len(w.images)-1]
	t := im.Topics[topicName]
	for _, b := range w.brokers {
		if !b.alive {
			continue
		}
		for i := range t.Partitions {
			p, err := b.rm.Replica(topicName, int32(i))
			if err != nil {
				continue
			}
			k := [2]int32{b.id, int32(i)}
			if e, ok := w.viewEpoch[k]; ok && p.LeaderEpoch() < e {
				w.violate("epoch", "broker %d partition %d: leader epoch went back from %d to %d", b.id, i, e, p.LeaderEpoch())
			}
			w.viewEpoch[k] = p.LeaderEpoch()
		}
	}
	for i, mp := range t.Partitions {
		for _, id := range mp.ISR {
			if b := w.brokers[id-1]; b.alive {
				role := "ISR member"
				if id == mp.Leader {
					role = "leader"
				}
				if !w.hasAcked(b, i, fmt.Sprintf("%s %d (epoch %d)", role, id, mp.LeaderEpoch)) {
					return
				}
			}
		}
		if mp.Leader < 0 {
			continue
		}
		lb := w.brokers[mp.Leader-1]
		if !lb.alive {
			continue
		}
		lm := lb.mirrors[i]
		if !slices.Contains(mp.ISR, mp.Leader) && !w.hasAcked(lb, i, fmt.Sprintf("leader %d (epoch %d, not in the ISR)", lb.id, mp.LeaderEpoch)) {
			return
		}
		lp, err := lb.rm.Replica(topicName, int32(i))
		if err != nil || !lp.IsLeader() || lp.LeaderEpoch() != mp.LeaderEpoch || !lb.serving {
			continue
		}
		hw := lp.HighWatermark()
		k := hwKey{lb.id, int32(i), mp.LeaderEpoch}
		if prev, ok := w.hwSeen[k]; ok && hw < prev {
			w.violate("hw", "partition %d: leader %d's high watermark went back from %d to %d in epoch %d", i, lb.id, prev, hw, mp.LeaderEpoch)
		}
		w.hwSeen[k] = hw
		for _, id := range lp.ISR() {
			fb := w.brokers[id-1]
			if id == lb.id || !fb.alive {
				continue
			}
			if err := prefixUpTo(fb.mirrors[i], lm, hw); err != nil {
				w.violate("divergent", "partition %d: ISR member %d differs from leader %d (epoch %d, HW %d): %v", i, id, lb.id, mp.LeaderEpoch, hw, err)
			}
		}
	}
}

// hasAcked checks that b's log of partition i holds every acknowledged
// record; who names b in the violation.
func (w *world) hasAcked(b *broker, i int, who string) bool {
	m := b.mirrors[i]
	for off, v := range w.acked[i].values {
		if v == "" {
			continue
		}
		if off >= len(m.values) || m.values[off] != v {
			got := "nothing"
			if off < len(m.values) {
				got = strconv.Quote(m.values[off])
			}
			w.violate("lost", "partition %d: acknowledged offset %d (%q) is %s on %s (log end %d)", i, off, v, got, who, len(m.values))
			return false
		}
	}
	return true
}

// prefixUpTo checks that f holds exactly l's batches and records below hw.
func prefixUpTo(f, l *mirror, hw int64) error {
	if int64(len(f.values)) < hw {
		return fmt.Errorf("its log ends at %d, below the high watermark", len(f.values))
	}
	for k, lb := range l.batches {
		if lb.base >= hw {
			break
		}
		if k >= len(f.batches) || f.batches[k] != lb {
			var fb batchInfo
			if k < len(f.batches) {
				fb = f.batches[k]
			}
			return fmt.Errorf("batch %d: %+v, leader's %+v", k, fb, lb)
		}
	}
	for off := int64(0); off < hw; off++ {
		if f.values[off] != l.values[off] {
			return fmt.Errorf("offset %d: %q, leader's %q", off, f.values[off], l.values[off])
		}
	}
	return nil
}

// finalCheck runs after the healing phase: every partition has a leader
// and its whole assignment in the ISR, and every acknowledged record is
// in every replica.
func (w *world) finalCheck() {
	for i, mp := range w.images[len(w.images)-1].Topics[topicName].Partitions {
		if mp.Leader < 0 || len(mp.ISR) != len(mp.Replicas) {
			w.violate("liveness", "after healing: partition %d has leader %d, ISR %v of replicas %v", i, mp.Leader, mp.ISR, mp.Replicas)
		}
	}
	for _, b := range w.brokers {
		if !b.alive {
			w.violate("liveness", "broker %d is still down after healing", b.id)
			continue
		}
		for i, mp := range w.images[len(w.images)-1].Topics[topicName].Partitions {
			if !slices.Contains(mp.Replicas, b.id) {
				continue
			}
			m := b.mirrors[i]
			for off, v := range w.acked[i].values {
				if v != "" && (off >= len(m.values) || m.values[off] != v) {
					w.violate("lost", "after healing: partition %d offset %d (%q) missing or different on broker %d (log end %d)", i, off, v, b.id, len(m.values))
					return
				}
			}
		}
	}
}
