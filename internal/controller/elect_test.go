package controller

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// electReq builds an ElectLeaders request (v2) for topic/partition
// pairs; no pairs: a null topic list (every partition).
func electReq(typ int8, tps ...any) *kmsg.ElectLeadersRequest {
	req := kmsg.NewPtrElectLeadersRequest()
	req.Version, req.ElectionType, req.TimeoutMillis = 2, typ, 5000
	for i := 0; i+1 < len(tps); i += 2 {
		name, p := tps[i].(string), int32(tps[i+1].(int))
		j := slices.IndexFunc(req.Topics, func(t kmsg.ElectLeadersRequestTopic) bool { return t.Topic == name })
		if j < 0 {
			t := kmsg.NewElectLeadersRequestTopic()
			t.Topic = name
			req.Topics = append(req.Topics, t)
			j = len(req.Topics) - 1
		}
		req.Topics[j].Partitions = append(req.Topics[j].Partitions, p)
	}
	return req
}

// electCodes flattens an answer to "topic-partition" -> error code.
func electCodes(resp *kmsg.ElectLeadersResponse) map[string]int16 {
	out := map[string]int16{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[t.Topic+"-"+strconv.Itoa(int(p.Partition))] = p.ErrorCode
		}
	}
	return out
}

// electCluster: brokers 1-3; topic "p" with partitions whose preferred
// replicas are 1, 2, 3; topic "u" [1,2] whose ISR shrank to [1]; topic
// "v" on broker 1 alone. Then broker 1 is fenced and unfenced: "p"-0 is
// led by 2 with ISR [2,3]; "u"-0 and "v"-0 lost their leader while 1 was
// fenced and got it back at the unfence.
func electCluster(t *testing.T, overrides ...string) *replCluster {
	t.Helper()
	x := newReplCluster(t, []string{"", "", ""}, overrides...)
	x.create(assigned("p", []int32{1, 2, 3}, []int32{2, 3, 1}, []int32{3, 1, 2}))
	x.create(assigned("u", []int32{1, 2}))
	x.create(assigned("v", []int32{1}))
	if code := x.alter(3, 1, "u", 0, 0, 0, []int32{1}); code != 0 {
		t.Fatalf("shrink u: %v", kerr.ErrorForCode(code))
	}
	x.heartbeat(1, true, false)
	x.wantPart("p", 0, 2, []int32{2, 3}, 1, 1)
	x.wantPart("u", 0, -1, []int32{1}, 1, 2)
	x.heartbeat(1, false, false)
	x.wantPart("u", 0, 1, []int32{1}, 2, 3)
	return x
}

