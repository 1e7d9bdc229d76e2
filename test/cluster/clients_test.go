package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"samsa/test/brokerproc"
)

// TestClusterClients runs the real clients of test/clients against one
// 3-node cluster: every topic is replicated on all three brokers (RF 3)
// and has partitions led by each of them, so
// producers, group consumers and transactions must follow leaders and
// coordinators across nodes.
func TestClusterClients(t *testing.T) {
	c := startCluster(t, 3)
	addrs := c.Bootstrap()

	t.Run("KafkaPythonGroup", func(t *testing.T) {
		py := requirePythonModule(t, "kafka")
		script := clientsPath(t, "python", "kafka_python_seed.py")
		topic := "kp-cluster"
		leaders := spreadTopic(t, addrs, topic, 6)
		const n = 100
		runClient(t, 60*time.Second, py, script, "produce", addrs[0], topic, "all", fmt.Sprint(n))
		requireOnEveryBroker(t, addrs[1], topic, leaders)
		out := runClient(t, 60*time.Second, py, script, "consume-group", addrs[2], topic, "kp-group")
		var values []string
		for _, line := range strings.Split(out, "\n") {
			if _, v, ok := strings.Cut(line, ", Value: "); ok && strings.HasPrefix(line, "Topic: ") {
				values = append(values, v)
			}
		}
		requireEachOnce(t, values, n, func(i int) string { return fmt.Sprintf(`{"str": "result%d"}`, i) })
		requireCommitted(t, addrs[1], "kp-group", topic, n)
	})

	t.Run("ConfluentKafkaPythonGroup", func(t *testing.T) {
		py := requirePythonModule(t, "confluent_kafka")
		topic := "ck-cluster"
		leaders := spreadTopic(t, addrs, topic, 6)
		const n = 120
		// confluent_roundtrip.py produces (acks=all) and reads back by
		// assignment; confluent_group.py then reads as a group member.
		runClient(t, 60*time.Second, py, clientsPath(t, "python", "confluent_roundtrip.py"), strings.Join(addrs, ","), topic, "lz4", fmt.Sprint(n))
		requireOnEveryBroker(t, addrs[1], topic, leaders)
		out := runClient(t, 60*time.Second, py, clientsPath(t, "python", "confluent_group.py"), addrs[1], topic, "ck-group", fmt.Sprint(n))
		var values []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 {
				t.Fatalf("unparsable confluent_group.py line %q", line)
			}
			values = append(values, f[2])
		}
		pad := strings.Repeat("samsa", 20)
		requireEachOnce(t, values, n, func(i int) string { return fmt.Sprintf("value-%d-%s", i, pad) })
		requireCommitted(t, addrs[0], "ck-group", topic, n)
	})

	t.Run("KafkaJSGroup", func(t *testing.T) {
		node := requireKafkaJS(t)
		script := clientsPath(t, "node", "kafkajs_client.js")
		topic := "kjs-cluster"
		const n = 90
		// kafkajs creates the 6-partition topic itself (through whichever
		// node it picks), then produces keyed records.
		runClient(t, 60*time.Second, node, script, "produce", addrs[2], topic, fmt.Sprint(n), "6")
		leaders := spreadTopic(t, addrs, topic, 6)
		requireOnEveryBroker(t, addrs[1], topic, leaders)
		out := runClient(t, 60*time.Second, node, script, "consume", addrs[0], topic, fmt.Sprint(n), "kjs-group")
		var values []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var rec struct{ Key, Value string }
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("unparsable kafkajs line %q: %v", line, err)
			}
			if want := strings.Replace(rec.Key, "key-", "value-", 1); rec.Value != want {
				t.Errorf("key %s: value %q, want %q", rec.Key, rec.Value, want)
			}
			values = append(values, rec.Value)
		}
		requireEachOnce(t, values, n, func(i int) string { return fmt.Sprintf("value-%d", i) })
	})

	t.Run("FranzGoGroupTwoMembers", func(t *testing.T) {
		ctx := ctxFor(t, 60*time.Second)
		topic := "fg-cluster"
		leaders := spreadTopic(t, addrs, topic, 6)
		const n = 600
		type member struct {
			cl       *kgo.Client
			mu       sync.Mutex
			owned    map[int32]bool // guarded by mu
			consumed map[int32]bool // partitions read from; guarded by mu
		}
		members := make([]*member, 2)
		for i := range members {
			m := &member{owned: map[int32]bool{}, consumed: map[int32]bool{}}
			m.cl = brokerproc.NewClient(t, addrs[i], kgo.ConsumeTopics(topic), kgo.ConsumerGroup("fg-group"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
				kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
					m.mu.Lock()
					defer m.mu.Unlock()
					for _, p := range a[topic] {
						m.owned[p] = true
					}
				}),
				kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
					m.mu.Lock()
					defer m.mu.Unlock()
					for _, p := range r[topic] {
						delete(m.owned, p)
					}
				}))
			members[i] = m
		}
		// Both members poll from the start; the records go in once the
		// group has settled with 3 partitions each.
		var (
			mu     sync.Mutex
			values []string
			wg     sync.WaitGroup
		)
		pollCtx, stop := context.WithCancel(ctx)
		for _, m := range members {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for pollCtx.Err() == nil {
					fs := m.cl.PollFetches(pollCtx)
					fs.EachError(func(tp string, p int32, err error) {
						if pollCtx.Err() == nil {
							t.Errorf("fetch %s/%d: %v", tp, p, err)
						}
					})
					fs.EachRecord(func(r *kgo.Record) {
						mu.Lock()
						values = append(values, string(r.Value))
						mu.Unlock()
						m.mu.Lock()
						m.consumed[r.Partition] = true
						m.mu.Unlock()
					})
				}
			}()
		}
		t.Cleanup(func() { stop(); wg.Wait() })
		eventually(t, 30*time.Second, func(context.Context) error {
			var all []int32
			for i, m := range members {
				m.mu.Lock()
				owned := len(m.owned)
				for p := range m.owned {
					all = append(all, p)
				}
				m.mu.Unlock()
				if owned != 3 {
					return fmt.Errorf("member %d owns %d partitions, want 3", i, owned)
				}
			}
			slices.Sort(all)
			if !slices.Equal(all, []int32{0, 1, 2, 3, 4, 5}) {
				return fmt.Errorf("members own %v together", all)
			}
			return nil
		})
		prod := brokerproc.NewClient(t, addrs[1], kgo.RequiredAcks(kgo.AllISRAcks()))
		for i := range n {
			prod.Produce(ctx, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		requireOnEveryBroker(t, addrs[0], topic, leaders)
		eventually(t, 30*time.Second, func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			if len(values) < n {
				return fmt.Errorf("members consumed %d of %d records", len(values), n)
			}
			return nil
		})
		stop()
		wg.Wait()
		mu.Lock()
		requireEachOnce(t, values, n, func(i int) string { return fmt.Sprintf("v%d", i) })
		mu.Unlock()
		for i, m := range members {
			m.mu.Lock()
			brokers := map[int32]bool{}
			for p := range m.consumed {
				brokers[leaders[p]] = true
			}
			if len(m.consumed) != 3 {
				t.Errorf("member %d read from partitions %v, want its 3", i, m.consumed)
			}
			m.mu.Unlock()
			t.Logf("member %d read partitions led by %d brokers", i, len(brokers))
			if err := m.cl.CommitUncommittedOffsets(ctxFor(t, 10*time.Second)); err != nil {
				t.Errorf("member %d: commit: %v", i, err)
			}
		}
		requireCommitted(t, addrs[2], "fg-group", topic, n)
	})

	t.Run("FranzGoExactlyOnce", func(t *testing.T) {
		ctx := ctxFor(t, 60*time.Second)
		in, out := "eos-in", "eos-out"
		inLeaders := spreadTopic(t, addrs, in, 3)
		outLeaders := spreadTopic(t, addrs, out, 3)
		const n = 300
		prod := brokerproc.NewClient(t, addrs[0], kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		for i := range n {
			prod.Produce(ctx, &kgo.Record{Topic: in, Partition: int32(i % 3), Value: fmt.Appendf(nil, "%d", i)}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		requireOnEveryBroker(t, addrs[1], in, inLeaders)

		// An aborted transaction first, to every output partition: a
		// read_committed reader must never see it.
		ab := brokerproc.NewClient(t, addrs[2], kgo.TransactionalID("eos-aborter"),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(30*time.Second))
		if err := ab.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for p := range int32(3) {
			if err := ab.ProduceSync(ctx, &kgo.Record{Topic: out, Partition: p, Value: []byte("aborted")}).FirstErr(); err != nil {
				t.Fatalf("transactional produce to %s/%d: %v", out, p, err)
			}
		}
		if err := ab.EndTransaction(ctx, kgo.TryAbort); err != nil {
			t.Fatalf("abort: %v", err)
		}

		// Consume-transform-produce: each input record becomes "out-V" on
		// the same partition number of the output topic, its offsets
		// committed in the same transaction.
		sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(addrs[1]), kgo.TransactionalID("eos-transformer"),
			kgo.ConsumerGroup("eos-group"), kgo.ConsumeTopics(in), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(30*time.Second),
			kgo.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sess.Close)
		done, txns := 0, 0
		for done < n {
			fs := sess.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("transformed %d of %d records: %v", done, n, err)
			}
			fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
			if fs.NumRecords() == 0 {
				continue
			}
			if err := sess.Begin(); err != nil {
				t.Fatalf("begin: %v", err)
			}
			var recs []*kgo.Record
			fs.EachRecord(func(r *kgo.Record) {
				recs = append(recs, &kgo.Record{Topic: out, Partition: r.Partition, Value: append([]byte("out-"), r.Value...)})
			})
			if err := sess.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatalf("transactional produce: %v", err)
			}
			committed, err := sess.End(ctx, kgo.TryCommit)
			if err != nil {
				t.Fatalf("end transaction: %v", err)
			}
			if committed {
				done += len(recs)
				txns++
			}
		}
		t.Logf("%d records in %d committed transactions", done, txns)
		requireCommitted(t, addrs[0], "eos-group", in, n)

		var committedVals, all []string
		for _, r := range readOutput(t, addrs[2], out, 3, kgo.ReadCommitted(), n) {
			committedVals = append(committedVals, string(r.Value))
			var i int32
			if _, err := fmt.Sscanf(string(r.Value), "out-%d", &i); err == nil && i%3 != r.Partition {
				t.Errorf("%s on %s/%d, want partition %d (its input partition)", r.Value, out, r.Partition, i%3)
			}
		}
		requireEachOnce(t, committedVals, n, func(i int) string { return fmt.Sprintf("out-%d", i) })
		for _, r := range readOutput(t, addrs[1], out, 3, kgo.ReadUncommitted(), n+3) {
			all = append(all, string(r.Value))
		}
		if aborted := len(all) - len(committedVals); aborted != 3 {
			t.Errorf("read_uncommitted sees %d records beyond the committed ones, want the 3 aborted", aborted)
		}
		requireOnEveryBroker(t, addrs[0], out, outLeaders)
	})
}

