package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/interbroker"
	"samsa/internal/server"
)

// createTopicsAt sends one CreateTopics for topic straight to addr (not
// routed to the controller as kgo would) and returns the topic's code
// and message and how long the answer took.
func createTopicsAt(addr, topic string, partitions, timeoutMillis int32) (int16, string, time.Duration, error) {
	c := interbroker.New(interbroker.Options{Logger: quiet, RequestTimeout: 60 * time.Second})
	defer c.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = timeoutMillis
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	began := time.Now()
	r, err := c.Request(ctx, addr, req)
	took := time.Since(began)
	if err != nil {
		return 0, "", took, fmt.Errorf("CreateTopics %s at %s: %w", topic, addr, err)
	}
	resp := r.(*kmsg.CreateTopicsResponse)
	if len(resp.Topics) != 1 {
		return 0, "", took, fmt.Errorf("CreateTopics %s: %d topics in the answer", topic, len(resp.Topics))
	}
	msg := ""
	if m := resp.Topics[0].ErrorMessage; m != nil {
		msg = *m
	}
	return resp.Topics[0].ErrorCode, msg, took, nil
}

// topicExists asks node id's Metadata for topic.
func (c *testCluster) topicExists(ctx context.Context, id int32, topic string) bool {
	c.t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = &topic
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c.client(id))
	if err != nil {
		c.t.Fatal(err)
	}
	return len(resp.Topics) == 1 && resp.Topics[0].ErrorCode == 0
}

