package cli

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"
)

// planCluster builds brokers (id i+1 on racks[i]) and partitions from
// replica lists, each of size bytes[i] (0 when bytes is short).
func planCluster(racks []string, reps [][]int32, bytes ...int64) ([]planBroker, []planPartition) {
	var bs []planBroker
	for i, r := range racks {
		bs = append(bs, planBroker{ID: int32(i + 1), Rack: r})
	}
	var ps []planPartition
	for i, r := range reps {
		p := planPartition{Topic: "t", Partition: int32(i), Replicas: r}
		if i < len(bytes) {
			p.Bytes = bytes[i]
		}
		ps = append(ps, p)
	}
	return bs, ps
}

// applyPlan returns the partitions' replicas after the plan.
func applyPlan(ps []planPartition, pl *clusterPlan) map[int32][]int32 {
	out := map[int32][]int32{}
	for _, p := range ps {
		out[p.Partition] = p.Replicas
	}
	for _, c := range pl.Changes {
		out[c.Partition] = c.Target
	}
	return out
}

// spread is max - min of f over the loads.
func spread(ls []brokerLoad, f func(brokerLoad) int64) int64 {
	lo, hi := f(ls[0]), f(ls[0])
	for _, l := range ls {
		lo, hi = min(lo, f(l)), max(hi, f(l))
	}
	return hi - lo
}

// checkPlan checks what every plan keeps: replication factors, no
// broker twice in a partition, a move per replica that changed broker,
// the After loads recomputed from the targets, and no partition with two
// replicas on one rack when it has fewer replicas than there are racks.
func checkPlan(t *testing.T, bs []planBroker, ps []planPartition, pl *clusterPlan) map[int32][]int32 {
	t.Helper()
	got := applyPlan(ps, pl)
	rack := map[int32]string{}
	racks := map[string]bool{}
	for _, b := range bs {
		rack[b.ID], racks[b.Rack] = b.Rack, true
	}
	moves := 0
	for _, p := range ps {
		reps := got[p.Partition]
		if len(reps) != len(p.Replicas) {
			t.Fatalf("t-%d: %v, replication factor changed from %v", p.Partition, reps, p.Replicas)
		}
		if s := slices.Sorted(slices.Values(reps)); len(slices.Compact(s)) != len(reps) {
			t.Fatalf("t-%d: a broker twice in %v", p.Partition, reps)
		}
		for _, r := range reps {
			if !slices.Contains(p.Replicas, r) {
				moves++
			}
		}
		used := map[string]int{}
		for _, r := range reps {
			used[rack[r]]++
		}
		if len(reps) <= len(racks) && len(used) != len(reps) {
			t.Errorf("t-%d: replicas %v share a rack although %d racks exist", p.Partition, reps, len(racks))
		}
	}
	if moves != len(pl.Moves) {
		t.Fatalf("%d replicas changed broker, %d moves listed: %+v", moves, len(pl.Moves), pl.Moves)
	}
	var sum int64
	for _, m := range pl.Moves {
		sum += m.Bytes
	}
	if sum != pl.MoveBytes {
		t.Fatalf("move bytes %d, moves sum to %d", pl.MoveBytes, sum)
	}
	after := map[int32]*brokerLoad{}
	for _, l := range pl.After {
		after[l.ID] = &brokerLoad{}
	}
	for _, p := range ps {
		for i, r := range got[p.Partition] {
			if a := after[r]; a != nil {
				a.Replicas++
				a.Bytes += p.Bytes
				if i == 0 {
					a.Leaders++
				}
			}
		}
	}
	for _, l := range pl.After {
		if a := after[l.ID]; a.Replicas != l.Replicas || a.Leaders != l.Leaders || a.Bytes != l.Bytes {
			t.Fatalf("broker %d after: %+v, recomputed %+v", l.ID, l, *a)
		}
	}
	return got
}

