package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden files")

// cluster is a running node plus how to reach it.
type cluster struct {
	addr, maxVersion string
}

func newCluster(t *testing.T) *cluster {
	addr, mv := startNode(t)
	return &cluster{addr: addr, maxVersion: mv}
}

// run executes one samsa command against c and returns its stdout and
// stderr.
func (c *cluster) run(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := NewRootCommand(testDeps)
	full := []string{"-X", c.addr}
	if c.maxVersion != "" {
		full = append(full, "--client-max-version", c.maxVersion)
	}
	cmd.SetArgs(append(full, args...))
	var o, e bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&o)
	cmd.SetErr(&e)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = cmd.ExecuteContext(ctx)
	return o.String(), e.String(), err
}

// mustRun is run that fails the test on error.
func (c *cluster) mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := c.run(t, stdin, args...)
	if err != nil {
		t.Fatalf("samsa %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// golden compares got with testdata/name.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	if os.Getenv("SAMSA_TEST_TARGET") == "kfake" {
		return // the golden files hold Samsa's messages
	}
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s mismatch\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func TestTopicCreateListDelete(t *testing.T) {
	c := newCluster(t)
	out := c.mustRun(t, "", "topic", "create", "orders", "-p", "3", "-r", "1")
	golden(t, "topic_create", out)

	out, _, err := c.run(t, "", "topic", "create", "orders", "payments", "-p", "2")
	if !errors.Is(err, errReported) {
		t.Fatalf("creating an existing topic: err = %v, want errReported", err)
	}
	if !strings.Contains(out, "TOPIC_ALREADY_EXISTS") || !strings.Contains(out, "payments  2           1         OK") {
		t.Errorf("create output:\n%s", out)
	}

	out = c.mustRun(t, "", "topic", "list")
	golden(t, "topic_list", out)

	var listed []topicListEntry
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "topic", "list", "--format", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed[0].Name != "orders" || listed[0].Partitions != 3 || listed[1].Name != "payments" {
		t.Errorf("topic list json = %+v", listed)
	}

	c.mustRun(t, "", "topic", "add-partitions", "orders", "-n", "2")
	c.mustRun(t, "", "topic", "add-partitions", "payments", "--total", "4")
	out = c.mustRun(t, "", "topic", "list")
	if !strings.Contains(out, "orders    5") || !strings.Contains(out, "payments  4") {
		t.Errorf("after add-partitions:\n%s", out)
	}
	if _, _, err := c.run(t, "", "topic", "add-partitions", "orders", "-n", "1", "--total", "9"); err == nil {
		t.Error("add-partitions with both -n and --total succeeded")
	}
	out, _, err = c.run(t, "", "topic", "add-partitions", "orders", "--total", "2")
	if !errors.Is(err, errReported) || !strings.Contains(out, "INVALID_PARTITIONS") {
		t.Errorf("shrinking: err = %v, output:\n%s", err, out)
	}

	out, _, err = c.run(t, "", "topic", "delete", "orders", "nope")
	if !errors.Is(err, errReported) {
		t.Fatalf("deleting a missing topic: err = %v", err)
	}
	golden(t, "topic_delete", out)
	out = c.mustRun(t, "", "topic", "list")
	if strings.Contains(out, "orders") || !strings.Contains(out, "payments") {
		t.Errorf("after delete:\n%s", out)
	}
}

func TestTopicCreateValidateOnly(t *testing.T) {
	c := newCluster(t)
	c.mustRun(t, "", "topic", "create", "dry", "-p", "2", "--validate-only")
	if out := c.mustRun(t, "", "topic", "list"); strings.Contains(out, "dry") {
		t.Errorf("--validate-only created the topic:\n%s", out)
	}
}

func TestTopicCreateConfigs(t *testing.T) {
	c := newCluster(t)
	c.mustRun(t, "", "topic", "create", "compacted", "-p", "1", "-c", "cleanup.policy=compact", "-c", "retention.ms=1234")
	var ds []topicDescription
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "topic", "describe", "compacted", "--format", "json")), &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].PartitionCount != 1 || ds[0].ReplicationFactor != 1 {
		t.Fatalf("describe = %+v", ds)
	}
	found := map[string]configEntry{}
	for _, ce := range ds[0].Configs {
		found[ce.Key] = ce
	}
	for k, v := range map[string]string{"cleanup.policy": "compact", "retention.ms": "1234"} {
		ce, ok := found[k]
		if !ok || ce.Value == nil || *ce.Value != v || ce.Source != "DYNAMIC_TOPIC_CONFIG" {
			t.Errorf("config %s = %+v, want %s from DYNAMIC_TOPIC_CONFIG", k, ce, v)
		}
	}
	if _, _, err := c.run(t, "", "topic", "create", "bad", "-c", "novalue"); err == nil {
		t.Error("-c without = accepted")
	}
}

