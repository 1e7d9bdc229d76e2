package cli

// `samsa cluster logdirs`: DescribeLogDirs (35), as Kafka's
// kafka-log-dirs.sh --describe shows it: every broker's log dirs (or one
// broker's) with their volume's total and usable bytes and, in each, the
// replicas held there with size, offset lag and whether the replica is
// a future one (being moved there). `--format json` prints
// kafka-log-dirs.sh's document ({"version":1,"brokers":[...]}) with the
// volume sizes added.
//
// `samsa cluster logdirs move`: AlterReplicaLogDirs (34), as
// kafka-reassign-partitions.sh does for a "log_dirs" entry: moves a
// broker's replica of one partition to another of its log dirs; --wait
// follows the copy until the future replica took over.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// logDirsPartition is one replica in a log dir (kafka-log-dirs.sh's
// field names).
type logDirsPartition struct {
	Partition string `json:"partition"` // "<topic>-<partition>"
	Topic     string `json:"-"`
	Index     int32  `json:"-"`
	Size      int64  `json:"size"`
	OffsetLag int64  `json:"offsetLag"`
	IsFuture  bool   `json:"isFuture"`
}

// logDirsDir is one log dir of a broker.
type logDirsDir struct {
	LogDir string  `json:"logDir"`
	Error  *string `json:"error"`
	// TotalBytes and UsableBytes are the volume's (-1: not reported).
	TotalBytes  int64              `json:"totalBytes"`
	UsableBytes int64              `json:"usableBytes"`
	Partitions  []logDirsPartition `json:"partitions"`
}

type logDirsBroker struct {
	Broker  int32        `json:"broker"`
	LogDirs []logDirsDir `json:"logDirs"`
}

// logDirsReport is what `cluster logdirs` shows.
type logDirsReport struct {
	Version int             `json:"version"`
	Brokers []logDirsBroker `json:"brokers"`
}

// logDirsOptions are the flags of `cluster logdirs`.
type logDirsOptions struct {
	broker  int32
	topics  []string
	timeout time.Duration
}

