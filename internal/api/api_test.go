package api_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"samsa/internal/api"
	"samsa/internal/record"
)

func TestAPIProduceConsumeRoundTrip(t *testing.T) {
	n := startNode(t)
	n.createTopic("round", 3, nil)
	cl := n.client(kgo.DefaultProduceTopic("round")) // idempotent by default
	ctx := ctxT(t)
	const total = 500
	var rs []*kgo.Record
	for i := 0; i < total; i++ {
		rs = append(rs, &kgo.Record{Key: []byte(strconv.Itoa(i % 7)), Value: []byte(fmt.Sprintf("v-%d", i))})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cons := n.client(kgo.ConsumeTopics("round"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	lastOffset := map[int32]int64{}
	for len(seen) < total {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(seen), total, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if last, ok := lastOffset[r.Partition]; ok && r.Offset != last+1 {
				t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, last)
			}
			lastOffset[r.Partition] = r.Offset
			seen[string(r.Value)] = true
		})
	}
	var sum int64
	for p := int32(0); p < 3; p++ {
		sum += n.endOffset("round", p)
	}
	if sum != total {
		t.Fatalf("end offsets sum to %d, want %d", sum, total)
	}
}

// TestAPIProduceCompressed checks that compressed batches are stored as
// sent and read back.
func TestAPIProduceCompressed(t *testing.T) {
	n := startNode(t)
	n.createTopic("comp", 1, nil)
	ctx := ctxT(t)
	for _, codec := range []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		cl := n.client(kgo.DefaultProduceTopic("comp"), kgo.ProducerBatchCompression(codec))
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("compressed compressed compressed")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons := n.client(kgo.ConsumeTopics("comp"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < 4 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 4", got)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) != "compressed compressed compressed" {
				t.Fatalf("value %q", r.Value)
			}
			got++
		})
	}
}

func TestAPIAdminTopicsAndPartitions(t *testing.T) {
	n := startNode(t)
	adm := n.admin()
	ctx := ctxT(t)
	if _, err := adm.CreateTopics(ctx, 2, 1, nil, "a1", "a2"); err != nil {
		t.Fatal(err)
	}
	resp, err := adm.CreateTopics(ctx, 1, 1, nil, "a1")
	if err != nil || resp["a1"].Err != kerr.TopicAlreadyExists {
		t.Fatalf("duplicate create: %v %v", resp["a1"].Err, err)
	}
	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !td.Has("a1") || !td.Has("a2") || len(td["a1"].Partitions) != 2 || td["a1"].ID == (kadm.TopicID{}) {
		t.Fatalf("topics: %+v", td)
	}
	if _, err := adm.CreatePartitions(ctx, 3, "a1"); err != nil {
		t.Fatal(err)
	}
	cp, err := adm.UpdatePartitions(ctx, 2, "a1")
	if err != nil || cp["a1"].Err != kerr.InvalidPartitions {
		t.Fatalf("shrinking partitions: %+v %v", cp["a1"], err)
	}
	td, _ = n.admin().ListTopics(ctx, "a1")
	if len(td["a1"].Partitions) != 5 {
		t.Fatalf("a1 has %d partitions, want 5", len(td["a1"].Partitions))
	}
	dr, err := adm.DeleteTopics(ctx, "a2")
	if err != nil || dr["a2"].Err != nil {
		t.Fatalf("delete: %+v %v", dr["a2"], err)
	}
	// A fresh client: kgo caches metadata for MetadataMinAge.
	td, _ = n.admin().ListTopics(ctx)
	if td.Has("a2") {
		t.Fatal("a2 still listed after delete")
	}
	dr, err = adm.DeleteTopics(ctx, "never")
	if err != nil || dr["never"].Err != kerr.UnknownTopicOrPartition {
		t.Fatalf("delete unknown: %+v %v", dr["never"], err)
	}
}

