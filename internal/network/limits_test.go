package network_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metrics"
	"samsa/internal/network"
)

// failingListener fails its first fails accepts with err, then accepts
// from the real listener.
type failingListener struct {
	net.Listener
	fails atomic.Int32
	err   error
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, l.err
	}
	return l.Listener.Accept()
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestNetworkAcceptBacksOffAndKeepsAccepting injects failing accepts
// (out of file descriptors, and errors Go does not call temporary): the
// listener must keep accepting afterwards, count every failure and log
// them rate-limited.
func TestNetworkAcceptBacksOffAndKeepsAccepting(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ECONNABORTED, syscall.ENOMEM} {
		t.Run(errno.Error(), func(t *testing.T) {
			const fails = 6 // 5+10+20+40+80+160 ms of backoff
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			fl := &failingListener{Listener: ln, err: &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}}
			fl.fails.Store(fails)
			reg := prometheus.NewRegistry()
			var logs lockedBuffer
			s, err := network.NewServer(fl, newFakeHandler(), network.Options{Listener: "PLAINTEXT", Logger: slog.New(slog.NewTextHandler(&logs, nil)), Metrics: metrics.NewNetwork(reg)})
			if err != nil {
				t.Fatal(err)
			}
			s.Serve()
			t.Cleanup(func() { s.Close() })

			began := time.Now()
			c := dial(t, s)
			c.send(metadataReq(1, ""), 1)
			if corr, err := c.recv(&kmsg.MetadataResponse{Version: 1}); err != nil || corr != 1 {
				t.Fatalf("after %d failed accepts: corr %d err %v", fails, corr, err)
			}
			if took := time.Since(began); took < 300*time.Millisecond {
				t.Errorf("served after %v: the accept loop did not back off", took)
			}
			if v := gathered(t, reg, "samsa_network_accept_errors_total", "", ""); v != fails {
				t.Errorf("accept errors = %v, want %d", v, fails)
			}
			if n := strings.Count(logs.String(), "accept failed"); n != 1 {
				t.Errorf("%d log lines about failed accepts in under 5s, want 1:\n%s", n, logs.String())
			}
			if !strings.Contains(logs.String(), errno.Error()) {
				t.Errorf("log does not name the error:\n%s", logs.String())
			}
		})
	}
}

// TestNetworkAcceptCloseDuringBackoff: Close ends an accept loop that is
// backing off, promptly.
func TestNetworkAcceptCloseDuringBackoff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{Listener: ln, err: &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}}
	fl.fails.Store(1 << 30)
	s, err := network.NewServer(fl, newFakeHandler(), network.Options{Listener: "PLAINTEXT", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	s.Serve()
	time.Sleep(1500 * time.Millisecond) // into the 1 s backoff cap
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(500 * time.Millisecond):
		t.Fatal("Close waited for the accept backoff")
	}
}

func listenOpts(t *testing.T, h network.Handler, opts network.Options) *network.Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	opts.Listener = "PLAINTEXT"
	s, err := network.Listen("127.0.0.1:0", h, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitFor polls cond every few milliseconds for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNetworkIdleConnectionsClosed(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newFakeHandler()
	const idle = 300 * time.Millisecond
	s := listenOpts(t, h, network.Options{IdleTimeout: idle, Metrics: metrics.NewNetwork(reg)})

	silent := dial(t, s)
	began := time.Now()

	// A connection sending a request every idle/3 stays open.
	busy := dial(t, s)
	// A connection with a parked fetch is not idle either.
	parked := dial(t, s)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 4
	fetch.MaxWaitMillis = 60_000
	fetch.MinBytes = 1
	parked.send(fetch, 1)

	for i := 0; i < 6; i++ {
		busy.send(metadataReq(1, ""), int32(i))
		if _, err := busy.recv(&kmsg.MetadataResponse{Version: 1}); err != nil {
			t.Fatalf("busy connection after %v: %v", time.Since(began), err)
		}
		time.Sleep(idle / 3)
	}
	silent.expectClosed()
	if took := time.Since(began); took < idle {
		t.Fatalf("idle connection closed after %v, before connections.max.idle.ms %v", took, idle)
	}
	if v := gathered(t, reg, "samsa_network_connections_timed_out_total", "reason", "idle"); v != 1 {
		t.Errorf("idle closes = %v, want 1", v)
	}
	if h.parked.Load() != 1 {
		t.Fatal("the connection with a parked fetch was closed as idle")
	}
	close(h.release)
	if _, err := parked.recv(&kmsg.FetchResponse{Version: 4}); err != nil {
		t.Fatalf("parked fetch: %v", err)
	}
	// Once its answer is out, that connection goes idle too.
	parked.expectClosed()
}

// frameHead is a frame size prefix declaring size bytes, followed by the
// start of a Metadata v1 header: what an attacker sends before stalling.
func frameHead(size uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, size)
	return append(b, 0, 3, 0, 1, 0, 0)
}

