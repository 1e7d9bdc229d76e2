package perf

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestEndToEndReceivesEveryRecordAtTheRate(t *testing.T) {
	opts := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := EndToEnd(ctx, EndToEndConfig{
		Topic: "perf-e2e", Rate: 2000, Duration: 500 * time.Millisecond, RecordSize: 64,
		Partitions: 3, Acks: -1, ClientOpts: opts,
	})
	if err != nil {
		t.Fatal(err)
	}
	// 2000 records/s for 0.5 s: records 0..999, every one received once.
	if res.Records != 1000 || res.Errors != 0 || res.Bytes != 1000*64 {
		t.Fatalf("end-to-end result = %+v", res)
	}
	l := res.Latency
	if l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.Max || l.Max > 10*time.Second {
		t.Errorf("implausible latencies %+v", l)
	}
	// The producer is paced: 1000 records take about 0.5 s, not less.
	if res.Elapsed < 450*time.Millisecond {
		t.Errorf("elapsed %s: the rate was not held", res.Elapsed)
	}
}

func TestEndToEndConfigErrors(t *testing.T) {
	for _, cfg := range []EndToEndConfig{
		{Rate: 10, Duration: time.Second, RecordSize: 8},
		{Topic: "t", Duration: time.Second, RecordSize: 8},
		{Topic: "t", Rate: 10, RecordSize: 8},
		{Topic: "t", Rate: 10, Duration: time.Second, RecordSize: 7},
		{Topic: "t", Rate: 10, Duration: time.Second, RecordSize: 8, Acks: 2},
	} {
		if _, err := EndToEnd(context.Background(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err = %v, want ErrConfig", cfg, err)
		}
	}
}
