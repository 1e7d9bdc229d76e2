// Package replica is the broker's replica manager: it turns the partitions
// the metadata image assigns to this broker into open logs, makes this
// broker their leader or a follower, and serves appends and reads on them
// (Kafka's ReplicaManager and Partition).
//
// The manager is a metadata listener: every published image is diffed
// against the previous one (Kafka's ReplicaManager.applyDelta) to create
// logs of new partitions, update configs, become leader or follower, and
// delete logs of removed topics, before the controller call that caused
// the change returns. As leader a partition tracks its followers' fetches,
// moves the high watermark and changes the ISR through AlterPartition
// (leader.go); acks=all produces and long-poll fetches wait in its
// purgatories (purgatory.go); as follower it takes the fetcher's writes
// (follower.go). docs/internals.md "Replication" has the whole picture.
package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"samsa/internal/config"
	"samsa/internal/metadata"
	"samsa/internal/record"
	"samsa/internal/storage"
)

// Errors (internal/api maps them to Kafka codes).
var (
	ErrUnknownTopicOrPartition = errors.New("replica: unknown topic or partition")         // UNKNOWN_TOPIC_OR_PARTITION
	ErrNotLeader               = errors.New("replica: not leader or follower")             // NOT_LEADER_OR_FOLLOWER
	ErrNotEnoughReplicas       = errors.New("replica: not enough replicas")                // NOT_ENOUGH_REPLICAS
	ErrOffline                 = errors.New("replica: partition offline")                  // KAFKA_STORAGE_ERROR
	ErrPolicyViolation         = errors.New("replica: not allowed by the topic's configs") // POLICY_VIOLATION
	// ErrNotEnoughReplicasAfterAppend: an acks=all produce's records are
	// replicated to the ISR, but the ISR shrank below min.insync.replicas
	// while it waited.
	ErrNotEnoughReplicasAfterAppend = errors.New("replica: not enough replicas after append") // NOT_ENOUGH_REPLICAS_AFTER_APPEND
	// ErrRequestTimedOut: an acks=all produce's records were not
	// replicated before its deadline (they may still be).
	ErrRequestTimedOut = errors.New("replica: timed out waiting for replication") // REQUEST_TIMED_OUT
	// ErrFencedLeaderEpoch: the request names an older leader epoch.
	ErrFencedLeaderEpoch = errors.New("replica: fenced leader epoch") // FENCED_LEADER_EPOCH
	// ErrUnknownLeaderEpoch: the request names a newer leader epoch than
	// this broker's metadata has.
	ErrUnknownLeaderEpoch = errors.New("replica: unknown leader epoch") // UNKNOWN_LEADER_EPOCH
)

type topicPartition struct {
	topic     string
	partition int32
}

// Manager owns this broker's partitions.
type Manager struct {
	nodeID int32
	logs   *storage.Manager
	cfg    *config.Config
	logger *slog.Logger

	mu sync.RWMutex
	// partitions holds every partition this broker has a replica of.
	// Guarded by mu; the *Partition values are never replaced while the
	// partition exists, their state is.
	partitions map[topicPartition]*Partition
	// offline holds partitions whose log could not be opened, with the
	// error. Guarded by mu.
	offline map[topicPartition]error
	// image is the last image applied. Guarded by mu.
	image *metadata.Image
	// published is image, for readers that must not take mu (ISR
	// eligibility, under a partition's mu).
	published atomic.Pointer[metadata.Image]

	// dynDefault and dynBroker are the dynamic broker configs (cluster
	// default, this broker's) of the last image applied: when they change
	// every log takes the new effective config. Only Apply touches them
	// (Apply calls never overlap).
	dynDefault, dynBroker map[string]string

	// lagMs is replica.lag.time.max.ms. Set by New.
	lagMs int64
	// leaderQuota and followerQuota are the replication throttles
	// (quota.go); their limits and throttled partitions follow the
	// images (Apply). Set by New.
	leaderQuota, followerQuota *Quota
	// sel is replica.selector.class (KIP-392, selector.go). Set by New.
	sel *readSelector
	// opts connect the manager to the cluster; set by SetReplication
	// before the first Apply, read-only afterwards.
	opts ReplicationOptions

	// ctx ends at Close: it stops the ISR check loop and the
	// AlterPartition senders, which wg waits for.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// runMu guards started and closed and orders wg.Add before Close's
	// wg.Wait. A leaf: taken under a partition's mu (sendAlterISR).
	runMu sync.Mutex
	// started guards Start; closed makes Start and sendAlterISR no-ops
	// after Close. Guarded by runMu.
	started, closed bool
	// answered, when set (tests), is called after each AlterPartition
	// answer was applied.
	answered func()
}