func TestNetworkStalledFrameClosed(t *testing.T) {
	reg := prometheus.NewRegistry()
	limits := network.NewLimits(network.LimitsConfig{})
	s := listenOpts(t, newFakeHandler(), network.Options{RequestReadTimeout: 300 * time.Millisecond, Limits: limits, Metrics: metrics.NewNetwork(reg)})
	c := dial(t, s)
	began := time.Now()
	c.write(frameHead(50 << 20))
	waitFor(t, "the stalled frame's budget", func() bool { return limits.Budget().InUse() == 50<<20 })
	c.expectClosed()
	if took := time.Since(began); took < 300*time.Millisecond {
		t.Fatalf("closed after %v, before the read timeout", took)
	}
	if v := gathered(t, reg, "samsa_network_connections_timed_out_total", "reason", "stalled"); v != 1 {
		t.Errorf("stalled closes = %v, want 1", v)
	}
	waitFor(t, "budget given back", func() bool { return limits.Budget().InUse() == 0 })

	// A slow but steady sender also has to finish within the timeout.
	slow := dial(t, s)
	slow.write(frameHead(1 << 20))
	for i := 0; i < 10; i++ {
		time.Sleep(50 * time.Millisecond)
		if _, err := slow.nc.Write(make([]byte, 100)); err != nil {
			break
		}
	}
	slow.expectClosed()
}

// bigMetadata is a Metadata v1 request of about size bytes (topic names
// of 30,000 bytes).
func bigMetadata(size int) *kmsg.MetadataRequest {
	r := kmsg.NewPtrMetadataRequest()
	r.Version = 1
	for n := 0; n < size; n += 30002 {
		name := strings.Repeat(string(rune('a'+len(r.Topics)%26)), 30000)
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = &name
		r.Topics = append(r.Topics, rt)
	}
	return r
}

// TestNetworkBudgetBoundsFramesAcrossConnections: with a 1 MiB budget two
// 600 KiB frames are not read at once; the second waits for the first to
// be served, small requests pass meanwhile, and the budget ends empty.
func TestNetworkBudgetBoundsFramesAcrossConnections(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.NewNetwork(reg)
	limits := network.NewLimits(network.LimitsConfig{QueuedMaxRequestBytes: 1 << 20, Metrics: m})
	s := listenOpts(t, newFakeHandler(), network.Options{MaxRequestBytes: 900 << 10, Limits: limits, Metrics: m})

	frame := kmsg.NewRequestFormatter().AppendRequest(nil, bigMetadata(600<<10), 1)
	size := int64(len(frame) - 4)
	if size < 600<<10 || size > 700<<10 {
		t.Fatalf("frame of %d bytes", size)
	}
	first, second := dial(t, s), dial(t, s)
	first.write(frame[:100]) // size and part of the header: holds budget
	waitFor(t, "the first frame's budget", func() bool { return limits.Budget().InUse() == size })
	second.write(frame[:100])
	waitFor(t, "the second frame to wait", func() bool {
		return gathered(t, reg, "samsa_network_request_budget_waits_total", "", "") == 1
	})
	if v := gathered(t, reg, "samsa_network_request_bytes_in_use", "", ""); v != float64(size) {
		t.Errorf("bytes in use = %v, want %d", v, size)
	}
	if v := gathered(t, reg, "samsa_network_request_bytes_limit", "", ""); v != 1<<20 {
		t.Errorf("bytes limit = %v, want %d", v, 1<<20)
	}

	// Small requests are served while a large frame waits.
	small := dial(t, s)
	small.send(metadataReq(1, ""), 5)
	if corr, err := small.recv(&kmsg.MetadataResponse{Version: 1}); err != nil || corr != 5 {
		t.Fatalf("small request while the budget is held: corr %d err %v", corr, err)
	}

	first.write(frame[100:])
	if corr, err := first.recv(&kmsg.MetadataResponse{Version: 1}); err != nil || corr != 1 {
		t.Fatalf("first frame: corr %d err %v", corr, err)
	}
	second.write(frame[100:])
	if corr, err := second.recv(&kmsg.MetadataResponse{Version: 1}); err != nil || corr != 1 {
		t.Fatalf("second frame: corr %d err %v", corr, err)
	}
	waitFor(t, "budget empty", func() bool { return limits.Budget().InUse() == 0 })
}

