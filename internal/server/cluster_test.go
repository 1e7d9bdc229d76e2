package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/interbroker"
	"samsa/internal/record"
	"samsa/internal/server"
)

// testCluster is an in-process cluster: every node is a combined
// broker+controller voter unless started with other roles.
type testCluster struct {
	t     *testing.T
	nodes map[int32]*clusterNode
}

type clusterNode struct {
	id        int32
	dir       string
	overrides []string
	// plain and ctl are the PLAINTEXT and CONTROLLER addresses.
	plain, ctl string
	s          *server.Server
}

// reserve binds 127.0.0.1:0 and returns the listener.
func reserve(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// nodeSpec describes one node of startCluster.
type nodeSpec struct {
	id    int32
	roles string // "" : broker,controller
	extra []string
}

// startCluster starts the nodes concurrently (voters need a majority to
// elect a leader before any of them finishes starting).
func startCluster(t *testing.T, specs []nodeSpec, extra ...string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, nodes: map[int32]*clusterNode{}}
	socks := map[int32]map[string]net.Listener{}
	var voters []string
	for _, sp := range specs {
		plain, ctl := reserve(t), reserve(t)
		n := &clusterNode{id: sp.id, dir: t.TempDir(), plain: plain.Addr().String(), ctl: ctl.Addr().String()}
		roles := sp.roles
		if roles == "" {
			roles = "broker,controller"
		}
		socks[sp.id] = map[string]net.Listener{"PLAINTEXT": plain}
		listeners := "PLAINTEXT://" + n.plain
		if strings.Contains(roles, "controller") {
			socks[sp.id]["CONTROLLER"] = ctl
			listeners += ",CONTROLLER://" + n.ctl
			voters = append(voters, fmt.Sprintf("%d@%s", sp.id, n.ctl))
		} else {
			ctl.Close()
			n.ctl = ""
		}
		if roles == "controller" {
			socks[sp.id] = map[string]net.Listener{"CONTROLLER": ctl}
			plain.Close()
			listeners = "CONTROLLER://" + n.ctl
			n.plain = ""
		}
		n.overrides = append([]string{
			fmt.Sprintf("node.id=%d", sp.id), "process.roles=" + roles, "listeners=" + listeners,
			"inter.broker.listener.name=PLAINTEXT", "controller.listener.names=CONTROLLER",
			"log.dirs=" + n.dir, "http.listener=",
			"broker.heartbeat.interval.ms=100", "broker.session.timeout.ms=1500",
			"offsets.topic.num.partitions=6", "transaction.state.log.num.partitions=6",
			"group.initial.rebalance.delay.ms=0",
		}, append(extra, sp.extra...)...)
		c.nodes[sp.id] = n
	}
	for _, n := range c.nodes {
		n.overrides = append(n.overrides, "controller.quorum.voters="+strings.Join(voters, ","))
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(specs))
	for _, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := server.Start(context.Background(), server.Options{Overrides: n.overrides, Logger: clusterLogger(n.id), Listeners: socks[n.id], StartTimeout: 30 * time.Second})
			if err != nil {
				errs <- fmt.Errorf("node %d: %w", n.id, err)
				return
			}
			n.s = s
		}()
	}
	wg.Wait()
	close(errs)
	t.Cleanup(c.closeAll)
	for err := range errs {
		t.Fatal(err)
	}
	c.waitAllBrokers()
	return c
}

// waitAllBrokers waits until every running broker lists every running
// broker: registrations reach the other nodes a moment after Start
// returns.
func (c *testCluster) waitAllBrokers() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	n := 0
	for _, nd := range c.nodes {
		if nd.s != nil && nd.plain != "" {
			n++
		}
	}
	for id, nd := range c.nodes {
		if nd.s != nil && nd.plain != "" {
			c.waitBrokers(ctx, id, n)
		}
	}
}

// closeAll closes the running nodes concurrently.
func (c *testCluster) closeAll() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		if n.s == nil {
			continue
		}
		wg.Add(1)
		go func(s *server.Server) {
			defer wg.Done()
			s.Close()
		}(n.s)
		n.s = nil
	}
	wg.Wait()
}

// restart starts a stopped node again on its data dir and addresses.
func (c *testCluster) restart(id int32) {
	c.t.Helper()
	n := c.nodes[id]
	s, err := server.Start(context.Background(), server.Options{Overrides: n.overrides, Logger: quiet, StartTimeout: 30 * time.Second})
	if err != nil {
		c.t.Fatalf("restart node %d: %v", id, err)
	}
	n.s = s
	c.waitAllBrokers()
}

