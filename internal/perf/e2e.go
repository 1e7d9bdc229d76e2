package perf

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// EndToEndConfig describes an end-to-end latency workload: one producer
// sends Rate records per second for Duration while one consumer reads
// the topic from its end; each record's latency is the time it was
// received minus the time it was handed to the producer.
type EndToEndConfig struct {
	Topic      string
	Rate       int           // records per second the producer issues
	Duration   time.Duration // how long the producer issues records
	RecordSize int           // value bytes per record, at least 8 (the send time)

	// Partitions and ReplicationFactor are used to create Topic when it
	// does not exist; 0 means the broker's default.
	Partitions        int32
	ReplicationFactor int16
	Acks              int       // -1 (all), 0 or 1
	ClientOpts        []kgo.Opt // at least kgo.SeedBrokers
}

// EndToEnd runs an end-to-end latency workload. The result's Records are
// the records received, its Latency the send-to-receive latencies, and
// Errors the records whose produce failed. Sender and receiver are in
// this process, so one clock measures both ends.
func EndToEnd(ctx context.Context, cfg EndToEndConfig) (Result, error) {
	switch {
	case cfg.Topic == "":
		return Result{}, fmt.Errorf("%w: no topic", ErrConfig)
	case cfg.Rate <= 0 || cfg.Duration <= 0:
		return Result{}, fmt.Errorf("%w: end-to-end needs a rate and a duration", ErrConfig)
	case cfg.RecordSize < 8:
		return Result{}, fmt.Errorf("%w: record size %d: end-to-end needs at least 8 bytes", ErrConfig, cfg.RecordSize)
	}
	pc := ProduceConfig{Topic: cfg.Topic, Duration: cfg.Duration, RecordSize: cfg.RecordSize, Acks: cfg.Acks, ClientOpts: cfg.ClientOpts}
	if err := pc.check(); err != nil {
		return Result{}, err
	}
	popts, err := pc.clientOpts()
	if err != nil {
		return Result{}, err
	}
	if err := ensureTopic(ctx, cfg.ClientOpts, cfg.Topic, cfg.Partitions, cfg.ReplicationFactor); err != nil {
		return Result{}, err
	}
	if err := warmPartitions(ctx, popts, cfg.Topic, cfg.RecordSize); err != nil {
		return Result{}, err
	}
	// No linger, as Kafka's EndToEndLatency tool: a record waits only for
	// the produce request in flight before it (kgo's default linger is
	// 10 ms, which would be most of the latency measured).
	prod, err := kgo.NewClient(append(popts, kgo.ProducerLinger(0))...)
	if err != nil {
		return Result{}, err
	}
	defer prod.Close()
	// The warm-up record learns the leaders before the clock starts.
	// Its send time is 0, so a receiver that sees it skips it.
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: make([]byte, cfg.RecordSize)}).FirstErr(); err != nil {
		return Result{}, fmt.Errorf("perf: warm-up record: %w", err)
	}
	// The consumer starts at the high watermarks listed now, after the
	// warm-up: every timed record is above them, and none is missed while
	// a reset to the end would still be resolving.
	_, ends, err := listOffsets(ctx, cfg.ClientOpts, cfg.Topic)
	if err != nil {
		return Result{}, err
	}
	at := make(map[int32]kgo.Offset, len(ends))
	for p, o := range ends {
		at[p] = kgo.NewOffset().At(o)
	}
	cons, err := kgo.NewClient(append([]kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: at}),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}, cfg.ClientOpts...)...)
	if err != nil {
		return Result{}, err
	}
	defer cons.Close()

	var (
		hist     histogram
		sent     atomic.Int64
		failed   atomic.Int64
		errMu    sync.Mutex
		firstErr string // guarded by errMu
	)
	received := make(chan int64, 1)
	recvCtx, stopRecv := context.WithCancel(ctx)
	defer stopRecv()
	go func() {
		var n int64
		defer func() { received <- n }()
		for recvCtx.Err() == nil {
			fs := cons.PollFetches(recvCtx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				if len(r.Value) < 8 {
					return
				}
				sentAt := int64(binary.BigEndian.Uint64(r.Value))
				if sentAt <= 0 { // the warm-up record
					return
				}
				hist.record(now.Sub(time.Unix(0, sentAt)))
				n++
			})
		}
	}()

	interval := time.Second / time.Duration(cfg.Rate)
	began := time.Now()
	template := payload(cfg.RecordSize)
	for i := int64(0); ctx.Err() == nil; i++ {
		next := began.Add(time.Duration(i) * interval)
		if next.Sub(began) >= cfg.Duration {
			break
		}
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		value := make([]byte, cfg.RecordSize)
		copy(value, template)
		binary.BigEndian.PutUint64(value, uint64(time.Now().UnixNano()))
		sent.Add(1)
		prod.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
				errMu.Lock()
				if firstErr == "" {
					firstErr = err.Error()
				}
				errMu.Unlock()
			}
		})
	}
	flushErr := prod.Flush(ctx)
	// Wait for the stragglers: every acknowledged record, or 5 s.
	want := sent.Load() - failed.Load()
	wait := time.NewTimer(5 * time.Second)
	defer wait.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
wait:
	for hist.n.Load() < want {
		select {
		case <-wait.C:
			break wait
		case <-tick.C:
		case <-ctx.Done():
			break wait
		}
	}
	elapsed := time.Since(began)
	stopRecv()
	n := <-received
	errMu.Lock()
	res := Result{Records: n, Bytes: n * int64(cfg.RecordSize), Errors: failed.Load(), Latency: hist.summary(), FirstError: firstErr}
	errMu.Unlock()
	res.finish(elapsed)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if flushErr != nil {
		return res, flushErr
	}
	if n < want {
		return res, fmt.Errorf("%w: received %d of %d acknowledged records", ErrTimeout, n, want)
	}
	return res, nil
}

// warmPartitions produces one record (send time 0, so receivers skip
// it) to every partition of topic and waits for each acknowledgement.
// A partition just created needs its followers to start fetching before
// an acks=all produce can complete (up to replica.fetch.wait.max.ms for a
// fetcher already in a long poll), and the consumer to find its leader:
// without this the first timed records of each partition measured that
// set-up, about a second, rather than the path they travel later.
func warmPartitions(ctx context.Context, popts []kgo.Opt, topic string, size int) error {
	_, ends, err := listOffsets(ctx, popts, topic)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(slices.Clip(popts), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	recs := make([]*kgo.Record, 0, len(ends))
	for p := range ends {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: make([]byte, size)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("perf: warm-up records: %w", err)
	}
	return nil
}
