package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"samsa/internal/server"
)

// TestClusterLogDirs runs `cluster logdirs` and `cluster logdirs move`
// against a node with two log dirs: the partition is listed in its dir,
// a move (--wait) puts it in the other one, the JSON form has
// kafka-log-dirs.sh's shape, and a dir that is not a log dir fails with
// LOG_DIR_NOT_FOUND. It runs against a Samsa node whatever
// SAMSA_TEST_TARGET says (kfake serves neither API).
func TestClusterLogDirs(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	s, err := server.Start(context.Background(), server.Options{
		Overrides: []string{
			"listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
			"log.dirs=" + a + "," + b, "http.listener=",
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	c := &cluster{addr: s.KafkaAddr()}
	c.mustRun(t, "", "topic", "create", "ld", "-p", "1")
	c.mustRun(t, "hello\nworld\n", "topic", "produce", "ld")

	var rep logDirsReport
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "cluster", "logdirs", "--format", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Version != 1 || len(rep.Brokers) != 1 || len(rep.Brokers[0].LogDirs) != 2 {
		t.Fatalf("report: %+v", rep)
	}
	from := ""
	for _, d := range rep.Brokers[0].LogDirs {
		if d.Error != nil || d.TotalBytes <= 0 || d.UsableBytes < 0 {
			t.Errorf("dir %+v", d)
		}
		for _, p := range d.Partitions {
			if p.Partition == "ld-0" && !p.IsFuture && p.Size > 0 {
				from = d.LogDir
			}
		}
	}
	if from == "" {
		t.Fatalf("ld-0 not listed: %+v", rep)
	}
	to := a
	if filepath.Clean(from) == filepath.Clean(a) {
		to = b
	}
	out := c.mustRun(t, "", "cluster", "logdirs", "move", "--broker", "1", "--topic", "ld", "--partition", "0", "--dir", to, "--wait")
	if !strings.Contains(out, "ld-0 is in "+to) {
		t.Errorf("move:\n%s", out)
	}
	out = c.mustRun(t, "", "cluster", "logdirs", "--broker", "1", "--topic", "ld")
	if !strings.Contains(out, "BROKER  DIR") || !strings.Contains(out, to) || !strings.Contains(out, "OFFSET-LAG  FUTURE") {
		t.Errorf("describe after the move:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, " ld ") && !strings.Contains(line, to) {
			t.Errorf("replica still listed elsewhere: %q", line)
		}
	}
	out, _, err = c.run(t, "", "cluster", "logdirs", "move", "--broker", "1", "--topic", "ld", "--partition", "0", "--dir", t.TempDir())
	if !errors.Is(err, errReported) || !strings.Contains(out, "LOG_DIR_NOT_FOUND") {
		t.Errorf("unknown dir: %v\n%s", err, out)
	}
	if _, _, err := c.run(t, "", "cluster", "logdirs", "move", "--broker", "1"); err == nil {
		t.Error("move without --topic accepted")
	}
}
