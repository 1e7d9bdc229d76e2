// Package brokerproc runs a real samsa broker as a child process for tests:
// the same binary users run, over real sockets, so that third-party clients
// and process-level faults (SIGTERM, SIGKILL) exercise the whole broker.
//
// A broker is started with
//
//	samsa start -o listeners=PLAINTEXT://127.0.0.1:0 -o log.dirs=DIR [-o key=value ...]
//
// and its stderr (slog text) is read until the line
//
//	msg="listener bound" listener=PLAINTEXT addr=127.0.0.1:PORT
//
// has appeared, followed by msg="samsa started"; that address is the
// bootstrap address. Every broker is stopped and
// reaped by PID in t.Cleanup, and when the test failed the tail of its output
// is logged, so a failure shows what the broker said.
//
// Multi-node clusters (cluster.go) start every node from its own
// server.properties (Options.ConfigFile) with ports reserved up front,
// all nodes before waiting for any.
//
// The binary is $SAMSA_BIN when set (make test builds bin/samsa once and
// exports it), otherwise it is built once per test process with
// `CGO_ENABLED=0 go build`, as make build does.
package brokerproc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readyMessage is logged once every component has started.
const readyMessage = `msg="samsa started"`

// StartTimeout bounds how long a broker may take from exec to its PLAINTEXT
// listener being bound, including recovery of a log directory.
const StartTimeout = 60 * time.Second

// StopTimeout bounds a clean shutdown after SIGTERM before the broker is
// killed and the stop reported as failed.
const StopTimeout = 30 * time.Second

// tailBytes is how much of a broker's combined stdout/stderr is kept for
// failure reports.
const tailBytes = 64 << 10

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary returns the path of the samsa binary to run: $SAMSA_BIN if set, else
// a binary built once per process from this module's ./cmd/samsa.
func Binary() (string, error) {
	if p := os.Getenv("SAMSA_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Errorf("brokerproc: SAMSA_BIN: %w", err)
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("brokerproc: SAMSA_BIN: %w", err)
		}
		return abs, nil
	}
	buildOnce.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "samsa-bin-")
		if err != nil {
			buildErr = fmt.Errorf("brokerproc: %w", err)
			return
		}
		buildPath = filepath.Join(dir, "samsa")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/samsa")
		cmd.Dir = root
		// The static binary users get from make build (no cgo).
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("brokerproc: go build ./cmd/samsa: %w\n%s", err, out)
		}
	})
	return buildPath, buildErr
}

// ModuleRoot is the directory holding this module's go.mod, found by walking
// up from the working directory (go test runs in the package directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("brokerproc: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("brokerproc: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Options configure a broker process.
type Options struct {
	// Dir is log.dirs (and the working directory). Empty: a fresh
	// t.TempDir().
	Dir string
	// ConfigFile, when set, is passed as --config and replaces the
	// listener, log.dirs and http.listener overrides: the file names
	// them (a node of a multi-node cluster, see cluster.go).
	ConfigFile string
	// Overrides are extra "key=value" settings passed as -o after the
	// listener and log.dirs ones (so they may replace them).
	Overrides []string
	// Wrapper, if set, is a command the binary is run under, which must
	// exec it (e.g. {"prlimit", "--nofile=256:256"}), so PID stays the
	// broker's.
	Wrapper []string
}

// Broker is one running (or finished) broker process.
type Broker struct {
	// Addr is the bound PLAINTEXT address, host:port.
	Addr string
	// Dir is the log directory, reusable by Restart after Stop or Kill.
	Dir string

	opts Options
	cmd  *exec.Cmd
	out  *tailBuffer
	// done is closed once the process has exited and been reaped;
	// waitErr is its exit status (written before done is closed).
	done    chan struct{}
	waitErr error
	// stopped records that Stop or Kill was called, so an exit is expected.
	mu      sync.Mutex
	stopped bool
}

