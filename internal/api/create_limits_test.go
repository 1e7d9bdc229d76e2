package api_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaTooLarge is the message Kafka's controller gives an operation over
// its 10,000-record bound (EventHandlerExceptionInfo).
const kafkaTooLarge = "Unable to perform excessively large batch operation."

func createTopicsReq(validateOnly bool, topics map[string]int32) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	req.ValidateOnly = validateOnly
	names := make([]string, 0, len(topics))
	for name := range topics {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = name, topics[name], 1
		req.Topics = append(req.Topics, t)
	}
	return req
}

// TestAPICreateTopicsRecordLimit: like Kafka's controller, one operation
// writes at most 10,000 metadata records; beyond that nothing is created
// and every topic answers POLICY_VIOLATION.
func TestAPICreateTopicsRecordLimit(t *testing.T) {
	n := startNode(t)
	c := n.raw()
	for _, tc := range []struct {
		name         string
		validateOnly bool
		topics       map[string]int32
		want         int16
	}{
		{"100k partitions", false, map[string]int32{"huge": 100000}, kerr.PolicyViolation.Code},
		{"10k partitions (10,001 records)", false, map[string]int32{"tenk": 10000}, kerr.PolicyViolation.Code},
		{"two topics together over the bound", true, map[string]int32{"half1": 5000, "half2": 5000}, kerr.PolicyViolation.Code},
		{"bad topic in an oversized request", false, map[string]int32{"big": 10000, "bad name!": 1}, kerr.PolicyViolation.Code},
		{"9,999 partitions validate only", true, map[string]int32{"fits": 9999}, 0},
	} {
		resp := c.do(createTopicsReq(tc.validateOnly, tc.topics)).(*kmsg.CreateTopicsResponse)
		if len(resp.Topics) != len(tc.topics) {
			t.Fatalf("%s: %d topics answered", tc.name, len(resp.Topics))
		}
		for _, rt := range resp.Topics {
			if rt.ErrorCode != tc.want {
				t.Fatalf("%s: topic %s: %v, want %v", tc.name, rt.Topic, kerr.ErrorForCode(rt.ErrorCode), kerr.ErrorForCode(tc.want))
			}
			if tc.want == kerr.PolicyViolation.Code && (rt.ErrorMessage == nil || *rt.ErrorMessage != kafkaTooLarge) {
				t.Fatalf("%s: message %v", tc.name, rt.ErrorMessage)
			}
		}
	}
	td, err := n.admin().ListTopics(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(td) != 0 {
		t.Fatalf("topics exist after refused creations: %v", td.Names())
	}

	// CreatePartitions: adding more than 10,000 partitions is refused.
	n.createTopic("grow", 1, nil)
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Version = 3
	ct := kmsg.NewCreatePartitionsRequestTopic()
	ct.Topic, ct.Count = "grow", 20001
	cp.Topics = append(cp.Topics, ct)
	cr := c.do(cp).(*kmsg.CreatePartitionsResponse)
	if cr.Topics[0].ErrorCode != kerr.PolicyViolation.Code {
		t.Fatalf("create partitions: %v", kerr.ErrorForCode(cr.Topics[0].ErrorCode))
	}
	td, _ = n.admin().ListTopics(ctxT(t), "grow")
	if got := len(td["grow"].Partitions); got != 1 {
		t.Fatalf("grow has %d partitions after a refused increase", got)
	}
}

// TestAPIMetadataAutoCreateRecordLimit: the topics auto-created by one
// Metadata request are one operation under the same bound.
func TestAPIMetadataAutoCreateRecordLimit(t *testing.T) {
	n := startNode(t)
	c := n.raw()
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	req.AllowAutoTopicCreation = true
	for i := 0; i < 5001; i++ { // 2 records each: 10,002
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(fmt.Sprintf("auto-%d", i))
		req.Topics = append(req.Topics, rt)
	}
	resp := c.do(req).(*kmsg.MetadataResponse)
	if len(resp.Topics) != 5001 {
		t.Fatalf("%d topics answered", len(resp.Topics))
	}
	for _, mt := range resp.Topics {
		if mt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("topic %s: %v, want UNKNOWN_TOPIC_OR_PARTITION (creation refused)", *mt.Topic, kerr.ErrorForCode(mt.ErrorCode))
		}
	}
	if td, _ := n.admin().ListTopics(ctxT(t)); len(td) != 0 {
		t.Fatalf("%d topics were created", len(td))
	}

	// A few topics, one named twice: created, answered once each.
	req.Topics = req.Topics[:3]
	req.Topics = append(req.Topics, req.Topics[0])
	resp = c.do(req).(*kmsg.MetadataResponse)
	if len(resp.Topics) != 3 {
		t.Fatalf("%d topics answered, want 3", len(resp.Topics))
	}
	for _, mt := range resp.Topics {
		if mt.ErrorCode != 0 || len(mt.Partitions) != 1 {
			t.Fatalf("topic %s: %v with %d partitions", *mt.Topic, kerr.ErrorForCode(mt.ErrorCode), len(mt.Partitions))
		}
	}

	// The same topic id many times: answered once.
	byID := kmsg.NewPtrMetadataRequest()
	byID.Version = 12
	for i := 0; i < 1000; i++ {
		rt := kmsg.NewMetadataRequestTopic()
		rt.TopicID = resp.Topics[0].TopicID
		byID.Topics = append(byID.Topics, rt)
	}
	if got := len(c.do(byID).(*kmsg.MetadataResponse).Topics); got != 1 {
		t.Fatalf("a topic id listed 1000 times answered %d times", got)
	}
}

