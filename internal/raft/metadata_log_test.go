package raft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"samsa/internal/metadata"
	"samsa/internal/metadata/quorumtest"
)

// metaCluster is an in-process quorum of MetadataLogs over real TCP on
// 127.0.0.1, with voters 0..v-1 and learners after them.
type metaCluster struct {
	t        testing.TB
	voters   map[int32]string
	learners map[int32]string
	dirs     map[int32]string
	logs     map[int32]*MetadataLog // running nodes
	// configure, if set, adjusts a node's config before it opens.
	configure func(id int32, cfg *Config)
	drop      atomic.Pointer[func(from, to int32) bool]
}

func newMetaCluster(t testing.TB, voters, learners int, configure func(int32, *Config)) *metaCluster {
	c := &metaCluster{t: t, voters: map[int32]string{}, learners: map[int32]string{}, dirs: map[int32]string{},
		logs: map[int32]*MetadataLog{}, configure: configure}
	ls := map[int32]net.Listener{}
	for id := int32(0); id < int32(voters+learners); id++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls[id] = l
		if id < int32(voters) {
			c.voters[id] = l.Addr().String()
		} else {
			c.learners[id] = l.Addr().String()
		}
		c.dirs[id] = filepath.Join(t.TempDir(), metadata.LocalLogDir)
	}
	for id, l := range ls {
		c.startWith(id, l)
	}
	t.Cleanup(func() {
		for id := range c.logs {
			c.stop(id)
		}
	})
	return c
}