func (c *testCluster) client(id int32, opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.nodes[id].plain)}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// waitBrokers waits until node id's Metadata lists n brokers.
func (c *testCluster) waitBrokers(ctx context.Context, id int32, n int) {
	c.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{}
		m, err := req.RequestWith(ctx, c.client(id))
		if err != nil {
			c.t.Fatal(err)
		}
		if len(m.Brokers) == n {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d lists %d brokers, want %d", id, len(m.Brokers), n)
		}
	}
}

// controllerID is the active controller as node id's Metadata says.
func (c *testCluster) controllerID(ctx context.Context, id int32) int32 {
	c.t.Helper()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, c.client(id))
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.ControllerID
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func specs(n int) []nodeSpec {
	var out []nodeSpec
	for i := 1; i <= n; i++ {
		out = append(out, nodeSpec{id: int32(i)})
	}
	return out
}

// TestClusterFormsAndServesFromEveryNode: three combined nodes form one
// cluster; Metadata and DescribeCluster on every node list every broker
// and the same active controller; CreateTopics sent to a node that is not
// the controller is forwarded; records produced through one node are
// consumed through another.
func TestClusterFormsAndServesFromEveryNode(t *testing.T) {
	c := startCluster(t, specs(3))
	ctx := ctxFor(t, 60*time.Second)
	// Every node applies every registration (the quorum's commit
	// reaches followers a moment after Start returns on the others).
	for id := int32(1); id <= 3; id++ {
		c.waitBrokers(ctx, id, 3)
	}
	ctrl := c.controllerID(ctx, 1)
	if ctrl < 1 || ctrl > 3 {
		t.Fatalf("controller id %d", ctrl)
	}
	for id := int32(1); id <= 3; id++ {
		var bm []kmsg.MetadataResponseBroker
		// Registrations of the others may still be applying here.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			mreq := kmsg.NewPtrMetadataRequest()
			mreq.Topics = []kmsg.MetadataRequestTopic{}
			m, err := mreq.RequestWith(ctx, c.client(id))
			if err != nil {
				t.Fatal(err)
			}
			bm = m.Brokers
			if len(bm) == 3 || time.Now().After(deadline) {
				break
			}
		}
		if len(bm) != 3 {
			t.Fatalf("node %d lists brokers %v", id, bm)
		}
		for _, b := range bm {
			if b.Host != "127.0.0.1" || fmt.Sprintf("%s:%d", b.Host, b.Port) != c.nodes[b.NodeID].plain {
				t.Errorf("node %d: broker %+v, want %s", id, b, c.nodes[b.NodeID].plain)
			}
		}
		dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, c.client(id))
		if err != nil || dc.ErrorCode != 0 || len(dc.Brokers) != 3 || dc.ControllerID != ctrl {
			t.Fatalf("node %d DescribeCluster: %+v %v (controller %d)", id, dc, err, ctrl)
		}
	}
	// On the controller listener: DescribeCluster EndpointType 2 lists
	// the voters (KIP-919), and an admin request to a voter that is not
	// the active controller answers NOT_CONTROLLER (never forwarded on).
	raw := interbroker.New(interbroker.Options{Logger: quiet})
	defer raw.Close()
	dcreq := kmsg.NewPtrDescribeClusterRequest()
	dcreq.EndpointType = 2
	r, err := raw.Request(ctx, c.nodes[1].ctl, dcreq)
	if err != nil {
		t.Fatal(err)
	}
	if dc := r.(*kmsg.DescribeClusterResponse); dc.ErrorCode != 0 || len(dc.Brokers) != 3 || dc.ControllerID != ctrl || fmt.Sprintf("%s:%d", dc.Brokers[1].Host, dc.Brokers[1].Port) != c.nodes[2].ctl {
		t.Fatalf("controllers: %+v", dc)
	}
	ctreq := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "direct", 1, 1
	ctreq.Topics = append(ctreq.Topics, ct)
	r, err = raw.Request(ctx, c.nodes[ctrl%3+1].ctl, ctreq)
	if err != nil {
		t.Fatal(err)
	}
	if code := r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != kerr.NotController.Code {
		t.Fatalf("CreateTopics on a standby controller's listener: %v", kerr.ErrorForCode(code))
	}

	// Admin on a node that is not the controller.
	other := ctrl%3 + 1
	adm := kadm.NewClient(c.client(other))
	if r, err := adm.CreateTopic(ctx, 6, 1, nil, "fwd"); err != nil || r.Err != nil {
		t.Fatalf("create through node %d: %v %v", other, err, r.Err)
	}
	// kgo asks any node for metadata: one whose image has not applied
	// the create yet does not know the topic for a moment.
	var td kadm.TopicDetails
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		td, err = adm.ListTopics(ctx, "fwd")
		if err == nil && len(td["fwd"].Partitions) == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic: %+v %v", td["fwd"], err)
		}
	}
	leaders := map[int32]int{}
	for _, p := range td["fwd"].Partitions {
		leaders[p.Leader]++
	}
	if len(leaders) != 3 || leaders[1] != 2 || leaders[2] != 2 || leaders[3] != 2 {
		t.Fatalf("leaders %v, want 2 on each broker", leaders)
	}
	if r, err := adm.CreateTopic(ctx, 1, 4, nil, "rf4"); err == nil && r.Err == nil {
		t.Fatal("replication factor 4 accepted with 3 brokers")
	}
	if _, err := adm.CreatePartitions(ctx, 2, "fwd"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("1000000")}}, "fwd"); err != nil {
		t.Fatal(err)
	}

	// Auto-creation by Metadata on a node that is not the controller.
	auto := c.client(other, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("auto-fwd"))
	if err := auto.ProduceSync(ctx, &kgo.Record{Value: []byte("a")}).FirstErr(); err != nil {
		t.Fatalf("auto-created topic through node %d: %v", other, err)
	}

	// Produce through node 1, consume through node 3.
	prod := c.client(1, kgo.DefaultProduceTopic("fwd"))
	var rs []*kgo.Record
	for i := 0; i < 200; i++ {
		rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))})
	}
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cons := c.client(3, kgo.ConsumeTopics("fwd"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < 200 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	// A partition asked of a broker that does not lead it: Produce v10+
	// and Fetch v16+ name the leader and its endpoint (KIP-951).
	leader := c.leaders(ctx, 1, "fwd")[0]
	wrong := leader%3 + 1
	preq := kmsg.NewPtrProduceRequest()
	preq.Version, preq.Acks, preq.TimeoutMillis = 11, 1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic, pt.TopicID = "fwd", td["fwd"].ID
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = oneBatch()
	pt.Partitions = append(pt.Partitions, pp)
	preq.Topics = append(preq.Topics, pt)
	presp, err := c.client(wrong).Broker(int(wrong)).Request(ctx, preq)
	if err != nil {
		t.Fatal(err)
	}
	pr := presp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if pr.ErrorCode != kerr.NotLeaderForPartition.Code || pr.CurrentLeader.LeaderID != leader ||
		len(presp.(*kmsg.ProduceResponse).Brokers) != 1 || presp.(*kmsg.ProduceResponse).Brokers[0].NodeID != leader {
		t.Fatalf("produce to node %d for a partition led by %d: %+v %+v", wrong, leader, pr, presp.(*kmsg.ProduceResponse).Brokers)
	}
	freq := kmsg.NewPtrFetchRequest()
	freq.Version, freq.MaxBytes = 16, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.TopicID = td["fwd"].ID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	freq.Topics = append(freq.Topics, ft)
	fresp, err := c.client(wrong).Broker(int(wrong)).Request(ctx, freq)
	if err != nil {
		t.Fatal(err)
	}
	fr := fresp.(*kmsg.FetchResponse)
	if p := fr.Topics[0].Partitions[0]; p.ErrorCode != kerr.NotLeaderForPartition.Code || p.CurrentLeader.LeaderID != leader || len(fr.Brokers) != 1 {
		t.Fatalf("fetch from node %d for a partition led by %d: %+v %+v", wrong, leader, p, fr.Brokers)
	}
	if _, err := adm.DeleteTopics(ctx, "fwd"); err != nil {
		t.Fatal(err)
	}
}

// clusterLogger is quiet unless SAMSA_CLUSTER_LOG is set (debugging).
func clusterLogger(id int32) *slog.Logger {
	if os.Getenv("SAMSA_CLUSTER_LOG") == "" {
		return quiet
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", id)
}

// oneBatch is a record batch of one record.
func oneBatch() []byte {
	b, err := record.Build(record.BuildOptions{}, []record.Record{{Value: []byte("x"), Timestamp: time.Now().UnixMilli()}})
	if err != nil {
		panic(err)
	}
	return b
}
