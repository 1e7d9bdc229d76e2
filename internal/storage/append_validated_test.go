package storage

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// AppendValidatedAsLeader skips only the CRC: every framing, count and
// producer-field defect AppendAsLeader refuses is refused too, and
// nothing is stored.
func TestLogAppendValidatedRechecksAllButCRC(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{MaxMessageBytes: 2000})
	good := makeBatch(t, batchSpec{n: 2, valueSize: 10})
	legacy := bytes.Clone(good)
	legacy[16] = 1
	countLie := bytes.Clone(good)
	binary.BigEndian.PutUint32(countLie[57:], 5) // 2 records, lastOffsetDelta 1
	control := bytes.Clone(good)
	control[22] |= 0x20
	noSeq := makeBatch(t, batchSpec{n: 1, pid: 7, seq: 0})
	binary.BigEndian.PutUint32(noSeq[53:], 0xffffffff)
	for _, b := range [][]byte{countLie, control, noSeq} { // the defects are under a right CRC
		binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	}
	shortLen := bytes.Clone(good)
	binary.BigEndian.PutUint32(shortLen[8:], 10)
	for _, tc := range []struct {
		name    string
		records []byte
		want    error
	}{
		{"torn", append(bytes.Clone(good), good[:30]...), ErrCorruptMessage},
		{"batch length", shortLen, ErrCorruptMessage},
		{"magic 1", legacy, ErrUnsupportedMagic},
		{"record count", countLie, ErrCorruptMessage},
		{"control", control, ErrInvalidRecord},
		{"idempotent without sequence", noSeq, ErrInvalidRecord},
		{"too large", makeBatch(t, batchSpec{n: 1, valueSize: 3000}), ErrMessageTooLarge},
		{"empty", nil, ErrInvalidRecord},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.AppendValidatedAsLeader(tc.records, 0); !isErr(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if _, err := l.AppendAsLeader(bytes.Clone(tc.records), 0); !isErr(err, tc.want) {
				t.Fatalf("AppendAsLeader: err %v, want %v", err, tc.want)
			}
			if l.LogEndOffset() != 0 {
				t.Fatalf("log end offset moved to %d", l.LogEndOffset())
			}
		})
	}
	info, err := l.AppendValidatedAsLeader(append(bytes.Clone(good), good...), 3)
	if err != nil || info.FirstOffset != 0 || info.LastOffset != 3 {
		t.Fatalf("%+v %v", info, err)
	}
	hs := readAll(t, l, 0)
	if len(hs) != 2 || hs[1].BaseOffset != 2 || hs[1].PartitionLeaderEpoch != 3 {
		t.Fatalf("stored %+v", hs)
	}
}

// Nobody waiting on Changed: moving the high watermark allocates nothing
// (it used to make a channel per notification), and a waiter that comes
// later is still woken.
func TestLogChangedAllocatesOnlyForWaiters(t *testing.T) {
	m := openTestManager(t, t.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{})
	mustAppend(t, l, makeBatch(t, batchSpec{n: 2}))
	hw := int64(0)
	if a := testing.AllocsPerRun(100, func() {
		hw = 2 - hw // 0, 2, 0, ...: a move every time
		l.SetHighWatermark(hw)
	}); a != 0 {
		t.Fatalf("%v allocations per high watermark move with no waiter", a)
	}
	ch := l.Changed()
	if ch2 := l.Changed(); ch2 != ch {
		t.Fatal("two waiters of one change got different channels")
	}
	l.SetHighWatermark(1)
	<-ch
	if l.Changed() == ch {
		t.Fatal("a closed channel handed out again")
	}
}