func TestAPIDescribeConfigs(t *testing.T) {
	n := startNode(t, "log.retention.hours=48")
	retention := "3600000"
	n.createTopic("cfg", 1, map[string]*string{"retention.ms": &retention})
	adm := n.admin()
	ctx := ctxT(t)
	rcs, err := adm.DescribeTopicConfigs(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("cfg", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe cfg: %v %v", err, rc.Err)
	}
	byName := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		byName[c.Key] = c
	}
	if c := byName["retention.ms"]; c.MaybeValue() != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms: %+v", c)
	}
	if c := byName["cleanup.policy"]; c.MaybeValue() != "delete" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("cleanup.policy: %+v", c)
	}

	// Config name filter, synonyms and documentation on a raw request.
	c := n.raw()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = 4
	req.IncludeSynonyms, req.IncludeDocumentation = true, true
	for _, r := range []struct {
		typ  kmsg.ConfigResourceType
		name string
	}{{kmsg.ConfigResourceTypeTopic, "cfg"}, {kmsg.ConfigResourceTypeTopic, "missing"}, {kmsg.ConfigResourceTypeTopic, "bad name!"}, {kmsg.ConfigResourceTypeBroker, "1"}} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = r.typ, r.name
		rr.ConfigNames = []string{"retention.ms", "log.retention.hours"}
		req.Resources = append(req.Resources, rr)
	}
	resp := c.do(req).(*kmsg.DescribeConfigsResponse)
	if len(resp.Resources) != 4 {
		t.Fatalf("%d resources", len(resp.Resources))
	}
	topic := resp.Resources[0]
	if topic.ErrorCode != 0 || len(topic.Configs) != 1 || topic.Configs[0].Name != "retention.ms" || len(topic.Configs[0].ConfigSynonyms) == 0 || topic.Configs[0].Documentation == nil {
		t.Fatalf("filtered topic configs: %+v", topic)
	}
	if resp.Resources[1].ErrorCode != kerr.UnknownTopicOrPartition.Code || resp.Resources[2].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("missing/bad topic codes %d %d", resp.Resources[1].ErrorCode, resp.Resources[2].ErrorCode)
	}
	broker := resp.Resources[3]
	if broker.ErrorCode != 0 || len(broker.Configs) != 1 || *broker.Configs[0].Value != "48" || broker.Configs[0].Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Fatalf("broker configs: %+v", broker)
	}
}

func TestAPIListOffsetsByTimestamp(t *testing.T) {
	n := startNode(t)
	n.createTopic("times", 1, nil)
	c := n.raw()
	base := time.Now().Add(-time.Hour).UnixMilli()
	for i := int64(0); i < 5; i++ { // offsets 0..9, two per batch, ts base+0,10,..,40
		pr := c.do(produceReq(9, "times", 0, batch(t, 2, "t", base+10*i))).(*kmsg.ProduceResponse)
		if code := pr.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(code))
		}
	}
	list := func(version int16, ts int64) kmsg.ListOffsetsResponseTopicPartition {
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = version
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "times"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = ts
		rp.MaxNumOffsets = 1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return c.do(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
	}
	for _, tc := range []struct {
		name   string
		ts     int64
		offset int64
		stamp  int64
	}{
		{"latest", -1, 10, -1},
		{"earliest", -2, 0, -1},
		{"max timestamp", -3, 8, base + 40},
		{"exact timestamp", base + 20, 4, base + 20},
		{"between timestamps", base + 25, 6, base + 30},
		{"before everything", base - 1000, 0, base},
		{"after everything", base + 41, -1, -1},
	} {
		got := list(7, tc.ts)
		if got.ErrorCode != 0 || got.Offset != tc.offset || got.Timestamp != tc.stamp {
			t.Errorf("%s: offset %d ts %d code %d, want offset %d ts %d", tc.name, got.Offset, got.Timestamp, got.ErrorCode, tc.offset, tc.stamp)
		}
		if tc.offset >= 0 && got.LeaderEpoch < 0 {
			t.Errorf("%s: leader epoch %d", tc.name, got.LeaderEpoch)
		}
	}
	if got := list(0, -1); len(got.OldStyleOffsets) != 1 || got.OldStyleOffsets[0] != 10 {
		t.Errorf("v0 latest: %+v", got.OldStyleOffsets)
	}
	// kadm's view agrees.
	offs, err := n.admin().ListOffsetsAfterMilli(ctxT(t), base+25, "times")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("times", 0); o.Offset != 6 {
		t.Fatalf("kadm ListOffsetsAfterMilli: %+v", o)
	}
}

