package server_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"samsa/internal/metadata"
)

// snapIndex is the raft index of the snapshot in node id's raft.snap
// (0 when there is none yet). The file is one frame (docs/raft.md):
// | length u32 | crc u32 | type u8 = 3 | protobuf raftpb.Snapshot |.
func (c *testCluster) snapIndex(id int32) uint64 {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.nodes[id].dir, metadata.LocalLogDir, "raft.snap"))
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		c.t.Fatal(err)
	}
	if len(b) < 9 || int(binary.BigEndian.Uint32(b[0:4]))+8 != len(b) || b[8] != 3 {
		c.t.Fatalf("node %d raft.snap: unexpected frame (%d bytes)", id, len(b))
	}
	var snap pb.Snapshot
	if err := proto.Unmarshal(b[9:], &snap); err != nil {
		c.t.Fatalf("node %d raft.snap: %v", id, err)
	}
	return snap.GetMetadata().GetIndex()
}

// walLastIndex is the index of the last entry in node id's raft.wal
// (0 when it holds none): frames | length u32 | crc u32 | type u8 |
// payload |, type 1 an entry (protobuf raftpb.Entry).
func (c *testCluster) walLastIndex(id int32) uint64 {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.nodes[id].dir, metadata.LocalLogDir, "raft.wal"))
	if err != nil {
		c.t.Fatal(err)
	}
	var last uint64
	for len(b) >= 9 {
		n := int(binary.BigEndian.Uint32(b[0:4]))
		if n < 1 || n+8 > len(b) {
			c.t.Fatalf("node %d raft.wal: torn frame after a clean stop", id)
		}
		if b[8] == 1 {
			var e pb.Entry
			if err := proto.Unmarshal(b[9:8+n], &e); err != nil {
				c.t.Fatalf("node %d raft.wal: %v", id, err)
			}
			last = max(last, e.GetIndex())
		}
		b = b[8+n:]
	}
	return last
}

