package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"samsa/internal/server"
)

func TestReassignParse(t *testing.T) {
	for _, tc := range []struct {
		doc    string
		cancel bool
		err    string // "" valid
	}{
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1,2]}]}`, false, ""},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1,2],"log_dirs":["any","any"]}]}`, false, ""},
		{`{"version":1,"partitions":[{"topic":"a","partition":0}]}`, true, ""},
		{`{"version":2,"partitions":[{"topic":"a","partition":0,"replicas":[1]}]}`, false, "version 2"},
		{`{"version":1,"partitions":[]}`, false, "cannot be empty"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[]}]}`, false, "empty replica list"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1,1]}]}`, false, "more than once"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1]},{"topic":"a","partition":0,"replicas":[2]}]}`, false, "duplicate"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1,2],"log_dirs":["any"]}]}`, false, "log_dirs"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1],"log_dirs":["/d"]}]}`, false, "only \"any\""},
		{`{"version":1,"partitions":[{"topic":"","partition":0,"replicas":[1]}]}`, false, "bad partition"},
		{`{"version":1`, false, "reassignment JSON"},
	} {
		_, err := parseReassignment([]byte(tc.doc), tc.cancel)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.doc, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %v, want %q", tc.doc, err, tc.err)
		}
	}
}

// FuzzReassignParse: no document panics the parser, and an accepted
// one satisfies what the tool relies on.
func FuzzReassignParse(f *testing.F) {
	f.Add([]byte(`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1,2],"log_dirs":["any","any"]}]}`), false)
	f.Add([]byte(`{"version":1,"partitions":[{"topic":"a","partition":3}]}`), true)
	f.Fuzz(func(t *testing.T, b []byte, cancel bool) {
		r, err := parseReassignment(b, cancel)
		if err != nil {
			return
		}
		if r.Version != 1 || len(r.Partitions) == 0 {
			t.Fatalf("accepted %+v", r)
		}
		for _, p := range r.Partitions {
			if p.Topic == "" || p.Partition < 0 || (!cancel && len(p.Replicas) == 0) {
				t.Fatalf("accepted partition %+v", p)
			}
		}
	})
}

// TestReassignProposeAssignment: every partition keeps its replica
// count, on distinct brokers of the list, leaders spread evenly.
func TestReassignProposeAssignment(t *testing.T) {
	parts := map[int32][]int32{}
	for p := range int32(12) {
		parts[p] = []int32{1, 2, 3}
	}
	brokers := []int32{4, 2, 3, 5}
	ps, err := proposeAssignment("t", 0, parts, brokers)
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]int{}
	for _, p := range ps {
		if len(p.Replicas) != 3 || len(slices.Compact(slices.Sorted(slices.Values(p.Replicas)))) != 3 {
			t.Fatalf("partition %d: %v", p.Partition, p.Replicas)
		}
		for _, r := range p.Replicas {
			if !slices.Contains(brokers, r) {
				t.Fatalf("partition %d on broker %d", p.Partition, r)
			}
		}
		leaders[p.Replicas[0]]++
	}
	for _, b := range brokers {
		if leaders[b] != 3 {
			t.Fatalf("leaders per broker: %v", leaders)
		}
	}
	if _, err := proposeAssignment("t", 0, parts, []int32{1, 2}); err == nil {
		t.Fatal("RF 3 over 2 brokers proposed")
	}
}

func TestReassignRates(t *testing.T) {
	mk := func(remaining int64) *verifyReport {
		return &verifyReport{Partitions: []partitionStatus{{Topic: "t", Partition: 0, Moving: []movingReplica{
			{Replica: 3, BytesRemaining: remaining, BytesPerSecond: -1, ETASeconds: -1}}}}}
	}
	now := mk(1000)
	withRates(mk(3000), now, 2*time.Second)
	if m := now.Partitions[0].Moving[0]; m.BytesPerSecond != 1000 || m.ETASeconds != 1 {
		t.Fatalf("rate %v eta %v", m.BytesPerSecond, m.ETASeconds)
	}
	stuck := mk(1000)
	withRates(mk(1000), stuck, time.Second)
	if m := stuck.Partitions[0].Moving[0]; m.BytesPerSecond != 0 || m.ETASeconds != -1 {
		t.Fatalf("stuck: rate %v eta %v", m.BytesPerSecond, m.ETASeconds)
	}
}

// startNodes starts n combined broker+controller nodes as one cluster
// (with extra config overrides) and returns the servers and the Kafka
// addresses.
func startNodes(t *testing.T, n int, extra ...string) ([]*server.Server, []string) {
	t.Helper()
	type socks struct{ plain, ctl net.Listener }
	ls := make([]socks, n)
	var voters []string
	for i := range ls {
		for _, l := range []*net.Listener{&ls[i].plain, &ls[i].ctl} {
			x, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			*l = x
		}
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, ls[i].ctl.Addr()))
	}
	srvs := make([]*server.Server, n)
	addrs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range ls {
		addrs[i] = ls[i].plain.Addr().String()
		wg.Add(1)
		go func() {
			defer wg.Done()
			srvs[i], errs[i] = server.Start(context.Background(), server.Options{
				Overrides: append([]string{
					fmt.Sprintf("node.id=%d", i+1), "process.roles=broker,controller",
					"listeners=PLAINTEXT://" + addrs[i] + ",CONTROLLER://" + ls[i].ctl.Addr().String(),
					"inter.broker.listener.name=PLAINTEXT", "controller.listener.names=CONTROLLER",
					"controller.quorum.voters=" + strings.Join(voters, ","),
					"log.dirs=" + t.TempDir(), "http.listener=",
					"broker.heartbeat.interval.ms=100", "broker.session.timeout.ms=1500",
				}, extra...),
				Listeners:    map[string]net.Listener{"PLAINTEXT": ls[i].plain, "CONTROLLER": ls[i].ctl},
				Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
				StartTimeout: 30 * time.Second,
			})
		}()
	}
	wg.Wait()
	for i, s := range srvs {
		if s != nil {
			t.Cleanup(func() { _ = s.Close() })
		}
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	return srvs, addrs
}

// TestClusterReassignCommand: on three nodes, --generate proposes a
// plan over the given brokers; --execute prints the rollback document and
// moves orders-0 from {1,2} to {2,3}; --verify --watch ends with the move
// completed; a move to a stopped broker stays in progress, --verify shows
// the bytes the new replica lacks, and --cancel reverts it. It runs on
// Samsa nodes whatever SAMSA_TEST_TARGET says (kfake serves no
// reassignment).
func TestClusterReassignCommand(t *testing.T) {
	srvs, addrs := startNodes(t, 3)
	c := &cluster{addr: strings.Join(addrs, ",")}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Wait for the three brokers, then create orders with 2 partitions
	// on {1,2}.
	waitBrokers(ctx, t, cl, 3)
	createOn(ctx, t, cl, "orders", [][]int32{{1, 2}, {2, 1}}, nil)
	var rs []*kgo.Record
	for i := range 2000 {
		rs = append(rs, &kgo.Record{Partition: 0, Value: []byte(fmt.Sprintf("value-%06d-%s", i, strings.Repeat("x", 100)))})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// --generate over brokers 2,3.
	topics := write("topics.json", `{"version":1,"topics":[{"topic":"orders"}]}`)
	var gen struct {
		Current, Proposed reassignment
	}
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "cluster", "reassign", "--generate", "--topics-to-move-json-file", topics, "--broker-list", "2,3", "--format", "json")), &gen); err != nil {
		t.Fatal(err)
	}
	if len(gen.Current.Partitions) != 2 || !slices.Equal(gen.Current.Partitions[0].Replicas, []int32{1, 2}) || len(gen.Proposed.Partitions) != 2 {
		t.Fatalf("generate: %+v", gen)
	}
	for _, p := range gen.Proposed.Partitions {
		if s := slices.Sorted(slices.Values(p.Replicas)); !slices.Equal(s, []int32{2, 3}) {
			t.Fatalf("proposed %+v", p)
		}
	}

	// --execute {1,2} -> {2,3} for orders-0.
	plan := write("plan.json", `{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[2,3],"log_dirs":["any","any"]}]}`)
	o := c.mustRun(t, "", "cluster", "reassign", "--execute", "--reassignment-json-file", plan)
	for _, want := range []string{
		"Current partition replica assignment\n\n" + `{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[1,2]}]}`,
		"Save this to use as the --reassignment-json-file option during rollback",
		"Successfully started partition reassignments for orders-0",
	} {
		if !strings.Contains(o, want) {
			t.Fatalf("execute output lacks %q:\n%s", want, o)
		}
	}
	var rep, rep2 verifyReport
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "cluster", "reassign", "--verify", "-f", plan, "--watch", "--interval", "200ms", "--format", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Complete || rep.Partitions[0].Status != "completed" || !slices.Equal(rep.Partitions[0].Replicas, []int32{2, 3}) {
		t.Fatalf("verify: %+v", rep)
	}
	if o := c.mustRun(t, "", "cluster", "reassign", "--verify", "-f", plan); !strings.Contains(o, "Reassignment of partition orders-0 is completed.") {
		t.Fatalf("verify text:\n%s", o)
	}

	// A move to a stopped broker (3) stays in progress.
	_ = srvs[2].Close()
	c.addr = strings.Join(addrs[:2], ",")
	plan2 := write("plan2.json", `{"version":1,"partitions":[{"topic":"orders","partition":1,"replicas":[1,3]}]}`)
	c.mustRun(t, "", "cluster", "reassign", "--execute", "-f", plan2)
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "cluster", "reassign", "--verify", "-f", plan2, "--interval", "100ms", "--format", "json")), &rep2); err != nil {
		t.Fatal(err)
	}
	p := rep2.Partitions[0]
	if rep2.Complete || p.Status != "in_progress" || !slices.Equal(p.Adding, []int32{3}) || !slices.Equal(p.Removing, []int32{2}) || len(p.Moving) != 1 {
		t.Fatalf("verify in progress: %+v", rep2)
	}
	if m := p.Moving[0]; m.Replica != 3 || m.ReplicaBytes != -1 || m.LeaderBytes < 0 || m.BytesRemaining != m.LeaderBytes || m.BytesPerSecond != 0 || m.ETASeconds != -1 {
		t.Fatalf("progress of the stopped replica: %+v", m)
	}
	o = c.mustRun(t, "", "cluster", "reassign", "--verify", "-f", plan2, "--interval", "100ms")
	if !strings.Contains(o, "Reassignment of partition orders-1 is still in progress.") || !strings.Contains(o, "PARTITION  REPLICA  LEADER") {
		t.Fatalf("verify text in progress:\n%s", o)
	}
	// --cancel also clears the throttles (Kafka's cancelAssignment).
	if o := c.mustRun(t, "", "cluster", "reassign", "--cancel", "-f", plan2); !strings.Contains(o, "Successfully cancelled partition reassignments for: orders-1") ||
		!strings.Contains(o, "Clearing topic-level throttles on topics orders") {
		t.Fatalf("cancel:\n%s", o)
	}
	var after verifyReport
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "cluster", "reassign", "--verify", "-f", plan2, "--format", "json")), &after); err != nil {
		t.Fatal(err)
	}
	// Reverted: the replicas without the adding one, in the order of
	// the move's replica list (Kafka's revert does not restore the
	// original order either).
	if p := after.Partitions[0]; p.Status != "not_in_progress" || !slices.Equal(p.Replicas, []int32{1, 2}) || len(p.Moving) != 0 {
		t.Fatalf("after cancel: %+v", p)
	}
	// Cancelling again: NO_REASSIGNMENT_IN_PROGRESS, exit non-zero.
	_, e, err := c.run(t, "", "cluster", "reassign", "--cancel", "-f", plan2)
	if err == nil || !strings.Contains(e, "NO_REASSIGNMENT_IN_PROGRESS") {
		t.Fatalf("second cancel: %v\n%s", err, e)
	}
}
