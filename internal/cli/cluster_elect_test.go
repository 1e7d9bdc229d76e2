package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterElectLeaders runs `cluster elect-leaders` against a single
// node, where every partition's only replica leads: preferred and
// unclean elections are not needed (exit 0), an unknown partition fails
// (exit non-zero), the JSON file and --all-topic-partitions forms work,
// and wrong flag combinations are refused before any request.
func TestClusterElectLeaders(t *testing.T) {
	c := newCluster(t)
	kfake := os.Getenv("SAMSA_TEST_TARGET") == "kfake" // elects every time
	c.mustRun(t, "", "topic", "create", "el", "-p", "2")

	out := c.mustRun(t, "", "cluster", "elect-leaders", "--topic", "el")
	if !kfake && (!strings.Contains(out, "el     0          ELECTION_NOT_NEEDED") || !strings.Contains(out, "preferred election: 0 elected, 2 not needed, 0 failed")) {
		t.Errorf("preferred, whole topic:\n%s", out)
	}
	out = c.mustRun(t, "", "cluster", "elect-leaders", "--election-type", "UNCLEAN", "--topic", "el", "--partition", "1")
	if !kfake && !strings.Contains(out, "unclean election: 0 elected, 1 not needed, 0 failed") {
		t.Errorf("unclean of a led partition:\n%s", out)
	}

	out, _, err := c.run(t, "", "cluster", "elect-leaders", "--topic", "el", "--partition", "0", "--partition", "7")
	if !errors.Is(err, errReported) || !strings.Contains(out, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("unknown partition: err %v\n%s", err, out)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "elect.json")
	if err := os.WriteFile(file, []byte(`{"partitions": [{"topic": "el", "partition": 1}, {"topic": "el", "partition": 0}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var rep electReport
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "cluster", "elect-leaders", "--path-to-json-file", file, "--format", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 || rep.Results[0].Partition != 0 || rep.Results[1].Partition != 1 || rep.Failed != 0 ||
		(!kfake && (rep.NotNeeded != 2 || rep.Results[0].Error != "ELECTION_NOT_NEEDED")) {
		t.Errorf("json file: %+v", rep)
	}

	rep = electReport{}
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "cluster", "elect-leaders", "--all-topic-partitions", "--format", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 0 || (!kfake && len(rep.Results) != 0) {
		t.Errorf("all partitions: %+v", rep)
	}

	for _, args := range [][]string{
		{},
		{"--topic", "el", "--all-topic-partitions"},
		{"--partition", "0", "--all-topic-partitions"},
		{"--election-type", "random", "--topic", "el"},
		{"--topic", "absent"},
		{"--path-to-json-file", filepath.Join(dir, "missing.json")},
	} {
		if _, _, err := c.run(t, "", append([]string{"cluster", "elect-leaders"}, args...)...); err == nil || errors.Is(err, errReported) {
			t.Errorf("%v: err %v, want a usage error", args, err)
		}
	}
}

// TestClusterElectReportGolden: the table and JSON of a report with
// every kind of result.
func TestClusterElectReportGolden(t *testing.T) {
	resp := kmsg.NewPtrElectLeadersResponse()
	msg := func(s string) *string { return &s }
	for _, tc := range []struct {
		topic string
		p     int32
		code  int16
		msg   *string
	}{
		{"orders", 2, kerr.PreferredLeaderNotAvailable.Code, msg("The preferred leader was not available.")},
		{"orders", 0, 0, nil},
		{"audit", 0, kerr.ElectionNotNeeded.Code, msg("Leader election not needed for topic partition.")},
		{"orders", 1, kerr.UnknownTopicOrPartition.Code, msg("No such partition as orders-1")},
	} {
		rt := kmsg.NewElectLeadersResponseTopic()
		rt.Topic = tc.topic
		rp := kmsg.NewElectLeadersResponseTopicPartition()
		rp.Partition, rp.ErrorCode, rp.ErrorMessage = tc.p, tc.code, tc.msg
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
	}
	rep := electReportFrom("Preferred", resp)
	if rep.Elected != 1 || rep.NotNeeded != 1 || rep.Failed != 2 {
		t.Fatalf("counts: %+v", rep)
	}
	var b bytes.Buffer
	if err := printElectReport(&b, &globals{format: "text"}, rep); err != nil {
		t.Fatal(err)
	}
	golden(t, "cluster_elect", b.String())
	b.Reset()
	if err := printElectReport(&b, &globals{format: "json"}, rep); err != nil {
		t.Fatal(err)
	}
	golden(t, "cluster_elect_json", b.String())
}

// TestClusterElectFile: the JSON file's errors.
func TestClusterElectFile(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // error substring; "" for success
	}{
		{`{"partitions": [{"topic": "a", "partition": 0}, {"topic": "b", "partition": 2}, {"topic": "a", "partition": 1}]}`, ""},
		{`{"partitions": [{"topic": "a", "partition": 0}, {"topic": "a", "partition": 0}]}`, "more than once"},
		{`{"partitions": [{"topic": "a"}]}`, `needs "topic" and "partition"`},
		{`{"partitions": []}`, "no partitions"},
		{`[1,2]`, "partitions file"},
	} {
		got, err := parseElectFile([]byte(tc.in))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case tc.want == "" && (len(got["a"]) != 2 || got["a"][1] != 1 || len(got["b"]) != 1):
			t.Errorf("%s: %v", tc.in, got)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err %v, want %q", tc.in, err, tc.want)
		}
	}
}

// FuzzClusterElectFile: any bytes as a --path-to-json-file: no panic,
// and an accepted file names each partition once, of a named topic.
func FuzzClusterElectFile(f *testing.F) {
	f.Add([]byte(`{"partitions": [{"topic": "a", "partition": 0}]}`))
	f.Add([]byte(`{"partitions": [{"topic": "a", "partition": -1}, {"topic": "a", "partition": 2147483647}]}`))
	f.Add([]byte(`{"partitions": null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseElectFile(b)
		if err != nil {
			return
		}
		for topic, ps := range got {
			if topic == "" || len(ps) == 0 {
				t.Fatalf("accepted %q: %v", b, got)
			}
			seen := map[int32]bool{}
			for _, p := range ps {
				if seen[p] {
					t.Fatalf("accepted a duplicate: %q", b)
				}
				seen[p] = true
			}
		}
	})
}

// FuzzClusterElectReport: any ElectLeaders response a broker could send
// (every version) renders without panic, and the counts add up.
func FuzzClusterElectReport(f *testing.F) {
	resp := kmsg.NewPtrElectLeadersResponse()
	rt := kmsg.NewElectLeadersResponseTopic()
	rt.Topic = "t"
	rp := kmsg.NewElectLeadersResponseTopicPartition()
	rp.ErrorCode = kerr.ElectionNotNeeded.Code
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	for v := int16(0); v <= resp.MaxVersion(); v++ {
		resp.Version = v
		f.Add(v, resp.AppendTo(nil))
	}
	f.Fuzz(func(t *testing.T, v int16, b []byte) {
		r := kmsg.NewPtrElectLeadersResponse()
		r.Version = v
		if v < 0 || v > r.MaxVersion() || r.ReadFrom(b) != nil {
			return
		}
		rep := electReportFrom("preferred", r)
		if rep.Elected+rep.NotNeeded+rep.Failed != len(rep.Results) {
			t.Fatalf("counts %d+%d+%d for %d results", rep.Elected, rep.NotNeeded, rep.Failed, len(rep.Results))
		}
		var out bytes.Buffer
		if err := printElectReport(&out, &globals{format: "text"}, rep); err != nil {
			t.Fatal(err)
		}
	})
}
