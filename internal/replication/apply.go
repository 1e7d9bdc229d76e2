package replication

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/record"
)

// applyLocked applies one partition's successful answer (ApplyAnswer:
// a truncation when the leader reports a diverging epoch, else an append
// of the fetched batches with the leader's high watermark and log start
// offset, ReplicaFetcherThread.processPartitionData), logs what happened
// and delays the partition when the answer could not be used. It reports
// whether records were appended.
func (ft *fetcher) applyLocked(ps *partitionState, s sentPartition, sp *kmsg.FetchResponseTopicPartition, now time.Time) bool {
	a, err := ApplyAnswer(ps.f, sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset, sp.RecordBatches, sp.HighWatermark, sp.LogStartOffset)
	d := sp.DivergingEpoch
	switch {
	case a.Diverged && a.TruncateTo < a.LogEndOffset:
		ft.logger.Info("replica fetch: truncating at the diverging epoch", "topic", ps.topic, "partition", ps.partition,
			"diverging_epoch", d.Epoch, "diverging_end_offset", d.EndOffset, "local_epoch", a.LocalEpoch, "local_end_offset", a.LocalEndOffset,
			"log_end_offset", a.LogEndOffset, "truncate_to", a.TruncateTo)
		if err != nil {
			ft.logger.Error("replica fetch: truncation failed", "topic", ps.topic, "partition", ps.partition, "offset", a.TruncateTo, "err", err)
			ft.delayLocked(ps, now)
		}
		return false
	case a.Diverged && (err != nil || a.DroppedEpochs):
		ft.logger.Info("replica fetch: dropping leader epochs with no records at the log end after a diverging epoch", "topic", ps.topic, "partition", ps.partition,
			"diverging_epoch", d.Epoch, "diverging_end_offset", d.EndOffset, "latest_epoch", ps.f.LatestEpoch(), "log_end_offset", a.LogEndOffset)
		if err != nil {
			ft.logger.Error("replica fetch: truncation failed", "topic", ps.topic, "partition", ps.partition, "offset", a.TruncateTo, "err", err)
			ft.delayLocked(ps, now)
		}
		return false
	case a.Diverged:
		// Nothing to cut: asking again at once would get the same
		// answer, so wait (a correct leader does not answer this).
		ft.logger.Warn("replica fetch: diverging epoch that truncates nothing", "topic", ps.topic, "partition", ps.partition,
			"diverging_epoch", d.Epoch, "diverging_end_offset", d.EndOffset, "local_epoch", a.LocalEpoch, "local_end_offset", a.LocalEndOffset, "log_end_offset", a.LogEndOffset)
		ft.delayLocked(ps, now)
		return false
	case a.NoWholeBatch:
		// Not even one whole batch: the leader cut its first batch,
		// which KIP-74 leaders never do; retrying alike would not help
		// before the limits change.
		ft.logger.Warn("replica fetch: no whole batch in the answer", "topic", ps.topic, "partition", ps.partition,
			"offset", s.fetchOffset, "bytes", len(sp.RecordBatches), "replica.fetch.max.bytes", ft.opts.FetchMaxBytes)
		ft.delayLocked(ps, now)
		return false
	case err != nil:
		// Kafka delays a partition with corrupt records and fails it on
		// a storage error; both wait here for the next try.
		ft.logger.Error("replica fetch: append failed", "topic", ps.topic, "partition", ps.partition,
			"offset", s.fetchOffset, "bytes", a.Appended, "err", err)
		ft.delayLocked(ps, now)
		return false
	}
	ps.lag = max(0, sp.HighWatermark-ps.f.LogEndOffset())
	ps.inSync = ps.lag == 0
	ft.bytes.Add(int64(a.Appended))
	if q := ft.opts.Quota; q != nil && a.Appended > 0 && q.Throttled(ps.topic, ps.partition) {
		q.Record(a.Appended)
	}
	return a.Appended > 0
}