// ReplicationOptions connect a Manager to the cluster. Every field is
// optional.
type ReplicationOptions struct {
	// ISRUpdater sends AlterPartition to the active controller. nil: the
	// ISR never changes from this broker (a single node).
	ISRUpdater ISRUpdater
	// BrokerEpoch is this broker's epoch from its registration (-1
	// unknown), sent with its own entry of a proposed ISR.
	BrokerEpoch func() int64
	// FollowerHook is called after an Apply with the partitions this
	// broker started following (a new leader or leader epoch: the
	// fetcher (re)starts them from Partition.Leader()) and those it stopped
	// following (now leader, leaderless or removed). Called from Apply,
	// without the manager's lock; it must not call Apply.
	FollowerHook func(follow, unfollow []*Partition)
	// Now is the clock of follower fetch times and ISR lag (tests move
	// it); nil: time.Now.
	Now func() time.Time
}

// New returns a manager over logs. Subscribe its Apply to the metadata
// publisher.
func New(nodeID int32, logs *storage.Manager, cfg *config.Config, logger *slog.Logger) *Manager {
	if logger == nil {
		logger = slog.Default()
	}
	// Readers (log cleaner, console, ListOffsets) must be able to read
	// back every batch the produce path accepts.
	record.RaiseDecompressionLimit(explicitMaxDecompressedBytes(cfg))
	lag := int64(30_000)
	if cfg != nil {
		if v, ok := cfg.Get("replica.lag.time.max.ms"); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
				lag = n
			}
		}
	}
	num, window := quotaWindow(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		nodeID: nodeID, logs: logs, cfg: cfg, logger: logger,
		leaderQuota: NewQuota(num, window, nil), followerQuota: NewQuota(num, window, nil),
		partitions: map[topicPartition]*Partition{},
		offline:    map[topicPartition]error{},
		image:      metadata.Empty(""),
		lagMs:      lag,
		sel:        newReadSelector(cfg),
		ctx:        ctx, cancel: cancel,
	}
	m.published.Store(m.image)
	return m
}

// SetReplication connects the manager to the cluster. Call it before the
// first Apply.
func (m *Manager) SetReplication(o ReplicationOptions) { m.opts = o }

// Start runs the ISR check every replica.lag.time.max.ms/2 (Kafka's
// isr-expiration task) until Close.
func (m *Manager) Start() {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	if m.started || m.closed {
		return
	}
	m.started = true
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(time.Duration(max(m.lagMs/2, 1)) * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.ctx.Done():
				return
			case <-t.C:
				m.MaybeShrinkISRs()
			}
		}
	}()
}

// Close stops the ISR check and the AlterPartition senders and waits for
// them. The logs stay open (storage.Manager owns them).
func (m *Manager) Close() {
	m.runMu.Lock()
	m.closed = true
	m.runMu.Unlock()
	m.cancel()
	m.wg.Wait()
}

// MaybeShrinkISRs runs the ISR check on every partition this broker leads
// once: followers not caught up for replica.lag.time.max.ms leave the ISR
// (through AlterPartition). Start runs it periodically; tests call it.
func (m *Manager) MaybeShrinkISRs() {
	m.mu.RLock()
	ps := make([]*Partition, 0, len(m.partitions))
	for _, p := range m.partitions {
		if p.state.Load().isLeader {
			ps = append(ps, p)
		}
	}
	m.mu.RUnlock()
	for _, p := range ps {
		p.maybeShrinkISR()
	}
}

// nowMs is the manager's clock in ms.
func (m *Manager) nowMs() int64 {
	if m.opts.Now != nil {
		return m.opts.Now().UnixMilli()
	}
	return time.Now().UnixMilli()
}

// lagTimeMaxMs is replica.lag.time.max.ms.
func (m *Manager) lagTimeMaxMs() int64 { return m.lagMs }

func (m *Manager) isrUpdater() ISRUpdater { return m.opts.ISRUpdater }

func (m *Manager) brokerEpoch() int64 {
	if m.opts.BrokerEpoch == nil {
		return -1
	}
	return m.opts.BrokerEpoch()
}

