package replication

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/record"
)

func TestOptionsDefaultsAreKafkas(t *testing.T) {
	o, err := Options{BrokerID: 3}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.NumFetchers != 1 || o.FetchWaitMax != 500*time.Millisecond || o.FetchMinBytes != 1 ||
		o.FetchResponseMaxBytes != 10<<20 || o.FetchMaxBytes != 1<<20 || o.FetchBackoff != time.Second ||
		o.SocketTimeout != 30*time.Second || o.MaxResponseBytes != 18<<20 || o.BrokerEpoch() != -1 ||
		o.ClientID != "samsa-broker-3" {
		t.Fatalf("defaults: %+v", o)
	}
	for _, bad := range []Options{
		{NumFetchers: -1},
		{FetchWaitMax: 2 * time.Second, SocketTimeout: time.Second},
		{FetchResponseMaxBytes: 100, MaxResponseBytes: 50},
		{FetchBackoff: -time.Second},
	} {
		if _, err := bad.withDefaults(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%+v: %v, want ErrInvalidOptions", bad, err)
		}
	}
}

// TestFetcherIndexMatchesKafka checks the hash against values computed
// by hand from Kafka's formula abs(31 * topic.hashCode() + partition) % n.
func TestFetcherIndexMatchesKafka(t *testing.T) {
	for _, c := range []struct {
		topic     string
		partition int32
		n, want   int
	}{
		{"test", 0, 3, 1},               // "test".hashCode() = 3556498; 31*3556498 = 110251438
		{"test", 2, 3, 0},               // 110251440 % 3
		{"test", 7, 1, 0},               // one fetcher
		{"polygenelubricants", 0, 3, 0}, // hashCode = Integer.MIN_VALUE; 31*MIN = MIN; abs clears the sign bit
		{"polygenelubricants", 5, 3, 2},
		{"é", 1, 7, (31*0xe9 + 1) % 7}, // one UTF-16 unit
	} {
		if got := FetcherIndex(c.topic, c.partition, c.n); got != c.want {
			t.Errorf("FetcherIndex(%q, %d, %d) = %d, want %d", c.topic, c.partition, c.n, got, c.want)
		}
	}
}

func TestDivergenceTruncationOffset(t *testing.T) {
	for _, c := range []struct {
		name          string
		epoch         int32
		endOffset     int64
		leo           int64
		found         int32
		foundEnd, out int64
	}{
		{"leader end unknown: keep", 3, -1, 50, 3, 40, 50},
		{"leader epoch unknown: leader's end", -1, 30, 50, 3, 40, 30},
		{"follower knows no epoch that old: leader's end", 2, 30, 50, -1, -1, 30},
		{"same epoch: smaller end (leader)", 3, 30, 50, 3, 40, 30},
		{"same epoch: smaller end (follower)", 3, 45, 50, 3, 40, 40},
		{"older epoch on the follower: its end, ask again", 4, 30, 50, 3, 40, 40},
		{"never above the log end", 3, 70, 50, 3, 60, 50},
	} {
		if got := DivergenceTruncationOffset(c.epoch, c.endOffset, c.leo, c.found, c.foundEnd); got != c.out {
			t.Errorf("%s: got %d, want %d", c.name, got, c.out)
		}
	}
}

