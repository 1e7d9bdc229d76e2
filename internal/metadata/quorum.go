package metadata

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// Quorum is a node's handle on the replicated metadata log: apply, then
// publish. Every node builds its images only from committed entries, in
// log order, and publishes them through Publisher (off the goroutine that
// commits, see Publisher.Offer). Implementations: LocalQuorum (one node,
// a LocalLog file) and raft.MetadataLog (a Raft quorum; broker-only nodes
// are learners). Both pass the contract suite in quorumtest.
//
// It replaces Log, whose Append assumed the caller writes and every record
// is local; Log stays until its callers move over.
type Quorum interface {
	// Append commits recs as one entry and returns its offset once the
	// entry is committed, applied to this node's image and published:
	// Publisher().Image() then includes it and every listener has seen
	// it. Only the active controller may append (NotControllerError,
	// ErrNotController, otherwise). Records that do not apply to the
	// image are ErrRejected and change nothing. If ctx ends first the
	// entry may still commit.
	Append(ctx context.Context, recs []Record) (int64, error)
	// Commit is Append without the wait for the publication: it returns
	// the entry's offset once the entry is committed and applied to
	// this node's image (Applied includes it), possibly before the
	// listeners have run for it (Publisher().WaitOffset waits for
	// them). The controller validates and commits under its lock and
	// waits for the listeners after releasing it, so a slow listener
	// (the replica manager creating thousands of logs) does not hold
	// up the next change, nor a broker heartbeat that needs the lock.
	Commit(ctx context.Context, recs []Record) (int64, error)
	// Applied returns the image after the last entry applied on this
	// node: the published image or a newer one. A controller validates
	// against it (it holds every entry the controller committed).
	Applied() *Image
	// Active reports whether this node is the active controller, and the
	// controller epoch (the raft term). Active implies the published
	// image holds every entry committed before this node took over, so
	// state validated against it is complete; a controller re-reads its
	// soft state (producer id block, placement cursor) from the image
	// whenever the epoch it sees changes.
	Active() (active bool, epoch int32)
	// Publisher holds the published image and its listeners.
	Publisher() *Publisher
	// Close stops the node; Append fails with ErrClosed after. Close may
	// be called more than once.
	Close() error
}

// Errors of a Quorum.
var (
	// ErrNotController is wrapped by NotControllerError.
	ErrNotController = errors.New("metadata: not the active controller")
	// ErrRejected marks records that do not apply to the image (a
	// duplicate topic, an unknown partition, ...). The entry changes
	// nothing on any node (Image.Apply is deterministic).
	ErrRejected = errors.New("metadata: records rejected")
	// ErrClosed is returned by a closed Quorum.
	ErrClosed = errors.New("metadata: quorum closed")
)

// NotControllerError is returned by Append on a node that is not the
// active controller; Kafka's NOT_CONTROLLER. ControllerID is the active
// controller this node knows, or -1.
type NotControllerError struct {
	ControllerID int32
}

func (e *NotControllerError) Error() string {
	if e.ControllerID < 0 {
		return ErrNotController.Error() + " (controller unknown)"
	}
	return fmt.Sprintf("%s (the controller is node %d)", ErrNotController, e.ControllerID)
}

func (e *NotControllerError) Unwrap() error { return ErrNotController }

// WaitActive waits until q is the active controller and returns its
// epoch. A single node's quorum is active at once; a raft voter once it
// won an election and published every earlier entry.
func WaitActive(ctx context.Context, q Quorum) (int32, error) {
	for {
		ch := q.Publisher().Changed()
		if ok, epoch := q.Active(); ok {
			return epoch, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return -1, ctx.Err()
		}
	}
}

// LocalQuorum is the single-node Quorum on a LocalLog file: always
// active (epoch 1), images offered to the publishing goroutine like a
// raft node's. Offsets number records, as LocalLog does: an entry's
// offset is that of its last record.
type LocalQuorum struct {
	pub    *Publisher
	stop   func()      // stops the publishing goroutine
	closed atomic.Bool // set by Close; Active reads it without waiting for an fsync under mu

	mu sync.Mutex // serializes Append: apply, write, offer
	// log is the file; nil once closed. Guarded by mu.
	log *LocalLog
	// applied is the image after the last entry written: written under
	// mu, read without it (Applied must not wait for an fsync).
	applied atomic.Pointer[Image]
}

