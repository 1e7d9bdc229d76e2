package cluster

// Network namespaces for process-level partition tests (Linux, root).
//
// Layout, all names unique to the test process (its PID in them):
//
//	root ns:  np<PID>r  10.231.S.254/24  ─┐
//	hub ns:   bridge br0 ──────────────────┤ (veth peers, bridge ports h0, h1, h2, ...)
//	node ns i: eth0     10.231.S.i/24    ─┘
//
// One bridge in a namespace the test creates joins every node and the
// test process on one /24, so nothing is routed and no sysctl of the
// root namespace changes. Cutting node i off is `ip link set h<i> down`
// in the hub: its eth0 stays up with its address, so a client run inside
// its namespace still reaches it, but no packet crosses to anyone else.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// netLab is the namespaces, bridge and veths of one test.
type netLab struct {
	prefix string // namespace and link name prefix, "np<PID>"
	subnet string // "10.231.S", the /24 every address is in
	hub    string // hub namespace (holds the bridge)
	nodes  int    // node namespaces made so far
}

// requireNetAdmin skips (or, with SAMSA_REQUIRE_CLIENTS=1, fails) when
// the test cannot make network namespaces.
func requireNetAdmin(t *testing.T) {
	t.Helper()
	required := os.Getenv("SAMSA_REQUIRE_CLIENTS") == "1"
	if os.Geteuid() != 0 {
		if required {
			t.Fatal("network-partition test needs root (ip netns) and SAMSA_REQUIRE_CLIENTS=1 forbids skipping")
		}
		t.Skip("network-partition test needs root for ip netns; run as root (CI does)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		if required {
			t.Fatalf("network-partition test needs iproute2's ip: %v", err)
		}
		t.Skipf("network-partition test needs iproute2's ip: %v", err)
	}
}

