package api_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// startOffset is the log start offset of a partition (ListOffsets -2).
func (n *node) startOffset(topic string, partition int32) int64 {
	n.t.Helper()
	offs, err := n.admin().ListStartOffsets(ctxT(n.t), topic)
	if err != nil {
		n.t.Fatal(err)
	}
	o, ok := offs.Lookup(topic, partition)
	if !ok || o.Err != nil {
		n.t.Fatalf("start offset of %s-%d: %+v", topic, partition, o)
	}
	return o.Offset
}

// deleteRecords trims one partition with kadm and returns the response.
func (n *node) deleteRecords(topic string, partition int32, offset int64) kadm.DeleteRecordsResponse {
	n.t.Helper()
	os := kadm.Offsets{}
	os.AddOffset(topic, partition, offset, -1)
	resp, err := n.admin().DeleteRecords(ctxT(n.t), os)
	if err != nil {
		n.t.Fatal(err)
	}
	r, ok := resp.Lookup(topic, partition)
	if !ok {
		n.t.Fatalf("no delete records answer for %s-%d", topic, partition)
	}
	return r
}

// consumeFrom reads partition 0 of topic from the earliest offset until
// want records arrived and returns their offsets.
func (n *node) consumeFrom(topic string, want int) []int64 {
	n.t.Helper()
	cl := n.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := ctxT(n.t)
	var offs []int64
	for len(offs) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			n.t.Fatalf("consumed %d of %d records: %v", len(offs), want, err)
		}
		fs.EachError(func(t string, p int32, err error) { n.t.Fatalf("fetch %s-%d: %v", t, p, err) })
		fs.EachRecord(func(r *kgo.Record) { offs = append(offs, r.Offset) })
	}
	return offs
}

// TestAPIDeleteRecordsAdvancesLogStart: after DeleteRecords a consumer
// from the start begins at the new log start, ListOffsets earliest
// reports it, a fetch below it is OFFSET_OUT_OF_RANGE with the log start
// filled, and the log start survives a restart.
func TestAPIDeleteRecordsAdvancesLogStart(t *testing.T) {
	dir := "log.dirs=" + t.TempDir()
	n := startNode(t, dir)
	n.createTopic("trim", 1, map[string]*string{"segment.bytes": ptr("1024")})
	produceN(t, n, "trim", 0, 100)

	if r := n.deleteRecords("trim", 0, 40); r.Err != nil || r.LowWatermark != 40 {
		t.Fatalf("delete records before 40: %+v", r)
	}
	if got := n.startOffset("trim", 0); got != 40 {
		t.Fatalf("earliest offset %d, want 40", got)
	}
	if offs := n.consumeFrom("trim", 60); offs[0] != 40 || offs[59] != 99 {
		t.Fatalf("consumed offsets %d..%d, want 40..99", offs[0], offs[len(offs)-1])
	}
	// An offset below the log start is no error and changes nothing.
	if r := n.deleteRecords("trim", 0, 10); r.Err != nil || r.LowWatermark != 40 {
		t.Fatalf("delete records before 10: %+v", r)
	}

	c := n.raw()
	fr := c.do(fetchReq(12, "trim", 0, 5)).(*kmsg.FetchResponse)
	if p := fr.Topics[0].Partitions[0]; p.ErrorCode != kerr.OffsetOutOfRange.Code || p.LogStartOffset != 40 || p.HighWatermark != 100 {
		t.Fatalf("fetch below the log start: code %d log start %d hw %d", p.ErrorCode, p.LogStartOffset, p.HighWatermark)
	}

	// -1 deletes up to the high watermark.
	if r := n.deleteRecords("trim", 0, -1); r.Err != nil || r.LowWatermark != 100 {
		t.Fatalf("delete records before the high watermark: %+v", r)
	}
	n.s.Close()

	n2 := startNode(t, dir)
	if got := n2.startOffset("trim", 0); got != 100 {
		t.Fatalf("earliest offset after restart %d, want 100", got)
	}
	if got := n2.endOffset("trim", 0); got != 100 {
		t.Fatalf("end offset after restart %d, want 100", got)
	}
	produceN(t, n2, "trim", 100, 1)
	if offs := n2.consumeFrom("trim", 1); offs[0] != 100 {
		t.Fatalf("first offset after restart %d, want 100", offs[0])
	}
}