// Applied is what ApplyAnswer did with one partition's answer.
type Applied struct {
	// Diverged: the answer carried a diverging epoch. The log was cut at
	// TruncateTo when that is below LogEndOffset (its end before), else
	// nothing was done; LocalEpoch and LocalEndOffset are the follower's
	// own EndOffsetForEpoch of the diverging epoch.
	Diverged       bool
	LogEndOffset   int64
	TruncateTo     int64
	LocalEpoch     int32
	LocalEndOffset int64
	// DroppedEpochs: nothing was cut from the log, but leader-epoch
	// entries with no records at its end were dropped (the next fetch
	// names another last fetched epoch).
	DroppedEpochs bool
	// NoWholeBatch: records held no whole batch; nothing was done.
	NoWholeBatch bool
	// Appended is the number of bytes of whole batches given to
	// AppendAsFollower (0: only the high watermark and log start moved).
	Appended int
}

// ApplyAnswer applies one partition's successful fetch answer to f, as
// the fetcher does (ReplicaFetcherThread.processPartitionData and
// AbstractFetcherThread's truncation on a diverging epoch, KIP-595): a
// diverging epoch (divergingEpoch, divergingEndOffset not both -1)
// truncates f to DivergenceTruncationOffset and appends nothing; else the
// leading whole batches of records are appended byte-for-byte with the
// leader's high watermark and log start offset. The error is the
// truncation's or the append's. Exported for the deterministic
// simulation (internal/sim), which plays the fetcher without sockets.
func ApplyAnswer(f Follower, divergingEpoch int32, divergingEndOffset int64, records []byte, leaderHW, leaderLogStart int64) (Applied, error) {
	if divergingEpoch != -1 || divergingEndOffset != -1 {
		// The records of this answer are not appended (the leader
		// sends none with a diverging epoch); the next fetch starts at
		// the truncated end.
		a := Applied{Diverged: true, LogEndOffset: f.LogEndOffset()}
		a.LocalEpoch, a.LocalEndOffset = f.EndOffsetForEpoch(divergingEpoch)
		a.TruncateTo = DivergenceTruncationOffset(divergingEpoch, divergingEndOffset, a.LogEndOffset, a.LocalEpoch, a.LocalEndOffset)
		if a.TruncateTo < a.LogEndOffset {
			return a, f.TruncateTo(a.TruncateTo)
		}
		// No record to cut, but the epoch cache may end with an epoch
		// this broker assigned as leader and appended nothing in before
		// losing leadership: the leader does not know it, so every
		// fetch naming it diverges again, forever. Truncating at the
		// log end drops such entries (storage.Log.TruncateTo, as
		// Kafka's UnifiedLog.truncateTo always truncates the epoch
		// cache), and the next fetch names an epoch the leader knows.
		before := f.LatestEpoch()
		err := f.TruncateTo(a.LogEndOffset)
		a.DroppedEpochs = err == nil && f.LatestEpoch() != before
		return a, err
	}
	whole, partial := wholeBatches(records)
	if len(whole) == 0 && partial {
		return Applied{NoWholeBatch: true}, nil
	}
	return Applied{Appended: len(whole)}, f.AppendAsFollower(whole, leaderHW, leaderLogStart)
}

// DivergenceTruncationOffset is where a follower whose log ends at leo
// truncates when the leader answers a fetch with the diverging epoch
// (epoch, endOffset), given the follower's own end offset for that epoch
// (found, foundEnd from Follower.EndOffsetForEpoch), as Kafka's
// AbstractFetcherThread.getOffsetTruncationState:
//   - the leader's end offset unknown (-1): no truncation (leo);
//   - the leader's epoch unknown (-1), or the follower knows no epoch up
//     to it: the leader's end offset;
//   - the follower's largest epoch <= epoch is an older one: that
//     epoch's end (the next fetch, with the new last fetched epoch, asks
//     the leader again);
//   - else the smaller of both ends.
//
// The result is never above leo.
func DivergenceTruncationOffset(epoch int32, endOffset, leo int64, found int32, foundEnd int64) int64 {
	switch {
	case endOffset < 0:
		return leo
	case epoch < 0, found < 0, foundEnd < 0:
		return min(endOffset, leo)
	case found != epoch:
		return min(foundEnd, leo)
	default:
		return min(foundEnd, endOffset, leo)
	}
}

