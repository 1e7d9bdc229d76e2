package cli

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"samsa/internal/perf"
)

func newPerfCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "perf",
		Short: "Measure produce and consume throughput and latency",
		Long: `Load generators in the spirit of kafka-producer-perf-test and
kafka-consumer-perf-test, built on the same engine as cmd/samsabench.`,
	}
	cmd.AddCommand(newPerfProduceCommand(g), newPerfConsumeCommand(g))
	return cmd
}

func newPerfProduceCommand(g *globals) *cobra.Command {
	cfg := perf.ProduceConfig{}
	var acks string
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Produce fixed-size records as fast as the cluster acknowledges them",
		Long: `Produce --records values of --record-size bytes (random letters, no key) to
--topic, creating it with --partitions if it does not exist, from --producers
parallel clients, then print records/s, MiB/s and the per-record latency from
the Produce call to its acknowledgement (p50/p99/p99.9/max). With --duration
the run stops after that long (or at --records, whichever comes first).
Idempotent writes are off unless --idempotent (they need acks=all).`,
		Example: `  samsa perf produce --topic perf --records 1000000 --record-size 100 --partitions 8
  samsa perf produce --topic perf --duration 10s --acks 1 -z lz4 --linger 5ms --producers 4 --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Acks, err = parseAcks(acks); err != nil {
				return err
			}
			if cfg.Idempotent && cfg.Acks != -1 {
				return errors.New("--idempotent needs --acks all")
			}
			if cfg.ClientOpts, err = g.clientOpts(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(contextOrBackground(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := perf.Produce(ctx, cfg)
			if res.Records > 0 || err == nil {
				if perr := printPerfResult(cmd, g, res); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfg.Topic, "topic", "t", "samsa-perf", "topic to produce to (created if missing)")
	f.Int64VarP(&cfg.Records, "records", "n", 1_000_000, "records to produce (0: until --duration)")
	f.DurationVar(&cfg.Duration, "duration", 0, "stop after this long (0: until --records)")
	f.IntVarP(&cfg.RecordSize, "record-size", "s", 100, "value size in bytes")
	f.Int32VarP(&cfg.Partitions, "partitions", "p", 0, "partitions when creating the topic (0: broker default)")
	f.Int16VarP(&cfg.ReplicationFactor, "replicas", "r", 0, "replication factor when creating the topic (0: broker default)")
	f.StringVar(&acks, "acks", "all", "required acks: all (-1), 1 or 0")
	f.BoolVar(&cfg.Idempotent, "idempotent", false, "idempotent producer (acks=all only)")
	f.StringVarP(&cfg.Compression, "compression", "z", "none", "compression: none, gzip, snappy, lz4, zstd")
	f.DurationVar(&cfg.Linger, "linger", 0, "producer linger (0: franz-go's default, no linger)")
	f.Int32Var(&cfg.BatchMaxBytes, "batch-max-bytes", 0, "maximum bytes of a record batch (0: franz-go's default, ~1MB)")
	f.IntVar(&cfg.Producers, "producers", 1, "parallel producer clients")
	f.IntVar(&cfg.MaxBuffered, "max-buffered", 0, "records buffered per client before Produce blocks (0: franz-go's default, 10000)")
	return cmd
}

func newPerfConsumeCommand(g *globals) *cobra.Command {
	cfg := perf.ConsumeConfig{}
	cmd := &cobra.Command{
		Use:   "consume",
		Short: "Read a topic from the start as fast as possible",
		Long: `Read --topic from the log start offset of every partition, partitions spread
round-robin over --consumers clients (direct assignment, no consumer group),
until --records records (0: everything below the high watermarks at start),
then print records/s and MiB/s (value bytes).`,
		Example: `  samsa perf consume --topic perf
  samsa perf consume --topic perf --records 500000 --consumers 4 --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.ClientOpts, err = g.clientOpts(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(contextOrBackground(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := perf.Consume(ctx, cfg)
			if res.Records > 0 || err == nil {
				if perr := printPerfResult(cmd, g, res); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfg.Topic, "topic", "t", "samsa-perf", "topic to read")
	f.Int64VarP(&cfg.Records, "records", "n", 0, "records to read (0: up to the high watermarks at start)")
	f.IntVar(&cfg.Consumers, "consumers", 1, "parallel consumer clients")
	f.Int32Var(&cfg.FetchMaxBytes, "fetch-max-bytes", 0, "maximum bytes per fetch response (0: franz-go's default, 50MiB)")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", 10*time.Second, "give up after this long without a record")
	return cmd
}

func printPerfResult(cmd *cobra.Command, g *globals, res perf.Result) error {
	w := out(cmd)
	if g.json() {
		return writeJSON(w, res)
	}
	t := newTable(w)
	t.row("RECORDS", res.Records)
	t.row("ELAPSED", res.Elapsed.Round(time.Millisecond))
	t.row("RECORDS/S", fmt.Sprintf("%.1f", res.RecordsPerSec))
	t.row("MIB/S", fmt.Sprintf("%.2f", res.MiBPerSec))
	if res.Latency.Max > 0 {
		t.row("LATENCY-AVG", msCell(res.Latency.Mean))
		t.row("LATENCY-P50", msCell(res.Latency.P50))
		t.row("LATENCY-P99", msCell(res.Latency.P99))
		t.row("LATENCY-P99.9", msCell(res.Latency.P999))
		t.row("LATENCY-MAX", msCell(res.Latency.Max))
	}
	if res.Errors > 0 {
		t.row("ERRORS", res.Errors)
		t.row("FIRST-ERROR", res.FirstError)
	}
	t.flush()
	return nil
}

func msCell(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}
