package storage

import (
	"path/filepath"
	"sort"
)

// Leader-epoch cache queries and truncation used by replication
// (KIP-101/279): the cache itself is Log.mu.epochs, persisted in
// leader-epoch-checkpoint.

// UndefinedEpoch and UndefinedEpochOffset are what EndOffsetForEpoch
// answers when it knows no end offset (Kafka's
// LeaderEpochFileCache UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET).
const (
	UndefinedEpoch       int32 = -1
	UndefinedEpochOffset int64 = -1
)

// EndOffsetForEpoch answers OffsetForLeaderEpoch for this log, exactly as
// Kafka's LeaderEpochFileCache.endOffsetFor:
//
//   - epoch is UndefinedEpoch (-1): (-1, -1);
//   - epoch is the latest epoch in the cache: (epoch, log end offset);
//   - otherwise, with E the first cached epoch greater than epoch:
//   - no such E (epoch above the latest, or an empty cache): (-1, -1);
//   - epoch below every cached epoch: (epoch, start offset of E) — the
//     requested epoch itself, not -1: its data was deleted and the
//     follower must replicate from E's start (Kafka's comment: "This may
//     be inaccurate ... the data has already been removed");
//   - else the largest cached epoch <= epoch and the start offset of E.
//
// The cache is read from memory; the answer does not depend on whether
// the log is online.
func (l *Log) EndOffsetForEpoch(epoch int32) (foundEpoch int32, endOffset int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return endOffsetFor(l.mu.epochs, epoch, l.mu.leo)
}

// endOffsetFor is EndOffsetForEpoch over a cache es (ascending epochs).
func endOffsetFor(es []epochEntry, epoch int32, leo int64) (int32, int64) {
	if epoch == UndefinedEpoch {
		return UndefinedEpoch, UndefinedEpochOffset
	}
	n := len(es)
	if n > 0 && es[n-1].epoch == epoch {
		return epoch, leo
	}
	higher := sort.Search(n, func(i int) bool { return es[i].epoch > epoch })
	switch higher {
	case n:
		return UndefinedEpoch, UndefinedEpochOffset
	case 0:
		return epoch, es[0].startOffset
	}
	return es[higher-1].epoch, es[higher].startOffset
}

// truncateEpochsFromEndLocked drops the leader-epoch entries that start
// at or after end and rewrites leader-epoch-checkpoint if any went
// (Kafka's LeaderEpochFileCache.truncateFromEnd; Kafka flushes the file
// asynchronously, we write it before returning). Caller holds appendMu.
func (l *Log) truncateEpochsFromEndLocked(end int64) error {
	l.mu.Lock()
	es := l.mu.epochs
	i := len(es)
	for i > 0 && es[i-1].startOffset >= end {
		i--
	}
	if i == len(es) {
		l.mu.Unlock()
		return nil
	}
	kept := append([]epochEntry(nil), es[:i]...)
	l.mu.epochs = kept
	l.mu.Unlock()
	return l.writeEpochsLocked(kept)
}

// writeEpochsLocked persists the epoch cache es (tmp file, fsync,
// rename, directory fsync). Caller holds appendMu.
func (l *Log) writeEpochsLocked(es []epochEntry) error {
	if err := writeFileAtomic(filepath.Join(l.dirPath(), leaderEpochFile), encodeLeaderEpochCheckpoint(es), true); err != nil {
		return l.writeFailure("write leader-epoch-checkpoint", err)
	}
	return nil
}
