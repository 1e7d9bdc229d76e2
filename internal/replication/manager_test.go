package replication_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"samsa/internal/replication"
)

// watchedFollower counts calls made after it was removed.
type watchedFollower struct {
	*replication.LogFollower
	removed atomic.Bool
	late    atomic.Int32
}

func (w *watchedFollower) check() {
	if w.removed.Load() {
		w.late.Add(1)
	}
}
func (w *watchedFollower) TopicPartition() (string, [16]byte, int32) {
	w.check()
	return w.LogFollower.TopicPartition()
}
func (w *watchedFollower) LeaderEpoch() int32    { w.check(); return w.LogFollower.LeaderEpoch() }
func (w *watchedFollower) LogStartOffset() int64 { w.check(); return w.LogFollower.LogStartOffset() }
func (w *watchedFollower) LogEndOffset() int64   { w.check(); return w.LogFollower.LogEndOffset() }
func (w *watchedFollower) LatestEpoch() int32    { w.check(); return w.LogFollower.LatestEpoch() }
func (w *watchedFollower) AppendAsFollower(r []byte, hw, ls int64) error {
	w.check()
	return w.LogFollower.AppendAsFollower(r, hw, ls)
}
func (w *watchedFollower) TruncateTo(o int64) error { w.check(); return w.LogFollower.TruncateTo(o) }
func (w *watchedFollower) TruncateFullyAndStartAt(o int64) error {
	w.check()
	return w.LogFollower.TruncateFullyAndStartAt(o)
}
func (w *watchedFollower) EndOffsetForEpoch(e int32) (int32, int64) {
	w.check()
	return w.LogFollower.EndOffsetForEpoch(e)
}

// waitGrowing waits until f's log end offset passes from.
func waitGrowing(t *testing.T, f *replication.LogFollower, from int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for f.L.LogEndOffset() <= from {
		if time.Now().After(deadline) {
			t.Fatalf("partition %d stuck at %d", f.L.Partition(), f.L.LogEndOffset())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReplicationManagerMovesAndRemovesPartitions: while the leader takes
// produce continuously, a removed partition's Follower is never called
// again once RemovePartitions returns; a partition added under another
// leader id moves fetchers; a fetcher left without partitions stops.
func TestReplicationManagerMovesAndRemovesPartitions(t *testing.T) {
	s, ctl := startLeader(t, t.TempDir(), t.TempDir(), "127.0.0.1:0")
	defer s.Close()
	addr := s.KafkaAddr()
	registerFollowerBroker(t, addr, ctl)
	const topic = "mv"
	su := setupFollowers(t, newClient(t, addr), topic, 2)
	w0 := &watchedFollower{LogFollower: su.fs[0]}
	w1 := &watchedFollower{LogFollower: su.fs[1]}

	ctx, stop := context.WithCancel(context.Background())
	var producing sync.WaitGroup
	producing.Add(1)
	cl := newClient(t, addr, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	go func() {
		defer producing.Done()
		for i := 0; ctx.Err() == nil; i++ {
			cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: []byte("v")})
		}
	}()
	defer producing.Wait()
	defer stop()

	m, err := replication.NewManager(replication.Options{BrokerID: 2, FetchBackoff: 50 * time.Millisecond, FetchWaitMax: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.AddPartitions(1, addr, []replication.Follower{w0, w1}); err != nil {
		t.Fatal(err)
	}
	waitGrowing(t, su.fs[0], 10)
	waitGrowing(t, su.fs[1], 10)

	m.RemovePartitions([]replication.TopicPartition{{Topic: topic, Partition: 0}})
	w0.removed.Store(true)
	at := su.fs[1].L.LogEndOffset()
	waitGrowing(t, su.fs[1], at) // the other partition goes on
	if st := m.Fetchers(); len(st) != 1 || st[0].Partitions != 1 {
		t.Fatalf("after removing one: %+v", st)
	}

	// Partition 1 now follows "broker 3" (at the same address): it
	// leaves leader 1's fetcher, which stops, for a new one.
	if err := m.AddPartitions(3, addr, []replication.Follower{w1}); err != nil {
		t.Fatal(err)
	}
	if st := m.Fetchers(); len(st) != 1 || st[0].LeaderID != 3 || st[0].Partitions != 1 {
		t.Fatalf("after the move: %+v", st)
	}
	waitGrowing(t, su.fs[1], su.fs[1].L.LogEndOffset())

	m.RemovePartitions([]replication.TopicPartition{{Topic: topic, Partition: 1}})
	w1.removed.Store(true)
	if st := m.Fetchers(); len(st) != 0 {
		t.Fatalf("fetchers left: %+v", st)
	}
	waitNoReplicationGoroutines(t) // idle fetchers stopped without Close
	time.Sleep(200 * time.Millisecond)
	if w0.late.Load() != 0 || w1.late.Load() != 0 {
		t.Fatalf("removed followers called %d and %d times", w0.late.Load(), w1.late.Load())
	}
}

// TestReplicationBlackholedLeaderTimesOut: a leader that accepts the
// connection and never answers (not even ApiVersions) costs each request
// at most replica.socket.timeout.ms; the failures are counted and Close
// returns at once though a request is outstanding.
func TestReplicationBlackholedLeaderTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held sync.WaitGroup
	held.Add(1)
	go func() { // accept and hold connections, reading nothing
		defer held.Done()
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	defer held.Wait()
	defer ln.Close()

	l := openLog(t, "hole", [16]byte{12})
	m, err := replication.NewManager(replication.Options{BrokerID: 2, FetchWaitMax: 100 * time.Millisecond,
		SocketTimeout: 300 * time.Millisecond, FetchBackoff: 50 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AddPartitions(1, ln.Addr().String(), []replication.Follower{replication.NewLogFollower(l, 0)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := m.Fetchers()
		if len(st) == 1 && st[0].Failures >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no timeouts counted: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	m.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
	waitNoReplicationGoroutines(t)
}
