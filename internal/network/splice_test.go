package network

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestSpliceMatchesPlainEncoding checks that a vectored fetch frame has
// exactly the bytes of the plain kmsg encoding, for non-flexible and
// flexible versions, with large and small record sets mixed.
func TestSpliceMatchesPlainEncoding(t *testing.T) {
	sp := newSplicer(42)
	big := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	for _, version := range []int16{4, 11, 12, 13, 16, 17} {
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = version
		for ti, name := range []string{"a", "topic-b"} {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = name
			for pi, data := range [][]byte{big(spliceMinBytes, 1), {}, big(100, 2), big(200_000, byte(3+ti))} {
				p := kmsg.NewFetchResponseTopicPartition()
				p.Partition = int32(pi)
				p.HighWatermark = int64(1000 * pi)
				p.RecordBatches = data
				rt.Partitions = append(rt.Partitions, p)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		want := AppendResponse(nil, 7, resp)
		vec := sp.frame(7, resp)
		if vec == nil {
			t.Fatalf("v%d: not spliced", version)
		}
		if len(vec) != 3*4+1 {
			t.Errorf("v%d: %d buffers, want 13", version, len(vec))
		}
		var got []byte
		for _, b := range vec {
			got = append(got, b...)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("v%d: spliced frame (%d bytes) differs from the plain encoding (%d bytes)", version, len(got), len(want))
		}
		// The response's own fields are restored.
		if n := len(resp.Topics[1].Partitions[3].RecordBatches); n != 200_000 {
			t.Fatalf("v%d: record batches left at %d bytes", version, n)
		}
	}
}

func TestSpliceSkipsSmallAndOtherResponses(t *testing.T) {
	sp := newSplicer(1)
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 12
	rt := kmsg.NewFetchResponseTopic()
	p := kmsg.NewFetchResponseTopicPartition()
	p.RecordBatches = make([]byte, spliceMinBytes-1)
	rt.Partitions = append(rt.Partitions, p)
	resp.Topics = append(resp.Topics, rt)
	if sp.frame(1, resp) != nil {
		t.Error("small fetch spliced")
	}
	if sp.frame(1, kmsg.NewPtrMetadataResponse()) != nil {
		t.Error("metadata response spliced")
	}
	if sp.frame(1, nil) != nil {
		t.Error("nil response spliced")
	}
}
