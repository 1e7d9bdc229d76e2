package storage

import (
	"math"
	"testing"

	"samsa/internal/record"
)

func TestLogProducerIdempotence(t *testing.T) {
	type step struct {
		name      string
		spec      batchSpec
		want      error
		duplicate bool
		first     int64 // expected FirstOffset when no error
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"in order then retries", []step{
			{"seq 0", batchSpec{pid: 7, n: 2, seq: 0}, nil, false, 0},
			{"seq 2", batchSpec{pid: 7, n: 3, seq: 2}, nil, false, 2},
			{"retry of seq 0", batchSpec{pid: 7, n: 2, seq: 0}, nil, true, 0},
			{"retry of seq 2", batchSpec{pid: 7, n: 3, seq: 2}, nil, true, 2},
			{"seq 5", batchSpec{pid: 7, n: 1, seq: 5}, nil, false, 5},
		}},
		{"gap", []step{
			{"seq 0", batchSpec{pid: 7, n: 2, seq: 0}, nil, false, 0},
			{"seq 3", batchSpec{pid: 7, n: 1, seq: 3}, ErrOutOfOrderSequence, false, 0},
			{"seq 1 overlaps", batchSpec{pid: 7, n: 1, seq: 1}, ErrOutOfOrderSequence, false, 0},
		}},
		{"fenced epoch", []step{
			{"epoch 2", batchSpec{pid: 7, epoch: 2, n: 1, seq: 0}, nil, false, 0},
			{"epoch 1", batchSpec{pid: 7, epoch: 1, n: 1, seq: 1}, ErrInvalidProducerEpoch, false, 0},
			{"epoch 3 at seq 4", batchSpec{pid: 7, epoch: 3, n: 1, seq: 4}, ErrOutOfOrderSequence, false, 0},
			{"epoch 3 at seq 0", batchSpec{pid: 7, epoch: 3, n: 1, seq: 0}, nil, false, 1},
			{"epoch 2 again", batchSpec{pid: 7, epoch: 2, n: 1, seq: 1}, ErrInvalidProducerEpoch, false, 0},
		}},
		{"unknown producer at any sequence", []step{
			{"seq 40", batchSpec{pid: 9, n: 1, seq: 40}, nil, false, 0},
			{"seq 41", batchSpec{pid: 9, n: 1, seq: 41}, nil, false, 1},
		}},
		{"sequence wraps", []step{
			{"max", batchSpec{pid: 7, n: 1, seq: math.MaxInt32}, nil, false, 0},
			{"0", batchSpec{pid: 7, n: 1, seq: 0}, nil, false, 1},
		}},
		{"only the last five batches are remembered", []step{
			{"0", batchSpec{pid: 7, seq: 0}, nil, false, 0},
			{"1", batchSpec{pid: 7, seq: 1}, nil, false, 1},
			{"2", batchSpec{pid: 7, seq: 2}, nil, false, 2},
			{"3", batchSpec{pid: 7, seq: 3}, nil, false, 3},
			{"4", batchSpec{pid: 7, seq: 4}, nil, false, 4},
			{"retry 0", batchSpec{pid: 7, seq: 0}, nil, true, 0},
			{"5", batchSpec{pid: 7, seq: 5}, nil, false, 5},
			{"retry 0 forgotten", batchSpec{pid: 7, seq: 0}, ErrOutOfOrderSequence, false, 0},
			{"retry 1", batchSpec{pid: 7, seq: 1}, nil, true, 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := openTestManager(t, t.TempDir(), nil)
			defer m.Close()
			l, _ := m.CreateLog("t", 0, [16]byte{}, Config{})
			for _, s := range tc.steps {
				leo := l.LogEndOffset()
				info, err := l.AppendAsLeader(makeBatch(t, s.spec), 0)
				if !isErr(err, s.want) || (s.want == nil && err != nil) {
					t.Fatalf("%s: err %v, want %v", s.name, err, s.want)
				}
				if err != nil {
					if l.LogEndOffset() != leo {
						t.Fatalf("%s: rejected batch appended", s.name)
					}
					continue
				}
				if info.Duplicate != s.duplicate || info.FirstOffset != s.first {
					t.Fatalf("%s: %+v, want duplicate=%v first=%d", s.name, info, s.duplicate, s.first)
				}
				if s.duplicate && l.LogEndOffset() != leo {
					t.Fatalf("%s: duplicate appended", s.name)
				}
			}
		})
	}
}

