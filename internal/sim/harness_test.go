package sim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/config"
	"samsa/internal/controller"
	"samsa/internal/metadata"
	"samsa/internal/record"
	"samsa/internal/replica"
	"samsa/internal/replication"
	"samsa/internal/storage"
)

// The harness. One goroutine (the test's, inside a synctest bubble) does
// everything: the clock is the bubble's fake clock, advanced by stepDur
// per step, and synctest.Wait after every action lets the goroutines the
// components start themselves (the replica manager's AlterPartition
// senders, the quorum's publisher, the storage loops) reach a blocking
// point before the next action, so a seed replays the same run.

const (
	topicName = "sim"
	stepDur   = 100 * time.Millisecond
	// minISR is the topic's min.insync.replicas.
	minISR = 2
	// ackTimeoutSteps is the acks=all request timeout (30 s).
	ackTimeoutSteps = 300
	// healSteps is how long the final phase runs without faults.
	healSteps = 400
	// controllerNode is the controller's end of a link (brokers are 1..n).
	controllerNode = 0
)

// brokerProps are the broker and controller settings of the simulation:
// short sessions and lag time so that faults have effects within a few
// dozen steps.
var brokerProps = []string{
	"broker.session.timeout.ms=1500",
	"broker.heartbeat.interval.ms=200",
	"replica.lag.time.max.ms=1000",
	"log.cleaner.enable=false",
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// options choose the run. The broken* options are negative controls: a
// checker that does not fail with them would not see the bug either.
type options struct {
	seed       int64
	steps      int
	brokers    int
	partitions int
	// unclean sets unclean.leader.election.enable=true on the topic:
	// out-of-ISR leaders lose acknowledged records.
	unclean bool
	// brokenNoTruncate makes followers send no last fetched epoch and
	// ignore diverging epochs, so they keep records the leader does not
	// have (a fetcher without KIP-101/595 truncation).
	brokenNoTruncate bool
	// calm (directed tests): no random faults, drops or delays; every
	// step delivers all metadata, fetches and checks every broker, and
	// produces nothing by itself.
	calm bool
}

// violation is a broken invariant.
type violation struct {
	step int
	kind string // "lost", "divergent", "hw", "epoch", "mirror"
	msg  string
}

func (v *violation) Error() string { return fmt.Sprintf("step %d: %s: %s", v.step, v.kind, v.msg) }

// world is the simulated cluster.
type world struct {
	t   testing.TB
	o   options
	rng *rand.Rand
	cfg *config.Config
	q   *metadata.LocalQuorum
	ctl *controller.Controller
	// images are the distinct images the controller applied, in order;
	// brokers apply them only when the simulation delivers them.
	images  []*metadata.Image
	brokers []*broker
	step    int

	// mu guards alters: the AlterPartition senders (goroutines of the
	// replica managers) queue there.
	mu     sync.Mutex
	alters []*alterCall
	// held are the AlterPartitions the harness has taken from alters,
	// in a deterministic order, each with the step it is due.
	held []*alterCall

	// cuts are the cut links (a < b; controllerNode is the controller)
	// and the step each heals at.
	cuts map[[2]int32]int

	nextValue int             // unique record values
	pending   []*pendingAck   // acks=all produces not answered yet
	acked     []*ackedLog     // per partition
	hwSeen    map[hwKey]int64 // a leader's last high watermark per epoch
	// viewEpoch is each broker's last leader epoch per partition, as its
	// replica manager knew it (never goes back, restarts included).
	viewEpoch map[[2]int32]int32
	epochs    []metadata.Partition // per partition: last leader/epoch in the images

	// inflight are fetch answers the network delays, in the order the
	// leader gave them; a follower has at most one per partition.
	inflight []*heldFetch

	stats map[string]int
	// trace is the last events, printed on failure; hash sums all of
	// them (two runs of one seed must agree).
	trace []string
	hash  uint64
	fail  *violation
}

type hwKey struct {
	broker, partition, epoch int32
}

// broker is one simulated broker process and its data dir.
type broker struct {
	id  int32
	dir string
	// alive: its managers are open. inc counts its starts.
	alive bool
	inc   int
	logs  *storage.Manager
	rm    *replica.Manager
	// image is the index in world.images of the image it applied.
	image int
	// epoch is its broker epoch (-1: not registered in this run), for
	// the harness; sharedEpoch the same for the replica manager's
	// AlterPartition senders (their own goroutines). Set by setEpoch.
	epoch         int64
	sharedEpoch   atomic.Int64
	incarnationID [16]byte
	// serving: registered and caught up with the registration; only
	// then does it answer produces and fetches (the server binds its
	// client listeners after registration).
	serving bool
	// shutdown: a controlled shutdown is under way.
	shutdown bool
	// restartAt is the step a stopped broker starts again.
	restartAt int
	// frozenUntil: metadata is not delivered to it before this step.
	frozenUntil int
	// mirrors are its logs as last read (per partition).
	mirrors []*mirror
}

func (b *broker) setEpoch(e int64) {
	b.epoch = e
	b.sharedEpoch.Store(e)
}

// alterCall is one AlterPartition from a leader, waiting for the harness.
type alterCall struct {
	from  int32
	inc   int
	req   replica.AlterISR
	ctx   context.Context
	reply chan alterReply
	due   int
}

type alterReply struct {
	res replica.AlterISRResult
	err error
}

// updater is a broker incarnation's replica.ISRUpdater: it queues the
// call for the harness and waits for its answer.
type updater struct {
	w   *world
	b   *broker
	inc int
}

var errDropped = errors.New("sim: AlterPartition dropped")

func (u *updater) AlterPartition(ctx context.Context, req replica.AlterISR) (replica.AlterISRResult, error) {
	c := &alterCall{from: u.b.id, inc: u.inc, req: req, ctx: ctx, reply: make(chan alterReply, 1)}
	u.w.mu.Lock()
	u.w.alters = append(u.w.alters, c)
	u.w.mu.Unlock()
	select {
	case r := <-c.reply:
		return r.res, r.err
	case <-ctx.Done():
		return replica.AlterISRResult{}, ctx.Err()
	}
}

// ackedLog is a partition's acknowledged records: values[offset] is the
// value acknowledged at offset, "" where none was (values are never
// empty); n counts them.
type ackedLog struct {
	values []string
	n      int
}

func (a *ackedLog) get(off int64) string {
	if off < int64(len(a.values)) {
		return a.values[off]
	}
	return ""
}

func (a *ackedLog) set(off int64, v string) {
	for int64(len(a.values)) <= off {
		a.values = append(a.values, "")
	}
	if a.values[off] == "" {
		a.n++
	}
	a.values[off] = v
}

// heldFetch is a fetch answer on its way back to the follower: the
// leader served the request (and recorded the follower's position) when
// it was sent.
type heldFetch struct {
	b      *broker
	inc    int
	i      int32
	p      *replica.Partition
	leader int32
	epoch  int32
	offset int64
	res    replica.FetchResult
	due    int
}

// pendingAck is an acks=all produce waiting for the high watermark.
type pendingAck struct {
	broker    *broker
	inc       int
	p         *replica.Partition
	partition int32
	epoch     int32
	first     int64
	values    []string
	sent      int
}

// mirror is a log as the harness last read it: batch headers and record
// values by offset (the simulation never deletes records, so offsets
// start at 0).
type mirror struct {
	batches []batchInfo
	values  []string
}

type batchInfo struct {
	base, last int64
	epoch      int32
	crc        uint32
}

func newWorld(t testing.TB, o options) *world {
	if o.brokers == 0 {
		o.brokers = 3
	}
	if o.partitions == 0 {
		o.partitions = 2
	}
	cfg, err := config.Load("", brokerProps, quiet)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	q, err := metadata.OpenLocalQuorum(filepath.Join(root, "controller"), "sim", controllerNode)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{
		t: t, o: o, rng: rand.New(rand.NewSource(o.seed)), cfg: cfg, q: q,
		ctl:       controller.New(q, cfg, quiet),
		cuts:      map[[2]int32]int{},
		hwSeen:    map[hwKey]int64{},
		viewEpoch: map[[2]int32]int32{},
		stats:     map[string]int{},
		hash:      fnv.New64a().Sum64(),
	}
	w.images = []*metadata.Image{q.Applied()}
	for range o.partitions {
		w.acked = append(w.acked, &ackedLog{})
		w.epochs = append(w.epochs, metadata.Partition{Leader: -1, LeaderEpoch: -1})
	}
	for id := int32(1); id <= int32(o.brokers); id++ {
		b := &broker{id: id, dir: filepath.Join(root, "broker-"+strconv.Itoa(int(id)))}
		w.brokers = append(w.brokers, b)
		w.start(b)
	}
	// Everyone registers before the topic exists, so it is placed on
	// every broker.
	for _, b := range w.brokers {
		w.register(b)
		if b.epoch < 0 {
			t.Fatalf("broker %d did not register", b.id)
		}
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topicName, int32(o.partitions), int16(min(o.brokers, 3))
	conf := func(k, v string) {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, &v
		rt.Configs = append(rt.Configs, c)
	}
	conf("min.insync.replicas", strconv.Itoa(minISR))
	conf("unclean.leader.election.enable", strconv.FormatBool(o.unclean))
	req.Topics = append(req.Topics, rt)
	resp := w.ctl.CreateTopics(context.Background(), req)
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create topic: %v", kerr.ErrorForCode(code))
	}
	w.captureImage()
	for _, b := range w.brokers {
		w.deliver(b, len(w.images)-1)
	}
	return w
}

// close stops every broker and the controller (the bubble must end
// with no goroutine left).
func (w *world) close() {
	for _, b := range w.brokers {
		if b.alive {
			w.stop(b)
		}
	}
	_ = w.q.Close()
}

// event records one step of the run in the trace.
func (w *world) event(format string, args ...any) {
	s := fmt.Sprintf("%d: ", w.step) + fmt.Sprintf(format, args...)
	h := fnv.New64a()
	_, _ = fmt.Fprintf(h, "%d|%s", w.hash, s)
	w.hash = h.Sum64()
	w.trace = append(w.trace, s)
	if len(w.trace) > 400 {
		w.trace = w.trace[len(w.trace)-300:]
	}
}

// violate records the first broken invariant.
func (w *world) violate(kind, format string, args ...any) {
	if w.fail != nil {
		return
	}
	w.fail = &violation{step: w.step, kind: kind, msg: fmt.Sprintf(format, args...)}
	w.event("VIOLATION %s", w.fail)
}

// --- brokers ---

// start opens a broker's managers on its data dir (a restart after a
// crash or a shutdown) and applies the last image it had.
func (w *world) start(b *broker) {
	var err error
	b.logs, err = storage.OpenManager(storage.ManagerOptions{
		Dirs: []string{b.dir}, Logger: quiet, DefaultConfig: replica.StorageConfig(w.cfg, nil), CleanerDisabled: true,
	})
	if err != nil {
		w.t.Fatalf("broker %d: open logs: %v", b.id, err)
	}
	b.inc++
	b.alive, b.serving, b.shutdown = true, false, false
	b.setEpoch(-1)
	b.incarnationID = [16]byte{byte(b.id), byte(b.inc), byte(b.inc >> 8)}
	b.rm = replica.New(b.id, b.logs, w.cfg, quiet)
	b.rm.SetReplication(replica.ReplicationOptions{
		ISRUpdater:  &updater{w: w, b: b, inc: b.inc},
		BrokerEpoch: b.sharedEpoch.Load,
	})
	b.rm.Apply(nil, w.images[b.image])
	b.mirrors = make([]*mirror, w.o.partitions)
	for i := range b.mirrors {
		b.mirrors[i] = &mirror{}
	}
	w.syncMirrors(b)
	w.event("broker %d started (incarnation %d) at image offset %d", b.id, b.inc, w.images[b.image].Offset)
}

// stop closes a broker's managers (a clean stop: final flushes and
// checkpoints).
func (w *world) stop(b *broker) {
	w.closeManagers(b)
	w.event("broker %d stopped", b.id)
}

// kill stops a broker as kill -9 does: its data dir keeps exactly what
// the process had written (the page cache survives a process crash), not
// what a clean close would add (final checkpoints, producer snapshots,
// index trims). The dir is copied first, while every storage goroutine
// is parked (synctest.Wait), and put back after the managers closed.
func (w *world) kill(b *broker) {
	synctest.Wait()
	snap := b.dir + ".kill"
	if err := copyDir(b.dir, snap); err != nil {
		w.t.Fatalf("broker %d: copy data dir: %v", b.id, err)
	}
	w.closeManagers(b)
	if err := os.RemoveAll(b.dir); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Rename(snap, b.dir); err != nil {
		w.t.Fatal(err)
	}
	w.event("broker %d killed", b.id)
}

// copyDir copies the regular files and directories under src to dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, data, 0o644)
	})
}