// OpenLocalQuorum opens the LocalLog under dir, replays it and publishes
// the image (ClusterID clusterID, ControllerID nodeID) before returning.
func OpenLocalQuorum(dir, clusterID string, nodeID int32) (*LocalQuorum, error) {
	l, err := OpenLocalLog(dir)
	if err != nil {
		return nil, err
	}
	var recs []Record
	if err := l.Replay(func(_ int64, r Record) error { recs = append(recs, r); return nil }); err != nil {
		l.Close()
		return nil, err
	}
	im := Empty(clusterID)
	im.ControllerID = nodeID
	if im, err = im.applyAt(im.Offset+int64(len(recs)), recs, true); err != nil {
		l.Close()
		return nil, fmt.Errorf("%w: replay: %v", ErrCorrupt, err)
	}
	q := &LocalQuorum{log: l, pub: NewPublisher(im)}
	q.applied.Store(im)
	q.stop = q.pub.Start()
	return q, nil
}

// Append implements Quorum.
func (q *LocalQuorum) Append(ctx context.Context, recs []Record) (int64, error) {
	off, err := q.Commit(ctx, recs)
	if err != nil {
		return off, err
	}
	return off, q.pub.WaitOffset(ctx, off)
}

// Applied implements Quorum.
func (q *LocalQuorum) Applied() *Image { return q.applied.Load() }

// Commit implements Quorum: the entry is written (fsynced) and offered
// to the publishing goroutine.
func (q *LocalQuorum) Commit(_ context.Context, recs []Record) (int64, error) {
	q.mu.Lock()
	if q.log == nil {
		q.mu.Unlock()
		return 0, ErrClosed
	}
	if len(recs) == 0 {
		off := q.applied.Load().Offset
		q.mu.Unlock()
		return off, nil
	}
	next, err := q.applied.Load().Apply(recs)
	if err != nil {
		q.mu.Unlock()
		return 0, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	off, err := q.log.Append(recs)
	if err != nil {
		q.mu.Unlock()
		return 0, err
	}
	q.applied.Store(next)
	q.pub.Offer(next)
	q.mu.Unlock()
	return off, nil
}

// Active implements Quorum: a single node is the controller until Close.
func (q *LocalQuorum) Active() (bool, int32) { return !q.closed.Load(), 1 }

// Publisher implements Quorum.
func (q *LocalQuorum) Publisher() *Publisher { return q.pub }

// Close implements Quorum.
func (q *LocalQuorum) Close() error {
	q.closed.Store(true)
	q.mu.Lock()
	l := q.log
	q.log = nil
	q.mu.Unlock()
	if l == nil {
		return nil
	}
	err := l.Close()
	q.stop()
	return err
}

// migratedSuffix names a LocalLog file once its records are imported.
const migratedSuffix = ".migrated"

// MigrateLocalLog imports the records of the LocalLog under dir (a data
// directory written before the Raft quorum) into q, an active one-voter
// quorum, as its first entry, then renames the file with the suffix
// ".migrated" so it is never imported again. It reports whether it
// imported anything. Call it after the voter is active (WaitActive) and
// before any other Append.
//
// It is idempotent if interrupted: with the file still there, an empty
// image means the import never committed (import it), an image with the
// file's state means it committed (only rename), and anything else is
// an error that names the file rather than a guess.
func MigrateLocalLog(ctx context.Context, q Quorum, dir string) (bool, error) {
	path := filepath.Join(dir, LocalLogDir, localLogFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("metadata: migrate: %w", err)
	}
	if ok, _ := q.Active(); !ok {
		return false, fmt.Errorf("metadata: migrate %s: %w", path, ErrNotController)
	}
	l, err := OpenLocalLog(dir)
	if err != nil {
		return false, fmt.Errorf("metadata: migrate: %w", err)
	}
	var recs []Record
	err = l.Replay(func(_ int64, r Record) error { recs = append(recs, r); return nil })
	l.Close()
	if err != nil {
		return false, fmt.Errorf("metadata: migrate %s: %w", path, err)
	}
	cur := q.Publisher().Image()
	old, err := Empty(cur.ClusterID).Apply(recs)
	if err != nil {
		return false, fmt.Errorf("metadata: migrate %s: %w: %v", path, ErrCorrupt, err)
	}
	imported := false
	switch {
	case len(recs) == 0 || sameStateButBrokerEpochs(cur, old):
		// Nothing to import, or imported before an interruption.
	case cur.Offset < 0:
		if _, err := q.Append(ctx, recs); err != nil {
			return false, fmt.Errorf("metadata: migrate %s: %w", path, err)
		}
		imported = true
	default:
		return false, fmt.Errorf("metadata: migrate: %s holds records but the replicated log already holds other metadata (offset %d); move one of them away", path, cur.Offset)
	}
	if err := os.Rename(path, path+migratedSuffix); err != nil {
		return imported, fmt.Errorf("metadata: migrate: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return imported, fmt.Errorf("metadata: migrate: sync dir: %w", err)
		}
	}
	return imported, nil
}
