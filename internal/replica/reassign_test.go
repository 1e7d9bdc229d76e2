package replica

import (
	"slices"
	"testing"

	"samsa/internal/metadata"
)

// TestReplicationReassignKeepsLeader: broker 1 leads a partition moving
// from {1,2} to {1,3} (replicas 1,3,2, 3 adding): it tracks 3 as a
// follower and proposes it for the ISR once caught up; the controller's
// answer completes the move (ISR [1,3], the partition epoch it names),
// and the image of that same partition epoch, with the new replicas, is
// applied (not skipped as already known): 2 is no longer a follower, so
// it cannot hold the high watermark back, and the next ISR change names
// the new state.
func TestReplicationReassignKeepsLeader(t *testing.T) {
	c := newCluster(t, nil)
	c.set(metadata.Partition{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1})
	p := c.part(0)
	leo := produce(t, p, 5, 1)
	followerFetch(t, p, 2, leo)
	// The move starts: same leader epoch, partition epoch 2.
	c.set(metadata.Partition{Replicas: []int32{1, 3, 2}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 1, PartitionEpoch: 2,
		AddingReplicas: []int32{3}, RemovingReplicas: []int32{2}})
	if got := p.Replicas(); !slices.Equal(got, []int32{1, 3, 2}) {
		t.Fatalf("replicas during the move %v", got)
	}
	followerFetch(t, p, 3, leo)
	call := c.nextCall()
	if got := memberIDs(call.req.NewISR); !slices.Equal(got, []int32{1, 2, 3}) || call.req.PartitionEpoch != 2 {
		t.Fatalf("expand proposal %v at partition epoch %d", got, call.req.PartitionEpoch)
	}
	// The controller completes the move in the same record: answered
	// first, then the image of the same partition epoch.
	c.answer(call, AlterISRResult{LeaderID: 1, LeaderEpoch: 1, PartitionEpoch: 3, ISR: []int32{1, 3}}, nil)
	if p.PartitionEpoch() != 3 || !slices.Equal(p.ISR(), []int32{1, 3}) {
		t.Fatalf("answer not applied: epoch %d ISR %v", p.PartitionEpoch(), p.ISR())
	}
	c.set(metadata.Partition{Replicas: []int32{1, 3}, ISR: []int32{1, 3}, Leader: 1, LeaderEpoch: 1, PartitionEpoch: 3})
	if got := p.Replicas(); !slices.Equal(got, []int32{1, 3}) {
		t.Fatalf("replicas after the move %v (image of the answered epoch skipped)", got)
	}
	// 2 no longer counts: the high watermark follows 3 alone.
	leo2 := produce(t, p, 3, 1)
	followerFetch(t, p, 3, leo2)
	if hw := p.HighWatermark(); hw != leo2 {
		t.Fatalf("high watermark %d, want %d (held back by the removed replica?)", hw, leo2)
	}
	c.noCall()
}