func TestAPIFetchLongPollWokenByAppend(t *testing.T) {
	n := startNode(t)
	n.createTopic("poll", 1, nil)
	c := n.raw()
	req := fetchReq(11, "poll", 0, 0)
	req.MaxWaitMillis = 20_000
	req.MinBytes = 1
	began := time.Now()
	corr := c.send(req)
	time.Sleep(100 * time.Millisecond)
	// While the fetch is parked, the same connection keeps serving.
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	mdCorr := c.send(md)
	cl := n.client(kgo.DefaultProduceTopic("poll"))
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("wake")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	resp := &kmsg.FetchResponse{Version: 11}
	got, err := c.recv(resp)
	if err != nil || got != corr {
		t.Fatalf("fetch: corr %d err %v", got, err)
	}
	if waited := time.Since(began); waited > 10*time.Second {
		t.Fatalf("fetch answered after %v: not woken by the append", waited)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.RecordBatches) == 0 || p.HighWatermark != 1 {
		t.Fatalf("fetch partition: code %d hw %d %d bytes", p.ErrorCode, p.HighWatermark, len(p.RecordBatches))
	}
	if got, err := c.recv(&kmsg.MetadataResponse{Version: 12}); err != nil || got != mdCorr {
		t.Fatalf("metadata after parked fetch: corr %d err %v", got, err)
	}

	// Timeout with no data: answered empty after about MaxWaitMillis.
	req = fetchReq(11, "poll", 0, 1)
	req.MaxWaitMillis = 200
	req.MinBytes = 1
	began = time.Now()
	resp = c.do(req).(*kmsg.FetchResponse)
	if resp.Topics[0].Partitions[0].RecordBatches == nil {
		t.Fatal("empty fetch answered a null record set (librdkafka rejects it)")
	}
	if waited := time.Since(began); waited < 150*time.Millisecond || len(resp.Topics[0].Partitions[0].RecordBatches) != 0 {
		t.Fatalf("empty long poll returned after %v with %d bytes", waited, len(resp.Topics[0].Partitions[0].RecordBatches))
	}
}

// TestAPIFetchMinOneBatch checks KIP-74: a batch larger than the limits is
// still returned whole when it is the first data.
func TestAPIFetchMinOneBatch(t *testing.T) {
	n := startNode(t)
	n.createTopic("big", 1, nil)
	c := n.raw()
	b := batch(t, 50, "large-value-large-value", time.Now().UnixMilli())
	c.do(produceReq(9, "big", 0, b))
	c.do(produceReq(9, "big", 0, batch(t, 1, "second", time.Now().UnixMilli())))
	req := fetchReq(12, "big", 0, 0)
	req.MaxBytes = 10
	req.Topics[0].Partitions[0].PartitionMaxBytes = 10
	resp := c.do(req).(*kmsg.FetchResponse)
	got := resp.Topics[0].Partitions[0].RecordBatches
	if len(got) != len(b) {
		t.Fatalf("fetched %d bytes, want exactly the first batch (%d)", len(got), len(b))
	}
}

func TestAPIApiVersionsAdvertisesServed(t *testing.T) {
	n := startNode(t)
	c := n.raw()
	for v := int16(0); v <= 5; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "samsa-test", "1.0"
		resp := c.do(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: %v", v, kerr.ErrorForCode(resp.ErrorCode))
		}
		want := api.ServedAPIs()
		if len(resp.ApiKeys) != len(want) {
			t.Fatalf("v%d: %d keys, want %d", v, len(resp.ApiKeys), len(want))
		}
		for i, k := range resp.ApiKeys {
			if k.ApiKey != want[i].ApiKey || k.MinVersion != want[i].MinVersion || k.MaxVersion != want[i].MaxVersion {
				t.Fatalf("v%d: key %d = %+v, want %+v", v, i, k, want[i])
			}
		}
	}
	// KIP-511: a version newer than served gets the v0 format.
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 4
	c.corr++
	b := c.f.AppendRequest(nil, req, c.corr)
	binary.BigEndian.PutUint16(b[6:], 9)
	c.write(b)
	resp := &kmsg.ApiVersionsResponse{Version: 0}
	if corr, err := c.recv(resp); err != nil || corr != c.corr || resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
		t.Fatalf("KIP-511 answer: corr %d err %v %+v", corr, err, resp)
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == 0 && k.MinVersion != 0 || k.ApiKey == 1 && k.MinVersion != 4 {
			t.Fatalf("advertised %+v", k)
		}
	}
}

