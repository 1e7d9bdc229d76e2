package server

import (
	"context"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/group"
	"samsa/internal/metadata"
	"samsa/internal/replica"
	"samsa/internal/replication"
	"samsa/internal/storage"
)

// newRegistry builds the node's metrics registry: the Go runtime and
// process collectors and the scrape-time state collector. The request
// metrics (internal/metrics) are registered by the caller.
func newRegistry(s *Server) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{nodeID: s.cfg.NodeID, pub: s.pub, replicas: s.replicas, groups: s.groups, logs: s.logs, fetchers: s.fetchers},
	)
	if r := s.replicas; r != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "samsa_follower_consumer_fetches_total",
			Help: "Consumer fetch partitions this broker served as a follower (KIP-392 fetching from the closest replica).",
		}, func() float64 { return float64(r.FollowerReads()) }))
	}
	if ctl := s.controller; ctl != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "samsa_controller_unclean_leader_elections_total",
			Help: "Leaders this node, as active controller, elected from outside the ISR (unclean.leader.election.enable): records may have been lost.",
		}, func() float64 { return float64(ctl.UncleanLeaderElections()) }))
	}
	return reg
}

// stateCollector reads log, partition and group state when /metrics is
// scraped, as Kafka's gauges read it when JMX is polled: nothing is kept
// up to date between scrapes. docs/metrics.md maps each metric to Kafka's.
type stateCollector struct {
	nodeID   int32
	pub      *metadata.Publisher
	replicas *replica.Manager
	groups   *group.Coordinator
	logs     *storage.Manager
	fetchers *replication.Manager // nil on a controller-only node
}

var (
	tpLabels  = []string{"topic", "partition"}
	gtpLabels = []string{"group", "topic", "partition"}

	descLogEndOffset = prometheus.NewDesc("samsa_log_end_offset",
		"Offset after the last record appended to the partition's log (leader replicas).", tpLabels, nil)
	descLogStartOffset = prometheus.NewDesc("samsa_log_start_offset",
		"First offset still readable in the partition's log (leader replicas).", tpLabels, nil)
	descHighWatermark = prometheus.NewDesc("samsa_log_high_watermark",
		"Offset below which every record is committed to the ISR (leader replicas).", tpLabels, nil)
	descLastStableOffset = prometheus.NewDesc("samsa_log_last_stable_offset",
		"Offset below which no transaction is open (leader replicas).", tpLabels, nil)

	descPartitions = prometheus.NewDesc("samsa_partitions",
		"Partitions with a replica on this broker.", nil, nil)
	descLeaders = prometheus.NewDesc("samsa_leader_partitions",
		"Partitions this broker leads.", nil, nil)
	descUnderReplicated = prometheus.NewDesc("samsa_under_replicated_partitions",
		"Partitions this broker leads whose ISR is smaller than their replica set.", nil, nil)
	descOffline = prometheus.NewDesc("samsa_offline_partitions",
		"Partitions of the cluster without a leader (reported by the active controller).", nil, nil)
	descActiveController = prometheus.NewDesc("samsa_active_controller",
		"1 if this node is the active controller, else 0.", nil, nil)

	descLogDirState = prometheus.NewDesc("samsa_log_dir_state",
		"1 for the log dir's current state (online: serving; full: out of space, appends refused, reads served), 0 for the others.", []string{"dir", "state"}, nil)
	descLogDirFullEvents = prometheus.NewDesc("samsa_log_dir_full_events_total",
		"Times the log dir ran out of space.", []string{"dir"}, nil)
	descLogDirOffline = prometheus.NewDesc("samsa_log_dir_offline_partitions",
		"Partitions in the log dir that are offline after an I/O error or could not be opened.", []string{"dir"}, nil)
	descOpenSegmentFiles = prometheus.NewDesc("samsa_log_open_segment_files",
		"Segments whose .log file is open (bounded by an LRU).", nil, nil)

	fetcherLabels            = []string{"leader", "fetcher"}
	descReplicaFetcherMaxLag = prometheus.NewDesc("samsa_replica_fetcher_max_lag",
		"Largest leader high watermark minus this follower's log end offset over the fetcher's partitions, in records, as of their last fetch.", fetcherLabels, nil)
	descReplicaFetcherPartitions = prometheus.NewDesc("samsa_replica_fetcher_partitions",
		"Partitions the fetcher copies from its leader.", fetcherLabels, nil)
	descReplicaFetcherRequests = prometheus.NewDesc("samsa_replica_fetcher_requests_total",
		"Fetch requests the fetcher sent to its leader.", fetcherLabels, nil)
	descReplicaFetcherFailures = prometheus.NewDesc("samsa_replica_fetcher_failed_requests_total",
		"Fetch requests of the fetcher that got no answer (connection errors, timeouts).", fetcherLabels, nil)
	descReplicaFetcherBytes = prometheus.NewDesc("samsa_replica_fetcher_bytes_total",
		"Record bytes the fetcher appended to this broker's replicas.", fetcherLabels, nil)

	throttleLabels    = []string{"side"}
	descThrottleBytes = prometheus.NewDesc("samsa_replication_throttle_bytes_total",
		"Bytes of throttled replicas (leader: sent to followers; follower: appended) metered by the replication throttle (KIP-73).", throttleLabels, nil)
	descThrottledSeconds = prometheus.NewDesc("samsa_replication_throttled_seconds_total",
		"Time the replication throttle's measured rate was above its limit (throttled replicas held back).", throttleLabels, nil)
	descThrottleRate = prometheus.NewDesc("samsa_replication_throttle_byte_rate",
		"Measured rate of the throttled replicas' bytes over the quota window, bytes/s (Kafka's LeaderReplication/FollowerReplication byte-rate).", throttleLabels, nil)
	descThrottleLimit = prometheus.NewDesc("samsa_replication_throttle_limit_bytes_per_second",
		"leader/follower.replication.throttled.rate in force (9223372036854775807: unlimited).", throttleLabels, nil)

	descGroups = prometheus.NewDesc("samsa_consumer_groups",
		"Groups coordinated by this broker, by state.", []string{"state"}, nil)
	descGroupOffset = prometheus.NewDesc("samsa_consumer_group_committed_offset",
		"Group's committed offset for a partition.", gtpLabels, nil)
	descGroupLag = prometheus.NewDesc("samsa_consumer_group_lag",
		"Partition high watermark minus the group's committed offset (0 when the commit is ahead).", gtpLabels, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descLogEndOffset, descLogStartOffset, descHighWatermark, descLastStableOffset,
		descPartitions, descLeaders, descUnderReplicated, descOffline, descActiveController,
		descLogDirState, descLogDirFullEvents, descLogDirOffline, descOpenSegmentFiles,
		descGroups, descGroupOffset, descGroupLag,
		descReplicaFetcherMaxLag, descReplicaFetcherPartitions, descReplicaFetcherRequests, descReplicaFetcherFailures, descReplicaFetcherBytes,
		descThrottleBytes, descThrottledSeconds, descThrottleRate, descThrottleLimit,
	} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	im := c.pub.Image()
	c.collectPartitions(ch, im)
	c.collectLogDirs(ch)
	c.collectGroups(ch)
	c.collectFetchers(ch)
	c.collectThrottles(ch)
}

