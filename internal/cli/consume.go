package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newTopicConsumeCommand(g *globals) *cobra.Command {
	var (
		offset     string
		count      int
		partitions []int32
		format     string
		exitAtEnd  bool
	)
	cmd := &cobra.Command{
		Use:   "consume TOPIC...",
		Short: "Print records of topics (directly from partitions, no consumer group)",
		Long: `Print records of one or more topics, reading partitions directly (no consumer
group, nothing is committed).

-o picks where to start in every partition:
  start (oldest, beginning)   the log start offset (default)
  end (newest)                only records produced from now on
  N                           offset N (clamped to the partition's offsets)
  -N                          N records before the end (the last N records)
  @MS                         the first record with timestamp >= MS (Unix ms)

By default each record's value is printed on its own line; -f takes a
kcat-style format (%t topic, %p partition, %o offset, %T timestamp ms, %k key,
%v value, %h headers k=v,..., %K/%V key/value length, \n \t escapes).
--format json prints one JSON object per line:
{"topic","partition","offset","timestamp","key","value","headers":[{"key","value"}]}.

Stops after -n records, at the end of every partition with -e (the high
watermarks when consume started), or on Ctrl-C.`,
		Example: `  samsa topic consume orders -e
  samsa topic consume orders -o -10 -n 10 -f '%p/%o %k=%v\n'
  samsa topic consume orders -p 0,2 -o @1700000000000 --format json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			spec, err := parseOffsetSpec(offset)
			if err != nil {
				return err
			}
			var fmtr recordFormatter
			if !g.json() {
				if fmtr, err = newRecordFormatter(format); err != nil {
					return err
				}
			}
			ctx, stop := signal.NotifyContext(contextOrBackground(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			adm, acl, err := g.admin()
			if err != nil {
				return err
			}
			plan, err := planConsume(ctx, adm, topics, partitions, spec)
			acl.Close()
			if err != nil {
				return err
			}
			return consumeLoop(ctx, g, plan, consumeSettings{count: count, exitAtEnd: exitAtEnd, json: g.json(), formatter: fmtr}, out(cmd), errOut(cmd))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&offset, "offset", "o", "start", "where to start: start, end, N, -N, @timestamp-ms")
	f.IntVarP(&count, "num", "n", 0, "exit after this many records (0: no limit)")
	f.Int32SliceVarP(&partitions, "partitions", "p", nil, "partitions to read, comma separated (default: all)")
	f.StringVarP(&format, "record-format", "f", "%v\\n", "record format (see above)")
	f.BoolVarP(&exitAtEnd, "exit-at-end", "e", false, "exit at the end of every partition (like kcat -e)")
	return cmd
}

// offsetSpec is a parsed -o.
type offsetSpec struct {
	kind  byte  // 's' start, 'e' end, 'a' absolute, 'r' relative to end, 't' timestamp
	value int64 // offset, count back from the end, or Unix ms
}

func parseOffsetSpec(s string) (offsetSpec, error) {
	switch strings.ToLower(s) {
	case "start", "oldest", "beginning":
		return offsetSpec{kind: 's'}, nil
	case "end", "newest":
		return offsetSpec{kind: 'e'}, nil
	}
	bad := fmt.Errorf("-o %q: want start, end, N, -N or @timestamp-ms", s)
	switch {
	case strings.HasPrefix(s, "@"):
		ms, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil || ms < 0 {
			return offsetSpec{}, bad
		}
		return offsetSpec{kind: 't', value: ms}, nil
	case strings.HasPrefix(s, "-"):
		n, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil || n < 0 {
			return offsetSpec{}, bad
		}
		return offsetSpec{kind: 'r', value: n}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return offsetSpec{}, bad
	}
	return offsetSpec{kind: 'a', value: n}, nil
}

// consumePartition is where one partition's reading starts and, for -e,
// where it ends.
type consumePartition struct {
	topic     string
	partition int32
	start     int64 // first offset to fetch
	end       int64 // high watermark when consume started
}

// planConsume resolves -o for every selected partition against the
// partitions' current log start offsets and high watermarks.
func planConsume(ctx context.Context, adm *kadm.Client, topics []string, only []int32, spec offsetSpec) ([]consumePartition, error) {
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return nil, err
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	var atTime kadm.ListedOffsets
	if spec.kind == 't' {
		if atTime, err = adm.ListOffsetsAfterMilli(ctx, spec.value, topics...); err != nil {
			return nil, err
		}
	}
	var plan []consumePartition
	for _, t := range topics {
		td, ok := md.Topics[t]
		if !ok {
			return nil, fmt.Errorf("topic %s: missing from the broker's metadata response", t)
		}
		if td.Err != nil {
			return nil, fmt.Errorf("topic %s: %s", t, kafkaError(td.Err, ""))
		}
		var ps []int32
		if len(only) == 0 {
			for p := range td.Partitions {
				ps = append(ps, p)
			}
		} else {
			for _, p := range only {
				if _, ok := td.Partitions[p]; !ok {
					return nil, fmt.Errorf("topic %s has no partition %d", t, p)
				}
				ps = append(ps, p)
			}
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		for _, p := range ps {
			so, ok1 := starts.Lookup(t, p)
			eo, ok2 := ends.Lookup(t, p)
			if !ok1 || !ok2 || so.Err != nil || eo.Err != nil {
				return nil, fmt.Errorf("topic %s partition %d: cannot list offsets: %s", t, p, kafkaError(errors.Join(so.Err, eo.Err), ""))
			}
			cp := consumePartition{topic: t, partition: p, end: eo.Offset}
			switch spec.kind {
			case 's':
				cp.start = so.Offset
			case 'e':
				cp.start = eo.Offset
			case 'a':
				cp.start = min(max(spec.value, so.Offset), eo.Offset)
			case 'r':
				cp.start = max(eo.Offset-spec.value, so.Offset)
			case 't':
				cp.start = eo.Offset
				if o, ok := atTime.Lookup(t, p); ok && o.Err == nil && o.Offset >= 0 {
					cp.start = o.Offset
				}
			}
			plan = append(plan, cp)
		}
	}
	return plan, nil
}

// consumeSettings control consumeLoop's output and when it stops.
type consumeSettings struct {
	count     int  // stop after this many records; 0 = no limit
	exitAtEnd bool // stop when every partition reached its planned end
	json      bool
	formatter recordFormatter
}

// jsonRecord is the --format json shape of a consumed record.
type jsonRecord struct {
	Topic     string       `json:"topic"`
	Partition int32        `json:"partition"`
	Offset    int64        `json:"offset"`
	Timestamp int64        `json:"timestamp"` // Unix ms
	Key       *string      `json:"key"`       // null when the record has no key
	Value     *string      `json:"value"`     // null for a tombstone
	Headers   []jsonHeader `json:"headers"`
}

type jsonHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func toJSONRecord(r *kgo.Record) jsonRecord {
	j := jsonRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli(), Headers: []jsonHeader{}}
	if r.Key != nil {
		k := string(r.Key)
		j.Key = &k
	}
	if r.Value != nil {
		v := string(r.Value)
		j.Value = &v
	}
	for _, h := range r.Headers {
		j.Headers = append(j.Headers, jsonHeader{Key: h.Key, Value: string(h.Value)})
	}
	return j
}

// consumeLoop fetches the planned partitions and prints records until the
// count, the end (with exitAtEnd) or ctx cancellation.
func consumeLoop(ctx context.Context, g *globals, plan []consumePartition, s consumeSettings, w, errw io.Writer) error {
	type tp struct {
		t string
		p int32
	}
	remaining := map[tp]int64{} // partitions not at their end yet -> end offset
	assign := map[string]map[int32]kgo.Offset{}
	for _, cp := range plan {
		if assign[cp.topic] == nil {
			assign[cp.topic] = map[int32]kgo.Offset{}
		}
		assign[cp.topic][cp.partition] = kgo.NewOffset().At(cp.start)
		if cp.start < cp.end {
			remaining[tp{cp.topic, cp.partition}] = cp.end
		}
	}
	if s.exitAtEnd && len(remaining) == 0 {
		return nil
	}
	cl, err := g.client(kgo.ConsumePartitions(assign))
	if err != nil {
		return err
	}
	defer cl.Close()

	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	var line []byte
	printed := 0
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil // Ctrl-C or the caller's cancellation is a normal stop
		}
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			fmt.Fprintf(errw, "fetch %s/%d: %s\n", t, p, kafkaError(err, ""))
		})
		stop := false
		fs.EachRecord(func(r *kgo.Record) {
			if stop {
				return
			}
			if s.json {
				_ = enc.Encode(toJSONRecord(r))
			} else {
				line = s.formatter.appendRecord(line[:0], r)
				_, _ = bw.Write(line)
			}
			printed++
			if s.count > 0 && printed >= s.count {
				stop = true
			}
			key := tp{r.Topic, r.Partition}
			if end, ok := remaining[key]; ok && r.Offset+1 >= end {
				delete(remaining, key)
			}
		})
		if err := bw.Flush(); err != nil {
			return err
		}
		if stop || (s.exitAtEnd && len(remaining) == 0) {
			return nil
		}
	}
}
