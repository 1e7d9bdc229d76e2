package group

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/coordinator/coordtest"
	"samsa/internal/storage"
)

// txnCommit is one TxnOffsetCommit of one partition; it returns that
// partition's error.
type txnCommit struct {
	group      string
	producerID int64
	epoch      int16
	version    int16 // 0: 3
	gen        int32 // used from v3; 0 means -1
	member     string
	instance   *string
	topic      string
	partition  int32
	offset     int64
	metadata   string
}

func (tc txnCommit) do(c *Coordinator) error {
	r := kmsg.NewPtrTxnOffsetCommitRequest()
	r.Version = tc.version
	if r.Version == 0 {
		r.Version = 3
	}
	r.TransactionalID = "tx-" + tc.group
	r.Group = tc.group
	r.ProducerID, r.ProducerEpoch = tc.producerID, tc.epoch
	r.Generation = tc.gen
	if tc.gen == 0 {
		r.Generation = -1
	}
	r.MemberID, r.InstanceID = tc.member, tc.instance
	t := kmsg.NewTxnOffsetCommitRequestTopic()
	t.Topic = tc.topic
	p := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	p.Partition, p.Offset, p.LeaderEpoch = tc.partition, tc.offset, 4
	md := tc.metadata
	if md == "" {
		md = fmt.Sprintf("txn-%d", tc.offset)
	}
	p.Metadata = &md
	t.Partitions = append(t.Partitions, p)
	r.Topics = append(r.Topics, t)
	resp := c.TxnOffsetCommit(context.Background(), r)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return fmt.Errorf("bad response shape: %+v", resp)
	}
	return errOf(resp.Topics[0].Partitions[0].ErrorCode)
}

// writeMarker writes producerID's transaction marker to the partition, as
// the transaction coordinator does through WriteTxnMarkers.
func writeMarker(t *testing.T, p *coordtest.LogPartition, producerID int64, epoch int16, commit bool) {
	t.Helper()
	if err := p.WriteTxnMarker(storage.TxnMarker{ProducerID: producerID, ProducerEpoch: epoch, Commit: commit}); err != nil {
		t.Fatal(err)
	}
}

// endTxn writes the marker and tells the coordinator, as the server does.
func (b *testBroker) endTxn(producerID int64, epoch int16, commit bool) {
	b.t.Helper()
	writeMarker(b.t, b.part, producerID, epoch, commit)
	b.c.CompleteTxn(0, producerID, epoch, commit)
}

// fetchStable is OffsetFetch v9 with RequireStable of one partition: its
// offset and error.
func fetchStable(t *testing.T, c *Coordinator, group, topic string, partition int32) (int64, error) {
	t.Helper()
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 9
	r.RequireStable = true
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = group
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic = topic
	rt.Partitions = []int32{partition}
	g.Topics = append(g.Topics, rt)
	r.Groups = append(r.Groups, g)
	resp := c.OffsetFetch(context.Background(), r)
	if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 || len(resp.Groups[0].Topics) != 1 {
		t.Fatalf("fetch: %+v", resp)
	}
	p := resp.Groups[0].Topics[0].Partitions[0]
	return p.Offset, errOf(p.ErrorCode)
}

func wantOffset(t *testing.T, c *Coordinator, group, topic string, partition int32, want int64) {
	t.Helper()
	if got, _ := fetchOffset(t, c, group, topic, partition); got != want {
		t.Fatalf("%s %s-%d: committed offset %d, want %d", group, topic, partition, got, want)
	}
}