// spreadTopic creates topic (replication factor 3: every broker holds
// every partition, acks=all waits for the ISR) through addrs[1] unless it
// exists, waits until every node's Metadata knows all its partitions with
// leaders on all three brokers, and returns each partition's leader.
func spreadTopic(t *testing.T, addrs []string, topic string, partitions int32) map[int32]int32 {
	t.Helper()
	ctx := ctxFor(t, 20*time.Second)
	adm := kadm.NewClient(brokerproc.NewClient(t, addrs[1]))
	if resp, err := adm.CreateTopics(ctx, partitions, 3, nil, topic); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	} else if err := resp.Error(); err != nil && !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
		t.Fatalf("create %s: %v", topic, err)
	}
	leaders := map[int32]int32{}
	eventually(t, 20*time.Second, func(ctx context.Context) error {
		for _, a := range addrs {
			md, err := metadataOf(ctx, t, a, topic)
			if err != nil {
				return err
			}
			if len(md.Topics) != 1 || len(md.Topics[0].Partitions) != int(partitions) {
				return fmt.Errorf("node %s: Metadata of %s: %+v", a, topic, md.Topics)
			}
			brokers := map[int32]bool{}
			for _, p := range md.Topics[0].Partitions {
				if p.Leader < 0 {
					return fmt.Errorf("node %s: %s/%d has no leader", a, topic, p.Partition)
				}
				leaders[p.Partition] = p.Leader
				brokers[p.Leader] = true
			}
			if len(brokers) != 3 {
				return fmt.Errorf("node %s: %s leaders %v, want all 3 brokers", a, topic, leaders)
			}
		}
		return nil
	})
	return leaders
}

