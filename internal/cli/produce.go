package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"samsa/internal/perf"
)

func newTopicProduceCommand(g *globals) *cobra.Command {
	var (
		key         string
		headers     []string
		partition   int32
		format      string
		keyDelim    string
		acks        string
		compression string
		verbose     bool
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce records read from stdin, one per line by default",
		Long: `Produce records read from stdin. By default each line is one record value.

-f sets a kcat-style input format: %k key, %v value (%s alias), %h headers as
k1=v1,k2=v2, %T timestamp in ms, %p partition, with \n \t \r \\ %% escapes.
Each verb must be followed by the literal text that ends it; a verb at the very
end of the format reads to the end of input. --key-delim D is short for
-f '%kD%v\n'. -k and -H apply to every record (a %k in the format wins over -k).

The count of produced records is printed to stderr; -v prints each record's
partition and offset. Any failed record makes the exit status non-zero.`,
		Example: `  echo hello | samsa topic produce greetings
  printf 'k1:v1\nk2:v2\n' | samsa topic produce greetings --key-delim :
  printf 'k1 v1\n' | samsa topic produce greetings -f '%k %v\n' -H source=cli -z zstd
  samsa topic produce greetings -f '%v' < picture.png`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			if keyDelim != "" {
				if cmd.Flags().Changed("record-format") {
					return errors.New("give -f or --key-delim, not both")
				}
				format = "%k" + strings.NewReplacer("%", "%%", "\\", "\\\\").Replace(keyDelim) + "%v\\n"
			}
			rr, err := newRecordReader(cmd.InOrStdin(), format)
			if err != nil {
				return err
			}
			hdrs, err := parseHeaders(headers)
			if err != nil {
				return err
			}
			opts := []kgo.Opt{kgo.DefaultProduceTopic(topic)}
			level, err := parseAcks(acks)
			if err != nil {
				return err
			}
			opts = append(opts, kgo.RequiredAcks(kgoAcks(level)))
			// Idempotent writes need acks=all; kgo's default for it.
			if level != -1 {
				opts = append(opts, kgo.DisableIdempotentWrite())
			}
			codec, err := perf.ParseCompression(compression)
			if err != nil {
				return err
			}
			opts = append(opts, kgo.ProducerBatchCompression(codec))
			manual := partition >= 0 || rr.hasVerb('p')
			if manual {
				opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			}
			cl, err := g.client(opts...)
			if err != nil {
				return err
			}
			defer cl.Close()
			return produceLoop(contextOrBackground(cmd), cl, rr, produceSettings{
				topic: topic, key: key, headers: hdrs, partition: partition,
				setPartition: partition >= 0 && !rr.hasVerb('p'), setKey: key != "" && !rr.hasVerb('k'),
				verbose: verbose,
			}, errOut(cmd))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&key, "key", "k", "", "key of every record")
	f.StringArrayVarP(&headers, "header", "H", nil, "header key=value of every record, repeatable")
	f.Int32VarP(&partition, "partition", "p", -1, "partition to produce to (-1: the key-hash/sticky partitioner)")
	f.StringVarP(&format, "record-format", "f", "%v\\n", "input format (see above)")
	f.StringVar(&keyDelim, "key-delim", "", "each line is KEY<delim>VALUE")
	f.StringVar(&acks, "acks", "all", "required acks: all (-1), 1 or 0")
	f.StringVarP(&compression, "compression", "z", "none", "compression: none, gzip, snappy, lz4, zstd")
	f.BoolVarP(&verbose, "verbose", "v", false, "print partition and offset of every produced record")
	return cmd
}

// produceSettings are what produceLoop applies to every record.
type produceSettings struct {
	topic        string
	key          string
	headers      []kgo.RecordHeader
	partition    int32
	setPartition bool
	setKey       bool
	verbose      bool
}

// produceLoop reads every record, produces them asynchronously (kgo
// batches them) and waits for all acknowledgements.
func produceLoop(ctx context.Context, cl *kgo.Client, rr *recordReader, s produceSettings, stderr io.Writer) error {
	var (
		ok, failed atomic.Int64
		mu         sync.Mutex // serializes writes to stderr
		firstErr   error      // guarded by mu
	)
	for {
		r, err := rr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// Records already handed to kgo are still delivered.
			_ = cl.Flush(ctx)
			fmt.Fprintf(stderr, "Produced %d records to %s before the input error\n", ok.Load(), s.topic)
			return err
		}
		r.Topic = s.topic
		if s.setKey {
			r.Key = []byte(s.key)
		}
		if s.setPartition {
			r.Partition = s.partition
		}
		r.Headers = append(r.Headers, s.headers...)
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				fmt.Fprintf(stderr, "error: record not produced: %s\n", kafkaError(err, ""))
				mu.Unlock()
				return
			}
			ok.Add(1)
			if s.verbose {
				mu.Lock()
				fmt.Fprintf(stderr, "Produced to partition %d at offset %d with timestamp %d.\n", r.Partition, r.Offset, r.Timestamp.UnixMilli())
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "Produced %d records to %s", ok.Load(), s.topic)
	if n := failed.Load(); n > 0 {
		fmt.Fprintf(stderr, ", %d failed\n", n)
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("%d records failed, first: %w", n, firstErr)
	}
	fmt.Fprintln(stderr)
	return nil
}

func parseHeaders(hs []string) ([]kgo.RecordHeader, error) {
	var out []kgo.RecordHeader
	for _, h := range hs {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("-H %q: want key=value", h)
		}
		out = append(out, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return out, nil
}

// parseAcks maps --acks to Kafka's acks level: -1 (all), 1 or 0.
func parseAcks(s string) (int, error) {
	switch strings.ToLower(s) {
	case "all", "-1":
		return -1, nil
	case "1", "leader":
		return 1, nil
	case "0", "none":
		return 0, nil
	}
	return 0, fmt.Errorf("--acks %q: want all, 1 or 0", s)
}

// kgoAcks is the kgo option value for an acks level from parseAcks.
func kgoAcks(level int) kgo.Acks {
	switch level {
	case -1:
		return kgo.AllISRAcks()
	case 1:
		return kgo.LeaderAck()
	}
	return kgo.NoAck()
}
