// Package perf is the workload engine behind `samsa perf produce|consume`
// and cmd/samsabench: it drives a Kafka cluster with franz-go clients, the
// way Apache Kafka's kafka-producer-perf-test and kafka-consumer-perf-test
// do, and reports throughput and latency.
//
// It is a client of the cluster only (kgo/kadm), so the same workload runs
// against Samsa, Apache Kafka or franz-go's kfake.
package perf

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrConfig reports an invalid workload configuration.
var ErrConfig = errors.New("perf: invalid configuration")

// Latency summarizes latencies. Durations marshal to JSON as nanoseconds.
type Latency struct {
	Mean time.Duration `json:"mean_ns"`
	P50  time.Duration `json:"p50_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p999_ns"`
	Max  time.Duration `json:"max_ns"`
}

// Result is what a workload did.
type Result struct {
	Records       int64         `json:"records"`         // records acknowledged (produce) or received (consume)
	Bytes         int64         `json:"bytes"`           // value bytes of those records
	Errors        int64         `json:"errors"`          // records that failed (produce)
	Elapsed       time.Duration `json:"elapsed_ns"`      // first request to last acknowledgement or record
	RecordsPerSec float64       `json:"records_per_sec"` // Records / Elapsed
	MiBPerSec     float64       `json:"mib_per_sec"`     // Bytes / Elapsed in MiB (2^20 bytes)
	// Latency is, for produce, from the Produce call to the promise (the
	// acknowledgement, or the write for acks=0), like
	// kafka-producer-perf-test; for consume it is empty.
	Latency    Latency `json:"latency"`
	FirstError string  `json:"first_error,omitempty"`
}

func (r *Result) finish(elapsed time.Duration) {
	r.Elapsed = elapsed
	if s := elapsed.Seconds(); s > 0 {
		r.RecordsPerSec = float64(r.Records) / s
		r.MiBPerSec = float64(r.Bytes) / s / (1 << 20)
	}
}

// String is a one-line summary in the shape of Kafka's perf tools.
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d records in %s, %.1f records/s (%.2f MiB/s)", r.Records, r.Elapsed.Round(time.Millisecond), r.RecordsPerSec, r.MiBPerSec)
	if r.Latency.Max > 0 {
		fmt.Fprintf(&b, ", latency avg %s p50 %s p99 %s p99.9 %s max %s", ms(r.Latency.Mean), ms(r.Latency.P50), ms(r.Latency.P99), ms(r.Latency.P999), ms(r.Latency.Max))
	}
	if r.Errors > 0 {
		fmt.Fprintf(&b, ", %d errors (first: %s)", r.Errors, r.FirstError)
	}
	return b.String()
}

// ms renders a duration in milliseconds with three decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }

// ParseCompression maps a codec name (none, gzip, snappy, lz4, zstd) to kgo.
func ParseCompression(s string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(s) {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("%w: compression %q: want none, gzip, snappy, lz4 or zstd", ErrConfig, s)
}

// ensureTopic creates topic with partitions (0: broker default) unless it
// exists, and waits until its partitions' offsets can be listed. An
// existing topic is used as it is, whatever its partitions.
func ensureTopic(ctx context.Context, opts []kgo.Opt, topic string, partitions int32, rf int16) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if partitions <= 0 {
		partitions = -1
	}
	if rf == 0 {
		rf = -1
	}
	resp, err := adm.CreateTopic(ctx, partitions, rf, nil, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("perf: create topic %s: %w (%s)", topic, err, resp.ErrMessage)
	}
	// A topic just created may not have reached every broker's metadata
	// yet (Kafka's metadata is eventually consistent across brokers):
	// wait until its partitions' offsets can be listed.
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, _, err := listOffsets(ctx, opts, topic)
		if err == nil || !kerr.IsRetriable(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// payload is a value of size bytes of random upper-case letters, like
// kafka-producer-perf-test's, so compression has something to do.
func payload(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte('A' + rand.IntN(26))
	}
	return b
}
