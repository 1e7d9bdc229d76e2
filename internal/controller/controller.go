// Package controller is the metadata controller: it validates cluster
// changes (topics, partitions, configs, producer ids, broker registration)
// against the current image and commits them as records to the metadata
// log, then publishes the resulting image. It places replicas and keeps
// every partition's leader and ISR as brokers come and go (elections,
// controlled shutdown, unclean elections: partitions.go, brokers.go) and
// as leaders report ISR changes (AlterPartition: alter_partition.go).
//
// Changes are serialized by one mutex (mu): validation and commit of one
// change complete before the next change is validated, and every change
// is validated against the image the quorum has applied on this node
// (Quorum.Applied), which holds every entry committed before, so each
// change is checked against the image it will apply to (Kafka's
// QuorumController runs the same sequence on its single event thread).
// The wait for this node's listeners (the replica manager creating the
// logs of new partitions, seconds for thousands) happens after mu is
// released: it holds up neither the next change nor a heartbeat.
//
// Broker heartbeat sessions have their own lock (sessions, brokers.go):
// a heartbeat that changes nothing (the common case) and the session
// expiry check never wait for mu, so a large CreateTopics cannot starve
// them (Kafka runs heartbeats as quick events for the same reason).
package controller

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/config"
	"samsa/internal/metadata"
)

// MaxRecordsPerUserOp bounds the metadata records one user operation
// (CreateTopics, CreatePartitions, the auto-creation of one Metadata
// request) may write, as Kafka's QuorumController.MAX_RECORDS_PER_USER_OP
// (10,000) does: a topic costs one record, plus one per config override
// and one per partition. Beyond it Kafka refuses the whole operation.
const MaxRecordsPerUserOp = 10000

// errTooLargeMessage is Kafka's answer to an operation over
// MaxRecordsPerUserOp (EventHandlerExceptionInfo maps the controller's
// BoundedListTooLongException to a PolicyViolationException).
const errTooLargeMessage = "Unable to perform excessively large batch operation."

// ErrReplicationFactor: an internal topic cannot be created with its
// replication factor (fewer active brokers than it).
var ErrReplicationFactor = errors.New("controller: invalid replication factor")

// producerIDBlock is how many producer ids one ProducerIdsRecord reserves
// (Kafka's ProducerIdManager uses blocks of 1000 too).
const producerIDBlock = 1000

// Controller validates requests against the current image and appends
// metadata records to the quorum. After a method returns, the resulting
// image has been published on this node (Image reflects it) and every
// listener has applied it (logs of new partitions exist). Only the active
// controller of the quorum changes anything: elsewhere every mutating
// call answers NOT_CONTROLLER (ErrNotController).
type Controller struct {
	q      metadata.Quorum
	pub    *metadata.Publisher
	cfg    *config.Config
	logger *slog.Logger

	// dirs are the failed log dirs brokers reported (logdirs.go).
	dirs failedDirs

	// pidMu guards the reserved producer ids, so InitProducerID waits for
	// mu (which a large CreateTopics holds for seconds) only once per
	// block of producerIDBlock ids. Lock order: pidMu before mu.
	pidMu sync.Mutex
	// nextPID..pidLimit are reserved producer ids not yet handed out,
	// reserved in controller epoch pidEpoch: a block reserved in an
	// earlier epoch is dropped (another controller may have handed out
	// ids since). Guarded by pidMu.
	nextPID, pidLimit int64
	pidEpoch          int32

	// uncleanElections counts unclean leader elections made by this
	// controller (UncleanLeaderElections).
	uncleanElections atomic.Int64

	// sess holds the brokers' heartbeat sessions (brokers.go) under its
	// own lock. Lock order: mu before sess.mu.
	sess sessions

	mu sync.Mutex
	// rr is the round-robin start for replica placement. Guarded by mu.
	rr int
	// epoch is the controller epoch this soft state belongs to; a new
	// one (a takeover) restarts rr. Guarded by mu.
	epoch int32
	// callCommit is the offset of the last entry committed by the call
	// holding mu (-1: none yet); unlock waits for its publication after
	// releasing mu. Guarded by mu.
	callCommit int64
	// addLearner makes a broker-only node a learner of the quorum
	// (SetAddLearner); nil: registrations of non-voters add nothing.
	addLearner func(ctx context.Context, id int32, addr string) error
	// voters are the quorum's voter ids (SetAddLearner).
	voters map[int32]bool
	// sweep removes the learners of unregistered brokers (learners.go),
	// under its own lock.
	sweep learnerSweep
}