func TestTopicDescribe(t *testing.T) {
	c := newCluster(t)
	c.mustRun(t, "", "topic", "create", "orders", "-p", "2")
	c.mustRun(t, "a\nb\nc\n", "topic", "produce", "orders", "-p", "1")
	out := c.mustRun(t, "", "topic", "describe", "orders")
	for _, want := range []string{
		"SUMMARY\n=======\nNAME        orders\nPARTITIONS  2\nREPLICAS    1\n",
		"CONFIGS\n=======\nKEY",
		"PARTITIONS\n==========\nPARTITION  LEADER  EPOCH  REPLICAS  ISR  LOG-START-OFFSET  HIGH-WATERMARK\n",
		"cleanup.policy",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe output lacks %q:\n%s", want, out)
		}
	}
	var ds []topicDescription
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "topic", "describe", "orders", "--format", "json")), &ds); err != nil {
		t.Fatal(err)
	}
	ps := ds[0].Partitions
	if len(ps) != 2 || ps[0].HighWatermark != 0 || ps[1].HighWatermark != 3 || ps[1].LogStartOffset != 0 || len(ps[1].ISR) != 1 {
		t.Errorf("partitions = %+v", ps)
	}

	out, _, err := c.run(t, "", "topic", "describe", "missing")
	if !errors.Is(err, errReported) || !strings.Contains(out, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("describe missing: err = %v, output:\n%s", err, out)
	}
}

func TestTopicProduceConsume(t *testing.T) {
	c := newCluster(t)
	c.mustRun(t, "", "topic", "create", "greetings", "-p", "1")
	_, stderr, err := c.run(t, "hello\nworld\n\nlast-without-newline", "topic", "produce", "greetings")
	if err != nil || !strings.Contains(stderr, "Produced 4 records to greetings") {
		t.Fatalf("produce: err = %v, stderr:\n%s", err, stderr)
	}
	out := c.mustRun(t, "", "topic", "consume", "greetings", "-e")
	if out != "hello\nworld\n\nlast-without-newline\n" {
		t.Errorf("consume -e = %q", out)
	}
	if out := c.mustRun(t, "", "topic", "consume", "greetings", "-o", "-2", "-e", "-f", "%o:%v\\n"); out != "2:\n3:last-without-newline\n" {
		t.Errorf("consume -o -2 = %q", out)
	}
	if out := c.mustRun(t, "", "topic", "consume", "greetings", "-o", "1", "-n", "1"); out != "world\n" {
		t.Errorf("consume -o 1 -n 1 = %q", out)
	}
	if out := c.mustRun(t, "", "topic", "consume", "greetings", "-o", "end", "-e"); out != "" {
		t.Errorf("consume -o end -e = %q", out)
	}
	if out := c.mustRun(t, "", "topic", "consume", "greetings", "-o", "99", "-e"); out != "" {
		t.Errorf("consume -o 99 -e = %q", out)
	}
}

