package console

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxListedGroups bounds the groups whose lag the groups page computes
// (the first ones by name); the page says when more exist.
const maxListedGroups = 200

// overviewView is the overview page: the cluster and its brokers.
type overviewView struct {
	ClusterID  string
	Controller int32
	Brokers    []brokerView
	Topics     int // user topics
	Internal   int // internal topics (__consumer_offsets, ...)
	Partitions int // partitions of all topics
	Offline    int // partitions without a leader
	UnderRepl  int // partitions whose ISR is smaller than their replicas
}

type brokerView struct {
	NodeID     int32
	Host       string
	Port       int32
	Rack       string
	Controller bool
}

func (c *Console) overviewPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.call(r)
	defer cancel()
	var v overviewView
	md, err := c.adm.Metadata(ctx)
	if err == nil {
		v.ClusterID, v.Controller = md.Cluster, md.Controller
		for _, b := range md.Brokers {
			bv := brokerView{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Controller: b.NodeID == md.Controller}
			if b.Rack != nil {
				bv.Rack = *b.Rack
			}
			v.Brokers = append(v.Brokers, bv)
		}
		for _, t := range md.Topics {
			if t.IsInternal {
				v.Internal++
			} else {
				v.Topics++
			}
			for _, p := range t.Partitions {
				v.Partitions++
				if p.Leader < 0 {
					v.Offline++
				}
				if len(p.ISR) < len(p.Replicas) {
					v.UnderRepl++
				}
			}
		}
	}
	c.render(w, r, "overview", page{Title: "Cluster", Nav: "overview", Data: v}, err)
}

// topicsView is the topics page.
type topicsView struct {
	Topics []topicRow
}

type topicRow struct {
	Name       string
	Internal   bool
	Partitions int
	Replicas   int   // replication factor (replicas of the first partition)
	Offline    int   // partitions without a leader
	UnderRepl  int   // partitions with ISR < replicas
	Records    int64 // sum of end - start offsets (an upper bound: compaction, markers); -1 unknown
	Err        string
}

func (c *Console) topicsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.call(r)
	defer cancel()
	var v topicsView
	md, err := c.adm.Metadata(ctx)
	if err == nil {
		names := md.Topics.Names()
		// One ListOffsets pair for all topics; a failure leaves the
		// column unknown rather than failing the page.
		starts, serr := c.adm.ListStartOffsets(ctx, names...)
		ends, eerr := c.adm.ListEndOffsets(ctx, names...)
		for _, name := range names {
			t := md.Topics[name]
			row := topicRow{Name: name, Internal: t.IsInternal, Partitions: len(t.Partitions), Records: -1}
			if t.Err != nil {
				row.Err = t.Err.Error()
			}
			for _, p := range t.Partitions {
				if p.Partition == 0 {
					row.Replicas = len(p.Replicas)
				}
				if p.Leader < 0 {
					row.Offline++
				}
				if len(p.ISR) < len(p.Replicas) {
					row.UnderRepl++
				}
			}
			if serr == nil && eerr == nil {
				row.Records = 0
				for p := range t.Partitions {
					s, ok1 := starts.Lookup(name, p)
					e, ok2 := ends.Lookup(name, p)
					if !ok1 || !ok2 || s.Err != nil || e.Err != nil {
						row.Records = -1
						break
					}
					row.Records += max(e.Offset-s.Offset, 0)
				}
			}
			v.Topics = append(v.Topics, row)
		}
	}
	c.render(w, r, "topics", page{Title: "Topics", Nav: "topics", Data: v}, err)
}

// topicView is the topic detail page.
type topicView struct {
	Name       string
	ID         string
	Internal   bool
	Partitions []partitionRow
	Configs    []configRow
	ConfigErr  string
}

type partitionRow struct {
	Partition      int32
	Leader         int32
	LeaderEpoch    int32
	Replicas       []int32
	ISR            []int32
	LogStartOffset int64 // -1 unknown
	LogEndOffset   int64 // the high watermark; -1 unknown
	Err            string
}

type configRow struct {
	Key       string
	Value     string
	Source    string
	Sensitive bool
	// Override is a value set on the topic (not a default).
	Override bool
}

func (c *Console) topicPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("topic")
	ctx, cancel := c.call(r)
	defer cancel()
	v := topicView{Name: name}
	err := c.describeTopic(ctx, &v)
	c.render(w, r, "topic", page{Title: "Topic " + name, Nav: "topics", Data: v}, err)
}

