package controller

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
	"samsa/internal/metadata/quorumtest"
	"samsa/internal/raft"
)

// withLearnerHooks wires every controller of r to its raft node, as the
// server does.
func (r *raftControllers) withLearnerHooks() {
	var voters []int32
	for id := range r.logs {
		voters = append(voters, id)
	}
	for id, c := range r.ctrls {
		n := r.logs[id].Node()
		c.SetAddLearner(voters, n.AddLearner)
		c.SetRemoveLearner(n.Learners, n.RemoveLearner)
	}
}

// openLearner opens broker-only node id as a raft learner of r's quorum
// (not yet added) serving on a new listener; it returns its metadata log
// and raft address.
func (r *raftControllers) openLearner(t *testing.T, id int32, dir string) (*raft.MetadataLog, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ml, err := raft.OpenMetadataLog(raft.Config{
		NodeID: id, Voters: r.voters, Learner: true, ClusterID: "cluster", Logger: quiet,
		Dir: dir, TickInterval: 10 * time.Millisecond,
	})
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	go func() { _ = ml.Node().Serve(l) }()
	t.Cleanup(func() { ml.Close() })
	return ml, l.Addr().String()
}

// registerAt registers broker id with its PLAINTEXT listener at addr
// (the learner's raft address: the controller adds the learner there).
func registerAt(t *testing.T, c *Controller, id int32, addr string, inc byte) *kmsg.BrokerRegistrationResponse {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID, req.ClusterID, req.IncarnationID = id, "cluster", [16]byte{inc}
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port = "PLAINTEXT", host, uint16(p)
	req.Listeners = append(req.Listeners, l)
	return c.BrokerRegistration(context.Background(), req)
}

