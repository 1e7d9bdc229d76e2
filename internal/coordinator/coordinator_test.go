package coordinator_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/internal/coordinator"
	"samsa/internal/coordinator/coordtest"
	"samsa/internal/record"
	"samsa/internal/storage"
)

func TestPartitionForIsJavaHash(t *testing.T) {
	for _, c := range []struct {
		key  string
		want int32
	}{
		{"", 0},
		{"a", 47},                     // hashCode 97
		{"ab", 5},                     // 3105
		{"polygenelubricants", 0},     // hashCode is MinInt32: Utils.abs gives 0
		{"😀", 49},                     // two UTF-16 code units: 1772899
		{"console-consumer-12345", 6}, // 158455506
		{"zzzzzzzzzz", 36},            // negative: -1580979136
	} {
		if got := coordinator.PartitionFor(c.key, 50); got != c.want {
			t.Errorf("PartitionFor(%q, 50) = %d, want %d", c.key, got, c.want)
		}
	}
	if got := coordinator.PartitionFor("a", 0); got != 0 {
		t.Errorf("PartitionFor with no partitions = %d, want 0", got)
	}
}

func TestStateErr(t *testing.T) {
	for s, want := range map[coordinator.State]*kerr.Error{
		coordinator.Loading:  kerr.CoordinatorLoadInProgress,
		coordinator.Loaded:   nil,
		coordinator.Failed:   kerr.CoordinatorNotAvailable,
		coordinator.Unloaded: kerr.NotCoordinator,
	} {
		if got := s.Err(); got != want {
			t.Errorf("State(%d).Err() = %v, want %v", s, got, want)
		}
	}
}

func testPartition(t *testing.T) *coordtest.LogPartition {
	t.Helper()
	mgr := coordtest.OpenManager(t, t.TempDir())
	t.Cleanup(func() { coordtest.CloseManager(t, &mgr) })
	l, err := mgr.CreateLog("__internal", 0, [16]byte{1}, storage.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return coordtest.NewLogPartition(l)
}

func TestAppendThenReplay(t *testing.T) {
	p := testPartition(t)
	ctx := context.Background()
	var want []string
	for i := range 3 {
		recs := []record.Record{{Key: []byte{'k', byte('0' + i)}}, {Key: []byte{'k', byte('a' + i)}}}
		base, err := coordinator.Append(ctx, ctx, p, record.BuildOptions{}, recs)
		if err != nil {
			t.Fatal(err)
		}
		if base != int64(2*i) {
			t.Fatalf("batch %d at %d, want %d", i, base, 2*i)
		}
		want = append(want, string(recs[0].Key), string(recs[1].Key))
	}
	var got []string
	err := coordinator.Replay(ctx, p, func(batch []byte, h *record.Header) {
		if err := record.ForEachRecord(batch, func(_ *record.Header, r *record.Record) error {
			got = append(got, string(r.Key))
			return nil
		}); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("replayed %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("replayed %q, want %q", got, want)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := coordinator.Replay(cctx, p, func([]byte, *record.Header) {}); !errors.Is(err, context.Canceled) {
		t.Errorf("replay with ended context: %v, want context.Canceled", err)
	}
}

func TestAppendFailedAfterUnloadIsNotCoordinator(t *testing.T) {
	p := testPartition(t)
	partCtx, unload := context.WithCancel(context.Background())
	p.SetBeforeAppend(unload)
	p.SetFail(kerr.RequestTimedOut)
	_, err := coordinator.Append(context.Background(), partCtx, p, record.BuildOptions{}, []record.Record{{Key: []byte("k")}})
	// An append that fails once the partition is no longer ours answers
	// as such, whatever the log said.
	if !errors.Is(err, coordinator.ErrNotCoordinator) {
		t.Fatalf("append: %v, want ErrNotCoordinator", err)
	}
	p.SetBeforeAppend(nil)
	p.SetFail(kerr.NotEnoughReplicas)
	ctx := context.Background()
	if _, err := coordinator.Append(ctx, ctx, p, record.BuildOptions{}, []record.Record{{Key: []byte("k")}}); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("failed append: %v, want NOT_ENOUGH_REPLICAS", err)
	}
}

type part struct{ id int32 }

func TestRegistry(t *testing.T) {
	r := coordinator.NewRegistry[*part]()
	loaded := make(chan int32, 4)
	p0, p1 := &part{0}, &part{1}
	if !r.Start(0, nil, p0, func() { loaded <- 0 }) || !r.Start(1, nil, p1, func() { loaded <- 1 }) {
		t.Fatal("Start refused on an empty registry")
	}
	<-loaded
	<-loaded
	if r.Start(0, nil, &part{0}, func() { loaded <- 9 }) {
		t.Fatal("Start replaced a partition that was not the expected one")
	}
	p0b := &part{0}
	if !r.Start(0, p0, p0b, func() { loaded <- 0 }) {
		t.Fatal("Start refused to replace the expected partition")
	}
	<-loaded
	if got := r.Get(0); got != p0b {
		t.Fatalf("Get(0) = %v, want the replacement", got)
	}
	if all := r.All(); len(all) != 2 || all[0] != p0b || all[1] != p1 {
		t.Fatalf("All() = %v", all)
	}
	if got := r.Remove(1); got != p1 || r.Get(1) != nil {
		t.Fatalf("Remove(1) = %v, then Get(1) = %v", got, r.Get(1))
	}
	var ran atomic.Bool
	release := make(chan struct{})
	r.Go(func() {
		<-r.Context().Done()
		<-release
		ran.Store(true)
	})
	if got := r.Close(); len(got) != 1 || got[0] != p0b {
		t.Fatalf("Close() = %v, want the remaining partition", got)
	}
	if r.Enter() || r.Start(2, nil, &part{2}, func() {}) {
		t.Fatal("work accepted after Close")
	}
	close(release)
	r.Wait()
	if !ran.Load() {
		t.Fatal("Wait returned before the background work ended")
	}
}

func TestClock(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_000)
	c := coordtest.NewClock(start)
	c.Advance(time.Minute)
	if got := c.Now(); !got.Equal(start.Add(time.Minute)) {
		t.Fatalf("Now() = %v, want %v", got, start.Add(time.Minute))
	}
}

// TestReplayReadsToTheLogEnd: a new leader's high watermark can lag its
// log end; Replay reads everything the log holds, as Kafka's loaders do
// (FetchIsolation.LOG_END), not only what is below the high watermark.
func TestReplayReadsToTheLogEnd(t *testing.T) {
	p := testPartition(t)
	ctx := context.Background()
	for i := range 4 {
		if _, err := coordinator.Append(ctx, ctx, p, record.BuildOptions{}, []record.Record{{Key: []byte{'k', byte('0' + i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	p.Log.SetHighWatermark(1) // as a follower that just became leader might have it
	if hw, leo := p.Log.HighWatermark(), p.LogEndOffset(); hw != 1 || leo != 4 {
		t.Fatalf("high watermark %d, log end %d", hw, leo)
	}
	n := 0
	if err := coordinator.Replay(ctx, p, func(_ []byte, h *record.Header) { n += int(h.LastOffsetDelta) + 1 }); err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("replayed %d records, want the 4 up to the log end", n)
	}
}
