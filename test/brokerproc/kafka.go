package brokerproc

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// NewClient is a franz-go client of the broker at addr, closed at test
// cleanup.
func NewClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates topic with the given partition count and replication
// factor 1, failing the test on any error.
func CreateTopic(t testing.TB, addr, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// EndOffsets lists the end offset (high watermark) of every partition of
// topic.
func EndOffsets(t testing.TB, addr, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()
	listed, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	ends := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	if len(ends) == 0 {
		t.Fatalf("list end offsets of %s: no partitions", topic)
	}
	return ends
}

// ConsumeAll reads every record of topic from offset 0 up to the end
// offsets listed when it starts, with franz-go (no group). Records come
// back in partition order, then offset order. It fails the test if they
// cannot all be read within 60 seconds.
func ConsumeAll(t testing.TB, addr, topic string) []*kgo.Record {
	t.Helper()
	ends := EndOffsets(t, addr, topic)
	parts := map[int32]kgo.Offset{}
	remaining := map[int32]bool{}
	var want int64
	for p, end := range ends {
		parts[p] = kgo.NewOffset().AtStart()
		if end > 0 {
			remaining[p] = true
		}
		want += end
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	byPartition := map[int32][]*kgo.Record{}
	got := 0
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume %s: timed out with %d of %d records (end offsets %v)", topic, got, want, ends)
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("fetch %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				return // appended after we listed the ends
			}
			byPartition[r.Partition] = append(byPartition[r.Partition], r)
			got++
			if r.Offset == ends[r.Partition]-1 {
				delete(remaining, r.Partition)
			}
		})
	}
	ps := make([]int32, 0, len(byPartition))
	for p := range byPartition {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	var out []*kgo.Record
	for _, p := range ps {
		out = append(out, byPartition[p]...)
	}
	return out
}