func learnerStatus(t *testing.T, ml *raft.MetadataLog) []int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), quorumtest.Timeout)
	defer cancel()
	s, err := ml.Node().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int32
	for _, l := range s.Learners {
		ids = append(ids, l.NodeID)
	}
	return ids
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(quorumtest.Timeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestControllerUnregisterRemovesLearner: on a 3-voter raft quorum, a
// broker-only node 5 registers and becomes a learner that follows the
// log. Stopped and fenced (session expired), it is unregistered: every
// voter drops the learner and the leader's status (DescribeQuorum's
// observers) no longer lists it. Started again, it registers, is a
// learner again and catches up with what it missed.
func TestControllerUnregisterRemovesLearner(t *testing.T) {
	r := newRaftControllers(t, "broker.session.timeout.ms=300", "broker.heartbeat.interval.ms=50")
	r.withLearnerHooks()
	ctx, cancel := context.WithTimeout(context.Background(), quorumtest.Timeout)
	defer cancel()
	leader, c := r.active(t)
	dir := filepath.Join(t.TempDir(), metadata.LocalLogDir)
	ml, addr := r.openLearner(t, 5, dir)
	if resp := registerAt(t, c, 5, addr, 1); resp.ErrorCode != 0 {
		t.Fatalf("register 5: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	off := c.image().Offset
	quorumtest.WaitImage(t, ml, "the learner to catch up", func(im *metadata.Image) bool { return im.Offset >= off })
	if got := learnerStatus(t, r.logs[leader]); len(got) != 1 || got[0] != 5 {
		t.Fatalf("leader's learners %v", got)
	}
	// A tick while 5 is registered removes nothing.
	c.ReconcileLearners(ctx)
	if _, ok := r.logs[leader].Node().Learners()[5]; !ok {
		t.Fatal("a registered broker's learner was removed")
	}

	// Node 5 stops; its session expires and it is fenced.
	ml.Close()
	time.Sleep(350 * time.Millisecond)
	c.ExpireSessions(ctx)
	if !c.image().Brokers[5].Fenced {
		t.Fatal("broker 5 not fenced")
	}
	req := kmsg.NewPtrUnregisterBrokerRequest()
	req.BrokerID = 5
	if resp := c.UnregisterBroker(ctx, req); resp.ErrorCode != 0 {
		t.Fatalf("unregister: %v %v", kerr.ErrorForCode(resp.ErrorCode), resp.ErrorMessage)
	}
	if got := learnerStatus(t, r.logs[leader]); len(got) != 0 {
		t.Fatalf("leader still lists learners %v after the unregistration", got)
	}
	for _, vl := range r.logs {
		waitUntil(t, "every voter to drop the learner", func() bool {
			_, ok := vl.Node().Learners()[5]
			return !ok
		})
	}

	// Started again (same directory), node 5 registers anew and is a
	// learner again.
	ml, addr = r.openLearner(t, 5, dir)
	if resp := registerAt(t, c, 5, addr, 2); resp.ErrorCode != 0 {
		t.Fatalf("register 5 again: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	off = c.image().Offset
	quorumtest.WaitImage(t, ml, "the re-added learner to catch up", func(im *metadata.Image) bool {
		return im.Offset >= off && !im.Brokers[5].Fenced
	})
	if got := learnerStatus(t, r.logs[leader]); len(got) != 1 || got[0] != 5 {
		t.Fatalf("leader's learners after re-registration %v", got)
	}
}

// TestControllerReconcileLearners: a learner with no broker registration
// (its registration never committed, or the controller that unregistered
// it died before removing it) is removed by the active controller's tick
// once broker.session.timeout.ms has passed since that controller first
// saw it so, not before; a follower's tick does nothing.
func TestControllerReconcileLearners(t *testing.T) {
	r := newRaftControllers(t, "broker.session.timeout.ms=400", "broker.heartbeat.interval.ms=50")
	r.withLearnerHooks()
	ctx, cancel := context.WithTimeout(context.Background(), quorumtest.Timeout)
	defer cancel()
	leader, c := r.active(t)
	_, addr := r.openLearner(t, 6, filepath.Join(t.TempDir(), metadata.LocalLogDir))
	n := r.logs[leader].Node()
	if err := n.AddLearner(ctx, 6, addr); err != nil {
		t.Fatal(err)
	}
	for id, f := range r.ctrls {
		if id != leader {
			f.ReconcileLearners(ctx)
		}
	}
	start := time.Now()
	c.ReconcileLearners(ctx)
	if _, ok := n.Learners()[6]; !ok {
		t.Fatal("learner removed before broker.session.timeout.ms")
	}
	waitUntil(t, "the tick to remove the unregistered learner", func() bool {
		c.ReconcileLearners(ctx)
		_, ok := n.Learners()[6]
		return !ok
	})
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("removed after %v, before the session timeout", d)
	}
	if got := learnerStatus(t, r.logs[leader]); len(got) != 0 {
		t.Fatalf("leader's learners %v", got)
	}
}

// TestControllerReconcileLearnersAfterFailover: the active controller
// unregisters broker-only node 7 but dies before removing its learner
// (it has no removal hook: the window between the commit and the
// removal); the controller that takes over removes the learner at its
// tick, once broker.session.timeout.ms has passed since it became active.
func TestControllerReconcileLearnersAfterFailover(t *testing.T) {
	r := newRaftControllers(t, "broker.session.timeout.ms=300", "broker.heartbeat.interval.ms=50")
	r.withLearnerHooks()
	ctx, cancel := context.WithTimeout(context.Background(), quorumtest.Timeout)
	defer cancel()
	first, c := r.active(t)
	c.SetRemoveLearner(nil, nil)
	ml, addr := r.openLearner(t, 7, filepath.Join(t.TempDir(), metadata.LocalLogDir))
	if resp := registerAt(t, c, 7, addr, 1); resp.ErrorCode != 0 {
		t.Fatalf("register 7: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	ml.Close()
	time.Sleep(350 * time.Millisecond)
	c.ExpireSessions(ctx)
	req := kmsg.NewPtrUnregisterBrokerRequest()
	req.BrokerID = 7
	if resp := c.UnregisterBroker(ctx, req); resp.ErrorCode != 0 {
		t.Fatalf("unregister: %v %v", kerr.ErrorForCode(resp.ErrorCode), resp.ErrorMessage)
	}
	if _, ok := r.logs[first].Node().Learners()[7]; !ok {
		t.Fatal("learner removed without a hook")
	}
	off := c.image().Offset
	r.logs[first].Close()
	delete(r.logs, first)
	next, c := r.active(t)
	quorumtest.WaitImage(t, r.logs[next], "the unregistration", func(im *metadata.Image) bool { return im.Offset >= off })
	n := r.logs[next].Node()
	if _, ok := n.Learners()[7]; !ok {
		t.Fatal("the new leader does not know the learner")
	}
	start := time.Now()
	waitUntil(t, "the new controller to remove the learner", func() bool {
		c.ReconcileLearners(ctx)
		_, ok := n.Learners()[7]
		return !ok
	})
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("removed after %v, before the session timeout", d)
	}
	for _, vl := range r.logs {
		waitUntil(t, "the remaining voters to drop the learner", func() bool {
			_, ok := vl.Node().Learners()[7]
			return !ok
		})
	}
}