// Start runs a broker and waits for its PLAINTEXT listener. It fails the
// test (t.Fatal) if the broker cannot start; the process is always reaped
// when the test ends.
func Start(t testing.TB, opts Options) *Broker {
	t.Helper()
	b, err := start(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func start(t testing.TB, opts Options) (*Broker, error) {
	b, addrc, err := spawn(t, opts)
	if err != nil {
		return nil, err
	}
	return b, b.waitReady(addrc)
}

// spawn starts the broker process and returns at once; the bound
// PLAINTEXT address arrives on the channel once the broker is ready
// (waitReady). The process is always reaped when the test ends.
func spawn(t testing.TB, opts Options) (*Broker, <-chan string, error) {
	bin, err := Binary()
	if err != nil {
		return nil, nil, err
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	args := []string{"start",
		"-o", "listeners=PLAINTEXT://127.0.0.1:0",
		"-o", "log.dirs=" + opts.Dir,
		// Never a fixed port: something else may hold 8080.
		"-o", "http.listener=127.0.0.1:0",
	}
	if opts.ConfigFile != "" {
		args = []string{"start", "--config", opts.ConfigFile}
	}
	for _, o := range opts.Overrides {
		args = append(args, "-o", o)
	}
	b := &Broker{
		Dir:  opts.Dir,
		opts: opts,
		out:  &tailBuffer{max: tailBytes},
		done: make(chan struct{}),
	}
	if len(opts.Wrapper) > 0 {
		args = append(append(opts.Wrapper[1:len(opts.Wrapper):len(opts.Wrapper)], bin), args...)
		bin = opts.Wrapper[0]
	}
	b.cmd = exec.Command(bin, args...)
	b.cmd.Dir = opts.Dir
	b.cmd.Stdout = b.out
	stderr, err := b.cmd.StderrPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("brokerproc: %w", err)
	}
	if err := b.cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("brokerproc: start %s: %w", bin, err)
	}
	t.Cleanup(func() {
		b.reap(t)
	})

	addrc := make(chan string, 1)
	go func() {
		// Read stderr to EOF (the broker must never block on a full pipe),
		// then reap: Wait closes the pipe, so it comes after the reads.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var addr string
		ready := false
		for sc.Scan() {
			line := sc.Text()
			b.out.Write([]byte(line + "\n"))
			if ready {
				continue
			}
			if a, ok := ParseListenerBound(line, "PLAINTEXT"); ok && addr == "" {
				addr = a
			}
			// The listener is bound before the broker has registered
			// itself, so a client that connects at once may see no
			// brokers in Metadata: wait for the start to complete.
			if addr != "" && strings.Contains(line, readyMessage) {
				ready = true
				addrc <- addr
			}
		}
		_, _ = io.Copy(b.out, stderr)
		b.waitErr = b.cmd.Wait()
		close(b.done)
	}()
	return b, addrc, nil
}

// waitReady waits for the address spawn announces, the process's exit or
// StartTimeout, and sets b.Addr.
func (b *Broker) waitReady(addrc <-chan string) error {
	timer := time.NewTimer(StartTimeout)
	defer timer.Stop()
	select {
	case b.Addr = <-addrc:
		return nil
	case <-b.done:
		b.mu.Lock()
		b.stopped = true // reported here; not again at cleanup
		b.mu.Unlock()
		return &ExitError{Output: b.out.String(), err: fmt.Errorf("brokerproc: broker exited before binding its listener (%v); output:\n%s", b.waitErr, b.out.String())}
	case <-timer.C:
		_ = b.cmd.Process.Kill()
		<-b.done
		return fmt.Errorf("brokerproc: no %q line followed by %q within %v; output:\n%s", `msg="listener bound" listener=PLAINTEXT`, readyMessage, StartTimeout, b.out.String())
	}
}

// ExitError is a broker that exited while starting; Output is what it
// said (a test can tell a refused config from a crash).
type ExitError struct {
	Output string
	err    error
}

func (e *ExitError) Error() string { return e.err.Error() }

// ParseListenerBound extracts addr from a slog text line
// `... msg="listener bound" listener=NAME addr=HOST:PORT` for the named
// listener.
func ParseListenerBound(line, listener string) (string, bool) {
	if !strings.Contains(line, `msg="listener bound"`) {
		return "", false
	}
	var name, addr string
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "listener="); ok {
			name = strings.Trim(v, `"`)
		}
		if v, ok := strings.CutPrefix(f, "addr="); ok {
			addr = strings.Trim(v, `"`)
		}
	}
	if name != listener || addr == "" {
		return "", false
	}
	return addr, true
}

