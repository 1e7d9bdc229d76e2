package server_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"math"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/replication"
	"samsa/internal/storage"
)

// waitLogConfigs waits until every partition of topic on node id has a
// log whose config satisfies ok.
func (c *testCluster) waitLogConfigs(id int32, topic string, partitions int32, what string, ok func(storage.Config) bool) {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		good := 0
		var last storage.Config
		for p := int32(0); p < partitions; p++ {
			if l, found := c.nodes[id].s.LogForTest(topic, p); found {
				if last = l.Config(); ok(last) {
					good++
				}
			}
		}
		if good == int(partitions) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d: %d of %d partitions of %s have %s (last: segment.bytes %d retention.ms %d)",
				id, good, partitions, topic, what, last.SegmentBytes, last.RetentionMs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func setOp(k, v string) kadm.AlterConfig {
	return kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v}
}

// alterBroker runs kadm AlterBrokerConfigs (no brokers: the cluster
// default) and fails the test on any error.
func alterBroker(t *testing.T, ctx context.Context, adm *kadm.Client, cfgs []kadm.AlterConfig, brokers ...int32) {
	t.Helper()
	rs, err := adm.AlterBrokerConfigs(ctx, cfgs, brokers...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Err != nil {
			t.Fatalf("alter broker %q: %v %s", r.Name, r.Err, r.ErrMessage)
		}
	}
}

// configOf finds key in a described resource.
func configOf(t *testing.T, rcs kadm.ResourceConfigs, resource, key string) kadm.Config {
	t.Helper()
	rc, err := rcs.On(resource, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe %q: %v %v %s", resource, err, rc.Err, rc.ErrMessage)
	}
	for _, c := range rc.Configs {
		if c.Key == key {
			return c
		}
	}
	t.Fatalf("describe %q: no %s in %d configs", resource, key, len(rc.Configs))
	return kadm.Config{}
}