// sendAlterISR sends p's ISR change pend on its own goroutine (one per
// partition at most: a partition proposes nothing while one is in
// flight), retrying with backoff while the answer says so and pend is
// still the partition's change in flight.
func (m *Manager) sendAlterISR(p *Partition, pend *pendingISR, req AlterISR, u ISRUpdater) {
	m.runMu.Lock()
	closed := m.closed
	if !closed {
		m.wg.Add(1)
	}
	m.runMu.Unlock()
	if closed {
		return
	}
	go func() {
		defer m.wg.Done()
		backoff := alterISRBackoffMin
		for {
			// Every attempt carries the broker epoch of now, as Kafka's
			// AlterPartitionManager builds each request: one answered
			// STALE_BROKER_EPOCH (proposed before this broker registered,
			// or under its previous registration) is retried with the new
			// one instead of the stale one forever.
			req = withBrokerEpoch(req, m.nodeID, m.brokerEpoch())
			ctx, cancel := context.WithTimeout(m.ctx, alterISRTimeout)
			res, err := u.AlterPartition(ctx, req)
			cancel()
			retry := true
			if err != nil {
				m.logger.Warn("AlterPartition not answered; retrying", "topic", req.Topic, "partition", req.Partition, "err", err)
			} else {
				retry = p.alterISRAnswer(pend, req, res)
				if m.answered != nil {
					m.answered()
				}
			}
			if !retry || !p.stillPending(pend) {
				return
			}
			t := time.NewTimer(backoff)
			select {
			case <-m.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, alterISRBackoffMax)
		}
	}()
}

// withBrokerEpoch returns req with this broker's (self's) epoch set to
// epoch, in the request and in its own entry of the proposed ISR.
func withBrokerEpoch(req AlterISR, self int32, epoch int64) AlterISR {
	req.BrokerEpoch = epoch
	req.NewISR = slices.Clone(req.NewISR)
	for i := range req.NewISR {
		if req.NewISR[i].BrokerID == self {
			req.NewISR[i].BrokerEpoch = epoch
		}
	}
	return req
}

// Partition returns the partition if this broker leads it:
// ErrUnknownTopicOrPartition if the topic/partition does not exist,
// ErrNotLeader if another broker leads it, ErrOffline if its log failed.
func (m *Manager) Partition(topic string, partition int32) (*Partition, error) {
	p, err := m.lookup(topic, partition)
	if err != nil {
		return nil, err
	}
	if !p.state.Load().isLeader {
		return nil, ErrNotLeader
	}
	if p.log.Offline() {
		return nil, ErrOffline
	}
	return p, nil
}

// Replica returns this broker's replica of the partition, leader or
// follower (Fetch and OffsetForLeaderEpoch check the leader epoch before
// the role): ErrUnknownTopicOrPartition if the topic/partition does not
// exist, ErrNotLeader if this broker holds no replica of it, ErrOffline
// if its log failed.
func (m *Manager) Replica(topic string, partition int32) (*Partition, error) {
	p, err := m.lookup(topic, partition)
	if err != nil {
		return nil, err
	}
	if p.log.Offline() {
		return nil, ErrOffline
	}
	return p, nil
}

// lookup returns the replica this broker holds of the partition, or why
// it holds none: ErrOffline (its log could not be opened),
// ErrNotLeader (the partition exists elsewhere),
// ErrUnknownTopicOrPartition.
func (m *Manager) lookup(topic string, partition int32) (*Partition, error) {
	tp := topicPartition{topic, partition}
	m.mu.RLock()
	p := m.partitions[tp]
	off := m.offline[tp] != nil
	im := m.image
	m.mu.RUnlock()
	switch {
	case p != nil:
		return p, nil
	case off:
		return nil, ErrOffline
	}
	if t, ok := im.Topics[topic]; ok && partition >= 0 && int(partition) < len(t.Partitions) {
		return nil, ErrNotLeader
	}
	return nil, ErrUnknownTopicOrPartition
}

