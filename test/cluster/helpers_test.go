package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/test/brokerproc"
)

// Faster liveness than Kafka's defaults (9 s session, 2 s heartbeat), so
// fencing tests take seconds; the keys are Kafka's.
var fastLiveness = []string{
	"broker.session.timeout.ms=4000",
	"broker.heartbeat.interval.ms=500",
}

// startCluster starts n nodes and waits until they form one cluster.
func startCluster(t *testing.T, n int, racks ...string) *brokerproc.Cluster {
	t.Helper()
	c, err := brokerproc.StartCluster(t, brokerproc.ClusterOptions{Nodes: n, Racks: racks, Extra: fastLiveness})
	if err != nil {
		t.Fatal(err)
	}
	waitFormed(t, c.Bootstrap(), n)
	return c
}

// nodeClient is a franz-go client whose seed is the node at addr;
// seedRequest sends to that node only.
func nodeClient(t *testing.T, addrs ...string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RequestTimeoutOverhead(5*time.Second), kgo.RetryTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// seedRequest sends req to the node at addr itself (not wherever kgo
// would route it).
func seedRequest(ctx context.Context, t *testing.T, addr string, req kmsg.Request) (kmsg.Response, error) {
	t.Helper()
	cl := nodeClient(t, addr)
	defer cl.Close()
	return cl.SeedBrokers()[0].Request(ctx, req)
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// metadataOf asks the node at addr for the brokers and every topic.
func metadataOf(ctx context.Context, t *testing.T, addr string, topics ...string) (*kmsg.MetadataResponse, error) {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	if len(topics) == 0 {
		req.Topics = nil // all topics
	}
	for _, tp := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(tp)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := seedRequest(ctx, t, addr, req)
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.MetadataResponse), nil
}

// brokerIDs are the ids in a Metadata response, sorted.
func brokerIDs(md *kmsg.MetadataResponse) []int32 {
	var ids []int32
	for _, b := range md.Brokers {
		ids = append(ids, b.NodeID)
	}
	slices.Sort(ids)
	return ids
}

// quorumOf sends DescribeQuorum for __cluster_metadata-0 to the node at
// addr.
func quorumOf(ctx context.Context, t *testing.T, addr string) (*kmsg.DescribeQuorumResponseTopicPartition, error) {
	t.Helper()
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	resp, err := seedRequest(ctx, t, addr, req)
	if err != nil {
		return nil, err
	}
	r := resp.(*kmsg.DescribeQuorumResponse)
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		return nil, err
	}
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		return nil, fmt.Errorf("DescribeQuorum answered %d topics", len(r.Topics))
	}
	p := r.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return nil, err
	}
	return &p, nil
}

// waitFormed waits until every node's Metadata lists n brokers and a
// node reports a quorum leader.
func waitFormed(t *testing.T, addrs []string, n int) {
	t.Helper()
	eventually(t, 60*time.Second, func(ctx context.Context) error {
		for _, a := range addrs {
			md, err := metadataOf(ctx, t, a)
			if err != nil {
				return err
			}
			if len(md.Brokers) != n {
				return fmt.Errorf("node %s: Metadata lists brokers %v, want %d", a, brokerIDs(md), n)
			}
		}
		q, err := quorumOf(ctx, t, addrs[0])
		if err != nil {
			return err
		}
		if q.LeaderID < 0 {
			return fmt.Errorf("no quorum leader yet")
		}
		return nil
	})
}

// eventually retries fn (each try bounded to 5 s) until it succeeds or
// timeout passes, then fails the test with fn's last error.
func eventually(t *testing.T, timeout time.Duration, fn func(ctx context.Context) error) {
	t.Helper()
	if err := retryUntil(timeout, fn); err != nil {
		t.Fatalf("after %v: %v", timeout, err)
	}
}

func retryUntil(timeout time.Duration, fn func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := fn(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// samsaRun is one finished `samsa` CLI run.
type samsaRun struct {
	stdout, stderr string
	exitCode       int
}

// runSamsa runs the samsa binary with args (bounded to 60 s).
func runSamsa(t *testing.T, args ...string) samsaRun {
	t.Helper()
	bin, err := brokerproc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	r := samsaRun{stdout: o.String(), stderr: e.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.exitCode = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("samsa %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// envRounds reads a positive round count from env, def when unset.
func envRounds(t *testing.T, env string, def int) int {
	t.Helper()
	s := os.Getenv(env)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", env, s)
	}
	return n
}

// percentile is the p-th percentile (0..100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(rank, len(s)-1))]
}
