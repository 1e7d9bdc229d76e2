package storage

import "testing"

func TestBufferPoolClasses(t *testing.T) {
	for _, tc := range []struct{ n, class int }{
		{0, -1}, {1, -1}, {2048, -1}, {2049, 0}, {4095, 0}, {4096, 0}, {4097, 1}, {8192, 1},
		{1 << 20, 8}, {1<<20 + 1, 9}, {1 << 24, 12}, {1<<24 + 1, -1},
	} {
		if got := poolClass(tc.n); got != tc.class {
			t.Errorf("poolClass(%d) = %d, want %d", tc.n, got, tc.class)
		}
	}
	for _, n := range []int{100, 4096, 5000, 1 << 20, 3 << 20, 1<<24 + 1} {
		b := getBuffer(n)
		if len(b) != n {
			t.Fatalf("getBuffer(%d) has length %d", n, len(b))
		}
		if c := poolClass(n); c >= 0 && cap(b) != 1<<(c+minPooledShift) {
			t.Errorf("getBuffer(%d) has capacity %d", n, cap(b))
		}
		ReleaseBuffer(b[:n/2])
	}
	// Foreign buffers are ignored, not pooled under a wrong class.
	ReleaseBuffer(make([]byte, 10, 5000))
	ReleaseBuffer(nil)
	if b := getBuffer(5000); cap(b) != 8192 {
		t.Errorf("pooled 5000-byte buffer has capacity %d", cap(b))
	}
}
