package clients

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"samsa/test/brokerproc"
)

// pythonPath is Debian's interpreter: python3-kafka and
// python3-confluent-kafka are installed for it, not for a pyenv or
// virtualenv python3 that may come first on PATH.
const pythonPath = "/usr/bin/python3"

// startBroker runs a broker that auto-creates single-partition topics, as a
// fresh Kafka does with default settings.
func startBroker(t *testing.T, overrides ...string) *brokerproc.Broker {
	t.Helper()
	return brokerproc.Start(t, brokerproc.Options{
		Overrides: append([]string{"auto.create.topics.enable=true", "num.partitions=1"}, overrides...),
	})
}

// requireExecutable returns the path of an external client program, or
// skips the test (fails it under SAMSA_REQUIRE_CLIENTS=1) when missing.
func requireExecutable(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missingClient(t, fmt.Sprintf("%s not found: %v", name, err))
	}
	return p
}

// requirePythonModule skips (or fails) unless /usr/bin/python3 imports mod.
func requirePythonModule(t *testing.T, mod string) {
	t.Helper()
	py := requireExecutable(t, pythonPath)
	if out, err := exec.Command(py, "-c", "import "+mod).CombinedOutput(); err != nil {
		missingClient(t, fmt.Sprintf("%s cannot import %s: %v\n%s", py, mod, err, out))
	}
}

// requireNodeModules skips (or fails) unless kafkajs is installed in
// test/clients/node.
func requireNodeModules(t *testing.T) string {
	t.Helper()
	node := requireExecutable(t, "node")
	if _, err := os.Stat(filepath.Join("node", "node_modules", "kafkajs", "package.json")); err != nil {
		missingClient(t, "kafkajs not installed in test/clients/node (run scripts/install-test-deps.sh): "+err.Error())
	}
	return node
}

func missingClient(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("SAMSA_REQUIRE_CLIENTS") == "1" {
		t.Fatalf("required client missing: %s", why)
	}
	t.Skipf("client missing (set SAMSA_REQUIRE_CLIENTS=1 to fail instead): %s", why)
}

// clientRun is one finished client process.
type clientRun struct {
	Stdout string
	Stderr string
}

// runClient runs an external client to completion within timeout. A
// failure (non-zero exit, timeout) fails the test with the client's output;
// on success the output is logged only if the test fails later, so an
// assertion failure shows what the client said.
func runClient(t *testing.T, timeout time.Duration, stdin io.Reader, name string, args ...string) clientRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin = stdin
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1", "KAFKAJS_NO_PARTITIONER_WARNING=1")
	start := time.Now()
	err := cmd.Run()
	run := clientRun{Stdout: stdout.String(), Stderr: stderr.String()}
	line := strings.Join(append([]string{filepath.Base(name)}, args...), " ")
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (killed after %v)", err, timeout)
		}
		t.Fatalf("%s: %v\n--- stdout:\n%s\n--- stderr:\n%s", line, err, tail(run.Stdout), tail(run.Stderr))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s (ok in %v)\n--- stdout:\n%s\n--- stderr:\n%s", line, time.Since(start).Round(time.Millisecond), tail(run.Stdout), tail(run.Stderr))
		}
	})
	return run
}

// tail keeps failure reports readable: the last 8 KiB of s.
func tail(s string) string {
	const max = 8 << 10
	if len(s) > max {
		return "[...]" + s[len(s)-max:]
	}
	return s
}

// newKgo is a franz-go client for checking what the broker stored.
func newKgo(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return brokerproc.NewClient(t, addr, opts...)
}

// createTopic creates topic with the given partitions (replication 1).
func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	brokerproc.CreateTopic(t, addr, topic, partitions)
}

// endOffsets lists the log end offset of every partition of topic.
func endOffsets(t *testing.T, addr, topic string) map[int32]int64 {
	t.Helper()
	return brokerproc.EndOffsets(t, addr, topic)
}

// consumeAll reads every record of topic up to its current end offsets, in
// partition order, then offset order.
func consumeAll(t *testing.T, addr, topic string) []*kgo.Record {
	t.Helper()
	return brokerproc.ConsumeAll(t, addr, topic)
}

// compressionName names a record batch compression codec (attributes bits
// 0-2) as Kafka does.
func compressionName(c uint8) string {
	switch c {
	case 0:
		return "none"
	case 1:
		return "gzip"
	case 2:
		return "snappy"
	case 3:
		return "lz4"
	case 4:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", c)
}

// topicName is a fresh topic per test: Kafka's legal characters only.
func topicName(t *testing.T) string {
	n := strings.NewReplacer("/", ".", " ", "_", "=", "-").Replace(t.Name())
	return n + "-" + fmt.Sprint(time.Now().UnixNano()%1e6)
}