// TestAPIDeleteRecordsErrors: per-partition codes on a raw request, one
// bad partition not failing the others.
func TestAPIDeleteRecordsErrors(t *testing.T) {
	n := startNode(t)
	n.createTopic("dr", 2, nil)
	n.createTopic("compacted", 1, map[string]*string{"cleanup.policy": ptr("compact")})
	produceN(t, n, "dr", 0, 10)

	req := kmsg.NewPtrDeleteRecordsRequest()
	req.Version = 2
	// Each answer is one topic entry, so the answers keep the order asked.
	add := func(topic string, partition int32, offset int64) {
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = topic
		p := kmsg.NewDeleteRecordsRequestTopicPartition()
		p.Partition, p.Offset = partition, offset
		rt.Partitions = append(rt.Partitions, p)
		req.Topics = append(req.Topics, rt)
	}
	hw := map[int32]int64{}
	for p := int32(0); p < 2; p++ {
		hw[p] = n.endOffset("dr", p)
	}
	big := int32(0)
	if hw[1] > hw[0] {
		big = 1
	}
	add("dr", big, hw[big]+1) // above the high watermark
	add("dr", 1-big, -2)      // below -1
	add("dr", 7, 0)           // no such partition
	add("missing", 0, 0)      // no such topic
	add("compacted", 0, -1)   // cleanup.policy=compact
	add("dr", big, hw[big])   // exactly the high watermark: fine
	resp := n.raw().do(req).(*kmsg.DeleteRecordsResponse)
	want := []struct {
		code int16
		low  int64
	}{
		{kerr.OffsetOutOfRange.Code, -1},
		{kerr.OffsetOutOfRange.Code, -1},
		{kerr.UnknownTopicOrPartition.Code, -1},
		{kerr.UnknownTopicOrPartition.Code, -1},
		{kerr.PolicyViolation.Code, -1},
		{0, hw[big]},
	}
	var got []kmsg.DeleteRecordsResponseTopicPartition
	for _, rt := range resp.Topics {
		got = append(got, rt.Partitions...)
	}
	if len(got) != len(want) {
		t.Fatalf("%d partition answers, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].ErrorCode != w.code || got[i].LowWatermark != w.low {
			t.Errorf("answer %d (partition %d): code %v low watermark %d, want %v %d", i, got[i].Partition,
				kerr.ErrorForCode(got[i].ErrorCode), got[i].LowWatermark, kerr.ErrorForCode(w.code), w.low)
		}
	}
	if got := n.startOffset("dr", big); got != hw[big] {
		t.Fatalf("log start %d, want %d", got, hw[big])
	}
	if got := n.startOffset("dr", 1-big); got != 0 {
		t.Fatalf("log start of the untouched partition %d, want 0", got)
	}
}

func ptr(s string) *string { return &s }

// topicConfigs describes a topic and returns its configs by name.
func (n *node) topicConfigs(topic string) map[string]kadm.Config {
	n.t.Helper()
	rcs, err := n.admin().DescribeTopicConfigs(ctxT(n.t), topic)
	if err != nil {
		n.t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		n.t.Fatalf("describe %s: %v %v", topic, err, rc.Err)
	}
	out := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		out[c.Key] = c
	}
	return out
}

func wantConfig(t *testing.T, cfgs map[string]kadm.Config, key, value string, source kmsg.ConfigSource) {
	t.Helper()
	if c := cfgs[key]; c.MaybeValue() != value || c.Source != source {
		t.Errorf("%s = %q (%v), want %q (%v)", key, c.MaybeValue(), c.Source, value, source)
	}
}

// TestAPIIncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT change
// the overrides DescribeConfigs reports, the open log takes them, and they
// survive a restart.
func TestAPIIncrementalAlterConfigs(t *testing.T) {
	dir := "log.dirs=" + t.TempDir()
	n := startNode(t, dir)
	n.createTopic("inc", 1, map[string]*string{"retention.ms": ptr("3600000")})
	adm := n.admin()
	ctx := ctxT(t)
	alter := func(ops ...kadm.AlterConfig) {
		t.Helper()
		resp, err := adm.AlterTopicConfigs(ctx, ops, "inc")
		if err != nil {
			t.Fatal(err)
		}
		if r, err := resp.On("inc", nil); err != nil || r.Err != nil {
			t.Fatalf("alter %+v: %v %v %s", ops, err, r.Err, r.ErrMessage)
		}
	}
	alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "segment.bytes", Value: ptr("2048")},
		kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "retention.ms"},
		kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: ptr("compact")})
	cfgs := n.topicConfigs("inc")
	wantConfig(t, cfgs, "segment.bytes", "2048", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cfgs, "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cfgs, "cleanup.policy", "delete,compact", kmsg.ConfigSourceDynamicTopicConfig)

	alter(kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: ptr("delete")})
	wantConfig(t, n.topicConfigs("inc"), "cleanup.policy", "compact", kmsg.ConfigSourceDynamicTopicConfig)
	// The open log took the new policy: a keyless record is refused now.
	cl := n.client(kgo.RecordRetries(1))
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "inc", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless record after cleanup.policy=compact: %v, want INVALID_RECORD", err)
	}
	// DELETE of a key without an override is no error.
	alter(kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "max.message.bytes"})
	n.s.Close()

	n2 := startNode(t, dir)
	cfgs = n2.topicConfigs("inc")
	wantConfig(t, cfgs, "segment.bytes", "2048", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cfgs, "cleanup.policy", "compact", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cfgs, "max.message.bytes", "1048588", kmsg.ConfigSourceDefaultConfig)
}