func (w *world) closeManagers(b *broker) {
	b.rm.Close()
	if err := b.logs.Close(); err != nil {
		w.t.Fatalf("broker %d: close logs: %v", b.id, err)
	}
	b.alive, b.serving, b.shutdown = false, false, false
	b.setEpoch(-1)
	b.rm, b.logs = nil, nil
	synctest.Wait()
}

// reachable reports whether the link between a and b is up.
func (w *world) reachable(a, b int32) bool {
	if a > b {
		a, b = b, a
	}
	_, cut := w.cuts[[2]int32{a, b}]
	return !cut
}

func (w *world) register(b *broker) {
	if !w.reachable(b.id, controllerNode) {
		return
	}
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID, req.ClusterID, req.IncarnationID = b.id, "sim", b.incarnationID
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port = "PLAINTEXT", "127.0.0.1", uint16(9000+b.id)
	req.Listeners = append(req.Listeners, l)
	resp := w.ctl.BrokerRegistration(context.Background(), req)
	w.captureImage()
	if resp.ErrorCode != 0 {
		w.event("broker %d registration: %v", b.id, kerr.ErrorForCode(resp.ErrorCode))
		return
	}
	b.setEpoch(resp.BrokerEpoch)
	w.event("broker %d registered, epoch %d", b.id, b.epoch)
}