// nodeImage renders what node id itself answers (Metadata and
// DescribeConfigs sent to that node, never routed elsewhere): every
// topic with its id, partitions, leaders and replicas, and its dynamic
// topic configs, sorted, one line per fact.
func (c *testCluster) nodeImage(ctx context.Context, id int32) string {
	c.t.Helper()
	br := c.client(id).SeedBrokers()[0]
	mreq := kmsg.NewPtrMetadataRequest() // nil Topics: all topics
	r, err := br.Request(ctx, mreq)
	if err != nil {
		c.t.Fatalf("node %d metadata: %v", id, err)
	}
	m := r.(*kmsg.MetadataResponse)
	var lines, names []string
	for _, tp := range m.Topics {
		if tp.ErrorCode != 0 || tp.Topic == nil {
			lines = append(lines, fmt.Sprintf("topic %v error %d", tp.Topic, tp.ErrorCode))
			continue
		}
		names = append(names, *tp.Topic)
		lines = append(lines, fmt.Sprintf("topic %s id %x partitions %d", *tp.Topic, tp.TopicID, len(tp.Partitions)))
		for _, p := range tp.Partitions {
			lines = append(lines, fmt.Sprintf("  %s-%d leader %d epoch %d replicas %v err %d", *tp.Topic, p.Partition, p.Leader, p.LeaderEpoch, p.Replicas, p.ErrorCode))
		}
	}
	if len(names) > 0 {
		dreq := kmsg.NewPtrDescribeConfigsRequest()
		for _, n := range names {
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType = kmsg.ConfigResourceTypeTopic
			rr.ResourceName = n
			dreq.Resources = append(dreq.Resources, rr)
		}
		r, err := br.Request(ctx, dreq)
		if err != nil {
			c.t.Fatalf("node %d describe configs: %v", id, err)
		}
		for _, res := range r.(*kmsg.DescribeConfigsResponse).Resources {
			if res.ErrorCode != 0 {
				lines = append(lines, fmt.Sprintf("config %s error %d", res.ResourceName, res.ErrorCode))
				continue
			}
			for _, cfg := range res.Configs {
				if cfg.Source == kmsg.ConfigSourceDynamicTopicConfig && cfg.Value != nil {
					lines = append(lines, fmt.Sprintf("config %s %s=%s", res.ResourceName, cfg.Name, *cfg.Value))
				}
			}
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// waitSameImage polls until every running node renders the same image
// and returns it.
func (c *testCluster) waitSameImage(ctx context.Context, within time.Duration) string {
	c.t.Helper()
	return c.waitImage(ctx, within, "")
}

// waitImage polls until every running node renders the same image and,
// unless want is "", that image without leader epochs (a restart may
// move them) is want without them.
func (c *testCluster) waitImage(ctx context.Context, within time.Duration, want string) string {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		imgs := map[int32]string{}
		same := true
		var first string
		for id, n := range c.nodes {
			if n.s == nil {
				continue
			}
			imgs[id] = c.nodeImage(ctx, id)
			if first == "" {
				first = imgs[id]
			} else if imgs[id] != first {
				same = false
			}
		}
		if same && (want == "" || withoutEpochs(first) == withoutEpochs(want)) {
			return first
		}
		if time.Now().After(deadline) {
			for id, img := range imgs {
				c.t.Logf("node %d image:\n%s", id, img)
			}
			if want != "" {
				c.t.Logf("want image:\n%s", want)
			}
			c.t.Fatalf("nodes disagree on the metadata image, or it is not the one wanted, after %v", within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterCatchUpFromSnapshot: with a tiny
// metadata.log.max.record.bytes.between.snapshots, a voter that is
// stopped while many topics are created, deleted, recreated and
// reconfigured finds the log compacted past its position when it
// returns; it catches up from the leader's snapshot to the same image
// as the others (same topic ids, partitions, configs; deleted topics
// gone), unfences and serves its partition. Every node restarted once
// from its own snapshot then keeps the whole image.
func TestClusterCatchUpFromSnapshot(t *testing.T) {
	// The stopped node is a follower that shuts down cleanly, or the
	// quorum leader (active controller) killed without a word.
	t.Run("ClosedFollower", func(t *testing.T) { catchUpFromSnapshot(t, false) })
	t.Run("CrashedLeader", func(t *testing.T) { catchUpFromSnapshot(t, true) })
}

func catchUpFromSnapshot(t *testing.T, crashLeader bool) {
	c := startCluster(t, specs(3),
		"metadata.log.max.record.bytes.between.snapshots=2048",
		"metadata.log.max.snapshot.interval.ms=500")
	ctx := ctxFor(t, 150*time.Second)
	ctrl := c.controllerID(ctx, 1)
	victim := ctrl%3 + 1
	if crashLeader {
		victim = ctrl
	}
	asker := victim%3 + 1
	adm := kadm.NewClient(c.client(asker))
	mustCreate := func(parts int32, configs map[string]*string, name string) {
		t.Helper()
		if r, err := adm.CreateTopic(ctx, parts, 1, configs, name); err != nil || r.Err != nil {
			t.Fatalf("create %s: %v %v", name, err, r.Err)
		}
	}
	mustDelete := func(name string) {
		t.Helper()
		if r, err := adm.DeleteTopic(ctx, name); err != nil || r.Err != nil {
			t.Fatalf("delete %s: %v %v", name, err, r.Err)
		}
	}
	// Topics the victim knows before it stops: one it keeps leading a
	// partition of, one deleted and one deleted and recreated meanwhile.
	mustCreate(3, nil, "keep")
	mustCreate(3, nil, "gone")
	mustCreate(1, nil, "reborn")
	var victimPart int32 = -1
	for p, l := range c.leaders(ctx, asker, "keep") {
		if l == victim {
			victimPart = p
		}
	}
	if victimPart < 0 {
		t.Fatalf("no partition of keep on the victim %d: %v", victim, c.leaders(ctx, asker, "keep"))
	}
	var goneOnVictim int32 = -1
	for p, l := range c.leaders(ctx, asker, "gone") {
		if l == victim {
			goneOnVictim = p
		}
	}
	if goneOnVictim < 0 {
		t.Fatalf("no partition of gone on the victim %d: %v", victim, c.leaders(ctx, asker, "gone"))
	}
	{
		// The leaders above come from another broker's metadata: the
		// victim may not have applied the topic (and created its log)
		// yet.
		dir := filepath.Join(c.nodes[victim].dir, fmt.Sprintf("gone-%d", goneOnVictim))
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			_, err := os.Stat(dir)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the victim has no log for its partition of gone: %v", err)
			}
		}
	}
	before := c.waitSameImage(ctx, 10*time.Second)
	oldRebornID := imageTopicID(t, before, "reborn")

	stop := c.nodes[victim].s.Close
	if crashLeader {
		stop = c.nodes[victim].s.Crash
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	c.nodes[victim].s = nil
	// The victim's position: the last entry in its files (a follower's
	// is also its log end as the quorum leader saw it).
	victimEnd := max(c.snapIndex(victim), c.walLastIndex(victim))
	if !crashLeader {
		if seen := uint64(c.quorumLogEnd(ctx, asker, victim)); seen > victimEnd {
			t.Fatalf("the leader saw the victim's log end at %d, its files end at %d", seen, victimEnd)
		}
	}
	t.Logf("controller %d, victim %d stopped at raft index %d (snapshot %d)", ctrl, victim, victimEnd, c.snapIndex(victim))

	// Many metadata operations through the others.
	mustDelete("gone")
	mustDelete("reborn")
	mustCreate(2, nil, "reborn")
	v := func(s string) *string { return &s }
	for i := 0; i < 30; i++ {
		name := fmt.Sprintf("snap-%02d", i)
		mustCreate(2, map[string]*string{"cleanup.policy": v("compact")}, name)
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: v(fmt.Sprint(60000 + i))}}, name, "keep")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Err != nil {
				t.Fatalf("alter %s: %v", r.Name, r.Err)
			}
		}
		if i%3 == 2 {
			mustDelete(fmt.Sprintf("snap-%02d", i-1))
		}
	}
	// Both live voters snapshot past the victim's position, so the
	// leader's log no longer holds the entry the victim needs next.
	live := []int32{}
	for id := int32(1); id <= 3; id++ {
		if id != victim {
			live = append(live, id)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ok := true
		for _, id := range live {
			if c.snapIndex(id) <= victimEnd {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot past the victim's index %d: node %d at %d, node %d at %d", victimEnd, live[0], c.snapIndex(live[0]), live[1], c.snapIndex(live[1]))
		}
	}
	leaderSnap := c.snapIndex(c.controllerID(ctx, asker))
	t.Logf("live snapshots at %d and %d, leader's %d > victim's %d", c.snapIndex(live[0]), c.snapIndex(live[1]), leaderSnap, victimEnd)
	want := c.waitSameImage(ctx, 10*time.Second)
	if strings.Contains(want, "topic gone ") || imageTopicID(t, want, "reborn") == oldRebornID {
		t.Fatalf("live image before the return is wrong:\n%s", want)
	}

	// The victim returns on its old data dir and catches up.
	c.restart(victim)
	if got := c.snapIndex(victim); got < leaderSnap {
		t.Fatalf("victim's snapshot at %d after its return, want >= the leader's %d (installed from the leader)", got, leaderSnap)
	}
	got := c.waitSameImage(ctx, 15*time.Second)
	if imageTopicID(t, got, "reborn") == oldRebornID || strings.Contains(got, "topic gone ") || strings.Contains(got, "topic snap-01 ") {
		t.Fatalf("victim's image keeps deleted topics:\n%s", got)
	}
	for _, line := range []string{"config keep retention.ms=60029", "config snap-29 cleanup.policy=compact", "config snap-29 retention.ms=60029", "topic snap-00 "} {
		if !strings.Contains(got, line) {
			t.Fatalf("image lacks %q:\n%s", line, got)
		}
	}
	// Its partition of keep is led by it again and serves.
	for deadline := time.Now().Add(10 * time.Second); c.leaders(ctx, asker, "keep")[victimPart] != victim; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("keep-%d leader %v, want the returned %d", victimPart, c.leaders(ctx, asker, "keep"), victim)
		}
	}
	produceFetchOne(t, ctx, c, asker, victim, "keep", victimPart, "after snapshot")
	// The deleted topic's partition data is removed from the victim.
	{
		dir := filepath.Join(c.nodes[victim].dir, fmt.Sprintf("gone-%d", goneOnVictim))
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if _, err := os.Stat(dir); os.IsNotExist(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("deleted topic's log %s still on the returned victim", dir)
			}
		}
	}

	// Every node restarted once (from its own snapshot plus log) keeps
	// the whole image.
	for id := int32(1); id <= 3; id++ {
		if c.snapIndex(id) == 0 {
			t.Fatalf("node %d has no snapshot of its own to restart from", id)
		}
		if err := c.nodes[id].s.Close(); err != nil {
			t.Fatal(err)
		}
		c.nodes[id].s = nil
		c.restart(id)
		c.waitImage(ctx, 15*time.Second, got)
	}
	produceFetchOne(t, ctx, c, victim, victim, "keep", victimPart, "after restarts")
}

