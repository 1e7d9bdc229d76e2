package validation

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"samsa/test/brokerproc"
)

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// bomb is a v2 batch holding one keyed record whose value is size zero
// bytes, compressed (codec 1 gzip, 4 zstd) by a streaming writer.
func bomb(t *testing.T, codec uint16, size int64) []byte {
	t.Helper()
	rec := []byte{0, 0, 0, 2, 'k'} // attributes, timestamp delta, offset delta, key
	rec = binary.AppendVarint(rec, size)
	raw := binary.AppendVarint(nil, int64(len(rec))+size+1)
	raw = append(raw, rec...)
	var buf bytes.Buffer
	var w io.WriteCloser
	if codec == 1 {
		w, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	} else {
		zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(w, zeros{}, size); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte{0}); err != nil { // no headers
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	b := make([]byte, 61, 61+buf.Len())
	binary.BigEndian.PutUint32(b[8:], uint32(49+buf.Len()))
	b[16] = 2
	binary.BigEndian.PutUint16(b[21:], codec)
	binary.BigEndian.PutUint64(b[27:], uint64(now))
	binary.BigEndian.PutUint64(b[35:], uint64(now))
	binary.BigEndian.PutUint64(b[43:], ^uint64(0))
	binary.BigEndian.PutUint16(b[51:], 0xffff)
	binary.BigEndian.PutUint32(b[53:], 0xffffffff)
	binary.BigEndian.PutUint32(b[57:], 1)
	b = append(b, buf.Bytes()...)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				n, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return n << 10
			}
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestValidationParallelBombsKeepRSS sends four compression bombs at once
// (zstd inflating to 1 GiB from about 32 KB, gzip to 256 MiB), to a plain
// and a compacted topic: each is refused with INVALID_RECORD, nothing is
// stored, the broker's RSS does not grow by more than a few windows, and a
// healthy client is served afterwards. Issue 9 saw these accepted and RSS
// go from 1.2 to 2.1 GB.
func TestValidationParallelBombsKeepRSS(t *testing.T) {
	b := brokerproc.Start(t, brokerproc.Options{})
	brokerproc.CreateTopic(t, b.Addr, "plain", 1)
	// Produce by topic name (v13 would need topic ids).
	cl := brokerproc.NewClient(t, b.Addr, kgo.MaxVersions(kversion.V3_0_0()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	compact := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "compacted", 1, 1
	cfg := kmsg.NewCreateTopicsRequestTopicConfig()
	cfg.Name, cfg.Value = "cleanup.policy", kmsg.StringPtr("compact")
	ct.Configs = append(ct.Configs, cfg)
	compact.Topics = append(compact.Topics, ct)
	if resp, err := compact.RequestWith(ctx, cl); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create compacted topic: %v %+v", err, resp)
	}
	// Warm the produce path (pools, page cache) before the baseline.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "plain", Value: []byte("warm")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	bombs := [][]byte{bomb(t, 4, 1<<30), bomb(t, 1, 256<<20)}
	t.Logf("bombs: zstd %d KiB -> 1 GiB, gzip %d KiB -> 256 MiB", len(bombs[0])>>10, len(bombs[1])>>10)
	before := vmRSS(t, b.PID())

	var wg sync.WaitGroup
	codes := make(chan error, 4)
	for _, topic := range []string{"plain", "compacted"} {
		for _, bm := range bombs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := kmsg.NewPtrProduceRequest()
				req.Acks, req.TimeoutMillis = -1, 30000
				rt := kmsg.NewProduceRequestTopic()
				rt.Topic = topic
				rp := kmsg.NewProduceRequestTopicPartition()
				rp.Records = bm
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				resp, err := req.RequestWith(ctx, cl)
				if err != nil {
					codes <- err
					return
				}
				codes <- kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
			}()
		}
	}
	wg.Wait()
	close(codes)
	for err := range codes {
		if err != kerr.InvalidRecord {
			t.Errorf("bomb answered %v, want INVALID_RECORD", err)
		}
	}
	after := vmRSS(t, b.PID())
	t.Logf("RSS %d MiB -> %d MiB", before>>20, after>>20)
	if after-before > 128<<20 {
		t.Errorf("four bombs raised RSS by %d MiB", (after-before)>>20)
	}
	if ends := brokerproc.EndOffsets(t, b.Addr, "plain"); ends[0] != 1 {
		t.Errorf("plain topic end offset %d, want 1 (only the warm-up record)", ends[0])
	}
	if ends := brokerproc.EndOffsets(t, b.Addr, "compacted"); ends[0] != 0 {
		t.Errorf("compacted topic end offset %d, want 0", ends[0])
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "plain", Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("healthy produce after the bombs: %v", err)
	}
}
