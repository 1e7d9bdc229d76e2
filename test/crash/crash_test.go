package crash

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"samsa/test/brokerproc"
)

const (
	crashProducers  = 4
	crashPartitions = 6
	// crashRoundCap bounds one round's producing phase: the broker is killed
	// by then even if fewer records than planned were acknowledged.
	crashRoundCap = 20 * time.Second
)

// recordID names one produced record: which round and producer sent it and
// its sequence number within that producer.
type recordID struct {
	round, producer, seq int
}

func (id recordID) String() string {
	return fmt.Sprintf("r%d-p%d-s%d", id.round, id.producer, id.seq)
}

// value is the record value; the partition is seq mod crashPartitions, so a
// record found in another partition is detectable.
func (id recordID) value() []byte {
	return fmt.Appendf(nil, "%d %d %d", id.round, id.producer, id.seq)
}

func parseRecordID(v []byte) (recordID, error) {
	var id recordID
	if _, err := fmt.Sscanf(string(v), "%d %d %d", &id.round, &id.producer, &id.seq); err != nil {
		return id, fmt.Errorf("value %q: %w", v, err)
	}
	return id, nil
}

func crashRounds(t *testing.T) int {
	s := os.Getenv("SAMSA_CRASH_ROUNDS")
	if s == "" {
		return 2
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("SAMSA_CRASH_ROUNDS=%q: want a positive integer", s)
	}
	return n
}

// TestCrashAcknowledgedRecordsSurviveKill9 runs rounds of: 4 idempotent
// franz-go producers with acks=all write numbered records to a 6-partition
// topic; the broker is SIGKILLed mid-stream; it restarts on the same log
// directory; everything is read back. Every acknowledged record of every
// round so far must be present exactly once, no record may appear twice,
// each producer's records must be in production order within a partition,
// and offsets must be contiguous from 0.
func TestCrashAcknowledgedRecordsSurviveKill9(t *testing.T) {
	rounds := crashRounds(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("rounds=%d seed=%d", rounds, seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))

	b := brokerproc.Start(t, brokerproc.Options{})
	const topic = "crash"
	brokerproc.CreateTopic(t, b.Addr, topic, crashPartitions)

	acked := map[recordID]bool{}
	for round := range rounds {
		killAfter := 1000 + rng.IntN(40000)
		roundAcked := produceUntilKilled(t, b, topic, round, killAfter)
		for id := range roundAcked {
			acked[id] = true
		}
		t.Logf("round %d: killed broker pid %d at %d acknowledged records (target %d)", round, b.PID(), len(roundAcked), killAfter)
		if len(roundAcked) == 0 {
			t.Fatalf("round %d: no record was acknowledged before the kill", round)
		}
		b = b.Restart(t)
		verifyAfterCrash(t, b.Addr, topic, acked)
		if t.Failed() {
			t.Fatalf("round %d failed; broker log.dirs=%s", round, b.Dir)
		}
	}
}

