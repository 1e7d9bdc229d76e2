package controller

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
)

func (x *replCluster) unregister(id int32) *kmsg.UnregisterBrokerResponse {
	req := kmsg.NewPtrUnregisterBrokerRequest()
	req.BrokerID = id
	return x.c.UnregisterBroker(context.Background(), req)
}

// TestControllerUnregisterBroker: an unknown id answers
// BROKER_ID_NOT_REGISTERED with Kafka's message; an active broker (or
// one in controlled shutdown, not yet fenced) is refused with
// INVALID_REQUEST and nothing is committed; a broker stopped by a
// controlled shutdown is unregistered: it leaves the ISRs, its
// leaderships move, the partitions still list it, the registration is
// gone from the image and from a snapshot of it, and its next heartbeat
// gets BROKER_ID_NOT_REGISTERED so a restarted process registers anew.
func TestControllerUnregisterBroker(t *testing.T) {
	x := newReplCluster(t, []string{"a", "b", "c"})
	x.create(assigned("t", []int32{3, 1}, []int32{1, 3}, []int32{2, 3}))
	x.create(assigned("solo", []int32{3}))
	// A follower catches up: 3 joins the ISR of the partition led by 1.
	for p := range int32(3) {
		part := x.part("t", p)
		if !slices.Equal(part.ISR, part.Replicas) {
			t.Fatalf("t-%d: ISR %v, want every replica", p, part.ISR)
		}
	}
	r := x.unregister(9)
	if r.ErrorCode != kerr.BrokerIDNotRegistered.Code || str(r.ErrorMessage) != "Broker ID 9 is not currently registered" {
		t.Fatalf("unknown broker: %v %q", kerr.ErrorForCode(r.ErrorCode), str(r.ErrorMessage))
	}
	before := x.c.image().Offset
	if r := x.unregister(3); r.ErrorCode != kerr.InvalidRequest.Code || !strings.Contains(str(r.ErrorMessage), "still active") {
		t.Fatalf("active broker: %v %q", kerr.ErrorForCode(r.ErrorCode), str(r.ErrorMessage))
	}
	if x.c.image().Offset != before {
		t.Fatal("a refusal committed records")
	}
	// A controlled shutdown: it leads t-0, so it first enters
	// controlled shutdown (refused), then is fenced.
	if h := x.heartbeat(3, false, true); h.ShouldShutdown {
		t.Fatal("broker 3 told to stop while it leads")
	}
	if r := x.unregister(3); r.ErrorCode != kerr.InvalidRequest.Code || !strings.Contains(str(r.ErrorMessage), "controlled shutdown") {
		t.Fatalf("broker in controlled shutdown: %v %q", kerr.ErrorForCode(r.ErrorCode), str(r.ErrorMessage))
	}
	if h := x.heartbeat(3, false, true); !h.ShouldShutdown {
		t.Fatalf("broker 3 not told to stop: %+v", h)
	}
	// It comes back, then is fenced at its own request but keeps
	// heartbeating: refused.
	x.heartbeat(3, false, false)
	x.heartbeat(3, true, false)
	if !x.c.image().Brokers[3].Fenced {
		t.Fatal("broker 3 not fenced")
	}
	if r := x.unregister(3); r.ErrorCode != kerr.InvalidRequest.Code || !strings.Contains(str(r.ErrorMessage), "heartbeating") {
		t.Fatalf("heartbeating broker: %v %q", kerr.ErrorForCode(r.ErrorCode), str(r.ErrorMessage))
	}
	if x.c.image().Brokers[3].Epoch != x.epochs[3] {
		t.Fatal("refusals changed the registration")
	}
	// It shuts down for good.
	if h := x.heartbeat(3, false, true); !h.ShouldShutdown {
		t.Fatalf("broker 3 not told to stop: %+v", h)
	}
	// A fenced broker that is the last of an ISR stays in it.
	if p := x.part("solo", 0); p.Leader != -1 || !slices.Equal(p.ISR, []int32{3}) {
		t.Fatalf("solo-0 on fenced 3: %+v", p)
	}
	before = x.c.image().Offset
	if r := x.unregister(3); r.ErrorCode != 0 {
		t.Fatalf("unregister: %v %q", kerr.ErrorForCode(r.ErrorCode), str(r.ErrorMessage))
	}
	im := x.c.image()
	if im.Offset == before {
		t.Fatal("nothing committed")
	}
	if _, ok := im.Brokers[3]; ok {
		t.Fatal("broker 3 still registered")
	}
	for pid, want := range [][]int32{{3, 1}, {1, 3}, {2, 3}} {
		got := x.part("t", int32(pid))
		if !slices.Equal(got.Replicas, want) || slices.Contains(got.ISR, 3) || got.Leader == 3 || got.Leader < 0 {
			t.Errorf("t-%d after unregistering 3: %+v", pid, got)
		}
	}
	if p := x.part("solo", 0); !slices.Equal(p.ISR, []int32{3}) || p.Leader != -1 {
		t.Errorf("solo-0: %+v (the last ISR member stays)", p)
	}
	// Again: not registered.
	if r := x.unregister(3); r.ErrorCode != kerr.BrokerIDNotRegistered.Code {
		t.Fatalf("second unregister: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	// A snapshot of the image has no broker 3.
	b, err := metadata.EncodeSnapshot(im)
	if err != nil {
		t.Fatal(err)
	}
	back, err := metadata.DecodeSnapshot("cluster", b)
	if err != nil || !back.SameState(im) {
		t.Fatalf("snapshot: %v", err)
	}
	// Its old process heartbeats: BROKER_ID_NOT_REGISTERED (it would
	// register again); a new registration works and gets a new epoch.
	hb := kmsg.NewPtrBrokerHeartbeatRequest()
	hb.BrokerID, hb.BrokerEpoch = 3, x.epochs[3]
	if h := x.c.BrokerHeartbeat(context.Background(), hb); h.ErrorCode != kerr.BrokerIDNotRegistered.Code {
		t.Fatalf("heartbeat after unregistering: %v", kerr.ErrorForCode(h.ErrorCode))
	}
	if r := register(t, x.c, 3, "c", 77); r.ErrorCode != 0 || r.BrokerEpoch <= x.epochs[3] {
		t.Fatalf("re-registration: %v epoch %d", kerr.ErrorForCode(r.ErrorCode), r.BrokerEpoch)
	}
}

// TestControllerUnregisterExpiredBroker: a broker fenced because its
// session expired (a crash) can be unregistered at once; a controller
// that took over (no heartbeat seen) does not count it as heartbeating.
func TestControllerUnregisterExpiredBroker(t *testing.T) {
	x := newReplCluster(t, []string{"", ""}, "broker.session.timeout.ms=200", "broker.heartbeat.interval.ms=40")
	x.create(assigned("t", []int32{2, 1}))
	time.Sleep(250 * time.Millisecond)
	x.heartbeat(1, false, false)
	x.c.ExpireSessions(context.Background())
	if !x.c.image().Brokers[2].Fenced || x.c.image().Brokers[1].Fenced {
		t.Fatalf("brokers after expiry: %+v", x.c.image().Brokers)
	}
	if r := x.unregister(2); r.ErrorCode != 0 {
		t.Fatalf("unregister: %v %q", kerr.ErrorForCode(r.ErrorCode), str(r.ErrorMessage))
	}
	if p := x.part("t", 0); p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) || !slices.Equal(p.Replicas, []int32{2, 1}) {
		t.Fatalf("t-0: %+v", p)
	}
	// A reassignment may no longer name the unregistered broker.
	if code, _ := x.reassign(0, "t", 0, []int32{1, 2}, true); code != kerr.InvalidReplicaAssignment.Code {
		t.Fatalf("reassign onto an unregistered broker: %v", kerr.ErrorForCode(code))
	}
	// But may move the partition off it.
	if code, msg := x.reassign(0, "t", 0, []int32{1}, true); code != 0 {
		t.Fatalf("reassign off: %v %s", kerr.ErrorForCode(code), msg)
	}
	x.wantMove("t", 0, []int32{1}, nil, nil)
}