func TestGroupTxnOffsetCommitPendingUntilCommitMarker(t *testing.T) {
	b := newTestBroker(t, testConfig())
	const pid, epoch = 1000, 3
	if err := (txnCommit{group: "g", producerID: pid, epoch: epoch, topic: "t", partition: 0, offset: 10}).do(b.c); err != nil {
		t.Fatal(err)
	}
	// Written as a transactional batch with the producer's id and epoch.
	batches := logBatches(t, b.part)
	last := batches[len(batches)-1]
	if !last.Transactional() || last.ProducerID != pid || last.ProducerEpoch != epoch || last.BaseSequence != 0 {
		t.Fatalf("batch: transactional %v producer %d/%d sequence %d", last.Transactional(), last.ProducerID, last.ProducerEpoch, last.BaseSequence)
	}
	wantOffset(t, b.c, "g", "t", 0, -1)
	if _, err := fetchStable(t, b.c, "g", "t", 0); !errors.Is(err, kerr.UnstableOffsetCommit) {
		t.Fatalf("require stable while pending: %v, want UNSTABLE_OFFSET_COMMIT", err)
	}
	// Other partitions of the group are stable.
	if off, err := fetchStable(t, b.c, "g", "t", 1); err != nil || off != -1 {
		t.Fatalf("require stable of an untouched partition: %d %v", off, err)
	}
	// A second commit of the same transaction: the batch sequence follows.
	if err := (txnCommit{group: "g", producerID: pid, epoch: epoch, topic: "t", partition: 0, offset: 12}).do(b.c); err != nil {
		t.Fatal(err)
	}
	b.endTxn(pid, epoch, true)
	wantOffset(t, b.c, "g", "t", 0, 12)
	if off, err := fetchStable(t, b.c, "g", "t", 0); err != nil || off != 12 {
		t.Fatalf("require stable after commit: %d %v", off, err)
	}
	// The next transaction of the same producer and epoch (pre-KIP-890
	// producers keep their epoch) is accepted too.
	if err := (txnCommit{group: "g", producerID: pid, epoch: epoch, topic: "t", partition: 0, offset: 15}).do(b.c); err != nil {
		t.Fatal(err)
	}
	b.endTxn(pid, epoch, true)
	wantOffset(t, b.c, "g", "t", 0, 15)
}

func TestGroupTxnOffsetCommitAbortDrops(t *testing.T) {
	b := newTestBroker(t, testConfig())
	if err := commitAs(b.c, "g", "", -1, nil, "t", 0, 5); err != nil {
		t.Fatal(err)
	}
	if err := (txnCommit{group: "g", producerID: 7, epoch: 0, topic: "t", partition: 0, offset: 50}).do(b.c); err != nil {
		t.Fatal(err)
	}
	b.endTxn(7, 0, false)
	wantOffset(t, b.c, "g", "t", 0, 5)
	if off, err := fetchStable(t, b.c, "g", "t", 0); err != nil || off != 5 {
		t.Fatalf("require stable after abort: %d %v", off, err)
	}
	// A marker of a producer that wrote nothing here changes nothing.
	b.endTxn(8, 0, true)
	wantOffset(t, b.c, "g", "t", 0, 5)
	b.restart()
	wantOffset(t, b.c, "g", "t", 0, 5)
}

// TestGroupTxnOffsetCommitOrderingWithPlainCommits: when the commit marker
// comes, a transactional offset replaces the committed one only if it was
// written after it (OffsetMetadataManager.replayEndTransactionMarker), live
// and on replay.
func TestGroupTxnOffsetCommitOrderingWithPlainCommits(t *testing.T) {
	b := newTestBroker(t, testConfig())
	// p0: txn offset written first, plain commit after: the plain one wins.
	if err := (txnCommit{group: "g", producerID: 1, topic: "t", partition: 0, offset: 10}).do(b.c); err != nil {
		t.Fatal(err)
	}
	if err := commitAs(b.c, "g", "", -1, nil, "t", 0, 20); err != nil {
		t.Fatal(err)
	}
	// p1: plain commit first, txn offset after: the transaction wins.
	if err := commitAs(b.c, "g", "", -1, nil, "t", 1, 20); err != nil {
		t.Fatal(err)
	}
	if err := (txnCommit{group: "g", producerID: 1, topic: "t", partition: 1, offset: 10}).do(b.c); err != nil {
		t.Fatal(err)
	}
	// While pending, the plain commits are what OffsetFetch sees.
	wantOffset(t, b.c, "g", "t", 0, 20)
	wantOffset(t, b.c, "g", "t", 1, 20)
	b.endTxn(1, 0, true)
	wantOffset(t, b.c, "g", "t", 0, 20)
	wantOffset(t, b.c, "g", "t", 1, 10)
	b.restart()
	wantOffset(t, b.c, "g", "t", 0, 20)
	wantOffset(t, b.c, "g", "t", 1, 10)
}

