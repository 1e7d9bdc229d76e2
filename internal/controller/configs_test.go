package controller

import (
	"context"
	"maps"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
)

func TestControllerNextTopicConfigs(t *testing.T) {
	c, _ := newTestController(t, 1, "log.cleanup.policy=compact")
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		name    string
		cur     map[string]string
		ops     []configOp
		replace bool
		want    map[string]string
		code    int16
	}{
		{"set and delete", map[string]string{"retention.ms": "1", "segment.bytes": "2048"},
			[]configOp{{"retention.ms", opSet, s("5")}, {"segment.bytes", opDelete, nil}},
			false, map[string]string{"retention.ms": "5"}, 0},
		{"append starts from the broker default", nil,
			[]configOp{{"cleanup.policy", opAppend, s("delete")}},
			false, map[string]string{"cleanup.policy": "compact,delete"}, 0},
		{"append skips present items", map[string]string{"cleanup.policy": "delete"},
			[]configOp{{"cleanup.policy", opAppend, s("delete,compact")}},
			false, map[string]string{"cleanup.policy": "delete,compact"}, 0},
		{"subtract to empty", map[string]string{"cleanup.policy": "delete"},
			[]configOp{{"cleanup.policy", opSubtract, s("delete")}},
			false, map[string]string{"cleanup.policy": ""}, 0},
		{"replace drops unnamed overrides", map[string]string{"retention.ms": "1", "segment.bytes": "2048"},
			[]configOp{{"retention.bytes", opSet, s("10")}},
			true, map[string]string{"retention.bytes": "10"}, 0},
		{"unknown key", nil, []configOp{{"nope", opSet, s("1")}}, false, nil, kerr.InvalidConfig.Code},
		{"append to a non-list", nil, []configOp{{"retention.ms", opAppend, s("1")}}, false, nil, kerr.InvalidConfig.Code},
		{"null value", nil, []configOp{{"retention.ms", opSet, nil}}, false, nil, kerr.InvalidRequest.Code},
		{"key twice", nil, []configOp{{"retention.ms", opSet, s("1")}, {"retention.ms", opDelete, nil}}, false, nil, kerr.InvalidRequest.Code},
		{"unknown operation", nil, []configOp{{"retention.ms", 9, s("1")}}, false, nil, kerr.InvalidRequest.Code},
	} {
		got, e := c.nextTopicConfigs(tc.cur, tc.ops, tc.replace)
		switch {
		case tc.code != 0 && (e == nil || e.code != tc.code):
			t.Errorf("%s: %v, want code %v", tc.name, e, kerr.ErrorForCode(tc.code))
		case tc.code == 0 && (e != nil || !maps.Equal(got, tc.want)):
			t.Errorf("%s: %v %v, want %v", tc.name, got, e, tc.want)
		}
	}
}

// TestControllerAlterConfigsPersist: an incremental change is a set of
// ConfigRecords in the metadata log, replayed after a restart; a
// validate-only one and a failing one append nothing.
func TestControllerAlterConfigsPersist(t *testing.T) {
	c, dir := newTestController(t, 1)
	ctx := context.Background()
	if r := c.CreateTopics(ctx, createReq(7, topic("t", 1, 1, "retention.ms", "1000"))); r.Topics[0].ErrorCode != 0 {
		t.Fatal(r.Topics[0].ErrorMessage)
	}
	inc := func(validateOnly bool, cfgs ...kmsg.IncrementalAlterConfigsRequestResourceConfig) int16 {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.ValidateOnly = validateOnly
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName, r.Configs = kmsg.ConfigResourceTypeTopic, "t", cfgs
		req.Resources = append(req.Resources, r)
		return c.IncrementalAlterConfigs(ctx, req).Resources[0].ErrorCode
	}
	op := func(name string, o kmsg.IncrementalAlterConfigOp, v string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Op = name, o
		if o != opDelete {
			cfg.Value = &v
		}
		return cfg
	}
	if code := inc(true, op("segment.bytes", opSet, "4096")); code != 0 {
		t.Fatalf("validate only: %v", kerr.ErrorForCode(code))
	}
	if code := inc(false, op("segment.bytes", opSet, "4096"), op("retention.ms", opSet, "-5")); code != kerr.InvalidConfig.Code {
		t.Fatalf("bad retention.ms: %v", kerr.ErrorForCode(code))
	}
	if got := c.image().Topics["t"].Configs; !maps.Equal(got, map[string]string{"retention.ms": "1000"}) {
		t.Fatalf("configs after validate-only and a failure: %v", got)
	}
	if code := inc(false, op("segment.bytes", opSet, "4096"), op("retention.ms", opDelete, "")); code != 0 {
		t.Fatalf("alter: %v", kerr.ErrorForCode(code))
	}
	want := map[string]string{"segment.bytes": "4096"}
	if got := c.image().Topics["t"].Configs; !maps.Equal(got, want) {
		t.Fatalf("configs %v, want %v", got, want)
	}
	c.q.Close()

	q, err := metadata.OpenLocalQuorum(dir, "cluster", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	im := q.Publisher().Image()
	if got := im.Topics["t"].Configs; !maps.Equal(got, want) {
		t.Fatalf("configs after replay %v, want %v", got, want)
	}
}
