package txn

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"samsa/internal/coordinator/coordtest"
	"samsa/internal/storage"
)

// TestTxnLoadEmptyPartitionServesAtOnce: an empty __transaction_state
// partition (just created by FindCoordinator) is loaded when Load returns:
// the InitProducerID that follows is not answered
// COORDINATOR_LOAD_IN_PROGRESS.
func TestTxnLoadEmptyPartitionServesAtOnce(t *testing.T) {
	mgr := coordtest.OpenManager(t, t.TempDir())
	t.Cleanup(func() { coordtest.CloseManager(t, &mgr) })
	l, err := mgr.CreateLog("__transaction_state", 0, [16]byte{1}, storage.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := New(Config{
		NumPartitions: 1,
		MaxTimeout:    time.Minute,
		IDExpiration:  time.Hour,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	t.Cleanup(c.Close)
	c.Load(0, coordtest.NewLogPartition(l), 1)
	if loaded, loading := c.Loaded("tid"); !loaded || loading {
		t.Fatalf("right after Load of an empty partition: loaded %v loading %v", loaded, loading)
	}
}
