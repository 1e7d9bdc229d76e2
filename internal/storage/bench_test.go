package storage

import (
	"bytes"
	"fmt"
	"testing"

	"samsa/internal/record"
)

// producerBatch16K builds a ~16 KiB batch of records of valueSize bytes,
// as a producer with batch.size=16384 would.
func producerBatch16K(b *testing.B, valueSize int) []byte {
	n := max(1, 16<<10/(valueSize+10))
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Timestamp: 1, Value: bytes.Repeat([]byte{'x'}, valueSize)}
	}
	batch, err := record.Build(record.BuildOptions{}, recs)
	if err != nil {
		b.Fatal(err)
	}
	return batch
}

func BenchmarkLogAppendAsLeader(b *testing.B) {
	for _, vs := range []int{100, 1024} {
		for _, fm := range []int64{0, 1} {
			b.Run(fmt.Sprintf("record=%dB/flush.messages=%d", vs, fm), func(b *testing.B) {
				m := openTestManager(b, b.TempDir(), nil)
				defer m.Close()
				l, _ := m.CreateLog("t", 0, [16]byte{}, Config{FlushMessages: fm, SegmentBytes: 64 << 20})
				batch := producerBatch16K(b, vs)
				b.ReportAllocs()
				b.SetBytes(int64(len(batch)))
				// 8 producers per CPU, so concurrent appends can share fsyncs.
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					own := bytes.Clone(batch)
					for pb.Next() {
						if _, err := l.AppendAsLeader(own, 0); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.ReportMetric(float64(l.FsyncCount())/float64(b.N), "fsyncs/op")
			})
		}
	}
}

func BenchmarkLogRead(b *testing.B) {
	m := openTestManager(b, b.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{})
	batch := producerBatch16K(b, 100)
	for i := 0; i < 2000; i++ {
		if _, err := l.AppendAsLeader(bytes.Clone(batch), 0); err != nil {
			b.Fatal(err)
		}
	}
	leo := l.LogEndOffset()
	b.ReportAllocs()
	b.SetBytes(1 << 20)
	i := int64(0)
	for b.Loop() {
		off := (i * 7919) % leo
		i++
		out, err := l.Read(off, 1<<20, leo, true)
		if err != nil || len(out) == 0 {
			b.Fatal(err)
		}
	}
}

// BenchmarkLogAppendManySegments appends one-record batches to a log
// whose segment.bytes rolls a segment per batch, after 10 or 10,000
// segments were written: the cost of an append (with its roll) must not
// grow with the number of segments (issue 9: it went from 2.3 ms to 16 ms
// per append at ~6,600 segments). Run it with -benchtime=2000x so both
// cases add the same number of segments.
func BenchmarkLogAppendManySegments(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		b.Run(fmt.Sprintf("segments=%d", n), func(b *testing.B) {
			m := openTestManager(b, b.TempDir(), nil)
			defer m.Close()
			l, _ := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: 14})
			writeTinySegments(b, l, n)
			batch, err := record.Build(record.BuildOptions{}, []record.Record{{Timestamp: 1, Value: []byte("value")}})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(batch)))
			b.ResetTimer()
			for b.Loop() {
				if _, err := l.AppendAsLeader(batch, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLogAppendAsFollower: one fetcher appending 16 KiB batches of
// a leader (offsets assigned by the leader: the base offset is set per
// batch, outside the CRC).
func BenchmarkLogAppendAsFollower(b *testing.B) {
	m := openTestManager(b, b.TempDir(), nil)
	defer m.Close()
	l, _ := m.CreateLog("t", 0, [16]byte{}, Config{SegmentBytes: 64 << 20})
	batch := producerBatch16K(b, 1024)
	h, err := record.ParseHeader(batch)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	for i := 0; i < b.N; i++ {
		record.SetBaseOffset(batch, int64(i)*int64(h.RecordCount))
		if _, err := l.AppendAsFollower(batch); err != nil {
			b.Fatal(err)
		}
	}
}