func (w *world) heartbeat(b *broker) {
	if !w.reachable(b.id, controllerNode) {
		return
	}
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch = b.id, b.epoch
	req.CurrentMetadataOffset = w.images[b.image].Offset
	req.WantShutdown = b.shutdown
	resp := w.ctl.BrokerHeartbeat(context.Background(), req)
	w.captureImage()
	switch resp.ErrorCode {
	case 0:
	case kerr.StaleBrokerEpoch.Code, kerr.BrokerIDNotRegistered.Code:
		w.event("broker %d heartbeat: %v; registering again", b.id, kerr.ErrorForCode(resp.ErrorCode))
		b.serving = false
		b.setEpoch(-1)
		return
	default:
		return
	}
	if b.shutdown && resp.ShouldShutdown {
		w.event("broker %d: controlled shutdown done", b.id)
		w.stats["controlled shutdowns"]++
		w.stop(b)
		b.restartAt = w.step + 10 + w.rng.Intn(90)
	}
}

// deliver applies the images up to index to on b.
func (w *world) deliver(b *broker, to int) {
	if to <= b.image {
		return
	}
	prev := w.images[b.image]
	b.rm.Apply(prev, w.images[to])
	b.image = to
	synctest.Wait()
	w.syncMirrors(b)
}

// captureImage appends the controller's applied image when it changed,
// and checks that leader epochs only grow and change with every leader
// change.
func (w *world) captureImage() {
	im := w.q.Applied()
	if im.Offset == w.images[len(w.images)-1].Offset {
		return
	}
	w.images = append(w.images, im)
	t := im.Topics[topicName]
	if t == nil {
		return
	}
	for i, mp := range t.Partitions {
		old := w.epochs[i]
		switch {
		case mp.LeaderEpoch < old.LeaderEpoch:
			w.violate("epoch", "partition %d: leader epoch went back from %d to %d", i, old.LeaderEpoch, mp.LeaderEpoch)
		case mp.Leader != old.Leader && mp.LeaderEpoch == old.LeaderEpoch:
			w.violate("epoch", "partition %d: leader changed %d -> %d in epoch %d", i, old.Leader, mp.Leader, mp.LeaderEpoch)
		}
		if mp.LeaderEpoch != old.LeaderEpoch || !slices.Equal(mp.ISR, old.ISR) {
			w.event("image %d: partition %d leader %d epoch %d isr %v", im.Offset, i, mp.Leader, mp.LeaderEpoch, mp.ISR)
		}
		w.epochs[i] = mp
	}
}

