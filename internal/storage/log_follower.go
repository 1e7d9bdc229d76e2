package storage

import (
	"errors"
	"fmt"
	"math"

	"samsa/internal/record"
)

// AppendAsFollower stores batches fetched from the leader byte for byte
// (Kafka's UnifiedLog.appendAsFollower): no offset assignment, no header
// rewrite; the offsets and partition leader epochs are the leader's.
//
// Checks, all before anything is stored: every batch is whole, magic 2
// (ErrUnsupportedMagic), CRC-32C (ErrCorruptMessage); base offsets
// increase and the first is at or past LogEndOffset, else
// ErrNotContiguous. A first base offset past the log end is accepted, as
// in Kafka: a compacted leader has gaps. One exception, Kafka's
// Partition.appendRecordsToFollowerOrFutureReplica: on an empty log
// (log start = log end) a first batch straddling the log end (the
// leader's log start fell inside a batch, after DeleteRecords) restarts
// the log at that batch's base offset; the log start offset stays where it
// was. max.message.bytes is not applied (the leader accepted the batch;
// Kafka's ignoreRecordSize), but a batch larger than segment.bytes is
// ErrMessageTooLarge (RecordBatchTooLargeException). Empty records are a
// no-op; so is a partial batch at the end (a fetch cut by its size
// limit), which is ignored as Kafka's batch iterator ignores it.
//
// Effects: for each batch whose partition leader epoch differs from the
// latest cached one, the epoch starts at its base offset
// (LeaderEpochFileCache.assign, leader-epoch-checkpoint written first);
// producer state and transactions advance as recovery replays them
// (Kafka's AppendOrigin.REPLICATION: no epoch, sequence or coordinator
// fencing, no duplicate detection; markers close transactions and abort
// entries go to the transaction index of the segment holding them); the
// active segment rolls under the leader's rules, batch by batch, so a
// copy made batch by batch rolls where the leader rolled; flush.messages
// applies (group commit); Changed() waiters wake. The high watermark does
// NOT move: the caller sets it from the leader's. A full disk or an I/O
// error behaves as for a leader append (the partial write is cut); when a
// request spans a roll, the part before a failure stays appended.
func (l *Log) AppendAsFollower(records []byte) (AppendInfo, error) {
	cfg := l.config()
	var stack [8]batchRef
	refs := stack[:0]
	pos := 0
	prevNext := int64(math.MinInt64)
	var err error
	for rest := records; len(rest) > 0; {
		var batch []byte
		var h record.Header
		if batch, _, rest, err = record.Next(rest); err != nil {
			if errors.Is(err, record.ErrTruncated) {
				// A partial last batch (a fetch cut by its size limit) is
				// not an error: it is left for the next fetch, as Kafka's
				// batch iterator does.
				err = nil
			}
			break
		}
		if h, err = record.Validate(batch); err != nil {
			break
		}
		if int64(len(batch)) > cfg.SegmentBytes {
			err = fmt.Errorf("%w: batch of %d bytes > segment.bytes %d", ErrMessageTooLarge, len(batch), cfg.SegmentBytes)
			break
		}
		if h.BaseOffset < 0 || h.BaseOffset < prevNext || h.NextOffset() <= h.BaseOffset {
			err = fmt.Errorf("%w: batch at offset %d after offset %d", ErrNotContiguous, h.BaseOffset, prevNext-1)
			break
		}
		refs = append(refs, batchRef{pos, h})
		pos += len(batch)
		prevNext = h.NextOffset()
	}
	switch {
	case err != nil:
		return AppendInfo{}, batchErr(err)
	case len(refs) == 0:
		l.mu.Lock()
		defer l.mu.Unlock()
		return AppendInfo{FirstOffset: -1, LastOffset: -1, LogAppendTime: -1, LogStartOffset: l.mu.logStartOffset}, l.stateErrLocked()
	}

	l.appendMu.Lock()
	lso, flushTo, restarted, err := l.appendFollowerLocked(records, refs, cfg)
	l.appendMu.Unlock()
	if err != nil {
		return AppendInfo{}, err
	}
	if restarted {
		if err := l.checkpointAfterTruncation(); err != nil {
			return AppendInfo{}, err
		}
	}
	if flushTo >= 0 {
		if err := l.flushTo(flushTo); err != nil {
			return AppendInfo{}, err
		}
	}
	return AppendInfo{
		FirstOffset: refs[0].h.BaseOffset, LastOffset: refs[len(refs)-1].h.LastOffset(),
		LogAppendTime: -1, LogStartOffset: lso,
	}, nil
}

