package controller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/config"
	"samsa/internal/metadata"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newTestController returns a controller over a fresh log with brokers
// 1..n registered.
func newTestController(t *testing.T, n int, overrides ...string) (*Controller, string) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Load("", overrides, quiet)
	if err != nil {
		t.Fatal(err)
	}
	q, err := metadata.OpenLocalQuorum(dir, "cluster", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	c := New(q, cfg, quiet)
	for id := int32(1); id <= int32(n); id++ {
		if err := c.RegisterBroker(context.Background(), metadata.RegisterBrokerRecord{BrokerID: id, Endpoints: []metadata.Endpoint{{Listener: "PLAINTEXT", Host: "h", Port: 9092}}}); err != nil {
			t.Fatal(err)
		}
	}
	return c, dir
}

func createReq(version int16, topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsRequest {
	r := kmsg.NewPtrCreateTopicsRequest()
	r.Version = version
	r.Topics = topics
	return r
}

func topic(name string, parts int32, rf int16, cfg ...string) kmsg.CreateTopicsRequestTopic {
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = name, parts, rf
	for i := 0; i+1 < len(cfg); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = cfg[i], &cfg[i+1]
		t.Configs = append(t.Configs, c)
	}
	return t
}

func TestControllerCreateTopicsErrors(t *testing.T) {
	c, _ := newTestController(t, 1, "num.partitions=3")
	ctx := context.Background()
	if r := c.CreateTopics(ctx, createReq(7, topic("exists", 1, 1))); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(r.Topics[0].ErrorCode))
	}
	manual := topic("manual", -1, -1)
	manual.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{7}}}
	for _, tc := range []struct {
		t    kmsg.CreateTopicsRequestTopic
		want *kerr.Error
	}{
		{topic("exists", 1, 1), kerr.TopicAlreadyExists},
		{topic("bad name!", 1, 1), kerr.InvalidTopicException},
		{topic("..", 1, 1), kerr.InvalidTopicException},
		{topic("exists", 1, 1), kerr.TopicAlreadyExists},
		{topic("zero", 0, 1), kerr.InvalidPartitions},
		{topic("rf0", 1, 0), kerr.InvalidReplicationFactor},
		{topic("rf2", 1, 2), kerr.InvalidReplicationFactor},
		{topic("cfg", 1, 1, "cleanup.policy", "shred"), kerr.InvalidConfig},
		{topic("cfg2", 1, 1, "bogus.key", "1"), kerr.InvalidConfig},
		{manual, kerr.InvalidReplicaAssignment},
		{topic("defaults", -1, -1), nil},
	} {
		r := c.CreateTopics(ctx, createReq(7, tc.t))
		got := kerr.ErrorForCode(r.Topics[0].ErrorCode)
		if got != tc.want && !(tc.want == nil && got == nil) {
			t.Errorf("%s: got %v, want %v", tc.t.Topic, got, tc.want)
		}
	}
	if d := c.image().Topics["defaults"]; d == nil || len(d.Partitions) != 3 {
		t.Fatalf("num.partitions default not used: %+v", d)
	}
	// The same topic twice in one request: INVALID_REQUEST for both.
	r := c.CreateTopics(ctx, createReq(7, topic("twice", 1, 1), topic("twice", 1, 1)))
	for _, rt := range r.Topics {
		if rt.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("duplicate in request: %v", kerr.ErrorForCode(rt.ErrorCode))
		}
	}
}

func TestControllerCreateTopicsValidateOnly(t *testing.T) {
	c, _ := newTestController(t, 1)
	req := createReq(7, topic("v", 4, 1, "retention.ms", "1000"))
	req.ValidateOnly = true
	r := c.CreateTopics(context.Background(), req)
	if r.Topics[0].ErrorCode != 0 || r.Topics[0].NumPartitions != 4 {
		t.Fatalf("validate only: %+v", r.Topics[0])
	}
	if _, ok := c.image().Topics["v"]; ok {
		t.Fatal("validate-only created the topic")
	}
}

