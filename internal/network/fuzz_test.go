package network_test

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

// FuzzNetworkParseRequest feeds arbitrary frames to the header and body
// decoder: it must never panic, and whatever it accepts must carry the
// header it was given.
func FuzzNetworkParseRequest(f *testing.F) {
	fm := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	for _, req := range []kmsg.Request{
		func() kmsg.Request { r := kmsg.NewPtrApiVersionsRequest(); r.Version = 3; return r }(),
		func() kmsg.Request { r := kmsg.NewPtrMetadataRequest(); r.Version = 12; return r }(),
		func() kmsg.Request {
			r := kmsg.NewPtrProduceRequest()
			r.Version = 9
			t := kmsg.NewProduceRequestTopic()
			t.Topic = "t"
			p := kmsg.NewProduceRequestTopicPartition()
			p.Records = []byte{1, 2, 3}
			t.Partitions = append(t.Partitions, p)
			r.Topics = append(r.Topics, t)
			return r
		}(),
		func() kmsg.Request { r := kmsg.NewPtrFetchRequest(); r.Version = 13; return r }(),
	} {
		f.Add(fm.AppendRequest(nil, req, 1)[4:])
	}
	f.Add([]byte{0, 18, 0, 9, 0, 0, 0, 1, 255, 255})
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, req, err := network.ParseRequest(frame, nil)
		if err != nil {
			return
		}
		if req == nil {
			t.Fatal("nil request without error")
		}
		if req.Key() != h.APIKey || req.GetVersion() != h.APIVersion {
			t.Fatalf("request %d v%d for header %+v", req.Key(), req.GetVersion(), h)
		}
		if got := int32(binary.BigEndian.Uint32(frame[4:])); got != h.CorrelationID {
			t.Fatalf("correlation id %d, frame says %d", h.CorrelationID, got)
		}
	})
}