// appendFollowerLocked is AppendAsFollower's serialized part. restarted:
// the log was restarted at the first batch's base (checkpoints must be
// written). Caller holds appendMu.
func (l *Log) appendFollowerLocked(records []byte, refs []batchRef, cfg *Config) (lso, flushTo int64, restarted bool, err error) {
	leo, _, _, err := l.beginAppendLocked()
	if err != nil {
		return 0, -1, false, err
	}
	first := &refs[0].h
	if first.BaseOffset < leo {
		l.mu.Lock()
		start := l.mu.logStartOffset
		l.mu.Unlock()
		if start != leo || first.LastOffset() < leo {
			return 0, -1, false, fmt.Errorf("%w: first offset %d < log end offset %d", ErrNotContiguous, first.BaseOffset, leo)
		}
		l.m.logger.Info("follower append straddles the log start; restarting the log at its batch",
			"partition", l.name(), "first_offset", first.BaseOffset, "log_start_offset", start)
		if err := l.truncateFullyLocked(first.BaseOffset); err != nil {
			return 0, -1, false, err
		}
		defer func() {
			l.mu.Lock()
			l.mu.logStartOffset = min(max(l.mu.logStartOffset, start), l.mu.leo)
			l.mu.hw = max(l.mu.hw, l.mu.logStartOffset)
			lso = l.mu.logStartOffset
			l.mu.Unlock()
		}()
		restarted = true
	}
	if err := l.assignFollowerEpochsLocked(refs); err != nil {
		return 0, -1, restarted, err
	}
	flushTo = -1
	for start := 0; start < len(refs); {
		leo, active, activeSize, err := l.beginAppendLocked()
		if err != nil {
			return 0, -1, restarted, err
		}
		// The run of batches written at once: those that fit the active
		// segment (the first alone when it does not: the write step
		// rolls for it), so rolls fall between the same batches as on
		// a leader appending them one by one.
		end, size := start+1, int64(refs[start].h.Size())
		for end < len(refs) {
			n := size + int64(refs[end].h.Size())
			if activeSize+n > cfg.SegmentBytes || activeSize+n > math.MaxInt32 ||
				refs[end].h.LastOffset()-active.base > math.MaxInt32 {
				break
			}
			size, end = n, end+1
		}
		run := refs[start:end]
		base := run[0].pos
		for i := range run {
			run[i].pos -= base
		}
		recs := records[base : base+int(size)]
		w := appendWrite{records: recs, refs: run, leo: leo, next: run[len(run)-1].h.NextOffset()}
		for i := range run {
			w.count += int64(run[i].h.RecordCount)
		}
		// recs, not w.records: escape analysis treats w as a whole, and
		// the marker decoder's argument escapes.
		w.pending, w.txn.touched, w.completed, w.aborts = l.followerProducerStateLocked(recs, run)
		var ft int64
		if lso, ft, err = l.writeAppendLocked(&w, active, activeSize, cfg, l.m.now()); err != nil {
			return 0, -1, restarted, err
		}
		flushTo = max(flushTo, ft)
		start = end
	}
	return lso, flushTo, restarted, nil
}

// assignFollowerEpochsLocked applies each batch's partition leader epoch
// to the epoch cache as Kafka's LeaderEpochFileCache.assign does: an
// epoch other than the latest (or the latest starting earlier) starts at
// the batch's base offset, after removing the entries it contradicts
// (epoch >= it, or starting at or after its offset). Negative epochs
// (batches never stamped by a leader) are skipped. The checkpoint is
// written once, before the data. Caller holds appendMu.
func (l *Log) assignFollowerEpochsLocked(refs []batchRef) error {
	l.mu.Lock()
	es := l.mu.epochs
	changed := false
	for i := range refs {
		h := &refs[i].h
		e := epochEntry{h.PartitionLeaderEpoch, h.BaseOffset}
		if e.epoch < 0 {
			continue
		}
		if n := len(es); n > 0 && es[n-1].epoch == e.epoch && es[n-1].startOffset <= e.startOffset {
			continue
		}
		if !changed {
			es = append([]epochEntry(nil), es...) // readers may hold the old slice
			changed = true
		}
		for n := len(es); n > 0 && (es[n-1].epoch >= e.epoch || es[n-1].startOffset >= e.startOffset); n-- {
			es = es[:n-1]
		}
		es = append(es, e)
	}
	if changed {
		l.mu.epochs = es
	}
	l.mu.Unlock()
	if !changed {
		return nil
	}
	return l.writeEpochsLocked(es)
}

// followerProducerStateLocked works out the producer and transaction
// state after the batches refs of records, as recovery replays them
// (producerState.apply; Kafka's AppendOrigin.REPLICATION): no checks.
// Each marker's abort entry gets the last stable offset of that moment
// (the transactions open right after the marker, other producers'),
// computed over a copy of the open transactions updated batch by batch.
// Caller holds appendMu.
func (l *Log) followerProducerStateLocked(records []byte, refs []batchRef) (pending map[int64]*producerEntry, touched bool, completed []completedTxn, aborts []abortedEntry) {
	var ongoing map[int64]int64 // copy of l.mu.ongoing, made on the first transactional batch
	for i := range refs {
		h := &refs[i].h
		if h.ProducerID < 0 {
			continue
		}
		e, isPending := pending[h.ProducerID]
		if !isPending {
			if e = l.producers.entries[h.ProducerID]; e == nil {
				e = newProducerEntry(h.ProducerEpoch)
			} else {
				e = e.clone()
			}
			if pending == nil {
				pending = make(map[int64]*producerEntry, 1)
			}
			pending[h.ProducerID] = e
		}
		e.update(h, h.BaseOffset)
		if !h.Transactional() && !h.Control() && e.txnFirst < 0 {
			continue
		}
		touched = true
		if ongoing == nil {
			// Read without mu: it only changes under appendMu, held.
			ongoing = make(map[int64]int64, len(l.mu.ongoing)+1)
			for id, first := range l.mu.ongoing {
				ongoing[id] = first
			}
		}
		switch {
		case h.Control():
			b := records[refs[i].pos : refs[i].pos+h.Size()]
			m, err := record.ParseEndTxnMarkerBatch(b)
			if err != nil {
				l.m.logger.Warn("control batch without a transaction marker", "partition", l.name(), "offset", h.BaseOffset)
				continue
			}
			c, ok := e.endTxn(h.ProducerID, h.BaseOffset, m)
			if !ok {
				continue
			}
			completed = append(completed, c)
			if !c.commit {
				aborts = append(aborts, abortedEntryIn(ongoing, &c))
			}
			delete(ongoing, h.ProducerID)
		case h.Transactional():
			if e.txnFirst < 0 {
				e.txnFirst = h.BaseOffset
			}
			ongoing[h.ProducerID] = e.txnFirst
		}
	}
	return pending, touched, completed, aborts
}
