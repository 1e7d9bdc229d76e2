package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterLargeCreateFencesNoBroker: on an in-process 3-node cluster
// with a 1.5 s broker session (heartbeats every 100 ms), one CreateTopics
// of 3,000 partitions — seconds of log creation on every node — fences
// no broker: every node's Metadata lists all three brokers throughout
// (polled every 50 ms) and afterwards, and every partition has a leader.
func TestClusterLargeCreateFencesNoBroker(t *testing.T) {
	c := startCluster(t, []nodeSpec{{id: 1}, {id: 2}, {id: 3}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	for id := range c.nodes {
		cl := c.client(id)
		wg.Add(1)
		go func() { // this node's view of the live brokers
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				req := kmsg.NewPtrMetadataRequest()
				req.Topics = []kmsg.MetadataRequestTopic{} // brokers only
				rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
				resp, err := req.RequestWith(rctx, cl)
				rcancel()
				if err != nil {
					continue // a slow answer is not a fence
				}
				if len(resp.Brokers) != 3 {
					mu.Lock()
					problems = append(problems, fmt.Sprintf("node %d lists %d brokers at %s", id, len(resp.Brokers), time.Now().Format("15:04:05.000")))
					mu.Unlock()
				}
			}
		}()
	}

	adm := kadm.NewClient(c.client(1))
	adm.SetTimeoutMillis(120000)
	var names []string
	for i := range 30 {
		names = append(names, fmt.Sprintf("big-%02d", i))
	}
	began := time.Now()
	resp, err := adm.CreateTopics(ctx, 100, 1, nil, names...)
	took := time.Since(began)
	if err == nil {
		err = resp.Error()
	}
	time.Sleep(2 * time.Second) // a fence after the create shows too
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Logf("created 3,000 partitions in %v", took)
	for _, p := range problems {
		t.Error(p)
	}
	for _, name := range names {
		for p, l := range c.leaders(ctx, 2, name) {
			if l < 0 {
				t.Errorf("%s-%d has no leader", name, p)
			}
		}
	}
}
