package cli

// `samsa txn`: transactions as kafka-transactions.sh shows them, through
// kadm (ListTransactions, DescribeTransactions, DescribeProducers).

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newTxnCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "txn",
		Aliases: []string{"transactions"},
		Short:   "List and describe transactions and the producers writing to partitions",
	}
	cmd.AddCommand(newTxnListCommand(g), newTxnDescribeCommand(g), newTxnProducersCommand(g))
	return cmd
}

// txnListEntry is one row of `txn list`.
type txnListEntry struct {
	TransactionalID string `json:"transactional_id"`
	Coordinator     int32  `json:"coordinator"`
	ProducerID      int64  `json:"producer_id"`
	State           string `json:"state"`
}

func newTxnListCommand(g *globals) *cobra.Command {
	var states []string
	var pids []int64
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List transactional ids with their coordinator, producer id and state",
		Example: `  samsa txn list
  samsa txn list --state Ongoing --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.runAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				listed, err := adm.ListTransactions(ctx, pids, states)
				partial, err := reportBrokerErrors(cmd, err)
				if err != nil {
					return err
				}
				es := []txnListEntry{}
				for _, l := range listed.Sorted() {
					es = append(es, txnListEntry{l.TxnID, l.Coordinator, l.ProducerID, l.State})
				}
				if g.json() {
					if err := writeJSON(out(cmd), es); err != nil {
						return err
					}
				} else {
					t := newTable(out(cmd), "TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE")
					for _, e := range es {
						t.row(e.TransactionalID, e.Coordinator, e.ProducerID, e.State)
					}
					t.flush()
				}
				if partial {
					return errReported
				}
				return nil
			})
		},
	}
	cmd.Flags().StringSliceVarP(&states, "state", "s", nil, "only transactions in these states, comma separated")
	cmd.Flags().Int64SliceVar(&pids, "producer-id", nil, "only transactions of these producer ids")
	return cmd
}

// txnDescription is one transactional id of `txn describe`.
type txnDescription struct {
	CoordinatorID   int32    `json:"coordinator_id"`
	TransactionalID string   `json:"transactional_id"`
	ProducerID      int64    `json:"producer_id"`
	ProducerEpoch   int16    `json:"producer_epoch"`
	State           string   `json:"state"`
	TimeoutMs       int32    `json:"timeout_ms"`
	StartTimeMs     int64    `json:"start_time_ms"` // -1 when no transaction is open
	TopicPartitions []string `json:"topic_partitions"`
	Error           string   `json:"error,omitempty"`
}

func newTxnDescribeCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe ID...",
		Short: "Describe transactional ids: producer, state, timeout and partitions",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			return g.runAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				described, err := adm.DescribeTransactions(ctx, ids...)
				if err := unlessSharded(err); err != nil {
					return err
				}
				var ds []txnDescription
				for _, id := range ids {
					d, ok := described[id]
					e := txnDescription{TransactionalID: id, CoordinatorID: d.Coordinator, ProducerID: d.ProducerID,
						ProducerEpoch: d.ProducerEpoch, State: d.State, TimeoutMs: d.TimeoutMillis, StartTimeMs: d.StartTimestamp,
						TopicPartitions: []string{}}
					switch {
					case !ok:
						e.Error = "no answer from its coordinator"
					case d.Err != nil:
						e.Error = d.Err.Error()
					}
					for _, tp := range d.Topics.Sorted() {
						for _, p := range tp.Partitions {
							e.TopicPartitions = append(e.TopicPartitions, fmt.Sprintf("%s-%d", tp.Topic, p))
						}
					}
					ds = append(ds, e)
				}
				if g.json() {
					if err := writeJSON(out(cmd), ds); err != nil {
						return err
					}
				} else {
					t := newTable(out(cmd), "COORDINATOR-ID", "TRANSACTIONAL-ID", "PRODUCER-ID", "PRODUCER-EPOCH",
						"STATE", "TIMEOUT-MS", "START-TIME-MS", "TOPIC-PARTITIONS", "ERROR")
					for _, e := range ds {
						t.row(e.CoordinatorID, e.TransactionalID, e.ProducerID, e.ProducerEpoch, dash(e.State),
							e.TimeoutMs, e.StartTimeMs, dash(strings.Join(e.TopicPartitions, ",")), dash(e.Error))
					}
					t.flush()
				}
				return reportFailures(ds, func(d txnDescription) string { return d.Error })
			})
		},
	}
}

// txnProducer is one active producer of a partition in `txn producers`.
type txnProducer struct {
	Topic                         string `json:"topic"`
	Partition                     int32  `json:"partition"`
	ProducerID                    int64  `json:"producer_id"`
	ProducerEpoch                 int16  `json:"producer_epoch"`
	LatestCoordinatorEpoch        int32  `json:"latest_coordinator_epoch"`
	LastSequence                  int32  `json:"last_sequence"`
	LastTimestamp                 int64  `json:"last_timestamp"`
	CurrentTransactionStartOffset int64  `json:"current_transaction_start_offset"`
	Error                         string `json:"error,omitempty"`
}

func newTxnProducersCommand(g *globals) *cobra.Command {
	var parts []int32
	cmd := &cobra.Command{
		Use:   "producers TOPIC",
		Short: "Describe the active producers of a topic's partitions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.runAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				topic := args[0]
				set := make(kadm.TopicsSet)
				if len(parts) > 0 {
					set.Add(topic, parts...)
				} else {
					md, err := adm.Metadata(ctx, topic)
					if err != nil {
						return err
					}
					td := md.Topics[topic]
					if td.Err != nil {
						return fmt.Errorf("topic %s: %w", topic, td.Err)
					}
					set.Add(topic, td.Partitions.Numbers()...)
				}
				described, err := adm.DescribeProducers(ctx, set)
				if err := unlessSharded(err); err != nil {
					return err
				}
				var ps []txnProducer
				for _, dp := range described[topic].Partitions {
					if dp.Err != nil {
						ps = append(ps, txnProducer{Topic: topic, Partition: dp.Partition, Error: dp.Err.Error()})
						continue
					}
					for _, p := range dp.ActiveProducers {
						ps = append(ps, txnProducer{topic, dp.Partition, p.ProducerID, p.ProducerEpoch,
							p.CoordinatorEpoch, p.LastSequence, p.LastTimestamp, p.CurrentTxnStartOffset, ""})
					}
				}
				sort.Slice(ps, func(i, j int) bool {
					if ps[i].Partition != ps[j].Partition {
						return ps[i].Partition < ps[j].Partition
					}
					return ps[i].ProducerID < ps[j].ProducerID
				})
				if g.json() {
					if ps == nil {
						ps = []txnProducer{}
					}
					if err := writeJSON(out(cmd), ps); err != nil {
						return err
					}
				} else {
					t := newTable(out(cmd), "PARTITION", "PRODUCER-ID", "PRODUCER-EPOCH", "LATEST-COORDINATOR-EPOCH",
						"LAST-SEQUENCE", "LAST-TIMESTAMP", "CURRENT-TRANSACTION-START-OFFSET", "ERROR")
					for _, p := range ps {
						t.row(p.Partition, p.ProducerID, p.ProducerEpoch, p.LatestCoordinatorEpoch, p.LastSequence,
							p.LastTimestamp, p.CurrentTransactionStartOffset, dash(p.Error))
					}
					t.flush()
				}
				return reportFailures(ps, func(p txnProducer) string { return p.Error })
			})
		},
	}
	cmd.Flags().Int32SliceVarP(&parts, "partitions", "p", nil, "only these partitions, comma separated")
	return cmd
}