// wholeBatches returns the leading whole batches of b, and whether a
// partial batch was cut from its end (a leader may end a response inside
// a batch when a limit cuts it). Bytes that do not parse as a batch
// header are kept for the storage to reject.
func wholeBatches(b []byte) (whole []byte, partial bool) {
	n := 0
	for rest := b; len(rest) > 0; {
		_, _, next, err := record.Next(rest)
		if err != nil {
			if errors.Is(err, record.ErrTruncated) {
				return b[:n], true
			}
			return b, false
		}
		n = len(b) - len(next)
		rest = next
	}
	return b, false
}

// moveToEndLocked moves tps to the end of the request order.
func (ft *fetcher) moveToEndLocked(tps []TopicPartition) {
	if len(tps) == 0 {
		return
	}
	moved := make(map[TopicPartition]bool, len(tps))
	for _, tp := range tps {
		moved[tp] = true
	}
	kept := ft.order[:0]
	for _, tp := range ft.order {
		if !moved[tp] {
			kept = append(kept, tp)
		}
	}
	for _, tp := range tps {
		if ft.parts[tp] != nil {
			kept = append(kept, tp)
		}
	}
	ft.order = kept
}

func (ft *fetcher) updateMaxLagLocked() {
	var lag int64
	for _, ps := range ft.parts {
		lag = max(lag, ps.lag)
	}
	ft.maxLag.Store(lag)
}

// handleOutOfRange resets the partitions the leader answered
// OFFSET_OUT_OF_RANGE, as AbstractFetcherThread.fetchOffsetAndTruncate:
// when the leader's end offset is below ours (an unclean election),
// truncate to it; else, when the leader's log start offset is above our
// end (we were away while it deleted), truncate fully and start at it.
// Otherwise keep our log and retry after the backoff (Kafka retries at
// once; the delay keeps an inconsistent leader from making us spin).
// The ListOffsets requests are sent without mu; the answers are applied
// only to partitions still in the state they were asked for.
func (ft *fetcher) handleOutOfRange(addr string, oor []outOfRange) {
	latest, err := ft.listOffsets(addr, oor, -1)
	if err != nil {
		ft.failOutOfRange(oor, err)
		return
	}
	var needStart []outOfRange
	now := time.Now()
	ft.mu.Lock()
	for _, o := range oor {
		ps := ft.stillLocked(o)
		if ps == nil {
			continue
		}
		r := latest[o.tp]
		if r.err != nil {
			ft.listOffsetsErrorLocked(ps, r.err, now)
			continue
		}
		leo := ps.f.LogEndOffset()
		if r.offset < leo {
			ft.logger.Warn("replica fetch: the leader's log ends below ours; truncating to it (unclean leader election?)",
				"topic", ps.topic, "partition", ps.partition, "log_end_offset", leo, "leader_end_offset", r.offset)
			if err := ps.f.TruncateTo(r.offset); err != nil {
				ft.logger.Error("replica fetch: truncation failed", "topic", ps.topic, "partition", ps.partition, "offset", r.offset, "err", err)
				ft.delayLocked(ps, now)
			}
			ps.lag = 0
			continue
		}
		o.leaderEnd = r.offset
		needStart = append(needStart, o)
	}
	ft.updateMaxLagLocked()
	ft.mu.Unlock()
	if len(needStart) == 0 {
		return
	}
	earliest, err := ft.listOffsets(addr, needStart, -2)
	if err != nil {
		ft.failOutOfRange(needStart, err)
		return
	}
	now = time.Now()
	ft.mu.Lock()
	defer ft.mu.Unlock()
	for _, o := range needStart {
		ps := ft.stillLocked(o)
		if ps == nil {
			continue
		}
		r := earliest[o.tp]
		if r.err != nil {
			ft.listOffsetsErrorLocked(ps, r.err, now)
			continue
		}
		leo := ps.f.LogEndOffset()
		if r.offset > leo {
			ft.logger.Warn("replica fetch: the leader's log starts past our end; truncating fully",
				"topic", ps.topic, "partition", ps.partition, "log_end_offset", leo, "leader_start_offset", r.offset)
			if err := ps.f.TruncateFullyAndStartAt(r.offset); err != nil {
				ft.logger.Error("replica fetch: full truncation failed", "topic", ps.topic, "partition", ps.partition, "offset", r.offset, "err", err)
				ft.delayLocked(ps, now)
			}
			ps.lag = max(0, o.leaderEnd-r.offset)
			continue
		}
		ft.logger.Info("replica fetch: offset out of range though the leader's log covers ours; retrying",
			"topic", ps.topic, "partition", ps.partition, "log_end_offset", leo, "leader_start_offset", r.offset, "leader_end_offset", o.leaderEnd)
		ps.lag = max(0, o.leaderEnd-leo)
		ft.delayLocked(ps, now)
	}
	ft.updateMaxLagLocked()
}

