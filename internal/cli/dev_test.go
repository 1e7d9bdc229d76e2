package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDevNodesPorts(t *testing.T) {
	nodes, err := devNodes(3, 19092, "127.0.0.1", "/d", []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id            int32
		k, c, h       int
		rack, dataDir string
	}{
		{1, 19092, 19093, 19094, "a", "/d/node1/data"},
		{2, 19102, 19103, 19104, "b", "/d/node2/data"},
		{3, 19112, 19113, 19114, "a", "/d/node3/data"},
	}
	for i, w := range want {
		n := nodes[i]
		if n.ID != w.id || n.KafkaPort != w.k || n.ControllerPort != w.c || n.HTTPPort != w.h || n.Rack != w.rack || n.DataDir != w.dataDir || n.ConfigFile != fmt.Sprintf("/d/node%d/server.properties", w.id) {
			t.Errorf("node %d = %+v, want %+v", i+1, n, w)
		}
	}
	if got := quorumVoters(nodes); got != "1@127.0.0.1:19093,2@127.0.0.1:19103,3@127.0.0.1:19113" {
		t.Errorf("voters = %s", got)
	}
	for _, bad := range []struct {
		n, port int
		racks   []string
	}{
		{0, 19092, nil}, {10, 19092, nil}, {3, 65520, nil}, {1, 0, nil}, {2, 19092, []string{"a b"}}, {2, 19092, []string{""}},
	} {
		if _, err := devNodes(bad.n, bad.port, "127.0.0.1", "/d", bad.racks); err == nil {
			t.Errorf("devNodes(%d, %d, %q) succeeded", bad.n, bad.port, bad.racks)
		}
	}
	if _, err := devNodes(9, 65535-82, "127.0.0.1", "/d", nil); err != nil {
		t.Errorf("9 nodes ending at port 65535: %v", err)
	}
}

// The example files in config/cluster/ are what `samsa dev cluster`
// writes for the default ports (racks a,b,c; data under samsa-cluster/):
// one source of truth for the keys and their explanations.
func TestDevClusterExampleFiles(t *testing.T) {
	nodes, err := devNodes(3, devDefaultBasePort, "127.0.0.1", "samsa-cluster", []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		path := filepath.Join("..", "..", "config", "cluster", fmt.Sprintf("node%d.properties", n.ID))
		got := serverProperties(n, nodes)
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to write it)", err)
		}
		if got != string(want) {
			t.Errorf("%s differs from what dev cluster writes:\n--- dev cluster ---\n%s\n--- file ---\n%s", path, got, want)
		}
	}
}

func TestDevClusterReusesOnlyItsOwnDir(t *testing.T) {
	dir := t.TempDir()
	three, _ := devNodes(3, 19092, "127.0.0.1", dir, nil)
	if err := prepareDevDir(three); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(three[0].DataDir, "keep")
	if err := os.WriteFile(marker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The same shape again (racks may change): reused, data kept.
	again, _ := devNodes(3, 19092, "127.0.0.1", dir, []string{"r1"})
	if err := prepareDevDir(again); err != nil {
		t.Fatalf("reusing the dir: %v", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("data of the earlier run gone: %v", err)
	}
	if v, ok, err := readProperty(again[1].ConfigFile, "broker.rack"); err != nil || !ok || v != "r1" {
		t.Errorf("rewritten broker.rack = %q, %v, %v", v, ok, err)
	}
	// Another shape: refused, naming the key, nothing rewritten.
	before, _ := os.ReadFile(three[0].ConfigFile)
	for _, other := range [][]devNode{
		must(devNodes(1, 19092, "127.0.0.1", dir, nil)),
		must(devNodes(3, 29092, "127.0.0.1", dir, nil)),
	} {
		err := prepareDevDir(other)
		if err == nil || !strings.Contains(err.Error(), "controller.quorum.voters") {
			t.Errorf("dir of another cluster shape: err = %v", err)
		}
	}
	if after, _ := os.ReadFile(three[0].ConfigFile); !bytes.Equal(before, after) {
		t.Error("a refused run rewrote server.properties")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestDevClusterRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"dev", "cluster", "--nodes", "0"},
		{"dev", "cluster", "--nodes", "10"},
		{"dev", "cluster", "--base-port", "70000"},
		{"dev", "cluster", "--log-level", "loud"},
		{"dev", "cluster", "--stop-timeout", "0s"},
		{"dev", "cluster", "--host", "0.0.0.0"},
		{"dev", "cluster", "--host", ""},
		{"dev", "cluster", "extra"},
	} {
		cmd := NewRootCommand(testDeps)
		cmd.SetArgs(append(args, "--dir", t.TempDir()))
		var o, e bytes.Buffer
		cmd.SetOut(&o)
		cmd.SetErr(&e)
		if err := cmd.Execute(); err == nil {
			t.Errorf("samsa %s succeeded", strings.Join(args, " "))
		}
	}
}