func TestTopicProduceKeysHeadersJSON(t *testing.T) {
	c := newCluster(t)
	c.mustRun(t, "", "topic", "create", "events", "-p", "3")
	// Fixed timestamps and partitions make the JSON output stable.
	in := "0 1700000000000 k1 v1\n2 1700000000001 k2 v 2\n0 1700000000002 k3 v3\n"
	_, stderr, err := c.run(t, in, "topic", "produce", "events", "-f", "%p %T %k %v\\n", "-H", "source=test", "-v")
	if err != nil {
		t.Fatalf("produce: %v\n%s", err, stderr)
	}
	if n := strings.Count(stderr, "Produced to partition"); n != 3 {
		t.Errorf("-v printed %d per-record lines:\n%s", n, stderr)
	}
	// One partition at a time: the order across partitions is not fixed.
	out := c.mustRun(t, "", "topic", "consume", "events", "-p", "0", "-e", "--format", "json") +
		c.mustRun(t, "", "topic", "consume", "events", "-p", "2", "-e", "--format", "json")
	golden(t, "consume_json", out)

	out = c.mustRun(t, "", "topic", "consume", "events", "-p", "2", "-e", "-f", "%t/%p/%o %T %k=%v [%h] %K %V\\n")
	if out != "events/2/0 1700000000001 k2=v 2 [source=test] 2 3\n" {
		t.Errorf("consume -p 2 -f = %q", out)
	}
	out = c.mustRun(t, "", "topic", "consume", "events", "-p", "0", "-o", "@1700000000002", "-e", "-f", "%v\\n")
	if out != "v3\n" {
		t.Errorf("consume -o @ts = %q", out)
	}

	c.mustRun(t, "a:1\nb:2\n", "topic", "produce", "events", "--key-delim", ":", "-p", "1")
	out = c.mustRun(t, "", "topic", "consume", "events", "-p", "1", "-e", "-f", "%k=%v\\n")
	if out != "a=1\nb=2\n" {
		t.Errorf("--key-delim round trip = %q", out)
	}
	c.mustRun(t, "x\n", "topic", "produce", "events", "-k", "fixed", "-p", "1", "-z", "zstd", "--acks", "1")
	out = c.mustRun(t, "", "topic", "consume", "events", "-p", "1", "-o", "-1", "-e", "-f", "%k=%v\\n")
	if out != "fixed=x\n" {
		t.Errorf("-k round trip = %q", out)
	}
}

func TestTopicProduceErrors(t *testing.T) {
	c := newCluster(t)
	for _, args := range [][]string{
		{"topic", "produce", "t", "--acks", "2"},
		{"topic", "produce", "t", "-z", "brotli"},
		{"topic", "produce", "t", "-f", "%k%v\\n"},
		{"topic", "produce", "t", "-f", "%x\\n"},
		{"topic", "produce", "t", "-f", "%v\\n", "--key-delim", ":"},
		{"topic", "produce", "t", "-H", "novalue"},
		{"topic", "consume", "t", "-o", "yesterday"},
		{"topic", "list", "--format", "yaml"},
	} {
		if _, _, err := c.run(t, "", args...); err == nil {
			t.Errorf("samsa %s succeeded", strings.Join(args, " "))
		}
	}
	if _, _, err := c.run(t, "", "topic", "consume", "missing", "-e"); err == nil || !strings.Contains(err.Error(), "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("consume of a missing topic: %v", err)
	}
}

func TestClusterInfo(t *testing.T) {
	c := newCluster(t)
	out := c.mustRun(t, "", "cluster", "info")
	if !strings.HasPrefix(out, "CLUSTER\n=======\nCLUSTER-ID") || !strings.Contains(out, "BROKERS\n=======\nID") {
		t.Errorf("cluster info:\n%s", out)
	}
	var ci clusterInfo
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "cluster", "info", "--format", "json")), &ci); err != nil {
		t.Fatal(err)
	}
	if len(ci.Brokers) != 1 || ci.Brokers[0].Port == 0 || ci.ClusterID == "" || ci.Brokers[0].Fenced {
		t.Errorf("cluster info json = %+v", ci)
	}
	// A single node is the only voter and the leader of its quorum.
	// (franz-go's kfake serves no DescribeQuorum.)
	if q := ci.Quorum; q != nil {
		if q.LeaderID != ci.Brokers[0].NodeID || len(q.Voters) != 1 || q.Voters[0].Lag != 0 || ci.ActiveController != q.LeaderID {
			t.Errorf("quorum of a single node = %+v", q)
		}
	} else if os.Getenv("SAMSA_TEST_TARGET") != "kfake" || ci.QuorumError != errQuorumNotServed.Error() {
		t.Errorf("no quorum: %q", ci.QuorumError)
	}
}

