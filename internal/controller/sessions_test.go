package controller

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
)

// TestControllerLargeCreateFencesNoBroker: on a 3-voter raft quorum with
// a 1 s broker session, a CreateTopics of 5,000 partitions whose
// publication on the controller's node takes about 5 s (a listener as
// slow as a replica manager creating that many logs: 1 ms per new
// partition) fences no broker: the three brokers heartbeat every 100 ms
// throughout, each heartbeat is answered within half a session, and the
// session expiry check runs every 50 ms.
func TestControllerLargeCreateFencesNoBroker(t *testing.T) {
	const session = time.Second
	// A one-second election timeout: the 5,050-record entry must not
	// cost the leader its term (NOT_CONTROLLER) on a loaded machine.
	r := newRaftControllersElection(t, 100, "broker.session.timeout.ms=1000", "broker.heartbeat.interval.ms=100")
	id, c := r.active(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	epochs := map[int32]int64{}
	for b := int32(11); b <= 13; b++ {
		resp := register(t, c, b, "", byte(b))
		if resp.ErrorCode != 0 {
			t.Fatalf("register %d: %v", b, kerr.ErrorForCode(resp.ErrorCode))
		}
		epochs[b] = resp.BrokerEpoch
	}
	// The slow listener on the active controller's node.
	r.logs[id].Publisher().Subscribe(func(prev, next *metadata.Image) {
		if prev == nil {
			return
		}
		time.Sleep(time.Duration(partitionCount(next)-partitionCount(prev)) * time.Millisecond)
	})
	// A fence anywhere shows on a follower's images.
	var fenced atomic.Value
	for fid, ml := range r.logs {
		if fid == id {
			continue
		}
		ml.Publisher().Subscribe(func(_, next *metadata.Image) {
			for b, br := range next.Brokers {
				if br.Fenced {
					fenced.CompareAndSwap(nil, fmt.Sprintf("broker %d fenced at offset %d", b, next.Offset))
				}
			}
		})
		break
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	var slowest time.Duration
	for b, epoch := range epochs {
		wg.Add(1)
		go func() { // a broker's heartbeat loop (server.lifecycle.run)
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				req := kmsg.NewPtrBrokerHeartbeatRequest()
				req.BrokerID, req.BrokerEpoch = b, epoch
				req.CurrentMetadataOffset = c.image().Offset
				hctx, hcancel := context.WithTimeout(ctx, session)
				began := time.Now()
				resp := c.BrokerHeartbeat(hctx, req)
				took := time.Since(began)
				hcancel()
				mu.Lock()
				slowest = max(slowest, took)
				if resp.ErrorCode != 0 || resp.IsFenced || took > session/2 {
					problems = append(problems, fmt.Sprintf("broker %d: heartbeat took %v: error %v fenced %v", b, took, kerr.ErrorForCode(resp.ErrorCode), resp.IsFenced))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() { // the server's expiry loop
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			c.ExpireSessions(ctx)
		}
	}()

	// 50 topics × 100 partitions: 5,050 records in one request.
	var topics []kmsg.CreateTopicsRequestTopic
	for i := range 50 {
		topics = append(topics, topic(fmt.Sprintf("big-%02d", i), 100, 1))
	}
	time.Sleep(300 * time.Millisecond) // heartbeats flow before the create
	began := time.Now()
	resp := c.CreateTopics(ctx, createReq(7, topics...))
	took := time.Since(began)
	time.Sleep(2 * session) // expiry after the create too
	close(stop)
	wg.Wait()
	for _, rt := range resp.Topics {
		if rt.ErrorCode != 0 {
			t.Fatalf("create %s: %v", rt.Topic, kerr.ErrorForCode(rt.ErrorCode))
		}
	}
	if took < 2*session {
		t.Fatalf("the create took %v: too short to test anything (the listener should make it about 5 s)", took)
	}
	t.Logf("create of 5,000 partitions took %v; slowest heartbeat %v", took, slowest)
	if f := fenced.Load(); f != nil {
		t.Errorf("%v", f)
	}
	for b := range epochs {
		if c.image().Brokers[b].Fenced {
			t.Errorf("broker %d fenced", b)
		}
	}
	for _, p := range problems {
		t.Error(p)
	}
}

func partitionCount(im *metadata.Image) int {
	n := 0
	for _, t := range im.Topics {
		n += len(t.Partitions)
	}
	return n
}

// TestControllerExpiryStallNotChargedToBrokers: time in which the
// controller ran no expiry check (a stalled process) is not charged to
// the brokers: after a gap longer than the session, a broker is not
// fenced at the first check, and its heartbeat then keeps it; a broker
// that never heartbeats again is still fenced one session later.
func TestControllerExpiryStallNotChargedToBrokers(t *testing.T) {
	c, _ := newTestController(t, 0, "broker.session.timeout.ms=300", "broker.heartbeat.interval.ms=50")
	ctx := context.Background()
	epochs := map[int32]int64{}
	for b := int32(1); b <= 2; b++ {
		r := register(t, c, b, "", byte(b))
		if r.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(r.ErrorCode))
		}
		epochs[b] = r.BrokerEpoch
	}
	hb := func(b int32) {
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.BrokerID, req.BrokerEpoch, req.CurrentMetadataOffset = b, epochs[b], c.image().Offset
		if resp := c.BrokerHeartbeat(ctx, req); resp.ErrorCode != 0 || resp.IsFenced {
			t.Fatalf("heartbeat %d: %+v", b, resp)
		}
	}
	hb(1)
	hb(2)
	c.ExpireSessions(ctx)
	time.Sleep(500 * time.Millisecond) // the controller stalls: no check, no heartbeat
	c.ExpireSessions(ctx)
	for b := int32(1); b <= 2; b++ {
		if c.image().Brokers[b].Fenced {
			t.Fatalf("broker %d fenced for the controller's own stall", b)
		}
	}
	// Broker 1 heartbeats again; broker 2 is gone for good.
	deadline := time.Now().Add(5 * time.Second)
	for !c.image().Brokers[2].Fenced {
		if time.Now().After(deadline) {
			t.Fatal("broker 2 never fenced")
		}
		hb(1)
		c.ExpireSessions(ctx)
		time.Sleep(20 * time.Millisecond)
	}
	if c.image().Brokers[1].Fenced {
		t.Fatal("broker 1 fenced although it heartbeats")
	}
}