// TestNetworkDeclaredSizeIsNotAllocated: frames that declare 64 MiB but
// send a few bytes must not make the broker allocate 64 MiB each.
func TestNetworkDeclaredSizeIsNotAllocated(t *testing.T) {
	limits := network.NewLimits(network.LimitsConfig{QueuedMaxRequestBytes: 1 << 40})
	s := listenOpts(t, newFakeHandler(), network.Options{MaxRequestBytes: 64 << 20, Limits: limits})
	const conns = 20
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < conns; i++ {
		dial(t, s).write(frameHead(64 << 20))
	}
	waitFor(t, "every frame to hold budget", func() bool { return limits.Budget().InUse() == conns*64<<20 })
	time.Sleep(50 * time.Millisecond)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
		t.Fatalf("allocated %d MiB for %d frames that sent 6 bytes each", grew>>20, conns)
	}
}

func TestNetworkBudgetOrder(t *testing.T) {
	b := network.NewBudget(1000<<10, nil) // reserve: 125 KiB
	ctx := context.Background()
	if !b.TryAcquire(500 << 10) {
		t.Fatal("500 KiB of an empty 1000 KiB budget")
	}
	// 400 KiB is large: it would eat into the small frames' reserve.
	if b.TryAcquire(400 << 10) {
		t.Fatal("a large frame took the small frames' reserve")
	}
	granted := make(chan string, 4)
	go func() {
		if err := b.Acquire(ctx, 500<<10); err == nil {
			granted <- "large-1"
		}
	}()
	time.Sleep(20 * time.Millisecond)
	// 80 KiB would fit, but large frames are served in order: it waits
	// behind the first.
	go func() {
		if err := b.Acquire(ctx, 80<<10); err == nil {
			granted <- "large-2"
		}
	}()
	time.Sleep(20 * time.Millisecond)
	// A small frame passes the waiting large ones and may use the reserve.
	if !b.TryAcquire(60 << 10) {
		t.Fatal("a small frame waited behind large ones")
	}
	b.Release(60 << 10)
	select {
	case g := <-granted:
		t.Fatalf("%s granted ahead of its turn", g)
	case <-time.After(50 * time.Millisecond):
	}
	b.Release(500 << 10)
	got := map[string]bool{<-granted: true, <-granted: true}
	if !got["large-1"] || !got["large-2"] {
		t.Fatalf("granted %v", got)
	}
	b.Release(580 << 10)
	if b.InUse() != 0 {
		t.Fatalf("in use %d after every release", b.InUse())
	}
	// A frame as big as the whole budget runs alone.
	if err := b.Acquire(ctx, 1000<<10); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := b.Acquire(tctx, 1); !errors.Is(err, network.ErrBudgetTimeout) {
		t.Fatalf("acquire from a spent budget: %v, want ErrBudgetTimeout", err)
	}
	b.Release(1000 << 10)
	if err := b.Acquire(ctx, 1000<<10+1); err == nil {
		t.Fatal("a frame larger than the budget was granted")
	}
	if b.InUse() != 0 {
		t.Fatalf("in use %d at the end", b.InUse())
	}
}

