package server_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
)

// TestServerMigratesOldMetadataLog starts a node on a data dir whose
// metadata is in the single-node LocalLog file of the release before the
// raft quorum: its topics, configs and producer ids are imported into the
// one-voter quorum, the old file is renamed, and a restart keeps all of
// it (groups' offsets live in __consumer_offsets and survive too).
func TestServerMigratesOldMetadataLog(t *testing.T) {
	dir := t.TempDir()
	l, err := metadata.OpenLocalLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	id := metadata.UUID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	retention := "123456789"
	recs := []metadata.Record{
		{Type: metadata.TypeRegisterBroker, RegisterBroker: &metadata.RegisterBrokerRecord{BrokerID: 1, Endpoints: []metadata.Endpoint{{Listener: "PLAINTEXT", Host: "127.0.0.1", Port: 1, SecurityProtocol: "PLAINTEXT"}}}},
		{Type: metadata.TypeTopic, Topic: &metadata.TopicRecord{Name: "old", TopicID: id}},
		{Type: metadata.TypeConfig, Config: &metadata.ConfigRecord{ResourceType: metadata.ResourceTopic, ResourceName: "old", Name: "retention.ms", Value: &retention}},
		{Type: metadata.TypePartition, Partition: &metadata.PartitionRecord{TopicID: id, PartitionID: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}},
		{Type: metadata.TypePartition, Partition: &metadata.PartitionRecord{TopicID: id, PartitionID: 1, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}},
		{Type: metadata.TypeProducerIDs, ProducerIDs: &metadata.ProducerIDsRecord{BrokerID: 1, NextProducerID: 5000}},
	}
	if _, err := l.Append(recs); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := start(t, dir)
	cl := client(t, s)
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx, "old")
	if err != nil || td["old"].Err != nil || len(td["old"].Partitions) != 2 || td["old"].ID != kadm.TopicID(id) {
		t.Fatalf("migrated topic: %+v %v", td["old"], err)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rc.On("old", nil); err != nil || !hasConfig(v.Configs, "retention.ms", retention) {
		t.Fatalf("migrated config: %+v %v", v, err)
	}
	pid := initProducerID(t, ctx, cl)
	if pid < 5000 {
		t.Fatalf("producer id %d reuses ids below the migrated block (5000)", pid)
	}
	produce(t, cl, "old", 10, "m")
	if _, err := adm.CommitOffsets(ctx, "g", kadm.Offsets{"old": {0: {Topic: "old", Partition: 0, At: 3}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, metadata.LocalLogDir, "00000000000000000000.metadata.migrated")); err != nil {
		t.Fatalf("old log not renamed: %v", err)
	}
	s.Close()

	s = start(t, dir)
	defer s.Close()
	cl = client(t, s)
	adm = kadm.NewClient(cl)
	if td, err := adm.ListTopics(ctx, "old"); err != nil || len(td["old"].Partitions) != 2 {
		t.Fatalf("after restart: %+v %v", td["old"], err)
	}
	offs, err := adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("old", 0); !ok || o.At != 3 {
		t.Fatalf("committed offset after restart: %+v", o)
	}
	if pid2 := initProducerID(t, ctx, cl); pid2 <= pid {
		t.Fatalf("producer id %d after restart, had %d", pid2, pid)
	}
}

func hasConfig(cs []kadm.Config, name, value string) bool {
	for _, c := range cs {
		if c.Key == name && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}

func initProducerID(t *testing.T, ctx context.Context, cl interface {
	Request(context.Context, kmsg.Request) (kmsg.Response, error)
}) int64 {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = -1
	resp, err := cl.Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*kmsg.InitProducerIDResponse)
	if r.ErrorCode != 0 {
		t.Fatalf("init producer id: code %d", r.ErrorCode)
	}
	return r.ProducerID
}