// TestGroupTxnOffsetCommitReplay: after a restart committed transactions
// are committed, aborted ones gone and open ones still pending (and
// completable).
func TestGroupTxnOffsetCommitReplay(t *testing.T) {
	b := newTestBroker(t, testConfig())
	for _, c := range []struct {
		pid    int64
		offset int64
	}{{1, 100}, {2, 200}, {3, 300}} {
		if err := commitAs(b.c, "g", "", -1, nil, "t", int32(c.pid), 1); err != nil {
			t.Fatal(err)
		}
		if err := (txnCommit{group: "g", producerID: c.pid, epoch: 2, topic: "t", partition: int32(c.pid), offset: c.offset}).do(b.c); err != nil {
			t.Fatal(err)
		}
	}
	// A group that only exists through an open transaction.
	if err := (txnCommit{group: "only-txn", producerID: 3, epoch: 2, topic: "t", partition: 0, offset: 9}).do(b.c); err != nil {
		t.Fatal(err)
	}
	// Markers written without telling the coordinator (it crashed):
	// the replay must apply them.
	writeMarker(t, b.part, 1, 2, true)
	writeMarker(t, b.part, 2, 2, false)
	b.restart()

	wantOffset(t, b.c, "g", "t", 1, 100)
	wantOffset(t, b.c, "g", "t", 2, 1)
	wantOffset(t, b.c, "g", "t", 3, 1)
	if _, err := fetchStable(t, b.c, "g", "t", 3); !errors.Is(err, kerr.UnstableOffsetCommit) {
		t.Fatalf("open transaction after replay: %v, want UNSTABLE_OFFSET_COMMIT", err)
	}
	if _, err := fetchStable(t, b.c, "only-txn", "t", 0); !errors.Is(err, kerr.UnstableOffsetCommit) {
		t.Fatalf("open transaction of a txn-only group: %v, want UNSTABLE_OFFSET_COMMIT", err)
	}
	for _, id := range []string{"g", "only-txn"} {
		if d := describe(t, b.c, id); d.ErrorCode != 0 || d.State != "Empty" {
			t.Fatalf("group %s after replay: %+v", id, d)
		}
	}
	// Producer 1 keeps writing after the restart: the sequence of its
	// batches continues from what the log holds.
	if err := (txnCommit{group: "g", producerID: 1, epoch: 2, topic: "t", partition: 1, offset: 110}).do(b.c); err != nil {
		t.Fatal(err)
	}
	b.endTxn(3, 2, true)
	b.endTxn(1, 2, true)
	wantOffset(t, b.c, "g", "t", 3, 300)
	wantOffset(t, b.c, "only-txn", "t", 0, 9)
	wantOffset(t, b.c, "g", "t", 1, 110)
	b.restart()
	wantOffset(t, b.c, "g", "t", 1, 110)
	wantOffset(t, b.c, "g", "t", 3, 300)
	wantOffset(t, b.c, "only-txn", "t", 0, 9)
}

func TestGroupTxnOffsetCommitValidation(t *testing.T) {
	cfg := testConfig()
	cfg.OffsetMetadataMaxBytes = 10
	cfg.TopicPartitionExists = func(topic string, partition int32) bool { return topic != "missing" }
	b := newTestBroker(t, cfg)
	ctx := testCtx(t)
	iid := "static-1"
	cl := newClient(b.c, "g", "c1")
	cl.instance = &iid
	if err := cl.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	other := "other-member"
	otherIID := "static-2"
	ok := txnCommit{group: "g", producerID: 5, gen: cl.generation, member: cl.memberID, instance: &iid,
		topic: "t", partition: 0, offset: 1}
	for _, c := range []struct {
		name string
		mod  func(*txnCommit)
		want error
	}{
		{"member of the generation", func(*txnCommit) {}, nil},
		{"member without generation", func(tc *txnCommit) { tc.gen = -1; tc.instance = nil }, kerr.IllegalGeneration},
		{"next generation", func(tc *txnCommit) { tc.gen = cl.generation + 1 }, kerr.IllegalGeneration},
		{"unknown member", func(tc *txnCommit) { tc.member = other; tc.instance = nil }, kerr.UnknownMemberID},
		{"unknown instance", func(tc *txnCommit) { tc.instance = &otherIID }, kerr.UnknownMemberID},
		{"fenced instance", func(tc *txnCommit) { tc.member = other }, kerr.FencedInstanceID},
		{"v3 without generation or member", func(tc *txnCommit) { tc.gen, tc.member, tc.instance = 0, "", nil }, nil},
		{"v2 (no generation) on a Stable group", func(tc *txnCommit) { tc.version = 2; tc.gen = 99; tc.member = other }, nil},
		{"unknown group with a generation", func(tc *txnCommit) { tc.group = "nope" }, kerr.IllegalGeneration},
		{"unknown group without generation", func(tc *txnCommit) { tc.group = "new"; tc.gen, tc.member, tc.instance = 0, "", nil }, nil},
		{"empty group id", func(tc *txnCommit) { tc.group = "" }, kerr.InvalidGroupID},
		{"metadata too large", func(tc *txnCommit) { tc.metadata = strings.Repeat("x", 11) }, kerr.OffsetMetadataTooLarge},
		{"unknown topic", func(tc *txnCommit) { tc.topic = "missing" }, kerr.UnknownTopicOrPartition},
	} {
		tc := ok
		c.mod(&tc)
		if err := tc.do(b.c); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// A group created by a refused commit does not linger.
	if d := describe(t, b.c, "nope"); d.State != "Dead" {
		t.Errorf("group of a refused commit: %s", d.State)
	}
	// A fenced producer epoch (the marker of epoch 6 passed) is refused.
	b.endTxn(5, 6, false)
	if err := (txnCommit{group: "new", producerID: 5, epoch: 5, topic: "t", partition: 0, offset: 2}).do(b.c); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Errorf("old epoch: %v, want INVALID_PRODUCER_EPOCH", err)
	}
	// Not coordinator once the partition is unloaded.
	b.c.Unload(0)
	if err := (txnCommit{group: "g", producerID: 5, topic: "t", offset: 3}).do(b.c); !errors.Is(err, kerr.NotCoordinator) {
		t.Errorf("unloaded: %v, want NOT_COORDINATOR", err)
	}
}

