package raft

import (
	"context"
	"testing"
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
