package cli

import (
	"bufio"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestStartRunsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	cmd := NewRootCommand(testDeps)
	cmd.SetArgs([]string{"start",
		"-o", "listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"-o", "log.dirs=" + t.TempDir(), "-o", "http.listener=", "--log-level", "info"})
	cmd.SetErr(pw)
	done := make(chan error, 1)
	go func() {
		err := cmd.ExecuteContext(ctx)
		pw.Close()
		done <- err
	}()

	// The Kafka listener's address comes first; the node serves
	// everything once it logs "samsa started".
	bound := regexp.MustCompile(`msg="listener bound" listener=PLAINTEXT addr=(\S+)`)
	addrCh := make(chan string, 1)
	logs := make(chan string, 1)
	go func() {
		var all strings.Builder
		var addr string
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if m := bound.FindStringSubmatch(sc.Text()); m != nil {
				addr = m[1]
			}
			if strings.Contains(sc.Text(), `msg="samsa started"`) {
				addrCh <- addr
			}
		}
		logs <- all.String()
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case err := <-done:
		t.Fatalf("start returned before binding: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no listener bound within 30s")
	}

	c := &cluster{addr: addr}
	if out := c.mustRun(t, "", "cluster", "info"); !strings.Contains(out, addr[strings.LastIndex(addr, ":")+1:]) {
		t.Errorf("cluster info does not show the bound port %s:\n%s", addr, out)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("start: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("start did not stop after cancellation")
	}
	if l := <-logs; !strings.Contains(l, "samsa stopped cleanly") {
		t.Errorf("no clean-stop log line:\n%s", l)
	}
}

func TestStartRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"start", "-o", "novalue"},
		{"start", "--log-level", "loud"},
		{"start", "extra-arg"},
	} {
		cmd := NewRootCommand(testDeps)
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.Execute(); err == nil {
			t.Errorf("samsa %s succeeded", strings.Join(args, " "))
		}
	}
}