// TestControllerElectLeadersPreferred: every answer of a preferred
// election, in the order of the script: the preferred replica out of the
// ISR, unknown topic and partition, already leader, success (leader and
// epochs), a partition listed twice.
func TestControllerElectLeadersPreferred(t *testing.T) {
	x := electCluster(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		setup func()
		req   *kmsg.ElectLeadersRequest
		want  map[string]int16
	}{
		{name: "preferred out of the ISR", req: electReq(ElectPreferred, "p", 0),
			want: map[string]int16{"p-0": kerr.PreferredLeaderNotAvailable.Code}},
		{name: "unknown topic", req: electReq(ElectPreferred, "nope", 0),
			want: map[string]int16{"nope-0": kerr.UnknownTopicOrPartition.Code}},
		{name: "unknown partition", req: electReq(ElectPreferred, "p", 7),
			want: map[string]int16{"p-7": kerr.UnknownTopicOrPartition.Code}},
		{name: "already preferred", req: electReq(ElectPreferred, "p", 1, "p", 2),
			want: map[string]int16{"p-1": kerr.ElectionNotNeeded.Code, "p-2": kerr.ElectionNotNeeded.Code}},
		{name: "preferred fenced", setup: func() {
			if code := x.alter(3, 2, "p", 0, 1, 1, []int32{2, 3, 1}); code != 0 {
				t.Fatalf("expand: %v", kerr.ErrorForCode(code))
			}
			x.heartbeat(1, true, false) // leaves the ISR again
		}, req: electReq(ElectPreferred, "p", 0),
			want: map[string]int16{"p-0": kerr.PreferredLeaderNotAvailable.Code}},
		{name: "elected, listed twice", setup: func() {
			x.heartbeat(1, false, false)
			pp := x.part("p", 0)
			if code := x.alter(3, 2, "p", 0, pp.LeaderEpoch, pp.PartitionEpoch, []int32{2, 3, 1}); code != 0 {
				t.Fatalf("expand: %v", kerr.ErrorForCode(code))
			}
		}, req: electReq(ElectPreferred, "p", 0, "p", 0),
			want: map[string]int16{"p-0": 0}},
		{name: "then not needed", req: electReq(ElectPreferred, "p", 0),
			want: map[string]int16{"p-0": kerr.ElectionNotNeeded.Code}},
	} {
		if tc.setup != nil {
			tc.setup()
		}
		before := x.part("p", 0)
		resp := x.c.ElectLeaders(ctx, tc.req)
		if resp.ErrorCode != 0 {
			t.Fatalf("%s: top-level %v", tc.name, kerr.ErrorForCode(resp.ErrorCode))
		}
		got := electCodes(resp)
		for k, want := range tc.want {
			if got[k] != want {
				t.Errorf("%s: %s: %v, want %v", tc.name, k, kerr.ErrorForCode(got[k]), kerr.ErrorForCode(want))
			}
		}
		n := 0
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				n++
				if rp.ErrorCode != 0 && (rp.ErrorMessage == nil || *rp.ErrorMessage == "") {
					t.Errorf("%s: %s-%d: no message", tc.name, rt.Topic, rp.Partition)
				}
			}
		}
		if n != countListed(tc.req) {
			t.Errorf("%s: %d answers, want one per listed partition (%d)", tc.name, n, countListed(tc.req))
		}
		if tc.name == "elected, listed twice" {
			x.wantPart("p", 0, 1, []int32{2, 3, 1}, before.LeaderEpoch+1, before.PartitionEpoch+1)
		}
	}
}

func countListed(req *kmsg.ElectLeadersRequest) int {
	n := 0
	for _, t := range req.Topics {
		n += len(t.Partitions)
	}
	return n
}

// TestControllerElectLeadersUnclean: an unclean election only elects a
// leaderless partition: one with a leader answers ELECTION_NOT_NEEDED;
// a live replica outside the ISR is elected with the ISR reset to it
// (counted); no live replica answers ELIGIBLE_LEADERS_NOT_AVAILABLE.
func TestControllerElectLeadersUnclean(t *testing.T) {
	x := electCluster(t)
	ctx := context.Background()
	x.heartbeat(1, true, false) // "u"-0 and "v"-0 leaderless, ISR [1]
	x.wantPart("u", 0, -1, []int32{1}, 3, 4)
	for _, tc := range []struct {
		name   string
		req    *kmsg.ElectLeadersRequest
		want   map[string]int16
		counts int64
	}{
		{"has a leader", electReq(ElectUnclean, "p", 1), map[string]int16{"p-1": kerr.ElectionNotNeeded.Code}, 0},
		{"no live replica", electReq(ElectUnclean, "v", 0), map[string]int16{"v-0": kerr.EligibleLeadersNotAvailable.Code}, 0},
		{"unknown", electReq(ElectUnclean, "nope", 3), map[string]int16{"nope-3": kerr.UnknownTopicOrPartition.Code}, 0},
		{"live replica out of the ISR", electReq(ElectUnclean, "u", 0), map[string]int16{"u-0": 0}, 1},
		{"now led", electReq(ElectUnclean, "u", 0), map[string]int16{"u-0": kerr.ElectionNotNeeded.Code}, 1},
	} {
		got := electCodes(x.c.ElectLeaders(ctx, tc.req))
		for k, want := range tc.want {
			if got[k] != want {
				t.Errorf("%s: %s: %v, want %v", tc.name, k, kerr.ErrorForCode(got[k]), kerr.ErrorForCode(want))
			}
		}
		if n := x.c.UncleanLeaderElections(); n != tc.counts {
			t.Errorf("%s: %d unclean elections counted, want %d", tc.name, n, tc.counts)
		}
	}
	x.wantPart("u", 0, 2, []int32{2}, 4, 5)
	// The topic does not allow unclean elections, yet the operator's
	// request made one (Kafka's ElectLeaders ignores the config); the
	// preferred election of a leaderless partition answers as Kafka:
	// no eligible ISR member, so PREFERRED_LEADER_NOT_AVAILABLE.
	if got := electCodes(x.c.ElectLeaders(ctx, electReq(ElectPreferred, "v", 0))); got["v-0"] != kerr.PreferredLeaderNotAvailable.Code {
		t.Errorf("preferred of leaderless v-0: %v", kerr.ErrorForCode(got["v-0"]))
	}
}