// quorumLogEnd is node of's log end offset (raft index of its last
// entry) as DescribeQuorum on node id reports it.
func (c *testCluster) quorumLogEnd(ctx context.Context, id, of int32) int64 {
	c.t.Helper()
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	req.Topics = append(req.Topics, rt)
	dq, err := req.RequestWith(ctx, c.client(id))
	if err != nil {
		c.t.Fatal(err)
	}
	p := dq.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		c.t.Fatalf("DescribeQuorum: error %d", p.ErrorCode)
	}
	for _, v := range p.CurrentVoters {
		if v.ReplicaID == of && v.LogEndOffset > 0 {
			return v.LogEndOffset
		}
	}
	c.t.Fatalf("DescribeQuorum has no log end for voter %d: %+v", of, p.CurrentVoters)
	return 0
}

var epochRE = regexp.MustCompile(` epoch -?[0-9]+`)

// withoutEpochs drops the leader epochs from an image of nodeImage.
func withoutEpochs(img string) string { return epochRE.ReplaceAllString(img, "") }

// imageTopicID is the id of topic name in an image from nodeImage.
func imageTopicID(t *testing.T, img, name string) string {
	t.Helper()
	for _, line := range strings.Split(img, "\n") {
		if rest, ok := strings.CutPrefix(line, "topic "+name+" id "); ok {
			return strings.Fields(rest)[0]
		}
	}
	t.Fatalf("no topic %s in image:\n%s", name, img)
	return ""
}

// produceFetchOne produces one record to topic/part by a client seeded
// with node via and consumes it back by a client seeded with node from
// (both reach the partition's leader).
func produceFetchOne(t *testing.T, ctx context.Context, c *testCluster, via, from int32, topic string, part int32, val string) {
	t.Helper()
	prod := c.client(via, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	res, err := prod.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte(val)}).First()
	if err != nil {
		t.Fatalf("produce to %s-%d: %v", topic, part, err)
	}
	cons := c.client(from, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {part: kgo.NewOffset().At(res.Offset)}}))
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		fs := cons.PollFetches(fctx)
		if err := fctx.Err(); err != nil {
			t.Fatalf("fetch %s-%d at %d: %v", topic, part, res.Offset, err)
		}
		for _, e := range fs.Errors() {
			t.Logf("fetch error %s-%d: %v", e.Topic, e.Partition, e.Err)
		}
		var recs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		if len(recs) > 0 {
			if string(recs[0].Value) != val || recs[0].Offset != res.Offset {
				t.Fatalf("fetched %q at %d, want %q at %d", recs[0].Value, recs[0].Offset, val, res.Offset)
			}
			return
		}
	}
}