// TestAPIAlterConfigsReplacesOverrides: legacy AlterConfigs replaces the
// whole override set, as Kafka does.
func TestAPIAlterConfigsReplacesOverrides(t *testing.T) {
	n := startNode(t)
	n.createTopic("legacy", 1, map[string]*string{"retention.ms": ptr("3600000"), "segment.bytes": ptr("4096")})
	resp, err := n.admin().AlterTopicConfigsState(ctxT(t), []kadm.AlterConfig{{Name: "retention.bytes", Value: ptr("1000000")}}, "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if r, err := resp.On("legacy", nil); err != nil || r.Err != nil {
		t.Fatalf("alter: %v %v", err, r.Err)
	}
	cfgs := n.topicConfigs("legacy")
	wantConfig(t, cfgs, "retention.bytes", "1000000", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cfgs, "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cfgs, "segment.bytes", "1073741824", kmsg.ConfigSourceDefaultConfig)
}

// TestAPIAlterConfigsValidateOnlyAndErrors: validate_only stores nothing;
// bad keys, values, topics and resources get Kafka's codes and leave the
// resource unchanged.
func TestAPIAlterConfigsValidateOnlyAndErrors(t *testing.T) {
	n := startNode(t)
	n.createTopic("v", 1, nil)
	adm := n.admin()
	ctx := ctxT(t)
	resp, err := adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: ptr("1000")}}, "v")
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := resp.On("v", nil); r.Err != nil {
		t.Fatalf("validate only: %v", r.Err)
	}
	wantConfig(t, n.topicConfigs("v"), "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)

	inc := func(typ kmsg.ConfigResourceType, name string, cfgs ...kmsg.IncrementalAlterConfigsRequestResourceConfig) kmsg.IncrementalAlterConfigsRequestResource {
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName, r.Configs = typ, name, cfgs
		return r
	}
	op := func(name string, o kmsg.IncrementalAlterConfigOp, v *string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = name, o, v
		return c
	}
	topic := kmsg.ConfigResourceTypeTopic
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.Version = 1
	req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{
		inc(topic, "v", op("retention.ms", 0, ptr("5000")), op("no.such.key", 0, ptr("1"))),
		inc(topic, "missing", op("retention.ms", 0, ptr("5000"))),
		inc(topic, "bad name!", op("retention.ms", 0, ptr("5000"))),
		inc(kmsg.ConfigResourceTypeBroker, "1", op("log.dirs", 0, ptr("/elsewhere"))), // read-only: INVALID_REQUEST
	}
	c := n.raw()
	ir := c.do(req).(*kmsg.IncrementalAlterConfigsResponse)
	wantCodes := []int16{kerr.InvalidConfig.Code, kerr.UnknownTopicOrPartition.Code, kerr.InvalidTopicException.Code, kerr.InvalidRequest.Code}
	if len(ir.Resources) != len(wantCodes) {
		t.Fatalf("%d resources answered", len(ir.Resources))
	}
	for i, w := range wantCodes {
		if r := ir.Resources[i]; r.ErrorCode != w || r.ErrorMessage == nil {
			t.Errorf("resource %q: code %v, want %v", r.ResourceName, kerr.ErrorForCode(r.ErrorCode), kerr.ErrorForCode(w))
		}
	}

	for _, tc := range []struct {
		cfg  kmsg.IncrementalAlterConfigsRequestResourceConfig
		code int16
	}{
		{op("retention.ms", 0, ptr("soon")), kerr.InvalidConfig.Code},
		{op("cleanup.policy", 0, ptr("delete,forever")), kerr.InvalidConfig.Code},
		{op("min.cleanable.dirty.ratio", 0, ptr("1.5")), kerr.InvalidConfig.Code},
		{op("retention.ms", 2, ptr("1")), kerr.InvalidConfig.Code}, // APPEND to a non-list
		{op("retention.ms", 0, nil), kerr.InvalidRequest.Code},
	} {
		req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{inc(topic, "v", tc.cfg)}
		r := c.do(req).(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
		if r.ErrorCode != tc.code || r.ErrorMessage == nil {
			t.Errorf("%s op %d: code %v, want %v", tc.cfg.Name, tc.cfg.Op, kerr.ErrorForCode(r.ErrorCode), kerr.ErrorForCode(tc.code))
		}
	}
	// The key named in the message.
	req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{inc(topic, "v", op("segment.bytes", 0, ptr("10")))}
	if r := c.do(req).(*kmsg.IncrementalAlterConfigsResponse).Resources[0]; r.ErrorMessage == nil || !strings.Contains(*r.ErrorMessage, "segment.bytes") {
		t.Errorf("error message %v does not name the key", r.ErrorMessage)
	}
	// A resource listed twice: both INVALID_REQUEST, nothing applied.
	req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{
		inc(topic, "v", op("retention.ms", 0, ptr("5000"))), inc(topic, "v", op("retention.ms", 0, ptr("6000"))),
	}
	for _, r := range c.do(req).(*kmsg.IncrementalAlterConfigsResponse).Resources {
		if r.ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("duplicate resource: code %v", kerr.ErrorForCode(r.ErrorCode))
		}
	}
	// Legacy AlterConfigs: a null value is INVALID_REQUEST.
	areq := kmsg.NewPtrAlterConfigsRequest()
	areq.Version = 2
	ar := kmsg.NewAlterConfigsRequestResource()
	ar.ResourceType, ar.ResourceName = topic, "v"
	ac := kmsg.NewAlterConfigsRequestResourceConfig()
	ac.Name = "retention.ms"
	ar.Configs = append(ar.Configs, ac)
	areq.Resources = append(areq.Resources, ar)
	if r := c.do(areq).(*kmsg.AlterConfigsResponse).Resources[0]; r.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("null value: code %v", kerr.ErrorForCode(r.ErrorCode))
	}
	wantConfig(t, n.topicConfigs("v"), "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
}

