package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
)

// groupTargets are the clusters the live group tests run against, each
// started by a function returning its seed broker address and the client
// version pin (see startNode): a Samsa node and, as a reference for what
// Kafka's protocol answers, franz-go's kfake.
var groupTargets = []struct {
	name  string
	start func(t *testing.T) (addr, clientMaxVersion string)
}{
	{"samsa", startNode},
	{"kfake", startKfake},
}

// startKfake starts franz-go's in-memory cluster: one broker, node id 0.
func startKfake(t *testing.T) (addr, clientMaxVersion string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0], "4.0"
}

// forEachGroupTarget runs fn as a subtest against a fresh cluster of every
// target.
func forEachGroupTarget(t *testing.T, fn func(t *testing.T, c *cluster)) {
	for _, tg := range groupTargets {
		t.Run(tg.name, func(t *testing.T) {
			addr, mv := tg.start(t)
			fn(t, &cluster{addr: addr, maxVersion: mv})
		})
	}
}

// joinGroup starts a real kgo consumer in group on c, polls until it has
// read want records from topics, commits them, and returns the client,
// still a member of the group (closed at cleanup; Close leaves the group).
func joinGroup(t *testing.T, c *cluster, group string, want int, topics ...string) *kgo.Client {
	t.Helper()
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.addr),
		kgo.ClientID("samsa-test"),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.DisableAutoCommit(),
	}
	if c.maxVersion != "" {
		opts = append(opts, kgo.MaxVersions(kversion.FromString(c.maxVersion)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for got := 0; got < want; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("group %s: read %d of %d records before the deadline", group, got, want)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Logf("fetch %s/%d: %v", topic, p, err)
		})
		got += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	return cl
}

// describeGroupJSON runs `group describe --format json` for one group.
func describeGroupJSON(t *testing.T, c *cluster, group string) groupDescription {
	t.Helper()
	var ds []groupDescription
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "group", "describe", group, "--format", "json")), &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Fatalf("describe %s: %d groups", group, len(ds))
	}
	return ds[0]
}

// setupGroup creates orders (2 partitions: 3 records in 0 with fixed
// timestamps, 2 in 1) and quiet (1 empty partition), has group g1 consume
// and commit all 5, then produces 4 more to orders/0: lag 4, 0, and "-"
// for quiet, which was never committed.
func setupGroup(t *testing.T, c *cluster) *kgo.Client {
	t.Helper()
	c.mustRun(t, "", "topic", "create", "orders", "-p", "2", "-r", "1")
	c.mustRun(t, "", "topic", "create", "quiet", "-p", "1", "-r", "1")
	c.mustRun(t, "1700000000000 a\n1700000000001 b\n1700000000002 c\n", "topic", "produce", "orders", "-p", "0", "-f", "%T %v\\n")
	c.mustRun(t, "d\ne\n", "topic", "produce", "orders", "-p", "1")
	cl := joinGroup(t, c, "g1", 5, "orders", "quiet")
	c.mustRun(t, "1700000000003 f\n1700000000004 g\n1700000000005 h\n1700000000006 i\n", "topic", "produce", "orders", "-p", "0", "-f", "%T %v\\n")
	return cl
}

