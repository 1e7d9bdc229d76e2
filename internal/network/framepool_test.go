package network

import "testing"

func TestFrameClass(t *testing.T) {
	for _, c := range []struct {
		n     int
		class int
		ok    bool
	}{
		{0, 0, false}, {minPooledFrame - 1, 0, false}, {minPooledFrame, 16, true}, {minPooledFrame + 1, 17, true},
		{1 << 20, 20, true}, {1<<20 + 1, 21, true}, {frameWholeBytes, 24, true}, {frameWholeBytes + 1, 0, false},
	} {
		class, ok := frameClass(c.n)
		if ok != c.ok || (ok && class != c.class) {
			t.Errorf("frameClass(%d) = %d, %v; want %d, %v", c.n, class, ok, c.class, c.ok)
		}
	}
}

func TestFramePoolSizes(t *testing.T) {
	for _, n := range []int{10, minPooledFrame, 300 << 10, frameWholeBytes, frameWholeBytes + 1} {
		b := getFrame(n)
		if len(b) != n {
			t.Fatalf("getFrame(%d) has length %d", n, len(b))
		}
		if class, ok := frameClass(n); ok && cap(b) != 1<<class {
			t.Fatalf("getFrame(%d) has capacity %d, want %d", n, cap(b), 1<<class)
		}
		putFrame(b)
		// A buffer of the wrong capacity is never pooled.
		putFrame(make([]byte, n, n+1))
		if c := getFrame(n); len(c) != n || (cap(c) != n && cap(c)&(cap(c)-1) != 0) {
			t.Fatalf("getFrame(%d) after puts: length %d capacity %d", n, len(c), cap(c))
		}
	}
}