// TestClusterAdminTimeoutWithoutQuorum: a node left alone (the two other
// voters down: it is cut off from the quorum) answers CreateTopics within
// the request's timeout, instead of forwarding for 30 s or waiting for a
// commit until the quorum returns:
//
//   - a broker that is not the controller answers REQUEST_TIMED_OUT
//     (forwarding found no controller), and once the quorum is back the
//     topic does not exist;
//   - the controller, asked at once, answers NOT_CONTROLLER when
//     CheckQuorum makes it step down (or REQUEST_TIMED_OUT at the
//     deadline). Its record was appended to its own log before that: Raft
//     may commit it when the quorum returns (its log is the longest), so
//     that answer means "not known to be done", as in Kafka; the test
//     only logs what became of it. Asked again once it has stepped down,
//     it forwards, answers REQUEST_TIMED_OUT, and that topic never exists.
func TestClusterAdminTimeoutWithoutQuorum(t *testing.T) {
	c := startCluster(t, specs(3))
	ctx := ctxFor(t, 120*time.Second)
	const timeout = 2000 // ms
	ask := func(t *testing.T, alone int32, topic string, want ...*kerr.Error) {
		t.Helper()
		code, msg, took, err := createTopicsAt(c.nodes[alone].plain, topic, 1, timeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("node %d alone answered %s with %v after %v: %s", alone, topic, kerr.ErrorForCode(code), took.Round(time.Millisecond), msg)
		if took > timeout*time.Millisecond+time.Second {
			t.Errorf("node %d alone answered after %v, timeout %d ms", alone, took, timeout)
		}
		for _, w := range want {
			if code == w.Code {
				return
			}
		}
		t.Errorf("node %d alone answered %v, want one of %v", alone, kerr.ErrorForCode(code), want)
	}
	for i, role := range []string{"controller", "broker"} {
		t.Run(role, func(t *testing.T) {
			// Leave the controller (the quorum leader) alone, or another
			// node.
			alone := int32(-1)
			for began := time.Now(); alone < 0; time.Sleep(20 * time.Millisecond) {
				for id := int32(1); id <= 3 && alone < 0; id++ {
					if leadsQuorum(t, c.nodes[id].ctl, id) {
						alone = id
					}
				}
				if time.Since(began) > 10*time.Second {
					t.Fatal("no node leads the quorum")
				}
			}
			if role == "broker" {
				alone = alone%3 + 1
			}
			var others []int32
			for id := int32(1); id <= 3; id++ {
				if id != alone {
					others = append(others, id)
					if err := c.nodes[id].s.Crash(); err != nil {
						t.Fatal(err)
					}
					c.nodes[id].s = nil
				}
			}
			first := fmt.Sprintf("alone-%d-first", i)
			if role == "controller" {
				ask(t, alone, first, kerr.NotController, kerr.RequestTimedOut)
				// Wait until it no longer leads the quorum.
				for began := time.Now(); leadsQuorum(t, c.nodes[alone].ctl, alone); time.Sleep(20 * time.Millisecond) {
					if time.Since(began) > 10*time.Second {
						t.Fatalf("node %d alone still claims to be the controller after %v", alone, time.Since(began))
					}
				}
			}
			topic := fmt.Sprintf("alone-%d", i)
			ask(t, alone, topic, kerr.RequestTimedOut)

			// The quorum returns.
			var wg sync.WaitGroup
			for _, id := range others {
				n := c.nodes[id]
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := server.Start(context.Background(), server.Options{Overrides: n.overrides, Logger: quiet, StartTimeout: 30 * time.Second})
					if err != nil {
						t.Errorf("restart node %d: %v", id, err)
						return
					}
					n.s = s
				}()
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			c.waitAllBrokers()
			if r, err := createAfter(ctx, c, alone, fmt.Sprintf("after-%d", i)); err != nil || r != 0 {
				t.Fatalf("CreateTopics once the quorum is back: %v %v", kerr.ErrorForCode(r), err)
			}
			for id := int32(1); id <= 3; id++ {
				if c.topicExists(ctx, id, topic) {
					t.Errorf("node %d lists %s, which the lone node answered REQUEST_TIMED_OUT for", id, topic)
				}
			}
			if role == "controller" {
				t.Logf("%s (asked before the step-down) exists after the quorum returned: %v", first, c.topicExists(ctx, alone, first))
			}
		})
	}
}

// leadsQuorum asks a voter's controller listener (answered there, not
// forwarded) whether it leads the metadata quorum.
func leadsQuorum(t *testing.T, ctl string, id int32) bool {
	t.Helper()
	c := interbroker.New(interbroker.Options{Logger: quiet, RequestTimeout: 5 * time.Second})
	defer c.Close()
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Request(ctx, ctl, req)
	if err != nil {
		t.Fatalf("DescribeQuorum at %s: %v", ctl, err)
	}
	resp := r.(*kmsg.DescribeQuorumResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return false
	}
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode == 0 && p.LeaderID == id
}

// createAfter creates topic through node id with a generous timeout,
// retrying while the quorum settles.
func createAfter(ctx context.Context, c *testCluster, id int32, topic string) (int16, error) {
	for {
		code, _, _, err := createTopicsAt(c.nodes[id].plain, topic, 1, 10000)
		if err == nil && code == 0 || ctx.Err() != nil {
			return code, ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterCreateTopicsDeadlinePassedNotCommitted: a CreateTopics that
// waits behind a long change for the controller, past its timeout,
// answers REQUEST_TIMED_OUT and is not committed (Kafka's controller times
// out an operation still queued at its deadline); one with a timeout of 0
// waits as long as it must and is done, answered REQUEST_TIMED_OUT as
// Kafka answers an operation it did not wait for.
func TestClusterCreateTopicsDeadlinePassedNotCommitted(t *testing.T) {
	// The long change is a DeleteTopics of many topics: the controller
	// commits one entry per topic under its lock (a large CreateTopics no
	// longer holds it while the logs are created).
	c := startCluster(t, specs(1), "broker.session.timeout.ms=60000")
	ctx := ctxFor(t, 120*time.Second)
	addr := c.nodes[1].plain
	const big = 600 // topics deleted in one request: about a ms each
	var doomed []string
	for i := range big {
		doomed = append(doomed, fmt.Sprintf("doomed-%03d", i))
	}
	adm := kadm.NewClient(c.client(1))
	if r, err := adm.CreateTopics(ctx, 1, 1, nil, doomed...); err != nil || r.Error() != nil {
		t.Fatalf("create the topics to delete: %v %v", err, r.Error())
	}
	type res struct {
		topic string
		code  int16
		msg   string
		took  time.Duration
		err   error
	}
	create := func(topic string, partitions, timeoutMillis int32, out chan<- res) {
		code, msg, took, err := createTopicsAt(addr, topic, partitions, timeoutMillis)
		out <- res{topic, code, msg, took, err}
	}
	bigDone, late, zero := make(chan res, 1), make(chan res, 4), make(chan res, 1)
	go func() {
		ib := interbroker.New(interbroker.Options{Logger: quiet, RequestTimeout: 90 * time.Second})
		defer ib.Close()
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TimeoutMillis = 60000
		req.TopicNames = doomed // up to v5
		for i := range doomed {
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = &doomed[i] // v6+
			req.Topics = append(req.Topics, rt)
		}
		began := time.Now()
		r, err := ib.Request(ctx, addr, req)
		out := res{took: time.Since(began), err: err}
		if err == nil {
			topics := r.(*kmsg.DeleteTopicsResponse).Topics
			if len(topics) != big {
				out.err = fmt.Errorf("DeleteTopics answered %d topics of %d", len(topics), big)
			}
			for _, rt := range topics {
				if rt.ErrorCode != 0 {
					out.code = rt.ErrorCode
				}
			}
		}
		bigDone <- out
	}()
	time.Sleep(50 * time.Millisecond)
	// Several late requests: each is a separate chance to commit past
	// its deadline.
	const lates = 4
	for i := range lates {
		go create(fmt.Sprintf("late%d", i), 1, 200, late)
	}
	go create("zero", 1, 0, zero)
	b, z := <-bigDone, <-zero
	for _, r := range []res{b, z} {
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	if b.code != 0 {
		t.Fatalf("big delete: %v %s", kerr.ErrorForCode(b.code), b.msg)
	}
	t.Logf("big delete (%d topics) %v; the one with timeout 0 answered %v after %v",
		big, b.took.Round(time.Millisecond), kerr.ErrorForCode(z.code), z.took.Round(time.Millisecond))
	// A late one either waited past its deadline (REQUEST_TIMED_OUT,
	// not committed) or got the controller just before it (committed,
	// answered OK after waiting for this node's listeners); at least one
	// must have timed out, or the test tested nothing.
	timedOut := 0
	for range lates {
		l := <-late
		if l.err != nil {
			t.Fatal(l.err)
		}
		t.Logf("%s with 200 ms answered %v after %v: %s", l.topic, kerr.ErrorForCode(l.code), l.took.Round(time.Millisecond), l.msg)
		exists := c.topicExists(ctx, 1, l.topic)
		switch l.code {
		case kerr.RequestTimedOut.Code:
			timedOut++
			if exists {
				t.Errorf("%s, answered REQUEST_TIMED_OUT (its deadline passed before the commit), was committed", l.topic)
			}
		case 0:
			if !exists {
				t.Errorf("%s answered OK but does not exist", l.topic)
			}
		default:
			t.Errorf("%s: CreateTopics answered %v after %v with a 200 ms timeout; want REQUEST_TIMED_OUT", l.topic, kerr.ErrorForCode(l.code), l.took)
		}
	}
	if timedOut == 0 {
		t.Fatalf("the big delete held the controller too briefly (%v) to test a deadline", b.took)
	}
	if z.code != kerr.RequestTimedOut.Code {
		t.Errorf("CreateTopics with timeout 0 answered %v; want REQUEST_TIMED_OUT (done, not waited for)", kerr.ErrorForCode(z.code))
	}
	if !c.topicExists(ctx, 1, "zero") {
		t.Error("the CreateTopics with timeout 0 was not done")
	}
}

// TestClusterForwardedCreateVisibleOnAnswer: when a node that is not the
// controller answers a CreateTopics (forwarded), its own Metadata already
// shows the topic the controller created, under the id it answered, with
// a leader for every partition, even right after the same name was
// deleted through the controller (the forwarder used to accept any topic
// of that name: the deleted one, while its image still lagged).
func TestClusterForwardedCreateVisibleOnAnswer(t *testing.T) {
	c := startCluster(t, specs(3))
	ctx := ctxFor(t, 120*time.Second)
	ctrl := c.controllerID(ctx, 1)
	asker := ctrl%3 + 1
	raw := interbroker.New(interbroker.Options{Logger: quiet, RequestTimeout: 30 * time.Second})
	defer raw.Close()
	const topic = "recreated"
	for round := range 10 {
		creq := kmsg.NewPtrCreateTopicsRequest()
		creq.TimeoutMillis = 15000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 3, 1
		creq.Topics = append(creq.Topics, rt)
		r, err := raw.Request(ctx, c.nodes[asker].plain, creq)
		if err != nil {
			t.Fatal(err)
		}
		cr := r.(*kmsg.CreateTopicsResponse).Topics[0]
		if cr.ErrorCode != 0 {
			t.Fatalf("round %d: create through node %d: %v", round, asker, kerr.ErrorForCode(cr.ErrorCode))
		}
		mreq := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		name := topic
		mt.Topic = &name
		mreq.Topics = append(mreq.Topics, mt)
		mr, err := raw.Request(ctx, c.nodes[asker].plain, mreq)
		if err != nil {
			t.Fatal(err)
		}
		mtop := mr.(*kmsg.MetadataResponse).Topics[0]
		if mtop.ErrorCode != 0 || mtop.TopicID != cr.TopicID || len(mtop.Partitions) != 3 {
			t.Fatalf("round %d: node %d answered the create with id %x, then its Metadata shows %v id %x with %d partitions",
				round, asker, cr.TopicID, kerr.ErrorForCode(mtop.ErrorCode), mtop.TopicID, len(mtop.Partitions))
		}
		for _, p := range mtop.Partitions {
			if p.Leader < 0 {
				t.Fatalf("round %d: node %d shows %s-%d without a leader right after answering the create", round, asker, topic, p.Partition)
			}
		}
		// Delete through the controller; the asker learns it a moment later.
		dreq := kmsg.NewPtrDeleteTopicsRequest()
		dreq.TimeoutMillis = 15000
		dreq.TopicNames = []string{topic}
		dt := kmsg.NewDeleteTopicsRequestTopic()
		dt.Topic = &name
		dreq.Topics = append(dreq.Topics, dt)
		r, err = raw.Request(ctx, c.nodes[ctrl].plain, dreq)
		if err != nil {
			t.Fatal(err)
		}
		if dr := r.(*kmsg.DeleteTopicsResponse); len(dr.Topics) == 0 || dr.Topics[0].ErrorCode != 0 {
			t.Fatalf("round %d: delete through the controller: %+v", round, dr.Topics)
		}
	}
}