func TestGroupListDescribeLive(t *testing.T) {
	forEachGroupTarget(t, func(t *testing.T, c *cluster) {
		cl := setupGroup(t, c)

		out := c.mustRun(t, "", "group", "list")
		if f := strings.Fields(out); len(f) != 8 || strings.Join(f[:4], " ") != "GROUP COORDINATOR STATE PROTOCOL-TYPE" ||
			f[4] != "g1" || f[6] != "Stable" || f[7] != "consumer" {
			t.Errorf("group list:\n%s", out)
		}

		d := describeGroupJSON(t, c, "g1")
		if d.State != "Stable" || d.ProtocolType != "consumer" || d.Balancer == "" || len(d.Members) != 1 || d.TotalLag != 4 || d.Error != "" {
			t.Errorf("describe = %+v", d)
		}
		if len(d.Partitions) != 3 {
			t.Fatalf("partitions = %+v", d.Partitions)
		}
		member := d.Members[0]
		if member.ClientID != "samsa-test" || member.MemberID == "" || !strings.Contains(member.Host, "127.0.0.1") {
			t.Errorf("member = %+v", member)
		}
		for _, p := range d.Partitions {
			if p.MemberID != member.MemberID || p.ClientID != "samsa-test" || p.Error != "" {
				t.Errorf("partition %s/%d = %+v", p.Topic, p.Partition, p)
			}
		}

		// The text layout, with what differs between runs and targets
		// masked, is in testdata/group_describe_live.golden.
		d.Coordinator = 0
		d.Members[0].MemberID, d.Members[0].Host = "MEMBER", "HOST"
		for i := range d.Partitions {
			d.Partitions[i].MemberID, d.Partitions[i].Host = "MEMBER", "HOST"
		}
		var b bytes.Buffer
		if err := printGroupDescriptions(&b, &globals{format: "text"}, []groupDescription{d}); err != nil {
			t.Fatal(err)
		}
		golden(t, "group_describe_live", b.String())

		// And the command's own text output, unmasked.
		out = c.mustRun(t, "", "group", "describe", "g1")
		for _, want := range []string{
			"GROUP        g1\n", "STATE        Stable\n", "MEMBERS      1\n", "TOTAL-LAG    4\n",
			"\n\nTOPIC   PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  MEMBER-ID  ",
		} {
			if !strings.Contains(strings.ReplaceAll(out, member.MemberID, "MEMBER-ID"), want) {
				t.Errorf("describe output lacks %q:\n%s", want, out)
			}
		}

		// Once the consumer leaves, the group is Empty: the rows stay,
		// without members.
		cl.Close()
		out = c.mustRun(t, "", "group", "list", "--state", "EMPTY")
		if !strings.Contains(out, "g1") || !strings.Contains(out, "Empty") {
			t.Errorf("group list --state EMPTY:\n%s", out)
		}
		if out := c.mustRun(t, "", "group", "list", "-s", "stable"); strings.Contains(out, "g1") {
			t.Errorf("group list -s stable lists the empty group:\n%s", out)
		}
		var listed []groupListEntry
		if err := json.Unmarshal([]byte(c.mustRun(t, "", "group", "list", "--format", "json")), &listed); err != nil {
			t.Fatal(err)
		}
		if len(listed) != 1 || listed[0].Group != "g1" || listed[0].State != "Empty" || listed[0].ProtocolType != "consumer" {
			t.Errorf("group list json = %+v", listed)
		}
		d = describeGroupJSON(t, c, "g1")
		if d.State != "Empty" || len(d.Members) != 0 || d.TotalLag != 4 {
			t.Errorf("empty group = %+v", d)
		}
		for _, p := range d.Partitions {
			if p.MemberID != "" {
				t.Errorf("empty group: partition %s/%d has member %q", p.Topic, p.Partition, p.MemberID)
			}
		}

		out, _, err := c.run(t, "", "group", "describe", "g1", "nope")
		if !errors.Is(err, errReported) || !strings.Contains(out, "GROUP  nope\nERROR  GROUP_ID_NOT_FOUND") || !strings.Contains(out, "GROUP        g1\n") {
			t.Errorf("describe of a missing group: err = %v, output:\n%s", err, out)
		}
	})
}