// New returns a controller that commits to q (and reads q's published
// image, which already holds the replayed log).
func New(q metadata.Quorum, cfg *config.Config, logger *slog.Logger) *Controller {
	if logger == nil {
		logger = slog.Default()
	}
	c := &Controller{q: q, pub: q.Publisher(), cfg: cfg, logger: logger, epoch: -1}
	c.sess.epoch = -1
	return c
}

// lock takes mu for one call; release it with unlock (the call's
// commits are then waited for) or unlockNoWait.
func (c *Controller) lock() {
	c.mu.Lock()
	c.callCommit = -1
}

// unlock releases mu, then waits (bounded by ctx) until this node has
// published what the call committed, so that when a method returns its
// change is in Image() and every listener has run for it (the logs of
// new partitions exist here). A ctx that ends first does not undo the
// commit: the answer already says what was committed.
func (c *Controller) unlock(ctx context.Context) {
	off := c.callCommit
	c.mu.Unlock()
	if off >= 0 {
		_ = c.pub.WaitOffset(ctx, off)
	}
}

// unlockNoWait releases mu without waiting for this node's listeners
// (heartbeats and session expiry: a broker's next heartbeat must not
// wait for the replica manager of the controller's node).
func (c *Controller) unlockNoWait() { c.mu.Unlock() }

// image is the image changes are validated against: everything applied
// on this node, which includes every entry this controller committed
// (Quorum.Applied), perhaps not yet published.
func (c *Controller) image() *metadata.Image { return c.q.Applied() }

// UncleanLeaderElections returns how many unclean leader elections
// (a replica outside the ISR made leader: possible data loss) this
// controller has made since it started. Exported as the counter
// samsa_controller_unclean_leader_elections_total (Kafka's
// kafka.controller:type=ControllerStats,name=UncleanLeaderElectionsPerSec).
func (c *Controller) UncleanLeaderElections() int64 { return c.uncleanElections.Load() }

// Image returns the latest image published on this node.
func (c *Controller) Image() *metadata.Image { return c.pub.Image() }

// Active reports whether this node is the active controller.
func (c *Controller) Active() bool {
	ok, _ := c.q.Active()
	return ok
}

// activeLocked checks that this node is the active controller
// (NOT_CONTROLLER otherwise) and drops soft state of an earlier
// controller epoch.
func (c *Controller) activeLocked() *codeErr {
	ok, epoch := c.q.Active()
	if !ok {
		return notController(c.image().ControllerID)
	}
	if epoch != c.epoch {
		c.epoch = epoch
		c.rr = 0
	}
	c.sess.mu.Lock()
	c.sess.forEpochLocked(epoch)
	c.sess.mu.Unlock()
	return nil
}

func notController(id int32) *codeErr {
	if id < 0 {
		return fail(kerr.NotController, "this node is not the active controller (no controller known)")
	}
	return fail(kerr.NotController, "this node is not the active controller (node %d is)", id)
}

// commitLocked checks recs against the image, commits them to the quorum
// and returns once they are applied on this node (image includes them);
// unlock waits for their publication.
func (c *Controller) commitLocked(ctx context.Context, recs []metadata.Record) error {
	_, err := c.commitOffsetLocked(ctx, recs)
	return err
}

// commitOffsetLocked is commitLocked returning the entry's offset.
func (c *Controller) commitOffsetLocked(ctx context.Context, recs []metadata.Record) (int64, error) {
	if len(recs) == 0 {
		return c.image().Offset, nil
	}
	// Validate first: Image.Apply's errors carry the Kafka meaning.
	if _, err := c.image().Apply(recs); err != nil {
		return 0, err
	}
	if err := checkDeadline(ctx); err != nil {
		return 0, err
	}
	off, err := c.q.Commit(ctx, recs)
	if err == nil {
		c.callCommit = max(c.callCommit, off)
	}
	return off, err
}

