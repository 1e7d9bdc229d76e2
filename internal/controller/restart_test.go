package controller

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestControllerRestartedBrokerLeavesLeadershipsFirst: a broker process
// that restarted (a new incarnation) and registers once its old session
// expired, before the expiry check fenced it, must not lead on in the
// same leader epoch: the registration first moves its leaderships and
// takes it out of the ISRs, as a fence would (Kafka's
// handleBrokerUncleanShutdown). Found by internal/sim: the restarted
// leader went on in its epoch with the high watermark of its checkpoint,
// behind the one it had answered with. The same process registering
// again changes nothing.
func TestControllerRestartedBrokerLeavesLeadershipsFirst(t *testing.T) {
	c, _ := newTestController(t, 0, "broker.session.timeout.ms=300", "broker.heartbeat.interval.ms=50")
	for id := int32(1); id <= 3; id++ {
		if r := register(t, c, id, "", 1); r.ErrorCode != 0 {
			t.Fatalf("register %d: %v", id, kerr.ErrorForCode(r.ErrorCode))
		}
	}
	if r := c.CreateTopics(context.Background(), createReq(7, topic("t", 1, 3))); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(r.Topics[0].ErrorCode))
	}
	before := c.image().Topics["t"].Partitions[0]
	// The same process registering again (a lost registration) keeps
	// its leadership.
	if r := register(t, c, before.Leader, "", 1); r.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.ErrorCode))
	}
	if p := c.image().Topics["t"].Partitions[0]; p.Leader != before.Leader || p.LeaderEpoch != before.LeaderEpoch {
		t.Fatalf("re-registration of the same process moved the partition: %+v -> %+v", before, p)
	}
	// The leader restarts: its session expires, no expiry check runs,
	// the new process registers.
	time.Sleep(350 * time.Millisecond)
	if r := register(t, c, before.Leader, "", 2); r.ErrorCode != 0 {
		t.Fatalf("registration of the restarted broker: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	after := c.image().Topics["t"].Partitions[0]
	if after.Leader == before.Leader || after.LeaderEpoch <= before.LeaderEpoch || slices.Contains(after.ISR, before.Leader) {
		t.Fatalf("restarted leader %d: partition %+v -> %+v; want another leader, a new epoch, and %d out of the ISR", before.Leader, before, after, before.Leader)
	}
	if c.image().Brokers[before.Leader].Fenced {
		t.Fatalf("restarted broker %d fenced after registering", before.Leader)
	}
}
