// Package coordinator is the scaffolding shared by the coordinators that
// live on an internal topic's partitions (internal/group on
// __consumer_offsets, internal/txn on __transaction_state): the partition
// they write to, Kafka's key-to-partition hash, the life cycle of a
// coordinated partition, the replay of a partition at load and the append
// of one batch.
//
// It imports neither of them: each coordinator keeps its own state and
// its own mapping of append errors to Kafka codes.
package coordinator

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/internal/record"
)

// Partition is one partition of an internal topic that this node leads.
// The server implements it on top of the replicated partition log.
type Partition interface {
	// Append appends one record batch (built with record.Build,
	// uncompressed) and returns once it is committed (acks=all), with its
	// base offset.
	Append(ctx context.Context, batch []byte) (baseOffset int64, err error)
	// Read returns whole batches starting at the batch holding offset, at
	// most maxBytes but at least one batch, up to the log end offset
	// (records not yet replicated included: see Replay); nil at the end.
	Read(offset int64, maxBytes int32) ([]byte, error)
	LogStartOffset() int64
	// LogEndOffset is the offset the next append gets.
	LogEndOffset() int64
}

// PartitionFor is Kafka's mapping of a key (group id, transactional id) to
// its partition of an internal topic with n partitions:
// Utils.abs(key.hashCode()) % n, where hashCode is Java's String.hashCode
// over UTF-16 code units and Utils.abs maps MinInt32 to 0. n <= 0 gives 0.
func PartitionFor(key string, n int32) int32 {
	if n <= 0 {
		return 0
	}
	var h int32
	for _, u := range utf16.Encode([]rune(key)) {
		h = 31*h + int32(u)
	}
	switch {
	case h == -1<<31:
		h = 0
	case h < 0:
		h = -h
	}
	return h % n
}

// State is the life cycle of a coordinated partition.
type State int8

const (
	Loading  State = iota // replaying: requests answer COORDINATOR_LOAD_IN_PROGRESS
	Loaded                // serving
	Failed                // the replay failed: COORDINATOR_NOT_AVAILABLE
	Unloaded              // no longer ours: NOT_COORDINATOR
)

// Err is the code a request for a key of a partition in state s answers;
// nil when the partition is Loaded.
func (s State) Err() *kerr.Error {
	switch s {
	case Loaded:
		return nil
	case Loading:
		return kerr.CoordinatorLoadInProgress
	case Failed:
		return kerr.CoordinatorNotAvailable
	default:
		return kerr.NotCoordinator
	}
}

// ErrNotCoordinator is what Append returns when the partition's context
// ended (it was unloaded, or the coordinator closed) under the append.
var ErrNotCoordinator = errors.New("coordinator: not coordinator")

// Append builds recs into one batch with opts and appends it to part,
// returning its base offset: record i of recs is at base offset + i. The
// append stops when ctx (the request's) or partCtx (the partition's) ends;
// in the second case the error is ErrNotCoordinator.
func Append(ctx, partCtx context.Context, part Partition, opts record.BuildOptions, recs []record.Record) (int64, error) {
	batch, err := record.Build(opts, recs)
	if err != nil {
		return 0, fmt.Errorf("build batch: %w", err)
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(partCtx, cancel)
	defer stop()
	base, err := part.Append(actx, batch)
	if err != nil {
		if partCtx.Err() != nil {
			return 0, ErrNotCoordinator
		}
		return 0, err
	}
	return base, nil
}

// ReadBytes is how much one Read of Replay asks for.
const ReadBytes = 1 << 20

// Replay reads part from its log start offset to its log end offset (as
// they are when it starts) and calls fn with every batch, in log order. It
// stops with an error when ctx ends, a Read fails, or the log holds a
// batch that cannot be framed or does not advance the offset; fn reports
// nothing back (a batch fn cannot use is fn's to log and skip).
//
// The replay goes to the log end, not the high watermark, as Kafka's
// loaders do (GroupMetadataManager.doLoadGroupsAndOffsets and
// TransactionStateManager.loadTransactionMetadata read with
// FetchIsolation.LOG_END): a new leader's high watermark lags until its
// followers fetch again, and every record a new leader holds stays in
// its log (followers truncate to it, never the reverse), so what it
// holds past its high watermark becomes committed as the ISR catches up.
// The writes the loaded coordinator then makes wait for the high
// watermark to pass them, so none is acknowledged before everything it
// builds on is committed.
func Replay(ctx context.Context, part Partition, fn func(batch []byte, h *record.Header)) error {
	off := part.LogStartOffset()
	end := part.LogEndOffset()
	for off < end {
		if err := ctx.Err(); err != nil {
			return err
		}
		buf, err := part.Read(off, ReadBytes)
		if err != nil {
			return fmt.Errorf("read at %d: %w", off, err)
		}
		if len(buf) == 0 {
			break
		}
		for len(buf) > 0 {
			batch, h, rest, err := record.Next(buf)
			if err != nil {
				return fmt.Errorf("batch at %d: %w", off, err)
			}
			if h.NextOffset() <= off {
				return fmt.Errorf("batch at %d does not advance (next %d)", off, h.NextOffset())
			}
			fn(batch, &h)
			off = h.NextOffset()
			buf = rest
		}
	}
	return nil
}

// OrDefault replaces a zero or negative setting *v with its default d, as
// the coordinators' New do with their Config.
func OrDefault[T ~int | ~int32 | ~int64](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}
