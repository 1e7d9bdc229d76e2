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

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestReassignUnderLoadSurvivesControllerKill runs the built binary: 3
// combined nodes and broker-only node 4, an RF 2 topic on the two voters
// that are not the active controller (a, b), and an idempotent acks=all
// producer writing to it throughout. Broker 4 is killed; `samsa cluster
// reassign --execute` starts the move {a,b} -> {b,4} (its rollback
// document names {a,b}); --verify shows it in progress with the bytes
// broker 4 lacks; the active controller is killed with kill -9 and
// restarted, broker 4 restarted; `--verify --watch` then sees the move
// complete under the new controller: replicas and ISR {b,4}, node a's
// log directory deleted, every acknowledged record read back once and
// in order.
func TestReassignUnderLoadSurvivesControllerKill(t *testing.T) {
	c := startRFCluster(t, 3, 1)
	seeds := c.Bootstrap()
	md, err := metadataOf(ctxFor(t, 10*time.Second), t, seeds[0])
	if err != nil {
		t.Fatal(err)
	}
	ctl := md.ControllerID
	var voters []int32
	for id := int32(1); id <= 3; id++ {
		if id != ctl {
			voters = append(voters, id)
		}
	}
	a, b := voters[0], voters[1]
	const topic = "moving"
	createTopic(t, seeds[0], topic, 1, [][]int32{{a, b}}, nil)
	waitPartition(t, seeds[0], topic, 0, "replicas {a,b} in sync", func(p kmsg.MetadataResponseTopicPartition) bool {
		return len(p.ISR) == 2 && p.Leader == a
	})
	p := startSeqProducer(t, seeds, topic, 1, true)
	for p.ackedCount() < 2000 {
		time.Sleep(20 * time.Millisecond)
	}

	c.Node(4).Kill()
	dir := t.TempDir()
	plan := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(plan, []byte(fmt.Sprintf(`{"version":1,"partitions":[{"topic":%q,"partition":0,"replicas":[%d,4]}]}`, topic, b)), 0o644); err != nil {
		t.Fatal(err)
	}
	bootstrap := strings.Join([]string{c.Node(a).KafkaAddr, c.Node(b).KafkaAddr}, ",")
	r := runSamsa(t, "-X", bootstrap, "cluster", "reassign", "--execute", "-f", plan)
	if r.exitCode != 0 || !strings.Contains(r.stdout, fmt.Sprintf(`"replicas":[%d,%d]`, a, b)) || !strings.Contains(r.stdout, "Successfully started partition reassignments for moving-0") {
		t.Fatalf("execute: exit %d\n%s\n%s", r.exitCode, r.stdout, r.stderr)
	}
	var rep struct {
		Complete   bool `json:"complete"`
		Partitions []struct {
			Status   string  `json:"status"`
			Replicas []int32 `json:"replicas"`
			Moving   []struct {
				Replica        int32 `json:"replica"`
				LeaderBytes    int64 `json:"leader_bytes"`
				BytesRemaining int64 `json:"bytes_remaining"`
			} `json:"moving"`
		} `json:"partitions"`
	}
	r = runSamsa(t, "-X", bootstrap, "--format", "json", "cluster", "reassign", "--verify", "-f", plan, "--interval", "200ms")
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.exitCode != 0 {
		t.Fatalf("verify: %v exit %d\n%s\n%s", err, r.exitCode, r.stdout, r.stderr)
	}
	if rep.Complete || rep.Partitions[0].Status != "in_progress" || len(rep.Partitions[0].Moving) != 1 ||
		rep.Partitions[0].Moving[0].Replica != 4 || rep.Partitions[0].Moving[0].BytesRemaining <= 0 {
		t.Fatalf("verify with broker 4 down: %s", r.stdout)
	}

	// kill -9 of the active controller; once a or b took over, it and
	// broker 4 come back.
	c.Node(ctl).Kill()
	eventually(t, 30*time.Second, func(ctx context.Context) error {
		md, err := metadataOf(ctx, t, c.Node(a).KafkaAddr)
		if err != nil {
			return err
		}
		if md.ControllerID != a && md.ControllerID != b {
			return fmt.Errorf("controller %d, waiting for %d or %d", md.ControllerID, a, b)
		}
		return nil
	})
	c.Node(ctl).Restart(t)
	c.Node(4).Restart(t)
	r = runSamsa(t, "-X", bootstrap, "--format", "json", "cluster", "reassign", "--verify", "-f", plan, "--watch", "--interval", "200ms", "--timeout", "50s")
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.exitCode != 0 {
		t.Fatalf("verify --watch: %v exit %d\n%s\n%s", err, r.exitCode, r.stdout, r.stderr)
	}
	if !rep.Complete || rep.Partitions[0].Status != "completed" || !slices.Equal(rep.Partitions[0].Replicas, []int32{b, 4}) {
		t.Fatalf("after the move: %s", r.stdout)
	}
	waitPartition(t, seeds[1], topic, 0, "replicas and ISR {b,4}", func(p kmsg.MetadataResponseTopicPartition) bool {
		return slices.Equal(slices.Sorted(slices.Values(p.ISR)), slices.Sorted(slices.Values([]int32{b, 4}))) && p.Leader == b
	})
	eventually(t, 20*time.Second, func(context.Context) error {
		if _, err := os.Stat(filepath.Join(c.Node(a).Dir, topic+"-0")); !os.IsNotExist(err) {
			return fmt.Errorf("node %d still has %s-0: %v", a, topic, err)
		}
		return nil
	})
	for n := p.ackedCount() + 500; p.ackedCount() < n; {
		time.Sleep(20 * time.Millisecond)
	}
	p.stop(t)
	p.check(t, seeds, topic, 1)
}
