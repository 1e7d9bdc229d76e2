package cli

// `samsa cluster info` and `samsa cluster health`: what a cluster looks
// like through the Kafka protocol alone. Three requests describe it:
//
//   - Metadata: the live brokers, the controller id, the partitions and
//     their leaders (kadm.BrokerMetadata / kadm.Metadata);
//   - DescribeCluster v2 with IncludeFencedBrokers (KIP-1073): the
//     registered brokers, fenced ones marked;
//   - DescribeQuorum (key 55) on __cluster_metadata-0: the Raft leader,
//     its epoch and high watermark, voters and observers with their log
//     end offsets and fetch times, as kafka-metadata-quorum.sh shows them.
//
// A broker that does not serve DescribeQuorum (or DescribeCluster v2) is
// described with what it does serve; the output says what is missing.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataTopic is the Raft partition of KRaft's metadata log.
const metadataTopic = "__cluster_metadata"

// defaultClusterTimeout bounds `cluster info` and `cluster health`: a
// paused broker must not hang a health probe.
const defaultClusterTimeout = 15 * time.Second

// maxListedProblems bounds the offline partitions named one by one.
const maxListedProblems = 20

func newClusterCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect and operate the cluster: brokers, controller, metadata quorum, health, leader elections, reassignment, dynamic configs, log dirs, decommission, balance",
	}
	cmd.AddCommand(newClusterInfoCommand(g), newClusterHealthCommand(g), newClusterElectCommand(g), newClusterReassignCommand(g),
		newClusterConfigCommand(g), newClusterDecommissionCommand(g), newClusterBalanceCommand(g), newClusterLogDirsCommand(g))
	return cmd
}

// clusterInfo is what `cluster info` shows.
type clusterInfo struct {
	ClusterID string `json:"cluster_id"`
	// Controller is the controller id Metadata reports; -1 if unknown.
	Controller int32 `json:"controller"`
	// ActiveController is the Raft leader of the metadata quorum when
	// DescribeQuorum answered, else Controller.
	ActiveController int32        `json:"active_controller"`
	Brokers          []brokerInfo `json:"brokers"`
	// Quorum is nil when DescribeQuorum was not answered; QuorumError
	// then says why.
	Quorum      *quorumInfo `json:"quorum"`
	QuorumError string      `json:"quorum_error,omitempty"`

	// quorumNotServed: the broker does not serve DescribeQuorum at all.
	quorumNotServed bool
	// registered holds every registered broker, fenced or not, when
	// DescribeCluster v2 answered; nil otherwise.
	registered map[int32]bool
}

type brokerInfo struct {
	NodeID int32   `json:"node_id"`
	Host   string  `json:"host"`
	Port   int32   `json:"port"`
	Rack   *string `json:"rack"`
	// Fenced is set for a registered broker missing from Metadata's live
	// brokers (DescribeCluster v2 IsFenced).
	Fenced bool `json:"fenced"`
}

// quorumInfo is the metadata partition's Raft state (DescribeQuorum).
type quorumInfo struct {
	LeaderID      int32           `json:"leader_id"` // -1: no leader
	LeaderEpoch   int32           `json:"leader_epoch"`
	HighWatermark int64           `json:"high_watermark"`
	Voters        []quorumReplica `json:"voters"`
	Observers     []quorumReplica `json:"observers"`
}

// quorumReplica is one voter or observer of the metadata quorum.
type quorumReplica struct {
	NodeID       int32 `json:"node_id"`
	LogEndOffset int64 `json:"log_end_offset"` // -1: unknown
	// Lag is the leader's log end offset minus this replica's, in
	// records (kafka-metadata-quorum.sh's Lag); -1 when unknown.
	Lag int64 `json:"lag"`
	// LastFetchTimestamp and LastCaughtUpTimestamp are Unix
	// milliseconds from the leader (-1: unknown); the ages are
	// milliseconds before the moment of the request (-1: unknown).
	LastFetchTimestamp    int64 `json:"last_fetch_timestamp"`
	LastCaughtUpTimestamp int64 `json:"last_caught_up_timestamp"`
	LastFetchAgeMs        int64 `json:"last_fetch_age_ms"`
	LastCaughtUpAgeMs     int64 `json:"last_caught_up_age_ms"`
}