func TestAPIMetadataAutoCreateAndLookups(t *testing.T) {
	n := startNode(t, "num.partitions=2")
	c := n.raw()
	md := func(version int16, allow bool, topics ...string) *kmsg.MetadataResponse {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = version
		req.AllowAutoTopicCreation = allow
		for _, tp := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(tp)
			req.Topics = append(req.Topics, rt)
		}
		return c.do(req).(*kmsg.MetadataResponse)
	}
	resp := md(12, false, "nope")
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("no auto-create: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	if len(resp.Brokers) != 1 || resp.Brokers[0].Port == 0 || resp.ClusterID == nil || *resp.ClusterID == "" {
		t.Fatalf("brokers %+v cluster %v", resp.Brokers, resp.ClusterID)
	}
	resp = md(12, true, "auto", "bad/name")
	auto := resp.Topics[0]
	if auto.ErrorCode != 0 || len(auto.Partitions) != 2 || auto.TopicID == [16]byte{} {
		t.Fatalf("auto-created: %+v", auto)
	}
	if resp.Topics[1].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("bad name: %v", kerr.ErrorForCode(resp.Topics[1].ErrorCode))
	}
	if p := auto.Partitions[0]; p.Leader != 1 || len(p.Replicas) != 1 || len(p.ISR) != 1 || p.LeaderEpoch < 0 {
		t.Fatalf("partition: %+v", p)
	}
	// v3 always allows auto-creation.
	if resp := md(3, false, "auto3"); resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("v3 auto-create: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	// Lookup by topic id (v12), unknown id.
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	for _, id := range [][16]byte{auto.TopicID, {1, 2, 3}} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.TopicID = id
		req.Topics = append(req.Topics, rt)
	}
	byID := c.do(req).(*kmsg.MetadataResponse)
	if byID.Topics[0].Topic == nil || *byID.Topics[0].Topic != "auto" || byID.Topics[1].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("by id: %+v", byID.Topics)
	}
	// All topics: null list (v1+) and empty list (v0).
	all := kmsg.NewPtrMetadataRequest()
	all.Version = 1
	if got := c.do(all).(*kmsg.MetadataResponse); len(got.Topics) != 2 {
		t.Fatalf("all topics v1: %d", len(got.Topics))
	}
	all.Version = 0
	all.Topics = []kmsg.MetadataRequestTopic{}
	if got := c.do(all).(*kmsg.MetadataResponse); len(got.Topics) != 2 {
		t.Fatalf("all topics v0: %d", len(got.Topics))
	}
}

