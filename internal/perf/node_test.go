package perf

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"samsa/internal/server"
)

// startNode starts a single-node cluster for a test and returns the client
// options that reach it: a real Samsa node with its data in a temporary
// directory, or franz-go's kfake with SAMSA_TEST_TARGET=kfake.
func startNode(t *testing.T) []kgo.Opt {
	t.Helper()
	if os.Getenv("SAMSA_TEST_TARGET") == "kfake" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.MaxVersions(kversion.V4_0_0())}
	}
	s, err := server.Start(context.Background(), server.Options{
		Overrides: []string{
			"listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
			"log.dirs=" + t.TempDir(), "http.listener=",
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return []kgo.Opt{kgo.SeedBrokers(s.KafkaAddr())}
}