// --- AlterPartition ---

// takeAlters moves newly queued AlterPartitions to held, in a
// deterministic order, each with its delay.
func (w *world) takeAlters() {
	synctest.Wait()
	w.mu.Lock()
	calls := w.alters
	w.alters = nil
	w.mu.Unlock()
	slices.SortFunc(calls, func(a, b *alterCall) int {
		if a.from != b.from {
			return int(a.from - b.from)
		}
		return int(a.req.Partition - b.req.Partition)
	})
	for _, c := range calls {
		c.due = w.step
		if !w.o.calm && w.rng.Intn(10) >= 6 {
			c.due = w.step + 1 + w.rng.Intn(30)
		}
		w.held = append(w.held, c)
	}
}

// processAlters answers the held AlterPartitions that are due: dropped
// when the sender cannot reach the controller (or by chance), otherwise
// sent to the controller, whose answer is sometimes lost.
func (w *world) processAlters() {
	w.takeAlters()
	var keep []*alterCall
	for _, c := range w.held {
		b := w.brokers[c.from-1]
		if c.ctx.Err() != nil || !b.alive || b.inc != c.inc {
			continue // its manager closed; the sender returned
		}
		if c.due > w.step {
			keep = append(keep, c)
			continue
		}
		ids := make([]int32, len(c.req.NewISR))
		for i, m := range c.req.NewISR {
			ids[i] = m.BrokerID
		}
		if !w.reachable(c.from, controllerNode) || w.chance(1, 20) {
			w.event("AlterPartition from %d p%d isr %v dropped", c.from, c.req.Partition, ids)
			w.stats["alters dropped"]++
			c.reply <- alterReply{err: errDropped}
			continue
		}
		res, err := w.sendAlter(c.req)
		w.captureImage()
		if err == nil && w.chance(1, 20) {
			w.event("AlterPartition from %d p%d isr %v: answer lost (%d)", c.from, c.req.Partition, ids, res.ErrorCode)
			w.stats["alter answers lost"]++
			err = errDropped
		} else {
			w.event("AlterPartition from %d p%d isr %v pepoch %d: %d pepoch %d isr %v", c.from, c.req.Partition, ids, c.req.PartitionEpoch, res.ErrorCode, res.PartitionEpoch, res.ISR)
			w.stats["alters answered"]++
		}
		c.reply <- alterReply{res: res, err: err}
	}
	w.held = keep
	synctest.Wait()
}

// sendAlter is the server's isrUpdater without the network: the request
// as AlterPartition v3 to the controller, the partition's answer back.
func (w *world) sendAlter(r replica.AlterISR) (replica.AlterISRResult, error) {
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version = 3
	req.BrokerID, req.BrokerEpoch = r.LeaderID, r.BrokerEpoch
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.TopicID, rt.Topic = r.TopicID, r.Topic
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = r.Partition, r.LeaderEpoch, r.PartitionEpoch
	for _, m := range r.NewISR {
		rp.NewISR = append(rp.NewISR, m.BrokerID)
		e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		e.BrokerID, e.BrokerEpoch = m.BrokerID, m.BrokerEpoch
		rp.NewEpochISR = append(rp.NewEpochISR, e)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := w.ctl.AlterPartition(context.Background(), req)
	if resp.ErrorCode != 0 {
		return replica.AlterISRResult{ErrorCode: resp.ErrorCode}, nil
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Partition == r.Partition {
				return replica.AlterISRResult{ErrorCode: p.ErrorCode, LeaderID: p.LeaderID, LeaderEpoch: p.LeaderEpoch,
					PartitionEpoch: p.PartitionEpoch, ISR: p.ISR}, nil
			}
		}
	}
	return replica.AlterISRResult{}, errors.New("sim: AlterPartition answer without the partition")
}

// --- the data path ---