func TestGroupSeek(t *testing.T) {
	forEachGroupTarget(t, func(t *testing.T, c *cluster) {
		cl := setupGroup(t, c)

		// A group with a member refuses an admin commit.
		out, stderr, err := c.run(t, "", "group", "seek", "g1", "--to", "start")
		if !errors.Is(err, errReported) || !strings.Contains(out, "UNKNOWN_MEMBER_ID") || !strings.Contains(stderr, "hint:") {
			t.Errorf("seek of a live group: err = %v, output:\n%s\nstderr:\n%s", err, out, stderr)
		}
		cl.Close()

		// Without --topics: the committed partitions only.
		out = c.mustRun(t, "", "group", "seek", "g1", "--to", "start")
		golden(t, "group_seek", out)
		d := describeGroupJSON(t, c, "g1")
		if d.TotalLag != 9 {
			t.Errorf("after seek to start: total lag %d, want 9\n%+v", d.TotalLag, d)
		}

		// --dry-run commits nothing; --topics takes every partition.
		out, stderr, err = c.run(t, "", "group", "seek", "g1", "--to", "end", "--topics", "orders,quiet", "--dry-run")
		if err != nil || !strings.Contains(stderr, "dry run") {
			t.Fatalf("dry run: %v\n%s", err, stderr)
		}
		if want := "TOPIC   PARTITION  PRIOR-OFFSET  CURRENT-OFFSET\norders  0          0             7\norders  1          0             2\nquiet   0          -             0\n"; out != want {
			t.Errorf("dry run output:\n%s\nwant:\n%s", out, want)
		}
		if d := describeGroupJSON(t, c, "g1"); d.TotalLag != 9 {
			t.Errorf("dry run committed: total lag %d", d.TotalLag)
		}

		for _, tc := range []struct {
			to       string
			p0, p1   int64
			totalLag int64
		}{
			{"2", 2, 2, 5},              // clamped to partition 1's end
			{"-1", 6, 1, 2},             // one record before each end
			{"@1700000000002", 2, 0, 7}, // orders/1's records are newer
			{"end", 7, 2, 0},
		} {
			var rs []seekResult
			if err := json.Unmarshal([]byte(c.mustRun(t, "", "group", "seek", "g1", "--to", tc.to, "-t", "orders", "--format", "json")), &rs); err != nil {
				t.Fatal(err)
			}
			if len(rs) != 2 || rs[0].CurrentOffset == nil || *rs[0].CurrentOffset != tc.p0 || rs[1].CurrentOffset == nil || *rs[1].CurrentOffset != tc.p1 {
				t.Errorf("--to %s: %s", tc.to, mustJSON(t, rs))
			}
			if d := describeGroupJSON(t, c, "g1"); d.TotalLag != tc.totalLag {
				t.Errorf("--to %s: total lag %d, want %d", tc.to, d.TotalLag, tc.totalLag)
			}
		}

		// quiet/0 still has no commit (the seeks above named orders
		// only), so a seek without --topics leaves it alone.
		if out := c.mustRun(t, "", "group", "seek", "g1", "--to", "start", "--dry-run"); strings.Contains(out, "quiet") {
			t.Errorf("seek without --topics touched an uncommitted topic:\n%s", out)
		}

		for _, args := range [][]string{
			{"group", "seek", "g1"},
			{"group", "seek", "g1", "--to", "yesterday"},
			{"group", "seek", "g1", "--to", "start", "-t", "missing"},
			{"group", "seek", "never-committed", "--to", "start"},
		} {
			if _, _, err := c.run(t, "", args...); err == nil {
				t.Errorf("samsa %s succeeded", strings.Join(args, " "))
			}
		}
	})
}

