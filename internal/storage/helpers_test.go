package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"samsa/internal/record"
)

func testLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openTestManager(t testing.TB, dir string, mod func(*ManagerOptions)) *Manager {
	t.Helper()
	opts := ManagerOptions{Dirs: []string{dir}, Logger: testLogger()}
	if mod != nil {
		mod(&opts)
	}
	m, err := OpenManager(opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// abandon simulates kill -9: stop the loop and drop the files without
// flushing, checkpointing or writing the clean-shutdown marker.
func (m *Manager) abandon() {
	m.mu.Lock()
	m.mu.closed = true
	m.mu.Unlock()
	close(m.stop)
	<-m.done
	<-m.cleanerDone
	<-m.copierDone
	logs := m.Logs()
	for _, f := range m.mu.futures {
		if f.log != nil {
			logs = append(logs, f.log)
		}
	}
	for _, l := range logs {
		l.mu.Lock()
		l.mu.closed = true
		for _, s := range l.mu.segments {
			s.close()
		}
		l.mu.Unlock()
	}
}

type batchSpec struct {
	n         int   // records
	valueSize int   // bytes per value
	ts        int64 // timestamp of the first record; others +i
	pid       int64 // > 0: idempotent
	epoch     int16
	seq       int32
	codec     record.Compression
}

func makeBatch(t testing.TB, s batchSpec) []byte {
	t.Helper()
	if s.n == 0 {
		s.n = 1
	}
	recs := make([]record.Record, s.n)
	for i := range recs {
		recs[i] = record.Record{
			Timestamp: s.ts + int64(i),
			Key:       []byte(fmt.Sprintf("k%d", i)),
			Value:     bytes.Repeat([]byte{'v'}, s.valueSize),
		}
	}
	o := record.BuildOptions{Compression: s.codec}
	if s.pid > 0 {
		o.Idempotent, o.ProducerID, o.ProducerEpoch, o.BaseSequence = true, s.pid, s.epoch, s.seq
	}
	b, err := record.Build(o, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustAppend(t testing.TB, l *Log, b []byte) AppendInfo {
	t.Helper()
	info, err := l.AppendAsLeader(b, 1)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return info
}

// readAll reads every batch from offset from to the log end and returns
// their headers.
func readAll(t testing.TB, l *Log, from int64) []record.Header {
	t.Helper()
	var hs []record.Header
	for from < l.LogEndOffset() {
		b, err := l.Read(from, 64<<10, l.LogEndOffset(), true)
		if err != nil {
			t.Fatalf("read %d: %v", from, err)
		}
		if len(b) == 0 {
			t.Fatalf("read %d: no bytes before the log end %d", from, l.LogEndOffset())
		}
		err = record.Split(b, func(_ []byte, h record.Header) error {
			hs = append(hs, h)
			from = h.NextOffset()
			return nil
		})
		if err != nil {
			t.Fatalf("read %d: %v", from, err)
		}
	}
	return hs
}

func isErr(err, target error) bool { return errors.Is(err, target) }