// collectThrottles reports the replication throttles (replica.Quota).
func (c *stateCollector) collectThrottles(ch chan<- prometheus.Metric) {
	if c.replicas == nil {
		return
	}
	for side, q := range map[string]*replica.Quota{"leader": c.replicas.LeaderQuota(), "follower": c.replicas.FollowerQuota()} {
		st := q.Stats()
		ch <- prometheus.MustNewConstMetric(descThrottleBytes, prometheus.CounterValue, float64(st.Bytes), side)
		ch <- prometheus.MustNewConstMetric(descThrottledSeconds, prometheus.CounterValue, st.Throttled.Seconds(), side)
		ch <- prometheus.MustNewConstMetric(descThrottleRate, prometheus.GaugeValue, st.Rate, side)
		ch <- prometheus.MustNewConstMetric(descThrottleLimit, prometheus.GaugeValue, float64(st.Limit), side)
	}
}

// collectFetchers reports the follower fetchers (Kafka's
// kafka.server:type=ReplicaFetcherManager,name=MaxLag and FetcherStats).
func (c *stateCollector) collectFetchers(ch chan<- prometheus.Metric) {
	if c.fetchers == nil {
		return
	}
	for _, f := range c.fetchers.Fetchers() {
		l := []string{strconv.Itoa(int(f.LeaderID)), strconv.Itoa(f.Index)}
		ch <- prometheus.MustNewConstMetric(descReplicaFetcherMaxLag, prometheus.GaugeValue, float64(f.MaxLag), l...)
		ch <- prometheus.MustNewConstMetric(descReplicaFetcherPartitions, prometheus.GaugeValue, float64(f.Partitions), l...)
		ch <- prometheus.MustNewConstMetric(descReplicaFetcherRequests, prometheus.CounterValue, float64(f.Requests), l...)
		ch <- prometheus.MustNewConstMetric(descReplicaFetcherFailures, prometheus.CounterValue, float64(f.Failures), l...)
		ch <- prometheus.MustNewConstMetric(descReplicaFetcherBytes, prometheus.CounterValue, float64(f.Bytes), l...)
	}
}