func batches(t testing.TB, n int) []byte {
	var out []byte
	for i := 0; i < n; i++ {
		b, err := record.Build(record.BuildOptions{BaseOffset: int64(i)}, []record.Record{{Timestamp: 1, Value: []byte("v")}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

func TestWholeBatchesCutsAPartialTail(t *testing.T) {
	three := batches(t, 3)
	one := len(batches(t, 1))
	if got, partial := wholeBatches(three); !bytes.Equal(got, three) || partial {
		t.Fatalf("whole input changed: %d bytes, partial %v", len(got), partial)
	}
	if got, partial := wholeBatches(three[:2*one+5]); len(got) != 2*one || !partial {
		t.Fatalf("partial tail: %d bytes, partial %v", len(got), partial)
	}
	if got, partial := wholeBatches(three[:one-1]); len(got) != 0 || !partial {
		t.Fatalf("no whole batch: %d bytes, partial %v", len(got), partial)
	}
	junk := append(batches(t, 1), bytes.Repeat([]byte{0xff}, 80)...)
	if got, _ := wholeBatches(junk); !bytes.Equal(got, junk) {
		t.Fatal("undecodable bytes must reach the storage, which rejects them")
	}
}

// FuzzWholeBatches: a fetch response's record bytes never make the
// batch splitter panic, and what it keeps is a prefix.
func FuzzWholeBatches(f *testing.F) {
	f.Add(batches(f, 2))
	f.Add([]byte{})
	f.Add(make([]byte, 70))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, partial := wholeBatches(b)
		if !bytes.HasPrefix(b, got) || (!partial && len(got) != len(b)) {
			t.Fatalf("kept %d of %d bytes, partial %v", len(got), len(b), partial)
		}
	})
}

// TestFetchSessionIncrementalRequests follows KIP-227 from the
// follower's side: a full request asks for a session, then only changed
// partitions are sent and the dropped ones forgotten; session errors and
// failures make the next request full.
func TestFetchSessionIncrementalRequests(t *testing.T) {
	var s fetchSession
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	round := func(offsets map[int32]int64) *fetchRound {
		r := &fetchRound{req: kmsg.NewPtrFetchRequest(), params: map[TopicPartition]sessionPartition{}}
		var ready []TopicPartition
		for p := int32(0); p < 4; p++ {
			off, ok := offsets[p]
			if !ok {
				continue
			}
			tp := TopicPartition{"t", p}
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset = p, off
			r.params[tp] = sessionPartition{topic: "t", topicID: [16]byte{1}, req: rp}
			ready = append(ready, tp)
		}
		s.build(r, ready, true)
		return r
	}
	listed := func(r *fetchRound) (ps []int32) {
		for _, rt := range r.req.Topics {
			for _, rp := range rt.Partitions {
				ps = append(ps, rp.Partition)
			}
		}
		return ps
	}
	ok := func(r *fetchRound, id int32, code int16) bool {
		resp := kmsg.NewPtrFetchResponse()
		resp.SessionID, resp.ErrorCode = id, code
		return s.answered(r, resp, quiet)
	}

	r := round(map[int32]int64{0: 10, 1: 20, 2: 30})
	if r.req.SessionID != 0 || r.req.SessionEpoch != 0 || !r.full || len(listed(r)) != 3 {
		t.Fatalf("first request: id %d epoch %d full %v %v", r.req.SessionID, r.req.SessionEpoch, r.full, listed(r))
	}
	ok(r, 77, 0)
	// Partition 1 moved, 2 is delayed (forgotten), 0 unchanged.
	r = round(map[int32]int64{0: 10, 1: 25})
	if r.req.SessionID != 77 || r.req.SessionEpoch != 1 || r.full || fmt.Sprint(listed(r)) != "[1]" ||
		len(r.req.ForgottenTopics) != 1 || fmt.Sprint(r.req.ForgottenTopics[0].Partitions) != "[2]" {
		t.Fatalf("incremental: id %d epoch %d %v forgotten %+v", r.req.SessionID, r.req.SessionEpoch, listed(r), r.req.ForgottenTopics)
	}
	ok(r, 77, 0)
	r = round(map[int32]int64{0: 10, 1: 25})
	if r.req.SessionEpoch != 2 || len(listed(r)) != 0 || len(r.req.ForgottenTopics) != 0 {
		t.Fatalf("nothing changed: epoch %d %v %+v", r.req.SessionEpoch, listed(r), r.req.ForgottenTopics)
	}
	if ok(r, 0, kerr.InvalidFetchSessionEpoch.Code) {
		t.Fatal("a session error was processed")
	}
	r = round(map[int32]int64{0: 10, 1: 25})
	if r.req.SessionID != 77 || r.req.SessionEpoch != 0 || len(listed(r)) != 2 {
		t.Fatalf("after a session error: id %d epoch %d %v", r.req.SessionID, r.req.SessionEpoch, listed(r))
	}
	ok(r, 78, 0)
	s.failed()
	r = round(map[int32]int64{0: 11})
	if r.req.SessionID != 78 || r.req.SessionEpoch != 0 || len(listed(r)) != 1 {
		t.Fatalf("after a failed request: id %d epoch %d %v", r.req.SessionID, r.req.SessionEpoch, listed(r))
	}
	if ok(r, 0, kerr.FetchSessionIDNotFound.Code) || s.id != 0 {
		t.Fatal("session not found must drop the id")
	}
	// Sessions off: FINAL epoch, everything listed.
	r = &fetchRound{req: kmsg.NewPtrFetchRequest(), params: map[TopicPartition]sessionPartition{{"t", 0}: {topic: "t"}}}
	s.build(r, []TopicPartition{{"t", 0}}, false)
	if r.req.SessionID != 0 || r.req.SessionEpoch != -1 || len(listed(r)) != 1 {
		t.Fatalf("sessions off: %d %d", r.req.SessionID, r.req.SessionEpoch)
	}
}