// fetchRound plays b's replica fetcher once: one fetch per partition it
// follows from the leader it knows, applied as internal/replication does.
func (w *world) fetchRound(b *broker) {
	for i := range w.o.partitions {
		p, err := b.rm.Replica(topicName, int32(i))
		if err != nil || p.IsLeader() || p.Leader() < 0 || p.Leader() == b.id || w.fetching(b, int32(i)) {
			continue
		}
		lb := w.brokers[p.Leader()-1]
		if !lb.alive || !lb.serving || !w.reachable(b.id, lb.id) {
			continue
		}
		lp, err := lb.rm.Replica(topicName, int32(i))
		if err != nil {
			continue
		}
		lastEpoch := p.LatestEpoch()
		if w.o.brokenNoTruncate {
			lastEpoch = -1
		}
		maxBytes := int32(1 << 20)
		if w.rng.Intn(4) == 0 {
			maxBytes = int32(1 + w.rng.Intn(300)) // one batch (KIP-74), sometimes a few
		}
		fp := replica.FetchParams{
			ReplicaID: b.id, ReplicaEpoch: b.epoch, FetchOffset: p.LogEndOffset(), CurrentLeaderEpoch: p.LeaderEpoch(),
			LastFetchedEpoch: lastEpoch, LogStartOffset: p.LogStartOffset(), MaxBytes: maxBytes, MinOneMessage: true,
		}
		res, err := lp.Fetch(context.Background(), fp)
		if errors.Is(err, storage.ErrOffsetOutOfRange) {
			w.outOfRange(b, p, lp)
			continue
		}
		if err != nil {
			w.stats["fetch errors"]++
			continue
		}
		if w.chance(1, 5) {
			// The answer is delayed by the network.
			pooled := res.Records
			res.Records = slices.Clone(pooled)
			storage.ReleaseBuffer(pooled)
			w.inflight = append(w.inflight, &heldFetch{b: b, inc: b.inc, i: int32(i), p: p, leader: lb.id, epoch: fp.CurrentLeaderEpoch,
				offset: fp.FetchOffset, res: res, due: w.step + 1 + w.rng.Intn(10)})
			continue
		}
		w.applyFetch(b, int32(i), p, res)
		storage.ReleaseBuffer(res.Records)
	}
	w.syncMirrors(b)
}

// fetching reports whether b has a fetch answer of partition i in flight.
func (w *world) fetching(b *broker, i int32) bool {
	for _, h := range w.inflight {
		if h.b == b && h.inc == b.inc && h.i == i {
			return true
		}
	}
	return false
}

// deliverFetches applies the delayed fetch answers that are due, each
// only if its partition is still in the state it was asked in (same
// leader, leader epoch and log end offset), as the fetcher does.
func (w *world) deliverFetches() {
	keep := w.inflight[:0]
	for _, h := range w.inflight {
		switch {
		case h.b.inc != h.inc || !h.b.alive:
		case h.due > w.step:
			keep = append(keep, h)
		case h.p.IsLeader() || h.p.Leader() != h.leader || h.p.LeaderEpoch() != h.epoch || h.p.LogEndOffset() != h.offset:
			w.stats["late fetch answers dropped"]++
		default:
			w.stats["late fetch answers applied"]++
			w.applyFetch(h.b, h.i, h.p, h.res)
			w.syncMirror(h.b, h.i)
		}
	}
	w.inflight = keep
}

// applyFetch applies a fetch answer as internal/replication does.
func (w *world) applyFetch(b *broker, i int32, p *replica.Partition, res replica.FetchResult) {
	a, err := replication.ApplyAnswer(p, res.DivergingEpoch.Epoch, res.DivergingEpoch.EndOffset, res.Records, res.HighWatermark, res.LogStartOffset)
	switch {
	case err != nil:
		w.event("broker %d p%d: apply failed: %v", b.id, i, err)
	case a.Diverged:
		w.event("broker %d p%d: diverging epoch %d end %d: truncated %d -> %d", b.id, i, res.DivergingEpoch.Epoch, res.DivergingEpoch.EndOffset, a.LogEndOffset, a.TruncateTo)
		w.stats["truncations"]++
	}
}

// outOfRange is the fetcher's OFFSET_OUT_OF_RANGE handling (ListOffsets
// as a replica: truncate to the leader's end when it is below ours).
func (w *world) outOfRange(b *broker, p, lp *replica.Partition) {
	end, _, _, err := lp.ListOffset(-1, 0, b.id, p.LeaderEpoch())
	if err != nil {
		return
	}
	if leo := p.LogEndOffset(); end < leo {
		w.event("broker %d p%d: out of range, leader ends at %d below %d: truncating", b.id, lp.LeaderEpoch(), end, leo)
		_ = p.TruncateTo(end)
		return
	}
	start, _, _, err := lp.ListOffset(-2, 0, b.id, p.LeaderEpoch())
	if err == nil && start > p.LogEndOffset() {
		_ = p.TruncateFullyAndStartAt(start)
	}
}

// produce appends one acks=all batch on a broker that believes it leads
// partition i (several may: a zombie too).
func (w *world) produce(i int32) {
	var cands []*broker
	for _, b := range w.brokers {
		if !b.alive || !b.serving {
			continue
		}
		if p, err := b.rm.Partition(topicName, i); err == nil && p.IsLeader() {
			cands = append(cands, b)
		}
	}
	if len(cands) == 0 {
		return
	}
	b := cands[w.rng.Intn(len(cands))]
	p, _ := b.rm.Partition(topicName, i)
	n := 1 + w.rng.Intn(3)
	recs := make([]record.Record, n)
	values := make([]string, n)
	now := time.Now().UnixMilli()
	for k := range recs {
		w.nextValue++
		values[k] = "v" + strconv.Itoa(w.nextValue)
		recs[k] = record.Record{Timestamp: now, Value: []byte(values[k])}
	}
	batch, err := record.Build(record.BuildOptions{}, recs)
	if err != nil {
		w.t.Fatal(err)
	}
	epoch := p.LeaderEpoch()
	info, err := p.Append(batch, -1)
	if err != nil {
		w.stats["produce errors"]++
		return
	}
	w.stats["produced"]++
	w.pending = append(w.pending, &pendingAck{broker: b, inc: b.inc, p: p, partition: i, epoch: epoch, first: info.FirstOffset, values: values, sent: w.step})
	w.syncMirror(b, i)
}

