package replica

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestAlterPartitionRetryCarriesCurrentBrokerEpoch: an ISR change
// proposed before the broker registered (epoch -1), or under its previous
// registration, is answered STALE_BROKER_EPOCH; its retries must carry the
// broker epoch of the moment, as Kafka's AlterPartitionManager rebuilds
// each request, not the stale one forever (found by internal/sim: the
// partition then never changed its ISR again).
func TestAlterPartitionRetryCarriesCurrentBrokerEpoch(t *testing.T) {
	c := newCluster(t, nil)
	var epoch atomic.Int64
	epoch.Store(-1)
	c.m.opts.BrokerEpoch = epoch.Load // before the first Apply: no sender runs yet
	c.set(mp(1, 1, 1, 1, 2, 3))
	c.clock.advance(31 * time.Second) // replica.lag.time.max.ms: 2 and 3 never fetched
	c.m.MaybeShrinkISRs()
	call := c.nextCall()
	if call.req.BrokerEpoch != -1 {
		t.Fatalf("first attempt: broker epoch %d, want -1", call.req.BrokerEpoch)
	}
	epoch.Store(42) // registered meanwhile
	c.answer(call, AlterISRResult{ErrorCode: kerr.StaleBrokerEpoch.Code}, nil)
	call = c.nextCall()
	if call.req.BrokerEpoch != 42 || len(call.req.NewISR) != 1 || call.req.NewISR[0].BrokerEpoch != 42 {
		t.Fatalf("retry: broker epoch %d, ISR %+v; want 42 in both", call.req.BrokerEpoch, call.req.NewISR)
	}
	c.commit(call, false)
	if isr := c.part(0).ISR(); len(isr) != 1 || isr[0] != 1 {
		t.Fatalf("ISR %v after the commit, want [1]", isr)
	}
}
