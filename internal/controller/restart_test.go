package controller

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/internal/metadata"
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
	// A controller that took over (no sessions of its own) knows the
	// incarnation from the image: the same process registering again
	// moves nothing, a new one does.
	c2 := New(c.q, c.cfg, quiet)
	led := c2.image().Topics["t"].Partitions[0] // led by a broker of incarnation 1
	if r := register(t, c2, led.Leader, "", 1); r.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.ErrorCode))
	}
	if p := c2.image().Topics["t"].Partitions[0]; p.Leader != led.Leader || p.LeaderEpoch != led.LeaderEpoch {
		t.Fatalf("the same process re-registering on the new controller moved the partition: %+v -> %+v", led, p)
	}
	time.Sleep(350 * time.Millisecond) // that session expires unchecked
	if r := register(t, c2, led.Leader, "", 9); r.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.ErrorCode))
	}
	if p := c2.image().Topics["t"].Partitions[0]; p.Leader == led.Leader || p.LeaderEpoch <= led.LeaderEpoch {
		t.Fatalf("a new process of the leader registering on the new controller kept the partition: %+v -> %+v", led, p)
	}
	if b := c2.image().Brokers[led.Leader]; b.IncarnationID != (metadata.UUID{9}) {
		t.Fatalf("incarnation in the image %v, want the last registration's", b.IncarnationID)
	}
}
