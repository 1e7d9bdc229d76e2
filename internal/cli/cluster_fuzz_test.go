package cli

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzClusterQuorumFromResponse feeds any DescribeQuorum response a
// broker could send (every version) to the renderer's input: no panic,
// and lags are never negative.
func FuzzClusterQuorumFromResponse(f *testing.F) {
	resp := kmsg.NewPtrDescribeQuorumResponse()
	rt := kmsg.NewDescribeQuorumResponseTopic()
	rt.Topic = metadataTopic
	p := kmsg.NewDescribeQuorumResponseTopicPartition()
	p.LeaderID = 1
	r := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
	r.ReplicaID, r.LogEndOffset = 1, 10
	p.CurrentVoters = append(p.CurrentVoters, r)
	p.Observers = append(p.Observers, r)
	rt.Partitions = append(rt.Partitions, p)
	resp.Topics = append(resp.Topics, rt)
	for v := int16(0); v <= resp.MaxVersion(); v++ {
		resp.Version = v
		f.Add(v, resp.AppendTo(nil))
	}
	f.Fuzz(func(t *testing.T, version int16, data []byte) {
		resp := kmsg.NewPtrDescribeQuorumResponse()
		resp.Version = version
		if resp.ReadFrom(data) != nil {
			return
		}
		q, err := quorumFromResponse(resp, time.UnixMilli(1_000_000))
		if err != nil {
			return
		}
		for _, rs := range [][]quorumReplica{q.Voters, q.Observers} {
			for _, r := range rs {
				if r.Lag < -1 || r.LastFetchAgeMs < -1 || r.LastCaughtUpAgeMs < -1 {
					t.Fatalf("replica %+v", r)
				}
			}
		}
	})
}

// FuzzDevReadProperty reads any server.properties text: no panic, and a
// key found has no surrounding blanks.
func FuzzDevReadProperty(f *testing.F) {
	f.Add([]byte("# c\ncontroller.quorum.voters = 1@h:1\n!x\n"))
	f.Add([]byte("=\n==\n\x00"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "server.properties")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		v, ok, _ := readProperty(path, "controller.quorum.voters")
		if ok && len(v) > 0 && (v[0] == ' ' || v[len(v)-1] == ' ') {
			t.Fatalf("value %q not trimmed", v)
		}
	})
}
