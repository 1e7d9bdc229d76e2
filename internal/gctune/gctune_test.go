package gctune

import (
	"runtime"
	"runtime/metrics"
	"testing"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, min uint64
		want      int64
	}{
		{0, 64 * mib, maxPercent},
		{1, 64 * mib, maxPercent},
		{4 * mib, 64 * mib, 1500},   // 4 MiB × 16 = 64 MiB
		{3 * mib, 64 * mib, 2034},   // rounded up: the goal is on or above the floor
		{32 * mib, 64 * mib, 100},   // doubling reaches the floor
		{40 * mib, 64 * mib, 100},   // never below Go's default
		{128 * mib, 64 * mib, 100},  // above the floor: plain GOGC=100
		{63 * mib, 64 * mib, 100},   // 1.6 % over live: the base
		{10 * mib, 25 * mib, 150},   // exact
		{7, 1 << 62, maxPercent},    // no overflow
		{1 << 40, 1 << 62, 409_500}, // clamped below
	} {
		got := percentFor(c.live, c.min)
		if c.want > maxPercent {
			c.want = maxPercent
		}
		if got != c.want {
			t.Errorf("percentFor(%d, %d) = %d, want %d", c.live, c.min, got, c.want)
		}
		// The goal it gives reaches the floor unless clamped.
		if got > basePercent && got < maxPercent && c.live+c.live*uint64(got)/100 < c.min-c.min/100 {
			t.Errorf("percentFor(%d, %d) = %d: goal %d below the floor", c.live, c.min, got, c.live+c.live*uint64(got)/100)
		}
	}
}

// gogc reads the percentage the runtime uses now.
func gogc(t *testing.T) uint64 {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// collect runs collections until the tuner's cleanup ran after one.
func collect(t *testing.T, until func() bool) {
	t.Helper()
	for range 100 {
		runtime.GC()
		runtime.Gosched()
		if until() {
			return
		}
	}
	t.Fatalf("the tuner did not react to 100 collections (percent %d)", gogc(t))
}

func TestStartRaisesTheGoalOfASmallHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	stop := Start(256 << 20)
	collect(t, func() bool { return gogc(t) > basePercent })
	if p := Percent(); p <= basePercent || uint64(p) != gogc(t) {
		t.Fatalf("Percent() = %d, runtime %d: want the same, above %d", p, gogc(t), basePercent)
	}
	// A second server shares the tuner; the first stop keeps it.
	stop2 := Start(1 << 20)
	stop()
	stop() // a second call of the same stop is a no-op
	if Percent() <= basePercent {
		t.Fatalf("the tuner stopped while a user remained")
	}
	stop2()
	if Percent() != 0 || gogc(t) != basePercent {
		t.Fatalf("after the last stop: Percent() = %d, runtime %d; want 0 and %d", Percent(), gogc(t), basePercent)
	}
	// The cleanup chain ended: collections no longer change it.
	for range 5 {
		runtime.GC()
	}
	if gogc(t) != basePercent {
		t.Fatalf("a stopped tuner changed the percentage to %d", gogc(t))
	}
}

func TestStartLeavesALargeHeapAtTheBase(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	live := make([][]byte, 48)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	stop := Start(32 << 20)
	defer stop()
	for range 5 {
		runtime.GC()
	}
	runtime.KeepAlive(live)
	if p := Percent(); p != basePercent {
		t.Fatalf("48 MiB live with a 32 MiB floor: percent %d, want %d", p, basePercent)
	}
}

func TestEnvironmentWins(t *testing.T) {
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv("GOGC", "")
			t.Setenv("GOMEMLIMIT", "")
			t.Setenv(env, "200")
			stop := Start(64 << 20)
			defer stop()
			if Percent() != 0 {
				t.Fatalf("%s set: the tuner started", env)
			}
		})
	}
	if stop := Start(0); Percent() != 0 {
		stop()
		t.Fatal("Start(0) started a tuner")
	}
}
