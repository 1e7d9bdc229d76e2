package perf

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func TestProduceConsumeMovesRecords(t *testing.T) {
	opts := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		cfg  ProduceConfig
	}{
		{"acks-all", ProduceConfig{Records: 3000, RecordSize: 100, Partitions: 3, Acks: -1, Producers: 2}},
		{"acks-all-idempotent", ProduceConfig{Records: 1000, RecordSize: 100, Partitions: 2, Acks: -1, Idempotent: true}},
		{"acks-1-lz4-linger", ProduceConfig{Records: 2000, RecordSize: 1024, Partitions: 1, Acks: 1, Compression: "lz4", Linger: time.Millisecond}},
		{"acks-0", ProduceConfig{Records: 1000, RecordSize: 10, Partitions: 2, Acks: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Topic = "perf-" + tc.name
			cfg.ClientOpts = opts
			res, err := Produce(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Records != cfg.Records || res.Bytes != cfg.Records*int64(cfg.RecordSize) || res.Errors != 0 {
				t.Fatalf("produce result = %+v", res)
			}
			l := res.Latency
			if res.RecordsPerSec <= 0 || res.MiBPerSec <= 0 || res.Elapsed <= 0 ||
				l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max || l.Mean > l.Max {
				t.Errorf("implausible produce result %+v", res)
			}
			// Everything below the high watermark: the records plus one
			// warm-up record per producer.
			want := cfg.Records + int64(max(cfg.Producers, 1))
			cres, err := Consume(ctx, ConsumeConfig{Topic: cfg.Topic, Consumers: 2, ClientOpts: opts})
			if err != nil {
				t.Fatal(err)
			}
			if cres.Records != want || cres.RecordsPerSec <= 0 || cres.Bytes < cfg.Records*int64(cfg.RecordSize) {
				t.Errorf("consume result = %+v, want %d records", cres, want)
			}
			cres, err = Consume(ctx, ConsumeConfig{Topic: cfg.Topic, Records: 10, ClientOpts: opts})
			if err != nil || cres.Records < 10 {
				t.Errorf("consume of 10: %+v, %v", cres, err)
			}
		})
	}
}

func TestProduceDuration(t *testing.T) {
	opts := startNode(t)
	res, err := Produce(context.Background(), ProduceConfig{Topic: "d", Duration: 200 * time.Millisecond, RecordSize: 10, Acks: 1, ClientOpts: opts})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records == 0 {
		t.Errorf("nothing produced in 200ms: %+v", res)
	}
}

func TestConsumeIdleTimeout(t *testing.T) {
	opts := startNode(t)
	if _, err := Produce(context.Background(), ProduceConfig{Topic: "short", Records: 5, Acks: 1, ClientOpts: opts}); err != nil {
		t.Fatal(err)
	}
	res, err := Consume(context.Background(), ConsumeConfig{Topic: "short", Records: 100, IdleTimeout: 300 * time.Millisecond, ClientOpts: opts})
	if !errors.Is(err, ErrTimeout) || res.Records != 6 {
		t.Errorf("consume past the end: %+v, %v", res, err)
	}
}

func TestProduceConfigErrors(t *testing.T) {
	for _, cfg := range []ProduceConfig{
		{Records: 1},
		{Topic: "t"},
		{Topic: "t", Records: 1, Acks: 2},
		{Topic: "t", Records: 1, RecordSize: -1},
		{Topic: "t", Records: 1, Compression: "brotli"},
	} {
		if _, err := Produce(context.Background(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("Produce(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	// 1µs .. 10ms uniformly, shuffled.
	vals := make([]time.Duration, 10000)
	for i := range vals {
		vals[i] = time.Duration(i+1) * time.Microsecond
	}
	rand.Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
	for _, v := range vals {
		h.record(v)
	}
	s := h.summary()
	for _, tc := range []struct {
		name      string
		got, want time.Duration
	}{
		{"p50", s.P50, 5000 * time.Microsecond},
		{"p99", s.P99, 9900 * time.Microsecond},
		{"p999", s.P999, 9990 * time.Microsecond},
		{"mean", s.Mean, 5000 * time.Microsecond},
	} {
		if d := float64(tc.got-tc.want) / float64(tc.want); d > 0.035 || d < -0.035 {
			t.Errorf("%s = %s, want %s ±3.5%%", tc.name, tc.got, tc.want)
		}
	}
	if s.Max != 10*time.Millisecond {
		t.Errorf("max = %s", s.Max)
	}
	var empty histogram
	if empty.summary() != (Latency{}) {
		t.Error("empty histogram has a summary")
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Buckets are monotonic and every value lies within ~3% of its
	// bucket's middle.
	prev := -1
	for _, v := range []int64{0, 1, 63, 64, 65, 127, 128, 1000, 1 << 20, 1<<40 + 12345, 1<<62 + 1, 1<<63 - 1} {
		b := bucketOf(v)
		if b < prev || b >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d after %d", v, b, prev)
		}
		prev = b
		mid := bucketMid(b)
		if v > 0 {
			if d := float64(mid-v) / float64(v); d > 0.032 || d < -0.032 {
				t.Errorf("value %d in bucket %d with middle %d", v, b, mid)
			}
		}
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h histogram
	b.ReportAllocs()
	b.SetBytes(8)
	for i := 0; b.Loop(); i++ {
		h.record(time.Duration(i&0xfffff) * time.Nanosecond)
	}
}
