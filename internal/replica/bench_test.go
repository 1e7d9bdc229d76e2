package replica

import (
	"context"
	"fmt"
	"testing"
	"time"

	"samsa/internal/record"
)

// BenchmarkReplicaAppend is the leader's produce path below the network:
// validation of every record, then the storage append, for a franz-go
// sized batch (160 records of 1 KiB) in three codecs.
func BenchmarkReplicaAppend(b *testing.B) {
	for _, c := range []record.Compression{record.CompressionNone, record.CompressionLZ4, record.CompressionZstd} {
		now := time.Now().UnixMilli()
		recs := make([]record.Record, 160)
		for i := range recs {
			v := make([]byte, 1024)
			for j := range v {
				v[j] = byte(i*7 + j%13)
			}
			recs[i] = record.Record{Timestamp: now, Value: v}
		}
		batch, err := record.Build(record.BuildOptions{Compression: c}, recs)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.String(), func(b *testing.B) {
			p := testPartitionTB(b, nil)
			buf := make([]byte, len(batch))
			b.ReportAllocs()
			b.SetBytes(160 * 1024)
			for b.Loop() {
				copy(buf, batch) // the append rewrites offsets in place
				if _, err := p.Append(buf, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReplicaAppendSmall is the leader's per-call overhead: one
// 100-byte record per append, where the storage write weighs less than
// in BenchmarkReplicaAppend. acks=-1 adds WaitReplicated, which a
// single-replica leader answers without a lock.
func BenchmarkReplicaAppendSmall(b *testing.B) {
	batch, err := record.Build(record.BuildOptions{}, []record.Record{{Timestamp: time.Now().UnixMilli(), Value: make([]byte, 100)}})
	if err != nil {
		b.Fatal(err)
	}
	for _, acks := range []int16{1, -1} {
		b.Run(fmt.Sprintf("acks=%d", acks), func(b *testing.B) {
			p := testPartitionTB(b, nil)
			buf := make([]byte, len(batch))
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(100)
			for b.Loop() {
				copy(buf, batch)
				info, err := p.Append(buf, acks)
				if err != nil {
					b.Fatal(err)
				}
				if acks == -1 {
					if err := p.WaitReplicated(ctx, info.LastOffset+1); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