// StorageConfig maps a topic's effective configs to the storage engine's.
func StorageConfig(cfg *config.Config, overrides map[string]string) storage.Config {
	i64 := func(k string) int64 {
		n, err := strconv.ParseInt(cfg.TopicValue(overrides, k), 10, 64)
		if err != nil {
			return 0
		}
		return n
	}
	clamp32 := func(n int64) int32 {
		if n > math.MaxInt32 {
			return math.MaxInt32
		}
		return int32(n)
	}
	ratio, err := strconv.ParseFloat(cfg.TopicValue(overrides, "min.cleanable.dirty.ratio"), 64)
	if err != nil || !(ratio >= 0 && ratio <= 1) {
		// Also NaN, which older versions accepted into the metadata log.
		ratio = 0.5
	}
	codec, level := compressionConfig(cfg, overrides)
	maxMessageBytes := clamp32(i64("max.message.bytes"))
	return storage.Config{
		MessageTimestampBeforeMaxMs: i64("message.timestamp.before.max.ms"),
		MessageTimestampAfterMaxMs:  i64("message.timestamp.after.max.ms"),
		CompressionType:             codec,
		CompressionLevel:            level,
		MaxDecompressedBytes:        maxDecompressedBytes(cfg, maxMessageBytes),

		SegmentBytes:           i64("segment.bytes"),
		SegmentMs:              i64("segment.ms"),
		SegmentJitterMs:        i64("segment.jitter.ms"),
		SegmentIndexBytes:      clamp32(i64("segment.index.bytes")),
		IndexIntervalBytes:     clamp32(i64("index.interval.bytes")),
		MaxMessageBytes:        maxMessageBytes,
		FlushMessages:          i64("flush.messages"),
		FlushMs:                i64("flush.ms"),
		MessageTimestampType:   cfg.TopicValue(overrides, "message.timestamp.type"),
		RetentionMs:            i64("retention.ms"),
		RetentionBytes:         i64("retention.bytes"),
		CleanupPolicy:          cfg.TopicValue(overrides, "cleanup.policy"),
		DeleteRetentionMs:      i64("delete.retention.ms"),
		MinCleanableDirtyRatio: ratio,
		MinCompactionLagMs:     i64("min.compaction.lag.ms"),
		MaxCompactionLagMs:     i64("max.compaction.lag.ms"),
		FileDeleteDelayMs:      i64("file.delete.delay.ms"),
	}
}

// HasCleanupPolicy reports whether the cleanup.policy list value holds
// policy ("delete" or "compact").
func HasCleanupPolicy(value, policy string) bool {
	// Walked in place: every produce asks, so no allocation.
	for value != "" {
		var p string
		p, value, _ = strings.Cut(value, ",")
		if strings.TrimSpace(p) == policy {
			return true
		}
	}
	return false
}

// OfflineError returns why this broker's replica of the partition is
// offline (its log could not be opened, or went offline after a storage
// error), or nil when it is online or not held here.
func (m *Manager) OfflineError(topic string, partition int32) error {
	tp := topicPartition{topic, partition}
	m.mu.RLock()
	p := m.partitions[tp]
	err := m.offline[tp]
	m.mu.RUnlock()
	if err != nil {
		return err
	}
	if p != nil && p.log.Offline() {
		return fmt.Errorf("%w: log of %s-%d is offline", ErrOffline, topic, partition)
	}
	return nil
}

// newReplica is a partition of the image this broker holds a replica of
// but has no log for yet.
type newReplica struct {
	tp      topicPartition
	topicID metadata.UUID
	cfg     storage.Config
	mp      metadata.Partition
	minISR  int
	log     *storage.Log // set by the creation phase
	err     error        // set by the creation phase
}

