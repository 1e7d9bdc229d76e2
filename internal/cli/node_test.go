package cli

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"samsa/internal/server"
)

// testDeps runs `samsa start` in process, as cmd/samsa does.
var testDeps = Deps{RunNode: func(ctx context.Context, o NodeOptions) error {
	return server.Run(ctx, server.Options{ConfigFile: o.ConfigFile, Overrides: o.Overrides, Logger: o.Logger})
}}

// startNode starts a single-node cluster for a test and returns its Kafka
// address and the client version pin the CLI must use ("" for none). It is
// a real Samsa node (broker + controller, data in a temporary directory);
// SAMSA_TEST_TARGET=kfake runs the same tests against franz-go's kfake,
// to tell a CLI bug from a broker bug.
func startNode(t *testing.T) (addr, clientMaxVersion string) {
	t.Helper()
	if os.Getenv("SAMSA_TEST_TARGET") == "kfake" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c.ListenAddrs()[0], "4.0"
	}
	s, err := server.Start(context.Background(), server.Options{
		Overrides: []string{
			"listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
			"log.dirs=" + t.TempDir(), "http.listener=",
			"group.initial.rebalance.delay.ms=0",
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.KafkaAddr(), ""
}