func TestNetworkMaxConnectionsPausesAccept(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.NewNetwork(reg)
	limits := network.NewLimits(network.LimitsConfig{MaxConnections: 2, Metrics: m})
	s := listenOpts(t, newFakeHandler(), network.Options{Limits: limits, Metrics: m})
	a, b := dial(t, s), dial(t, s)
	for i, c := range []*rawConn{a, b} {
		c.send(metadataReq(1, ""), int32(i))
		if _, err := c.recv(&kmsg.MetadataResponse{Version: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// The third connects (kernel backlog) but is not served...
	third := dial(t, s)
	third.send(metadataReq(1, ""), 3)
	_ = third.nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := third.recv(&kmsg.MetadataResponse{Version: 1}); err == nil {
		t.Fatal("a third connection was served with max.connections=2")
	}
	// ...until one of the first two closes.
	_ = third.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	a.nc.Close()
	if corr, err := third.recv(&kmsg.MetadataResponse{Version: 1}); err != nil || corr != 3 {
		t.Fatalf("third connection after a slot freed: corr %d err %v", corr, err)
	}
	if v := gathered(t, reg, "samsa_network_accept_blocked_seconds_total", "", ""); v < 0.1 {
		t.Errorf("accept blocked %v s, want >= 0.1", v)
	}
}

func TestNetworkMaxConnectionsPerIP(t *testing.T) {
	for _, tc := range []struct {
		name      string
		overrides map[netip.Addr]int
		allowed   int
	}{
		{"default limit", nil, 2},
		{"override", map[netip.Addr]int{netip.MustParseAddr("127.0.0.1"): 3}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := metrics.NewNetwork(reg)
			limits := network.NewLimits(network.LimitsConfig{MaxConnectionsPerIP: 2, MaxConnectionsPerIPOverrides: tc.overrides, Metrics: m})
			s := listenOpts(t, newFakeHandler(), network.Options{Limits: limits, Metrics: m})
			var open []*rawConn
			for i := 0; i < tc.allowed; i++ {
				c := dial(t, s)
				c.send(metadataReq(1, ""), int32(i))
				if _, err := c.recv(&kmsg.MetadataResponse{Version: 1}); err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
				open = append(open, c)
			}
			over := dial(t, s)
			over.expectClosed()
			// The counter may move just after the close reaches the client.
			waitFor(t, "the rejection to be counted", func() bool {
				return gathered(t, reg, "samsa_network_connections_rejected_total", "reason", "max_connections_per_ip") == 1
			})
			// Closing one makes room again.
			open[0].nc.Close()
			waitFor(t, "a freed slot", func() bool {
				c, err := net.Dial("tcp", s.Addr().String())
				if err != nil {
					return false
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				fm := kmsg.NewRequestFormatter()
				if _, err := c.Write(fm.AppendRequest(nil, metadataReq(1, ""), 9)); err != nil {
					return false
				}
				var b [4]byte
				_, err = c.Read(b[:])
				return err == nil
			})
		})
	}
}

func TestNetworkServerRejectsFrameLimitOverBudget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	limits := network.NewLimits(network.LimitsConfig{QueuedMaxRequestBytes: 1 << 20})
	_, err = network.NewServer(ln, newFakeHandler(), network.Options{MaxRequestBytes: 2 << 20, Limits: limits, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "queued.max.request.bytes") {
		t.Fatalf("socket.request.max.bytes above queued.max.request.bytes: %v", err)
	}
}

// TestNetworkClientNotReadingIsClosed: a client that sends requests but
// never reads the answers must not pin its connection (and up to 128
// responses) forever: once writing makes no progress for
// connections.max.idle.ms the connection is closed.
func TestNetworkClientNotReadingIsClosed(t *testing.T) {
	reg := prometheus.NewRegistry()
	const idle = 500 * time.Millisecond
	s := listenOpts(t, newFakeHandler(), network.Options{IdleTimeout: idle, Metrics: metrics.NewNetwork(reg)})
	c := dial(t, s)
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10)
	}
	req := kmsg.NewRequestFormatter().AppendRequest(nil, metadataReq(1, "big"), 1)
	// 4,000 answers of 32 KiB: far more than socket buffers hold. The
	// writes stop failing once the server closed the connection.
	for i := 0; i < 4000; i++ {
		if _, err := c.nc.Write(req); err != nil {
			break
		}
	}
	waitFor(t, "the connection to be closed", func() bool {
		return gathered(t, reg, "samsa_network_connections_timed_out_total", "reason", "idle") == 1
	})
	waitFor(t, "no open connection", func() bool {
		return gathered(t, reg, "samsa_network_connections", "", "") == 0
	})
}
