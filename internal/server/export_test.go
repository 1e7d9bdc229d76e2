package server

import (
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"

	"samsa/internal/storage"
)

// Crash stops the node like a kill -9 would as far as the cluster sees:
// no controlled shutdown, heartbeats just stop (then the node closes its
// files cleanly, which a crash would not).
func (s *Server) Crash() error {
	if s.life != nil {
		s.life.stopHeartbeats()
		s.life = nil
	}
	return s.Close()
}

// LogForTest is this node's log of the partition (any role).
func (s *Server) LogForTest(topic string, partition int32) (*storage.Log, bool) {
	return s.logs.Log(topic, partition)
}

// MetricsText is what /metrics would answer now, in the text format.
func (s *Server) MetricsText(t testing.TB) string {
	t.Helper()
	mfs, err := s.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// FollowerReadsForTest is the consumer fetches this node served as a
// follower (KIP-392).
func (s *Server) FollowerReadsForTest() int64 { return s.replicas.FollowerReads() }

// FetcherIndexesForTest are the indexes of this node's follower fetchers
// (num.replica.fetchers).
func (s *Server) FetcherIndexesForTest() []int {
	var out []int
	for _, st := range s.fetchers.Fetchers() {
		out = append(out, st.Index)
	}
	return out
}

// LogDirMoveRateForTest is the rate this node's log dir moves copy at
// (replica.alter.log.dirs.io.max.bytes.per.second).
func (s *Server) LogDirMoveRateForTest() int64 { return s.logs.LogDirMoveRate() }
