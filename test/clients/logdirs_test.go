package clients

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestLogDirsAdminClients: against the binary with two log dirs,
// franz-go's kadm moves a replica to the other dir
// (AlterBrokerReplicaLogDirs) and follows it with DescribeAllLogDirs
// until the future replica took over; sarama's DescribeLogDirs (v4, with
// the volume's sizes) then lists the partition in its new dir; kadm gets
// LOG_DIR_NOT_FOUND for a dir that is not a log dir.
func TestLogDirsAdminClients(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	br := startBroker(t, "log.dirs="+a+","+b)
	topic := topicName(t)
	createTopic(t, br.Addr, topic, 1)
	produceKgo(t, br.Addr, topic, 0, 200)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(newKgo(t, br.Addr))
	where := func() (cur string, future bool) {
		t.Helper()
		all, err := adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			t.Fatalf("kadm: DescribeAllLogDirs: %v", err)
		}
		all.Each(func(d kadm.DescribedLogDir) {
			d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
				if p.IsFuture {
					future = true
				} else {
					cur = p.Dir
				}
			})
		})
		return cur, future
	}
	cur, _ := where()
	to := a
	if filepath.Clean(cur) == filepath.Clean(a) {
		to = b
	}
	var req kadm.AlterReplicaLogDirsReq
	req.Add(to, kadm.TopicsSet{topic: {0: {}}})
	resps, err := adm.AlterBrokerReplicaLogDirs(ctx, 1, req)
	if err != nil {
		t.Fatalf("kadm: AlterBrokerReplicaLogDirs: %v", err)
	}
	if r := resps[topic][0]; r.Err != nil {
		t.Fatalf("kadm: move: %v", r.Err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if cur, fut := where(); !fut && filepath.Clean(cur) == filepath.Clean(to) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica not moved to %s", to)
		}
	}
	var bad kadm.AlterReplicaLogDirsReq
	bad.Add(t.TempDir(), kadm.TopicsSet{topic: {0: {}}})
	if resps, err := adm.AlterBrokerReplicaLogDirs(ctx, 1, bad); err != nil || !errors.Is(resps[topic][0].Err, kerr.LogDirNotFound) {
		t.Fatalf("kadm: move to an unknown dir: %v %+v", err, resps)
	}

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.Net.DialTimeout = 5 * time.Second
	ca, err := sarama.NewClusterAdmin([]string{br.Addr}, cfg)
	if err != nil {
		t.Fatalf("NewClusterAdmin: %v", err)
	}
	defer ca.Close()
	dirs, err := ca.DescribeLogDirs([]int32{1})
	if err != nil {
		t.Fatalf("sarama: DescribeLogDirs: %v", err)
	}
	if len(dirs[1]) != 2 {
		t.Fatalf("sarama: %d log dirs: %+v", len(dirs[1]), dirs)
	}
	for _, d := range dirs[1] {
		if d.ErrorCode != sarama.ErrNoError || d.TotalBytes <= 0 || d.UsableBytes < 0 {
			t.Errorf("sarama: dir %s: %v total %d usable %d", d.Path, d.ErrorCode, d.TotalBytes, d.UsableBytes)
		}
		for _, tp := range d.Topics {
			if tp.Topic == topic && filepath.Clean(d.Path) != filepath.Clean(to) {
				t.Errorf("sarama: %s listed in %s, want %s", topic, d.Path, to)
			}
			for _, p := range tp.Partitions {
				if p.IsTemporary || p.Size <= 0 {
					t.Errorf("sarama: partition %+v", p)
				}
			}
		}
	}
}
