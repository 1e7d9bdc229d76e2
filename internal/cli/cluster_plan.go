package cli

// Replica placement planners of `samsa cluster decommission` and
// `samsa cluster balance`: pure functions from a model of the cluster
// (brokers with racks, partitions with replicas and sizes) to a plan (a
// target replica list per partition that changes, and the replica moves
// that get there). Both are greedy and deterministic (ties broken by
// broker id, then topic and partition), so a plan can be reviewed in a
// dry run and then executed unchanged.
//
// Decommission of broker N: every partition listing N gets, in N's
// place (same position, so the preferred leader of a partition N led
// preferred moves to the replacement), the broker that (1) holds no
// replica of it, (2) adds the fewest replicas to a rack the partition
// already uses, (3) holds the fewest replicas, (4) the fewest bytes,
// (5) for a preferred-leader position, the fewest preferred leaderships.
// Replica counts stay even because each choice goes to a least-loaded
// broker. Exactly one move per replica on N: the minimum.
//
// Balance runs four greedy passes over the live brokers, each move
// chosen so it never puts a second replica of a partition on a rack the
// partition already uses when another rack could take it:
//
//  1. racks: a partition with two replicas on one rack while a rack it
//     does not use has a broker moves one of them there;
//  2. replica counts: while the most and least loaded brokers differ by
//     two or more, a replica moves from the most loaded to the least
//     loaded (among the partitions eligible, the one whose size best
//     evens their bytes). Each move takes one replica from a broker
//     above ⌊avg⌋ to one below ⌈avg⌉, so it lowers the excess
//     E = Σ max(0, c_b − ⌈avg⌉) or the deficit D = Σ max(0, ⌊avg⌋ − c_b)
//     by one and raises neither: the pass makes at most E + D moves,
//     at most twice the max(E, D) that any plan reaching a spread of
//     one needs (a move mends at most one excess and one deficit);
//  3. disk: while the broker with the most bytes and the one with the
//     fewest differ by more than 10 % of the average, a replica moves
//     between them when both counts stay within [⌊avg⌋, ⌈avg⌉] and a
//     partition smaller than the gap exists (the one closest to half of
//     it); else a bigger partition of the first is swapped with a
//     smaller one of the second (two moves) when that narrows the gap;
//  4. leaders: while one broker is the preferred leader (first replica)
//     of two or more partitions more than another, a chain of reorders
//     found breadth-first ("a partition X leads preferred has a replica
//     on Y") moves one preferred leadership from it to such a broker;
//     the brokers inside the chain keep their counts. Reorders copy no
//     data; a preferred leader election afterwards moves the leaders.
//
// Every pass is also bounded by maxMoves replica moves for the whole
// plan (and by a fixed number of iterations), so a huge cluster gets a
// partial plan, not a hang; running balance again continues it.

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// planBroker is a broker a plan may place replicas on.
type planBroker struct {
	ID   int32  `json:"id"`
	Rack string `json:"rack,omitempty"`
}

// planPartition is one partition of the model.
type planPartition struct {
	Topic     string
	Partition int32
	// Replicas in preference order (a move in progress: its target).
	Replicas []int32
	// Bytes is the partition's size (its largest replica's log), 0 when
	// unknown.
	Bytes int64
	// Fixed partitions are never changed (a move in progress, a replica
	// on a broker outside the plan's brokers).
	Fixed bool
}

// planMove is one replica moving from one broker to another.
type planMove struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	From      int32  `json:"from"`
	To        int32  `json:"to"`
	Bytes     int64  `json:"bytes"`
}

// planChange is the new replica list of one partition.
type planChange struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Current   []int32 `json:"current"`
	Target    []int32 `json:"target"`
	// LeaderOnly: the same replicas reordered (no data moves).
	LeaderOnly bool `json:"leader_only,omitempty"`
}

// brokerLoad is one broker's replicas, preferred leaderships and bytes.
type brokerLoad struct {
	ID       int32  `json:"id"`
	Rack     string `json:"rack,omitempty"`
	Replicas int    `json:"replicas"`
	Leaders  int    `json:"leaders"`
	Bytes    int64  `json:"bytes"`
}

// clusterPlan is a planner's answer.
type clusterPlan struct {
	Moves   []planMove   `json:"moves"`
	Changes []planChange `json:"changes"`
	// MoveBytes is the sum of the moves' bytes (what must be copied).
	MoveBytes int64        `json:"move_bytes"`
	Before    []brokerLoad `json:"before"`
	After     []brokerLoad `json:"after"`
	// Truncated: the plan stopped at maxMoves; run again to continue.
	Truncated bool `json:"truncated,omitempty"`
}