func (c *metaCluster) ids() []int32 {
	var ids []int32
	for id := range c.voters {
		ids = append(ids, id)
	}
	for id := range c.learners {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (c *metaCluster) start(id int32) {
	c.t.Helper()
	addr := c.voters[id]
	if addr == "" {
		addr = c.learners[id]
	}
	var l net.Listener
	var err error
	deadline := time.Now().Add(testTimeout)
	for {
		if l, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	c.startWith(id, l)
}

func (c *metaCluster) startWith(id int32, l net.Listener) {
	c.t.Helper()
	_, learner := c.learners[id]
	cfg := Config{
		NodeID: id, Voters: c.voters, Learners: c.learners, Learner: learner, Dir: c.dirs[id], ClusterID: testClusterID,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", id),
		TickInterval: 10 * time.Millisecond,
	}
	if c.configure != nil {
		c.configure(id, &cfg)
	}
	ml, err := OpenMetadataLog(cfg)
	if err != nil {
		l.Close()
		c.t.Fatalf("open node %d: %v", id, err)
	}
	filter := func(from, to int32) bool {
		d := c.drop.Load()
		return d != nil && (*d)(from, to)
	}
	ml.Node().tr.drop.Store(&filter)
	go ml.Node().Serve(l)
	c.logs[id] = ml
}

func (c *metaCluster) stop(id int32) {
	c.t.Helper()
	if err := c.logs[id].Close(); err != nil {
		c.t.Errorf("close node %d: %v", id, err)
	}
	delete(c.logs, id)
}

// isolate drops every message to and from the given nodes; nil heals.
func (c *metaCluster) isolate(ids ...int32) {
	if len(ids) == 0 {
		c.drop.Store(nil)
		return
	}
	f := func(from, to int32) bool { return slices.Contains(ids, from) != slices.Contains(ids, to) }
	c.drop.Store(&f)
}

// Members implements quorumtest.Deployment (running nodes, by id).
func (c *metaCluster) Members() []metadata.Quorum {
	var qs []metadata.Quorum
	for _, id := range c.ids() {
		if l := c.logs[id]; l != nil {
			qs = append(qs, l)
		}
	}
	return qs
}

// Restart implements quorumtest.Deployment.
func (c *metaCluster) Restart(t *testing.T) {
	for _, id := range c.ids() {
		c.stop(id)
	}
	for _, id := range c.ids() {
		c.start(id)
	}
}

// active waits for the active controller among the running nodes.
func (c *metaCluster) active(t *testing.T) (int32, *MetadataLog) {
	t.Helper()
	q := quorumtest.Active(t, c)
	for id, l := range c.logs {
		if l == q {
			return id, l
		}
	}
	panic("unreachable")
}

func TestMetadataLogContractOneVoter(t *testing.T) {
	quorumtest.Run(t, func(t *testing.T) quorumtest.Deployment { return newMetaCluster(t, 1, 0, nil) })
}

func TestMetadataLogContractThreeVotersAndLearner(t *testing.T) {
	quorumtest.Run(t, func(t *testing.T) quorumtest.Deployment { return newMetaCluster(t, 3, 1, nil) })
}

func topicNames(im *metadata.Image) []string {
	var names []string
	for n := range im.Topics {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// converge waits until every running node's image holds the active
// controller's state and returns that image.
func (c *metaCluster) converge(t *testing.T) *metadata.Image {
	t.Helper()
	_, a := c.active(t)
	want := a.Publisher().Image()
	for _, id := range c.ids() {
		if l := c.logs[id]; l != nil {
			im := quorumtest.WaitImage(t, l, fmt.Sprintf("offset %d", want.Offset), func(im *metadata.Image) bool { return im.Offset >= want.Offset })
			if !im.SameState(want) {
				t.Fatalf("node %d: topics %v, want %v", id, topicNames(im), topicNames(want))
			}
		}
	}
	return want
}

func TestMetadataLogFailoverLosesNothing(t *testing.T) {
	c := newMetaCluster(t, 3, 1, nil)
	for i := range 5 {
		quorumtest.Append(t, c, quorumtest.TopicRecords(fmt.Sprintf("before%d", i), 2))
	}
	old, a := c.active(t)
	_, epoch0 := a.Active()
	c.stop(old)
	id, a := c.active(t)
	if _, epoch := a.Active(); id == old || epoch <= epoch0 {
		t.Fatalf("new controller %d epoch %d (old %d epoch %d)", id, epoch, old, epoch0)
	}
	if im := a.Publisher().Image(); len(im.Topics) != 5 || im.ControllerID != id {
		t.Fatalf("new controller's image: topics %v, controller %d", topicNames(im), im.ControllerID)
	}
	for i := range 5 {
		quorumtest.Append(t, c, quorumtest.TopicRecords(fmt.Sprintf("after%d", i), 2))
	}
	c.start(old)
	if im := c.converge(t); len(im.Topics) != 10 {
		t.Fatalf("topics after failover: %v", topicNames(im))
	}
	quorumtest.WaitImage(t, c.logs[old], "the new controller id", func(im *metadata.Image) bool { return im.ControllerID == id })
}

func TestMetadataLogMinorityCommitsNothing(t *testing.T) {
	c := newMetaCluster(t, 3, 0, nil)
	quorumtest.Append(t, c, quorumtest.TopicRecords("base", 1))
	old, a := c.active(t)
	c.isolate(old)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	// The cut-off controller either still thinks it leads (the entry
	// never commits) or has stepped down (CheckQuorum): never success.
	if off, err := a.Append(ctx, quorumtest.TopicRecords("minority", 1)); err == nil {
		t.Fatalf("minority side committed at %d", off)
	}
	if ok, _ := a.Active(); ok {
		t.Fatal("cut-off controller still active after an election timeout")
	}
	// The majority elects another controller and commits.
	deadline := time.Now().Add(testTimeout)
	var id int32 = -1
	for id < 0 || id == old {
		for i, l := range c.logs {
			if ok, _ := l.Active(); ok && i != old {
				id = i
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("majority elected no controller")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := c.logs[id].Append(context.Background(), quorumtest.TopicRecords("majority", 1)); err != nil {
		t.Fatal(err)
	}
	c.isolate()
	im := c.converge(t)
	if _, ok := im.Topic("minority"); ok {
		t.Fatal("the minority's entry survived the heal")
	}
	if _, ok := im.Topic("majority"); !ok {
		t.Fatal("the majority's entry is missing")
	}
}

func TestMetadataLogSnapshotCatchUp(t *testing.T) {
	c := newMetaCluster(t, 3, 0, func(_ int32, cfg *Config) { cfg.SnapshotBytes = 2000 })
	quorumtest.Append(t, c, quorumtest.TopicRecords("first", 1))
	leader, _ := c.active(t)
	lagging := (leader + 1) % 3
	c.converge(t)
	c.stop(lagging)
	for i := range 30 {
		quorumtest.Append(t, c, quorumtest.TopicRecords(fmt.Sprintf("while-down-%d", i), 3))
	}
	_, a := c.active(t)
	if first, _ := a.Node().st.FirstIndex(); first < 10 {
		t.Fatalf("controller log starts at %d: not compacted", first)
	}
	c.start(lagging)
	if im := c.converge(t); len(im.Topics) != 31 {
		t.Fatalf("topics %v", topicNames(im))
	}
	if s := status(t, c.logs[lagging].Node()); s.SnapshotIndex == 0 {
		t.Fatal("the lagging node caught up without a snapshot")
	}
	// A restart restores from its own snapshot.
	c.stop(lagging)
	c.start(lagging)
	c.converge(t)
}

// TestMetadataLogBlockedListenerOnLeader blocks a listener of the
// controller itself: its raft goroutine keeps heartbeating (no election,
// the term stays), entries commit on the followers, and the listener
// then catches up in order.
func TestMetadataLogBlockedListenerOnLeader(t *testing.T) {
	c := newMetaCluster(t, 3, 0, nil)
	quorumtest.Append(t, c, quorumtest.TopicRecords("first", 1))
	id, a := c.active(t)
	_, epoch0 := a.Active()
	release := make(chan struct{})
	var calls atomic.Int32
	a.Publisher().Subscribe(func(prev, next *metadata.Image) {
		if calls.Add(1) > 1 {
			<-release
		}
	})
	done := make(chan error, 1)
	go func() {
		_, err := a.Append(context.Background(), quorumtest.TopicRecords("blocked", 1))
		done <- err
	}()
	// The followers apply the entry although the controller's listener
	// holds its publisher.
	for i, l := range c.logs {
		if i != id {
			quorumtest.WaitImage(t, l, "topic blocked", func(im *metadata.Image) bool { _, ok := im.Topic("blocked"); return ok })
		}
	}
	// 30 ticks, three election timeouts: heartbeats flow.
	time.Sleep(300 * time.Millisecond)
	for i, l := range c.logs {
		if ok, epoch := l.Active(); epoch != epoch0 || ok != (i == id) {
			t.Fatalf("node %d: active %v epoch %d, want epoch %d", i, ok, epoch, epoch0)
		}
	}
	if s := status(t, a.Node()); s.LeaderID != id {
		t.Fatalf("leader moved: %+v", s)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.converge(t)
}

func TestMetadataLogMigratesLocalLog(t *testing.T) {
	c := newMetaCluster(t, 1, 0, nil)
	dataDir := filepath.Dir(c.dirs[0])
	c.stop(0)
	old, err := metadata.OpenLocalLog(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	old.Append(quorumtest.TopicRecords("legacy-a", 2))
	v := "compact"
	old.Append([]metadata.Record{{Type: metadata.TypeConfig, Config: &metadata.ConfigRecord{ResourceType: metadata.ResourceTopic, ResourceName: "legacy-a", Name: "cleanup.policy", Value: &v}}})
	old.Close()
	c.start(0)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := metadata.WaitActive(ctx, c.logs[0]); err != nil {
		t.Fatal(err)
	}
	if ok, err := metadata.MigrateLocalLog(ctx, c.logs[0], dataDir); !ok || err != nil {
		t.Fatalf("migrate: %v %v", ok, err)
	}
	im := c.logs[0].Publisher().Image()
	if tp, ok := im.Topic("legacy-a"); !ok || tp.Configs["cleanup.policy"] != "compact" || im.ControllerID != 0 {
		t.Fatalf("migrated image: %+v", im)
	}
	c.stop(0)
	c.start(0)
	if _, err := metadata.WaitActive(ctx, c.logs[0]); err != nil {
		t.Fatal(err)
	}
	if ok, err := metadata.MigrateLocalLog(ctx, c.logs[0], dataDir); ok || err != nil {
		t.Fatalf("second migrate: %v %v", ok, err)
	}
	if got := c.logs[0].Publisher().Image(); !got.SameState(im) {
		t.Fatalf("after restart: %v", topicNames(got))
	}
}

func TestMetadataLogFollowerAppendNamesController(t *testing.T) {
	c := newMetaCluster(t, 3, 1, nil)
	id, _ := c.active(t)
	for i, l := range c.logs {
		if i == id {
			continue
		}
		quorumtest.WaitImage(t, l, "the controller", func(im *metadata.Image) bool { return im.ControllerID == id })
		_, err := l.Append(context.Background(), quorumtest.TopicRecords("x", 1))
		var nc *metadata.NotControllerError
		if !errors.As(err, &nc) || nc.ControllerID != id {
			t.Fatalf("node %d: %v", i, err)
		}
	}
}

// TestMetadataLogLearnerJoinsAtRunTime: a broker-only node configured
// with the voters only (as Kafka's keys allow) gets the metadata once the
// active controller adds it (what BrokerRegistration will do).
func TestMetadataLogLearnerJoinsAtRunTime(t *testing.T) {
	c := newMetaCluster(t, 3, 1, func(_ int32, cfg *Config) { cfg.Learners = nil })
	const learner = 3
	quorumtest.Append(t, c, quorumtest.TopicRecords("before", 2))
	if im := c.logs[learner].Publisher().Image(); im.Offset != -1 || im.ControllerID != -1 {
		t.Fatalf("unadded learner has image at %d, controller %d", im.Offset, im.ControllerID)
	}
	_, a := c.active(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := a.Node().AddLearner(ctx, learner, c.learners[learner]); err != nil {
		t.Fatal(err)
	}
	quorumtest.Append(t, c, quorumtest.TopicRecords("after", 1))
	if im := c.converge(t); len(im.Topics) != 2 {
		t.Fatalf("topics %v", topicNames(im))
	}
}

// TestMetadataLogDeposedLeaderFailsPending cuts the controller off with an
// Append pending that has no deadline: CheckQuorum makes it step down
// within about two election timeouts, and the Append then fails with
// NotControllerError at once (it used to wait until the network healed).
func TestMetadataLogDeposedLeaderFailsPending(t *testing.T) {
	c := newMetaCluster(t, 3, 0, nil)
	quorumtest.Append(t, c, quorumtest.TopicRecords("base", 1))
	old, a := c.active(t)
	c.isolate(old)
	defer c.isolate()
	began := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := a.Append(context.Background(), quorumtest.TopicRecords("cut-off", 1))
		done <- err
	}()
	// 10 ms ticks, 10 ticks an election timeout: the step-down is due
	// within 0.2 s; 5 s leaves room for a loaded machine.
	select {
	case err := <-done:
		var nc *metadata.NotControllerError
		if !errors.As(err, &nc) {
			t.Fatalf("Append on the cut-off leader: %v, want a NotControllerError", err)
		}
		t.Logf("the cut-off leader's Append failed after %v: %v", time.Since(began).Round(time.Millisecond), err)
	case <-time.After(5 * time.Second):
		t.Fatal("the cut-off leader's Append is still pending 5 s after the cut")
	}
	if ok, _ := a.Active(); ok {
		t.Fatal("the cut-off leader is still active")
	}
	c.isolate()
	if im := c.converge(t); func() bool { _, ok := im.Topic("cut-off"); return ok }() {
		t.Fatal("the cut-off leader's entry committed after the heal")
	}
}
