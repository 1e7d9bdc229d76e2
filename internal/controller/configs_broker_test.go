package controller

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
)

// brokerOp is one IncrementalAlterConfigs config (value "" with DELETE:
// null).
func brokerOp(name string, o kmsg.IncrementalAlterConfigOp, v string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Op = name, o
	if o != opDelete {
		cfg.Value = &v
	}
	return cfg
}

// incBroker sends one IncrementalAlterConfigs on BROKER resource name.
func incBroker(c *Controller, name string, validateOnly bool, cfgs ...kmsg.IncrementalAlterConfigsRequestResourceConfig) (int16, string) {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.ValidateOnly = validateOnly
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName, r.Configs = kmsg.ConfigResourceTypeBroker, name, cfgs
	req.Resources = append(req.Resources, r)
	rr := c.IncrementalAlterConfigs(context.Background(), req).Resources[0]
	msg := ""
	if rr.ErrorMessage != nil {
		msg = *rr.ErrorMessage
	}
	return rr.ErrorCode, msg
}

// TestControllerBrokerConfigsTable: which keys and values a BROKER
// resource takes, with Kafka's codes and messages; a refused change
// appends nothing.
func TestControllerBrokerConfigsTable(t *testing.T) {
	c, _ := newTestController(t, 1)
	for _, tc := range []struct {
		name     string
		resource string
		ops      []kmsg.IncrementalAlterConfigsRequestResourceConfig
		code     int16
		msg      string // a substring of the error message
	}{
		{"dynamic log key, default", "", []kmsg.IncrementalAlterConfigsRequestResourceConfig{brokerOp("log.retention.ms", opSet, "60000")}, 0, ""},
		{"dynamic log key, broker", "1", []kmsg.IncrementalAlterConfigsRequestResourceConfig{brokerOp("log.segment.bytes", opSet, "1048576")}, 0, ""},
		{"any broker id", "7", []kmsg.IncrementalAlterConfigsRequestResourceConfig{brokerOp("max.connections.per.ip", opSet, "50")}, 0, ""},
		{"throttle rate", "1", []kmsg.IncrementalAlterConfigsRequestResourceConfig{brokerOp("leader.replication.throttled.rate", opSet, "1048576")}, 0, ""},
		{"read-only key", "1", []kmsg.IncrementalAlterConfigsRequestResourceConfig{brokerOp("log.dirs", opSet, "/x")},
			kerr.InvalidRequest.Code, "Cannot update these configs dynamically: Set(log.dirs)"},
		{"read-only keys listed", "", []kmsg.IncrementalAlterConfigsRequestResourceConfig{brokerOp("num.partitions", opSet, "3"), brokerOp("log.retention.hours", opSet, "1")},
			kerr.InvalidRequest.Code, "Set(log.retention.hours, num.partitions)"},
		{"kafka-dynamic, not here", "1", []kmsg.IncrementalAlterConfigsRequestResourceConfig{brokerOp("num.io.threads", opSet, "2")},
			kerr.InvalidRequest.Code, "Cannot update these configs dynamically"},
		{"unknown key", "", []kmsg.IncrementalAlterConfigsRequestResourceConfig{brokerOp("no.such.key", opSet, "1")}, kerr.InvalidConfig.Code, "no.such.key"},
		{"not a number", "", []kmsg.IncrementalAlterConfigsRequestResourceConfig{brokerOp("log.retention.ms", opSet, "soon")},
			kerr.InvalidRequest.Code, "Invalid value soon for configuration log.retention.ms"},
		{"out of range", "1", []kmsg.IncrementalAlterConfigsRequestResourceConfig{brokerOp("log.segment.bytes", opSet, "10")},
			kerr.InvalidRequest.Code, "log.segment.bytes"},
		{"bad policy", "", []kmsg.IncrementalAlterConfigsRequestResourceConfig{brokerOp("log.cleanup.policy", opSet, "forever")}, kerr.InvalidRequest.Code, "log.cleanup.policy"},
		{"bad connection limit", "", []kmsg.IncrementalAlterConfigsRequestResourceConfig{brokerOp("max.connections", opSet, "0")}, kerr.InvalidRequest.Code, "max.connections"},
		{"negative throttle", "", []kmsg.IncrementalAlterConfigsRequestResourceConfig{brokerOp("follower.replication.throttled.rate", opSet, "-1")}, kerr.InvalidRequest.Code, "at least 0"},
		{"append to a non-list", "", []kmsg.IncrementalAlterConfigsRequestResourceConfig{brokerOp("log.retention.ms", opAppend, "1")}, kerr.InvalidConfig.Code, "log.retention.ms"},
		{"null value", "", []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "log.retention.ms", Op: opSet}}, kerr.InvalidRequest.Code, "Null value"},
		{"key twice", "", []kmsg.IncrementalAlterConfigsRequestResourceConfig{brokerOp("log.retention.ms", opSet, "1"), brokerOp("log.retention.ms", opDelete, "")}, kerr.InvalidRequest.Code, "duplicate"},
		{"bad broker name", "one", []kmsg.IncrementalAlterConfigsRequestResourceConfig{brokerOp("log.retention.ms", opSet, "1")}, kerr.InvalidRequest.Code, "base 10"},
		{"negative broker id", "-1", []kmsg.IncrementalAlterConfigsRequestResourceConfig{brokerOp("log.retention.ms", opSet, "1")}, kerr.InvalidRequest.Code, "negative"},
	} {
		before := c.image().BrokerConfigs
		code, msg := incBroker(c, tc.resource, false, tc.ops...)
		if code != tc.code || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %v %q, want %v %q", tc.name, kerr.ErrorForCode(code), msg, kerr.ErrorForCode(tc.code), tc.msg)
		}
		if tc.code != 0 && !equalBrokerConfigs(before, c.image().BrokerConfigs) {
			t.Errorf("%s: refused change altered %v", tc.name, c.image().BrokerConfigs)
		}
	}
	want := map[string]map[string]string{
		"":  {"log.retention.ms": "60000"},
		"1": {"log.segment.bytes": "1048576", "leader.replication.throttled.rate": "1048576"},
		"7": {"max.connections.per.ip": "50"},
	}
	if got := c.image().BrokerConfigs; !equalBrokerConfigs(got, want) {
		t.Fatalf("broker configs %v, want %v", got, want)
	}
}

