// Command samsabench (`make bench`) runs the same produce and consume
// workloads against an in-process Samsa node (real disk) and franz-go's
// in-memory kfake, prints a comparison table, and measures the start-up
// time and idle memory of a freshly built `samsa start` process.
//
// Produce runs are sustained: each lasts -duration (3 s by default, no
// record cap unless -records is set), long enough for page-cache
// writeback, GC and allocation costs to show, which runs of about a
// second hide. Each workload runs -reps times (3) per target, the targets
// alternating which goes first, and the table shows the median run.
//
// With the samsa3 target (a three-node cluster, RF 3, cluster.go) it also
// compares acks=all produce on the cluster with the single node and
// measures end-to-end latency at a fixed rate on the cluster.
//
// Both targets are driven by internal/perf with franz-go clients pinned to
// Kafka 4.0's protocol versions (kfake closes the connection on the
// ApiVersions v5 that franz-go sends by default), so the comparison is
// like for like. kfake keeps everything in memory and never fsyncs, so it
// is a ceiling for what the client and the loopback network allow, not a
// broker to beat.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"samsa/internal/perf"
)

// options are the command-line flags.
type options struct {
	records   int64
	duration  time.Duration
	reps      int // runs of each workload per target; 0 means 1
	quick     bool
	jsonFile  string
	dir       string
	targets   string
	noStartup bool
	idleWait  time.Duration
	// idleConns, attackConns and attackFrame shape the process memory
	// measurements: RSS with idleConns idle connections, then with
	// attackConns connections that each announce an attackFrame-byte
	// request, send its header and then nothing (issue 9's attack).
	idleConns   int
	attackConns int
	attackFrame int
	only        string // run only workloads whose "kind name" contains this
	noConsume   bool   // skip the consume runs (profiling the produce path)
	// shared keeps one pair of target processes for every workload
	// instead of starting a fresh pair for each.
	shared    bool
	inProcess bool      // run the targets in the bench's process (targets.go)
	cpuProf   string    // write a CPU profile of the workload runs here
	e2eRate   int       // records/s of the samsa3 end-to-end latency run
	progress  io.Writer // one line per finished run; nil: stderr
}

// workload is one produce configuration; its consume reads back what it
// produced.
type workload struct {
	RecordSize  int    `json:"record_size"`
	Partitions  int32  `json:"partitions"`
	Acks        int    `json:"acks"`
	Compression string `json:"compression,omitempty"` // producer codec; "": none
}

func (w workload) name() string {
	size := fmt.Sprintf("%dB", w.RecordSize)
	if w.RecordSize%1024 == 0 {
		size = fmt.Sprintf("%dKiB", w.RecordSize/1024)
	}
	acks := strconv.Itoa(w.Acks)
	if w.Acks == -1 {
		acks = "all"
	}
	name := fmt.Sprintf("%s p%d acks=%s", size, w.Partitions, acks)
	if w.Compression != "" {
		name += " " + w.Compression
	}
	return name
}

func (w workload) topic() string {
	return strings.NewReplacer(" ", "-", "=", "").Replace("bench-" + w.name())
}

// run is one measured workload on one target.
type run struct {
	Target   string      `json:"target"`
	Kind     string      `json:"kind"` // produce or consume
	Rep      int         `json:"rep"`  // 0-based repetition
	Workload workload    `json:"workload"`
	Result   perf.Result `json:"result"`
	Error    string      `json:"error,omitempty"`
	Rate     int         `json:"rate,omitempty"` // records/s issued (end-to-end runs)
}

