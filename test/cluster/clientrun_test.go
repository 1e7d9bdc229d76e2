package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pythonPath is Debian's interpreter, where python3-kafka and
// python3-confluent-kafka are installed (as in test/clients).
const pythonPath = "/usr/bin/python3"

// missingClient fails the test under SAMSA_REQUIRE_CLIENTS=1 and skips it
// otherwise, as test/clients does.
func missingClient(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("SAMSA_REQUIRE_CLIENTS") == "1" {
		t.Fatalf("required client missing: %s", why)
	}
	t.Skipf("client missing (set SAMSA_REQUIRE_CLIENTS=1 to fail instead): %s", why)
}

// requirePythonModule returns /usr/bin/python3 once it imports mod.
func requirePythonModule(t *testing.T, mod string) string {
	t.Helper()
	if _, err := os.Stat(pythonPath); err != nil {
		missingClient(t, err.Error())
	}
	if out, err := exec.Command(pythonPath, "-c", "import "+mod).CombinedOutput(); err != nil {
		missingClient(t, fmt.Sprintf("%s cannot import %s: %v\n%s", pythonPath, mod, err, out))
	}
	return pythonPath
}

// requireKafkaJS returns the node binary once kafkajs is installed in
// test/clients/node (scripts/install-test-deps.sh puts it there).
func requireKafkaJS(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missingClient(t, "node not found: "+err.Error())
	}
	if _, err := os.Stat(clientsPath(t, "node", "node_modules", "kafkajs", "package.json")); err != nil {
		missingClient(t, "kafkajs not installed in test/clients/node (run scripts/install-test-deps.sh): "+err.Error())
	}
	return node
}

// clientsPath is the absolute path of a file under test/clients, whose
// client scripts these tests reuse.
func clientsPath(t *testing.T, elem ...string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(append([]string{"..", "clients"}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runClient runs an external client to completion within timeout and
// returns its stdout; a non-zero exit or timeout fails the test with the
// client's output, and a later failure logs it.
func runClient(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1", "KAFKAJS_NO_PARTITIONER_WARNING=1")
	start := time.Now()
	err := cmd.Run()
	line := strings.Join(append([]string{filepath.Base(name)}, args...), " ")
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (killed after %v)", err, timeout)
		}
		t.Fatalf("%s: %v\n--- stdout:\n%s\n--- stderr:\n%s", line, err, tail(stdout.String()), tail(stderr.String()))
	}
	took := time.Since(start).Round(time.Millisecond)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s (ok in %v)\n--- stdout:\n%s\n--- stderr:\n%s", line, took, tail(stdout.String()), tail(stderr.String()))
		}
	})
	return stdout.String()
}

// tail keeps failure reports readable: the last 8 KiB of s.
func tail(s string) string {
	const max = 8 << 10
	if len(s) > max {
		return "[...]" + s[len(s)-max:]
	}
	return s
}