// commitErr maps an error of commitLocked to the code a client sees:
// NOT_CONTROLLER when this node lost (or never had) the quorum, so the
// client looks for the controller again; UNKNOWN_SERVER_ERROR, logged,
// for the rest (the records were validated, so it is a bug or a race).
func (c *Controller) commitErr(op string, err error) *codeErr {
	var nc *metadata.NotControllerError
	switch {
	case errors.As(err, &nc):
		return notController(nc.ControllerID)
	case errors.Is(err, metadata.ErrNotController), errors.Is(err, metadata.ErrClosed):
		return notController(-1)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fail(kerr.RequestTimedOut, "%s: %v", op, err)
	}
	c.logger.Error(op, "err", err)
	return fail(kerr.UnknownServerError, "%s: %v", op, err)
}

// RegisterBroker records a broker's registration (called at every start
// of a broker; the endpoints change when ports are ephemeral).
func (c *Controller) RegisterBroker(ctx context.Context, rec metadata.RegisterBrokerRecord) error {
	c.lock()
	defer c.unlock(ctx)
	if e := c.activeLocked(); e != nil {
		return fmt.Errorf("controller: register broker %d: %w", rec.BrokerID, &metadata.NotControllerError{ControllerID: c.image().ControllerID})
	}
	return c.commitLocked(ctx, []metadata.Record{{Type: metadata.TypeRegisterBroker, RegisterBroker: &rec}})
}

// topicSpec is a validated topic creation.
type topicSpec struct {
	name       string
	assignment [][]int32 // replicas per partition
	configs    map[string]string
}

// codeErr is a Kafka error code with a message.
type codeErr struct {
	code int16
	msg  string
}

func (e *codeErr) Error() string { return e.msg }

func fail(err *kerr.Error, format string, args ...any) *codeErr {
	return &codeErr{code: err.Code, msg: fmt.Sprintf(format, args...)}
}

// ValidateTopicName checks a topic name as Kafka's Topic.validate does.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("topic name is empty")
	case name == "." || name == "..":
		return errors.New("topic name cannot be \".\" or \"..\"")
	case len(name) > 249:
		return fmt.Errorf("topic name is longer than 249 characters")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q contains a character other than ASCII alphanumerics, '.', '_' and '-'", name)
		}
	}
	return nil
}

// collides reports whether name collides with an existing topic once '.'
// and '_' are treated alike (they map to the same metric names in Kafka).
func collides(im *metadata.Image, name string) (string, bool) {
	norm := func(s string) string { return strings.ReplaceAll(s, ".", "_") }
	n := norm(name)
	for t := range im.Topics {
		if t != name && norm(t) == n {
			return t, true
		}
	}
	return "", false
}

