package network

import (
	"math/bits"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Frames of minPooledFrame bytes up to frameWholeBytes come from pools of
// power-of-two size classes and go back once their request is done (only
// requests the handler declares free of references, see FrameKeeper).
// sync.Pool drops idle buffers at garbage collections, so the pools hold
// memory only while frames of that size keep arriving; what is in use at
// once stays bounded by queued.max.request.bytes (a buffer is at most
// twice its frame).
const minPooledFrame = 64 << 10

var framePools [25]sync.Pool // index: log2 of the size; frameWholeBytes is 1<<24

// frameClass is the pool of an n-byte frame: the smallest power of two
// >= n. ok is false for frames the pools do not serve.
func frameClass(n int) (class int, ok bool) {
	if n < minPooledFrame || n > frameWholeBytes {
		return 0, false
	}
	c := bits.Len(uint(n - 1))
	return c, c < len(framePools)
}

// getFrame returns an n-byte buffer, its contents undefined.
func getFrame(n int) []byte {
	c, ok := frameClass(n)
	if !ok {
		return make([]byte, n)
	}
	if b, _ := framePools[c].Get().(*[]byte); b != nil {
		return (*b)[:n]
	}
	return make([]byte, n, 1<<c)
}

// putFrame gives a frame of getFrame back. Nothing may use it after.
func putFrame(b []byte) {
	c, ok := frameClass(cap(b))
	if !ok || cap(b) != 1<<c {
		return
	}
	b = b[:0]
	framePools[c].Put(&b)
}

// freeFrame returns frame to its pool when the handler holds nothing of
// req once Handle returned.
func (s *Server) freeFrame(req kmsg.Request, frame []byte) {
	if s.keeper != nil && s.keeper.FrameFree(req) {
		putFrame(frame)
	}
}