// TestAPICreateTopicsOfflinePartition: a partition whose log cannot be
// created is reported, not answered NONE: the create answers
// KAFKA_STORAGE_ERROR counting the offline partitions, Metadata shows the
// replica offline and no leader, produce answers KAFKA_STORAGE_ERROR, and
// the other partitions work.
func TestAPICreateTopicsOfflinePartition(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, "log.dirs="+dir)
	// A file where the partition directory must go: creating it fails.
	if err := os.WriteFile(filepath.Join(dir, "half-1"), []byte("in the way"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := n.raw()
	resp := c.do(createTopicsReq(false, map[string]int32{"half": 3})).(*kmsg.CreateTopicsResponse)
	rt := resp.Topics[0]
	if rt.ErrorCode != kerr.KafkaStorageError.Code || rt.ErrorMessage == nil || !strings.Contains(*rt.ErrorMessage, "1 of the 3") {
		t.Fatalf("create: %v %v, want KAFKA_STORAGE_ERROR naming 1 of 3 partitions", kerr.ErrorForCode(rt.ErrorCode), rt.ErrorMessage)
	}

	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Version = 12
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("half")
	mreq.Topics = append(mreq.Topics, mt)
	mresp := c.do(mreq).(*kmsg.MetadataResponse)
	if len(mresp.Topics) != 1 || len(mresp.Topics[0].Partitions) != 3 {
		t.Fatalf("metadata: %+v", mresp.Topics)
	}
	for _, mp := range mresp.Topics[0].Partitions {
		offline := mp.Partition == 1
		if offline != (len(mp.OfflineReplicas) == 1) || offline != (mp.Leader == -1) || offline != (mp.ErrorCode == kerr.LeaderNotAvailable.Code) {
			t.Fatalf("partition %d: leader %d offline replicas %v error %v", mp.Partition, mp.Leader, mp.OfflineReplicas, kerr.ErrorForCode(mp.ErrorCode))
		}
	}
	now := time.Now().UnixMilli()
	for p, want := range map[int32]int16{0: 0, 1: kerr.KafkaStorageError.Code, 2: 0} {
		pr := c.do(produceReq(9, "half", p, batch(t, 1, "x", now))).(*kmsg.ProduceResponse)
		if got := pr.Topics[0].Partitions[0].ErrorCode; got != want {
			t.Fatalf("produce to partition %d: %v, want %v", p, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
		}
	}
}

// TestAPICreateTopicsDoesNotStallProduce: creating a topic of many
// partitions (seconds of directory creation and fsyncs) must not hold up
// produces to other topics.
func TestAPICreateTopicsDoesNotStallProduce(t *testing.T) {
	n := startNode(t)
	n.createTopic("busy", 1, nil)
	cl := n.client(kgo.DefaultProduceTopic("busy"))
	ctx := ctxT(t)
	produce := func() time.Duration {
		start := time.Now()
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	produce()

	const partitions = 400
	c := n.raw()
	var created atomic.Bool
	var createTook time.Duration
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer created.Store(true)
		start := time.Now()
		_ = c.nc.SetDeadline(time.Now().Add(3 * time.Minute))
		c.send(createTopicsReq(false, map[string]int32{"wide": partitions}))
		resp := kmsg.NewPtrCreateTopicsResponse()
		resp.Version = 7
		_, err := c.recv(resp)
		createTook = time.Since(start)
		if err != nil {
			t.Errorf("create wide: %v", err)
		} else if code := resp.Topics[0].ErrorCode; code != 0 {
			t.Errorf("create wide: %v %v", kerr.ErrorForCode(code), resp.Topics[0].ErrorMessage)
		}
	}()
	var worst time.Duration
	count := 0
	// A new idempotent producer meanwhile: InitProducerID needs the
	// controller, which the creation keeps busy.
	initC := n.raw()
	var initTook time.Duration
	initDone := false
	for !created.Load() {
		worst = max(worst, produce())
		count++
		if !initDone && count == 10 {
			start := time.Now()
			ip := kmsg.NewPtrInitProducerIDRequest()
			ip.Version = 4
			if r := initC.do(ip).(*kmsg.InitProducerIDResponse); r.ErrorCode != 0 {
				t.Fatalf("InitProducerID: %v", kerr.ErrorForCode(r.ErrorCode))
			}
			initTook, initDone = time.Since(start), !created.Load()
		}
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	if initDone {
		t.Logf("InitProducerID during the creation took %v", initTook)
		if createTook > 300*time.Millisecond && initTook > createTook*3/4 {
			t.Fatalf("InitProducerID waited %v for a creation of %v", initTook, createTook)
		}
	}
	t.Logf("creating %d partitions took %v; %d produces meanwhile, slowest %v", partitions, createTook, count, worst)
	// Before the replica manager created logs outside its lock, one
	// produce waited for the whole creation. A loaded machine (disk
	// writeback, two cores) slows single produces, so the bound is
	// relative.
	if createTook > 300*time.Millisecond && worst > createTook*3/4 {
		t.Fatalf("a produce waited %v while the creation took %v", worst, createTook)
	}
}
