package cluster

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"samsa/test/brokerproc"
)

// devProc is a running `samsa dev cluster`.
type devProc struct {
	cmd       *exec.Cmd
	bootstrap string
	pids      map[int32]int // node id -> pid, from the printed table
	stderr    *lockedBuffer
	done      chan struct{} // closed once reaped; err is the exit
	err       error
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freeBasePort finds a base port whose dev-cluster ports (base+10*i+0..2
// for n nodes) are all free now.
func freeBasePort(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		base := brokerproc.ReservePorts(t, 1)[0]
		if base+10*(n-1)+2 > 65535 {
			continue
		}
		free := true
		for i := range n {
			for off := range 3 {
				l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+10*i+off))
				if err != nil {
					free = false
					break
				}
				l.Close()
			}
		}
		if free {
			return base
		}
	}
	t.Fatal("no free port range for a dev cluster")
	return 0
}

var devRow = regexp.MustCompile(`^(\d+)\s+(127\.0\.0\.1:\d+)\s+127\.0\.0\.1:\d+\s+http://\S+\s+(?:\S+\s+)?(\d+)\s+\S+$`)

// startDev runs `samsa dev cluster` and waits for its bootstrap line. It
// returns nil (and the process's stderr) when the process exited first.
func startDev(t *testing.T, args ...string) (*devProc, string) {
	t.Helper()
	bin, err := brokerproc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	d := &devProc{pids: map[int32]int{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(bin, append([]string{"dev", "cluster"}, args...)...)
	d.cmd.Stderr = d.stderr
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		if d.running() {
			_ = d.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(60 * time.Second):
				_ = d.cmd.Process.Kill()
				<-d.done
			}
		}
		if t.Failed() {
			t.Logf("samsa dev cluster stderr:\n%s", d.stderr.String())
		}
	})
	timeout := time.After(120 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				<-d.done
				return nil, d.stderr.String()
			}
			if m := devRow.FindStringSubmatch(line); m != nil {
				id, _ := strconv.Atoi(m[1])
				pid, _ := strconv.Atoi(m[3])
				d.pids[int32(id)] = pid
			}
			if b, ok := strings.CutPrefix(line, "bootstrap: "); ok {
				d.bootstrap = b
				go func() {
					for range lines { // drain the rest
					}
				}()
				return d, ""
			}
		case <-timeout:
			t.Fatalf("no bootstrap line within 120s; stderr:\n%s", d.stderr.String())
		}
	}
}

func (d *devProc) running() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits for the exit.
func (d *devProc) stop(t *testing.T) error {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
		return d.err
	case <-time.After(60 * time.Second):
		t.Fatalf("samsa dev cluster did not exit within 60s of SIGTERM; stderr:\n%s", d.stderr.String())
		return nil
	}
}