// gatedPartition is a Partition whose reads wait until the gate opens.
type gatedPartition struct {
	*coordtest.LogPartition
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func (p *gatedPartition) Read(offset int64, maxBytes int32) ([]byte, error) {
	p.once.Do(func() { close(p.entered) })
	<-p.gate
	return p.LogPartition.Read(offset, maxBytes)
}

// TestGroupTxnOffsetCommitMarkerWhileLoading: a marker written after the
// replay took its end offset, reported while the partition loads, is
// applied once it is loaded; requests meanwhile answer
// COORDINATOR_LOAD_IN_PROGRESS.
func TestGroupTxnOffsetCommitMarkerWhileLoading(t *testing.T) {
	b := newTestBroker(t, testConfig())
	if err := (txnCommit{group: "g", producerID: 9, topic: "t", partition: 0, offset: 42}).do(b.c); err != nil {
		t.Fatal(err)
	}
	b.c.Unload(0)
	gp := &gatedPartition{LogPartition: b.part, entered: make(chan struct{}), gate: make(chan struct{})}
	b.c.Load(0, gp)
	<-gp.entered
	if err := (txnCommit{group: "g", producerID: 9, topic: "t", offset: 43}).do(b.c); !errors.Is(err, kerr.CoordinatorLoadInProgress) {
		t.Errorf("while loading: %v, want COORDINATOR_LOAD_IN_PROGRESS", err)
	}
	b.endTxn(9, 0, true)
	close(gp.gate)
	waitLoaded(t, b.c, "g")
	wantOffset(t, b.c, "g", "t", 0, 42)
}

// TestGroupTxnOffsetsDeleteAndExpiry: pending offsets keep their group
// from expiring; DeleteGroups removes them with tombstones, so a later
// commit marker and a replay bring nothing back.
func TestGroupTxnOffsetsDeleteAndExpiry(t *testing.T) {
	clock := coordtest.NewClock(time.UnixMilli(time.Now().UnixMilli()))
	cfg := testConfig()
	cfg.Now = clock.Now
	cfg.OffsetsRetention = time.Hour
	b := newTestBroker(t, cfg)
	if err := (txnCommit{group: "g", producerID: 4, topic: "t", partition: 0, offset: 8}).do(b.c); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	b.c.ExpireOffsetsNow()
	if d := describe(t, b.c, "g"); d.State != "Empty" {
		t.Fatalf("group with an open transaction after a sweep: %s", d.State)
	}
	dr := kmsg.NewPtrDeleteGroupsRequest()
	dr.Groups = []string{"g"}
	if resp := b.c.DeleteGroups(context.Background(), dr); resp.Groups[0].ErrorCode != 0 {
		t.Fatalf("delete: %v", errOf(resp.Groups[0].ErrorCode))
	}
	b.endTxn(4, 0, true)
	if d := describe(t, b.c, "g"); d.State != "Dead" {
		t.Fatalf("deleted group after the commit marker: %s", d.State)
	}
	b.restart()
	if d := describe(t, b.c, "g"); d.State != "Dead" {
		t.Fatalf("deleted group after replay: %s", d.State)
	}
}

// TestGroupTxnOffsetCommitOffsetDelete: OffsetDelete of a partition with
// only a pending offset writes its tombstone and drops it.
func TestGroupTxnOffsetCommitOffsetDelete(t *testing.T) {
	b := newTestBroker(t, testConfig())
	if err := (txnCommit{group: "g", producerID: 4, topic: "t", partition: 0, offset: 8}).do(b.c); err != nil {
		t.Fatal(err)
	}
	r := kmsg.NewPtrOffsetDeleteRequest()
	r.Group = "g"
	rt := kmsg.NewOffsetDeleteRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewOffsetDeleteRequestTopicPartition()
	rt.Partitions = append(rt.Partitions, rp)
	r.Topics = append(r.Topics, rt)
	if resp := b.c.OffsetDelete(context.Background(), r); resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete: %+v", resp)
	}
	if off, err := fetchStable(t, b.c, "g", "t", 0); err != nil || off != -1 {
		t.Fatalf("after offset delete: %d %v", off, err)
	}
	b.endTxn(4, 0, true)
	wantOffset(t, b.c, "g", "t", 0, -1)
	b.restart()
	wantOffset(t, b.c, "g", "t", 0, -1)
}