// startup is what the process measurement found.
type startup struct {
	StartupMillis float64 `json:"startup_ms"` // exec to the Kafka "listener bound" log line
	ReadyMillis   float64 `json:"ready_ms"`   // exec to the "samsa started" log line
	IdleRSSKiB    int64   `json:"idle_rss_kib"`
	// ConnsRSSKiB is the RSS with IdleConns idle connections open.
	ConnsRSSKiB int64 `json:"conns_rss_kib,omitempty"`
	IdleConns   int   `json:"idle_conns,omitempty"`
	// AttackRSSKiB is the RSS while AttackConns connections each announce
	// an AttackFrame-byte request and stall after its header.
	AttackRSSKiB int64  `json:"attack_rss_kib,omitempty"`
	AttackConns  int    `json:"attack_conns,omitempty"`
	AttackFrame  int    `json:"attack_frame_bytes,omitempty"`
	Error        string `json:"error,omitempty"`
}

type report struct {
	Time        time.Time `json:"time"`
	GoVersion   string    `json:"go_version"`
	GOOS        string    `json:"goos"`
	GOARCH      string    `json:"goarch"`
	NumCPU      int       `json:"num_cpu"`
	ClientPin   string    `json:"client_max_versions"`
	Records     int64     `json:"records_per_workload"`
	Reps        int       `json:"reps"`
	Duration    string    `json:"max_duration_per_workload"`
	Runs        []run     `json:"runs"`
	SamsaStart  *startup  `json:"samsa_process,omitempty"`
	DataDirRoot string    `json:"data_dir_root"`
}

func main() {
	var o options
	flag.Int64Var(&o.records, "records", 0, "stop a produce run after this many records (0: run for -duration)")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "length of each produce run (sustained throughput needs >= 3s)")
	flag.IntVar(&o.reps, "reps", 3, "runs of each workload per target; the table shows the median")
	flag.BoolVar(&o.quick, "quick", false, "short smoke run (20k records, 1s per workload)")
	flag.StringVar(&o.jsonFile, "json", "", "also write the results as JSON to this file")
	flag.StringVar(&o.dir, "dir", os.TempDir(), "where the Samsa node keeps its (temporary) data")
	flag.StringVar(&o.targets, "targets", "samsa,kfake,samsa3", "targets to run, comma separated (samsa3: a 3-node cluster, RF 3)")
	flag.IntVar(&o.e2eRate, "e2e-rate", 10_000, "records/s of the end-to-end latency run on samsa3")
	flag.BoolVar(&o.noStartup, "no-startup", false, "skip the start-up time and idle memory measurement")
	flag.DurationVar(&o.idleWait, "idle-wait", 2*time.Second, "how long the samsa process idles before its RSS is read")
	flag.IntVar(&o.idleConns, "idle-conns", 1000, "idle connections held open for the RSS-with-connections measurement (0: skip)")
	flag.IntVar(&o.attackConns, "attack-conns", 100, "connections of the frame-length attack measurement (0: skip)")
	flag.IntVar(&o.attackFrame, "attack-frame", 100<<20, "frame length each attacking connection announces, in bytes")
	flag.StringVar(&o.only, "only", "", `run only workloads whose "size pN acks=A" name contains this, e.g. "1KiB p8"`)
	flag.BoolVar(&o.noConsume, "no-consume", false, "run only the produce runs (for profiling the produce path alone)")
	flag.BoolVar(&o.shared, "shared", false, "keep one samsa and one kfake for every workload instead of a fresh pair per workload")
	flag.StringVar(&o.cpuProf, "cpuprofile", "", "write a CPU profile of the workload runs to this file (implies -in-process, so the profile sees the brokers)")
	flag.BoolVar(&o.inProcess, "in-process", false, "run Samsa and kfake inside the bench's process instead of one process each")
	serve := flag.String("serve", "", "internal: serve this target (samsa, kfake or a samsa3 node) until standard input closes, data in -dir")
	flag.Parse()
	if *serve != "" {
		if err := serveMain(*serve, o.dir); err != nil {
			fmt.Fprintln(os.Stderr, "samsabench --serve:", err)
			os.Exit(1)
		}
		return
	}
	if o.cpuProf != "" {
		o.inProcess = true
	}
	if o.quick {
		o.records, o.duration, o.idleWait, o.reps = 20_000, time.Second, 500*time.Millisecond, 1
		o.idleConns, o.attackConns = 100, 10
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "samsabench:", err)
		os.Exit(1)
	}
}

