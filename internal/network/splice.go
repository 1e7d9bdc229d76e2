package network

// Fetch responses carry record batches that are megabytes long. Encoding
// them with kmsg copies every byte into the frame buffer (and regrows the
// buffer on the way); instead the frame is written as a vector: the kmsg
// encoding of the response with each large RecordBatches field cut out,
// and the batches themselves by reference (writev).
//
// kmsg stays the only codec. Before encoding, each large field is swapped
// for a 16-byte marker unique to this connection and response; after
// encoding, the markers are found in order, each with the length prefix
// kmsg wrote for it (an int32 before v12, a compact uvarint from v12),
// and replaced by the real length prefix and the real bytes. A marker
// that is not where it must be (it cannot happen unless kmsg changes its
// layout) makes the response fall back to a plain copy.

import (
	"bytes"
	"encoding/binary"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// spliceMinBytes is the smallest record set worth a separate iovec.
	spliceMinBytes = 16 << 10
	markerLen      = 16
)

// splicer builds vectored frames for one connection. Not safe for
// concurrent use: the connection's writer owns it.
type splicer struct {
	marker  [markerLen]byte // 8 bytes of connection identity, 8 of counter
	counter uint64
	fields  []*[]byte
	saved   [][]byte
	markers [][markerLen]byte
	head    []byte
}

func newSplicer(id uint64) *splicer {
	s := &splicer{}
	binary.BigEndian.PutUint64(s.marker[:8], id^0x5a4d5341_53504c49) // "ZMSASPLI"
	return s
}

// largeFields collects pointers to resp's byte fields worth splicing.
func (s *splicer) largeFields(resp kmsg.Response) []*[]byte {
	s.fields = s.fields[:0]
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return nil
	}
	for i := range f.Topics {
		t := &f.Topics[i]
		for j := range t.Partitions {
			if p := &t.Partitions[j]; len(p.RecordBatches) >= spliceMinBytes {
				s.fields = append(s.fields, &p.RecordBatches)
			}
		}
	}
	return s.fields
}

// frame returns resp's frame as buffers to write in order, or nil when
// resp has nothing worth splicing (encode it with AppendResponse then).
// The buffers alias resp's fields and s's scratch space: write them
// before the next call.
func (s *splicer) frame(correlationID int32, resp kmsg.Response) net.Buffers {
	fields := s.largeFields(resp)
	if len(fields) == 0 {
		return nil
	}
	s.saved = s.saved[:0]
	s.markers = s.markers[:0]
	for _, f := range fields {
		s.counter++
		m := s.marker
		binary.BigEndian.PutUint64(m[8:], s.counter)
		s.saved = append(s.saved, *f)
		s.markers = append(s.markers, m)
	}
	for i, f := range fields {
		*f = s.markers[i][:]
	}
	s.head = AppendResponse(s.head[:0], correlationID, resp)
	for i, f := range fields {
		*f = s.saved[i]
	}

	// Walk the encoding marker by marker: the piece before each marker's
	// length prefix, the real length prefix (in lens, so appending to it
	// never moves the encoding), the real field; then the rest.
	flexible := resp.IsFlexible()
	prefix := 4 // length prefix of a marker
	if flexible {
		prefix = 1 // uvarint(16+1)
	}
	enc := s.head
	lens := make([]byte, 0, len(fields)*binary.MaxVarintLen64)
	out := make(net.Buffers, 0, 3*len(fields)+1)
	start := 0 // start of the encoding not yet placed in out
	total := 0 // frame size after splicing, with the size field
	for i, f := range s.saved {
		at := bytes.Index(enc[start:], s.markers[i][:])
		if at < 0 {
			return nil
		}
		at += start
		p := at - prefix
		if p < start || !markerPrefix(enc[p:at], flexible) {
			return nil
		}
		n := len(lens)
		if flexible {
			lens = binary.AppendUvarint(lens, uint64(len(f))+1)
		} else {
			lens = binary.BigEndian.AppendUint32(lens, uint32(len(f)))
		}
		out = append(out, enc[start:p], lens[n:len(lens):len(lens)], f)
		total += p - start + len(lens) - n + len(f)
		start = at + markerLen
	}
	out = append(out, enc[start:])
	total += len(enc) - start
	// The frame's size field counts everything after it.
	binary.BigEndian.PutUint32(enc[0:4], uint32(total-4))
	return out
}

// markerPrefix reports whether b is the length prefix kmsg writes for a
// 16-byte field.
func markerPrefix(b []byte, flexible bool) bool {
	if flexible {
		return len(b) == 1 && b[0] == markerLen+1
	}
	return len(b) == 4 && binary.BigEndian.Uint32(b) == markerLen
}