// Apply is the metadata listener: it brings the partitions in line with
// next. The publisher runs listeners one image at a time, so Apply calls
// never overlap.
//
// Creating or deleting a log is slow (directories, files, fsyncs: a topic
// of thousands of partitions takes seconds), so it runs without mu: the
// produce and fetch paths look partitions up under mu (Partition) and must
// not wait for another topic's creation. mu is held only to read the maps
// and to install the result. A partition whose log is being created is
// unknown to Partition until it is installed (UNKNOWN_TOPIC_OR_PARTITION,
// retriable), as in Kafka until the broker has applied the delta.
func (m *Manager) Apply(prev, next *metadata.Image) {
	var creates []newReplica
	var existing []*Partition
	var existingMP []metadata.Partition
	var existingISR []int
	var existingCfg []*storage.Config
	seen := map[topicPartition]bool{}
	// The effective broker config (static + the image's dynamic broker
	// configs): the default of every topic config without an override.
	cfg := m.cfg
	dynDefault, dynBroker := next.DynamicBrokerConfigs(m.nodeID)
	brokerCfgChanged := !maps.Equal(dynDefault, m.dynDefault) || !maps.Equal(dynBroker, m.dynBroker)
	if cfg != nil {
		var err error
		if cfg, err = cfg.WithDynamic(dynDefault, dynBroker); err != nil && brokerCfgChanged {
			m.logger.Error("dynamic broker configs", "err", err)
		}
	}
	m.dynDefault, m.dynBroker = dynDefault, dynBroker
	m.applyThrottles(cfg, next)
	// Published first: ISR eligibility (fenced brokers) reads it while
	// the partitions change.
	m.published.Store(next)

	m.mu.RLock()
	for _, t := range next.Topics {
		var old *metadata.Topic
		if prev != nil {
			old = prev.TopicsByID[t.ID]
		}
		if old == t && prev == m.image && !brokerCfgChanged {
			// Images share unchanged topics (copy on write): nothing
			// to do but remember which partitions are still ours.
			for _, mp := range t.Partitions {
				if contains(mp.Replicas, m.nodeID) {
					seen[topicPartition{t.Name, mp.ID}] = true
				}
			}
			continue
		}
		cfgChanged := old == nil || !equalConfigs(old.Configs, t.Configs) || brokerCfgChanged
		// Computed for every topic: a partition newly assigned to this
		// broker needs its topic's config even when the config is unchanged.
		scfg := StorageConfig(cfg, t.Configs)
		minISR, _ := strconv.Atoi(cfg.TopicValue(t.Configs, "min.insync.replicas"))
		for _, mp := range t.Partitions {
			if !contains(mp.Replicas, m.nodeID) {
				continue
			}
			tp := topicPartition{t.Name, mp.ID}
			seen[tp] = true
			p := m.partitions[tp]
			if p == nil {
				if m.offline[tp] == nil {
					creates = append(creates, newReplica{tp: tp, topicID: t.ID, cfg: scfg, mp: mp, minISR: minISR})
				}
				continue
			}
			existing = append(existing, p)
			existingMP = append(existingMP, mp)
			existingISR = append(existingISR, minISR)
			if cfgChanged {
				c := scfg
				existingCfg = append(existingCfg, &c)
			} else {
				existingCfg = append(existingCfg, nil)
			}
		}
	}
	var removed []topicPartition
	for tp := range m.partitions {
		if !seen[tp] {
			removed = append(removed, tp)
		}
	}
	m.mu.RUnlock()

	// Slow part, without mu.
	for i := range creates {
		nr := &creates[i]
		nr.log, nr.err = m.logs.CreateLog(nr.tp.topic, nr.tp.partition, nr.topicID, nr.cfg)
		if nr.err != nil {
			m.logger.Error("open partition log; partition offline", "topic", nr.tp.topic, "partition", nr.tp.partition, "err", nr.err)
		}
	}
	var follow, unfollow []*Partition
	track := func(p *Partition, f, u bool) {
		if f {
			follow = append(follow, p)
		}
		if u {
			unfollow = append(unfollow, p)
		}
	}
	for i, p := range existing {
		if existingCfg[i] != nil {
			p.log.SetConfig(*existingCfg[i])
		}
		f, u := p.apply(existingMP[i], existingISR[i])
		track(p, f, u)
	}
	// New partitions take their role before they are visible: becoming
	// leader writes leader-epoch-checkpoint, not to be done under mu.
	made := make([]*Partition, len(creates))
	for i := range creates {
		nr := &creates[i]
		if nr.err != nil {
			continue
		}
		p := newPartition(m, nr.log, nr.topicID)
		f, u := p.apply(nr.mp, nr.minISR)
		track(p, f, u)
		made[i] = p
	}

	m.mu.Lock()
	for i := range creates {
		nr := &creates[i]
		if nr.err != nil {
			m.offline[nr.tp] = fmt.Errorf("%w: %v", ErrOffline, nr.err)
			continue
		}
		m.partitions[nr.tp] = made[i]
	}
	var gone []*Partition
	for _, tp := range removed {
		if p := m.partitions[tp]; p != nil {
			gone = append(gone, p)
		}
		delete(m.partitions, tp)
	}
	for tp := range m.offline {
		if !seen[tp] {
			delete(m.offline, tp)
		}
	}
	m.image = next
	m.mu.Unlock()

	for _, p := range gone {
		if p.remove() {
			unfollow = append(unfollow, p)
		}
	}
	if h := m.opts.FollowerHook; h != nil && (len(follow) > 0 || len(unfollow) > 0) {
		h(follow, unfollow)
	}

	for _, tp := range removed {
		if err := m.logs.DeleteLog(tp.topic, tp.partition); err != nil {
			m.logger.Error("delete partition log", "topic", tp.topic, "partition", tp.partition, "err", err)
		}
	}
}

// RemoveStrayLogs deletes logs on disk that belong to no partition of the
// image (topics deleted while the broker was down), as Kafka does at
// startup. Call after the first Apply.
func (m *Manager) RemoveStrayLogs() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.logs.Logs() {
		tp := topicPartition{l.Topic(), l.Partition()}
		if _, ok := m.partitions[tp]; ok || tp.topic == "__cluster_metadata" {
			continue
		}
		m.logger.Info("deleting stray log", "topic", tp.topic, "partition", tp.partition)
		if err := m.logs.DeleteLog(tp.topic, tp.partition); err != nil {
			m.logger.Error("delete stray log", "topic", tp.topic, "partition", tp.partition, "err", err)
		}
	}
}

func contains(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func equalConfigs(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