func TestPlanDecommission(t *testing.T) {
	for _, tc := range []struct {
		name  string
		racks []string
		reps  [][]int32
		bytes []int64
		n     int32
		err   error
		// wantSpread bounds the replica count spread after the plan.
		wantSpread int64
	}{
		{name: "rf3 of 4 brokers", racks: []string{"a", "b", "c", "a"}, n: 4,
			reps:       [][]int32{{4, 1, 2}, {1, 4, 3}, {2, 3, 4}, {3, 1, 2}, {4, 2, 3}, {1, 2, 4}},
			wantSpread: 0},
		{name: "rf2 of 5 brokers, sizes", racks: []string{"", "", "", "", ""}, n: 2,
			reps:  [][]int32{{2, 1}, {2, 3}, {2, 4}, {2, 5}, {1, 2}, {3, 2}, {4, 5}, {5, 1}},
			bytes: []int64{800, 100, 100, 100, 400, 400, 10, 10}, wantSpread: 1},
		{name: "broker holding nothing", racks: []string{"a", "b", "c"}, n: 3,
			reps: [][]int32{{1, 2}, {2, 1}}, wantSpread: 0},
		{name: "rf3 over 3 brokers refused", racks: []string{"a", "b", "c"}, n: 3,
			reps: [][]int32{{1, 2, 3}}, err: errPlanTooFewBrokers},
		{name: "an rf3 partition elsewhere still needs 3 brokers", racks: []string{"a", "b", "c"}, n: 3,
			reps: [][]int32{{1, 2}, {1, 2, 3}}, err: errPlanTooFewBrokers},
		{name: "unknown broker", racks: []string{"a", "b"}, n: 9,
			reps: [][]int32{{1, 2}}, err: errPlanUnknownBroker},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs, ps := planCluster(tc.racks, tc.reps, tc.bytes...)
			pl, err := planDecommission(bs, ps, tc.n)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := checkPlan(t, bs, ps, pl)
			on := 0
			for _, p := range ps {
				if slices.Contains(p.Replicas, tc.n) {
					on++
				}
				if slices.Contains(got[p.Partition], tc.n) {
					t.Fatalf("t-%d still on %d: %v", p.Partition, tc.n, got[p.Partition])
				}
				// The replacement takes the position of the broker it
				// replaces: the other replicas keep their order.
				for i, r := range p.Replicas {
					if r != tc.n && got[p.Partition][i] != r {
						t.Fatalf("t-%d: %v -> %v reordered", p.Partition, p.Replicas, got[p.Partition])
					}
				}
			}
			if len(pl.Moves) != on {
				t.Fatalf("%d moves for %d replicas on broker %d", len(pl.Moves), on, tc.n)
			}
			for _, m := range pl.Moves {
				if m.From != tc.n {
					t.Fatalf("move %+v not off broker %d", m, tc.n)
				}
			}
			if s := spread(pl.After, func(l brokerLoad) int64 { return int64(l.Replicas) }); s > tc.wantSpread {
				t.Fatalf("replica spread %d after: %+v", s, pl.After)
			}
			for _, l := range pl.After {
				if l.ID == tc.n {
					t.Fatalf("broker %d in the loads after", tc.n)
				}
			}
		})
	}
}

func TestPlanBalance(t *testing.T) {
	// grown: 12 partitions of RF 2 on brokers 1-3, broker 4 new.
	var grown [][]int32
	for i := range 12 {
		grown = append(grown, []int32{int32(i%3 + 1), int32((i+1)%3 + 1)})
	}
	for _, tc := range []struct {
		name     string
		racks    []string
		reps     [][]int32
		bytes    []int64
		maxMoves int
		// wantMoves is the exact number of replica moves (-1: any).
		wantMoves int
		// wantLeaderOnly counts the changes that only reorder.
		wantLeaderOnly int
		maxCountSpread int64
		maxLeadSpread  int64
		truncated      bool
	}{
		{name: "balanced: no-op", racks: []string{"a", "b", "c"}, maxMoves: 100,
			reps:      [][]int32{{1, 2}, {2, 3}, {3, 1}},
			wantMoves: 0, maxCountSpread: 0, maxLeadSpread: 0},
		{name: "a new broker gets its share", racks: []string{"", "", "", ""}, maxMoves: 100,
			reps: grown, wantMoves: 6, maxCountSpread: 1, maxLeadSpread: 1},
		{name: "a new broker on racks", racks: []string{"a", "b", "c", "a"}, maxMoves: 100,
			reps: grown, wantMoves: 6, maxCountSpread: 1, maxLeadSpread: 1},
		{name: "two replicas on one rack move apart", racks: []string{"a", "a", "b", "b"}, maxMoves: 100,
			reps:      [][]int32{{1, 2}, {3, 4}, {1, 3}, {2, 4}},
			wantMoves: -1, maxCountSpread: 1, maxLeadSpread: 1},
		{name: "leaders only", racks: []string{"", "", ""}, maxMoves: 100,
			reps:      [][]int32{{1, 2}, {1, 3}, {1, 2}, {1, 3}, {2, 3}, {3, 2}},
			wantMoves: 0, wantLeaderOnly: 2, maxCountSpread: 1, maxLeadSpread: 1},
		{name: "bytes even out at equal counts", racks: []string{"", "", ""}, maxMoves: 100,
			reps:      [][]int32{{1}, {1}, {2}, {2}, {3}, {3}},
			bytes:     []int64{1000, 1000, 10, 10, 500, 500},
			wantMoves: -1, maxCountSpread: 0, maxLeadSpread: 0},
		{name: "bounded by max moves", racks: []string{"", "", "", ""}, maxMoves: 2,
			reps: grown, wantMoves: 2, maxCountSpread: 100, maxLeadSpread: 100, truncated: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs, ps := planCluster(tc.racks, tc.reps, tc.bytes...)
			pl := planBalance(bs, ps, tc.maxMoves)
			checkPlan(t, bs, ps, pl)
			if tc.wantMoves >= 0 && len(pl.Moves) != tc.wantMoves {
				t.Fatalf("%d moves, want %d: %+v", len(pl.Moves), tc.wantMoves, pl.Moves)
			}
			lo := 0
			for _, c := range pl.Changes {
				if c.LeaderOnly {
					lo++
				}
			}
			if lo != tc.wantLeaderOnly && tc.wantMoves == 0 {
				t.Fatalf("%d leader-only changes, want %d: %+v", lo, tc.wantLeaderOnly, pl.Changes)
			}
			if s := spread(pl.After, func(l brokerLoad) int64 { return int64(l.Replicas) }); s > tc.maxCountSpread {
				t.Fatalf("replica spread %d: %+v", s, pl.After)
			}
			if s := spread(pl.After, func(l brokerLoad) int64 { return int64(l.Leaders) }); s > tc.maxLeadSpread {
				t.Fatalf("leader spread %d: %+v", s, pl.After)
			}
			if pl.Truncated != tc.truncated {
				t.Fatalf("truncated %v", pl.Truncated)
			}
			if tc.bytes != nil {
				b := func(l brokerLoad) int64 { return l.Bytes }
				if spread(pl.After, b) >= spread(pl.Before, b) {
					t.Fatalf("bytes not evened: before %+v after %+v", pl.Before, pl.After)
				}
			}
			// Planning again from the result changes nothing more (a
			// fixed point), unless the plan was cut short.
			if !tc.truncated {
				got := applyPlan(ps, pl)
				var again []planPartition
				for _, p := range ps {
					p.Replicas = got[p.Partition]
					again = append(again, p)
				}
				if pl2 := planBalance(bs, again, tc.maxMoves); len(pl2.Changes) != 0 {
					t.Fatalf("second plan not empty: %+v", pl2.Changes)
				}
			}
		})
	}
}

