package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"samsa/internal/server"
)

// The targets run each in a process of its own by default, as brokers do:
// the clients' heap, kfake's in-memory log and Samsa's runtime do not
// share one garbage collector, and what one target leaves behind (kfake's
// records, Samsa's dirty pages) weighs on the other only through the
// machine, not through the other's heap. The process is this binary
// again, started with --serve; it prints "addr HOST:PORT" and serves
// until its standard input closes. --in-process keeps both in the bench's
// own process (needed for --cpuprofile to see the brokers).

// startTarget starts target name and returns its Kafka address and a
// function that stops it. dir is the Samsa node's data directory.
func startTarget(ctx context.Context, name, dir string, inProcess bool) (addr string, stop func(), err error) {
	if inProcess {
		return serveTarget(ctx, name, dir)
	}
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, "--serve", name, "--dir", dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-lines:
		if a, found := strings.CutPrefix(line, "addr "); ok && found {
			return a, stop, nil
		}
		stop()
		return "", nil, fmt.Errorf("%s process: unexpected first line %q", name, line)
	case <-time.After(60 * time.Second):
		stop()
		return "", nil, fmt.Errorf("%s process: no address within 60s", name)
	case <-ctx.Done():
		stop()
		return "", nil, ctx.Err()
	}
}

// serveTarget starts target name in this process.
func serveTarget(ctx context.Context, name, dir string) (string, func(), error) {
	switch name {
	case "samsa":
		s, err := server.Start(ctx, server.Options{
			Overrides: []string{
				"listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
				"log.dirs=" + dir, "http.listener=",
			},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			return "", nil, fmt.Errorf("start samsa: %w", err)
		}
		return s.KafkaAddr(), func() { s.Close() }, nil
	case "kfake":
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return "", nil, fmt.Errorf("start kfake: %w", err)
		}
		return c.ListenAddrs()[0], c.Close, nil
	}
	return "", nil, fmt.Errorf("unknown target %q: want samsa or kfake", name)
}

// serveMain is the --serve process: it serves target until standard
// input closes (the bench ended or died) or a signal arrives.
func serveMain(target, dir string) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	addr, stop, err := serveTarget(ctx, target, dir)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Printf("addr %s\n", addr)
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return nil
}