// stillLocked returns the state of o's partition if it is still the one
// that was fetched.
func (ft *fetcher) stillLocked(o outOfRange) *partitionState {
	ps := ft.parts[o.tp]
	if ps == nil || ps.gen != o.gen || ps.f.LogEndOffset() != o.fetchOffset {
		return nil
	}
	return ps
}

func (ft *fetcher) listOffsetsErrorLocked(ps *partitionState, err error, now time.Time) {
	ft.logger.Info("replica fetch: could not get the leader's offsets", "topic", ps.topic, "partition", ps.partition, "err", err)
	ft.delayLocked(ps, now)
}

func (ft *fetcher) failOutOfRange(oor []outOfRange, err error) {
	if ft.ctx.Err() != nil {
		return
	}
	ft.logger.Warn("replica fetch: ListOffsets to the leader failed", "partitions", len(oor), "err", err)
	now := time.Now()
	ft.mu.Lock()
	defer ft.mu.Unlock()
	for _, o := range oor {
		if ps := ft.stillLocked(o); ps != nil {
			ft.delayLocked(ps, now)
		}
	}
}

// offsetResult is the leader's answer for one partition.
type offsetResult struct {
	offset int64
	err    error
}

// listOffsets asks the leader, as replica BrokerID, the offset at
// timestamp (-1 latest: its log end offset for a replica; -2 earliest:
// its log start offset) of the partitions of oor
// (ReplicaFetcherThread's leader.fetchLatestOffset/fetchEarliestOffset).
func (ft *fetcher) listOffsets(addr string, oor []outOfRange, timestamp int64) (map[TopicPartition]offsetResult, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = ft.opts.BrokerID
	req.IsolationLevel = 0
	index := map[string]int{}
	for _, o := range oor {
		i, ok := index[o.topic]
		if !ok {
			i = len(req.Topics)
			index[o.topic] = i
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = o.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = o.partition
		rp.CurrentLeaderEpoch = o.currentLeaderEpoch
		rp.Timestamp = timestamp
		rp.MaxNumOffsets = 1 // v0
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	ctx, cancel := context.WithTimeout(ft.ctx, ft.opts.SocketTimeout)
	defer cancel()
	resp, err := ft.client.Request(ctx, addr, req)
	if err != nil {
		return nil, err
	}
	lr, ok := resp.(*kmsg.ListOffsetsResponse)
	if !ok {
		return nil, fmt.Errorf("replication: list offsets answered with %T", resp)
	}
	out := make(map[TopicPartition]offsetResult, len(oor))
	for _, rt := range lr.Topics {
		for _, rp := range rt.Partitions {
			r := offsetResult{offset: rp.Offset, err: kerr.ErrorForCode(rp.ErrorCode)}
			if lr.GetVersion() == 0 {
				r.offset = -1
				if len(rp.OldStyleOffsets) > 0 {
					r.offset = rp.OldStyleOffsets[0]
				}
			}
			if r.err == nil && r.offset < 0 {
				r.err = fmt.Errorf("replication: leader answered offset %d", r.offset)
			}
			out[TopicPartition{rt.Topic, rp.Partition}] = r
		}
	}
	for _, o := range oor {
		if _, ok := out[o.tp]; !ok {
			out[o.tp] = offsetResult{err: errors.New("replication: partition missing from the leader's answer")}
		}
	}
	return out, nil
}
