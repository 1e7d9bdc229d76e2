package perf

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceConfig describes a produce workload. At least one of Records and
// Duration must be set; the workload stops at whichever comes first.
type ProduceConfig struct {
	Topic      string
	Records    int64         // records to produce; 0: until Duration
	Duration   time.Duration // stop issuing records after this long; 0: until Records
	RecordSize int           // value bytes per record (no key)

	// Partitions and ReplicationFactor are used to create Topic when it
	// does not exist; 0 means the broker's default.
	Partitions        int32
	ReplicationFactor int16

	Acks          int           // -1 (all), 0 or 1
	Idempotent    bool          // idempotent producer; only with Acks -1
	Compression   string        // none, gzip, snappy, lz4, zstd
	Linger        time.Duration // kgo ProducerLinger; 0: kgo's default
	BatchMaxBytes int32         // kgo ProducerBatchMaxBytes; 0: kgo's default
	Producers     int           // parallel kgo clients; 0 means 1
	MaxBuffered   int           // records buffered per client; 0: kgo's default

	// ClientOpts are added to every client: at least kgo.SeedBrokers,
	// possibly kgo.MaxVersions.
	ClientOpts []kgo.Opt
}

func (c *ProduceConfig) check() error {
	switch {
	case c.Topic == "":
		return fmt.Errorf("%w: no topic", ErrConfig)
	case c.Records <= 0 && c.Duration <= 0:
		return fmt.Errorf("%w: set a record count or a duration", ErrConfig)
	case c.RecordSize < 0:
		return fmt.Errorf("%w: record size %d", ErrConfig, c.RecordSize)
	case c.Acks != -1 && c.Acks != 0 && c.Acks != 1:
		return fmt.Errorf("%w: acks %d: want -1, 0 or 1", ErrConfig, c.Acks)
	case c.Producers < 0:
		return fmt.Errorf("%w: producers %d", ErrConfig, c.Producers)
	}
	return nil
}

func (c *ProduceConfig) clientOpts() ([]kgo.Opt, error) {
	opts := append([]kgo.Opt{kgo.DefaultProduceTopic(c.Topic)}, c.ClientOpts...)
	switch c.Acks {
	case -1:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
		if !c.Idempotent {
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
	case 1:
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case 0:
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	}
	codec, err := ParseCompression(c.Compression)
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	if c.Linger > 0 {
		opts = append(opts, kgo.ProducerLinger(c.Linger))
	}
	if c.BatchMaxBytes > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(c.BatchMaxBytes))
	}
	if c.MaxBuffered > 0 {
		opts = append(opts, kgo.MaxBufferedRecords(c.MaxBuffered))
	}
	return opts, nil
}

// Produce runs a produce workload: Producers clients produce RecordSize-byte
// values to Topic (created if missing) as fast as acknowledgements allow,
// and the result counts what was acknowledged. Cancelling ctx stops the
// workload; the partial result is returned with ctx's error.
func Produce(ctx context.Context, cfg ProduceConfig) (Result, error) {
	if err := cfg.check(); err != nil {
		return Result{}, err
	}
	opts, err := cfg.clientOpts()
	if err != nil {
		return Result{}, err
	}
	if err := ensureTopic(ctx, cfg.ClientOpts, cfg.Topic, cfg.Partitions, cfg.ReplicationFactor); err != nil {
		return Result{}, err
	}
	n := max(cfg.Producers, 1)
	clients := make([]*kgo.Client, 0, n)
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	for range n {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return Result{}, err
		}
		clients = append(clients, cl)
	}
	// Learn the topic's leaders before the clock starts, so a new topic's
	// metadata round trips are not counted as latency.
	for _, cl := range clients {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: cfg.Topic, Value: payload(cfg.RecordSize)}).FirstErr(); err != nil {
			return Result{}, fmt.Errorf("perf: warm-up record: %w", err)
		}
	}

	value := payload(cfg.RecordSize)
	var (
		hist       histogram
		issued     atomic.Int64
		acked      atomic.Int64
		failed     atomic.Int64
		errMu      sync.Mutex
		firstErr   string       // guarded by errMu
		lastAck    atomic.Int64 // Unix ns of the latest promise
		wg         sync.WaitGroup
		began      = time.Now()
		deadline   time.Time
		flushErrMu sync.Mutex
		flushErr   error
	)
	if cfg.Duration > 0 {
		deadline = began.Add(cfg.Duration)
	}
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if !deadline.IsZero() && time.Now().After(deadline) {
					break
				}
				if i := issued.Add(1); cfg.Records > 0 && i > cfg.Records {
					break
				}
				start := time.Now()
				cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
					now := time.Now()
					lastAck.Store(now.UnixNano())
					if err != nil {
						failed.Add(1)
						errMu.Lock()
						if firstErr == "" {
							firstErr = err.Error()
						}
						errMu.Unlock()
						return
					}
					acked.Add(1)
					hist.record(now.Sub(start))
				})
			}
			if err := cl.Flush(ctx); err != nil {
				flushErrMu.Lock()
				flushErr = err
				flushErrMu.Unlock()
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	if la := lastAck.Load(); la > 0 {
		end = time.Unix(0, la)
	}
	errMu.Lock()
	res := Result{
		Records:    acked.Load(),
		Bytes:      acked.Load() * int64(cfg.RecordSize),
		Errors:     failed.Load(),
		Latency:    hist.summary(),
		FirstError: firstErr,
	}
	errMu.Unlock()
	res.finish(end.Sub(began))
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, flushErr
}