func bench(ctx context.Context, o options, w io.Writer) error {
	rep := report{
		Time: time.Now().UTC(), GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		NumCPU: runtime.NumCPU(), ClientPin: "kgo.MaxVersions(kversion.V4_0_0())",
		Records: o.records, Reps: max(o.reps, 1), Duration: o.duration.String(), DataDirRoot: o.dir,
	}
	limit := o.duration.String()
	if o.records > 0 {
		limit = fmt.Sprintf("up to %d records or %s", o.records, o.duration)
	}
	fmt.Fprintf(w, "samsabench: %s %s/%s, %d CPUs; %s per produce run, %d alternated runs per workload and target\n",
		rep.GoVersion, rep.GOOS, rep.GOARCH, rep.NumCPU, limit, rep.Reps)
	fmt.Fprintln(w, "clients: franz-go kgo pinned to Kafka 4.0 protocol versions for both targets (kfake needs it)")

	progressOut := o.progress
	if progressOut == nil {
		progressOut = os.Stderr
	}
	targets := map[string][]kgo.Opt{}
	// dirs holds each Samsa target's data dir (settleDeletes).
	dirs := map[string]string{}
	var order []string
	// cleanups stop the targets and remove their data, last started first.
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	// announced holds the targets whose address was printed.
	announced := map[string]bool{}
	// start starts a target; its stop (also run at the end if not
	// called before) stops it and removes its data.
	start := func(name string) (stop func(), err error) {
		dir, err := os.MkdirTemp(o.dir, "samsabench-")
		if err != nil {
			return nil, err
		}
		addr, stopTarget, err := startTarget(ctx, name, dir, o.inProcess)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		var once sync.Once
		stop = func() { once.Do(func() { stopTarget(); os.RemoveAll(dir) }) }
		if name != "kfake" {
			dirs[name] = dir
		}
		cleanups = append(cleanups, stop)
		targets[name] = []kgo.Opt{kgo.SeedBrokers(strings.Split(addr, ",")...), kgo.MaxVersions(kversion.V4_0_0())}
		if announced[name] {
			return stop, nil
		}
		announced[name] = true
		where := "own process"
		if o.inProcess {
			where = "in-process"
		}
		if !o.shared && name != "samsa3" {
			where += ", a fresh one for each workload"
		}
		switch name {
		case "samsa":
			fmt.Fprintf(w, "samsa: node (%s) on %s, data in %s\n", where, addr, dir)
		case "samsa3":
			fmt.Fprintf(w, "samsa3: 3 nodes (%s each) on %s, RF 3, min.insync.replicas 2, data in %s\n", where, addr, dir)
		default:
			fmt.Fprintf(w, "kfake: in-memory fake (%s) on %s\n", where, addr)
		}
		return stop, nil
	}
	// startPair starts the single-node targets; its stop stops them and
	// removes their data.
	startPair := func() (stop func(), err error) {
		var stops []func()
		stop = func() {
			for i := len(stops) - 1; i >= 0; i-- {
				stops[i]()
			}
		}
		for _, name := range order {
			st, err := start(name)
			if err != nil {
				stop()
				return nil, err
			}
			stops = append(stops, st)
		}
		return stop, nil
	}
	cluster := false
	for _, name := range strings.Split(o.targets, ",") {
		switch name = strings.TrimSpace(name); name {
		case "":
		case "samsa3":
			// The cluster runs only its own group, and starts just before
			// it, so it does not idle beside the other targets' runs.
			cluster = true
		case "samsa", "kfake":
			order = append(order, name)
		default:
			return fmt.Errorf("unknown target %q: want samsa, kfake or samsa3", name)
		}
	}

	// The cluster group runs when samsa3 is a target and --only lets its
	// workload through.
	cluster = cluster && strings.Contains(clusterWorkload.name(), o.only)
	// The end-to-end latency run goes first, on a cluster started for it
	// alone and stopped after it (see benchEndToEnd).
	if cluster {
		stop, err := start("samsa3")
		if err != nil {
			return err
		}
		r, err := benchEndToEnd(ctx, o, targets, dirs, progressOut)
		rep.Runs = append(rep.Runs, r)
		stop()
		delete(targets, "samsa3")
		delete(dirs, "samsa3")
		if err != nil {
			return err
		}
	}

	var workloads []workload
	for _, size := range []int{100, 1024} {
		for _, parts := range []int32{1, 8} {
			for _, acks := range []int{1, -1} {
				workloads = append(workloads, workload{RecordSize: size, Partitions: parts, Acks: acks})
			}
		}
	}
	// Compressed produce: the broker validates every record through a
	// streaming decompressor.
	for _, codec := range []string{"lz4", "zstd"} {
		workloads = append(workloads, workload{RecordSize: 1024, Partitions: 8, Acks: 1, Compression: codec})
	}
	if o.cpuProf != "" {
		f, err := os.Create(o.cpuProf)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	// Each workload runs reps times per target, alternating which target
	// goes first, so drift (page cache, GC, CPU frequency) falls on both.
	// Every produce run appends to the workload's topic; every consume run
	// then reads the whole topic from the start. Each workload has a fresh
	// pair of targets (stopped after it, their data removed), so no
	// workload inherits another's memory: a kfake that keeps serving
	// starts a workload on the heap its last topic left (Go keeps freed
	// heap for reuse), while a Samsa's page cache of a deleted topic goes
	// back to the kernel, and on a VM whose free memory goes back to the
	// host, first-touch memory costs several times reused memory (see
	// docs/cli.md). With -shared, one pair serves every workload and each
	// workload's topic is deleted after it.
	var stopPair func() // nil: no pair running
	for _, wl := range workloads {
		if !strings.Contains(wl.name(), o.only) {
			continue
		}
		if stopPair == nil {
			var err error
			if stopPair, err = startPair(); err != nil {
				return err
			}
		}
		kinds := []string{"produce", "consume"}
		if o.noConsume {
			kinds = kinds[:1]
		}
		for _, kind := range kinds {
			for i := range rep.Reps {
				for _, target := range repOrder(order, i) {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					r := run{Target: target, Kind: kind, Rep: i, Workload: wl}
					var err error
					if kind == "produce" {
						r.Result, err = perf.Produce(ctx, perf.ProduceConfig{
							Topic: wl.topic(), Records: o.records, Duration: o.duration, RecordSize: wl.RecordSize,
							Partitions: wl.Partitions, Acks: wl.Acks, Compression: wl.Compression, ClientOpts: targets[target],
						})
					} else {
						r.Result, err = perf.Consume(ctx, perf.ConsumeConfig{Topic: wl.topic(), ClientOpts: targets[target]})
					}
					if err != nil {
						r.Error = err.Error()
					}
					fmt.Fprintf(progressOut, "%-8s %-7s %-22s run %d: %s\n", target, kind, wl.name(), i+1, progress(r))
					rep.Runs = append(rep.Runs, r)
				}
			}
		}
		if o.shared {
			for _, target := range order {
				if err := deleteTopic(ctx, targets[target], wl.topic(), dirs[target]); err != nil {
					return fmt.Errorf("%s: delete %s: %w", target, wl.topic(), err)
				}
			}
		} else {
			stopPair()
			stopPair = nil
		}
		runtime.GC()
	}
	if stopPair != nil {
		stopPair()
	}

	if cluster {
		// The single node the cluster is compared with is a fresh one
		// (the pairs are stopped by now).
		if slices.Contains(order, "samsa") {
			if _, err := start("samsa"); err != nil {
				return err
			}
		}
		if _, err := start("samsa3"); err != nil {
			return err
		}
		runs, err := benchCluster(ctx, o, rep.Reps, targets, dirs, progressOut)
		rep.Runs = append(rep.Runs, runs...)
		if err != nil {
			return err
		}
	}

	if !o.noStartup {
		st := measureStartup(ctx, o)
		rep.SamsaStart = &st
	}
	printReport(w, rep, order)
	if o.jsonFile != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonFile, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(w, "results written to %s\n", o.jsonFile)
	}
	return nil
}