func TestAPICoordinatorAndProducerIDs(t *testing.T) {
	n := startNode(t)
	c := n.raw()
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version = 4
	fc.CoordinatorKeys = []string{"g1", "g2", ""}
	fresp := c.do(fc).(*kmsg.FindCoordinatorResponse)
	if len(fresp.Coordinators) != 3 {
		t.Fatalf("find coordinator v4: %+v", fresp)
	}
	for _, rc := range fresp.Coordinators[:2] {
		if rc.ErrorCode != 0 || rc.NodeID != 1 || net.JoinHostPort(rc.Host, strconv.Itoa(int(rc.Port))) != n.addr {
			t.Errorf("find coordinator v4 %q: %+v (node at %s)", rc.Key, rc, n.addr)
		}
	}
	if code := fresp.Coordinators[2].ErrorCode; code != kerr.InvalidRequest.Code {
		t.Errorf("empty group id: %v", kerr.ErrorForCode(code))
	}
	// The first lookup created __consumer_offsets (internal, 50 partitions).
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("__consumer_offsets")}}
	mresp := c.do(md).(*kmsg.MetadataResponse)
	if mt := mresp.Topics[0]; mt.ErrorCode != 0 || !mt.IsInternal || len(mt.Partitions) != 50 {
		t.Errorf("__consumer_offsets: error %v, internal %v, %d partitions", kerr.ErrorForCode(mt.ErrorCode), mt.IsInternal, len(mt.Partitions))
	}
	fc.Version = 2
	fc.CoordinatorKey = "g"
	if r := c.do(fc).(*kmsg.FindCoordinatorResponse); r.ErrorCode != 0 || r.NodeID != 1 {
		t.Fatalf("find coordinator v2: %+v", r)
	}
	fc.CoordinatorType = 1 // transactions: __transaction_state is created
	if r := c.do(fc).(*kmsg.FindCoordinatorResponse); r.ErrorCode != 0 || r.NodeID != 1 {
		t.Fatalf("find transaction coordinator: %+v", r)
	}
	fc.CoordinatorType = 2 // share groups: none
	if r := c.do(fc).(*kmsg.FindCoordinatorResponse); r.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("find share coordinator: %+v", r)
	}

	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.Version = 4
	a := c.do(ip).(*kmsg.InitProducerIDResponse)
	b := c.do(ip).(*kmsg.InitProducerIDResponse)
	if a.ErrorCode != 0 || b.ErrorCode != 0 || a.ProducerID < 0 || a.ProducerID == b.ProducerID || a.ProducerEpoch != 0 {
		t.Fatalf("producer ids %+v %+v", a, b)
	}
	ip.TransactionalID = kmsg.StringPtr("txn")
	ip.TransactionTimeoutMillis = 60000
	var r *kmsg.InitProducerIDResponse
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r = c.do(ip).(*kmsg.InitProducerIDResponse)
		if r.ErrorCode != kerr.CoordinatorLoadInProgress.Code || time.Now().After(deadline) {
			break
		}
	}
	if r.ErrorCode != 0 || r.ProducerID < 0 || r.ProducerEpoch != 0 {
		t.Fatalf("transactional init: %+v (%v)", r, kerr.ErrorForCode(r.ErrorCode))
	}
	ip.TransactionTimeoutMillis = 900001 // over transaction.max.timeout.ms
	if r := c.do(ip).(*kmsg.InitProducerIDResponse); r.ErrorCode != kerr.InvalidTransactionTimeout.Code {
		t.Fatalf("transactional init with a too long timeout: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.Version = 1
	dc.EndpointType = 1
	dresp := c.do(dc).(*kmsg.DescribeClusterResponse)
	if dresp.ErrorCode != 0 || dresp.ClusterID == "" || len(dresp.Brokers) != 1 || dresp.ControllerID != 1 {
		t.Fatalf("describe cluster: %+v", dresp)
	}
	if _, err := n.admin().BrokerMetadata(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// TestAPIProduceAcksZeroNoResponse: acks=0 gets no answer; the next
// request's answer comes back on the same connection.
func TestAPIProduceAcksZeroNoResponse(t *testing.T) {
	n := startNode(t)
	n.createTopic("fire", 1, nil)
	c := n.raw()
	req := produceReq(9, "fire", 0, batch(t, 3, "f", time.Now().UnixMilli()))
	req.Acks = 0
	c.send(req)
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	corr := c.send(md)
	if got, err := c.recv(&kmsg.MetadataResponse{Version: 12}); err != nil || got != corr {
		t.Fatalf("after acks=0: corr %d (want %d) err %v", got, corr, err)
	}
	if hw := n.endOffset("fire", 0); hw != 3 {
		t.Fatalf("acks=0 records not stored: end offset %d", hw)
	}
}

// TestAPIBadInput sends one malformed or invalid request per case on a raw
// connection while a healthy kgo client keeps producing, and checks the
// answer and that nothing was stored.
func TestAPIBadInput(t *testing.T) {
	n := startNode(t, "socket.request.max.bytes=1048576", "message.max.decompressed.bytes=1048576")
	small := "2000"
	n.createTopic("bad", 1, map[string]*string{"max.message.bytes": &small})
	n.createTopic("healthy", 1, nil)
	healthy := n.client(kgo.DefaultProduceTopic("healthy"))
	ctx := ctxT(t)
	now := time.Now().UnixMilli()

	badCRC := batch(t, 2, "crc", now)
	badCRC[len(badCRC)-1] ^= 0xff
	tooBig := batch(t, 100, "this-record-is-long-enough-to-pass-2000-bytes", now)

	// edit changes a batch in place and fixes its CRC-32C.
	edit := func(b []byte, fn func(b []byte)) []byte {
		fn(b)
		binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
		return b
	}
	bomb, err := record.Build(record.BuildOptions{Compression: record.CompressionZstd}, []record.Record{{Timestamp: now, Value: make([]byte, 8<<20)}})
	if err != nil || len(bomb) > 2000 {
		t.Fatalf("bomb of %d bytes: %v", len(bomb), err)
	}

	partitionCode := func(c *rawConn, req kmsg.Request) int16 {
		switch r := c.do(req).(type) {
		case *kmsg.ProduceResponse:
			return r.Topics[0].Partitions[0].ErrorCode
		case *kmsg.FetchResponse:
			return r.Topics[0].Partitions[0].ErrorCode
		}
		t.Fatal("unexpected response")
		return 0
	}
	header := func(key, version int16) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, 1)
		return binary.BigEndian.AppendUint16(b, 0xffff)
	}
	frame := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}

	for _, tc := range []struct {
		name string
		run  func(c *rawConn) // sends and checks the answer
	}{
		{"oversize frame closes", func(c *rawConn) {
			c.write(binary.BigEndian.AppendUint32(nil, 1<<20+1))
			c.expectClosed()
		}},
		{"unknown api key closes", func(c *rawConn) {
			c.write(frame(header(31000, 0)))
			c.expectClosed()
		}},
		{"unsupported fetch version closes", func(c *rawConn) {
			c.write(frame(header(1, 3)))
			c.expectClosed()
		}},
		{"unsupported api versions version answers UNSUPPORTED_VERSION", func(c *rawConn) {
			c.write(frame(header(18, 99)))
			resp := &kmsg.ApiVersionsResponse{Version: 0}
			if _, err := c.recv(resp); err != nil || resp.ErrorCode != kerr.UnsupportedVersion.Code {
				t.Fatalf("err %v code %d", err, resp.ErrorCode)
			}
		}},
		{"bad crc answers CORRUPT_MESSAGE", func(c *rawConn) {
			if code := partitionCode(c, produceReq(9, "bad", 0, badCRC)); code != kerr.CorruptMessage.Code {
				t.Fatalf("got %v", kerr.ErrorForCode(code))
			}
		}},
		{"magic 1 answers UNSUPPORTED_FOR_MESSAGE_FORMAT", func(c *rawConn) {
			if code := partitionCode(c, produceReq(2, "bad", 0, magicV1MessageSet(now))); code != kerr.UnsupportedForMessageFormat.Code {
				t.Fatalf("got %v", kerr.ErrorForCode(code))
			}
		}},
		{"magic 0 answers UNSUPPORTED_FOR_MESSAGE_FORMAT", func(c *rawConn) {
			if code := partitionCode(c, produceReq(0, "bad", 0, magicV0MessageSet())); code != kerr.UnsupportedForMessageFormat.Code {
				t.Fatalf("got %v", kerr.ErrorForCode(code))
			}
		}},
		{"batch over max.message.bytes answers MESSAGE_TOO_LARGE", func(c *rawConn) {
			if len(tooBig) <= 2000 {
				t.Fatalf("test batch is only %d bytes", len(tooBig))
			}
			if code := partitionCode(c, produceReq(9, "bad", 0, tooBig)); code != kerr.MessageTooLarge.Code {
				t.Fatalf("got %v", kerr.ErrorForCode(code))
			}
		}},
		{"magic 1 in produce v3+ answers INVALID_RECORD", func(c *rawConn) {
			if code := partitionCode(c, produceReq(3, "bad", 0, magicV1MessageSet(now))); code != kerr.InvalidRecord.Code {
				t.Fatalf("got %v", kerr.ErrorForCode(code))
			}
		}},
		{"two batches in produce v3+ answer INVALID_RECORD", func(c *rawConn) {
			two := append(batch(t, 1, "a", now), batch(t, 1, "b", now)...)
			if code := partitionCode(c, produceReq(9, "bad", 0, two)); code != kerr.InvalidRecord.Code {
				t.Fatalf("got %v", kerr.ErrorForCode(code))
			}
		}},
		{"unknown codec answers CORRUPT_MESSAGE", func(c *rawConn) {
			b := edit(batch(t, 1, "x", now), func(b []byte) { b[22] |= 6 })
			if code := partitionCode(c, produceReq(9, "bad", 0, b)); code != kerr.CorruptMessage.Code {
				t.Fatalf("got %v", kerr.ErrorForCode(code))
			}
		}},
		{"record count over the records answers INVALID_RECORD", func(c *rawConn) {
			b := edit(batch(t, 1, "x", now), func(b []byte) { b[26], b[60] = 4, 5 })
			if code := partitionCode(c, produceReq(9, "bad", 0, b)); code != kerr.InvalidRecord.Code {
				t.Fatalf("got %v", kerr.ErrorForCode(code))
			}
		}},
		{"compression bomb answers INVALID_RECORD", func(c *rawConn) {
			if code := partitionCode(c, produceReq(9, "bad", 0, bomb)); code != kerr.InvalidRecord.Code {
				t.Fatalf("got %v", kerr.ErrorForCode(code))
			}
		}},
		{"invalid topic name answers INVALID_TOPIC_EXCEPTION", func(c *rawConn) {
			if code := partitionCode(c, produceReq(9, "bad topic!", 0, batch(t, 1, "x", now))); code != kerr.InvalidTopicException.Code {
				t.Fatalf("got %v", kerr.ErrorForCode(code))
			}
		}},
		{"unknown partition answers UNKNOWN_TOPIC_OR_PARTITION", func(c *rawConn) {
			if code := partitionCode(c, produceReq(9, "bad", 7, batch(t, 1, "x", now))); code != kerr.UnknownTopicOrPartition.Code {
				t.Fatalf("got %v", kerr.ErrorForCode(code))
			}
		}},
		{"unknown topic answers UNKNOWN_TOPIC_OR_PARTITION", func(c *rawConn) {
			if code := partitionCode(c, produceReq(9, "nosuch", 0, batch(t, 1, "x", now))); code != kerr.UnknownTopicOrPartition.Code {
				t.Fatalf("got %v", kerr.ErrorForCode(code))
			}
		}},
		{"fetch out of range answers OFFSET_OUT_OF_RANGE", func(c *rawConn) {
			if code := partitionCode(c, fetchReq(12, "bad", 0, 1000)); code != kerr.OffsetOutOfRange.Code {
				t.Fatalf("got %v", kerr.ErrorForCode(code))
			}
		}},
		{"transactional batch outside a transaction is refused", func(c *rawConn) {
			recs := []record.Record{{Timestamp: now, Value: []byte("x")}}
			b, err := record.Build(record.BuildOptions{Idempotent: true, ProducerID: 4242, Transactional: true}, recs)
			if err != nil {
				t.Fatal(err)
			}
			req := produceReq(9, "bad", 0, b)
			req.TransactionID = kmsg.StringPtr("txn")
			if code := partitionCode(c, req); code == 0 {
				t.Fatal("appended")
			}
		}},
		{"NaN double config answers INVALID_CONFIG", func(c *rawConn) {
			// ParseFloat accepts NaN and Inf, and NaN passes any range check.
			for _, v := range []string{"NaN", "Inf", "-Infinity"} {
				ct := kmsg.NewPtrCreateTopicsRequest()
				ct.Version = 5
				rt := kmsg.NewCreateTopicsRequestTopic()
				rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "nan-ratio", 1, 1
				cfg := kmsg.NewCreateTopicsRequestTopicConfig()
				cfg.Name, cfg.Value = "min.cleanable.dirty.ratio", kmsg.StringPtr(v)
				rt.Configs = append(rt.Configs, cfg)
				ct.Topics = append(ct.Topics, rt)
				if code := c.do(ct).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != kerr.InvalidConfig.Code {
					t.Fatalf("create with %s: %v", v, kerr.ErrorForCode(code))
				}
				ia := kmsg.NewPtrIncrementalAlterConfigsRequest()
				ia.Version = 1
				r := kmsg.NewIncrementalAlterConfigsRequestResource()
				r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "bad"
				rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
				rc.Name, rc.Value = "min.cleanable.dirty.ratio", kmsg.StringPtr(v)
				r.Configs = append(r.Configs, rc)
				ia.Resources = append(ia.Resources, r)
				if code := c.do(ia).(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode; code != kerr.InvalidConfig.Code {
					t.Fatalf("alter to %s: %v", v, kerr.ErrorForCode(code))
				}
			}
		}},
		{"truncated produce body closes", func(c *rawConn) {
			b := c.f.AppendRequest(nil, produceReq(9, "bad", 0, batch(t, 1, "x", now)), 1)
			b = b[:len(b)-10]
			binary.BigEndian.PutUint32(b, uint32(len(b)-4))
			c.write(b)
			c.expectClosed()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := n.endOffset("bad", 0)
			c := n.raw()
			c.t = t
			tc.run(c)
			if err := healthy.ProduceSync(ctx, &kgo.Record{Value: []byte(tc.name)}).FirstErr(); err != nil {
				t.Fatalf("healthy client: %v", err)
			}
			if after := n.endOffset("bad", 0); after != before {
				t.Fatalf("log end offset moved %d -> %d: something was stored", before, after)
			}
		})
	}
	if hw := n.endOffset("healthy", 0); hw == 0 {
		t.Fatal("healthy client stored nothing")
	}
}

// magicV1MessageSet is a one-message v1 message set (offset, size, crc,
// magic 1, attributes, timestamp, key, value).
func magicV1MessageSet(ts int64) []byte {
	msg := []byte{1, 0}
	msg = binary.BigEndian.AppendUint64(msg, uint64(ts))
	msg = binary.BigEndian.AppendUint32(msg, 0xffffffff) // null key
	msg = binary.BigEndian.AppendUint32(msg, 1)
	msg = append(msg, 'v')
	return messageSet(msg)
}

// magicV0MessageSet is a one-message v0 message set.
func magicV0MessageSet() []byte {
	msg := []byte{0, 0}
	msg = binary.BigEndian.AppendUint32(msg, 0xffffffff)
	msg = binary.BigEndian.AppendUint32(msg, 1)
	msg = append(msg, 'v')
	return messageSet(msg)
}

func messageSet(body []byte) []byte {
	crc := crc32.ChecksumIEEE(body)
	b := binary.BigEndian.AppendUint64(nil, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(4+len(body)))
	b = binary.BigEndian.AppendUint32(b, crc)
	return append(b, body...)
}

// TestAPILargeFetchesEveryVersion reads megabytes back through fetch
// responses large enough to be written as vectors (internal/network
// splice.go), with clients pinned to a non-flexible Fetch (v10, Kafka
// 2.1) and to the newest flexible one, and checks every record.
func TestAPILargeFetchesEveryVersion(t *testing.T) {
	n := startNode(t)
	n.createTopic("large", 2, nil)
	ctx := ctxT(t)
	const total = 3000
	value := func(i int) []byte {
		v := make([]byte, 1000+i%50)
		for j := range v {
			v[j] = byte(i + j)
		}
		return v
	}
	prod := n.client(kgo.DefaultProduceTopic("large"))
	var rs []*kgo.Record
	for i := range total {
		rs = append(rs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: value(i)})
	}
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, pin := range []struct {
		name string
		opts []kgo.Opt
	}{
		{"fetch v10", []kgo.Opt{kgo.MaxVersions(kversion.V2_1_0())}},
		{"newest fetch", nil},
	} {
		t.Run(pin.name, func(t *testing.T) {
			opts := append([]kgo.Opt{
				kgo.ConsumeTopics("large"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchMaxPartitionBytes(256 << 10),
			}, pin.opts...)
			cons := n.client(opts...)
			seen := 0
			for seen < total {
				fs := cons.PollFetches(ctx)
				if err := ctx.Err(); err != nil {
					t.Fatalf("consumed %d of %d: %v", seen, total, err)
				}
				fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
				fs.EachRecord(func(r *kgo.Record) {
					i, err := strconv.Atoi(string(r.Key))
					if err != nil || !bytes.Equal(r.Value, value(i)) {
						t.Fatalf("record %q at %d-%d has a wrong value", r.Key, r.Partition, r.Offset)
					}
					seen++
				})
			}
		})
	}
}
