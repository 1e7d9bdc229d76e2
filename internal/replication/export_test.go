package replication

import (
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/storage"
)

// LogFollower is a Follower over a real storage.Log: what the replica
// manager's follower partitions do, without the replica package.
type LogFollower struct {
	L *storage.Log
	// epoch is the leader epoch "from the image".
	epoch atomic.Int32
}

func NewLogFollower(l *storage.Log, leaderEpoch int32) *LogFollower {
	f := &LogFollower{L: l}
	f.epoch.Store(leaderEpoch)
	return f
}

func (f *LogFollower) SetLeaderEpoch(e int32) { f.epoch.Store(e) }

func (f *LogFollower) TopicPartition() (string, [16]byte, int32) {
	return f.L.Topic(), f.L.TopicID(), f.L.Partition()
}
func (f *LogFollower) LeaderEpoch() int32    { return f.epoch.Load() }
func (f *LogFollower) LogStartOffset() int64 { return f.L.LogStartOffset() }
func (f *LogFollower) LogEndOffset() int64   { return f.L.LogEndOffset() }
func (f *LogFollower) LatestEpoch() int32    { return f.L.LatestEpoch() }

func (f *LogFollower) AppendAsFollower(records []byte, leaderHW, leaderLogStart int64) error {
	if len(records) > 0 {
		if _, err := f.L.AppendAsFollower(records); err != nil {
			return err
		}
	}
	if err := f.L.MaybeIncrementLogStartOffset(min(leaderLogStart, f.L.LogEndOffset())); err != nil {
		return err
	}
	f.L.SetHighWatermark(min(leaderHW, f.L.LogEndOffset()))
	return nil
}

func (f *LogFollower) TruncateTo(offset int64) error { return f.L.TruncateTo(offset) }
func (f *LogFollower) TruncateFullyAndStartAt(offset int64) error {
	return f.L.TruncateFullyAndStartAt(offset)
}
func (f *LogFollower) EndOffsetForEpoch(epoch int32) (int32, int64) {
	return f.L.EndOffsetForEpoch(epoch)
}

// StepFetcher is a fetcher whose loop does not run: each Step builds the
// request the loop would send, lets answer play the leader, and applies
// the response as the loop would (OFFSET_OUT_OF_RANGE excepted: that
// needs ListOffsets to a real leader).
type StepFetcher struct{ ft *fetcher }

func NewStepFetcher(opts Options, fs []Follower) (*StepFetcher, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ft := newFetcher(opts, fetcherKey{leaderID: 1}, "unused:0")
	ft.client.Close() // never dialled
	ft.add(fs)
	return &StepFetcher{ft: ft}, nil
}

// Step runs one round at time now; false when no partition was ready.
func (s *StepFetcher) Step(now time.Time, answer func(*kmsg.FetchRequest) *kmsg.FetchResponse) bool {
	round, _ := s.ft.buildRequest(now)
	if round == nil {
		return false
	}
	s.ft.answer(round, answer(round.req))
	return true
}

func (s *StepFetcher) MaxLag() int64 { return s.ft.maxLag.Load() }
