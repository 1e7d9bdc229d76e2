package replica

import (
	"errors"
	"fmt"

	"samsa/internal/storage"
)

// This file answers the offset questions of the api handlers that are
// not reads (ListOffsets, DescribeProducers, the metrics), so that no
// handler reaches into the partition's log.

// ListOffsets special timestamps (Kafka's ListOffsetsRequest constants).
const (
	LatestTimestamp        = -1
	EarliestTimestamp      = -2
	MaxTimestamp           = -3
	EarliestLocalTimestamp = -4
	LatestTieredTimestamp  = -5
	EarliestPendingUpload  = -6
)

// ErrInvalidTimestamp: a ListOffsets timestamp below -6 (INVALID_REQUEST
// in Kafka).
var ErrInvalidTimestamp = errors.New("replica: invalid ListOffsets timestamp")

// ListOffset answers one partition of ListOffsets as leader (Kafka's
// Partition.fetchOffsetForTimestamp): the offset and timestamp for ts, -1
// and -1 when there is none, with the leader epoch to report. Consumers
// (replicaID -1) see offsets below the high watermark, read_committed
// ones (isolation ReadCommitted) below the last stable offset; a follower
// (replicaID >= 0, its fetcher after OFFSET_OUT_OF_RANGE) sees the whole
// log. currentLeaderEpoch (-1: none) is checked as Fetch checks it.
func (p *Partition) ListOffset(ts int64, isolation int8, replicaID, currentLeaderEpoch int32) (offset, timestamp int64, leaderEpoch int32, err error) {
	st := p.state.Load()
	if err := checkEpoch(st, currentLeaderEpoch); err != nil {
		return -1, -1, -1, err
	}
	if !st.isLeader {
		return -1, -1, -1, p.notLeader(st)
	}
	l := p.log
	upper := l.HighWatermark()
	switch {
	case replicaID >= 0:
		upper = l.LogEndOffset()
	case isolation == ReadCommitted:
		upper = min(l.LastStableOffset(), upper)
	}
	offset, timestamp = -1, -1
	switch ts {
	case LatestTimestamp:
		offset = upper
	case EarliestTimestamp, EarliestLocalTimestamp:
		offset = l.LogStartOffset()
	case MaxTimestamp:
		offset, timestamp = l.MaxTimestamp()
		if offset >= upper {
			offset, timestamp = -1, -1
		}
	case LatestTieredTimestamp, EarliestPendingUpload:
		// Nothing is tiered: no such offset.
	default:
		if ts < 0 {
			return -1, -1, -1, fmt.Errorf("%w: %d", ErrInvalidTimestamp, ts)
		}
		off, t, found, err := l.OffsetForTimestamp(ts)
		if err != nil {
			return -1, -1, -1, err
		}
		if found && off < upper {
			offset, timestamp = off, t
		}
	}
	return offset, timestamp, st.leaderEpoch, nil
}

// Offsets are a replica's log offsets at one moment (metrics, console).
type Offsets struct {
	LogStart, HighWatermark, LastStable, LogEnd int64
}

// Offsets returns the replica's log offsets (any role).
func (p *Partition) Offsets() Offsets {
	l := p.log
	return Offsets{LogStart: l.LogStartOffset(), HighWatermark: l.HighWatermark(), LastStable: l.LastStableOffset(), LogEnd: l.LogEndOffset()}
}

// OngoingTransactions lists the producers with a transaction open in the
// partition (DescribeProducers), as leader.
func (p *Partition) OngoingTransactions() ([]storage.OngoingTxn, error) {
	if st := p.state.Load(); !st.isLeader {
		return nil, p.notLeader(st)
	}
	return p.log.OngoingTransactions(), nil
}

// ReadLocal reads whole batches of the local log from offset up to its
// end, whatever the role (Kafka's FetchIsolation.LOG_END): coordinators
// replay their partitions with it when they load.
func (p *Partition) ReadLocal(offset int64, maxBytes int32) ([]byte, error) {
	return p.log.Read(offset, maxBytes, p.log.LogEndOffset(), true)
}
