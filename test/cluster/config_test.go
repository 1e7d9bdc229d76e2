package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"samsa/test/brokerproc"
)

var loopbackPort = regexp.MustCompile(`127\.0\.0\.1:(\d+)`)

// rewriteExample copies an example config with every loopback port
// replaced through ports (a fixed port may be taken on a test machine;
// the same old port maps to the same new one in every file), log.dirs
// moved into dir, and the HTTP listener on a free port.
func rewriteExample(t *testing.T, src, dir string, ports map[string]string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "log.dirs="):
			line = "log.dirs=" + filepath.Join(dir, "data")
		case strings.HasPrefix(line, "http.listener="):
			line = "http.listener=127.0.0.1:0"
		default:
			line = loopbackPort.ReplaceAllStringFunc(line, func(m string) string {
				old := strings.TrimPrefix(m, "127.0.0.1:")
				if _, ok := ports[old]; !ok {
					ports[old] = strconv.Itoa(brokerproc.ReservePorts(t, 1)[0])
				}
				return "127.0.0.1:" + ports[old]
			})
		}
		out = append(out, line)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestClusterSingleNodeExampleConfig starts config/server.properties
// (ports rewritten) and checks the node serves as one broker and one
// voter.
func TestClusterSingleNodeExampleConfig(t *testing.T) {
	root, err := brokerproc.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]string{}
	file := rewriteExample(t, filepath.Join(root, "config", "server.properties"), t.TempDir(), ports)
	bs, err := brokerproc.StartConfigs(t, []string{file})
	if err != nil {
		t.Fatal(err)
	}
	if want := "127.0.0.1:" + ports["9092"]; bs[0].Addr != want {
		t.Errorf("bound %s, want %s", bs[0].Addr, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md, err := metadataOf(ctx, t, bs[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	if ids := brokerIDs(md); !slices.Equal(ids, []int32{1}) || md.ControllerID != 1 {
		t.Errorf("Metadata brokers %v controller %d", ids, md.ControllerID)
	}
	brokerproc.CreateTopic(t, bs[0].Addr, "example", 3)
	if r := runSamsa(t, "-X", bs[0].Addr, "cluster", "health"); r.exitCode != 0 || !strings.HasPrefix(r.stdout, "healthy: 1 live broker,") {
		t.Errorf("cluster health: exit %d\n%s%s", r.exitCode, r.stdout, r.stderr)
	}
}

// TestClusterExampleConfigs starts config/cluster/node{1,2,3}.properties
// (ports rewritten consistently) and checks they form one cluster with
// racks a, b, c.
func TestClusterExampleConfigs(t *testing.T) {
	root, err := brokerproc.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]string{}
	var files []string
	for i := 1; i <= 3; i++ {
		files = append(files, rewriteExample(t, filepath.Join(root, "config", "cluster", fmt.Sprintf("node%d.properties", i)), t.TempDir(), ports))
	}
	if len(ports) != 6 {
		t.Fatalf("the example files use %d loopback ports, want 6 (Kafka and controller of 3 nodes): %v", len(ports), ports)
	}
	bs, err := brokerproc.StartConfigs(t, files)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, b := range bs {
		addrs = append(addrs, b.Addr)
	}
	waitFormed(t, addrs, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md, err := metadataOf(ctx, t, addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range md.Brokers {
		want := map[int32]string{1: "a", 2: "b", 3: "c"}[b.NodeID]
		if b.Rack == nil || *b.Rack != want {
			t.Errorf("broker %d rack %v, want %s", b.NodeID, b.Rack, want)
		}
	}
}
