package network

import (
	"testing"
	"time"
)

func TestNetworkLogLimiter(t *testing.T) {
	var l logLimiter
	t0 := time.Unix(1000, 0)
	for _, step := range []struct {
		at         time.Duration
		ok         bool
		suppressed int
	}{
		{0, true, 0},
		{time.Second, false, 0},
		{2 * time.Second, false, 0},
		{4999 * time.Millisecond, false, 0},
		{5 * time.Second, true, 3},
		{6 * time.Second, false, 0},
		{20 * time.Second, true, 1},
		{40 * time.Second, true, 0},
	} {
		ok, n := l.allow(t0.Add(step.at), 5*time.Second)
		if ok != step.ok || n != step.suppressed {
			t.Fatalf("at %v: allow = %v, %d; want %v, %d", step.at, ok, n, step.ok, step.suppressed)
		}
	}
}
