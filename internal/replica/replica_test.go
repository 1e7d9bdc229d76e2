package replica

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"samsa/internal/config"
	"samsa/internal/metadata"
	"samsa/internal/record"
	"samsa/internal/storage"
)

func TestReplicaHasCleanupPolicy(t *testing.T) {
	for _, tc := range []struct {
		value, policy string
		want          bool
	}{
		{"delete", "delete", true},
		{"compact", "delete", false},
		{"compact, delete", "delete", true},
		{"compact,delete", "compact", true},
		{"", "delete", false},
	} {
		if got := HasCleanupPolicy(tc.value, tc.policy); got != tc.want {
			t.Errorf("HasCleanupPolicy(%q, %q) = %v", tc.value, tc.policy, got)
		}
	}
}

// testPartition opens a one-partition topic "t" with the topic config
// overrides on a fresh data dir and returns its partition, led by this
// broker (node 1). props are broker config overrides.
func testPartition(t *testing.T, overrides map[string]string, props ...string) *Partition {
	t.Helper()
	return testPartitionTB(t, overrides, props...)
}

func testPartitionTB(t testing.TB, overrides map[string]string, props ...string) *Partition {
	t.Helper()
	cfg, err := config.Load("", props, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := storage.OpenManager(storage.ManagerOptions{Dirs: []string{t.TempDir()}, DefaultConfig: StorageConfig(cfg, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = logs.Close() })
	m := New(1, logs, cfg, nil)
	topic := &metadata.Topic{Name: "t", ID: metadata.UUID{1}, Configs: overrides,
		Partitions: []metadata.Partition{{ID: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}}
	im := metadata.Empty("test")
	im.Topics = map[string]*metadata.Topic{"t": topic}
	im.TopicsByID = map[metadata.UUID]*metadata.Topic{topic.ID: topic}
	m.Apply(nil, im)
	p, err := m.Partition("t", 0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func buildBatch(t *testing.T, o record.BuildOptions, recs ...record.Record) []byte {
	t.Helper()
	b, err := record.Build(o, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withCRC recomputes the CRC of a batch edited in place.
func withCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// TestReplicaAppendRejectsUndecodable: batches with a valid CRC whose
// records cannot be decoded, or lie about their count, are refused with
// Kafka's code and leave the log untouched, also when an earlier batch of
// the request was fine.
func TestReplicaAppendRejectsUndecodable(t *testing.T) {
	now := time.Now().UnixMilli()
	rec := func(k string) record.Record { return record.Record{Timestamp: now, Key: []byte(k), Value: []byte("v")} }
	good := buildBatch(t, record.BuildOptions{}, rec("a"))
	codec := func(c uint16) []byte {
		b := buildBatch(t, record.BuildOptions{}, rec("a"))
		binary.BigEndian.PutUint16(b[21:], c)
		return withCRC(b)
	}
	count := func(n uint32) []byte {
		b := buildBatch(t, record.BuildOptions{}, rec("a"), rec("b"), rec("c"))
		binary.BigEndian.PutUint32(b[23:], n-1)
		binary.BigEndian.PutUint32(b[57:], n)
		return withCRC(b)
	}
	garbage := buildBatch(t, record.BuildOptions{}, rec("a"))
	garbage[61+3] = 0xff // inside the timestamp delta varint...
	garbage[61+4] = 0xff
	garbage = withCRC(garbage)
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"codec 5", codec(5), storage.ErrCorruptMessage},
		{"codec 7", codec(7), storage.ErrCorruptMessage},
		{"gzip flag on plain records", codec(1), storage.ErrCorruptMessage},
		{"count 1 with 3 records", count(1), storage.ErrInvalidRecord},
		{"count 5 with 3 records", count(5), storage.ErrInvalidRecord},
		{"garbage varint", garbage, storage.ErrInvalidRecord},
		{"good then bad", append(append([]byte{}, good...), codec(6)...), storage.ErrCorruptMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPartition(t, nil)
			if _, err := p.Append(tc.b, -1); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if leo := p.log.LogEndOffset(); leo != 0 {
				t.Fatalf("log end offset %d: something was stored", leo)
			}
			if _, err := p.Append(buildBatch(t, record.BuildOptions{}, rec("a")), -1); err != nil {
				t.Fatalf("valid batch after: %v", err)
			}
		})
	}
}

// TestReplicaAppendCompactedKeys: a keyless record is INVALID_RECORD on
// a compacted topic, in any codec and whatever else is in the request;
// an empty key is a key; a compacted topic's undecodable batch is refused
// too (it used to slip past the key check).
func TestReplicaAppendCompactedKeys(t *testing.T) {
	now := time.Now().UnixMilli()
	p := testPartition(t, map[string]string{"cleanup.policy": "compact"})
	keyed := buildBatch(t, record.BuildOptions{}, record.Record{Timestamp: now, Key: []byte("a")}, record.Record{Timestamp: now, Key: []byte{}})
	keyless := buildBatch(t, record.BuildOptions{Compression: record.CompressionZstd}, record.Record{Timestamp: now, Key: []byte("a")}, record.Record{Timestamp: now})
	if _, err := p.Append(append(append([]byte{}, keyed...), keyless...), -1); !errors.Is(err, storage.ErrInvalidRecord) {
		t.Fatalf("keyless: %v", err)
	}
	broken := buildBatch(t, record.BuildOptions{}, record.Record{Timestamp: now})
	binary.BigEndian.PutUint16(broken[21:], uint16(record.CompressionGzip))
	if _, err := p.Append(withCRC(broken), -1); err == nil {
		t.Fatal("undecodable keyless batch stored")
	}
	if leo := p.log.LogEndOffset(); leo != 0 {
		t.Fatalf("log end offset %d", leo)
	}
	if _, err := p.Append(keyed, -1); err != nil {
		t.Fatal(err)
	}
}

// TestReplicaAppendCompressionBomb: a small batch inflating far beyond
// message.max.decompressed.bytes is INVALID_RECORD, on plain and
// compacted topics.
func TestReplicaAppendCompressionBomb(t *testing.T) {
	now := time.Now().UnixMilli()
	value := make([]byte, 8<<20)
	for _, c := range []record.Compression{record.CompressionZstd, record.CompressionGzip, record.CompressionLZ4, record.CompressionSnappy} {
		bomb := buildBatch(t, record.BuildOptions{Compression: c}, record.Record{Timestamp: now, Key: []byte("k"), Value: value})
		for _, policy := range []string{"delete", "compact"} {
			p := testPartition(t, map[string]string{"cleanup.policy": policy}, "message.max.decompressed.bytes=4194304")
			if _, err := p.Append(bomb, -1); !errors.Is(err, storage.ErrInvalidRecord) {
				t.Fatalf("%s %s: %d bytes inflating to 8 MiB: %v", c, policy, len(bomb), err)
			}
			if leo := p.log.LogEndOffset(); leo != 0 {
				t.Fatalf("log end offset %d", leo)
			}
		}
	}
}

// TestReplicaAppendTimestamps: message.timestamp.before/after.max.ms
// bound CreateTime timestamps (INVALID_TIMESTAMP), not LogAppendTime
// ones; a producer claiming LogAppendTime on a CreateTime topic is
// refused; a header max timestamp that disagrees with the records is
// corrected.
func TestReplicaAppendTimestamps(t *testing.T) {
	now := time.Now().UnixMilli()
	b := func(ts ...int64) []byte {
		recs := make([]record.Record, len(ts))
		for i := range ts {
			recs[i] = record.Record{Timestamp: ts[i], Value: []byte("v")}
		}
		return buildBatch(t, record.BuildOptions{}, recs...)
	}
	p := testPartition(t, map[string]string{"message.timestamp.before.max.ms": "60000"})
	for _, tc := range []struct {
		name  string
		batch []byte
		want  error
	}{
		{"too old", b(now, now-120_000), storage.ErrInvalidTimestamp},
		{"too far ahead (Kafka 4 default: 1 hour)", b(now + 2*3600_000), storage.ErrInvalidTimestamp},
		{"producer LogAppendTime", buildBatch(t, record.BuildOptions{LogAppendTime: true, LogAppendTimestamp: now}, record.Record{Timestamp: now}), storage.ErrInvalidTimestamp},
		{"within bounds", b(now-30_000, now+60_000), nil},
		{"no timestamp", b(-1), nil},
	} {
		if _, err := p.Append(tc.batch, -1); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}

	lat := testPartition(t, map[string]string{"message.timestamp.type": "LogAppendTime", "message.timestamp.before.max.ms": "0"})
	if _, err := lat.Append(b(now-120_000), -1); err != nil {
		t.Fatalf("LogAppendTime topic: %v", err)
	}

	// A header claiming a max timestamp the records do not have.
	p = testPartition(t, nil)
	lying := b(now-5, now-3)
	binary.BigEndian.PutUint64(lying[35:], uint64(now+999))
	if _, err := p.Append(withCRC(lying), -1); err != nil {
		t.Fatal(err)
	}
	stored, err := p.log.Read(0, 1<<20, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	h, err := record.Validate(stored)
	if err != nil || h.MaxTimestamp != now-3 {
		t.Fatalf("stored max timestamp %d (want %d), %v", h.MaxTimestamp, now-3, err)
	}
}

// TestReplicaAppendRecompresses: compression.type other than producer
// stores batches in that codec, with the records, offsets and producer
// fields of the producer's batch.
func TestReplicaAppendRecompresses(t *testing.T) {
	now := time.Now().UnixMilli()
	recs := []record.Record{
		{Timestamp: now, Key: []byte("a"), Value: bytes.Repeat([]byte("x"), 500), Headers: []record.RecordHeader{{Key: "h", Value: []byte("v")}}},
		{Timestamp: now + 1, Value: []byte("y")},
	}
	for _, tc := range []struct {
		topic string
		want  record.Compression
	}{
		{"zstd", record.CompressionZstd},
		{"lz4", record.CompressionLZ4},
		{"gzip", record.CompressionGzip},
		{"snappy", record.CompressionSnappy},
		{"uncompressed", record.CompressionNone},
		{"producer", record.CompressionGzip},
	} {
		t.Run(tc.topic, func(t *testing.T) {
			p := testPartition(t, map[string]string{"compression.type": tc.topic, "compression.gzip.level": "9", "compression.zstd.level": "10"})
			in := buildBatch(t, record.BuildOptions{Compression: record.CompressionGzip, Idempotent: true, ProducerID: 7, ProducerEpoch: 2, BaseSequence: 0}, recs...)
			if _, err := p.Append(in, -1); err != nil {
				t.Fatal(err)
			}
			// A retry of the same batch is recognised as a duplicate.
			info, err := p.Append(buildBatch(t, record.BuildOptions{Compression: record.CompressionGzip, Idempotent: true, ProducerID: 7, ProducerEpoch: 2, BaseSequence: 0}, recs...), -1)
			if err != nil || !info.Duplicate || info.FirstOffset != 0 {
				t.Fatalf("retry: %+v %v", info, err)
			}
			stored, err := p.log.Read(0, 1<<20, p.log.LogEndOffset(), true)
			if err != nil {
				t.Fatal(err)
			}
			bt, err := record.DecodeBatch(stored)
			if err != nil {
				t.Fatal(err)
			}
			if bt.Compression() != tc.want || bt.ProducerID != 7 || bt.ProducerEpoch != 2 || bt.BaseSequence != 0 || len(bt.Records) != 2 {
				t.Fatalf("stored %+v", bt.Header)
			}
			for i, r := range bt.Records {
				if r.Offset != int64(i) || r.Timestamp != recs[i].Timestamp || !bytes.Equal(r.Value, recs[i].Value) || (r.Key == nil) != (recs[i].Key == nil) {
					t.Fatalf("record %d: %+v", i, r)
				}
			}
			if len(bt.Records[0].Headers) != 1 || string(bt.Records[0].Headers[0].Value) != "v" {
				t.Fatalf("headers %+v", bt.Records[0].Headers)
			}
		})
	}
}

// TestReplicaAppendStripsContentChecksum: lz4 and zstd batches are stored
// without their content checksum, so a wrong one (which Kafka stores for
// lz4, and librdkafka and the Go clients then fail on) cannot poison the
// partition; the stored batch decodes to the producer's records.
func TestReplicaAppendStripsContentChecksum(t *testing.T) {
	for _, c := range []record.Compression{record.CompressionLZ4, record.CompressionZstd} {
		t.Run(c.String(), func(t *testing.T) {
			now := time.Now().UnixMilli()
			recs := []record.Record{{Timestamp: now, Key: []byte("a"), Value: []byte("x")}, {Timestamp: now + 1, Value: []byte("y")}}
			in := buildBatch(t, record.BuildOptions{Compression: c}, recs...)
			in[len(in)-1]++ // the content checksum: the frame's last byte
			binary.BigEndian.PutUint32(in[17:], crc32.Checksum(in[21:], crc32.MakeTable(crc32.Castagnoli)))
			if _, err := record.DecodeBatch(in); err == nil {
				t.Fatal("the reference reader accepts a wrong content checksum: the test proves nothing")
			}
			p := testPartition(t, nil)
			if _, err := p.Append(in, -1); err != nil {
				t.Fatal(err)
			}
			stored, err := p.log.Read(0, 1<<20, p.log.LogEndOffset(), true)
			if err != nil {
				t.Fatal(err)
			}
			bt, err := record.DecodeBatch(stored)
			if err != nil {
				t.Fatalf("stored batch: %v", err)
			}
			if bt.Compression() != c || len(bt.Records) != 2 || string(bt.Records[1].Value) != "y" {
				t.Fatalf("stored %+v", bt)
			}
			if len(stored) != len(in)-4 {
				t.Fatalf("stored %d bytes, sent %d: want the 4-byte checksum gone", len(stored), len(in))
			}
		})
	}
}

// zeroReader reads zero bytes forever.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// bomb builds a batch of one record whose value is size zero bytes,
// compressed with codec c by a streaming writer (never holding the value
// in memory), as an attacker would.
func bomb(t *testing.T, c record.Compression, size int64) []byte {
	t.Helper()
	rec := []byte{0}
	rec = binary.AppendVarint(rec, 0)
	rec = binary.AppendVarint(rec, 0)
	rec = binary.AppendVarint(rec, 1)
	rec = append(rec, 'k')
	rec = binary.AppendVarint(rec, size)
	head := binary.AppendVarint(nil, int64(len(rec))+size+1)
	head = append(head, rec...)
	var buf bytes.Buffer
	var w io.WriteCloser
	switch c {
	case record.CompressionGzip:
		w, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	case record.CompressionZstd:
		zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	}
	if _, err := w.Write(head); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(w, zeroReader{}, size); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	b, err := record.Build(record.BuildOptions{Compression: c}, []record.Record{{Timestamp: now, Key: []byte("k")}})
	if err != nil {
		t.Fatal(err)
	}
	b = append(b[:61], buf.Bytes()...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	return withCRC(b)
}

// TestReplicaAppendParallelBombsBoundedMemory: four compression bombs at
// once (zstd and gzip, each inflating to 256 MiB, past the default 64 MiB
// limit) are refused on plain and compacted topics without the
// broker allocating more than a few windows for them.
func TestReplicaAppendParallelBombsBoundedMemory(t *testing.T) {
	bombs := map[record.Compression][]byte{
		record.CompressionZstd: bomb(t, record.CompressionZstd, 256<<20),
		record.CompressionGzip: bomb(t, record.CompressionGzip, 256<<20),
	}
	plain := testPartition(t, nil)
	compacted := testPartition(t, map[string]string{"cleanup.policy": "compact"})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	errs := make(chan error, 4)
	for _, c := range []record.Compression{record.CompressionZstd, record.CompressionGzip} {
		for _, p := range []*Partition{plain, compacted} {
			go func() {
				b := append([]byte(nil), bombs[c]...)
				_, err := p.Append(b, -1)
				errs <- err
			}()
		}
	}
	for range 4 {
		if err := <-errs; !errors.Is(err, storage.ErrInvalidRecord) {
			t.Fatalf("bomb: %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	alloc := int64(after.TotalAlloc - before.TotalAlloc)
	t.Logf("4 bombs (%d KiB zstd, %d KiB gzip, 256 MiB each): %d KiB allocated", len(bombs[record.CompressionZstd])>>10, len(bombs[record.CompressionGzip])>>10, alloc>>10)
	if alloc > 96<<20 {
		t.Fatalf("4 bombs allocated %d MiB", alloc>>20)
	}
	if plain.log.LogEndOffset() != 0 || compacted.log.LogEndOffset() != 0 {
		t.Fatal("a bomb was stored")
	}
}
