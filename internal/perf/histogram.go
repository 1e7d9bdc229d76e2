package perf

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram is a lock-free log-linear latency histogram in nanoseconds:
// values below 64 ns get one bucket each; above, every power of two is
// split into 32 buckets, so a quantile is off by at most ~3%. Recording is
// one atomic add, safe from any goroutine (kgo promises of several
// clients run concurrently). The alternative, keeping every sample and
// sorting, costs 8 bytes per record and a sort at the end; HdrHistogram
// gives the same answer with a dependency we do not need.
type histogram struct {
	counts [histBuckets]atomic.Int64
	max    atomic.Int64 // largest value recorded, ns
	sum    atomic.Int64 // sum of values recorded, ns
	n      atomic.Int64 // values recorded
}

const (
	histSubBits = 5 // 32 buckets per power of two
	histSub     = 1 << histSubBits
	histLinear  = 2 * histSub // values below this have exact buckets
	histBuckets = histLinear + (64-histSubBits-1)*histSub
)

// bucketOf maps a non-negative value to its bucket.
func bucketOf(v int64) int {
	if v < histLinear {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	u := uint64(v)
	shift := bits.Len64(u) - histSubBits - 1 // >= 1
	mant := int(u >> shift)                  // in [histSub, 2*histSub)
	return histLinear + (shift-1)*histSub + (mant - histSub)
}

// bucketMid is the middle of bucket i's value range.
func bucketMid(i int) int64 {
	if i < histLinear {
		return int64(i)
	}
	i -= histLinear
	shift := i/histSub + 1
	mant := int64(i%histSub + histSub)
	lo := mant << shift
	return lo + (int64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)].Add(1)
	h.sum.Add(v)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// quantile returns the value at q (0..1), never above the maximum seen.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(q*float64(n) + 0.5)
	rank = max(rank, 1)
	rank = min(rank, n)
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(bucketMid(i), h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

// summary condenses h into a Latency.
func (h *histogram) summary() Latency {
	n := h.n.Load()
	if n == 0 {
		return Latency{}
	}
	return Latency{
		Mean: time.Duration(h.sum.Load() / n),
		P50:  h.quantile(0.50),
		P99:  h.quantile(0.99),
		P999: h.quantile(0.999),
		Max:  time.Duration(h.max.Load()),
	}
}
