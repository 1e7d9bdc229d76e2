package raft

import (
	"context"
	"fmt"
	"testing"

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