func equalBrokerConfigs(a, b map[string]map[string]string) bool {
	return maps.EqualFunc(a, b, func(x, y map[string]string) bool { return maps.Equal(x, y) })
}

// TestControllerBrokerConfigsOps: SET / DELETE / APPEND / SUBTRACT,
// validate-only, AlterConfigs' replace semantics, per broker and default
// kept apart, and the records replayed after a restart and rebuilt from a
// snapshot.
func TestControllerBrokerConfigsOps(t *testing.T) {
	c, dir := newTestController(t, 1, "log.cleanup.policy=compact")
	check := func(step string, res string, want map[string]string) {
		t.Helper()
		if got := c.image().BrokerConfigs[res]; !maps.Equal(got, want) {
			t.Fatalf("%s: resource %q = %v, want %v", step, res, got, want)
		}
	}
	if code, msg := incBroker(c, "", true, brokerOp("log.retention.ms", opSet, "1000")); code != 0 {
		t.Fatalf("validate only: %s", msg)
	}
	check("validate only", "", nil)
	if code, msg := incBroker(c, "", false, brokerOp("log.retention.ms", opSet, "1000"), brokerOp("log.cleanup.policy", opAppend, "compact")); code != 0 {
		t.Fatalf("set: %s", msg)
	}
	// APPEND starts from Kafka's default (delete), not the static value.
	check("set", "", map[string]string{"log.retention.ms": "1000", "log.cleanup.policy": "delete,compact"})
	if code, msg := incBroker(c, "", false, brokerOp("log.cleanup.policy", opSubtract, "delete"), brokerOp("log.retention.ms", opDelete, "")); code != 0 {
		t.Fatalf("subtract: %s", msg)
	}
	check("subtract", "", map[string]string{"log.cleanup.policy": "compact"})
	if code, msg := incBroker(c, "2", false, brokerOp("log.retention.ms", opSet, "5000")); code != 0 {
		t.Fatalf("per broker: %s", msg)
	}
	check("per broker", "2", map[string]string{"log.retention.ms": "5000"})
	check("per broker leaves the default", "", map[string]string{"log.cleanup.policy": "compact"})

	// Legacy AlterConfigs replaces the resource's whole set.
	areq := kmsg.NewPtrAlterConfigsRequest()
	ar := kmsg.NewAlterConfigsRequestResource()
	ar.ResourceType, ar.ResourceName = kmsg.ConfigResourceTypeBroker, ""
	ac := kmsg.NewAlterConfigsRequestResourceConfig()
	v := "2000"
	ac.Name, ac.Value = "log.segment.bytes", &v
	ar.Configs = append(ar.Configs, ac)
	areq.Resources = append(areq.Resources, ar)
	if r := c.AlterConfigs(context.Background(), areq).Resources[0]; r.ErrorCode != 0 {
		t.Fatalf("alter configs: %v", r.ErrorMessage)
	}
	check("replace", "", map[string]string{"log.segment.bytes": "2000"})
	// Deleting the last key removes the resource.
	if code, msg := incBroker(c, "2", false, brokerOp("log.retention.ms", opDelete, "")); code != 0 {
		t.Fatalf("delete: %s", msg)
	}
	if _, ok := c.image().BrokerConfigs["2"]; ok {
		t.Fatalf("resource 2 left after its last key: %v", c.image().BrokerConfigs)
	}
	if code, msg := incBroker(c, "3", false, brokerOp("max.connections", opSet, "77")); code != 0 {
		t.Fatalf("broker 3: %s", msg)
	}
	want := c.image().BrokerConfigs

	// A snapshot rebuilds the same maps.
	snap, err := metadata.EncodeSnapshot(c.image())
	if err != nil {
		t.Fatal(err)
	}
	im, err := metadata.DecodeSnapshot("cluster", snap)
	if err != nil {
		t.Fatal(err)
	}
	if !equalBrokerConfigs(im.BrokerConfigs, want) {
		t.Fatalf("snapshot: %v, want %v", im.BrokerConfigs, want)
	}
	c.q.Close()
	q, err := metadata.OpenLocalQuorum(dir, "cluster", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if got := q.Publisher().Image().BrokerConfigs; !equalBrokerConfigs(got, want) {
		t.Fatalf("after replay %v, want %v", got, want)
	}
}

// TestControllerBrokerDefaultUncleanElects: turning on
// unclean.leader.election.enable as the cluster default elects an
// out-of-ISR leader for a leaderless partition of a topic without an
// override, as a topic override does.
func TestControllerBrokerDefaultUncleanElects(t *testing.T) {
	c, _ := newTestController(t, 2)
	ctx := context.Background()
	tp := topic("u", 1, 2)
	if r := c.CreateTopics(ctx, createReq(7, tp)); r.Topics[0].ErrorCode != 0 {
		t.Fatal(r.Topics[0].ErrorMessage)
	}
	commit := func(recs []metadata.Record) error {
		c.lock()
		defer c.unlock(ctx)
		return c.commitLocked(ctx, recs)
	}
	p := c.image().Topics["u"].Partitions[0]
	leader, other := p.Replicas[0], p.Replicas[1]
	// The ISR shrinks to the leader, then the leader is fenced: offline.
	isr := []int32{leader}
	if err := commit([]metadata.Record{{Type: metadata.TypePartitionChange, PartitionChange: &metadata.PartitionChangeRecord{
		TopicID: c.image().Topics["u"].ID, PartitionID: 0, ISR: isr}}}); err != nil {
		t.Fatal(err)
	}
	fenced := true
	if err := commit([]metadata.Record{{Type: metadata.TypeBrokerChange, BrokerChange: &metadata.BrokerChangeRecord{BrokerID: leader, Fenced: &fenced}}}); err != nil {
		t.Fatal(err)
	}
	noLeader := int32(-1)
	if err := commit([]metadata.Record{{Type: metadata.TypePartitionChange, PartitionChange: &metadata.PartitionChangeRecord{
		TopicID: c.image().Topics["u"].ID, PartitionID: 0, Leader: &noLeader}}}); err != nil {
		t.Fatal(err)
	}
	if code, msg := incBroker(c, "", false, brokerOp("unclean.leader.election.enable", opSet, "true")); code != 0 {
		t.Fatalf("set: %s", msg)
	}
	if got := c.image().Topics["u"].Partitions[0].Leader; got != other {
		t.Fatalf("leader %d, want the out-of-ISR replica %d", got, other)
	}
}