// checkAcks answers the pending produces: acknowledged once the leader's
// high watermark passed the batch while it still leads in the same epoch
// with an ISR of at least min.insync.replicas; failed when the leader
// changed or died, or after the request timeout.
func (w *world) checkAcks() {
	keep := w.pending[:0]
	for _, pa := range w.pending {
		last := pa.first + int64(len(pa.values)) - 1
		switch {
		case !pa.broker.alive || pa.broker.inc != pa.inc || !pa.p.IsLeader() || pa.p.LeaderEpoch() != pa.epoch:
			w.stats["produces failed (leader change)"]++
		case pa.p.HighWatermark() > last:
			if len(pa.p.ISR()) < minISR {
				w.stats["produces failed (NOT_ENOUGH_REPLICAS_AFTER_APPEND)"]++
				continue
			}
			for k, v := range pa.values {
				off := pa.first + int64(k)
				if old := w.acked[pa.partition].get(off); old != "" {
					w.violate("lost", "partition %d: offset %d acknowledged twice: %q, then %q", pa.partition, off, old, v)
				}
				w.acked[pa.partition].set(off, v)
			}
			w.stats["acked records"] += len(pa.values)
			w.event("ack p%d offsets %d-%d from broker %d epoch %d", pa.partition, pa.first, last, pa.broker.id, pa.epoch)
		case w.step-pa.sent > ackTimeoutSteps:
			w.stats["produces failed (timeout)"]++
		default:
			keep = append(keep, pa)
		}
	}
	w.pending = keep
}

// --- mirrors ---

func (w *world) syncMirrors(b *broker) {
	for i := range w.o.partitions {
		w.syncMirror(b, int32(i))
	}
}

// syncMirror brings b's mirror of partition i up to date: cut to the
// log end offset when it shrank, then read what was appended. The
// harness syncs after every action that can change a log, so a
// truncation and an append never fall between two syncs (verifyMirrors
// checks it).
func (w *world) syncMirror(b *broker, i int32) {
	m := b.mirrors[i]
	p, err := b.rm.Replica(topicName, i)
	if err != nil {
		return
	}
	leo := p.LogEndOffset()
	if leo < int64(len(m.values)) {
		m.values = m.values[:leo]
		for len(m.batches) > 0 && m.batches[len(m.batches)-1].last >= leo {
			m.batches = m.batches[:len(m.batches)-1]
		}
		if end := m.end(); end < leo {
			m.values = m.values[:end]
		}
	}
	if err := readInto(p, m, leo); err != nil {
		w.violate("mirror", "broker %d p%d: %v", b.id, i, err)
	}
}

func (m *mirror) end() int64 {
	if len(m.batches) == 0 {
		return 0
	}
	return m.batches[len(m.batches)-1].last + 1
}

// readInto reads p's log from m's end to leo into m.
func readInto(p *replica.Partition, m *mirror, leo int64) error {
	for m.end() < leo {
		data, err := p.ReadLocal(m.end(), 64<<10)
		if err != nil {
			return err
		}
		if len(data) == 0 {
			return fmt.Errorf("no batch at %d below the log end offset %d", m.end(), leo)
		}
		err = record.Split(data, func(batch []byte, h record.Header) error {
			if h.BaseOffset != m.end() {
				return fmt.Errorf("batch at %d where %d was expected", h.BaseOffset, m.end())
			}
			m.batches = append(m.batches, batchInfo{base: h.BaseOffset, last: h.LastOffset(), epoch: h.PartitionLeaderEpoch, crc: h.CRC})
			return record.ForEachRecord(batch, func(_ *record.Header, r *record.Record) error {
				m.values = append(m.values, string(r.Value))
				return nil
			})
		})
		storage.ReleaseBuffer(data)
		if err != nil {
			return err
		}
	}
	return nil
}

// verifyMirrors rereads every live log from the start and compares it
// with its mirror.
func (w *world) verifyMirrors() {
	for _, b := range w.brokers {
		if !b.alive {
			continue
		}
		for i, m := range b.mirrors {
			p, err := b.rm.Replica(topicName, int32(i))
			if err != nil {
				continue
			}
			fresh := &mirror{}
			if err := readInto(p, fresh, p.LogEndOffset()); err != nil {
				w.violate("mirror", "broker %d p%d: %v", b.id, i, err)
				continue
			}
			if !slices.Equal(fresh.batches, m.batches) || !slices.Equal(fresh.values, m.values) {
				w.violate("mirror", "broker %d p%d: the mirror differs from the log (%d/%d batches)", b.id, i, len(m.batches), len(fresh.batches))
			}
		}
	}
}

// --- invariants ---