// TestControllerElectLeadersRequestErrors: errors of the whole request
// are at the top level and on every listed partition; a null topic list
// answers every topic with only the partitions that needed an election;
// an empty list does nothing; v0 is always preferred.
func TestControllerElectLeadersRequestErrors(t *testing.T) {
	x := electCluster(t)
	ctx := context.Background()

	resp := x.c.ElectLeaders(ctx, electReq(2, "p", 0, "u", 0))
	if resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("unknown election type: top-level %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	for k, code := range electCodes(resp) {
		if code != kerr.InvalidRequest.Code {
			t.Errorf("unknown election type: %s: %v", k, kerr.ErrorForCode(code))
		}
	}

	dead, cancel := context.WithCancel(ctx)
	cancel()
	resp = x.c.ElectLeaders(dead, electReq(ElectPreferred, "p", 0))
	if resp.ErrorCode != kerr.RequestTimedOut.Code || electCodes(resp)["p-0"] != kerr.RequestTimedOut.Code {
		t.Fatalf("deadline passed: %v / %v", kerr.ErrorForCode(resp.ErrorCode), electCodes(resp))
	}

	noParts := electReq(ElectPreferred, "p", 0)
	noParts.Topics[0].Partitions = nil
	if resp = x.c.ElectLeaders(ctx, noParts); resp.ErrorCode != 0 || len(resp.Topics) != 1 || resp.Topics[0].Topic != "p" || len(resp.Topics[0].Partitions) != 0 {
		t.Fatalf("a topic without partitions: %+v", resp)
	}

	empty := electReq(ElectPreferred)
	empty.Topics = []kmsg.ElectLeadersRequestTopic{}
	if resp = x.c.ElectLeaders(ctx, empty); resp.ErrorCode != 0 || len(resp.Topics) != 0 {
		t.Fatalf("empty list: %+v", resp)
	}

	v0 := electReq(ElectUnclean, "p", 0)
	v0.Version = 0
	if got := electCodes(x.c.ElectLeaders(ctx, v0)); got["p-0"] != kerr.PreferredLeaderNotAvailable.Code {
		t.Fatalf("v0 is preferred: %v", kerr.ErrorForCode(got["p-0"]))
	}

	// Null: every topic listed; "p"-0 needs an election (not possible:
	// 1 is out of its ISR); every other partition has its preferred
	// leader and is left out.
	all := x.c.ElectLeaders(ctx, electReq(ElectPreferred))
	var names []string
	for _, rt := range all.Topics {
		names = append(names, rt.Topic)
	}
	if !slices.Equal(names, []string{"p", "u", "v"}) {
		t.Fatalf("all partitions: topics %v", names)
	}
	if got := electCodes(all); len(got) != 1 || got["p-0"] != kerr.PreferredLeaderNotAvailable.Code {
		t.Fatalf("all partitions: %v", got)
	}
	pp := x.part("p", 0)
	if code := x.alter(3, 2, "p", 0, pp.LeaderEpoch, pp.PartitionEpoch, []int32{2, 3, 1}); code != 0 {
		t.Fatalf("expand: %v", kerr.ErrorForCode(code))
	}
	if got := electCodes(x.c.ElectLeaders(ctx, electReq(ElectPreferred))); len(got) != 1 || got["p-0"] != 0 {
		t.Fatalf("all partitions after expand: %v", got)
	}
	if got := electCodes(x.c.ElectLeaders(ctx, electReq(ElectPreferred))); len(got) != 0 {
		t.Fatalf("all partitions when balanced: %v", got)
	}
	x.wantPart("p", 0, 1, []int32{2, 3, 1}, pp.LeaderEpoch+1, pp.PartitionEpoch+2)
}