func TestPerfCommands(t *testing.T) {
	c := newCluster(t)
	out := c.mustRun(t, "", "perf", "produce", "--topic", "p", "-n", "500", "-s", "64", "-p", "2", "--acks", "1", "--format", "json")
	var res struct {
		Records int64 `json:"records"`
		Bytes   int64 `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Records != 500 || res.Bytes != 500*64 {
		t.Fatalf("perf produce: %v %+v\n%s", err, res, out)
	}
	out = c.mustRun(t, "", "perf", "consume", "--topic", "p", "--consumers", "2")
	// 500 records plus the producer's one warm-up record.
	if f := strings.Fields(out); len(f) < 2 || f[0] != "RECORDS" || f[1] != "501" || !strings.Contains(out, "MIB/S") {
		t.Errorf("perf consume:\n%s", out)
	}
}

// The golden files below render fixed data, so they do not depend on the
// broker's config defaults.

func TestTopicDescribeGolden(t *testing.T) {
	s := func(v string) *string { return &v }
	ds := []topicDescription{{
		Name: "orders", PartitionCount: 2, ReplicationFactor: 3,
		Configs: []configEntry{
			{Key: "cleanup.policy", Value: s("delete"), Source: "DEFAULT_CONFIG"},
			{Key: "retention.ms", Value: s("86400000"), Source: "DYNAMIC_TOPIC_CONFIG"},
			{Key: "sasl.secret", Sensitive: true, Source: "STATIC_BROKER_CONFIG"},
		},
		Partitions: []partitionDescription{
			{Partition: 0, Leader: 1, LeaderEpoch: 4, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}, LogStartOffset: 0, HighWatermark: 1200},
			{Partition: 1, Leader: -1, LeaderEpoch: 2, Replicas: []int32{2, 3, 1}, ISR: []int32{}, LogStartOffset: -1, HighWatermark: -1, Error: "LEADER_NOT_AVAILABLE"},
		},
	}, {Name: "missing", Error: "UNKNOWN_TOPIC_OR_PARTITION"}}
	var b bytes.Buffer
	if err := printTopicDescriptions(&b, &globals{format: "text"}, ds); err != nil {
		t.Fatal(err)
	}
	golden(t, "topic_describe", b.String())
	b.Reset()
	if err := printTopicDescriptions(&b, &globals{format: "json"}, ds[:1]); err != nil {
		t.Fatal(err)
	}
	golden(t, "topic_describe_json", b.String())
}

func TestClusterInfoGolden(t *testing.T) {
	rack := "r1"
	now := time.UnixMilli(1_700_000_100_000)
	ci := clusterInfo{ClusterID: "Vx2kQ9sRTxyz", Controller: 2, ActiveController: 2, Brokers: []brokerInfo{
		{NodeID: 1, Host: "10.0.0.1", Port: 9092},
		{NodeID: 2, Host: "10.0.0.2", Port: 9092, Rack: &rack},
		{NodeID: 4, Host: "10.0.0.4", Port: 9092, Fenced: true},
	}}
	ci.Quorum = &quorumInfo{LeaderID: 2, LeaderEpoch: 7, HighWatermark: 1500,
		Voters: []quorumReplica{
			{NodeID: 1, LogEndOffset: 1490, Lag: 10, LastFetchTimestamp: 1_700_000_099_750, LastCaughtUpTimestamp: 1_700_000_098_000, LastFetchAgeMs: 250, LastCaughtUpAgeMs: 2000},
			{NodeID: 2, LogEndOffset: 1500, Lag: 0, LastFetchTimestamp: 1_700_000_100_000, LastCaughtUpTimestamp: 1_700_000_100_000},
			{NodeID: 3, LogEndOffset: -1, Lag: -1, LastFetchTimestamp: -1, LastCaughtUpTimestamp: -1, LastFetchAgeMs: -1, LastCaughtUpAgeMs: -1},
		},
		Observers: []quorumReplica{{NodeID: 4, LogEndOffset: 900, Lag: 600, LastFetchTimestamp: 1_699_999_990_000, LastCaughtUpTimestamp: 1_699_999_900_000, LastFetchAgeMs: 110_000, LastCaughtUpAgeMs: 200_000}},
	}
	var b bytes.Buffer
	if err := printClusterInfo(&b, &globals{format: "text"}, ci, now); err != nil {
		t.Fatal(err)
	}
	golden(t, "cluster_info", b.String())
	b.Reset()
	if err := printClusterInfo(&b, &globals{format: "json"}, ci, now); err != nil {
		t.Fatal(err)
	}
	golden(t, "cluster_info_json", b.String())

	b.Reset()
	noQuorum := clusterInfo{ClusterID: "c", Controller: 1, ActiveController: 1, Brokers: ci.Brokers[:1],
		QuorumError: errQuorumNotServed.Error()}
	if err := printClusterInfo(&b, &globals{format: "text"}, noQuorum, now); err != nil {
		t.Fatal(err)
	}
	golden(t, "cluster_info_no_quorum", b.String())
}

func TestClusterQuorumFromResponse(t *testing.T) {
	now := time.UnixMilli(10_000)
	resp := kmsg.NewPtrDescribeQuorumResponse()
	rt := kmsg.NewDescribeQuorumResponseTopic()
	rt.Topic = metadataTopic
	p := kmsg.NewDescribeQuorumResponseTopicPartition()
	p.LeaderID, p.LeaderEpoch, p.HighWatermark = 3, 2, 40
	rs := func(id int32, leo, fetch, caught int64) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
		r := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		r.ReplicaID, r.LogEndOffset, r.LastFetchTimestamp, r.LastCaughtUpTimestamp = id, leo, fetch, caught
		return r
	}
	p.CurrentVoters = append(p.CurrentVoters, rs(3, 42, 10_000, 10_000), rs(1, 40, 9_000, 8_000), rs(2, -1, -1, -1))
	p.Observers = append(p.Observers, rs(5, 50, 11_000, 9_500)) // ahead of the leader: lag 0, not negative
	rt.Partitions = append(rt.Partitions, p)
	resp.Topics = append(resp.Topics, rt)
	q, err := quorumFromResponse(resp, now)
	if err != nil {
		t.Fatal(err)
	}
	want := &quorumInfo{LeaderID: 3, LeaderEpoch: 2, HighWatermark: 40,
		Voters: []quorumReplica{
			{NodeID: 1, LogEndOffset: 40, Lag: 2, LastFetchTimestamp: 9_000, LastCaughtUpTimestamp: 8_000, LastFetchAgeMs: 1000, LastCaughtUpAgeMs: 2000},
			{NodeID: 2, LogEndOffset: -1, Lag: -1, LastFetchTimestamp: -1, LastCaughtUpTimestamp: -1, LastFetchAgeMs: -1, LastCaughtUpAgeMs: -1},
			{NodeID: 3, LogEndOffset: 42, Lag: 0, LastFetchTimestamp: 10_000, LastCaughtUpTimestamp: 10_000},
		},
		Observers: []quorumReplica{{NodeID: 5, LogEndOffset: 50, Lag: 0, LastFetchTimestamp: 11_000, LastCaughtUpTimestamp: 9_500, LastFetchAgeMs: 0, LastCaughtUpAgeMs: 500}},
	}
	if !reflect.DeepEqual(q, want) {
		t.Errorf("quorum = %+v\nwant     %+v", q, want)
	}

	p.ErrorCode = kerr.NotLeaderForPartition.Code
	resp.Topics[0].Partitions[0] = p
	if _, err := quorumFromResponse(resp, now); err == nil || !strings.Contains(err.Error(), "NOT_LEADER_FOR_PARTITION") {
		t.Errorf("partition error: %v", err)
	}
	resp.Topics = nil
	if _, err := quorumFromResponse(resp, now); err == nil {
		t.Error("a response without __cluster_metadata-0 was accepted")
	}
}

func TestClusterHealthGolden(t *testing.T) {
	md := func(leaders map[string][]int32) kadm.Metadata {
		m := kadm.Metadata{Topics: kadm.TopicDetails{}}
		for topic, ls := range leaders {
			td := kadm.TopicDetail{Topic: topic, Partitions: kadm.PartitionDetails{}}
			for i, l := range ls {
				td.Partitions[int32(i)] = kadm.PartitionDetail{Topic: topic, Partition: int32(i), Leader: l}
			}
			m.Topics[topic] = td
		}
		return m
	}
	voters := []quorumReplica{{NodeID: 1}, {NodeID: 2}, {NodeID: 3}}
	healthy := clusterInfo{Controller: 1, ActiveController: 1,
		Brokers:    []brokerInfo{{NodeID: 1}, {NodeID: 2}, {NodeID: 3}},
		Quorum:     &quorumInfo{LeaderID: 1, LeaderEpoch: 4, Voters: voters, Observers: []quorumReplica{}},
		registered: map[int32]bool{1: true, 2: true, 3: true}}
	fenced := clusterInfo{Controller: 1, ActiveController: -1,
		Brokers: []brokerInfo{{NodeID: 1}, {NodeID: 3, Fenced: true}},
		// Node 2 is no live broker and, without DescribeCluster v2,
		// cannot be told from a controller-only node: reported too.
		Quorum: &quorumInfo{LeaderID: -1, LeaderEpoch: 9, Voters: voters, Observers: []quorumReplica{{NodeID: 4}}}}
	controllerOnly := clusterInfo{Controller: 2, ActiveController: 2,
		Brokers:    []brokerInfo{{NodeID: 4}},
		Quorum:     &quorumInfo{LeaderID: 2, LeaderEpoch: 1, Voters: voters, Observers: []quorumReplica{{NodeID: 4}}},
		registered: map[int32]bool{4: true}}
	notServed := clusterInfo{Controller: -1, ActiveController: -1, Brokers: []brokerInfo{{NodeID: 1}},
		QuorumError: errQuorumNotServed.Error(), quorumNotServed: true}

	var b bytes.Buffer
	for _, tc := range []struct {
		ci      clusterInfo
		md      kadm.Metadata
		healthy bool
	}{
		{healthy, md(map[string][]int32{"orders": {1, 2, 3}, "__consumer_offsets": {1, 2}}), true},
		{fenced, md(map[string][]int32{"orders": {1, -1, 3}}), false},
		{controllerOnly, md(map[string][]int32{"a": {4}}), true},
		{notServed, md(nil), false},
	} {
		h := checkHealth(tc.ci, tc.md)
		if h.Healthy != tc.healthy {
			t.Errorf("checkHealth(%+v).Healthy = %v, want %v (%v)", tc.ci, h.Healthy, tc.healthy, h.Problems)
		}
		if err := printClusterHealth(&b, &globals{format: "text"}, h); err != nil {
			t.Fatal(err)
		}
		b.WriteString("--\n")
	}
	h := checkHealth(fenced, md(map[string][]int32{"orders": {1, -1, 3}}))
	if err := printClusterHealth(&b, &globals{format: "json"}, h); err != nil {
		t.Fatal(err)
	}
	golden(t, "cluster_health", b.String())
}

func TestClusterHealthLive(t *testing.T) {
	c := newCluster(t)
	c.mustRun(t, "", "topic", "create", "h", "-p", "3")
	out := c.mustRun(t, "", "cluster", "health")
	if !strings.HasPrefix(out, "healthy: 1 live broker,") || !strings.Contains(out, "3 partitions online") ||
		(os.Getenv("SAMSA_TEST_TARGET") != "kfake" && !strings.Contains(out, "quorum leader 1 (epoch ")) {
		t.Errorf("cluster health:\n%s", out)
	}
	var h clusterHealth
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "cluster", "health", "--format", "json")), &h); err != nil {
		t.Fatal(err)
	}
	if !h.Healthy || h.LiveBrokers != 1 || h.QuorumLeader < 0 || len(h.Problems) != 0 || h.Partitions < 3 {
		t.Errorf("cluster health json = %+v", h)
	}
	if _, _, err := c.run(t, "", "cluster", "health", "--timeout", "0s"); err == nil {
		t.Error("--timeout 0s accepted")
	}
}