func TestControllerSurvivesRestart(t *testing.T) {
	c, dir := newTestController(t, 1)
	ctx := context.Background()
	c.CreateTopics(ctx, createReq(7, topic("a", 2, 1, "cleanup.policy", "compact")))
	pid1, _ := c.AllocateProducerID(ctx)
	pid2, _ := c.AllocateProducerID(ctx)
	if pid2 != pid1+1 {
		t.Fatalf("producer ids %d %d", pid1, pid2)
	}
	c.q.Close()

	q, err := metadata.OpenLocalQuorum(dir, "cluster", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	a := q.Publisher().Image().Topics["a"]
	if a == nil || len(a.Partitions) != 2 || a.Configs["cleanup.policy"] != "compact" {
		t.Fatalf("replayed topic %+v", a)
	}
	c2 := New(q, c.cfg, quiet)
	pid3, _ := c2.AllocateProducerID(ctx)
	if pid3 <= pid2 {
		t.Fatalf("producer id %d reused after restart (had %d)", pid3, pid2)
	}
}

func TestControllerCreatePartitionsIncreaseOnly(t *testing.T) {
	c, _ := newTestController(t, 1)
	ctx := context.Background()
	c.CreateTopics(ctx, createReq(7, topic("a", 2, 1)))
	req := func(name string, count int32) *kmsg.CreatePartitionsRequest {
		r := kmsg.NewPtrCreatePartitionsRequest()
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = name, count
		r.Topics = append(r.Topics, rt)
		return r
	}
	for _, tc := range []struct {
		name  string
		count int32
		want  *kerr.Error
	}{
		{"a", 1, kerr.InvalidPartitions},
		{"a", 2, kerr.InvalidPartitions},
		{"missing", 3, kerr.UnknownTopicOrPartition},
		{"a", 5, nil},
	} {
		r := c.CreatePartitions(ctx, req(tc.name, tc.count))
		if got := kerr.ErrorForCode(r.Topics[0].ErrorCode); got != tc.want && !(got == nil && tc.want == nil) {
			t.Errorf("%s -> %d: got %v want %v", tc.name, tc.count, got, tc.want)
		}
	}
	if n := len(c.image().Topics["a"].Partitions); n != 5 {
		t.Fatalf("partitions %d, want 5", n)
	}
}

func TestControllerDeleteTopics(t *testing.T) {
	c, _ := newTestController(t, 1)
	ctx := context.Background()
	c.CreateTopics(ctx, createReq(7, topic("a", 1, 1), topic("b", 1, 1)))
	id := c.image().Topics["b"].ID
	r := kmsg.NewPtrDeleteTopicsRequest()
	r.Version = 6
	name, missing := "a", "missing"
	r.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: &name}, {TopicID: id}, {Topic: &missing}, {TopicID: [16]byte{9}}}
	resp := c.DeleteTopics(ctx, r)
	want := []*kerr.Error{nil, nil, kerr.UnknownTopicOrPartition, kerr.UnknownTopicID}
	for i, w := range want {
		if got := kerr.ErrorForCode(resp.Topics[i].ErrorCode); got != w && !(got == nil && w == nil) {
			t.Errorf("delete %d: got %v want %v", i, got, w)
		}
	}
	if len(c.image().Topics) != 0 {
		t.Fatalf("topics left: %v", c.image().Topics)
	}
}

// TestControllerInternalTopicCapsMinISR: an internal topic's
// min.insync.replicas is capped by its replication factor
// (__transaction_state asks for 2 by default), and a replication factor
// above the active brokers is refused (FindCoordinator then answers
// COORDINATOR_NOT_AVAILABLE), as in Kafka.
func TestControllerInternalTopicCapsMinISR(t *testing.T) {
	c, _ := newTestController(t, 1)
	ctx := context.Background()
	err := c.CreateInternalTopic(ctx, "__transaction_state", 3, 3, map[string]string{"min.insync.replicas": "2"})
	if !errors.Is(err, ErrReplicationFactor) || !strings.Contains(err.Error(), "only 1 broker(s) are registered") {
		t.Fatalf("rf 3 on one broker: %v", err)
	}
	if err := c.CreateInternalTopic(ctx, "__transaction_state", 3, 1,
		map[string]string{"min.insync.replicas": "2", "cleanup.policy": "compact"}); err != nil {
		t.Fatal(err)
	}
	tp := c.image().Topics["__transaction_state"]
	if tp == nil || len(tp.Partitions) != 3 || len(tp.Partitions[0].Replicas) != 1 {
		t.Fatalf("topic %+v", tp)
	}
	if got := tp.Configs["min.insync.replicas"]; got != "1" {
		t.Fatalf("min.insync.replicas %q, want 1", got)
	}
	if got := tp.Configs["cleanup.policy"]; got != "compact" {
		t.Fatalf("cleanup.policy %q", got)
	}
}
