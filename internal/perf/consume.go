package perf

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrTimeout reports a consume workload that stopped receiving records
// before it had all it wanted.
var ErrTimeout = errors.New("perf: no progress before the idle timeout")

// ConsumeConfig describes a consume workload. There are no consumer groups:
// partitions are assigned directly (kgo.ConsumePartitions), round-robin
// over Consumers clients, each reading from the log start offset.
type ConsumeConfig struct {
	Topic string
	// Records to consume; 0 means everything below the high watermarks
	// seen when the workload starts.
	Records       int64
	Consumers     int           // parallel kgo clients; 0 means 1
	FetchMaxBytes int32         // kgo FetchMaxBytes; 0: kgo's default
	IdleTimeout   time.Duration // give up after this long without a record; 0: 10s
	ClientOpts    []kgo.Opt     // at least kgo.SeedBrokers
}

// Consume runs a consume workload and reports what was received. Bytes
// count record values.
func Consume(ctx context.Context, cfg ConsumeConfig) (Result, error) {
	if cfg.Topic == "" {
		return Result{}, fmt.Errorf("%w: no topic", ErrConfig)
	}
	if cfg.Records < 0 || cfg.Consumers < 0 {
		return Result{}, fmt.Errorf("%w: negative records or consumers", ErrConfig)
	}
	idle := cfg.IdleTimeout
	if idle <= 0 {
		idle = 10 * time.Second
	}
	starts, ends, err := listOffsets(ctx, cfg.ClientOpts, cfg.Topic)
	if err != nil {
		return Result{}, err
	}
	parts := make([]int32, 0, len(starts))
	var available int64
	for p, so := range starts {
		parts = append(parts, p)
		available += max(ends[p]-so, 0)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	want := cfg.Records
	if want == 0 {
		want = available
	}
	if want == 0 {
		return Result{}, nil
	}

	n := min(max(cfg.Consumers, 1), len(parts))
	assign := make([]map[int32]kgo.Offset, n)
	for i, p := range parts {
		if assign[i%n] == nil {
			assign[i%n] = map[int32]kgo.Offset{}
		}
		assign[i%n][p] = kgo.NewOffset().At(starts[p])
	}
	var clients []*kgo.Client
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	for _, a := range assign {
		opts := append([]kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: a})}, cfg.ClientOpts...)
		if cfg.FetchMaxBytes > 0 {
			opts = append(opts, kgo.FetchMaxBytes(cfg.FetchMaxBytes))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return Result{}, err
		}
		clients = append(clients, cl)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		records, bytes atomic.Int64
		lastRecord     atomic.Int64 // Unix ns of the latest record received
		wg             sync.WaitGroup
		began          = time.Now()
	)
	lastRecord.Store(began.UnixNano())
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				var nr, nb int64
				fs.EachRecord(func(r *kgo.Record) {
					nr++
					nb += int64(len(r.Value))
				})
				if nr == 0 {
					continue
				}
				lastRecord.Store(time.Now().UnixNano())
				bytes.Add(nb)
				if records.Add(nr) >= want {
					cancel()
				}
			}
		}()
	}
	// The watchdog stops everything when no record arrived for idle.
	timedOut := false
	watch := time.NewTicker(min(idle/4, 250*time.Millisecond))
	defer watch.Stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-watch.C:
			if time.Since(time.Unix(0, lastRecord.Load())) > idle {
				timedOut = true
				cancel()
			}
		}
	}
	res := Result{Records: records.Load(), Bytes: bytes.Load()}
	res.finish(time.Unix(0, lastRecord.Load()).Sub(began))
	switch {
	case res.Records >= want:
		return res, nil
	case timedOut:
		return res, fmt.Errorf("%w: %d of %d records after %s idle", ErrTimeout, res.Records, want, idle)
	}
	return res, context.Cause(ctx)
}

// listOffsets returns each partition's log start offset and high
// watermark.
func listOffsets(ctx context.Context, opts []kgo.Opt, topic string) (starts, ends map[int32]int64, err error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	so, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	eo, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	starts, ends = map[int32]int64{}, map[int32]int64{}
	var firstErr error
	so.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			firstErr = cmpErr(firstErr, fmt.Errorf("perf: list offsets of %s/%d: %w", topic, o.Partition, o.Err))
			return
		}
		starts[o.Partition] = o.Offset
	})
	eo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			firstErr = cmpErr(firstErr, fmt.Errorf("perf: list offsets of %s/%d: %w", topic, o.Partition, o.Err))
			return
		}
		ends[o.Partition] = o.Offset
	})
	if firstErr != nil {
		return nil, nil, firstErr
	}
	if len(starts) == 0 {
		return nil, nil, fmt.Errorf("perf: topic %s has no partitions: %w", topic, kerr.UnknownTopicOrPartition)
	}
	return starts, ends, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