func (c *Console) describeTopic(ctx context.Context, v *topicView) error {
	md, err := c.adm.Metadata(ctx, v.Name)
	if err != nil {
		return err
	}
	t, ok := md.Topics[v.Name]
	if !ok || t.Err != nil && (t.Err == kerr.UnknownTopicOrPartition || len(t.Partitions) == 0) {
		return fmt.Errorf("%w: topic %q", ErrNotFound, v.Name)
	}
	// Kafka prints a topic id as URL-safe base64 without padding
	// (Uuid.toString).
	v.ID, v.Internal = base64.RawURLEncoding.EncodeToString(t.ID[:]), t.IsInternal
	starts, serr := c.adm.ListStartOffsets(ctx, v.Name)
	ends, eerr := c.adm.ListEndOffsets(ctx, v.Name)
	for _, p := range t.Partitions.Sorted() {
		row := partitionRow{
			Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: p.Replicas, ISR: p.ISR, LogStartOffset: -1, LogEndOffset: -1,
		}
		if p.Err != nil {
			row.Err = p.Err.Error()
		}
		if s, ok := starts.Lookup(v.Name, p.Partition); serr == nil && ok && s.Err == nil {
			row.LogStartOffset = s.Offset
		}
		if e, ok := ends.Lookup(v.Name, p.Partition); eerr == nil && ok && e.Err == nil {
			row.LogEndOffset = e.Offset
		}
		v.Partitions = append(v.Partitions, row)
	}
	cfgs, err := c.adm.DescribeTopicConfigs(ctx, v.Name)
	if err == nil {
		var rc kadm.ResourceConfig
		if rc, err = cfgs.On(v.Name, nil); err == nil {
			err = rc.Err
		}
		for _, cf := range rc.Configs {
			v.Configs = append(v.Configs, configRow{
				Key: cf.Key, Value: cf.MaybeValue(), Source: cf.Source.String(), Sensitive: cf.Sensitive,
				Override: cf.Source == kmsg.ConfigSourceDynamicTopicConfig,
			})
		}
		slices.SortFunc(v.Configs, func(a, b configRow) int { return cmp.Compare(a.Key, b.Key) })
	}
	if err != nil {
		v.ConfigErr = err.Error()
	}
	return nil
}

// groupsView is the consumer groups page.
type groupsView struct {
	Groups []groupRow
	// More is how many groups exist beyond the listed ones.
	More int
}

type groupRow struct {
	Name         string
	State        string
	ProtocolType string
	Coordinator  int32
	Members      int
	Lag          int64 // total lag in offsets; -1 unknown
	// LagSeconds is the latest sampled lag in seconds (no extra cluster
	// call on this page); -1 unknown or not sampled yet.
	LagSeconds float64
	Plot       plot // recent total lag samples
	Err        string
}

func (c *Console) groupsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.call(r)
	defer cancel()
	var v groupsView
	listed, err := c.adm.ListGroups(ctx)
	if err == nil {
		sorted := listed.Sorted()
		if len(sorted) > maxListedGroups {
			v.More = len(sorted) - maxListedGroups
			sorted = sorted[:maxListedGroups]
		}
		names := make([]string, len(sorted))
		for i, g := range sorted {
			names[i] = g.Group
		}
		// kadm.Lag rewrites its argument in place: pass a copy. With no
		// names it would describe every group: skip it.
		var lags kadm.DescribedGroupLags
		var lerr error
		if len(names) > 0 {
			lags, lerr = c.adm.Lag(ctx, slices.Clone(names)...)
		}
		for _, g := range sorted {
			row := groupRow{Name: g.Group, State: g.State, ProtocolType: g.ProtocolType, Coordinator: g.Coordinator, Lag: -1}
			if l, ok := lags[g.Group]; lerr == nil && ok {
				if e := l.Error(); e != nil {
					row.Err = e.Error()
				} else {
					row.Members, row.Lag = len(l.Members), totalLag(l.Lag)
					if l.State != "" {
						row.State = l.State
					}
				}
			} else if lerr != nil {
				row.Err = lerr.Error()
			}
			samples := c.lag.samples(g.Group)
			row.LagSeconds = -1
			if len(samples) > 0 {
				row.LagSeconds = samples[len(samples)-1].Seconds
			}
			row.Plot = newPlot(samples, sampleOffsets, 120, 24)
			v.Groups = append(v.Groups, row)
		}
	}
	c.render(w, r, "groups", page{Title: "Consumer groups", Nav: "groups", Data: v}, err)
}

// groupView is the consumer group detail page.
type groupView struct {
	Name         string
	State        string
	ProtocolType string
	Protocol     string
	Coordinator  int32
	Members      []memberRow
	Partitions   []groupPartitionRow
	Lag          int64   // total, offsets
	LagSeconds   float64 // largest of the partitions; -1 unknown
	OffsetsPlot  plot
	SecondsPlot  plot
	Sampling     string // the sample period, for the plot captions
}

type memberRow struct {
	MemberID   string
	InstanceID string
	ClientID   string
	ClientHost string
	Assigned   []string // "topic: 0,1,2"
}

type groupPartitionRow struct {
	Topic         string
	Partition     int32
	CurrentOffset int64 // committed; -1 none
	LogEndOffset  int64 // -1 unknown
	Lag           int64 // -1 unknown
	// LagSeconds is how long ago the record at the committed offset was
	// written (0 when caught up, -1 unknown).
	LagSeconds float64
	MemberID   string
	ClientID   string
	Err        string
}