func newClusterLogDirsCommand(g *globals) *cobra.Command {
	o := logDirsOptions{broker: -1, timeout: defaultClusterTimeout}
	cmd := &cobra.Command{
		Use:   "logdirs",
		Short: "Describe the brokers' log dirs and the replicas in them; move a replica between dirs",
		Long: `Describe the log dirs (log.dirs) of every broker, or of --broker N, as
kafka-log-dirs.sh --describe does: each dir with its status and its
volume's total and usable bytes, and the replicas it holds with their
size, OFFSET-LAG and FUTURE. A future replica is the copy of a replica
being moved to that dir (samsa cluster logdirs move); its OFFSET-LAG is
how far it is behind the replica it will replace. A follower's OFFSET-LAG
is how far it is behind the leader's high watermark.

--topic limits the replicas listed (repeatable).`,
		Example: `  samsa cluster logdirs
  samsa cluster logdirs --broker 2 --topic orders
  samsa cluster logdirs --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.runClusterAdmin(cmd, o.timeout, func(ctx context.Context, _ *kgo.Client, adm *kadm.Client) error {
				rep, err := describeLogDirs(ctx, adm, o.broker, o.topics)
				if err != nil {
					return err
				}
				if err := printLogDirs(out(cmd), g, rep); err != nil {
					return err
				}
				for _, b := range rep.Brokers {
					for _, d := range b.LogDirs {
						if d.Error != nil {
							return errReported
						}
					}
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.Int32Var(&o.broker, "broker", -1, "describe only this broker's log dirs")
	f.StringSliceVar(&o.topics, "topic", nil, "list only replicas of this topic (repeatable)")
	f.DurationVar(&o.timeout, "timeout", o.timeout, "how long to wait for the brokers")
	cmd.AddCommand(newClusterLogDirsMoveCommand(g))
	return cmd
}

// describeLogDirs asks one broker (broker >= 0) or all for their log dirs.
func describeLogDirs(ctx context.Context, adm *kadm.Client, broker int32, topics []string) (logDirsReport, error) {
	var set kadm.TopicsSet
	if len(topics) > 0 {
		md, err := adm.Metadata(ctx, topics...)
		if err != nil {
			return logDirsReport{}, fmt.Errorf("metadata: %w", err)
		}
		set = kadm.TopicsSet{}
		for _, t := range topics {
			td, ok := md.Topics[t]
			if !ok || td.Err != nil {
				return logDirsReport{}, fmt.Errorf("topic %q: %w", t, td.Err)
			}
			for p := range td.Partitions {
				set.Add(t, p)
			}
		}
	}
	all := kadm.DescribedAllLogDirs{}
	if broker >= 0 {
		ds, err := adm.DescribeBrokerLogDirs(ctx, broker, set)
		if err != nil {
			return logDirsReport{}, fmt.Errorf("describe log dirs of broker %d: %w", broker, err)
		}
		all[broker] = ds
	} else {
		var err error
		if all, err = adm.DescribeAllLogDirs(ctx, set); err != nil {
			var shard *kadm.ShardErrors
			if !errors.As(err, &shard) || len(all) == 0 {
				return logDirsReport{}, fmt.Errorf("describe log dirs: %w", err)
			}
		}
	}
	rep := logDirsReport{Version: 1, Brokers: []logDirsBroker{}}
	for _, id := range slices.Sorted(maps.Keys(all)) {
		b := logDirsBroker{Broker: id, LogDirs: []logDirsDir{}}
		for _, name := range slices.Sorted(maps.Keys(all[id])) {
			d := all[id][name]
			x := logDirsDir{LogDir: d.Dir, TotalBytes: d.TotalBytes, UsableBytes: d.UsableBytes, Partitions: []logDirsPartition{}}
			if d.Err != nil {
				s := kafkaError(d.Err, "")
				x.Error = &s
			}
			for _, p := range d.Topics.Sorted() {
				x.Partitions = append(x.Partitions, logDirsPartition{
					Partition: fmt.Sprintf("%s-%d", p.Topic, p.Partition), Topic: p.Topic, Index: p.Partition,
					Size: p.Size, OffsetLag: p.OffsetLag, IsFuture: p.IsFuture,
				})
			}
			b.LogDirs = append(b.LogDirs, x)
		}
		rep.Brokers = append(rep.Brokers, b)
	}
	return rep, nil
}

func printLogDirs(w io.Writer, g *globals, rep logDirsReport) error {
	if g.json() {
		return writeJSON(w, rep)
	}
	section(w, "LOG DIRS")
	tb := newTable(w, "BROKER", "DIR", "STATUS", "TOTAL-BYTES", "USABLE-BYTES", "REPLICAS", "SIZE")
	for _, b := range rep.Brokers {
		for _, d := range b.LogDirs {
			var size int64
			for _, p := range d.Partitions {
				size += p.Size
			}
			errText := ""
			if d.Error != nil {
				errText = *d.Error
			}
			tb.row(b.Broker, d.LogDir, status(errText), d.TotalBytes, d.UsableBytes, len(d.Partitions), size)
		}
	}
	tb.flush()
	fmt.Fprintln(w)
	section(w, "REPLICAS")
	tb = newTable(w, "BROKER", "DIR", "TOPIC", "PARTITION", "SIZE", "OFFSET-LAG", "FUTURE")
	for _, b := range rep.Brokers {
		for _, d := range b.LogDirs {
			for _, p := range d.Partitions {
				tb.row(b.Broker, d.LogDir, p.Topic, p.Index, p.Size, p.OffsetLag, p.IsFuture)
			}
		}
	}
	tb.flush()
	return nil
}

// logDirsMoveOptions are the flags of `cluster logdirs move`.
type logDirsMoveOptions struct {
	broker    int32
	topic     string
	partition int32
	dir       string
	wait      bool
	timeout   time.Duration
}

// logDirsMoveResult is what `cluster logdirs move` shows.
type logDirsMoveResult struct {
	Broker    int32  `json:"broker"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Dir       string `json:"dir"`
	// Error is the Kafka error name, "" when the move was accepted.
	Error string `json:"error,omitempty"`
	// Done is set with --wait once the replica is in Dir.
	Done bool `json:"done"`
}

func newClusterLogDirsMoveCommand(g *globals) *cobra.Command {
	o := logDirsMoveOptions{broker: -1, partition: -1, timeout: defaultClusterTimeout}
	cmd := &cobra.Command{
		Use:   "move",
		Short: "Move a broker's replica of a partition to another of its log dirs",
		Long: `Move broker N's replica of a partition to another of its log dirs
(AlterReplicaLogDirs). The broker copies the replica into a future replica
in the new dir in the background, while it keeps serving it, and swaps
them once the copy caught up; "samsa cluster logdirs" shows the progress.
--wait waits for the swap (up to --timeout).

Errors are Kafka's: LOG_DIR_NOT_FOUND (not one of the broker's log.dirs),
REPLICA_NOT_AVAILABLE (the broker holds no replica of the partition; the
dir is remembered for when it gets one), UNKNOWN_TOPIC_OR_PARTITION,
KAFKA_STORAGE_ERROR (the replica or the dir is offline).`,
		Example: `  samsa cluster logdirs move --broker 1 --topic orders --partition 0 --dir /data/disk2/samsa
  samsa cluster logdirs move --broker 1 --topic orders --partition 0 --dir /data/disk2/samsa --wait --timeout 10m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.broker < 0 || o.topic == "" || o.partition < 0 || o.dir == "" {
				return errors.New("--broker, --topic, --partition and --dir are required")
			}
			return g.runClusterAdmin(cmd, o.timeout, func(ctx context.Context, _ *kgo.Client, adm *kadm.Client) error {
				var req kadm.AlterReplicaLogDirsReq
				req.Add(o.dir, kadm.TopicsSet{o.topic: {o.partition: {}}})
				resps, err := adm.AlterBrokerReplicaLogDirs(ctx, o.broker, req)
				if err != nil {
					return fmt.Errorf("alter replica log dirs on broker %d: %w", o.broker, err)
				}
				res := logDirsMoveResult{Broker: o.broker, Topic: o.topic, Partition: o.partition, Dir: o.dir}
				r, ok := resps[o.topic][o.partition]
				switch {
				case !ok:
					res.Error = "no answer for the partition"
				case r.Err != nil:
					res.Error = kafkaError(r.Err, "")
				}
				if res.Error == "" && o.wait {
					if err := waitLogDirMove(ctx, adm, o); err != nil {
						return err
					}
					res.Done = true
				}
				if g.json() {
					if err := writeJSON(out(cmd), res); err != nil {
						return err
					}
				} else {
					switch {
					case res.Error != "":
						fmt.Fprintf(out(cmd), "broker %d: %s-%d: %s\n", o.broker, o.topic, o.partition, res.Error)
					case res.Done:
						fmt.Fprintf(out(cmd), "broker %d: %s-%d is in %s\n", o.broker, o.topic, o.partition, o.dir)
					default:
						fmt.Fprintf(out(cmd), "broker %d: moving %s-%d to %s\n", o.broker, o.topic, o.partition, o.dir)
					}
				}
				if res.Error != "" {
					return errReported
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.Int32Var(&o.broker, "broker", -1, "broker whose replica moves")
	f.StringVar(&o.topic, "topic", "", "topic of the replica")
	f.Int32Var(&o.partition, "partition", -1, "partition of the replica")
	f.StringVar(&o.dir, "dir", "", "destination: one of the broker's log.dirs (absolute path)")
	f.BoolVar(&o.wait, "wait", false, "wait until the replica is in --dir")
	f.DurationVar(&o.timeout, "timeout", o.timeout, "how long to wait for the broker (and, with --wait, the move)")
	return cmd
}

// waitLogDirMove polls DescribeLogDirs until the broker's replica is in
// o.dir and no future replica is left.
func waitLogDirMove(ctx context.Context, adm *kadm.Client, o logDirsMoveOptions) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		rep, err := describeLogDirs(ctx, adm, o.broker, []string{o.topic})
		if err != nil {
			return err
		}
		in, future := false, false
		for _, b := range rep.Brokers {
			for _, d := range b.LogDirs {
				for _, p := range d.Partitions {
					if p.Topic != o.topic || p.Index != o.partition {
						continue
					}
					if p.IsFuture {
						future = true
					} else if filepath.Clean(d.LogDir) == filepath.Clean(o.dir) {
						in = true
					}
				}
			}
		}
		if in && !future {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("move of %s-%d on broker %d not done: %w", o.topic, o.partition, o.broker, ctx.Err())
		case <-tick.C:
		}
	}
}
