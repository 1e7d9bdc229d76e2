package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestReassignThrottleMeasured runs the built binary: 3 nodes, a
// partition of 48 MiB (uncompressible) on node 1 moved to node 2 with
// `samsa cluster reassign --execute --throttle 8388608` (8 MiB/s). The
// move must take at least half of size/rate (no timed upper bound on a
// shared machine; the measured rate is logged, `make bench-reassign`
// reports it precisely), and `--verify` then clears the throttle.
func TestReassignThrottleMeasured(t *testing.T) {
	const (
		size = 48 << 20
		rate = 8 << 20
	)
	c := startRFCluster(t, 3, 0)
	seeds := c.Bootstrap()
	ctx := ctxFor(t, 120*time.Second)
	const topic = "throttled"
	createTopic(t, seeds[0], topic, 1, [][]int32{{1}}, nil)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for sent := 0; sent < size; {
		var rs []*kgo.Record
		for range 16 {
			v := make([]byte, 64<<10)
			_, _ = rand.Read(v)
			rs = append(rs, &kgo.Record{Partition: 0, Value: v})
			sent += len(v)
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	plan := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(plan, []byte(`{"version":1,"partitions":[{"topic":"throttled","partition":0,"replicas":[2]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	bootstrap := strings.Join(seeds, ",")
	start := time.Now()
	r := runSamsa(t, "-X", bootstrap, "cluster", "reassign", "--execute", "-f", plan, "--throttle", "8388608")
	if r.exitCode != 0 || !strings.Contains(r.stdout, "The inter-broker throttle limit was set to 8388608 B/s on brokers 1,2") {
		t.Fatalf("execute: exit %d\n%s\n%s", r.exitCode, r.stdout, r.stderr)
	}
	eventually(t, 90*time.Second, func(ctx context.Context) error {
		req := kmsg.NewPtrListPartitionReassignmentsRequest()
		req.TimeoutMillis = 5000
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		if len(resp.Topics) > 0 {
			return errMoving
		}
		return nil
	})
	took := time.Since(start)
	t.Logf("moved %d MiB at --throttle 8 MiB/s in %v: %.2f MiB/s", size>>20, took.Round(time.Millisecond), float64(size)/took.Seconds()/(1<<20))
	if minTook := time.Duration(float64(size) / rate * 0.5 * float64(time.Second)); took < minTook {
		t.Fatalf("the move took %v, under %v: not throttled", took, minTook)
	}
	r = runSamsa(t, "-X", bootstrap, "cluster", "reassign", "--verify", "-f", plan)
	if r.exitCode != 0 || !strings.Contains(r.stdout, "Clearing broker-level throttles on brokers 1,2,3") || !strings.Contains(r.stdout, "Clearing topic-level throttles on topics throttled") {
		t.Fatalf("verify: exit %d\n%s\n%s", r.exitCode, r.stdout, r.stderr)
	}
}

// errMoving: the move is still listed.
var errMoving = errors.New("the move is still listed")
