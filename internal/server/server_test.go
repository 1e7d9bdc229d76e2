package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
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

	"samsa/internal/server"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func start(t *testing.T, dir string, extra ...string) *server.Server {
	t.Helper()
	ov := append([]string{
		"listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"log.dirs=" + dir, "http.listener=",
	}, extra...)
	s, err := server.Start(context.Background(), server.Options{Overrides: ov, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func client(t *testing.T, s *server.Server, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.KafkaAddr())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(t *testing.T, cl *kgo.Client, topic string, n int, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for i := 0; i < n; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func consumeAll(t *testing.T, addr, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(got), want, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch error: %v", err) })
		got = append(got, fs.Records()...)
	}
	return got
}

func TestServerRestartKeepsTopicsAndRecords(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	adm := kadm.NewClient(client(t, s))
	ctx := context.Background()
	if _, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"segment.bytes": kadm.StringPtr("1024")}, "keep"); err != nil {
		t.Fatal(err)
	}
	pcl := client(t, s)
	for round := 0; round < 3; round++ {
		produce(t, pcl, "keep", 100, fmt.Sprintf("v%d", round))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mp, err := os.ReadFile(filepath.Join(dir, "meta.properties"))
	if err != nil || !strings.Contains(string(mp), "node.id=1") || !strings.Contains(string(mp), "cluster.id=") {
		t.Fatalf("meta.properties: %q %v", mp, err)
	}

	s2 := start(t, dir)
	defer s2.Close()
	got := consumeAll(t, s2.KafkaAddr(), "keep", 300)
	if len(got) != 300 {
		t.Fatalf("got %d records after restart", len(got))
	}
	seen := map[string]bool{}
	for _, r := range got {
		seen[string(r.Value)] = true
	}
	for i := 0; i < 300; i++ {
		if !seen[fmt.Sprintf("v%d-%d", i/100, i%100)] {
			t.Fatalf("record %d missing after restart", i)
		}
	}
	td, err := kadm.NewClient(client(t, s2)).ListTopics(ctx, "keep")
	if err != nil || td["keep"].Err != nil || len(td["keep"].Partitions) != 3 {
		t.Fatalf("topic after restart: %+v %v", td["keep"], err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "keep-*", "*.log"))
	if len(segs) <= 3 {
		t.Fatalf("segment.bytes=1024 should have rolled segments, found %d", len(segs))
	}
}

func TestServerKRaftCombinedFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "server.properties")
	props := `process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:0
listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
log.dirs=` + filepath.Join(dir, "logs") + `
num.partitions=2
offsets.topic.replication.factor=1
log.retention.hours=168
http.listener=
`
	if err := os.WriteFile(file, []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := server.Start(context.Background(), server.Options{ConfigFile: file, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	produceAuto := client(t, s, kgo.AllowAutoTopicCreation())
	produce(t, produceAuto, "auto", 10, "x")
	td, err := kadm.NewClient(client(t, s)).ListTopics(context.Background(), "auto")
	if err != nil || len(td["auto"].Partitions) != 2 {
		t.Fatalf("auto-created topic should have num.partitions=2: %+v %v", td["auto"], err)
	}
}

func TestServerRejectsBadConfig(t *testing.T) {
	for _, ov := range [][]string{
		{"num.partitions=x"},
		{"process.roles=broker"},
		{"controller.quorum.voters=2@127.0.0.1:1"},               // does not list this controller
		{"controller.quorum.voters=1@127.0.0.1:0,2@127.0.0.1:2"}, // several voters, no CONTROLLER listener
	} {
		_, err := server.Start(context.Background(), server.Options{Overrides: append(ov, "log.dirs="+t.TempDir(), "listeners=PLAINTEXT://127.0.0.1:0"), Logger: quiet})
		if err == nil {
			t.Errorf("%v: started", ov)
		}
	}
}

func TestServerRefusesOtherNodesData(t *testing.T) {
	dir := t.TempDir()
	start(t, dir).Close()
	_, err := server.Start(context.Background(), server.Options{Overrides: []string{"node.id=2", "log.dirs=" + dir, "listeners=PLAINTEXT://127.0.0.1:0", "http.listener="}, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "node.id") {
		t.Fatalf("started on another node's data: %v", err)
	}
}

// TestServerDiskFullBackPressure fills a small tmpfs: produces get
// KAFKA_STORAGE_ERROR, fetches of the stored records keep working,
// /healthz and samsa_log_dir_state report the full dir, and once space is
// freed produces resume without a restart. Every acknowledged record is
// read back. CI runs as root and must not skip it.
func TestServerDiskFullBackPressure(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("SAMSA_REQUIRE_CLIENTS") != "" {
			t.Fatal("mounting a tmpfs needs root, and SAMSA_REQUIRE_CLIENTS is set")
		}
		t.Skip("needs root to mount a tmpfs")
	}
	small := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Fatalf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", small).Run() })
	filler := filepath.Join(small, "filler")
	fill := make([]byte, 1<<20)
	rand.Read(fill)
	if err := os.WriteFile(filler, fill, 0o644); err != nil {
		t.Fatal(err)
	}
	meta := t.TempDir()
	s := start(t, meta, "log.dirs="+small, "metadata.log.dir="+meta, "log.segment.bytes=524288", "log.index.size.max.bytes=4096",
		"http.listener=127.0.0.1:0", "log.dir.full.check.interval.ms=50", "log.dir.full.resume.bytes=262144")
	t.Cleanup(func() { s.Close() }) // before the unmount
	adm := kadm.NewClient(client(t, s))
	ctx := context.Background()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "fill"); err != nil {
		t.Fatal(err)
	}
	cl := client(t, s, kgo.RecordRetries(0), kgo.DisableIdempotentWrite(), kgo.RecordDeliveryTimeout(5*time.Second))
	var acked [][]byte
	var lastErr error
	for i := 0; i < 60 && lastErr == nil; i++ {
		v := make([]byte, 100_000)
		rand.Read(v) // incompressible: the producer compresses by default
		if lastErr = cl.ProduceSync(ctx, &kgo.Record{Topic: "fill", Value: v}).FirstErr(); lastErr == nil {
			acked = append(acked, v)
		}
	}
	if lastErr == nil || !strings.Contains(lastErr.Error(), kerr.KafkaStorageError.Message) {
		t.Fatalf("disk full produced %v, want %v", lastErr, kerr.KafkaStorageError)
	}
	// Reads go on.
	consumeValues(t, s, "fill", acked)
	if body := healthz(t, s); !strings.HasPrefix(body, "degraded\n") || !strings.Contains(body, " full ") {
		t.Fatalf("/healthz with a full disk:\n%s", body)
	}
	mfs := scrape(t, s)
	if v := mustValue(t, mfs, "samsa_log_dir_state", "dir", small, "state", "full"); v != 1 {
		t.Fatalf("samsa_log_dir_state{state=full} = %v", v)
	}

	// Free space: appends resume by themselves.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for body := healthz(t, s); !strings.HasPrefix(body, "ok\n"); body = healthz(t, s) {
		if time.Now().After(deadline) {
			t.Fatalf("log dir not back online:\n%s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 3; i++ {
		v := []byte(fmt.Sprintf("after-%d", i))
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "fill", Value: v}).FirstErr(); err != nil {
			t.Fatalf("produce after space was freed: %v", err)
		}
		acked = append(acked, v)
	}
	consumeValues(t, s, "fill", acked)
}

// healthz returns the body of GET /healthz, which must answer 200.
func healthz(t *testing.T, s *server.Server) string {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + s.HTTPAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %s %v", resp.Status, err)
	}
	return string(b)
}

// consumeValues reads partition 0 of topic from the start and compares
// the record values with want.
func consumeValues(t *testing.T, s *server.Server, topic string, want [][]byte) {
	t.Helper()
	cl := client(t, s, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got [][]byte
	for len(got) < len(want) {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(got), len(want), err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r.Value) })
	}
	if len(got) != len(want) {
		t.Fatalf("consumed %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d differs (%d bytes, want %d)", i, len(got[i]), len(want[i]))
		}
	}
}