// deleteTopic deletes a workload's topic and, on a Samsa target (dir is
// its data dir), waits until its files are removed (settleDeletes).
func deleteTopic(ctx context.Context, opts []kgo.Opt, topic, dir string) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	resps, err := kadm.NewClient(cl).DeleteTopics(ctx, topic)
	if err != nil {
		return err
	}
	// A retried request whose first try deleted the topic finds it gone:
	// what was asked for.
	if err := resps.Error(); err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return err
	}
	return settleDeletes(ctx, dir)
}

// settleDeletes waits until no deleted partition's dir ("-delete", which
// the Samsa targets remove at the storage loop's next round, their
// log.segment.delete.delay.ms being 0) is left under dir, for at most a
// minute: removing gigabytes costs the kernel seconds, which belong
// between workloads, not inside the next one's timed runs.
func settleDeletes(ctx context.Context, dir string) error {
	if dir == "" {
		return nil
	}
	deadline := time.Now().Add(time.Minute)
	for {
		left := 0
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if strings.HasSuffix(d.Name(), "-delete") {
				left++
				return filepath.SkipDir
			}
			if strings.Count(strings.TrimPrefix(path, dir), string(filepath.Separator)) >= 2 {
				return filepath.SkipDir // a partition's own dir: no deeper
			}
			return nil
		})
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d deleted partition dirs still under %s after a minute", left, dir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// repOrder is the target order of repetition i: as given on even runs,
// reversed on odd ones.
func repOrder(order []string, i int) []string {
	if i%2 == 0 {
		return order
	}
	rev := make([]string, len(order))
	for j, t := range order {
		rev[len(order)-1-j] = t
	}
	return rev
}

