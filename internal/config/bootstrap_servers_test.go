package config

import (
	"log/slog"
	"strings"
	"testing"
)

// TestConfigQuorumBootstrapServers: controller.quorum.bootstrap.servers
// (KIP-853 dynamic quorums) is not silently ignored. Without
// controller.quorum.voters the node refuses to start, naming the key and
// the one to use; with them it starts and warns that it is ignored.
func TestConfigQuorumBootstrapServers(t *testing.T) {
	_, err := Load("", []string{"controller.quorum.bootstrap.servers=127.0.0.1:9093"}, quiet)
	if err == nil {
		t.Fatal("controller.quorum.bootstrap.servers without voters was accepted")
	}
	for _, want := range []string{"controller.quorum.bootstrap.servers", "controller.quorum.voters"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	// A broker-only node too (it would otherwise fail on the voters).
	_, err = Load("", []string{"process.roles=broker", "node.id=4", "controller.quorum.bootstrap.servers=h:9093"}, quiet)
	if err == nil || !strings.Contains(err.Error(), "controller.quorum.bootstrap.servers") {
		t.Errorf("broker-only node with bootstrap servers only: %v", err)
	}

	var buf strings.Builder
	l := slog.New(slog.NewTextHandler(&buf, nil))
	c, err := Load("", []string{"node.id=1", "controller.quorum.voters=1@127.0.0.1:9093", "controller.quorum.bootstrap.servers=127.0.0.1:9093"}, l)
	if err != nil {
		t.Fatalf("voters and bootstrap servers: %v", err)
	}
	if len(c.Cluster.Voters) != 1 {
		t.Fatalf("voters %v", c.Cluster.Voters)
	}
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "controller.quorum.bootstrap.servers is ignored") {
		t.Fatalf("no warning logged: %q", buf.String())
	}
	// Unset: no warning.
	buf.Reset()
	if _, err := Load("", nil, l); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "bootstrap.servers") {
		t.Fatalf("warning without the key: %q", buf.String())
	}
}