func (c *Controller) specFromRequest(im *metadata.Image, t *kmsg.CreateTopicsRequestTopic, version int16) (*topicSpec, *codeErr) {
	if err := ValidateTopicName(t.Topic); err != nil {
		return nil, fail(kerr.InvalidTopicException, "%v", err)
	}
	if _, ok := im.Topics[t.Topic]; ok {
		return nil, fail(kerr.TopicAlreadyExists, "topic %q already exists", t.Topic)
	}
	if other, ok := collides(im, t.Topic); ok {
		return nil, fail(kerr.InvalidTopicException, "topic %q collides with existing topic %q", t.Topic, other)
	}
	spec := &topicSpec{name: t.Topic, configs: map[string]string{}}
	for _, kv := range t.Configs {
		if kv.Value != nil {
			spec.configs[kv.Name] = *kv.Value
		}
	}
	if err := config.ValidateTopicConfig(spec.configs); err != nil {
		return nil, fail(kerr.InvalidConfig, "%v", err)
	}
	if len(t.ReplicaAssignment) > 0 {
		if t.NumPartitions != -1 || t.ReplicationFactor != -1 {
			return nil, fail(kerr.InvalidRequest, "both numPartitions and replicationFactor must be -1 with a replica assignment")
		}
		parts := make([][]int32, len(t.ReplicaAssignment))
		for _, a := range t.ReplicaAssignment {
			if a.Partition >= 0 && int(a.Partition) < len(parts) && parts[a.Partition] != nil {
				return nil, fail(kerr.InvalidReplicaAssignment, "Found multiple manual partition assignments for partition %d", a.Partition)
			}
			if a.Partition < 0 || int(a.Partition) >= len(parts) {
				return nil, fail(kerr.InvalidReplicaAssignment, "partitions should be a consecutive 0-based integer sequence")
			}
			parts[a.Partition] = slices.Clone(a.Replicas)
		}
		if e := checkAssignment(im, 0, parts); e != nil {
			return nil, e
		}
		spec.assignment = parts
		return spec, nil
	}
	np, rf := t.NumPartitions, t.ReplicationFactor
	if np == -1 && version >= 4 {
		np = c.cfg.NumPartitions
	}
	if rf == -1 && version >= 4 {
		rf = c.cfg.DefaultReplicationFactor
	}
	if np <= 0 {
		return nil, fail(kerr.InvalidPartitions, "number of partitions must be larger than 0")
	}
	if rf <= 0 {
		return nil, fail(kerr.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value.")
	}
	if np > 1<<20 {
		return nil, fail(kerr.InvalidPartitions, "too many partitions (%d)", np)
	}
	parts, e := c.placeLocked(im, np, rf)
	if e != nil {
		return nil, e
	}
	spec.assignment = parts
	return spec, nil
}

func newTopicID() metadata.UUID {
	var id metadata.UUID
	for id == (metadata.UUID{}) {
		_, _ = rand.Read(id[:])
	}
	return id
}

// topicRecords returns the records that create spec.
func topicRecords(im *metadata.Image, spec *topicSpec, id metadata.UUID) []metadata.Record {
	recs := []metadata.Record{{Type: metadata.TypeTopic, Topic: &metadata.TopicRecord{Name: spec.name, TopicID: id}}}
	for _, k := range sortedKeys(spec.configs) {
		v := spec.configs[k]
		recs = append(recs, metadata.Record{Type: metadata.TypeConfig, Config: &metadata.ConfigRecord{
			ResourceType: metadata.ResourceTopic, ResourceName: spec.name, Name: k, Value: &v,
		}})
	}
	recs = append(recs, partitionRecords(im, id, 0, spec.assignment)...)
	return recs
}

// partitionRecords creates partitions first.. with their replicas: the
// ISR is the active replicas (all of them, unless a manual assignment
// names fenced brokers), the leader the first of it, leader and partition
// epochs 0 (Kafka's ReplicationControlManager.buildPartitionRegistration).
// Validation made sure every partition has an active replica.
func partitionRecords(im *metadata.Image, id metadata.UUID, first int32, assignment [][]int32) []metadata.Record {
	var recs []metadata.Record
	for i, reps := range assignment {
		isr := activeOf(im, reps)
		leader := int32(noLeader)
		if len(isr) > 0 {
			leader = isr[0]
		} else {
			isr = slices.Clone(reps) // not reached: validated
		}
		recs = append(recs, metadata.Record{Type: metadata.TypePartition, Partition: &metadata.PartitionRecord{
			TopicID: id, PartitionID: first + int32(i), Replicas: slices.Clone(reps), ISR: isr, Leader: leader,
		}})
	}
	return recs
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// CreateTopics serves a CreateTopics request (validate-only, per-topic
// configs, replica assignment, num.partitions/default.replication.factor
// for -1), answering per topic. The topics that pass validation are
// committed together in one batch of records, published once (as Kafka's
// ReplicationControlManager.createTopics returns one atomic batch); a
// request whose batch would exceed MaxRecordsPerUserOp creates nothing
// and answers POLICY_VIOLATION for every topic, as Kafka does.
func (c *Controller) CreateTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	resp.Version = req.Version
	c.lock()
	defer c.unlock(ctx)
	if e := c.activeLocked(); e != nil {
		for _, t := range req.Topics {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t.Topic, -1, -1
			rt.ErrorCode, rt.ErrorMessage = e.code, &e.msg
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	counts := map[string]int{}
	for _, t := range req.Topics {
		counts[t.Topic]++
	}
	im := c.image()
	specs := make([]*topicSpec, len(req.Topics))
	errs := make([]*codeErr, len(req.Topics))
	ids := make([]metadata.UUID, len(req.Topics))
	// normalized names of the topics accepted so far in this request:
	// two new topics may collide with each other too.
	accepted := map[string]string{}
	var recs []metadata.Record
	tooLarge := false
	rr := c.rr
	for i := range req.Topics {
		t := &req.Topics[i]
		if counts[t.Topic] > 1 {
			errs[i] = fail(kerr.InvalidRequest, "topic %q is listed more than once", t.Topic)
			continue
		}
		if int64(t.NumPartitions) > MaxRecordsPerUserOp || len(t.ReplicaAssignment) > MaxRecordsPerUserOp {
			// Over the bound on its own: refuse before placing replicas.
			tooLarge = true
			break
		}
		specs[i], errs[i] = c.specFromRequest(im, t, req.Version)
		if errs[i] != nil {
			continue
		}
		norm := strings.ReplaceAll(t.Topic, ".", "_")
		if other, ok := accepted[norm]; ok {
			specs[i], errs[i] = nil, fail(kerr.InvalidTopicException, "topic %q collides with topic %q of the same request", t.Topic, other)
			continue
		}
		accepted[norm] = t.Topic
		ids[i] = newTopicID()
		recs = append(recs, topicRecords(im, specs[i], ids[i])...)
		if len(recs) > MaxRecordsPerUserOp {
			tooLarge = true
			break
		}
	}
	if tooLarge {
		c.rr = rr // nothing placed
		c.logger.Warn("create topics refused: too many records", "topics", len(req.Topics), "limit", MaxRecordsPerUserOp)
		for i := range req.Topics {
			specs[i], errs[i] = nil, fail(kerr.PolicyViolation, "%s", errTooLargeMessage)
		}
	} else if !req.ValidateOnly && len(recs) > 0 {
		if err := c.commitLocked(ctx, recs); err != nil {
			e := c.commitErr("create topics", err)
			for i := range req.Topics {
				if errs[i] == nil {
					specs[i], errs[i] = nil, e
				}
			}
		}
	}
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = t.Topic
		rt.NumPartitions, rt.ReplicationFactor = -1, -1
		if e := errs[i]; e != nil {
			rt.ErrorCode, rt.ErrorMessage = e.code, &e.msg
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		spec := specs[i]
		if !req.ValidateOnly {
			rt.TopicID = ids[i]
		}
		rt.NumPartitions = int32(len(spec.assignment))
		rt.ReplicationFactor = int16(len(spec.assignment[0]))
		for _, ce := range c.controllerConfig(im).Topic(spec.configs) {
			rc := kmsg.NewCreateTopicsResponseTopicConfig()
			rc.Name, rc.Value, rc.ReadOnly, rc.Source, rc.IsSensitive = ce.Name, ce.Value, ce.ReadOnly, int8(ce.Source), ce.Sensitive
			rt.Configs = append(rt.Configs, rc)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// AutoCreateTopics creates topics with the broker defaults (auto-creation
// from one Metadata request: one operation, as Kafka's
// AutoTopicCreationManager sends one CreateTopics for them, so the
// MaxRecordsPerUserOp bound applies to them together). It returns the
// Kafka error code per topic: 0 on success, TOPIC_ALREADY_EXISTS when
// one exists, POLICY_VIOLATION for all when they are too many.
func (c *Controller) AutoCreateTopics(ctx context.Context, topics []string) map[string]int16 {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 4
	for _, name := range topics {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic = name
		t.NumPartitions, t.ReplicationFactor = -1, -1
		req.Topics = append(req.Topics, t)
	}
	resp := c.CreateTopics(ctx, req)
	out := make(map[string]int16, len(resp.Topics))
	for _, rt := range resp.Topics {
		out[rt.Topic] = rt.ErrorCode
		if rt.ErrorCode == 0 {
			c.logger.Info("auto-created topic", "topic", rt.Topic, "partitions", rt.NumPartitions)
		}
	}
	return out
}

// AutoCreateTopic creates one topic with the broker defaults
// (AutoCreateTopics of one topic).
func (c *Controller) AutoCreateTopic(ctx context.Context, topic string) int16 {
	return c.AutoCreateTopics(ctx, []string{topic})[topic]
}

// DeleteTopics serves DeleteTopics by name or topic id.
func (c *Controller) DeleteTopics(ctx context.Context, req *kmsg.DeleteTopicsRequest) *kmsg.DeleteTopicsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	resp.Version = req.Version
	type ask struct {
		name *string
		id   metadata.UUID
	}
	var asks []ask
	for i := range req.TopicNames {
		asks = append(asks, ask{name: &req.TopicNames[i]})
	}
	for _, t := range req.Topics {
		asks = append(asks, ask{name: t.Topic, id: t.TopicID})
	}
	c.lock()
	defer c.unlock(ctx)
	notActive := c.activeLocked()
	for _, a := range asks {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.TopicID = a.name, a.id
		im := c.image()
		var t *metadata.Topic
		var e *codeErr
		switch {
		case notActive != nil:
			e = notActive
		case !c.cfg.DeleteTopicEnable:
			e = fail(kerr.TopicDeletionDisabled, "topic deletion is disabled (delete.topic.enable=false)")
		case a.name != nil && *a.name != "":
			if t = im.Topics[*a.name]; t == nil {
				e = fail(kerr.UnknownTopicOrPartition, "topic %q does not exist", *a.name)
			}
		case a.id != metadata.UUID{}:
			if t = im.TopicsByID[a.id]; t == nil {
				e = fail(kerr.UnknownTopicID, "topic id does not exist")
			}
		default:
			e = fail(kerr.InvalidRequest, "neither topic name nor topic id given")
		}
		if e == nil {
			name := t.Name
			rt.Topic, rt.TopicID = &name, t.ID
			if err := c.commitLocked(ctx, []metadata.Record{{Type: metadata.TypeRemoveTopic, RemoveTopic: &metadata.RemoveTopicRecord{TopicID: t.ID}}}); err != nil {
				e = c.commitErr("delete topic", err)
			}
		}
		if e != nil {
			rt.ErrorCode, rt.ErrorMessage = e.code, &e.msg
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// CreatePartitions serves CreatePartitions (increase only).
func (c *Controller) CreatePartitions(ctx context.Context, req *kmsg.CreatePartitionsRequest) *kmsg.CreatePartitionsResponse {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	resp.Version = req.Version
	c.lock()
	defer c.unlock(ctx)
	counts := map[string]int{}
	for _, t := range req.Topics {
		counts[t.Topic]++
	}
	notActive := c.activeLocked()
	budget := MaxRecordsPerUserOp
	for _, t := range req.Topics {
		rt := kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic = t.Topic
		e := notActive
		if e == nil {
			e = c.createPartitionsLocked(ctx, t, counts[t.Topic] > 1, req.ValidateOnly, &budget)
		}
		if e != nil {
			rt.ErrorCode, rt.ErrorMessage = e.code, &e.msg
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// createPartitionsLocked adds the partitions of one topic of a
// CreatePartitions request. budget is what remains of the request's
// MaxRecordsPerUserOp; a topic whose new partitions exceed it is refused
// whole with POLICY_VIOLATION (Kafka's controller fails that topic, and
// every later one, when its record list overflows; it reports
// UNKNOWN_SERVER_ERROR without a message and may keep part of the topic's
// partitions, which Samsa does not copy).
func (c *Controller) createPartitionsLocked(ctx context.Context, t kmsg.CreatePartitionsRequestTopic, dup, validateOnly bool, budget *int) *codeErr {
	if dup {
		return fail(kerr.InvalidRequest, "topic %q is listed more than once", t.Topic)
	}
	im := c.image()
	top := im.Topics[t.Topic]
	if top == nil {
		return fail(kerr.UnknownTopicOrPartition, "topic %q does not exist", t.Topic)
	}
	cur := int32(len(top.Partitions))
	if t.Count < cur {
		return fail(kerr.InvalidPartitions, "topic %q has %d partitions; the count can only be increased", t.Topic, cur)
	}
	if t.Count == cur {
		return fail(kerr.InvalidPartitions, "topic %q already has %d partitions", t.Topic, cur)
	}
	add := t.Count - cur
	if int64(add) > int64(*budget) {
		*budget = 0
		return fail(kerr.PolicyViolation, "%s", errTooLargeMessage)
	}
	var assignment [][]int32
	if t.Assignment != nil {
		if int32(len(t.Assignment)) != add {
			return fail(kerr.InvalidReplicaAssignment, "%d assignments given for %d new partitions", len(t.Assignment), add)
		}
		for _, a := range t.Assignment {
			assignment = append(assignment, slices.Clone(a.Replicas))
		}
		if e := checkAssignment(im, cur, assignment); e != nil {
			return e
		}
		if len(assignment[0]) != len(top.Partitions[0].Replicas) {
			return fail(kerr.InvalidReplicaAssignment, "The manual partition assignment includes a partition with %d replica(s), but this is not consistent with previous partitions, which have %d replica(s).", len(assignment[0]), len(top.Partitions[0].Replicas))
		}
	} else {
		var e *codeErr
		if assignment, e = c.placeLocked(im, add, int16(len(top.Partitions[0].Replicas))); e != nil {
			return e
		}
	}
	*budget -= int(add)
	if validateOnly {
		return nil
	}
	if err := c.commitLocked(ctx, partitionRecords(im, top.ID, cur, assignment)); err != nil {
		return c.commitErr("create partitions", err)
	}
	return nil
}

// AllocateProducerID hands out a new unique producer id, persisted in
// blocks in the metadata log so ids are never reused across restarts.
func (c *Controller) AllocateProducerID(ctx context.Context) (int64, error) {
	start, err := c.AllocateProducerIDs(ctx, 1)
	return start, err
}

// AllocateProducerIDs hands out n consecutive new producer ids (n <=
// producerIDBlock) and returns the first. Ids come from blocks reserved
// in the metadata log (ProducerIdsRecord), so they are never reused
// across restarts or controllers; a block reserved in an earlier
// controller epoch is dropped.
func (c *Controller) AllocateProducerIDs(ctx context.Context, n int64) (int64, error) {
	if n < 1 || n > producerIDBlock {
		return 0, fmt.Errorf("controller: producer id block of %d", n)
	}
	c.pidMu.Lock()
	defer c.pidMu.Unlock()
	active, epoch := c.q.Active()
	if !active {
		return 0, &metadata.NotControllerError{ControllerID: c.image().ControllerID}
	}
	if epoch != c.pidEpoch {
		c.nextPID, c.pidLimit, c.pidEpoch = 0, 0, epoch
	}
	if c.nextPID+n > c.pidLimit {
		c.lock()
		defer c.unlock(ctx)
		start := c.image().NextProducerID
		rec := metadata.Record{Type: metadata.TypeProducerIDs, ProducerIDs: &metadata.ProducerIDsRecord{
			BrokerID: c.cfg.NodeID, NextProducerID: start + producerIDBlock,
		}}
		if err := c.commitLocked(ctx, []metadata.Record{rec}); err != nil {
			return 0, fmt.Errorf("controller: reserve producer ids: %w", err)
		}
		c.nextPID, c.pidLimit = start, start+producerIDBlock
	}
	id := c.nextPID
	c.nextPID += n
	return id, nil
}

// CreateInternalTopic creates an internal topic (__consumer_offsets,
// __transaction_state) if it does not exist yet, with partitions
// partitions, replication factor rf (offsets.topic.replication.factor,
// transaction.state.log.replication.factor) and configs. As in Kafka,
// fewer active brokers than rf is an error (INVALID_REPLICATION_FACTOR's
// message), so FindCoordinator answers COORDINATOR_NOT_AVAILABLE until
// enough brokers have registered. min.insync.replicas above rf is capped
// to rf (__transaction_state asks for transaction.state.log.min.isr, 2 by
// default; Kafka keeps it and refuses every transactional write with
// NOT_ENOUGH_REPLICAS instead). It returns nil when the topic exists
// afterwards, also when it did before.
func (c *Controller) CreateInternalTopic(ctx context.Context, name string, partitions int32, rf int16, configs map[string]string) error {
	c.lock()
	defer c.unlock(ctx)
	im := c.image()
	if _, ok := im.Topics[name]; ok {
		return nil
	}
	if c.activeLocked() != nil {
		return &metadata.NotControllerError{ControllerID: im.ControllerID}
	}
	if v, ok := configs["min.insync.replicas"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n > int(rf) && rf > 0 {
			configs = maps.Clone(configs)
			configs["min.insync.replicas"] = strconv.Itoa(int(rf))
		}
	}
	parts, e := c.placeLocked(im, partitions, rf)
	if e != nil {
		return fmt.Errorf("controller: create %s: %w: %s", name, ErrReplicationFactor, e.msg)
	}
	spec := &topicSpec{name: name, configs: configs, assignment: parts}
	if err := config.ValidateTopicConfig(spec.configs); err != nil {
		return fmt.Errorf("controller: create %s: %w", name, err)
	}
	if err := c.commitLocked(ctx, topicRecords(im, spec, newTopicID())); err != nil {
		return fmt.Errorf("controller: create %s: %w", name, err)
	}
	c.logger.Info("created internal topic", "topic", name, "partitions", partitions, "replication.factor", rf)
	return nil
}