// median returns the run with the median records/s among target's runs
// of kind and wl (the lower middle one for an even count). Any failed run
// makes the median the failed run, so errors are never hidden.
func median(runs []run, target, kind string, wl workload) *run {
	var ms []*run
	for i := range runs {
		r := &runs[i]
		if r.Target != target || r.Kind != kind || r.Workload != wl {
			continue
		}
		if r.Error != "" {
			return r
		}
		ms = append(ms, r)
	}
	if len(ms) == 0 {
		return nil
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Result.RecordsPerSec < ms[j].Result.RecordsPerSec })
	return ms[(len(ms)-1)/2]
}

func progress(r run) string {
	if r.Error != "" {
		return "error: " + r.Error
	}
	return r.Result.String()
}

// printReport prints the comparison table: one row per workload, the
// first target's numbers against the second's.
func printReport(w io.Writer, rep report, order []string) {
	fmt.Fprintln(w)
	if len(order) > 0 {
		printTable(w, rep, order)
	}
	printCluster(w, rep)
	printStartup(w, rep)
}

// printTable prints the comparison of the first two targets in order.
func printTable(w io.Writer, rep report, order []string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	base, other := order[0], ""
	if len(order) > 1 {
		other = order[1]
	}
	// Pad the workload names to one width so they read left-aligned in a
	// right-aligned table.
	width := len("workload")
	for _, r := range rep.Runs {
		if r.Kind == "produce" || r.Kind == "consume" {
			width = max(width, len(r.Kind)+1+len(r.Workload.name()))
		}
	}
	pad := func(s string) string { return s + strings.Repeat(" ", width-len(s)) }
	header := []string{pad("workload"), base + " rec/s"}
	if other != "" {
		header = append(header, other+" rec/s", "ratio")
	}
	header = append(header, base+" MiB/s", base+" p99")
	if other != "" {
		header = append(header, other+" p99")
	}
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	find := func(target, kind string, wl workload) *run { return median(rep.Runs, target, kind, wl) }
	var keys []run
	for _, r := range rep.Runs {
		if r.Target == base && r.Rep == 0 && (r.Kind == "produce" || r.Kind == "consume") {
			keys = append(keys, r)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].Kind > keys[j].Kind }) // produce first
	for _, k := range keys {
		b := find(base, k.Kind, k.Workload)
		cells := []string{pad(k.Kind + " " + k.Workload.name()), rate(b)}
		var ob *run
		if other != "" {
			ob = find(other, k.Kind, k.Workload)
			ratio := "-"
			if b.Error == "" && ob != nil && ob.Error == "" && ob.Result.RecordsPerSec > 0 {
				ratio = fmt.Sprintf("%.2f", b.Result.RecordsPerSec/ob.Result.RecordsPerSec)
			}
			cells = append(cells, rate(ob), ratio)
		}
		cells = append(cells, mib(b), p99(b))
		if other != "" {
			cells = append(cells, p99(ob))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	_ = tw.Flush()
	if other != "" {
		fmt.Fprintf(w, "rec/s: median of %d runs. ratio = %s rec/s / %s rec/s. ", rep.Reps, base, other)
	}
	fmt.Fprintln(w, "p99: produce latency from the Produce call to its acknowledgement, at full load (10000 records buffered per client)")
}

// printStartup prints the process measurements.
func printStartup(w io.Writer, rep report) {
	if st := rep.SamsaStart; st != nil {
		if st.Error != "" {
			fmt.Fprintf(w, "samsa process: %s\n", st.Error)
		} else {
			fmt.Fprintf(w, "samsa process: start-up %.1f ms (exec to Kafka listener bound), %.1f ms to \"samsa started\", idle RSS %.1f MiB\n",
				st.StartupMillis, st.ReadyMillis, float64(st.IdleRSSKiB)/1024)
			if st.IdleConns > 0 {
				fmt.Fprintf(w, "samsa process: RSS %.1f MiB with %d idle connections\n", float64(st.ConnsRSSKiB)/1024, st.IdleConns)
			}
			if st.AttackConns > 0 {
				fmt.Fprintf(w, "samsa process: RSS %.1f MiB under a frame-length attack (%d connections each announcing %d MiB, then stalling)\n",
					float64(st.AttackRSSKiB)/1024, st.AttackConns, st.AttackFrame>>20)
			}
		}
	}
}

func rate(r *run) string {
	if r == nil {
		return "-"
	}
	if r.Error != "" {
		return "error"
	}
	return fmt.Sprintf("%.0f", r.Result.RecordsPerSec)
}

func mib(r *run) string {
	if r == nil || r.Error != "" {
		return "-"
	}
	return fmt.Sprintf("%.1f", r.Result.MiBPerSec)
}

func p99(r *run) string {
	if r == nil || r.Error != "" || r.Result.Latency.P99 == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fms", float64(r.Result.Latency.P99)/float64(time.Millisecond))
}

// measureStartup builds the samsa binary, starts `samsa start` on free
// ports with an empty data directory, times exec to the Kafka listener's
// "listener bound" log line, lets it idle and reads its VmRSS.
func measureStartup(ctx context.Context, o options) startup {
	st, err := measureStartupErr(ctx, o)
	if err != nil {
		st.Error = err.Error()
	}
	return st
}

func measureStartupErr(ctx context.Context, o options) (startup, error) {
	tmp, err := os.MkdirTemp(o.dir, "samsabench-proc-")
	if err != nil {
		return startup{}, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "samsa")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "samsa/cmd/samsa")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // the static binary make build makes
	if err := build.Run(); err != nil {
		return startup{}, fmt.Errorf("build samsa: %w", err)
	}
	cmd := exec.Command(bin, "start",
		"-o", "listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"-o", "log.dirs="+filepath.Join(tmp, "data"),
		"-o", "http.listener=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return startup{}, err
	}
	// The child inherits the limit: it must hold the measured connections.
	if err := raiseNoFile(uint64(o.idleConns+o.attackConns) + 256); err != nil {
		return startup{}, err
	}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return startup{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	// bound gets the time to the Kafka listener's "listener bound" line,
	// then the time to "samsa started" (everything up), then is closed.
	bound := make(chan time.Duration, 2)
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		listening, started := false, false
		for sc.Scan() {
			line := sc.Text()
			if !listening && strings.Contains(line, `msg="listener bound"`) && strings.Contains(line, "listener=PLAINTEXT") {
				bound <- time.Since(began)
				addrc <- logField(line, "addr")
				listening = true
			}
			if listening && !started && strings.Contains(line, `msg="samsa started"`) {
				bound <- time.Since(began)
				started = true
			}
		}
		close(bound)
	}()
	var st startup
	for i, field := range []*float64{&st.StartupMillis, &st.ReadyMillis} {
		select {
		case d, ok := <-bound:
			if !ok {
				return st, fmt.Errorf("samsa start exited before logging step %d of start-up", i+1)
			}
			*field = float64(d) / float64(time.Millisecond)
		case <-time.After(30 * time.Second):
			return st, errors.New("samsa start did not start within 30s")
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
	select {
	case <-time.After(o.idleWait):
	case <-ctx.Done():
		return st, ctx.Err()
	}
	rss, err := vmRSS(cmd.Process.Pid)
	if err != nil {
		return st, err
	}
	st.IdleRSSKiB = rss
	addr := <-addrc
	if o.idleConns > 0 {
		if st.ConnsRSSKiB, err = rssWithConns(ctx, cmd.Process.Pid, addr, o.idleConns, 0, o.idleWait); err != nil {
			return st, fmt.Errorf("idle connections: %w", err)
		}
		st.IdleConns = o.idleConns
	}
	if o.attackConns > 0 {
		if st.AttackRSSKiB, err = rssWithConns(ctx, cmd.Process.Pid, addr, o.attackConns, o.attackFrame, o.idleWait); err != nil {
			return st, fmt.Errorf("frame-length attack: %w", err)
		}
		st.AttackConns, st.AttackFrame = o.attackConns, o.attackFrame
	}
	return st, nil
}

// rssWithConns opens n connections to addr; with frame > 0 each sends a
// 4-byte size of frame bytes and a Produce v9 request header, then
// nothing. After wait it reads the process's RSS, then closes them all.
func rssWithConns(ctx context.Context, pid int, addr string, n, frame int, wait time.Duration) (int64, error) {
	if err := raiseNoFile(uint64(n) + 256); err != nil {
		return 0, err
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var d net.Dialer
	for range n {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return 0, err
		}
		conns = append(conns, c)
		if frame > 0 {
			// size, api key 0 (Produce), version 9, correlation id 1,
			// client id "x", no header tags.
			b := binary.BigEndian.AppendUint32(nil, uint32(frame))
			b = append(b, 0, 0, 0, 9, 0, 0, 0, 1, 0, 1, 'x', 0)
			if _, err := c.Write(b); err != nil {
				return 0, err
			}
		}
	}
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return vmRSS(pid)
}

// raiseNoFile raises this process's open file limit to at least n (up to
// the hard limit); the samsa child started afterwards inherits it.
func raiseNoFile(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= n {
		return nil
	}
	lim.Cur = min(max(n, lim.Cur), lim.Max)
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// logField returns the value of key=value in a slog text line ("" if
// absent), unquoting a quoted value.
func logField(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
			return v
		}
	}
	return ""
}

// vmRSS reads a process's resident set size in KiB from /proc.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}
