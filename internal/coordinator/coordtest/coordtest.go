// Package coordtest holds the test helpers of the coordinators on
// internal topics (internal/group, internal/txn): a coordinator.Partition
// over a real storage.Log and a clock that moves only when told to. Only
// tests import it.
package coordtest

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"samsa/internal/storage"
)

// LogPartition is a coordinator.Partition over a real storage.Log: an
// append is committed as soon as it is written (a single replica).
type LogPartition struct {
	Log *storage.Log

	mu sync.Mutex
	// failWith, when set, fails every append (and is kept).
	failWith error
	// beforeAppend, when set, runs (without mu) before each append.
	beforeAppend func()
}

// NewLogPartition returns a partition over l.
func NewLogPartition(l *storage.Log) *LogPartition { return &LogPartition{Log: l} }

// Append writes batch as leader and moves the high watermark to the end.
func (p *LogPartition) Append(_ context.Context, batch []byte) (int64, error) {
	p.mu.Lock()
	hook := p.beforeAppend
	p.mu.Unlock()
	if hook != nil {
		hook()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failWith != nil {
		return 0, p.failWith
	}
	info, err := p.Log.AppendAsLeader(batch, 0)
	if err != nil {
		return 0, err
	}
	p.Log.SetHighWatermark(p.Log.LogEndOffset())
	return info.FirstOffset, nil
}

// SetBeforeAppend makes fn run before each append (nil: nothing).
func (p *LogPartition) SetBeforeAppend(fn func()) {
	p.mu.Lock()
	p.beforeAppend = fn
	p.mu.Unlock()
}

// SetFail makes every append fail with err (nil: succeed again).
func (p *LogPartition) SetFail(err error) {
	p.mu.Lock()
	p.failWith = err
	p.mu.Unlock()
}

// WriteTxnMarker writes m to the log, as the transaction coordinator does
// through WriteTxnMarkers, and moves the high watermark to the end.
func (p *LogPartition) WriteTxnMarker(m storage.TxnMarker) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.Log.WriteTxnMarker(m); err != nil {
		return err
	}
	p.Log.SetHighWatermark(p.Log.LogEndOffset())
	return nil
}

// Read returns a copy of the batches from offset up to the log end; nil
// at the end.
func (p *LogPartition) Read(offset int64, maxBytes int32) ([]byte, error) {
	b, err := p.Log.Read(offset, maxBytes, p.Log.LogEndOffset(), true)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), b...)
	storage.ReleaseBuffer(b)
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func (p *LogPartition) LogStartOffset() int64 { return p.Log.LogStartOffset() }
func (p *LogPartition) LogEndOffset() int64   { return p.Log.LogEndOffset() }

// Clock is a Config.Now that moves only when told to.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// OpenManager opens a storage manager over dir that logs nothing; t fails
// if it cannot.
func OpenManager(t testing.TB, dir string) *storage.Manager {
	t.Helper()
	mgr, err := storage.OpenManager(storage.ManagerOptions{
		Dirs:   []string{dir},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return mgr
}

// CloseManager closes *mgr, if open, and clears it (a broker stop); a
// failure is reported to t.
func CloseManager(t testing.TB, mgr **storage.Manager) {
	if *mgr == nil {
		return
	}
	if err := (*mgr).Close(); err != nil {
		t.Error(err)
	}
	*mgr = nil
}