func TestGroupDelete(t *testing.T) {
	forEachGroupTarget(t, func(t *testing.T, c *cluster) {
		cl := setupGroup(t, c)
		out, _, err := c.run(t, "", "group", "delete", "g1")
		if !errors.Is(err, errReported) || !strings.Contains(out, "g1     NON_EMPTY_GROUP") {
			t.Errorf("delete of a live group: err = %v, output:\n%s", err, out)
		}
		cl.Close()

		out, _, err = c.run(t, "", "group", "delete", "g1", "nope")
		if !errors.Is(err, errReported) {
			t.Fatalf("delete with a missing group: err = %v", err)
		}
		golden(t, "group_delete", out)
		if out := c.mustRun(t, "", "group", "list"); strings.Contains(out, "g1") {
			t.Errorf("g1 still listed after delete:\n%s", out)
		}

		joinGroup(t, c, "g2", 1, "orders").Close()
		var rs []groupResult
		if err := json.Unmarshal([]byte(c.mustRun(t, "", "group", "delete", "g2", "--format", "json")), &rs); err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 || rs[0].Group != "g2" || rs[0].Error != "" {
			t.Errorf("delete json = %+v", rs)
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The golden files below render fixed data, including the cases a single
// live cluster cannot show (per-partition errors, idle members).

func TestGroupDescribeGolden(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	inst := "static-1"
	ds := []groupDescription{{
		Group: "billing", Coordinator: 2, State: "Stable", ProtocolType: "consumer", Balancer: "cooperative-sticky",
		Members: []groupMember{
			{MemberID: "billing-1-5b0e", ClientID: "billing-1", Host: "/10.0.0.7"},
			{MemberID: "billing-2-93aa", InstanceID: &inst, ClientID: "billing-2", Host: "/10.0.0.8"},
			{MemberID: "billing-3-c1d2", ClientID: "billing-3", Host: "/10.0.0.9"},
		},
		TotalLag: 130,
		Partitions: []groupPartitionLag{
			{Topic: "invoices", Partition: 0, CurrentOffset: i64(1200), LogEndOffset: 1300, Lag: i64(100), MemberID: "billing-1-5b0e", ClientID: "billing-1", Host: "/10.0.0.7"},
			{Topic: "invoices", Partition: 1, CurrentOffset: i64(870), LogEndOffset: 900, Lag: i64(30), MemberID: "billing-2-93aa", ClientID: "billing-2", Host: "/10.0.0.8"},
			{Topic: "invoices", Partition: 2, LogEndOffset: 45, MemberID: "billing-2-93aa", ClientID: "billing-2", Host: "/10.0.0.8"},
			{Topic: "refunds", Partition: 0, CurrentOffset: i64(3), LogEndOffset: -1, Error: "NOT_LEADER_OR_FOLLOWER"},
		},
	}, {Group: "ghost", Coordinator: -1, Error: "GROUP_ID_NOT_FOUND"}}
	var b bytes.Buffer
	if err := printGroupDescriptions(&b, &globals{format: "text"}, ds); err != nil {
		t.Fatal(err)
	}
	golden(t, "group_describe", b.String())
	b.Reset()
	if err := printGroupDescriptions(&b, &globals{format: "json"}, ds[:1]); err != nil {
		t.Fatal(err)
	}
	golden(t, "group_describe_json", b.String())
}

func TestGroupListGolden(t *testing.T) {
	var b bytes.Buffer
	es := []groupListEntry{
		{Group: "billing", Coordinator: 2, State: "Stable", ProtocolType: "consumer"},
		{Group: "connect-s3", Coordinator: 1, State: "PreparingRebalance", ProtocolType: "connect"},
		{Group: "offsets-only", Coordinator: 3, State: "Empty"},
	}
	if err := printGroupList(&b, &globals{format: "text"}, es); err != nil {
		t.Fatal(err)
	}
	golden(t, "group_list", b.String())
	b.Reset()
	if err := printGroupList(&b, &globals{format: "json"}, nil); err != nil || b.String() != "[]\n" {
		t.Errorf("empty json list = %q, %v", b.String(), err)
	}
}

func TestGroupSeekGolden(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	rs := []seekResult{
		{Topic: "orders", Partition: 1, PriorOffset: i64(40), Error: "UNKNOWN_MEMBER_ID"},
		{Topic: "orders", Partition: 0, PriorOffset: i64(1200), Error: "UNKNOWN_MEMBER_ID"},
	}
	var b, e bytes.Buffer
	if err := printSeekResults(&b, &e, &globals{format: "text"}, rs); !errors.Is(err, errReported) {
		t.Errorf("failed seek: err = %v", err)
	}
	golden(t, "group_seek_error", b.String())
	if !strings.HasPrefix(e.String(), "hint: ") {
		t.Errorf("no hint for a live group: %q", e.String())
	}
}

func TestGroupCanonicalStates(t *testing.T) {
	got := canonicalStates([]string{"stable", " EMPTY ", "preparingrebalance", "", "Weird"})
	want := []string{"Stable", "Empty", "PreparingRebalance", "Weird"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("canonicalStates = %v, want %v", got, want)
	}
}
