package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDecommissionUnderLoad runs the built binary: 3 combined nodes and
// broker-only node 4, which holds a replica of each of three partitions
// written by an idempotent acks=all producer throughout. `samsa cluster
// decommission 4` (a dry run) lists a move per replica and changes
// nothing; `--execute` moves them all and says to stop the broker;
// `--unregister` is refused while it runs; after a SIGTERM (controlled
// shutdown) it unregisters broker 4: no node lists it any more, fenced
// or not, no partition names it, `samsa cluster info` no longer shows it
// among the metadata quorum's observers (DescribeQuorum; it was one
// before), it deleted the moved partitions' log directories, and every
// acknowledged record is read back once, in order.
func TestDecommissionUnderLoad(t *testing.T) {
	c := startRFCluster(t, 3, 1)
	seeds := c.Bootstrap()
	const topic = "leaving"
	createTopic(t, seeds[0], topic, 3, [][]int32{{4, 1}, {2, 4}, {4, 3}}, nil)
	for p := int32(0); p < 3; p++ {
		waitPartition(t, seeds[0], topic, p, "both replicas in sync", func(p kmsg.MetadataResponseTopicPartition) bool {
			return len(p.ISR) == 2 && p.Leader >= 0
		})
	}
	p := startSeqProducer(t, seeds, topic, 3, true)
	for p.ackedCount() < 3000 {
		time.Sleep(20 * time.Millisecond)
	}
	bootstrap := strings.Join(seeds[:3], ",")
	// observers runs `samsa cluster info` and returns the metadata
	// quorum's observers (DescribeQuorum).
	observers := func() []int32 {
		t.Helper()
		r := runSamsa(t, "-X", bootstrap, "--format", "json", "cluster", "info")
		var info struct {
			Quorum *struct {
				Observers []struct {
					NodeID int32 `json:"node_id"`
				} `json:"observers"`
			} `json:"quorum"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || r.exitCode != 0 || info.Quorum == nil {
			t.Fatalf("cluster info: exit %d, %v\n%s\n%s", r.exitCode, err, r.stdout, r.stderr)
		}
		var ids []int32
		for _, o := range info.Quorum.Observers {
			ids = append(ids, o.NodeID)
		}
		return ids
	}
	if got := observers(); !slices.Equal(got, []int32{4}) {
		t.Fatalf("quorum observers before the decommission: %v", got)
	}

	type report struct {
		DryRun bool `json:"dry_run"`
		Plan   struct {
			Moves []struct {
				Topic string `json:"topic"`
				From  int32  `json:"from"`
				To    int32  `json:"to"`
				Bytes int64  `json:"bytes"`
			} `json:"moves"`
		} `json:"plan"`
		Moved        bool `json:"moved"`
		Unregistered bool `json:"unregistered"`
	}
	var dry report
	r := runSamsa(t, "-X", bootstrap, "--format", "json", "cluster", "decommission", "4")
	if err := json.Unmarshal([]byte(r.stdout), &dry); err != nil || r.exitCode != 0 {
		t.Fatalf("dry run: %v exit %d\n%s\n%s", err, r.exitCode, r.stdout, r.stderr)
	}
	moves := 0
	for _, m := range dry.Plan.Moves {
		if m.Topic == topic {
			moves++
			if m.From != 4 || m.To == 4 || m.Bytes <= 0 {
				t.Fatalf("dry-run move %+v", m)
			}
		}
	}
	if !dry.DryRun || dry.Moved || moves != 3 {
		t.Fatalf("dry run: %s", r.stdout)
	}

	start := time.Now()
	r = runSamsa(t, "-X", bootstrap, "cluster", "decommission", "4", "--execute", "--batch", "2", "--interval", "200ms", "--timeout", "50s")
	if r.exitCode != 0 || !strings.Contains(r.stdout, "Broker 4 holds no replica.") || !strings.Contains(r.stdout, "decommission 4 --unregister") {
		t.Fatalf("execute: exit %d\n%s\n%s", r.exitCode, r.stdout, r.stderr)
	}
	t.Logf("moved off broker 4 in %v under load (%d records acknowledged)", time.Since(start).Round(time.Millisecond), p.ackedCount())
	if r = runSamsa(t, "-X", bootstrap, "cluster", "decommission", "4", "--unregister"); r.exitCode == 0 || !strings.Contains(r.stderr, "still running") {
		t.Fatalf("unregister of the running broker: exit %d\n%s\n%s", r.exitCode, r.stdout, r.stderr)
	}
	if err := c.Node(4).Broker().Stop(); err != nil {
		t.Fatal(err)
	}
	var un report
	eventually(t, 20*time.Second, func(context.Context) error {
		r = runSamsa(t, "-X", bootstrap, "--format", "json", "cluster", "decommission", "4", "--unregister")
		if r.exitCode != 0 {
			return fmt.Errorf("unregister: exit %d: %s", r.exitCode, r.stderr)
		}
		return json.Unmarshal([]byte(r.stdout), &un)
	})
	if !un.Unregistered {
		t.Fatalf("unregister: %s", r.stdout)
	}
	for _, addr := range seeds[:3] {
		eventually(t, 10*time.Second, func(ctx context.Context) error {
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
			if err != nil {
				return err
			}
			defer cl.Close()
			dreq := kmsg.NewPtrDescribeClusterRequest()
			dreq.IncludeFencedBrokers = true
			dr, err := dreq.RequestWith(ctx, cl)
			if err != nil {
				return err
			}
			if slices.ContainsFunc(dr.Brokers, func(b kmsg.DescribeClusterResponseBroker) bool { return b.NodeID == 4 }) {
				return fmt.Errorf("%s still lists broker 4", addr)
			}
			md, err := metadataOf(ctx, t, addr)
			if err != nil {
				return err
			}
			for _, tm := range md.Topics {
				for _, pm := range tm.Partitions {
					if slices.Contains(pm.Replicas, 4) {
						return fmt.Errorf("%s: %s-%d replicas %v", addr, *tm.Topic, pm.Partition, pm.Replicas)
					}
				}
			}
			return nil
		})
	}
	eventually(t, 10*time.Second, func(context.Context) error {
		if got := observers(); len(got) != 0 {
			return fmt.Errorf("quorum observers after unregistering broker 4: %v", got)
		}
		return nil
	})
	// Broker 4 deleted the logs it no longer held before it stopped.
	for part := 0; part < 3; part++ {
		if _, err := os.Stat(filepath.Join(c.Node(4).Dir, fmt.Sprintf("%s-%d", topic, part))); !os.IsNotExist(err) {
			t.Errorf("broker 4 still has %s-%d: %v", topic, part, err)
		}
	}
	for n := p.ackedCount() + 500; p.ackedCount() < n; {
		time.Sleep(20 * time.Millisecond)
	}
	p.stop(t)
	p.check(t, seeds[:3], topic, 3)
}