func (c *Console) groupPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("group")
	ctx, cancel := c.call(r)
	defer cancel()
	v := groupView{Name: name, LagSeconds: -1, Sampling: c.opts.SampleInterval.String()}
	err := c.describeGroup(ctx, &v)
	samples := c.lag.samples(name)
	v.OffsetsPlot = newPlot(samples, sampleOffsets, 480, 80)
	v.SecondsPlot = newPlot(samples, sampleSeconds, 480, 80)
	c.render(w, r, "group", page{Title: "Consumer group " + name, Nav: "groups", Data: v}, err)
}

func (c *Console) describeGroup(ctx context.Context, v *groupView) error {
	lags, err := c.adm.Lag(ctx, v.Name)
	if err != nil {
		return err
	}
	l, ok := lags[v.Name]
	if !ok {
		return fmt.Errorf("%w: group %q", ErrNotFound, v.Name)
	}
	if e := l.Error(); e != nil {
		if e == kerr.GroupIDNotFound {
			return fmt.Errorf("%w: group %q", ErrNotFound, v.Name)
		}
		return e
	}
	if l.State == "Dead" && len(l.Lag) == 0 {
		return fmt.Errorf("%w: group %q", ErrNotFound, v.Name)
	}
	v.State, v.ProtocolType, v.Protocol, v.Coordinator = l.State, l.ProtocolType, l.Protocol, l.Coordinator.NodeID
	for _, m := range l.Members {
		mr := memberRow{MemberID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost}
		if m.InstanceID != nil {
			mr.InstanceID = *m.InstanceID
		}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				ps := slices.Clone(t.Partitions)
				slices.Sort(ps)
				mr.Assigned = append(mr.Assigned, t.Topic+": "+joinInt32s(ps))
			}
		}
		v.Members = append(v.Members, mr)
	}
	seconds := c.lagSeconds(ctx, l.Lag)
	v.Lag = totalLag(l.Lag)
	for _, ml := range l.Lag.Sorted() {
		row := groupPartitionRow{
			Topic: ml.Topic, Partition: ml.Partition, CurrentOffset: ml.Commit.At,
			LogEndOffset: ml.End.Offset, Lag: ml.Lag, LagSeconds: -1,
		}
		if ml.End.Err != nil {
			row.LogEndOffset = -1
		}
		if ml.Member != nil {
			row.MemberID, row.ClientID = ml.Member.MemberID, ml.Member.ClientID
		}
		if ml.Err != nil {
			row.Err = ml.Err.Error()
		}
		if s, ok := seconds[kadm.Partition{Topic: ml.Topic, Partition: ml.Partition}]; ok {
			row.LagSeconds = s.Seconds()
			v.LagSeconds = max(v.LagSeconds, row.LagSeconds)
		}
		v.Partitions = append(v.Partitions, row)
	}
	return nil
}

// totalLag sums the known lags of a group (a partition with an unknown lag,
// -1, counts as nothing).
func totalLag(l kadm.GroupLag) int64 {
	var n int64
	for _, ps := range l {
		for _, m := range ps {
			if m.Lag > 0 {
				n += m.Lag
			}
		}
	}
	return n
}

// messagesView is the message browser of one partition.
type messagesView struct {
	Topic          string
	Partition      int32
	LogStartOffset int64
	HighWatermark  int64
	From           int64 // first offset asked for
	N              int   // records asked for
	Records        []recordRow
	// Truncated is set when the byte budget ended the read before N
	// records.
	Truncated bool
	Older     string // link to the previous page ("" at the start)
	Newer     string // link to the next page ("" at the end)
	MaxN      int
}

type recordRow struct {
	Offset    int64
	Timestamp string
	Key       shown
	Value     shown
	Headers   []headerRow
}

type headerRow struct {
	Key   string
	Value shown
}

func (c *Console) messagesPage(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	title := fmt.Sprintf("Topic %s, partition %s", topic, r.PathValue("partition"))
	v := messagesView{Topic: topic, N: defaultBrowseRecords, MaxN: maxBrowseRecords}
	p, err := strconv.ParseInt(r.PathValue("partition"), 10, 32)
	if err != nil || p < 0 {
		c.render(w, r, "messages", page{Title: title, Nav: "topics", Data: v}, fmt.Errorf("%w: partition %q", ErrNotFound, r.PathValue("partition")))
		return
	}
	v.Partition = int32(p)
	q := r.URL.Query()
	if n, err := strconv.Atoi(q.Get("n")); err == nil && n > 0 {
		v.N = min(n, maxBrowseRecords)
	}
	from := int64(-1)
	if s := q.Get("offset"); s != "" {
		if o, err := strconv.ParseInt(s, 10, 64); err == nil && o >= 0 {
			from = o
		}
	}
	ctx, cancel := c.call(r)
	defer cancel()
	err = c.browse(ctx, &v, from)
	c.render(w, r, "messages", page{Title: title, Nav: "topics", Data: v}, err)
}

// formatTimestamp shows a record timestamp in UTC with milliseconds.
func formatTimestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.000")
}