// planErrors.
var (
	errPlanUnknownBroker = errors.New("cli: broker is not a live broker of the cluster")
	errPlanTooFewBrokers = errors.New("cli: too few brokers would remain")
)

// planState is the working copy a planner changes.
type planState struct {
	brokers []planBroker // sorted by id
	rack    map[int32]string
	parts   []planPartition // owned copies, sorted by topic, partition
	orig    [][]int32       // the replicas before the plan, by index of parts
	load    map[int32]*brokerLoad
	moves   []planMove
	// racks is the number of distinct racks among brokers ("" counts
	// as one rack when any broker has no rack).
	racks int
}

func newPlanState(brokers []planBroker, parts []planPartition) *planState {
	s := &planState{rack: map[int32]string{}, load: map[int32]*brokerLoad{}}
	s.brokers = slices.SortedFunc(slices.Values(brokers), func(a, b planBroker) int { return cmp.Compare(a.ID, b.ID) })
	rackSet := map[string]bool{}
	for _, b := range s.brokers {
		s.rack[b.ID] = b.Rack
		s.load[b.ID] = &brokerLoad{ID: b.ID, Rack: b.Rack}
		rackSet[b.Rack] = true
	}
	s.racks = len(rackSet)
	s.parts = make([]planPartition, len(parts))
	for i, p := range parts {
		p.Replicas = slices.Clone(p.Replicas)
		s.parts[i] = p
	}
	slices.SortFunc(s.parts, func(a, b planPartition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	s.orig = make([][]int32, len(s.parts))
	for i, p := range s.parts {
		s.orig[i] = slices.Clone(p.Replicas)
		for j, r := range p.Replicas {
			if l := s.load[r]; l != nil {
				l.Replicas++
				l.Bytes += p.Bytes
				if j == 0 {
					l.Leaders++
				}
			}
		}
	}
	return s
}

// loads returns a copy of the brokers' loads, by id.
func (s *planState) loads() []brokerLoad {
	out := make([]brokerLoad, 0, len(s.brokers))
	for _, b := range s.brokers {
		out = append(out, *s.load[b.ID])
	}
	return out
}

// rackUses counts p's replicas (other than skip) on rack; a replica on
// a broker outside the plan's brokers has no known rack and counts for
// none.
func (s *planState) rackUses(p *planPartition, rack string, skip int32) int {
	n := 0
	for _, r := range p.Replicas {
		if rr, known := s.rack[r]; known && r != skip && rr == rack {
			n++
		}
	}
	return n
}

// move replaces replica from of partition i by to (same position).
func (s *planState) move(i int, from, to int32) {
	p := &s.parts[i]
	idx := slices.Index(p.Replicas, from)
	p.Replicas[idx] = to
	if l := s.load[from]; l != nil {
		l.Replicas--
		l.Bytes -= p.Bytes
		if idx == 0 {
			l.Leaders--
		}
	}
	l := s.load[to]
	l.Replicas++
	l.Bytes += p.Bytes
	if idx == 0 {
		l.Leaders++
	}
	s.moves = append(s.moves, planMove{Topic: p.Topic, Partition: p.Partition, From: from, To: to, Bytes: p.Bytes})
}

// result builds the plan from the state.
func (s *planState) result(before []brokerLoad) *clusterPlan {
	pl := &clusterPlan{Moves: s.moves, Changes: []planChange{}, Before: before, After: s.loads()}
	if pl.Moves == nil {
		pl.Moves = []planMove{}
	}
	for i, p := range s.parts {
		if slices.Equal(p.Replicas, s.orig[i]) {
			continue
		}
		sameSet := slices.Equal(slices.Sorted(slices.Values(p.Replicas)), slices.Sorted(slices.Values(s.orig[i])))
		pl.Changes = append(pl.Changes, planChange{Topic: p.Topic, Partition: p.Partition, Current: slices.Clone(s.orig[i]),
			Target: slices.Clone(p.Replicas), LeaderOnly: sameSet})
	}
	// A replica moved twice (a→b→c) is one copy a→c; report net moves.
	pl.Moves = netMoves(s.parts, s.orig)
	for _, m := range pl.Moves {
		pl.MoveBytes += m.Bytes
	}
	return pl
}

// netMoves pairs, per partition, the replicas that left with those that
// arrived, in replica-list order.
func netMoves(parts []planPartition, orig [][]int32) []planMove {
	out := []planMove{}
	for i, p := range parts {
		var gone, came []int32
		for _, r := range orig[i] {
			if !slices.Contains(p.Replicas, r) {
				gone = append(gone, r)
			}
		}
		for _, r := range p.Replicas {
			if !slices.Contains(orig[i], r) {
				came = append(came, r)
			}
		}
		for j := range min(len(gone), len(came)) {
			out = append(out, planMove{Topic: p.Topic, Partition: p.Partition, From: gone[j], To: came[j], Bytes: p.Bytes})
		}
	}
	return out
}

// planDecommission moves every replica off broker n onto brokers (the
// live brokers, n among them or not). It refuses when n is unknown and
// not listed by any partition, or when a partition listing n has more
// replicas than brokers would remain (its replication factor could not
// be kept).
func planDecommission(brokers []planBroker, parts []planPartition, n int32) (*clusterPlan, error) {
	var rest []planBroker
	known := false
	for _, b := range brokers {
		if b.ID == n {
			known = true
			continue
		}
		rest = append(rest, b)
	}
	hosts := false
	maxRF := 0
	for _, p := range parts {
		maxRF = max(maxRF, len(p.Replicas))
		hosts = hosts || slices.Contains(p.Replicas, n)
	}
	if !known && !hosts {
		return nil, fmt.Errorf("%w: broker %d", errPlanUnknownBroker, n)
	}
	if maxRF > len(rest) {
		return nil, fmt.Errorf("%w: a partition has %d replicas but only %d broker(s) would remain after decommissioning broker %d", errPlanTooFewBrokers, maxRF, len(rest), n)
	}
	before := newPlanState(brokers, parts).loads()
	s := newPlanState(rest, parts)
	// Biggest partitions first: they matter most to the byte balance.
	order := make([]int, len(s.parts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(s.parts[b].Bytes, s.parts[a].Bytes) })
	for _, i := range order {
		p := &s.parts[i]
		pos := slices.Index(p.Replicas, n)
		if pos < 0 {
			continue
		}
		best := int32(-1)
		var bestKey [5]int64
		for _, b := range s.brokers {
			if slices.Contains(p.Replicas, b.ID) {
				continue
			}
			l := s.load[b.ID]
			lead := int64(0)
			if pos == 0 {
				lead = int64(l.Leaders)
			}
			key := [5]int64{int64(s.rackUses(p, b.Rack, n)), int64(l.Replicas), l.Bytes, lead, int64(b.ID)}
			if best < 0 || slices.Compare(key[:], bestKey[:]) < 0 {
				best, bestKey = b.ID, key
			}
		}
		if best < 0 {
			return nil, fmt.Errorf("%w: no broker can take partition %s-%d's replica from broker %d", errPlanTooFewBrokers, p.Topic, p.Partition, n)
		}
		s.move(i, n, best)
	}
	return s.result(before), nil
}

// balanceIterations bounds every balance pass's iterations, whatever
// maxMoves says.
const balanceIterations = 100000

// planBalance evens replicas, preferred leaders and bytes over brokers
// (the live brokers), with at most maxMoves replica moves; see the file
// comment for the passes.
func planBalance(brokers []planBroker, parts []planPartition, maxMoves int) *clusterPlan {
	s := newPlanState(brokers, parts)
	before := s.loads()
	// Partitions with a replica outside the brokers stay as they are.
	for i := range s.parts {
		for _, r := range s.parts[i].Replicas {
			if _, ok := s.load[r]; !ok {
				s.parts[i].Fixed = true
			}
		}
	}
	truncated := false
	budget := func(n int) bool {
		if len(s.moves)+n > maxMoves {
			truncated = true
			return false
		}
		return true
	}
	if len(s.brokers) < 2 {
		return s.result(before)
	}
	s.balanceRacks(budget)
	s.balanceCounts(budget)
	s.balanceBytes(budget)
	s.balanceLeaders()
	pl := s.result(before)
	pl.Truncated = truncated
	return pl
}

// balanceRacks moves a replica that shares its rack with another
// replica of its partition to a broker on a rack the partition does not
// use (the least loaded such broker), from the more loaded of the two.
func (s *planState) balanceRacks(budget func(n int) bool) {
	if s.racks < 2 {
		return
	}
	for i := range s.parts {
		p := &s.parts[i]
		if p.Fixed {
			continue
		}
		for range len(p.Replicas) {
			from := int32(-1)
			for _, r := range p.Replicas {
				if s.rackUses(p, s.rack[r], r) == 0 {
					continue
				}
				if from < 0 || s.load[r].Replicas > s.load[from].Replicas {
					from = r
				}
			}
			if from < 0 {
				break
			}
			to := int32(-1)
			for _, b := range s.brokers {
				if slices.Contains(p.Replicas, b.ID) || s.rackUses(p, b.Rack, from) > 0 {
					continue
				}
				if to < 0 || s.load[b.ID].Replicas < s.load[to].Replicas {
					to = b.ID
				}
			}
			if to < 0 || !budget(1) {
				break
			}
			s.move(i, from, to)
		}
	}
}

// canTake reports whether broker to may take partition p's replica on
// from without putting more replicas of p on one rack than before.
func (s *planState) canTake(p *planPartition, from, to int32) bool {
	if p.Fixed || slices.Contains(p.Replicas, to) || !slices.Contains(p.Replicas, from) {
		return false
	}
	if s.rack[to] == s.rack[from] {
		return true
	}
	return s.rackUses(p, s.rack[to], from) == 0
}

// byCount returns the brokers sorted by replica count (then bytes, id).
func (s *planState) byCount() []int32 {
	ids := make([]int32, 0, len(s.brokers))
	for _, b := range s.brokers {
		ids = append(ids, b.ID)
	}
	slices.SortFunc(ids, func(a, b int32) int {
		la, lb := s.load[a], s.load[b]
		return cmp.Or(cmp.Compare(la.Replicas, lb.Replicas), cmp.Compare(la.Bytes, lb.Bytes), cmp.Compare(a, b))
	})
	return ids
}

// bestBySize picks, among partitions i (indexes) that from may hand to
// to, the one whose size moved from→to best evens their bytes: the
// largest not above half their gap when from holds more, else the
// smallest. -1: none.
func (s *planState) bestBySize(from, to int32) int {
	gap := s.load[from].Bytes - s.load[to].Bytes
	best := -1
	better := func(i, j int) bool { // is i better than j
		a, b := s.parts[i].Bytes, s.parts[j].Bytes
		if gap <= 0 {
			return a < b
		}
		da, db := abs64(gap-2*a), abs64(gap-2*b)
		return da < db
	}
	for i := range s.parts {
		if !s.canTake(&s.parts[i], from, to) {
			continue
		}
		if best < 0 || better(i, best) {
			best = i
		}
	}
	return best
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// balanceCounts moves replicas from the most to the least loaded
// brokers until their counts differ by at most one (or no eligible
// move is left).
func (s *planState) balanceCounts(budget func(n int) bool) {
	for range balanceIterations {
		ids := s.byCount()
		moved := false
		// The most loaded broker first; the least loaded that can take
		// one of its replicas.
	search:
		for hi := len(ids) - 1; hi > 0; hi-- {
			from := ids[hi]
			for lo := 0; lo < hi; lo++ {
				to := ids[lo]
				if s.load[from].Replicas-s.load[to].Replicas < 2 {
					break
				}
				if i := s.bestBySize(from, to); i >= 0 {
					if !budget(1) {
						return
					}
					s.move(i, from, to)
					moved = true
					break search
				}
			}
		}
		if !moved {
			return
		}
	}
}

// balanceBytes evens bytes without leaving the count bounds.
func (s *planState) balanceBytes(budget func(n int) bool) {
	total, n := int64(0), int64(len(s.brokers))
	replicas := 0
	for _, l := range s.load {
		total += l.Bytes
		replicas += l.Replicas
	}
	if total == 0 {
		return
	}
	floor, ceil := replicas/int(n), (replicas+int(n)-1)/int(n)
	tolerance := total / n / 10
	for range balanceIterations {
		ids := slices.Clone(s.byCount())
		slices.SortFunc(ids, func(a, b int32) int { return cmp.Or(cmp.Compare(s.load[a].Bytes, s.load[b].Bytes), cmp.Compare(a, b)) })
		moved := false
	search:
		for hi := len(ids) - 1; hi > 0; hi-- {
			from := ids[hi]
			for lo := 0; lo < hi; lo++ {
				to := ids[lo]
				gap := s.load[from].Bytes - s.load[to].Bytes
				if gap <= tolerance {
					break
				}
				if s.load[from].Replicas-1 >= floor && s.load[to].Replicas+1 <= ceil {
					if i := s.bestBySize(from, to); i >= 0 && s.parts[i].Bytes > 0 && s.parts[i].Bytes < gap {
						if !budget(1) {
							return
						}
						s.move(i, from, to)
						moved = true
						break search
					}
				}
				// Counts at their bounds: swap a bigger partition of
				// from with a smaller one of to (two moves).
				if i, j := s.bestSwap(from, to, gap); i >= 0 {
					if !budget(2) {
						return
					}
					s.move(i, from, to)
					s.move(j, to, from)
					moved = true
					break search
				}
			}
		}
		if !moved {
			return
		}
	}
}

// balanceLeaders reorders replicas so preferred leaderships (first
// replicas) differ by at most one between brokers where the replicas
// allow it: from the broker with the most, a breadth-first search over
// "a partition X leads preferred has a replica on Y" finds a chain to a
// broker with at least two fewer, and every partition on the chain gets
// the next broker as its first replica (the brokers inside the chain
// keep their counts). Reorders copy no data and are not counted as
// moves.
func (s *planState) balanceLeaders() {
	for range balanceIterations {
		ids := make([]int32, 0, len(s.brokers))
		for _, b := range s.brokers {
			ids = append(ids, b.ID)
		}
		slices.SortFunc(ids, func(a, b int32) int {
			return cmp.Or(cmp.Compare(s.load[b].Leaders, s.load[a].Leaders), cmp.Compare(a, b))
		})
		moved := false
		for _, from := range ids {
			if s.leaderChain(from) {
				moved = true
				break
			}
		}
		if !moved {
			return
		}
	}
}

// leaderChain finds and applies one chain of reorders from broker from
// to a broker with at least two preferred leaderships fewer.
func (s *planState) leaderChain(from int32) bool {
	type hop struct {
		prev int32 // the broker before on the chain
		part int   // the partition whose first replica moves prev -> this
	}
	target := s.load[from].Leaders - 2
	if target < 0 {
		return false
	}
	// The partitions each broker is the preferred leader of, so one
	// search looks at each partition once.
	led := map[int32][]int{}
	for i := range s.parts {
		if p := &s.parts[i]; !p.Fixed && len(p.Replicas) > 1 {
			led[p.Replicas[0]] = append(led[p.Replicas[0]], i)
		}
	}
	seen := map[int32]hop{from: {prev: -1, part: -1}}
	queue := []int32{from}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		for _, i := range led[x] {
			p := &s.parts[i]
			for _, y := range p.Replicas[1:] {
				if _, ok := seen[y]; ok || s.load[y] == nil {
					continue
				}
				seen[y] = hop{prev: x, part: i}
				if s.load[y].Leaders > target {
					queue = append(queue, y)
					continue
				}
				// Apply the chain back from y.
				for cur := y; cur != from; {
					h := seen[cur]
					q := &s.parts[h.part]
					j := slices.Index(q.Replicas, cur)
					q.Replicas[0], q.Replicas[j] = cur, h.prev
					cur = h.prev
				}
				s.load[from].Leaders--
				s.load[y].Leaders++
				return true
			}
		}
	}
	return false
}

// maxSwapPairs bounds the pairs of partitions one swap search looks at.
const maxSwapPairs = 1 << 20

// bestSwap picks partitions i (on from, not on to) and j (on to, not on
// from) whose exchange narrows the byte gap between from and to the
// most: Bytes(i) - Bytes(j) in (0, gap), closest to gap/2. (-1, -1):
// none.
func (s *planState) bestSwap(from, to int32, gap int64) (int, int) {
	var is, js []int
	for k := range s.parts {
		if s.canTake(&s.parts[k], from, to) {
			is = append(is, k)
		}
		if s.canTake(&s.parts[k], to, from) {
			js = append(js, k)
		}
	}
	if len(is)*len(js) > maxSwapPairs {
		return -1, -1
	}
	bi, bj, bd := -1, -1, int64(0)
	for _, i := range is {
		for _, j := range js {
			d := s.parts[i].Bytes - s.parts[j].Bytes
			if i == j || d <= 0 || d >= gap {
				continue
			}
			if dist := abs64(gap - 2*d); bi < 0 || dist < bd {
				bi, bj, bd = i, j, dist
			}
		}
	}
	return bi, bj
}
