// Package replica is the broker's replica manager: it turns the partitions
// the metadata image assigns to this broker into open logs and serves
// appends and reads on them as leader (followers come with replication).
//
// The manager is a metadata listener: every published image is diffed
// against the previous one (Kafka's ReplicaManager.applyDelta) to create
// logs of new partitions, update configs and delete logs of removed
// topics, before the controller call that caused the change returns.
package replica

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

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
	return &Manager{
		nodeID: nodeID, logs: logs, cfg: cfg, logger: logger,
		partitions: map[topicPartition]*Partition{},
		offline:    map[topicPartition]error{},
		image:      metadata.Empty(""),
	}
}

// Partition returns the partition if this broker leads it:
// ErrUnknownTopicOrPartition if the topic/partition does not exist,
// ErrNotLeader if another broker leads it, ErrOffline if its log failed.
func (m *Manager) Partition(topic string, partition int32) (*Partition, error) {
	tp := topicPartition{topic, partition}
	m.mu.RLock()
	p := m.partitions[tp]
	off := m.offline[tp] != nil
	im := m.image
	m.mu.RUnlock()
	if p != nil {
		st := p.state.Load()
		if st.leader != m.nodeID {
			return nil, ErrNotLeader
		}
		if p.log.Offline() {
			return nil, ErrOffline
		}
		return p, nil
	}
	if off {
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

	m.mu.RLock()
	for _, t := range next.Topics {
		var old *metadata.Topic
		if prev != nil {
			old = prev.TopicsByID[t.ID]
		}
		if old == t && prev == m.image {
			// Images share unchanged topics (copy on write): nothing
			// to do but remember which partitions are still ours.
			for _, mp := range t.Partitions {
				if contains(mp.Replicas, m.nodeID) {
					seen[topicPartition{t.Name, mp.ID}] = true
				}
			}
			continue
		}
		cfgChanged := old == nil || !equalConfigs(old.Configs, t.Configs)
		// Computed for every topic: a partition newly assigned to this
		// broker needs its topic's config even when the config is unchanged.
		scfg := StorageConfig(m.cfg, t.Configs)
		minISR, _ := strconv.Atoi(m.cfg.TopicValue(t.Configs, "min.insync.replicas"))
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
	for i, p := range existing {
		if existingCfg[i] != nil {
			p.log.SetConfig(*existingCfg[i])
		}
		p.update(existingMP[i], existingISR[i], m.nodeID, m.logger)
	}

	m.mu.Lock()
	for i := range creates {
		nr := &creates[i]
		if nr.err != nil {
			m.offline[nr.tp] = fmt.Errorf("%w: %v", ErrOffline, nr.err)
			continue
		}
		p := &Partition{log: nr.log}
		p.state.Store(&partitionState{})
		p.update(nr.mp, nr.minISR, m.nodeID, m.logger)
		m.partitions[nr.tp] = p
	}
	for _, tp := range removed {
		delete(m.partitions, tp)
	}
	for tp := range m.offline {
		if !seen[tp] {
			delete(m.offline, tp)
		}
	}
	m.image = next
	m.mu.Unlock()

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

// partitionState is the replication state of a partition from the image.
// Immutable; replaced as a whole.
type partitionState struct {
	leader      int32
	leaderEpoch int32
	isrSize     int
	minISR      int
}

// Partition is one partition this broker holds.
type Partition struct {
	log   *storage.Log
	state atomic.Pointer[partitionState]
}

func (p *Partition) update(mp metadata.Partition, minISR int, self int32, logger *slog.Logger) {
	st := &partitionState{leader: mp.Leader, leaderEpoch: mp.LeaderEpoch, isrSize: len(mp.ISR), minISR: minISR}
	old := p.state.Swap(st)
	if mp.Leader == self && (old.leader != self || old.leaderEpoch != mp.LeaderEpoch || p.log.LatestEpoch() < mp.LeaderEpoch) {
		if p.log.LatestEpoch() < mp.LeaderEpoch {
			if err := p.log.AssignEpochStartOffset(mp.LeaderEpoch, p.log.LogEndOffset()); err != nil {
				logger.Error("record leader epoch", "topic", p.log.Topic(), "partition", p.log.Partition(), "err", err)
			}
		}
		// A leader of a single-replica ISR owns the high watermark alone.
		if len(mp.ISR) == 1 {
			p.log.SetHighWatermark(p.log.LogEndOffset())
		}
	}
}

// Log returns the partition's log (reads, offsets, Changed, timestamps).
func (p *Partition) Log() *storage.Log { return p.log }

// LeaderEpoch is the current leader epoch.
func (p *Partition) LeaderEpoch() int32 { return p.state.Load().leaderEpoch }

// Append appends records as leader with the producer's acks (0, 1, -1)
// and advances the high watermark as replication allows (with this broker
// the only ISR member, right away). With acks=-1 it returns
// ErrNotEnoughReplicas when the ISR is smaller than min.insync.replicas
// (nothing is appended then).
//
// Every record of every batch is validated first (validate.go); a batch
// that fails rejects the whole request for this partition and nothing is
// stored. records may be rewritten in place (see validateProduce).
func (p *Partition) Append(records []byte, acks int16) (storage.AppendInfo, error) {
	st := p.state.Load()
	if acks == -1 && st.isrSize < st.minISR {
		return storage.AppendInfo{}, ErrNotEnoughReplicas
	}
	cfg := p.log.Config()
	records, err := validateProduce(records, &cfg, nowMs())
	if err != nil {
		return storage.AppendInfo{}, err
	}
	info, err := p.log.AppendAsLeader(records, st.leaderEpoch)
	if err != nil {
		return info, err
	}
	if st.isrSize <= 1 {
		p.log.SetHighWatermark(p.log.LogEndOffset())
	}
	return info, nil
}

// WriteTxnMarker writes a transaction marker (a control batch ending
// producer m.ProducerID's transaction) as leader, stamped with the current
// leader epoch, and advances the high watermark as Append does. Like
// Kafka's markers (appended with acks=-1) it answers ErrNotEnoughReplicas
// when the ISR is smaller than min.insync.replicas; the coordinator
// retries.
func (p *Partition) WriteTxnMarker(m storage.TxnMarker) (int64, error) {
	st := p.state.Load()
	if st.isrSize < st.minISR {
		return -1, ErrNotEnoughReplicas
	}
	m.LeaderEpoch = st.leaderEpoch
	off, err := p.log.WriteTxnMarker(m)
	if err != nil {
		return off, err
	}
	if st.isrSize <= 1 {
		p.log.SetHighWatermark(p.log.LogEndOffset())
	}
	return off, nil
}

// DeleteRecords advances the log start offset to offset (-1: the high
// watermark) as leader and returns the new log start offset (the low
// watermark). Records below it are no longer readable; whole segments
// below it are deleted by the storage engine. A topic whose
// cleanup.policy lacks "delete" answers ErrPolicyViolation, as Kafka's
// ReplicaManager.deleteRecordsOnLocalLog does; an offset above the high
// watermark or below -1 storage.ErrOffsetOutOfRange.
//
// With followers (replication) Kafka also waits until every replica's
// low watermark reached the offset (DelayedDeleteRecords); a single-ISR
// leader is done once its own log moved.
func (p *Partition) DeleteRecords(offset int64) (int64, error) {
	if pol := p.log.Config().CleanupPolicy; !HasCleanupPolicy(pol, "delete") {
		return -1, fmt.Errorf("%w: records of %s-%d cannot be deleted: cleanup.policy=%s", ErrPolicyViolation, p.log.Topic(), p.log.Partition(), pol)
	}
	if offset < -1 {
		return -1, fmt.Errorf("%w: offset %d is negative", storage.ErrOffsetOutOfRange, offset)
	}
	return p.log.DeleteRecordsBefore(offset)
}
