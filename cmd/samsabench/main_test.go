package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain serves as a target process when the bench starts this test
// binary with --serve (startTarget re-executes its own executable).
func TestMain(m *testing.M) {
	if len(os.Args) == 5 && os.Args[1] == "--serve" && os.Args[3] == "--dir" {
		if err := serveMain(os.Args[2], os.Args[4]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestBenchRunsEveryWorkloadOnBothTargets, with a fresh pair of targets
// for each workload (the default) and with one pair for all (--shared).
func TestBenchRunsEveryWorkloadOnBothTargets(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) { testBenchRunsEveryWorkload(t, shared) })
	}
}

func testBenchRunsEveryWorkload(t *testing.T, shared bool) {
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "bench.json")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := bench(ctx, options{
		records: 300, duration: time.Second, dir: dir, targets: "samsa,kfake",
		noStartup: true, jsonFile: jsonFile, progress: io.Discard, shared: shared,
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	// Every target's data is removed once the bench returns.
	if left, _ := filepath.Glob(filepath.Join(dir, "samsabench-*")); len(left) != 0 {
		t.Errorf("data dirs left: %v", left)
	}
	text := out.String()
	// Columns are padded to their widest cell, so compare the header's
	// words, not its spacing (a ratio like 1278.56 widens its column).
	if !strings.Contains(strings.Join(strings.Fields(text), " "), "samsa rec/s kfake rec/s ratio samsa MiB/s samsa p99 kfake p99") {
		t.Errorf("no table header:\n%s", text)
	}
	n := 0
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "produce ") || strings.HasPrefix(line, "consume ") {
			n++
		}
	}
	if n != 20 {
		t.Errorf("%d table rows, want 20:\n%s", n, text)
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 40 {
		t.Fatalf("%d runs, want 40", len(rep.Runs))
	}
	for _, r := range rep.Runs {
		// Each producer sends one uncounted warm-up record.
		want := int64(300)
		if r.Kind == "consume" {
			want = 301
		}
		if r.Error != "" || r.Result.Records != want {
			t.Errorf("%s %s %s: %d records, error %q", r.Target, r.Kind, r.Workload.name(), r.Result.Records, r.Error)
		}
	}
}

func TestBenchVmRSS(t *testing.T) {
	rss, err := vmRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 {
		t.Errorf("VmRSS of the test = %d KiB", rss)
	}
}

func TestBenchWorkloadNames(t *testing.T) {
	for _, tc := range []struct {
		w           workload
		name, topic string
	}{
		{workload{100, 1, 1, ""}, "100B p1 acks=1", "bench-100B-p1-acks1"},
		{workload{1024, 8, -1, ""}, "1KiB p8 acks=all", "bench-1KiB-p8-acksall"},
		{workload{1024, 8, 1, "zstd"}, "1KiB p8 acks=1 zstd", "bench-1KiB-p8-acks1-zstd"},
	} {
		if got := tc.w.name(); got != tc.name {
			t.Errorf("name = %q, want %q", got, tc.name)
		}
		if got := tc.w.topic(); got != tc.topic {
			t.Errorf("topic = %q, want %q", got, tc.topic)
		}
	}
}

func TestBenchClusterTarget(t *testing.T) {
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "bench.json")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := bench(ctx, options{
		records: 300, duration: time.Second, reps: 2, dir: dir, targets: "samsa,samsa3", only: "1KiB p8 acks=all",
		e2eRate: 1000, noStartup: true, jsonFile: jsonFile, progress: io.Discard,
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"samsa3: 3 nodes", "produce 1KiB p8 acks=all rec/s", "≥ 0.50",
		"end-to-end 1KiB p8 acks=all p50", "end-to-end 1KiB p8 acks=all p99", "≤ 5ms",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in the output:\n%s", want, text)
		}
	}
	if strings.Contains(text, "error") {
		t.Errorf("an error in the output:\n%s", text)
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, r := range rep.Runs {
		counts[r.Target+" "+r.Kind]++
		if r.Error != "" {
			t.Errorf("%s %s: %s", r.Target, r.Kind, r.Error)
		}
		switch r.Kind {
		case kindClusterProduce:
			if r.Result.Records != 300 {
				t.Errorf("%s %s: %d records, want 300", r.Target, r.Kind, r.Result.Records)
			}
		case kindEndToEnd:
			// 1000 records/s for 1 s, every one received.
			if r.Result.Records != 1000 || r.Result.Latency.P99 <= 0 {
				t.Errorf("e2e: %d records, p99 %s", r.Result.Records, r.Result.Latency.P99)
			}
		}
	}
	for key, want := range map[string]int{
		"samsa3 " + kindClusterProduce: 2, "samsa " + kindClusterProduce: 2, "samsa3 " + kindEndToEnd: 1,
		"samsa produce": 2, "samsa consume": 2,
	} {
		if counts[key] != want {
			t.Errorf("%d %s runs, want %d (all: %v)", counts[key], key, want, counts)
		}
	}
}