// HTTPAddr is the bound address of the broker's HTTP listener (/metrics,
// /healthz), read from its output; "" if none was logged.
func (b *Broker) HTTPAddr() string {
	for _, line := range strings.Split(b.out.String(), "\n") {
		if a, ok := ParseListenerBound(line, "HTTP"); ok {
			return a
		}
	}
	return ""
}

// PID is the broker's process id.
func (b *Broker) PID() int { return b.cmd.Process.Pid }

// Running reports whether the process has not exited yet.
func (b *Broker) Running() bool {
	select {
	case <-b.done:
		return false
	default:
		return true
	}
}

// Output is the tail (up to 64 KiB) of the broker's stdout and stderr.
func (b *Broker) Output() string { return b.out.String() }

// Stop sends SIGTERM and waits for a clean exit. It returns an error if the
// broker does not exit within StopTimeout (it is then killed) or exits with
// a non-zero status.
func (b *Broker) Stop() error {
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
	if !b.Running() {
		return fmt.Errorf("brokerproc: broker (pid %d) had already exited: %v", b.PID(), b.waitErr)
	}
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("brokerproc: SIGTERM pid %d: %w", b.PID(), err)
	}
	timer := time.NewTimer(StopTimeout)
	defer timer.Stop()
	select {
	case <-b.done:
		if b.waitErr != nil {
			return fmt.Errorf("brokerproc: broker (pid %d) exited uncleanly after SIGTERM: %w", b.PID(), b.waitErr)
		}
		return nil
	case <-timer.C:
		_ = b.cmd.Process.Kill()
		<-b.done
		return fmt.Errorf("brokerproc: broker (pid %d) did not exit within %v of SIGTERM; killed", b.PID(), StopTimeout)
	}
}

// Kill sends SIGKILL (a crash: no shutdown code runs) and reaps the process.
func (b *Broker) Kill() {
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
	if b.Running() {
		_ = b.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-b.done
}

// Restart starts a new broker on the same log directory and overrides,
// after this one was stopped or killed. The new broker listens on a new
// port.
func (b *Broker) Restart(t testing.TB) *Broker {
	t.Helper()
	if b.Running() {
		t.Fatalf("brokerproc: Restart of broker pid %d that is still running", b.PID())
	}
	return Start(t, b.opts)
}

// reap runs at test cleanup: it kills a broker that is still running,
// reaps it, and reports its output when the test failed or it died on its
// own.
func (b *Broker) reap(t testing.TB) {
	b.mu.Lock()
	expected := b.stopped
	b.mu.Unlock()
	diedOnItsOwn := !expected && !b.Running()
	if b.Running() {
		_ = b.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-b.done
	if t.Failed() || diedOnItsOwn {
		t.Logf("broker pid %d (log.dirs=%s, addr=%s, exit=%v) output tail:\n%s", b.PID(), b.Dir, b.Addr, b.waitErr, b.Output())
	}
	if diedOnItsOwn {
		t.Errorf("broker pid %d exited unexpectedly during the test: %v", b.PID(), b.waitErr)
	}
}

// tailBuffer keeps the last max bytes written to it. Safe for concurrent
// use (the exec stdout copier and the stderr reader both write).
type tailBuffer struct {
	mu  sync.Mutex
	max int          // bytes kept; constant
	buf bytes.Buffer // guarded by mu; len <= 2*max
	cut bool         // guarded by mu; something was dropped
}

func (tb *tailBuffer) Write(p []byte) (int, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.buf.Write(p)
	if tb.buf.Len() > 2*tb.max {
		keep := tb.buf.Bytes()[tb.buf.Len()-tb.max:]
		if i := bytes.IndexByte(keep, '\n'); i >= 0 {
			keep = keep[i+1:]
		}
		rest := append([]byte(nil), keep...)
		tb.buf.Reset()
		tb.buf.Write(rest)
		tb.cut = true
	}
	return len(p), nil
}

func (tb *tailBuffer) String() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	s := tb.buf.String()
	if len(s) > tb.max {
		s = s[len(s)-tb.max:]
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
		return "[...]\n" + s
	}
	if tb.cut {
		return "[...]\n" + s
	}
	return s
}