// offsetsSnapshot is every group's committed and pending offsets, as text.
func offsetsSnapshot(t *testing.T, c *Coordinator) map[string]string {
	t.Helper()
	out := make(map[string]string)
	withPartition(t, c, func(ps *partition) {
		for id, g := range ps.groups {
			var sb strings.Builder
			for _, tp := range sortedTopicPartitions(g.offsets) {
				v := g.offsets[tp]
				fmt.Fprintf(&sb, "%s-%d=%d@%d ", tp.topic, tp.partition, v.offset, v.recordOffset)
			}
			for pid, m := range g.txnOffsets {
				for _, tp := range sortedTopicPartitions(m) {
					fmt.Fprintf(&sb, "pending[%d]%s-%d=%d ", pid, tp.topic, tp.partition, m[tp].offset)
				}
			}
			out[id] = sb.String()
		}
	})
	return out
}

// TestGroupTxnOffsetCommitConcurrentMatchesReplay: producers commit and
// abort transactions while plain commits hit the same partitions; what the
// coordinator holds in memory is exactly what a replay of the log gives.
func TestGroupTxnOffsetCommitConcurrentMatchesReplay(t *testing.T) {
	b := newTestBroker(t, testConfig())
	const producers, rounds = 4, 15
	var wg sync.WaitGroup
	errs := make(chan error, producers+1)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pid := int64(100 + p)
			for r := range rounds {
				group := fmt.Sprintf("g%d", r%3)
				tc := txnCommit{group: group, producerID: pid, topic: "t", partition: int32(r % 2), offset: int64(1000*p + r)}
				if err := tc.do(b.c); err != nil {
					errs <- fmt.Errorf("producer %d round %d: %w", pid, r, err)
					return
				}
				if r == rounds-1 {
					return // left open
				}
				commit := r%4 != 3
				writeMarker(t, b.part, pid, 0, commit)
				b.c.CompleteTxn(0, pid, 0, commit)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for r := range 2 * rounds {
			if err := commitAs(b.c, fmt.Sprintf("g%d", r%3), "", -1, nil, "t", int32(r%2), int64(r)); err != nil {
				errs <- fmt.Errorf("plain commit %d: %w", r, err)
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	live := offsetsSnapshot(t, b.c)
	b.restart()
	replayed := offsetsSnapshot(t, b.c)
	if len(live) != 3 {
		t.Fatalf("groups: %v", live)
	}
	// Every producer's last transaction (round 14, group g2) is open.
	if n := strings.Count(live["g2"], "pending["); n != producers {
		t.Errorf("g2: %d open transactions, want %d: %s", n, producers, live["g2"])
	}
	for id, want := range live {
		if got := replayed[id]; got != want && !sameFields(got, want) {
			t.Errorf("group %s:\n live     %s\n replayed %s", id, want, got)
		}
	}
}

// sameFields compares two snapshots regardless of the order of their
// pending entries (map order).
func sameFields(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	if len(fa) != len(fb) {
		return false
	}
	seen := make(map[string]int)
	for _, f := range fa {
		seen[f]++
	}
	for _, f := range fb {
		if seen[f]--; seen[f] < 0 {
			return false
		}
	}
	return true
}