// TestPlanBalanceSkipsFixed: a partition being moved, or with a replica
// on a broker outside the plan's brokers, is never changed.
func TestPlanBalanceSkipsFixed(t *testing.T) {
	bs, ps := planCluster([]string{"", "", ""}, [][]int32{{1, 2}, {1, 2}, {1, 9}, {1, 2}})
	ps[0].Fixed = true
	pl := planBalance(bs, ps, 100)
	checkPlan(t, bs, ps, pl)
	for _, c := range pl.Changes {
		if c.Partition == 0 || c.Partition == 2 {
			t.Fatalf("fixed partition changed: %+v", c)
		}
	}
	if len(pl.Changes) == 0 {
		t.Fatal("nothing balanced")
	}
}

// TestPlanBalanceMoveBound: 2,000 RF 3 partitions on brokers 1-10 of 12
// racked over 3 racks: the plan (its rack fixes included, here) makes no
// more moves than the documented bound of the count pass, E + D, counts
// and leaders end within one, and the plan is computed quickly.
func TestPlanBalanceMoveBound(t *testing.T) {
	racks := make([]string, 12)
	for i := range racks {
		racks[i] = string(rune('a' + i%3))
	}
	var reps [][]int32
	for i := range 2000 {
		// Three consecutive brokers of 1-10: three distinct racks.
		reps = append(reps, []int32{int32(i%10 + 1), int32((i+1)%10 + 1), int32((i+2)%10 + 1)})
	}
	bs, ps := planCluster(racks, reps)
	start := time.Now()
	pl := planBalance(bs, ps, 100000)
	took := time.Since(start)
	checkPlan(t, bs, ps, pl)
	total := 2000 * 3
	floor, ceil := total/12, (total+11)/12
	bound := 0
	for _, l := range pl.Before {
		bound += max(0, l.Replicas-ceil) + max(0, floor-l.Replicas)
	}
	if len(pl.Moves) > bound {
		t.Fatalf("%d moves, bound %d", len(pl.Moves), bound)
	}
	if s := spread(pl.After, func(l brokerLoad) int64 { return int64(l.Replicas) }); s > 1 {
		t.Fatalf("replica spread %d", s)
	}
	if s := spread(pl.After, func(l brokerLoad) int64 { return int64(l.Leaders) }); s > 1 {
		t.Fatalf("leader spread %d", s)
	}
	if took > 10*time.Second {
		t.Fatalf("planning took %v", took)
	}
	t.Logf("%d moves (bound %d), %d changes, planned in %v", len(pl.Moves), bound, len(pl.Changes), took)
}

// TestPlanRender: the dry-run tables and the JSON document of a
// decommission plan (golden files).
func TestPlanRender(t *testing.T) {
	bs, ps := planCluster([]string{"a", "b", "c", "a"}, [][]int32{{4, 1, 2}, {1, 4, 3}, {2, 3, 1}}, 1<<20, 300, 5000)
	pl, err := planDecommission(bs, ps, 4)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	printPlan(&b, pl)
	golden(t, "cluster_decommission_plan", b.String())
	b.Reset()
	if err := writeJSON(&b, decommissionReport{Broker: 4, DryRun: true, Plan: pl, Next: "samsa cluster decommission 4 --execute"}); err != nil {
		t.Fatal(err)
	}
	golden(t, "cluster_decommission_plan_json", b.String())
}
