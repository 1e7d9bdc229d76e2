package raft

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"samsa/internal/metadata/quorumtest"
)

func benchmarkPropose(b *testing.B, voters int) {
	c := newCluster(b, voters, 0, 0)
	leader := c.nodes[c.waitLeader()]
	data := make([]byte, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := leader.Propose(context.Background(), data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNodeProposeOneVoter(b *testing.B)    { benchmarkPropose(b, 1) }
func BenchmarkNodeProposeThreeVoters(b *testing.B) { benchmarkPropose(b, 3) }

// benchmarkMetadataAppend appends one 10-partition topic per op: the
// metadata log's share of CreateTopics (1,000 ops ≈ 1,000 topics × 10
// partitions).
func benchmarkMetadataAppend(b *testing.B, voters int) {
	c := newMetaCluster(b, voters, 0, nil)
	var active *MetadataLog
	waitFor(b, "an active controller", func() bool {
		for _, l := range c.logs {
			if ok, _ := l.Active(); ok {
				active = l
			}
		}
		return active != nil
	})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := active.Append(context.Background(), quorumtest.TopicRecords(fmt.Sprintf("bench-%d", i), 10)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkMetadataLogAppendOneVoter(b *testing.B)    { benchmarkMetadataAppend(b, 1) }
func BenchmarkMetadataLogAppendThreeVoters(b *testing.B) { benchmarkMetadataAppend(b, 3) }

// failoverTick is the tick of BenchmarkMetadataLogFailover: the default
// (100 ms), or RAFT_BENCH_TICK (a duration) to compare.
var failoverTick = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("RAFT_BENCH_TICK")); err == nil && d > 0 {
		return d
	}
	return 100 * time.Millisecond
}()

// BenchmarkMetadataLogFailover kills (closes) the active controller of
// three voters with the default timing (100 ms ticks, election timeout
// 10 ticks) and measures until another voter is active, then restarts the
// old one. Reports p50/p99 in ms; run with -benchtime=20x.
func BenchmarkMetadataLogFailover(b *testing.B) {
	c := newMetaCluster(b, 3, 0, func(_ int32, cfg *Config) { cfg.TickInterval = failoverTick })
	activeID := func(except int32) int32 {
		id := int32(-1)
		waitFor(b, "an active controller", func() bool {
			for i, l := range c.logs {
				if ok, _ := l.Active(); ok && i != except {
					id = i
				}
			}
			return id >= 0
		})
		return id
	}
	var took []time.Duration
	for b.Loop() {
		old := activeID(-1)
		start := time.Now()
		c.stop(old)
		activeID(old)
		took = append(took, time.Since(start))
		c.start(old)
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(took[(len(took)*99)/100].Milliseconds()), "p99-ms")
}