// collectLogDirs reports each log dir's state (Kafka has only
// kafka.log:type=LogManager,name=OfflineLogDirectoryCount; a full dir is
// Samsa's back-pressure state, see docs/storage.md).
func (c *stateCollector) collectLogDirs(ch chan<- prometheus.Metric) {
	if c.logs == nil {
		return
	}
	for _, d := range c.logs.LogDirs() {
		for _, st := range []storage.LogDirState{storage.LogDirOnline, storage.LogDirFull, storage.LogDirOffline} {
			v := 0.0
			if d.State == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descLogDirState, prometheus.GaugeValue, v, d.Dir, st.String())
		}
		ch <- prometheus.MustNewConstMetric(descLogDirFullEvents, prometheus.CounterValue, float64(d.FullEvents), d.Dir)
		ch <- prometheus.MustNewConstMetric(descLogDirOffline, prometheus.GaugeValue, float64(d.OfflinePartitions), d.Dir)
	}
	ch <- prometheus.MustNewConstMetric(descOpenSegmentFiles, prometheus.GaugeValue, float64(c.logs.OpenSegmentFiles()))
}

// collectPartitions reports the per-partition log offsets and the
// ReplicaManager/KafkaController partition counts, from the metadata
// image (replicas, ISR, leader) and the leader's log.
func (c *stateCollector) collectPartitions(ch chan<- prometheus.Metric, im *metadata.Image) {
	var partitions, leaders, urp, offline int
	for name, t := range im.Topics {
		for _, mp := range t.Partitions {
			if mp.Leader < 0 {
				offline++
			}
			if !containsID(mp.Replicas, c.nodeID) {
				continue
			}
			partitions++
			if mp.Leader != c.nodeID {
				continue
			}
			leaders++
			// Kafka's Partition.isUnderReplicated: the leader counts a
			// partition whose ISR is smaller than its replica set.
			if len(mp.ISR) < len(mp.Replicas) {
				urp++
			}
			p, err := c.replicas.Partition(name, mp.ID)
			if err != nil {
				continue // offline log, or not yet opened by Apply
			}
			o := p.Offsets()
			pid := strconv.Itoa(int(mp.ID))
			ch <- prometheus.MustNewConstMetric(descLogEndOffset, prometheus.GaugeValue, float64(o.LogEnd), name, pid)
			ch <- prometheus.MustNewConstMetric(descLogStartOffset, prometheus.GaugeValue, float64(o.LogStart), name, pid)
			ch <- prometheus.MustNewConstMetric(descHighWatermark, prometheus.GaugeValue, float64(o.HighWatermark), name, pid)
			ch <- prometheus.MustNewConstMetric(descLastStableOffset, prometheus.GaugeValue, float64(o.LastStable), name, pid)
		}
	}
	ch <- prometheus.MustNewConstMetric(descPartitions, prometheus.GaugeValue, float64(partitions))
	ch <- prometheus.MustNewConstMetric(descLeaders, prometheus.GaugeValue, float64(leaders))
	ch <- prometheus.MustNewConstMetric(descUnderReplicated, prometheus.GaugeValue, float64(urp))
	active := 0.0
	if im.ControllerID == c.nodeID {
		active = 1
	}
	// Like KafkaController's OfflinePartitionsCount, only the active
	// controller reports offline partitions; the others report 0.
	if active == 0 {
		offline = 0
	}
	ch <- prometheus.MustNewConstMetric(descOffline, prometheus.GaugeValue, float64(offline))
	ch <- prometheus.MustNewConstMetric(descActiveController, prometheus.GaugeValue, active)
}

// collectGroups reports group counts by state and, per committed
// partition, the offset and lag. It reads the coordinator through its
// request API (ListGroups v5, OffsetFetch v8 with null topics: every
// committed offset), the same view an admin client gets.
func (c *stateCollector) collectGroups(ch chan<- prometheus.Metric) {
	if c.groups == nil {
		return
	}
	ctx := context.Background()
	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.Version = 5
	lresp := c.groups.ListGroups(ctx, lreq)
	byState := map[string]int{}
	freq := kmsg.NewPtrOffsetFetchRequest()
	freq.Version = 8
	for _, g := range lresp.Groups {
		byState[g.GroupState]++
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g.Group
		freq.Groups = append(freq.Groups, rg)
	}
	for state, n := range byState {
		ch <- prometheus.MustNewConstMetric(descGroups, prometheus.GaugeValue, float64(n), state)
	}
	if len(freq.Groups) == 0 {
		return
	}
	fresp := c.groups.OffsetFetch(ctx, freq)
	for _, g := range fresp.Groups {
		if g.ErrorCode != 0 {
			continue
		}
		for _, t := range g.Topics {
			for _, fp := range t.Partitions {
				if fp.ErrorCode != 0 || fp.Offset < 0 {
					continue
				}
				pid := strconv.Itoa(int(fp.Partition))
				ch <- prometheus.MustNewConstMetric(descGroupOffset, prometheus.GaugeValue, float64(fp.Offset), g.Group, t.Topic, pid)
				p, err := c.replicas.Partition(t.Topic, fp.Partition)
				if err != nil {
					continue // deleted topic, or led elsewhere: no lag known here
				}
				lag := p.HighWatermark() - fp.Offset
				if lag < 0 {
					lag = 0
				}
				ch <- prometheus.MustNewConstMetric(descGroupLag, prometheus.GaugeValue, float64(lag), g.Group, t.Topic, pid)
			}
		}
	}
}

func containsID(ids []int32, id int32) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}