// checkInvariants runs after every step.
//  1. Every acknowledged record is in the log of the partition's current
//     leader (the controller's), with the same value, when that broker
//     is up, and in the log of every live member of the controller's ISR
//     (the candidates of the next clean election).
//  2. On a leader that applied its epoch, the logs of its ISR members
//     equal its own below the high watermark: same batches (offsets,
//     epochs, CRCs), same records.
//  3. A leader's high watermark never goes back within a leader epoch.
//  4. The leader epoch a broker knows for a partition never goes back.
func (w *world) checkInvariants() {
	im := w.images[len(w.images)-1]
	t := im.Topics[topicName]
	for _, b := range w.brokers {
		if !b.alive {
			continue
		}
		for i := range t.Partitions {
			p, err := b.rm.Replica(topicName, int32(i))
			if err != nil {
				continue
			}
			k := [2]int32{b.id, int32(i)}
			if e, ok := w.viewEpoch[k]; ok && p.LeaderEpoch() < e {
				w.violate("epoch", "broker %d partition %d: leader epoch went back from %d to %d", b.id, i, e, p.LeaderEpoch())
			}
			w.viewEpoch[k] = p.LeaderEpoch()
		}
	}
	for i, mp := range t.Partitions {
		for _, id := range mp.ISR {
			if b := w.brokers[id-1]; b.alive {
				role := "ISR member"
				if id == mp.Leader {
					role = "leader"
				}
				if !w.hasAcked(b, i, fmt.Sprintf("%s %d (epoch %d)", role, id, mp.LeaderEpoch)) {
					return
				}
			}
		}
		if mp.Leader < 0 {
			continue
		}
		lb := w.brokers[mp.Leader-1]
		if !lb.alive {
			continue
		}
		lm := lb.mirrors[i]
		if !slices.Contains(mp.ISR, mp.Leader) && !w.hasAcked(lb, i, fmt.Sprintf("leader %d (epoch %d, not in the ISR)", lb.id, mp.LeaderEpoch)) {
			return
		}
		lp, err := lb.rm.Replica(topicName, int32(i))
		if err != nil || !lp.IsLeader() || lp.LeaderEpoch() != mp.LeaderEpoch || !lb.serving {
			continue
		}
		hw := lp.HighWatermark()
		k := hwKey{lb.id, int32(i), mp.LeaderEpoch}
		if prev, ok := w.hwSeen[k]; ok && hw < prev {
			w.violate("hw", "partition %d: leader %d's high watermark went back from %d to %d in epoch %d", i, lb.id, prev, hw, mp.LeaderEpoch)
		}
		w.hwSeen[k] = hw
		for _, id := range lp.ISR() {
			fb := w.brokers[id-1]
			if id == lb.id || !fb.alive {
				continue
			}
			if err := prefixUpTo(fb.mirrors[i], lm, hw); err != nil {
				w.violate("divergent", "partition %d: ISR member %d differs from leader %d (epoch %d, HW %d): %v", i, id, lb.id, mp.LeaderEpoch, hw, err)
			}
		}
	}
}

// hasAcked checks that b's log of partition i holds every acknowledged
// record; who names b in the violation.
func (w *world) hasAcked(b *broker, i int, who string) bool {
	m := b.mirrors[i]
	for off, v := range w.acked[i].values {
		if v == "" {
			continue
		}
		if off >= len(m.values) || m.values[off] != v {
			got := "nothing"
			if off < len(m.values) {
				got = strconv.Quote(m.values[off])
			}
			w.violate("lost", "partition %d: acknowledged offset %d (%q) is %s on %s (log end %d)", i, off, v, got, who, len(m.values))
			return false
		}
	}
	return true
}

// prefixUpTo checks that f holds exactly l's batches and records below hw.
func prefixUpTo(f, l *mirror, hw int64) error {
	if int64(len(f.values)) < hw {
		return fmt.Errorf("its log ends at %d, below the high watermark", len(f.values))
	}
	for k, lb := range l.batches {
		if lb.base >= hw {
			break
		}
		if k >= len(f.batches) || f.batches[k] != lb {
			var fb batchInfo
			if k < len(f.batches) {
				fb = f.batches[k]
			}
			return fmt.Errorf("batch %d: %+v, leader's %+v", k, fb, lb)
		}
	}
	for off := int64(0); off < hw; off++ {
		if f.values[off] != l.values[off] {
			return fmt.Errorf("offset %d: %q, leader's %q", off, f.values[off], l.values[off])
		}
	}
	return nil
}

// finalCheck runs after the healing phase: every partition has a leader
// and its whole assignment in the ISR, and every acknowledged record is
// in every replica.
func (w *world) finalCheck() {
	for i, mp := range w.images[len(w.images)-1].Topics[topicName].Partitions {
		if mp.Leader < 0 || len(mp.ISR) != len(mp.Replicas) {
			w.violate("liveness", "after healing: partition %d has leader %d, ISR %v of replicas %v", i, mp.Leader, mp.ISR, mp.Replicas)
		}
	}
	for _, b := range w.brokers {
		if !b.alive {
			w.violate("liveness", "broker %d is still down after healing", b.id)
			continue
		}
		for i, mp := range w.images[len(w.images)-1].Topics[topicName].Partitions {
			if !slices.Contains(mp.Replicas, b.id) {
				continue
			}
			m := b.mirrors[i]
			for off, v := range w.acked[i].values {
				if v != "" && (off >= len(m.values) || m.values[off] != v) {
					w.violate("lost", "after healing: partition %d offset %d (%q) missing or different on broker %d (log end %d)", i, off, v, b.id, len(m.values))
					return
				}
			}
		}
	}
}

// --- the run ---

// run plays o.steps steps of faults, then heals everything for
// healSteps and checks that every replica holds every acknowledged
// record. It returns the first violation.
func (w *world) run() *violation {
	defer w.close()
	for w.step = 1; w.step <= w.o.steps && w.fail == nil; w.step++ {
		w.oneStep(true)
	}
	// Heal: every link up, every broker back, nothing dropped or
	// delayed any more (calm), no new produce.
	w.o.calm = true
	w.cuts = map[[2]int32]int{}
	for _, b := range w.brokers {
		b.frozenUntil = 0
		if !b.alive {
			b.restartAt = w.step
		}
	}
	end := w.step + healSteps
	for ; w.step <= end && w.fail == nil; w.step++ {
		w.oneStep(false)
	}
	if w.fail == nil {
		w.verifyMirrors()
		w.finalCheck()
	}
	return w.fail
}

