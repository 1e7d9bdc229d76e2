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
	"samsa/internal/replica"
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