// gone reports whether no process has pid (the node was reaped).
func gone(pid int) bool {
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// TestClusterDevCommandSingleNode runs `samsa dev cluster --nodes 1`,
// uses it, stops it with SIGTERM, starts it again on the same --dir (the
// topic is still there), and kills its only node to see it reported.
func TestClusterDevCommandSingleNode(t *testing.T) {
	base := freeBasePort(t, 1)
	dir := t.TempDir()
	args := []string{"--nodes", "1", "--base-port", strconv.Itoa(base), "--dir", dir, "--rack", "a"}
	d, stderr := startDev(t, args...)
	if d == nil {
		t.Fatalf("dev cluster exited before printing the bootstrap string:\n%s", stderr)
	}
	if want := fmt.Sprintf("127.0.0.1:%d", base); d.bootstrap != want || len(d.pids) != 1 {
		t.Fatalf("bootstrap %q pids %v; want %s and one node", d.bootstrap, d.pids, want)
	}
	if r := runSamsa(t, "-X", d.bootstrap, "topic", "create", "kept", "-p", "2"); r.exitCode != 0 {
		t.Fatalf("topic create: %s%s", r.stdout, r.stderr)
	}
	if r := runSamsa(t, "-X", d.bootstrap, "cluster", "health"); r.exitCode != 0 {
		t.Errorf("cluster health: exit %d\n%s%s", r.exitCode, r.stdout, r.stderr)
	}
	if err := d.stop(t); err != nil {
		t.Fatalf("dev cluster after SIGTERM: %v\n%s", err, d.stderr.String())
	}
	if !strings.Contains(d.stderr.String(), "every node stopped") || !gone(d.pids[1]) {
		t.Errorf("node pid %d gone: %v; stderr:\n%s", d.pids[1], gone(d.pids[1]), d.stderr.String())
	}

	// Again on the same dir: the data is reused.
	d, stderr = startDev(t, args...)
	if d == nil {
		t.Fatalf("second run exited early:\n%s", stderr)
	}
	if r := runSamsa(t, "-X", d.bootstrap, "topic", "list"); !strings.Contains(r.stdout, "kept") {
		t.Errorf("topic of the first run missing after restart: %s%s", r.stdout, r.stderr)
	}
	// The only node dies: reported, and the command gives up.
	if err := syscall.Kill(d.pids[1], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatal("dev cluster still running after its only node died")
	}
	want := fmt.Sprintf("node 1 (pid %d) exited unexpectedly: signal: killed", d.pids[1])
	if d.err == nil || !strings.Contains(d.stderr.String(), want) || !strings.Contains(d.stderr.String(), "every node has exited") {
		t.Errorf("exit %v; stderr lacks %q:\n%s", d.err, want, d.stderr.String())
	}

	// Another shape on the same dir is refused without touching it.
	base3 := freeBasePort(t, 3)
	if d, stderr := startDev(t, "--nodes", "3", "--base-port", strconv.Itoa(base3), "--dir", dir); d != nil || !strings.Contains(stderr, "controller.quorum.voters") {
		t.Errorf("dev cluster on a dir of another shape: stderr:\n%s", stderr)
	}
}

// TestClusterDevCommandThreeNodes runs the default 3-node dev cluster
// with racks, checks it formed, kills one node (reported, the others keep
// running) and stops the rest with SIGTERM.
func TestClusterDevCommandThreeNodes(t *testing.T) {
	base := freeBasePort(t, 3)
	d, stderr := startDev(t, "--base-port", strconv.Itoa(base), "--dir", t.TempDir(), "--rack", "a,b,c")
	if d == nil {
		t.Fatalf("dev cluster exited before printing the bootstrap string:\n%s", stderr)
	}
	if len(d.pids) != 3 || len(strings.Split(d.bootstrap, ",")) != 3 {
		t.Fatalf("pids %v bootstrap %s", d.pids, d.bootstrap)
	}
	eventually(t, 60*time.Second, func(_ context.Context) error {
		if !strings.Contains(d.stderr.String(), "cluster formed: Metadata lists all 3 brokers") {
			return fmt.Errorf("not formed yet")
		}
		return nil
	})
	if r := runSamsa(t, "-X", d.bootstrap, "cluster", "health"); r.exitCode != 0 || !strings.HasPrefix(r.stdout, "healthy: 3 live brokers") {
		t.Errorf("cluster health: exit %d\n%s%s", r.exitCode, r.stdout, r.stderr)
	}
	if err := syscall.Kill(d.pids[3], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("node 3 (pid %d) exited unexpectedly", d.pids[3])
	eventually(t, 20*time.Second, func(_ context.Context) error {
		if !strings.Contains(d.stderr.String(), want) || !strings.Contains(d.stderr.String(), "2 of 3 nodes still running") {
			return fmt.Errorf("stderr lacks %q", want)
		}
		return nil
	})
	if err := d.stop(t); err != nil {
		t.Fatalf("dev cluster after SIGTERM: %v\n%s", err, d.stderr.String())
	}
	for id, pid := range d.pids {
		if !gone(pid) {
			t.Errorf("node %d (pid %d) still running after dev cluster stopped", id, pid)
		}
	}
}
