package group

import (
	"testing"

	"samsa/internal/coordinator/coordtest"
	"samsa/internal/storage"
)

// TestGroupLoadEmptyPartitionServesAtOnce: an empty __consumer_offsets
// partition (just created) is loaded when Load returns, so the JoinGroup
// that follows FindCoordinator is served, not answered
// COORDINATOR_LOAD_IN_PROGRESS (kafka-go does not retry it). A partition
// with records still loads in the background.
func TestGroupLoadEmptyPartitionServesAtOnce(t *testing.T) {
	mgr := coordtest.OpenManager(t, t.TempDir())
	t.Cleanup(func() { coordtest.CloseManager(t, &mgr) })
	l, err := mgr.CreateLog("__consumer_offsets", 0, [16]byte{1}, storage.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := New(testConfig())
	t.Cleanup(c.Close)
	c.Load(0, coordtest.NewLogPartition(l))
	if loaded, loading := c.Owns("g"); !loaded || loading {
		t.Fatalf("right after Load of an empty partition: loaded %v loading %v", loaded, loading)
	}
	if err := commitAs(c, "g", "", -1, nil, "t", 0, 5); err != nil {
		t.Fatalf("commit right after load: %v", err)
	}
}