// TestControllerBalanceLeaders: the automatic rebalance elects the
// preferred leaders of a broker only when more than
// leader.imbalance.per.broker.percentage of its preferred partitions
// are led elsewhere, and only where it is in the ISR.
func TestControllerBalanceLeaders(t *testing.T) {
	ctx := context.Background()
	x := newReplCluster(t, []string{"", "", "", ""}, "leader.imbalance.per.broker.percentage=50")
	// Broker 1 is preferred for four partitions.
	x.create(assigned("b", []int32{1, 2, 3}, []int32{1, 3, 2}, []int32{1, 2, 3}, []int32{1, 3, 2}, []int32{2, 3, 1}))
	x.heartbeat(1, true, false)
	x.heartbeat(1, false, false)
	// 4 of 4 led elsewhere, but 1 is in no ISR: nothing to elect.
	if n := x.c.BalanceLeaders(ctx); n != 0 {
		t.Fatalf("out of the ISR: %d elected", n)
	}
	rejoin := func(p int32) {
		t.Helper()
		pp := x.part("b", p)
		if code := x.alter(3, pp.Leader, "b", p, pp.LeaderEpoch, pp.PartitionEpoch, append(slices.Clone(pp.ISR), 1)); code != 0 {
			t.Fatalf("expand b-%d: %v", p, kerr.ErrorForCode(code))
		}
	}
	// Two back in the ISR: both elected (4 of 4 > 50 %).
	rejoin(0)
	rejoin(1)
	if n := x.c.BalanceLeaders(ctx); n != 2 {
		t.Fatalf("two eligible: %d elected", n)
	}
	if x.part("b", 0).Leader != 1 || x.part("b", 1).Leader != 1 || x.part("b", 2).Leader == 1 {
		t.Fatalf("leaders: %d %d %d", x.part("b", 0).Leader, x.part("b", 1).Leader, x.part("b", 2).Leader)
	}
	// Now 2 of 4 are led elsewhere: 50 % is not above 50 %.
	rejoin(2)
	rejoin(3)
	if n := x.c.BalanceLeaders(ctx); n != 0 {
		t.Fatalf("at the percentage: %d elected", n)
	}
	// Over it once more (2 of 4 at 40 %): b-3 elected; b-2 is being
	// moved (broker 4 never catches up here), so its move decides.
	if code, msg := x.reassign(1, "b", 2, []int32{1, 2, 4}, false); code != 0 {
		t.Fatalf("reassign b-2: %v %s", kerr.ErrorForCode(code), msg)
	}
	x.c.cfg.Cluster.LeaderImbalancePerBrokerPercentage = 40
	if n := x.c.BalanceLeaders(ctx); n != 1 {
		t.Fatalf("over the percentage, one moving: %d elected", n)
	}
	if l := x.part("b", 2).Leader; l == 1 {
		t.Fatal("the rebalance moved the leader of a partition being reassigned")
	}
	if code, _ := x.reassign(1, "b", 2, nil, false); code != 0 {
		t.Fatalf("cancel b-2: %v", kerr.ErrorForCode(code))
	}
	x.c.cfg.Cluster.LeaderImbalancePerBrokerPercentage = 20 // 1 of 4 led elsewhere
	if n := x.c.BalanceLeaders(ctx); n != 1 {
		t.Fatalf("after the cancel: %d elected", n)
	}
	for p := int32(0); p < 4; p++ {
		if l := x.part("b", p).Leader; l != 1 {
			t.Fatalf("b-%d led by %d", p, l)
		}
	}
	if l := x.part("b", 4).Leader; l != 2 {
		t.Fatalf("b-4 (preferred 2) led by %d", l)
	}
}

// TestControllerLeaderRebalancerLifecycle: disabled, there is no
// rebalancer (and closing none is fine); enabled, Close stops its
// goroutine promptly although the first check is far away.
func TestControllerLeaderRebalancerLifecycle(t *testing.T) {
	off, _ := newTestController(t, 1, "auto.leader.rebalance.enable=false")
	r := off.StartLeaderRebalance()
	if r != nil {
		t.Fatal("a rebalancer although auto.leader.rebalance.enable=false")
	}
	r.Close()
	on, _ := newTestController(t, 1)
	r = on.StartLeaderRebalance()
	if r == nil {
		t.Fatal("no rebalancer with auto.leader.rebalance.enable=true (the default)")
	}
	done := make(chan struct{})
	go func() {
		r.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5 s")
	}
}