// TestClusterDynamicBrokerConfigs: a cluster-wide default of
// log.retention.ms and log.segment.bytes (kadm AlterBrokerConfigs) reaches
// the open logs of an existing topic on every broker; a per-broker
// override wins over the default on that broker only; a topic override
// wins over both; DescribeConfigs reports each level's source; a
// dynamic min.insync.replicas and num.replica.fetchers apply; the
// per-broker value survives the broker's restart (it comes from the
// metadata log); max.connections.per.ip applies to new connections at
// once.
func TestClusterDynamicBrokerConfigs(t *testing.T) {
	c := startCluster(t, specs(3))
	ctx := ctxFor(t, 90*time.Second)
	adm := kadm.NewClient(c.client(1))
	const topic, parts = "dyn", 3
	if r, err := adm.CreateTopic(ctx, parts, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	for id := int32(1); id <= 3; id++ {
		c.waitLogConfigs(id, topic, parts, "Kafka's defaults", func(s storage.Config) bool {
			return s.SegmentBytes == 1<<30 && s.RetentionMs == 604800000
		})
	}

	// The cluster default, through a broker that is not (necessarily)
	// the controller.
	alterBroker(t, ctx, kadm.NewClient(c.client(3)), []kadm.AlterConfig{setOp("log.retention.ms", "3600000"), setOp("log.segment.bytes", "1048576")})
	for id := int32(1); id <= 3; id++ {
		c.waitLogConfigs(id, topic, parts, "the cluster default", func(s storage.Config) bool {
			return s.SegmentBytes == 1048576 && s.RetentionMs == 3600000
		})
	}
	// Broker 2's own value wins over the default there only.
	alterBroker(t, ctx, adm, []kadm.AlterConfig{setOp("log.segment.bytes", "2097152")}, 2)
	c.waitLogConfigs(2, topic, parts, "broker 2's override", func(s storage.Config) bool {
		return s.SegmentBytes == 2097152 && s.RetentionMs == 3600000
	})
	for _, id := range []int32{1, 3} {
		c.waitLogConfigs(id, topic, parts, "the cluster default", func(s storage.Config) bool { return s.SegmentBytes == 1048576 })
	}

	// num.replica.fetchers, live: the followers move to the fetchers of
	// their partitions' new index.
	alterBroker(t, ctx, adm, []kadm.AlterConfig{setOp("num.replica.fetchers", "4")})
	want := map[int]bool{}
	for p := int32(0); p < parts; p++ {
		want[replication.FetcherIndex(topic, p, 4)] = true
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := map[int]bool{}
		for id := int32(1); id <= 3; id++ {
			for _, i := range c.nodes[id].s.FetcherIndexesForTest() {
				got[i] = true
			}
		}
		if maps.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with num.replica.fetchers=4: fetcher indexes %v, want %v", got, want)
		}
	}

	// replica.alter.log.dirs.io.max.bytes.per.second, live, on broker 2
	// only: its log dir mover takes the rate (the throttle itself is
	// tested in internal/storage).
	alterBroker(t, ctx, adm, []kadm.AlterConfig{setOp("replica.alter.log.dirs.io.max.bytes.per.second", "1048576")}, 2)
	for deadline := time.Now().Add(15 * time.Second); c.nodes[2].s.LogDirMoveRateForTest() != 1048576; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("broker 2 log dir move rate %d, want 1048576", c.nodes[2].s.LogDirMoveRateForTest())
		}
	}
	if r := c.nodes[1].s.LogDirMoveRateForTest(); r != math.MaxInt64 {
		t.Errorf("broker 1 log dir move rate %d, want unlimited", r)
	}

	rcs, err := adm.DescribeBrokerConfigs(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if cf := configOf(t, rcs, "2", "log.segment.bytes"); cf.MaybeValue() != "2097152" || cf.Source != kmsg.ConfigSourceDynamicBrokerConfig ||
		len(cf.Synonyms) < 3 || cf.Synonyms[1].Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Errorf("broker 2 log.segment.bytes: %v %v %v", cf.MaybeValue(), cf.Source, cf.Synonyms)
	}
	if cf := configOf(t, rcs, "2", "log.retention.ms"); cf.MaybeValue() != "3600000" || cf.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Errorf("broker 2 log.retention.ms: %v %v", cf.MaybeValue(), cf.Source)
	}
	if cf := configOf(t, rcs, "2", "log.dirs"); cf.Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Errorf("broker 2 log.dirs: %v", cf.Source)
	}
	if cf := configOf(t, rcs, "2", "num.partitions"); cf.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("broker 2 num.partitions: %v", cf.Source)
	}
	def, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := def.On("", nil); len(rc.Configs) != 3 { // log.retention.ms, log.segment.bytes, num.replica.fetchers
		t.Errorf("cluster default lists %d configs, want 3: %v", len(rc.Configs), rc.Configs)
	}
	tcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if cf := configOf(t, tcs, topic, "retention.ms"); cf.MaybeValue() != "3600000" || cf.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Errorf("topic retention.ms: %v %v", cf.MaybeValue(), cf.Source)
	}
	// A read-only key: Kafka's error.
	if rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{setOp("log.dirs", "/elsewhere")}, 1); err != nil || rs[0].Err == nil {
		t.Errorf("read-only log.dirs accepted: %v %v", err, rs)
	}

	// A topic override wins over both levels.
	if rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{setOp("segment.bytes", "4096")}, topic); err != nil || rs[0].Err != nil {
		t.Fatalf("topic override: %v %v", err, rs)
	}
	for id := int32(1); id <= 3; id++ {
		c.waitLogConfigs(id, topic, parts, "the topic override", func(s storage.Config) bool { return s.SegmentBytes == 4096 && s.RetentionMs == 3600000 })
	}
	if rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "segment.bytes"}}, topic); err != nil || rs[0].Err != nil {
		t.Fatalf("topic override delete: %v %v", err, rs)
	}

	// min.insync.replicas as the cluster default: above the replication
	// factor, acks=all produces fail; deleted, they succeed.
	alterBroker(t, ctx, adm, []kadm.AlterConfig{setOp("min.insync.replicas", "4")})
	prod := c.client(1, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(1), kgo.RecordDeliveryTimeout(5*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for deadline := time.Now().Add(15 * time.Second); ; {
		err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("x")}).FirstErr()
		if errors.Is(err, kerr.NotEnoughReplicas) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("min.insync.replicas=4 on 3 replicas: produce err %v, want NOT_ENOUGH_REPLICAS", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "min.insync.replicas"}}); err != nil || rs[0].Err != nil {
		t.Fatalf("delete min.insync.replicas: %v %v", err, rs)
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("y")}).FirstErr()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("min.insync.replicas deleted: produce err %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Restart broker 2: its override comes back from the metadata log.
	c.nodes[2].s.Close()
	c.nodes[2].s = nil
	c.restart(2)
	c.waitLogConfigs(2, topic, parts, "broker 2's override after restart", func(s storage.Config) bool {
		return s.SegmentBytes == 2097152 && s.RetentionMs == 3600000
	})

	// max.connections.per.ip, live, on broker 3: 127.0.0.2 gets 2
	// connections, the cluster's own 127.0.0.1 traffic keeps its room.
	alterBroker(t, ctx, adm, []kadm.AlterConfig{setOp("max.connections.per.ip", "2"), setOp("max.connections.per.ip.overrides", "127.0.0.1:1000")}, 3)
	addr := c.nodes[3].plain
	// Each try's connections stay open until the try ends, then close:
	// a try made before the limit applied must not hold slots after it.
	var open []net.Conn
	closeOpen := func() {
		for _, conn := range open {
			conn.Close()
		}
		open = nil
	}
	t.Cleanup(closeOpen)
	served := func() bool {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			t.Fatalf("dial from 127.0.0.2: %v", err)
		}
		open = append(open, conn)
		return apiVersionsAnswered(t, conn)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		a, b, third := served(), served(), served()
		closeOpen()
		if a && b && !third {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with max.connections.per.ip=2: answered %v %v %v, want true true false", a, b, third)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Deleted: the static 1000 again.
	if rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "max.connections.per.ip"}}, 3); err != nil || rs[0].Err != nil {
		t.Fatalf("delete: %v %v", err, rs)
	}
	for deadline := time.Now().Add(15 * time.Second); !served(); {
		if time.Now().After(deadline) {
			t.Fatal("max.connections.per.ip deleted: a new connection from 127.0.0.2 is still refused")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// apiVersionsAnswered sends ApiVersions v0 on conn and reports whether
// an answer came (false: the broker closed the connection).
func apiVersionsAnswered(t *testing.T, conn net.Conn) bool {
	t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	body := req.AppendTo(nil)
	// Header v1: key, version, correlation id, client id.
	hdr := []byte{0, 18, 0, 0, 0, 0, 0, 7, 0, 4, 't', 'e', 's', 't'}
	msg := append(hdr, body...)
	frame := append([]byte{byte(len(msg) >> 24), byte(len(msg) >> 16), byte(len(msg) >> 8), byte(len(msg))}, msg...)
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(frame); err != nil {
		return false
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return false
	}
	n := int(size[0])<<24 | int(size[1])<<16 | int(size[2])<<8 | int(size[3])
	if n <= 0 || n > 1<<20 {
		t.Fatalf("ApiVersions answer of %d bytes", n)
	}
	_, err := io.ReadFull(conn, make([]byte, n))
	return err == nil
}