// requireOnEveryBroker fails unless every broker leads a partition of
// topic that holds records.
func requireOnEveryBroker(t *testing.T, addr, topic string, leaders map[int32]int32) {
	t.Helper()
	perBroker := map[int32]int64{}
	for p, end := range brokerproc.EndOffsets(t, addr, topic) {
		perBroker[leaders[p]] += end
	}
	for _, b := range []int32{1, 2, 3} {
		if perBroker[b] == 0 {
			t.Errorf("%s: no records on broker %d's partitions (records per broker %v)", topic, b, perBroker)
		}
	}
}

// requireEachOnce fails unless values are want(0..n-1), each exactly once.
func requireEachOnce(t *testing.T, values []string, n int, want func(int) string) {
	t.Helper()
	count := map[string]int{}
	for _, v := range values {
		count[v]++
	}
	for i := range n {
		w := want(i)
		if count[w] != 1 {
			t.Errorf("%q read %d times, want once", w, count[w])
		}
		delete(count, w)
	}
	for v, c := range count {
		t.Errorf("unexpected value %q read %d times", v, c)
	}
}

// requireCommitted fails unless group's committed offsets on topic, as
// fetched through the node at addr, sum to n.
func requireCommitted(t *testing.T, addr, group, topic string, n int64) {
	t.Helper()
	eventually(t, 15*time.Second, func(ctx context.Context) error {
		offs, err := kadm.NewClient(brokerproc.NewClient(t, addr)).FetchOffsets(ctx, group)
		if err == nil {
			err = offs.Error()
		}
		if err != nil {
			return fmt.Errorf("fetch offsets of %s: %w", group, err)
		}
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == topic {
				sum += o.At
			}
		})
		if sum != n {
			return fmt.Errorf("group %s: committed offsets on %s sum to %d, want %d", group, topic, sum, n)
		}
		return nil
	})
}

// readOutput reads topic from the start of its partitions at the given
// isolation level until want records arrived, then polls once more
// (500 ms) so that records beyond want are seen too.
func readOutput(t *testing.T, addr, topic string, partitions int32, level kgo.IsolationLevel, want int) []*kgo.Record {
	t.Helper()
	ctx := ctxFor(t, 20*time.Second)
	parts := map[int32]kgo.Offset{}
	for p := range partitions {
		parts[p] = kgo.NewOffset().AtStart()
	}
	rd := brokerproc.NewClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(level), kgo.FetchMaxWait(200*time.Millisecond))
	var recs []*kgo.Record
	for len(recs) < want {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records of %s: %v", len(recs), want, topic, err)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		recs = append(recs, fs.Records()...)
	}
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	recs = append(recs, rd.PollFetches(pctx).Records()...)
	return recs
}