// TestAPIProduceKeylessToCompactedTopic: a record without a key is
// INVALID_RECORD on a compacted topic (compressed or not) and fine on a
// delete-policy topic.
func TestAPIProduceKeylessToCompactedTopic(t *testing.T) {
	n := startNode(t)
	n.createTopic("keyed", 1, map[string]*string{"cleanup.policy": ptr("compact,delete")})
	n.createTopic("plain", 1, nil)
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.ZstdCompression()} {
		cl := n.client(kgo.ProducerBatchCompression(codec), kgo.RecordRetries(1))
		ctx := ctxT(t)
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: "keyed", Value: []byte("no key")}).FirstErr()
		if !errors.Is(err, kerr.InvalidRecord) {
			t.Fatalf("keyless record to a compacted topic: %v, want INVALID_RECORD", err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "keyed", Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("keyed record: %v", err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "plain", Value: []byte("no key")}).FirstErr(); err != nil {
			t.Fatalf("keyless record to a delete topic: %v", err)
		}
	}
	if got := n.endOffset("keyed", 0); got != 2 {
		t.Fatalf("compacted topic end offset %d, want 2 (the keyless records stored nothing)", got)
	}
}

// TestAPIOffsetsTopicConfigs: __consumer_offsets gets Kafka's configs.
func TestAPIOffsetsTopicConfigs(t *testing.T) {
	n := startNode(t, "offsets.topic.num.partitions=1", "offsets.topic.segment.bytes=1048576")
	c := n.raw()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version = 3
	req.CoordinatorKey = "g"
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r := c.do(req).(*kmsg.FindCoordinatorResponse); r.ErrorCode == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("find coordinator: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cfgs := n.topicConfigs("__consumer_offsets")
	wantConfig(t, cfgs, "cleanup.policy", "compact", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cfgs, "segment.bytes", "1048576", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cfgs, "compression.type", "producer", kmsg.ConfigSourceDynamicTopicConfig)
}

// TestAPIRetentionAdvancesLogStart: with a short
// log.retention.check.interval.ms, retention.bytes deletes the oldest
// segments of a topic with small segments; ListOffsets earliest moves up
// and a consumer from the start begins there.
func TestAPIRetentionAdvancesLogStart(t *testing.T) {
	n := startNode(t, "log.retention.check.interval.ms=50")
	n.createTopic("ret", 1, map[string]*string{"segment.bytes": ptr("1024"), "retention.bytes": ptr("2048"), "file.delete.delay.ms": ptr("0")})
	cl := n.client(kgo.DefaultProduceTopic("ret"))
	value := []byte(strings.Repeat("v", 200))
	for i := 0; i < 40; i++ {
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	start := n.startOffset("ret", 0)
	for start == 0 && time.Now().Before(deadline) {
		time.Sleep(25 * time.Millisecond)
		start = n.startOffset("ret", 0)
	}
	if start == 0 {
		t.Fatal("retention never advanced the log start offset")
	}
	// Let the retention pass finish: the start stays put once the log
	// holds no more than retention.bytes besides the active segment.
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		next := n.startOffset("ret", 0)
		if next == start {
			break
		}
		start = next
	}
	if end := n.endOffset("ret", 0); start >= end {
		t.Fatalf("log start %d, end %d: retention deleted the active segment", start, end)
	}
	if offs := n.consumeFrom("ret", int(40-start)); offs[0] != start {
		t.Fatalf("first consumed offset %d, want the log start %d", offs[0], start)
	}
}