func TestLogProducerStateSurvivesRestart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		clean bool
		roll  bool
	}{{"clean", true, false}, {"kill", false, false}, {"kill after roll", false, true}, {"clean after roll", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			m := openTestManager(t, dir, nil)
			cfg := Config{}
			if tc.roll {
				cfg.SegmentBytes = 500
			}
			l, _ := m.CreateLog("t", 0, [16]byte{}, cfg)
			var seq int32
			for i := 0; i < 12; i++ {
				mustAppend(t, l, makeBatch(t, batchSpec{pid: 7, epoch: 1, n: 2, seq: seq, valueSize: 20}))
				seq += 2
				mustAppend(t, l, makeBatch(t, batchSpec{pid: 8, epoch: 4, n: 1, seq: int32(i), valueSize: 20}))
			}
			if snaps, _ := listSnapshots(l.Dir()); tc.roll && len(snaps) == 0 {
				t.Fatal("no producer snapshot written at roll")
			}
			if tc.clean {
				if err := m.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				m.abandon()
			}
			m = openTestManager(t, dir, nil)
			defer m.Close()
			l, _ = m.Log("t", 0)
			leo := l.LogEndOffset()
			if leo != 36 {
				t.Fatalf("leo %d", leo)
			}
			info, err := l.AppendAsLeader(makeBatch(t, batchSpec{pid: 7, epoch: 1, n: 2, seq: seq - 2, valueSize: 20}), 0)
			if err != nil || !info.Duplicate || info.FirstOffset != 33 {
				t.Fatalf("retry after restart: %+v %v", info, err)
			}
			if _, err := l.AppendAsLeader(makeBatch(t, batchSpec{pid: 7, epoch: 1, n: 1, seq: seq + 1}), 0); !isErr(err, ErrOutOfOrderSequence) {
				t.Fatalf("gap after restart: %v", err)
			}
			if _, err := l.AppendAsLeader(makeBatch(t, batchSpec{pid: 8, epoch: 3, n: 1, seq: 12}), 0); !isErr(err, ErrInvalidProducerEpoch) {
				t.Fatalf("old epoch after restart: %v", err)
			}
			if info := mustAppend(t, l, makeBatch(t, batchSpec{pid: 8, epoch: 4, n: 1, seq: 12})); info.FirstOffset != 36 || info.Duplicate {
				t.Fatalf("next after restart: %+v", info)
			}
		})
	}
}

func TestProducerSnapshotRoundTrip(t *testing.T) {
	ps := producerState{entries: map[int64]*producerEntry{}}
	for i := int32(0); i < 8; i++ {
		h := record.Header{ProducerID: 3, ProducerEpoch: 2, BaseSequence: i * 2, LastOffsetDelta: 1, BaseOffset: int64(i) * 2}
		ps.apply(&h, nil)
	}
	h := record.Header{ProducerID: 1 << 40, ProducerEpoch: 0, BaseSequence: 0, BaseOffset: 100}
	ps.apply(&h, nil)
	b := ps.encode()
	m, err := decodeProducerSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if e := m[3]; e == nil || e.epoch != 2 || len(e.batches) != 5 || e.batches[4] != (producerBatch{14, 15, 14, 15}) {
		t.Fatalf("%+v", m[3])
	}
	if len(m) != 2 || m[1<<40].batches[0].firstOffset != 100 {
		t.Fatalf("%+v", m)
	}
	b[len(b)-1] ^= 1
	if _, err := decodeProducerSnapshot(b); err == nil {
		t.Fatal("corrupt snapshot accepted")
	}
}
