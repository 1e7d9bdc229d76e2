package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/test/brokerproc"
)

// Bounds of TestClusterNetworkPartition.
const (
	// partitionFailoverLimit: the majority must take CreateTopics again
	// within this of the cut ("within a few seconds").
	partitionFailoverLimit = 8 * time.Second
	// minorityTimeoutMS is the timeout_ms of the CreateTopics requests
	// sent to the isolated old leader: it must answer within it (plus
	// minoritySlack), REQUEST_TIMED_OUT or NOT_CONTROLLER. It ended with
	// no answer for 45 s before Samsa honoured timeout_ms: the deposed
	// node forwarded for 30 s, kgo's retry was forwarded again, and the
	// new leader committed np-minority after the heal although the
	// client was gone.
	minorityTimeoutMS = 3000
	minoritySlack     = 1500 * time.Millisecond
)

// TestClusterNetworkPartition runs 3 nodes, each in its own network
// namespace on one bridge, cuts the active controller off the network and
// checks: the majority elects another leader and CreateTopics through it
// works within seconds; CreateTopics sent to the isolated old leader (from
// inside its namespace) answer within their timeout_ms, NOT_CONTROLLER or
// REQUEST_TIMED_OUT, at once after the cut and again once it is deposed;
// after healing, the old
// leader follows the new one, lists the topics created meanwhile, no
// topic it was asked for exists anywhere, and every node's Metadata
// agrees (brokers, topics, controller).
func TestClusterNetworkPartition(t *testing.T) {
	requireNetAdmin(t)
	bin, err := brokerproc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	lab := newNetLab(t)

	const n = 3
	var nodes []*brokerproc.Node
	var namespaces []string
	var voters []string
	for i := 1; i <= n; i++ {
		ns, ip := lab.addNode(t)
		root := t.TempDir()
		nd := &brokerproc.Node{
			ID:             int32(i),
			KafkaAddr:      ip + ":9092",
			ControllerAddr: ip + ":9093",
			ConfigFile:     filepath.Join(root, "server.properties"),
			Dir:            filepath.Join(root, "data"),
		}
		nodes = append(nodes, nd)
		namespaces = append(namespaces, ns)
		voters = append(voters, fmt.Sprintf("%d@%s", nd.ID, nd.ControllerAddr))
	}
	var addrs []string
	for i, nd := range nodes {
		if err := os.MkdirAll(nd.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		props := brokerproc.NodeProperties(nd, strings.Join(voters, ","), fastLiveness)
		if err := os.WriteFile(nd.ConfigFile, []byte(props), 0o644); err != nil {
			t.Fatal(err)
		}
		startInNS(t, bin, namespaces[i], nd.ConfigFile, filepath.Dir(nd.ConfigFile), int(nd.ID))
		addrs = append(addrs, nd.KafkaAddr)
	}
	t0 := time.Now()
	waitFormed(t, addrs, n)
	t.Logf("3 nodes in namespaces %v formed a cluster in %v", namespaces, time.Since(t0).Round(time.Millisecond))

	ctx := ctxFor(t, 60*time.Second)
	brokerproc.CreateTopic(t, addrs[0], "np-before", 3)

	q, err := quorumOf(ctx, t, addrs[0])
	if err != nil {
		t.Fatalf("DescribeQuorum: %v", err)
	}
	li := int(q.LeaderID) - 1
	if li < 0 || li >= n {
		t.Fatalf("quorum leader %d is no node", q.LeaderID)
	}
	old := nodes[li]
	var majority []string
	for _, nd := range nodes {
		if nd != old {
			majority = append(majority, nd.KafkaAddr)
		}
	}

	// Cut the active controller off, then at once ask it (from inside its
	// namespace, where it is still reachable) for a topic, while the
	// majority elects a new leader.
	lab.cut(t, li+1)
	cutAt := time.Now()
	healed := false
	t.Cleanup(func() {
		if !healed {
			lab.heal(t, li+1)
		}
	})
	type result struct {
		code *kerr.Error
		took time.Duration
		msg  string
		err  error
	}
	askMinority := func(topic string) chan result {
		ch := make(chan result, 1)
		go func() {
			code, took, msg, err := rawCreateInNS(namespaces[li], old.KafkaAddr, topic, minorityTimeoutMS)
			ch <- result{code, took, msg, err}
		}()
		return ch
	}
	checkMinority := func(topic string, r result, want ...*kerr.Error) {
		t.Helper()
		if r.err != nil {
			t.Errorf("CreateTopics %s sent to the isolated old leader %d: %v", topic, old.ID, r.err)
			return
		}
		t.Logf("CreateTopics %s (timeout %d ms) sent to the isolated old leader %d: %v after %v: %s",
			topic, minorityTimeoutMS, old.ID, r.code, r.took.Round(time.Millisecond), r.msg)
		if r.took > minorityTimeoutMS*time.Millisecond+minoritySlack {
			t.Errorf("the isolated node answered CreateTopics %s after %v; its timeout was %d ms", topic, r.took, minorityTimeoutMS)
		}
		if !slices.Contains(want, r.code) {
			t.Errorf("the isolated node answered CreateTopics %s with %v; want one of %v", topic, r.code, want)
		}
	}
	// At once: it still leads and appends, then CheckQuorum deposes it
	// (NOT_CONTROLLER), or the deadline passes first.
	minority := askMinority("np-minority")

	var took time.Duration
	for {
		err := createWithFreshClient(majority, "np-during")
		if err == nil {
			took = time.Since(cutAt)
			break
		}
		if time.Since(cutAt) > partitionFailoverLimit {
			t.Fatalf("CreateTopics through the majority %v still failing %v after cutting off controller %d: %v", majority, partitionFailoverLimit, old.ID, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	q2, err := quorumOf(ctx, t, majority[0])
	if err != nil {
		t.Fatalf("DescribeQuorum on the majority: %v", err)
	}
	if q2.LeaderID == old.ID || q2.LeaderID < 0 || q2.LeaderEpoch <= q.LeaderEpoch {
		t.Fatalf("after cutting off %d (epoch %d) the majority's leader is %d (epoch %d)", old.ID, q.LeaderEpoch, q2.LeaderID, q2.LeaderEpoch)
	}
	t.Logf("cut off controller %d (epoch %d): node %d leads (epoch %d), CreateTopics through the majority works after %v",
		old.ID, q.LeaderEpoch, q2.LeaderID, q2.LeaderEpoch, took.Round(time.Millisecond))

	checkMinority("np-minority", <-minority, kerr.NotController, kerr.RequestTimedOut)
	// Once deposed, it forwards, finds no controller, and answers
	// REQUEST_TIMED_OUT at the deadline.
	checkMinority("np-minority-2", <-askMinority("np-minority-2"), kerr.RequestTimedOut)
	// Still cut off, the old leader's own Metadata (its applied, that is
	// committed, image) has no np-minority either.
	if out, err := runInNS(bin, namespaces[li], 10*time.Second, "-X", old.KafkaAddr, "topic", "list"); err != nil {
		t.Errorf("topic list on the isolated node %d: %v: %s", old.ID, err, out)
	} else if slices.Contains(strings.Fields(out), "np-minority") || slices.Contains(strings.Fields(out), "np-minority-2") {
		t.Errorf("the isolated node %d lists np-minority while cut off:\n%s", old.ID, out)
	} else if !slices.Contains(strings.Fields(out), "np-before") {
		t.Errorf("topic list on the isolated node %d does not show np-before (is the listing read right?):\n%s", old.ID, out)
	}

	lab.heal(t, li+1)
	healed = true
	healAt := time.Now()
	want := []string{"np-before", "np-during"}
	eventually(t, 30*time.Second, func(ctx context.Context) error {
		return agreeing(ctx, t, addrs, n, want)
	})
	t.Logf("after healing, every node agrees within %v", time.Since(healAt).Round(time.Millisecond))

	q3, err := quorumOf(ctx, t, old.KafkaAddr)
	if err != nil {
		t.Fatalf("DescribeQuorum on the healed node: %v", err)
	}
	if q3.LeaderID == old.ID || q3.LeaderEpoch < q2.LeaderEpoch {
		t.Errorf("after healing node %d reports leader %d epoch %d; want it to follow (the majority elected %d in epoch %d)", old.ID, q3.LeaderID, q3.LeaderEpoch, q2.LeaderID, q2.LeaderEpoch)
	}
	// No topic the isolated node was asked for exists anywhere, even
	// asked for by name.
	for _, a := range addrs {
		md, err := metadataOf(ctx, t, a, "np-minority", "np-minority-2")
		if err != nil {
			t.Fatal(err)
		}
		for _, tp := range md.Topics {
			if kerr.ErrorForCode(tp.ErrorCode) != kerr.UnknownTopicOrPartition {
				t.Errorf("node %s: topic %s (asked of the isolated leader) answers %v; it must not exist", a, *tp.Topic, kerr.ErrorForCode(tp.ErrorCode))
			}
		}
	}
}

// agreeing checks every node's Metadata: n brokers, exactly the topics
// want (internal topics aside), each with a live leader, and one
// controller id, which is the quorum leader.
func agreeing(ctx context.Context, t *testing.T, addrs []string, n int, want []string) error {
	ctrl := int32(-2)
	for _, a := range addrs {
		md, err := metadataOf(ctx, t, a)
		if err != nil {
			return fmt.Errorf("node %s: %w", a, err)
		}
		if len(md.Brokers) != n {
			return fmt.Errorf("node %s: Metadata lists brokers %v, want %d", a, brokerIDs(md), n)
		}
		var topics []string
		for _, tp := range md.Topics {
			if tp.IsInternal || tp.Topic == nil || strings.HasPrefix(*tp.Topic, "__") {
				continue
			}
			topics = append(topics, *tp.Topic)
			for _, p := range tp.Partitions {
				if p.Leader < 0 {
					return fmt.Errorf("node %s: %s-%d has no leader", a, *tp.Topic, p.Partition)
				}
			}
		}
		slices.Sort(topics)
		if !slices.Equal(topics, want) {
			return fmt.Errorf("node %s: topics %v, want %v", a, topics, want)
		}
		if ctrl != -2 && md.ControllerID != ctrl {
			return fmt.Errorf("node %s: controller %d, another node says %d", a, md.ControllerID, ctrl)
		}
		ctrl = md.ControllerID
	}
	q, err := quorumOf(ctx, t, addrs[0])
	if err != nil {
		return err
	}
	if q.LeaderID != ctrl {
		return fmt.Errorf("every node names controller %d, the quorum leader is %d", ctrl, q.LeaderID)
	}
	return nil
}