func newClusterInfoCommand(g *globals) *cobra.Command {
	timeout := defaultClusterTimeout
	cmd := &cobra.Command{
		Use:     "info",
		Aliases: []string{"metadata"},
		Short:   "Show the cluster id, the brokers, the active controller and the metadata quorum",
		Long: `Show the cluster id, every registered broker (id, host, port, rack; fenced
brokers marked), the controller, and the metadata quorum as DescribeQuorum
reports it: the Raft leader (the active controller), its epoch and high
watermark, and each voter and observer with its log end offset, its lag
behind the leader in records, and how long ago it last fetched and was last
caught up.`,
		Example: `  samsa cluster info
  samsa cluster info -X broker1:9092 --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.runClusterAdmin(cmd, timeout, func(ctx context.Context, cl *kgo.Client, adm *kadm.Client) error {
				ci, _, err := describeCluster(ctx, cl, adm, false)
				if err != nil {
					return err
				}
				return printClusterInfo(out(cmd), g, ci, time.Now())
			})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", timeout, "give up after this long")
	return cmd
}

// runClusterAdmin is runAdmin with a deadline.
func (g *globals) runClusterAdmin(cmd *cobra.Command, timeout time.Duration, fn func(ctx context.Context, cl *kgo.Client, adm *kadm.Client) error) error {
	if timeout <= 0 {
		return fmt.Errorf("--timeout %v: want a positive duration", timeout)
	}
	adm, cl, err := g.admin()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(contextOrBackground(cmd), timeout)
	defer cancel()
	return fn(ctx, cl, adm)
}

// describeCluster gathers clusterInfo; with topics it also returns the
// Metadata of every topic (for the health check).
func describeCluster(ctx context.Context, cl *kgo.Client, adm *kadm.Client, topics bool) (clusterInfo, kadm.Metadata, error) {
	var md kadm.Metadata
	var err error
	if topics {
		md, err = adm.Metadata(ctx)
	} else {
		md, err = adm.BrokerMetadata(ctx)
	}
	if err != nil {
		return clusterInfo{}, md, fmt.Errorf("metadata: %w", err)
	}
	ci := clusterInfo{ClusterID: md.Cluster, Controller: md.Controller, ActiveController: md.Controller, Brokers: []brokerInfo{}}
	for _, b := range md.Brokers {
		ci.Brokers = append(ci.Brokers, brokerInfo{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
	}
	// Registered but fenced brokers: only DescribeCluster v2 names them.
	dreq := kmsg.NewPtrDescribeClusterRequest()
	dreq.IncludeFencedBrokers = true
	if dresp, err := dreq.RequestWith(ctx, cl); err == nil && dresp.ErrorCode == 0 && dresp.Version >= 2 {
		ci.registered = map[int32]bool{}
		for _, b := range dresp.Brokers {
			ci.registered[b.NodeID] = true
			if !b.IsFenced || slices.ContainsFunc(ci.Brokers, func(x brokerInfo) bool { return x.NodeID == b.NodeID }) {
				continue
			}
			ci.Brokers = append(ci.Brokers, brokerInfo{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack, Fenced: true})
		}
	}
	slices.SortFunc(ci.Brokers, func(a, b brokerInfo) int { return int(a.NodeID) - int(b.NodeID) })

	q, qerr := describeQuorum(ctx, cl)
	if qerr != nil {
		ci.QuorumError = qerr.Error()
		ci.quorumNotServed = errors.Is(qerr, errQuorumNotServed)
	} else {
		ci.Quorum = q
		ci.ActiveController = q.LeaderID
	}
	return ci, md, nil
}

// errQuorumNotServed marks a cluster whose brokers do not serve
// DescribeQuorum: nothing to check, not a failure.
var errQuorumNotServed = errors.New("cli: DescribeQuorum (key 55) is not served by this broker")

// describeQuorum sends DescribeQuorum for __cluster_metadata-0 (kgo
// routes it to the controller, as it does every admin request).
func describeQuorum(ctx context.Context, cl *kgo.Client) (*quorumInfo, error) {
	vreq := kmsg.NewPtrApiVersionsRequest()
	vreq.ClientSoftwareName, vreq.ClientSoftwareVersion = "samsa", "1"
	vresp, err := vreq.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("api versions: %w", err)
	}
	served := false
	for _, k := range vresp.ApiKeys {
		served = served || k.ApiKey == int16(kmsg.DescribeQuorum)
	}
	if !served {
		return nil, errQuorumNotServed
	}
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = metadataTopic
	rp := kmsg.NewDescribeQuorumRequestTopicPartition()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("describe quorum: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("describe quorum: %s", kafkaError(err, deref(resp.ErrorMessage)))
	}
	return quorumFromResponse(resp, time.Now())
}

// quorumFromResponse turns a DescribeQuorum response into quorumInfo,
// with ages relative to now.
func quorumFromResponse(resp *kmsg.DescribeQuorumResponse, now time.Time) (*quorumInfo, error) {
	for _, t := range resp.Topics {
		if t.Topic != metadataTopic {
			continue
		}
		for _, p := range t.Partitions {
			if p.Partition != 0 {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("describe quorum: %s-0: %s", metadataTopic, kafkaError(err, deref(p.ErrorMessage)))
			}
			q := &quorumInfo{LeaderID: p.LeaderID, LeaderEpoch: p.LeaderEpoch, HighWatermark: p.HighWatermark,
				Voters: []quorumReplica{}, Observers: []quorumReplica{}}
			leaderLEO := int64(-1)
			for _, v := range p.CurrentVoters {
				if v.ReplicaID == p.LeaderID {
					leaderLEO = v.LogEndOffset
				}
			}
			conv := func(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState) []quorumReplica {
				out := []quorumReplica{}
				for _, r := range rs {
					qr := quorumReplica{NodeID: r.ReplicaID, LogEndOffset: r.LogEndOffset, Lag: -1,
						LastFetchTimestamp: r.LastFetchTimestamp, LastCaughtUpTimestamp: r.LastCaughtUpTimestamp,
						LastFetchAgeMs: ageMs(now, r.LastFetchTimestamp), LastCaughtUpAgeMs: ageMs(now, r.LastCaughtUpTimestamp)}
					if leaderLEO >= 0 && r.LogEndOffset >= 0 {
						qr.Lag = max(leaderLEO-r.LogEndOffset, 0)
					}
					out = append(out, qr)
				}
				slices.SortFunc(out, func(a, b quorumReplica) int { return int(a.NodeID) - int(b.NodeID) })
				return out
			}
			q.Voters, q.Observers = conv(p.CurrentVoters), conv(p.Observers)
			return q, nil
		}
	}
	return nil, fmt.Errorf("describe quorum: the response has no %s-0", metadataTopic)
}

// ageMs is now minus a Unix-millisecond timestamp, -1 for an unknown
// (negative) one, never negative otherwise (clocks of two nodes differ).
func ageMs(now time.Time, ts int64) int64 {
	if ts < 0 {
		return -1
	}
	return max(now.UnixMilli()-ts, 0)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func printClusterInfo(w io.Writer, g *globals, ci clusterInfo, now time.Time) error {
	if g.json() {
		return writeJSON(w, ci)
	}
	section(w, "CLUSTER")
	t := newTable(w)
	t.row("CLUSTER-ID", ci.ClusterID)
	t.row("CONTROLLER", ci.ActiveController)
	t.flush()
	fmt.Fprintln(w)
	section(w, "BROKERS")
	t = newTable(w, "ID", "HOST", "PORT", "RACK", "STATUS")
	for _, b := range ci.Brokers {
		id := fmt.Sprint(b.NodeID)
		if b.NodeID == ci.ActiveController {
			id += "*" // rpk marks the controller the same way
		}
		rack := ""
		if b.Rack != nil {
			rack = *b.Rack
		}
		st := "live"
		if b.Fenced {
			st = "fenced"
		}
		t.row(id, b.Host, b.Port, rack, st)
	}
	t.flush()
	fmt.Fprintln(w)
	section(w, "QUORUM")
	if ci.Quorum == nil {
		fmt.Fprintf(w, "not available: %s\n", ci.QuorumError)
		return nil
	}
	q := ci.Quorum
	t = newTable(w)
	leader := fmt.Sprint(q.LeaderID)
	if q.LeaderID < 0 {
		leader = "none"
	}
	t.row("LEADER", leader)
	t.row("LEADER-EPOCH", q.LeaderEpoch)
	t.row("HIGH-WATERMARK", q.HighWatermark)
	t.flush()
	fmt.Fprintln(w)
	t = newTable(w, "ID", "ROLE", "LOG-END-OFFSET", "LAG", "LAST-FETCH", "LAST-CAUGHT-UP")
	rows := func(rs []quorumReplica, role string) {
		for _, r := range rs {
			rl := role
			if role == "follower" && r.NodeID == q.LeaderID {
				rl = "leader"
			}
			lag := "-"
			if r.Lag >= 0 {
				lag = fmt.Sprint(r.Lag)
			}
			t.row(r.NodeID, rl, r.LogEndOffset, lag, ago(r.LastFetchAgeMs), ago(r.LastCaughtUpAgeMs))
		}
	}
	rows(q.Voters, "follower")
	rows(q.Observers, "observer")
	t.flush()
	return nil
}

// ago renders an age in milliseconds as "1.25s ago"; "-" when unknown.
func ago(ms int64) string {
	if ms < 0 {
		return "-"
	}
	d := time.Duration(ms) * time.Millisecond
	if d >= time.Minute {
		d = d.Round(time.Second)
	}
	return d.String() + " ago"
}

// clusterHealth is what `cluster health` reports.
type clusterHealth struct {
	Healthy  bool     `json:"healthy"`
	Problems []string `json:"problems"`
	// Notes are checks that could not run (a broker that does not serve
	// DescribeQuorum); they do not make the cluster unhealthy.
	Notes       []string `json:"notes,omitempty"`
	LiveBrokers int      `json:"live_brokers"`
	// FencedBrokers are registered brokers that are fenced and quorum
	// members that are no live broker, sorted.
	FencedBrokers     []int32 `json:"fenced_brokers"`
	OfflinePartitions int     `json:"offline_partitions"`
	Partitions        int     `json:"partitions"`
	QuorumLeader      int32   `json:"quorum_leader"` // -1: none or unknown
	QuorumEpoch       int32   `json:"quorum_epoch"`
	Voters            int     `json:"voters"`
}

func newClusterHealthCommand(g *globals) *cobra.Command {
	timeout := defaultClusterTimeout
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Exit 0 when the cluster is healthy; else say why and exit 1",
		Long: `Check the cluster and exit non-zero, naming each problem, when:

  - a broker is fenced: registered but missing from the live brokers
    (DescribeCluster v2 with fenced brokers), or a voter or observer of the
    metadata quorum that is not a live broker;
  - a partition is offline: its leader is -1;
  - the metadata quorum has no leader (or, on a broker without
    DescribeQuorum, Metadata names no controller).

Otherwise it prints "healthy" and a one-line summary and exits 0.`,
		Example: `  samsa cluster health -X 127.0.0.1:19092
  samsa cluster health --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.runClusterAdmin(cmd, timeout, func(ctx context.Context, cl *kgo.Client, adm *kadm.Client) error {
				ci, md, err := describeCluster(ctx, cl, adm, true)
				if err != nil {
					return err
				}
				h := checkHealth(ci, md)
				if err := printClusterHealth(out(cmd), g, h); err != nil {
					return err
				}
				if !h.Healthy {
					return errReported
				}
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", timeout, "give up (unhealthy) after this long")
	return cmd
}

// checkHealth applies the health rules to what describeCluster found.
func checkHealth(ci clusterInfo, md kadm.Metadata) clusterHealth {
	h := clusterHealth{Problems: []string{}, FencedBrokers: []int32{}, QuorumLeader: -1}
	live := map[int32]bool{}
	for _, b := range ci.Brokers {
		if b.Fenced {
			h.FencedBrokers = append(h.FencedBrokers, b.NodeID)
			h.Problems = append(h.Problems, fmt.Sprintf("broker %d is fenced (registered, not live)", b.NodeID))
			continue
		}
		live[b.NodeID] = true
		h.LiveBrokers++
	}
	if q := ci.Quorum; q != nil {
		h.QuorumLeader, h.QuorumEpoch, h.Voters = q.LeaderID, q.LeaderEpoch, len(q.Voters)
		if q.LeaderID < 0 {
			h.Problems = append(h.Problems, fmt.Sprintf("the metadata quorum has no leader (epoch %d)", q.LeaderEpoch))
		}
		// A quorum member that is no live broker: fenced or down. A
		// voter that never registered as a broker is a controller-only
		// node; only DescribeCluster v2 (the registered set) tells them
		// apart, so without it every such voter is reported. Fenced
		// registered brokers were reported above.
		for i, set := range [][]quorumReplica{q.Voters, q.Observers} {
			for _, r := range set {
				if live[r.NodeID] || slices.Contains(h.FencedBrokers, r.NodeID) {
					continue
				}
				if i == 0 && ci.registered != nil && !ci.registered[r.NodeID] {
					continue // a controller-only voter
				}
				h.FencedBrokers = append(h.FencedBrokers, r.NodeID)
				h.Problems = append(h.Problems, fmt.Sprintf("node %d is in the metadata quorum but not a live broker (fenced, down, or a controller-only node)", r.NodeID))
			}
		}
	} else if ci.quorumNotServed {
		h.Notes = append(h.Notes, "the broker does not serve DescribeQuorum; checked the Metadata controller instead")
		if ci.Controller < 0 {
			h.Problems = append(h.Problems, "Metadata names no active controller")
		}
		h.QuorumLeader = ci.Controller
	} else {
		h.Problems = append(h.Problems, "cannot describe the metadata quorum: "+ci.QuorumError)
	}
	var offline []string
	for _, t := range md.Topics.Sorted() {
		for _, p := range t.Partitions.Sorted() {
			h.Partitions++
			if p.Leader < 0 {
				h.OfflinePartitions++
				offline = append(offline, fmt.Sprintf("%s/%d", t.Topic, p.Partition))
			}
		}
	}
	for i, p := range offline {
		if i == maxListedProblems {
			h.Problems = append(h.Problems, fmt.Sprintf("... and %d more offline partitions", len(offline)-i))
			break
		}
		h.Problems = append(h.Problems, "partition "+p+" is offline (leader -1)")
	}
	slices.Sort(h.FencedBrokers)
	h.Healthy = len(h.Problems) == 0
	return h
}

func printClusterHealth(w io.Writer, g *globals, h clusterHealth) error {
	if g.json() {
		return writeJSON(w, h)
	}
	if h.Healthy {
		leader := fmt.Sprintf("quorum leader %d (epoch %d, %d voters)", h.QuorumLeader, h.QuorumEpoch, h.Voters)
		if h.Voters == 0 {
			leader = fmt.Sprintf("controller %d", h.QuorumLeader)
		}
		fmt.Fprintf(w, "healthy: %d live broker%s, %s, %d partition%s online\n", h.LiveBrokers, plural(h.LiveBrokers), leader, h.Partitions, plural(h.Partitions))
	} else {
		fmt.Fprintln(w, "unhealthy:")
		for _, p := range h.Problems {
			fmt.Fprintln(w, "  - "+p)
		}
	}
	for _, n := range h.Notes {
		fmt.Fprintln(w, "note: "+n)
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
