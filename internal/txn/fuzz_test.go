package txn

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzReplayRecord feeds arbitrary keys and values to the
// __transaction_state decoder: it must never panic, and a value it accepts
// must re-encode to a record that decodes to the same state.
func FuzzReplayRecord(f *testing.F) {
	tm := &txnMeta{id: "tx", producerID: 5, producerEpoch: 2, timeoutMs: 6000, state: kmsg.TransactionStateOngoing,
		partitions: map[TopicPartition]struct{}{{"t", 0}: {}, {"t", 3}: {}, {"u", 1}: {}}, startTimestamp: 10, lastUpdate: 11}
	r := tm.record(12)
	f.Add(r.Key, r.Value)
	f.Add(r.Key, []byte(nil))
	f.Add([]byte{0, 1}, []byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		txns := map[string]*txnMeta{}
		if err := replayRecord(txns, key, value); err != nil {
			return
		}
		for id, got := range txns {
			r := got.record(0)
			again := map[string]*txnMeta{}
			if err := replayRecord(again, r.Key, r.Value); err != nil {
				t.Fatalf("re-encoded record of %q does not decode: %v", id, err)
			}
			a := again[id]
			if a == nil || a.producerID != got.producerID || a.producerEpoch != got.producerEpoch ||
				a.state != got.state || len(a.partitions) != len(got.partitions) {
				t.Fatalf("round trip of %q: %+v vs %+v", id, a, got)
			}
		}
	})
}