// ipCmd runs `ip args...` (bounded to 10 s) and returns its combined
// output.
func ipCmd(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func mustIP(t *testing.T, args ...string) {
	t.Helper()
	if _, err := ipCmd(args...); err != nil {
		t.Fatal(err)
	}
}

// newNetLab makes the hub namespace with its bridge and the test
// process's own veth into it. Everything is removed at test cleanup.
func newNetLab(t *testing.T) *netLab {
	t.Helper()
	pid := os.Getpid()
	l := &netLab{
		prefix: fmt.Sprintf("np%d", pid),
		// 10.231.16.0 to 10.231.215.0: a private range unlikely to be in
		// use, different for concurrent test processes.
		subnet: fmt.Sprintf("10.231.%d", 16+pid%200),
	}
	if out, _ := ipCmd("-4", "addr", "show"); strings.Contains(out, " "+l.subnet+".") {
		t.Fatalf("subnet %s.0/24 is already in use on this host:\n%s", l.subnet, out)
	}
	l.hub = "samsa-" + l.prefix + "-hub"
	if _, err := ipCmd("netns", "add", l.hub); err != nil {
		msg := err.Error()
		if os.Getenv("SAMSA_REQUIRE_CLIENTS") != "1" &&
			(strings.Contains(msg, "Operation not permitted") || strings.Contains(msg, "Permission denied")) {
			t.Skipf("cannot create network namespaces here (%v); the partition test needs CAP_SYS_ADMIN", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { l.deleteNS(t, l.hub) })
	mustIP(t, "-n", l.hub, "link", "add", "br0", "type", "bridge")
	mustIP(t, "-n", l.hub, "link", "set", "br0", "up")

	rootLink := l.prefix + "r"
	mustIP(t, "link", "add", rootLink, "type", "veth", "peer", "name", "hr", "netns", l.hub)
	t.Cleanup(func() {
		// Deleting the hub also removes this pair; delete it explicitly
		// in case the hub is gone already or its deletion failed.
		if out, _ := ipCmd("link", "show", rootLink); out != "" {
			if _, err := ipCmd("link", "del", rootLink); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	mustIP(t, "-n", l.hub, "link", "set", "hr", "master", "br0", "up")
	mustIP(t, "addr", "add", l.subnet+".254/24", "dev", rootLink)
	mustIP(t, "link", "set", rootLink, "up")
	return l
}

// deleteNS removes a namespace the lab made.
func (l *netLab) deleteNS(t *testing.T, ns string) {
	if _, err := ipCmd("netns", "del", ns); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// addNode makes node namespace i (1-based, in order) wired to the hub
// bridge, and returns its name and address.
func (l *netLab) addNode(t *testing.T) (ns, addr string) {
	t.Helper()
	l.nodes++
	i := l.nodes
	ns = fmt.Sprintf("samsa-%s-n%d", l.prefix, i)
	addr = fmt.Sprintf("%s.%d", l.subnet, i)
	mustIP(t, "netns", "add", ns)
	t.Cleanup(func() { l.deleteNS(t, ns) })
	mustIP(t, "-n", ns, "link", "set", "lo", "up")
	mustIP(t, "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", l.hubPort(i), "netns", l.hub)
	mustIP(t, "-n", l.hub, "link", "set", l.hubPort(i), "master", "br0", "up")
	mustIP(t, "-n", ns, "addr", "add", addr+"/24", "dev", "eth0")
	mustIP(t, "-n", ns, "link", "set", "eth0", "up")
	return ns, addr
}

// hubPort is node i's bridge port in the hub.
func (l *netLab) hubPort(i int) string { return fmt.Sprintf("h%d", i) }

// cut takes node i off the network (its bridge port down); heal puts it
// back.
func (l *netLab) cut(t *testing.T, i int) {
	t.Helper()
	mustIP(t, "-n", l.hub, "link", "set", l.hubPort(i), "down")
}

func (l *netLab) heal(t *testing.T, i int) {
	t.Helper()
	mustIP(t, "-n", l.hub, "link", "set", l.hubPort(i), "up")
}

// nsProc is a samsa node running inside a namespace.
type nsProc struct {
	cmd  *exec.Cmd
	out  *nsOutput
	done chan struct{} // closed once the process is reaped
	err  error         // Wait's result; read after done
}

type nsOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu; bounded by tail on read
}

func (b *nsOutput) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 4<<20 { // keep memory bounded: drop the oldest half
		rest := append([]byte(nil), b.buf.Bytes()[b.buf.Len()/2:]...)
		b.buf.Reset()
		b.buf.Write(rest)
	}
	return b.buf.Write(p)
}

// tail is the last n bytes written.
func (b *nsOutput) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > n {
		s = "[...]" + s[len(s)-n:]
	}
	return s
}

// startInNS runs `ip netns exec ns samsa start --config file`; ip execs
// samsa in place, so the process is the node itself. It is killed and
// reaped at test cleanup, its output logged when the test failed.
func startInNS(t *testing.T, bin, ns, file, dir string, id int) *nsProc {
	t.Helper()
	p := &nsProc{out: &nsOutput{}, done: make(chan struct{})}
	p.cmd = exec.Command("ip", "netns", "exec", ns, bin, "start", "--config", file)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start node %d in %s: %v", id, ns, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			t.Errorf("node %d (pid %d) exited during the test: %v", id, p.cmd.Process.Pid, p.err)
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("node %d (ns %s, pid %d) output tail:\n%s", id, ns, p.cmd.Process.Pid, p.out.tail(24<<10))
		}
	})
	return p
}

// runInNS runs samsa args inside ns, bounded by d; it returns the output
// and the error (non-nil on a non-zero exit or the timeout).
func runInNS(bin, ns string, d time.Duration, args ...string) (string, error) {
	return runInNSEnv(bin, ns, d, nil, args...)
}

// runInNSEnv is runInNS with env added to the command's environment.
func runInNSEnv(bin, ns string, d time.Duration, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = errors.Join(err, fmt.Errorf("no answer within %v", d))
	}
	return string(out), err
}