// produceUntilKilled runs the producers of one round, SIGKILLs the broker
// once killAfter records were acknowledged (or at crashRoundCap) while they
// are still writing, and returns the acknowledged records.
func produceUntilKilled(t *testing.T, b *brokerproc.Broker, topic string, round, killAfter int) map[recordID]bool {
	t.Helper()
	var (
		mu        sync.Mutex
		acked     = map[recordID]bool{}
		ackCount  atomic.Int64
		issued    atomic.Int64 // Produce calls
		finished  atomic.Int64 // promises run; each Produce gets exactly one
		killed    atomic.Bool
		liveErrMu sync.Mutex
		liveErr   error // first produce error while the broker was alive
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	clients := make([]*kgo.Client, crashProducers)
	for i := range clients {
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(b.Addr),
			kgo.DefaultProduceTopic(topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.MaxBufferedRecords(2000),
			kgo.ProducerLinger(time.Millisecond),
			kgo.ClientID(fmt.Sprintf("crash-r%d-p%d", round, i)),
		)
		if err != nil {
			t.Fatalf("kgo.NewClient: %v", err)
		}
		clients[i] = cl
	}

	var wg sync.WaitGroup
	for p, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ctx.Err() == nil; seq++ {
				id := recordID{round, p, seq}
				rec := &kgo.Record{
					Partition: int32(seq % crashPartitions),
					Key:       []byte(fmt.Sprintf("r%d-p%d", round, p)),
					Value:     id.value(),
				}
				issued.Add(1)
				cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
					defer finished.Add(1)
					if err == nil {
						mu.Lock()
						acked[id] = true
						mu.Unlock()
						ackCount.Add(1)
						return
					}
					if !killed.Load() && !errors.Is(err, context.Canceled) {
						liveErrMu.Lock()
						if liveErr == nil {
							liveErr = fmt.Errorf("%s: %w", id, err)
						}
						liveErrMu.Unlock()
					}
				})
			}
		}()
	}

	// Kill once killAfter records were acknowledged, while the
	// producers keep requests in flight.
	deadline := time.Now().Add(crashRoundCap)
	for ackCount.Load() < int64(killAfter) && time.Now().Before(deadline) && b.Running() {
		time.Sleep(200 * time.Microsecond)
	}
	if !b.Running() {
		t.Errorf("round %d: broker pid %d exited on its own while producers were writing", round, b.PID())
	}
	killed.Store(true)
	b.Kill()
	// Stop producing; Close fails whatever is still buffered or in flight
	// (those records are unacknowledged: they may or may not be stored).
	cancel()
	wg.Wait()
	for _, cl := range clients {
		cl.Close()
	}
	// Promises run on kgo's own goroutines; wait until every record has
	// had its one, so acked is complete and no longer written.
	for wait := time.Now().Add(30 * time.Second); finished.Load() < issued.Load(); {
		if time.Now().After(wait) {
			t.Fatalf("round %d: %d of %d produce promises never ran", round, issued.Load()-finished.Load(), issued.Load())
		}
		time.Sleep(time.Millisecond)
	}
	liveErrMu.Lock()
	defer liveErrMu.Unlock()
	if liveErr != nil {
		t.Errorf("round %d: produce failed while the broker was alive: %v", round, liveErr)
	}
	mu.Lock()
	defer mu.Unlock()
	return acked
}

// verifyAfterCrash reads the whole topic and checks it against acked.
func verifyAfterCrash(t *testing.T, addr, topic string, acked map[recordID]bool) {
	t.Helper()
	recs := brokerproc.ConsumeAll(t, addr, topic)
	seen := make(map[recordID]int64, len(recs)) // id -> offset
	type stream struct {
		partition       int32
		round, producer int
	}
	lastSeq := map[stream]int{}
	nextOffset := map[int32]int64{}
	errs := 0
	report := func(format string, args ...any) {
		errs++
		if errs <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, r := range recs {
		if r.Offset != nextOffset[r.Partition] {
			report("partition %d: offset %d follows %d (gap or reorder)", r.Partition, r.Offset, nextOffset[r.Partition]-1)
		}
		nextOffset[r.Partition] = r.Offset + 1
		id, err := parseRecordID(r.Value)
		if err != nil {
			report("partition %d offset %d: %v", r.Partition, r.Offset, err)
			continue
		}
		if want := int32(id.seq % crashPartitions); r.Partition != want {
			report("%s found in partition %d, produced to %d", id, r.Partition, want)
		}
		if prev, dup := seen[id]; dup {
			report("%s stored twice: partition %d offsets %d and %d", id, r.Partition, prev, r.Offset)
		}
		seen[id] = r.Offset
		s := stream{r.Partition, id.round, id.producer}
		if last, ok := lastSeq[s]; ok && id.seq <= last {
			report("partition %d offset %d: %s after seq %d of the same producer (out of production order)", r.Partition, r.Offset, id, last)
		}
		lastSeq[s] = id.seq
	}
	missing := 0
	for id := range acked {
		if _, ok := seen[id]; !ok {
			missing++
			if missing <= 20 {
				t.Errorf("acknowledged record %s is missing after the crash", id)
			}
		}
	}
	if errs > 20 {
		t.Errorf("... and %d more problems", errs-20)
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged records missing", missing, len(acked))
	}
	t.Logf("after restart: %d records stored, %d acknowledged so far, %d unacknowledged kept", len(recs), len(acked), len(recs)-len(acked))
}
