package storage

import (
	"math/bits"
	"sync"
)

// Read buffers come from size-classed pools: a fetch of a megabyte per
// partition would otherwise allocate (and zero) a fresh megabyte per
// partition per request, and the garbage collector and the runtime's
// scavenger would spend as much again taking it back. The fetch path
// hands a buffer back with ReleaseBuffer once the response is on the wire.

const (
	minPooledShift = 12 // 4 KiB buffers hold the smallest pooled reads (over 2 KiB)
	maxPooledShift = 24 // 16 MiB: larger reads are plain allocations
)

var bufPools [maxPooledShift - minPooledShift + 1]sync.Pool

// poolClass returns the pool index for a buffer of n bytes, rounding up,
// or -1 when n is not pooled.
func poolClass(n int) int {
	if n <= 0 || n > 1<<maxPooledShift {
		return -1
	}
	shift := bits.Len(uint(n - 1))
	if shift < minPooledShift {
		return -1
	}
	return shift - minPooledShift
}

// getBuffer returns a buffer of length n, pooled when n is in range. Its
// contents are not zeroed.
func getBuffer(n int) []byte {
	c := poolClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if bp, ok := bufPools[c].Get().(*[]byte); ok {
		return (*bp)[:n]
	}
	return make([]byte, n, 1<<(c+minPooledShift))
}

// ReleaseBuffer returns a buffer from Log.Read to its pool. b (and every
// slice of it) must not be used afterwards. Buffers that did not come
// from a pool are left to the garbage collector.
func ReleaseBuffer(b []byte) {
	c := cap(b)
	if c == 0 || c&(c-1) != 0 {
		return
	}
	class := poolClass(c)
	if class < 0 || 1<<(class+minPooledShift) != c {
		return
	}
	b = b[:0]
	bufPools[class].Put(&b)
}
