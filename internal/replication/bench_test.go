package replication_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"samsa/internal/replication"
	"samsa/internal/storage"
)

// BenchmarkReplicationCatchUp measures a follower copying 32 MiB of 1 KiB
// records over 4 partitions from a real Samsa leader on loopback: each
// iteration starts from empty follower logs and ends when every log end
// offset equals the leader's.
func BenchmarkReplicationCatchUp(b *testing.B) {
	s, ctl := startLeader(b, b.TempDir(), b.TempDir(), "127.0.0.1:0")
	defer s.Close()
	addr := s.KafkaAddr()
	registerFollowerBroker(b, addr, ctl)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	const topic, parts, total = "bench", 4, 32 << 20
	createReplicatedTopic(b, cl, topic, parts, nil)
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	value := bytes.Repeat([]byte("r"), 1024)
	for sent := 0; sent < total; {
		var rs []*kgo.Record
		for i := 0; i < 1024; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Value: value})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		sent += 1024 * len(value)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fm, err := storage.OpenManager(storage.ManagerOptions{Dirs: []string{b.TempDir()}, Logger: quiet, CleanerDisabled: true})
		if err != nil {
			b.Fatal(err)
		}
		var fs []replication.Follower
		var logs []*storage.Log
		for p := int32(0); p < parts; p++ {
			l, err := fm.CreateLog(topic, p, md.Topics[topic].ID, storage.DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			logs = append(logs, l)
			fs = append(fs, replication.NewLogFollower(l, md.Topics[topic].Partitions[p].LeaderEpoch))
		}
		m, err := replication.NewManager(replication.Options{BrokerID: followerID, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := m.AddPartitions(1, addr, fs); err != nil {
			b.Fatal(err)
		}
		for done := false; !done; {
			done = true
			for _, l := range logs {
				end, _ := ends.Lookup(topic, l.Partition())
				if l.LogEndOffset() < end.Offset {
					done = false
				}
			}
			if !done {
				time.Sleep(time.Millisecond)
			}
		}
		b.StopTimer()
		m.Close()
		fm.Close()
		b.StartTimer()
	}
}
