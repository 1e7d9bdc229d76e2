package sim

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// Flags (or the environment variables) choose a longer or another run:
//
//	go test ./internal/sim -run TestSimulation -sim.seed=7 -sim.steps=20000
//	SAMSA_SIM_SEEDS=20 SAMSA_SIM_STEPS=10000 go test ./internal/sim
var (
	flagSeed  = flag.Int64("sim.seed", envInt("SAMSA_SIM_SEED", 0), "run only this seed (0: the default seeds)")
	flagSeeds = flag.Int("sim.seeds", int(envInt("SAMSA_SIM_SEEDS", 4)), "number of seeds (1..N) when -sim.seed is 0")
	flagSteps = flag.Int("sim.steps", int(envInt("SAMSA_SIM_STEPS", 2000)), "fault steps per seed (then 400 healing steps)")
)

func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil {
		return v
	}
	return def
}

func seeds() []int64 {
	if *flagSeed != 0 {
		return []int64{*flagSeed}
	}
	var s []int64
	for i := 1; i <= *flagSeeds; i++ {
		s = append(s, int64(i))
	}
	return s
}

// shape picks the cluster of a seed: odd seeds run 3 brokers and 2
// partitions, even seeds 4 brokers (replication factor 3, so each
// partition has a broker outside its assignment) and 3 partitions.
func shape(o options) options {
	o.brokers, o.partitions = 3, 2
	if o.seed%2 == 0 {
		o.brokers, o.partitions = 4, 3
	}
	return o
}

// simulate runs one seed in a synctest bubble and returns the world
// after the run (closed).
func simulate(t *testing.T, o options) (w *world, v *violation) {
	synctest.Test(t, func(t *testing.T) {
		w = newWorld(t, o)
		v = w.run()
	})
	return w, v
}

// TestSimulationNoAckedLoss is the deterministic simulation: every seed
// must keep every invariant through its faults and, after healing, have
// every acknowledged record on every replica.
func TestSimulationNoAckedLoss(t *testing.T) {
	for _, seed := range seeds() {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			start := time.Now()
			w, v := simulate(t, shape(options{seed: seed, steps: *flagSteps}))
			if v != nil {
				t.Fatalf("seed %d: %v\nlast events:\n%s\nreproduce: go test ./internal/sim -run 'TestSimulationNoAckedLoss' -sim.seed=%d -sim.steps=%d",
					seed, v, strings.Join(w.trace, "\n"), seed, *flagSteps)
			}
			t.Logf("seed %d: %d steps in %v: %s", seed, *flagSteps, time.Since(start).Round(time.Millisecond), w.summary())
		})
	}
}
