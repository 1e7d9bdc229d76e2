package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"samsa/test/brokerproc"
)

// openFilesUnder counts the descriptors process pid holds on files under
// dir.
func openFilesUnder(t *testing.T, pid int, dir string) int {
	t.Helper()
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatalf("list open files of %d: %v", pid, err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(fdDir, e.Name())); err == nil && strings.HasPrefix(target, dir+"/") {
			n++
		}
	}
	return n
}

func createTopic(t *testing.T, addr, topic string, configs map[string]*string) {
	t.Helper()
	cl := brokerproc.NewClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// checkValues consumes topic and compares the values with want.
func checkValues(t *testing.T, addr, topic string, want [][]byte) {
	t.Helper()
	got := brokerproc.ConsumeAll(t, addr, topic)
	if len(got) != len(want) {
		t.Fatalf("consumed %d records of %s, want %d", len(got), topic, len(want))
	}
	for i, r := range got {
		if !bytes.Equal(r.Value, want[i]) {
			t.Fatalf("record %d of %s: %d bytes, want %d (%q...)", i, topic, len(r.Value), len(want[i]), want[i][:min(16, len(want[i]))])
		}
	}
}

// TestStorageManySegmentsRestartUnderLowFileLimit writes 3,000 one-batch
// segments (segment.bytes=14), with one descriptor per segment at most
// (before: three, and a node that wrote 6,600 such segments under a
// 20,000 limit could not start again), then kills the broker and restarts
// it under RLIMIT_NOFILE=256 twice (after the crash: recovery; after a
// clean stop: trusted indexes). Every record is read back each time.
func TestStorageManySegmentsRestartUnderLowFileLimit(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Fatalf("prlimit (util-linux) is needed: %v", err)
	}
	const segments = 3000
	b := brokerproc.Start(t, brokerproc.Options{})
	createTopic(t, b.Addr, "tiny", map[string]*string{"segment.bytes": kadm.StringPtr("14")})
	cl := brokerproc.NewClient(t, b.Addr, kgo.DisableIdempotentWrite(), kgo.ProducerLinger(0))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var want [][]byte
	for i := 0; i < segments; i++ {
		v := fmt.Appendf(nil, "v%05d", i)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "tiny", Value: v}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		want = append(want, v)
	}
	if n := openFilesUnder(t, b.PID(), b.Dir); n > segments+50 {
		t.Fatalf("%d files open under the data dir for %d segments", n, segments)
	}
	b.Kill()

	limited := brokerproc.Options{Dir: b.Dir, Wrapper: []string{"prlimit", "--nofile=256:256"}}
	for _, how := range []string{"after kill -9", "after a clean stop"} {
		r := brokerproc.Start(t, limited)
		checkValues(t, r.Addr, "tiny", want)
		if n := openFilesUnder(t, r.PID(), r.Dir); n > 200 {
			t.Fatalf("%s: %d files open under the data dir with a 256 descriptor limit", how, n)
		}
		// Appends still work: a roll under the limit.
		pc := brokerproc.NewClient(t, r.Addr, kgo.DisableIdempotentWrite())
		v := []byte("after restart " + how)
		if err := pc.ProduceSync(ctx, &kgo.Record{Topic: "tiny", Value: v}).FirstErr(); err != nil {
			t.Fatalf("%s: produce: %v", how, err)
		}
		want = append(want, v)
		pc.Close()
		if err := r.Stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// mountTmpfs mounts a tmpfs of size on a new temp dir (root only; see
// the package doc for when the test skips).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("SAMSA_REQUIRE_CLIENTS") != "" {
			t.Fatal("mounting a tmpfs needs root, and SAMSA_REQUIRE_CLIENTS is set")
		}
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func healthz(t *testing.T, b *brokerproc.Broker) string {
	t.Helper()
	addr := b.HTTPAddr()
	if addr == "" {
		t.Fatal("broker logged no HTTP listener")
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %s %v", resp.Status, err)
	}
	return string(body)
}

// TestStorageDiskFullBackPressure runs the broker on a 4 MiB tmpfs and
// fills it with franz-go: producers get KAFKA_STORAGE_ERROR, consumers
// keep reading every acknowledged record, /healthz reports the full dir,
// and after space is freed producing resumes without a restart. Nothing
// acknowledged is lost, also across a restart.
func TestStorageDiskFullBackPressure(t *testing.T) {
	dir := mountTmpfs(t, "4m")
	filler := filepath.Join(dir, "filler")
	fill := make([]byte, 2<<20)
	rand.Read(fill)
	if err := os.WriteFile(filler, fill, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := brokerproc.Options{Dir: dir, Overrides: []string{
		"metadata.log.dir=" + t.TempDir(), "log.segment.bytes=524288",
		"log.dir.full.check.interval.ms=100", "log.dir.full.resume.bytes=262144",
	}}
	b := brokerproc.Start(t, opts)
	t.Cleanup(func() { b.Kill() }) // before the unmount
	createTopic(t, b.Addr, "fill", nil)
	cl := brokerproc.NewClient(t, b.Addr, kgo.RecordRetries(0), kgo.DisableIdempotentWrite(), kgo.RecordDeliveryTimeout(5*time.Second))
	ctx := context.Background()
	var acked [][]byte
	var lastErr error
	for i := 0; i < 100 && lastErr == nil; i++ {
		v := make([]byte, 100_000)
		rand.Read(v)
		if lastErr = cl.ProduceSync(ctx, &kgo.Record{Topic: "fill", Value: v}).FirstErr(); lastErr == nil {
			acked = append(acked, v)
		}
	}
	if lastErr == nil || !strings.Contains(lastErr.Error(), kerr.KafkaStorageError.Message) {
		t.Fatalf("produce to a full disk: %v, want %v", lastErr, kerr.KafkaStorageError)
	}
	if len(acked) < 5 {
		t.Fatalf("disk full after %d records", len(acked))
	}
	checkValues(t, b.Addr, "fill", acked)
	if body := healthz(t, b); !strings.HasPrefix(body, "degraded\n") || !strings.Contains(body, " full ") {
		t.Fatalf("/healthz on a full disk:\n%s", body)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for body := healthz(t, b); !strings.HasPrefix(body, "ok\n"); body = healthz(t, b) {
		if time.Now().After(deadline) {
			t.Fatalf("log dir not back online:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := 0; i < 3; i++ {
		v := fmt.Appendf(nil, "after-%d", i)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "fill", Value: v}).FirstErr(); err != nil {
			t.Fatalf("produce after space was freed: %v", err)
		}
		acked = append(acked, v)
	}
	checkValues(t, b.Addr, "fill", acked)
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	b = brokerproc.Start(t, opts)
	checkValues(t, b.Addr, "fill", acked)
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
}