// oneStep is one step: time passes, scheduled events happen, maybe a
// fault, then the controller, AlterPartitions, metadata delivery,
// fetches, ISR checks and produces, each broker in a shuffled order;
// then the acks and invariants are checked.
func (w *world) oneStep(faults bool) {
	time.Sleep(stepDur)
	synctest.Wait()
	for _, b := range w.brokers {
		if !b.alive && b.restartAt <= w.step {
			w.start(b)
		}
	}
	for _, link := range slices.SortedFunc(maps.Keys(w.cuts), func(a, b [2]int32) int {
		return int(a[0]-b[0])*100 + int(a[1]-b[1])
	}) {
		if w.cuts[link] <= w.step {
			delete(w.cuts, link)
			w.event("link %d-%d healed", link[0], link[1])
		}
	}
	if faults {
		w.fault()
	}
	// The controller side.
	for _, b := range w.brokers {
		switch {
		case !b.alive:
		case b.epoch < 0:
			w.register(b)
		default:
			w.heartbeat(b)
		}
	}
	w.ctl.ExpireSessions(context.Background())
	synctest.Wait()
	w.captureImage()
	w.processAlters()
	// Brokers.
	order := w.rng.Perm(len(w.brokers))
	for _, k := range order {
		b := w.brokers[k]
		if !b.alive {
			continue
		}
		if w.step >= b.frozenUntil && w.reachable(b.id, controllerNode) && b.image < len(w.images)-1 && !w.chance(3, 10) {
			to := len(w.images) - 1
			if !w.o.calm && w.rng.Intn(2) == 0 {
				to = b.image + 1
			}
			w.deliver(b, to)
		}
		w.maybeServe(b)
	}
	w.deliverFetches()
	for _, k := range w.rng.Perm(len(w.brokers)) {
		if b := w.brokers[k]; b.alive && !w.chance(2, 10) {
			w.fetchRound(b)
		}
	}
	for _, k := range w.rng.Perm(len(w.brokers)) {
		if b := w.brokers[k]; b.alive && (w.o.calm || w.rng.Intn(10) < 3) {
			b.rm.MaybeShrinkISRs()
		}
	}
	w.takeAlters()
	if !w.o.calm {
		for range w.rng.Intn(3) {
			w.produce(int32(w.rng.Intn(w.o.partitions)))
		}
	}
	w.checkAcks()
	w.checkInvariants()
	if w.step%500 == 0 {
		w.verifyMirrors()
	}
}

// chance is true with probability num/den, never in a calm run.
func (w *world) chance(num, den int) bool {
	return !w.o.calm && w.rng.Intn(den) < num
}

// maybeServe starts serving a registered broker once its metadata holds
// its registration.
func (w *world) maybeServe(b *broker) {
	if b.alive && b.epoch >= 0 && !b.serving && w.images[b.image].Offset >= b.epoch {
		b.serving = true
		w.event("broker %d serving", b.id)
	}
}

// fence has the controller fence b through its heartbeat (WantFence),
// the controller's own path for a broker that must stop leading.
func (w *world) fence(b *broker) {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch = b.id, b.epoch
	req.CurrentMetadataOffset = w.images[b.image].Offset
	req.WantFence = true
	resp := w.ctl.BrokerHeartbeat(context.Background(), req)
	w.captureImage()
	w.event("FENCE broker %d: %v", b.id, kerr.ErrorForCode(resp.ErrorCode))
}

// fault injects at most one fault.
func (w *world) fault() {
	r := w.rng.Intn(1000)
	b := w.brokers[w.rng.Intn(len(w.brokers))]
	switch {
	case r < 15: // crash: kill -9, or a stop without controlled shutdown
		if b.alive {
			if w.rng.Intn(2) == 0 {
				w.event("KILL broker %d", b.id)
				w.stats["kills"]++
				w.kill(b)
			} else {
				w.event("STOP broker %d", b.id)
				w.stats["stops"]++
				w.stop(b)
			}
			b.restartAt = w.step + 20 + w.rng.Intn(130)
		}
	case r < 25: // controlled shutdown
		if b.alive && b.epoch >= 0 && !b.shutdown {
			w.event("CONTROLLED SHUTDOWN broker %d", b.id)
			b.shutdown = true
		}
	case r < 45: // cut a link
		other := int32(w.rng.Intn(len(w.brokers) + 1))
		if other == b.id {
			return
		}
		a, c := min(b.id, other), max(b.id, other)
		if _, ok := w.cuts[[2]int32{a, c}]; !ok {
			w.cuts[[2]int32{a, c}] = w.step + 10 + w.rng.Intn(190)
			w.event("CUT link %d-%d", a, c)
			w.stats["cuts"]++
		}
	case r < 60: // metadata delay
		if b.frozenUntil <= w.step {
			b.frozenUntil = w.step + 10 + w.rng.Intn(90)
			w.event("FREEZE metadata to broker %d until %d", b.id, b.frozenUntil)
			w.stats["metadata freezes"]++
		}
	}
}

// summary is the run's counters on one line.
func (w *world) summary() string {
	keys := slices.Sorted(maps.Keys(w.stats))
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%d ", k, w.stats[k])
	}
	n := 0
	for _, a := range w.acked {
		n += a.n
	}
	fmt.Fprintf(&sb, "acked offsets=%d images=%d", n, len(w.images))
	return sb.String()
}
