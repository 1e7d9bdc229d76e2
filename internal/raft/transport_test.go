package raft

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func testMessage() *pb.Message {
	return &pb.Message{
		Type: new(pb.MsgApp), To: new(uint64(2)), From: new(uint64(1)), Term: new(uint64(3)),
		LogTerm: new(uint64(2)), Index: new(uint64(7)), Commit: new(uint64(6)),
		Entries: []*pb.Entry{testEntry(8, 3, "x"), testEntry(9, 3, "y")},
	}
}

// hello is node from's hello in a two-voter test cluster.
func hello(from int32) []byte {
	return appendHello(nil, helloMsg{from: from, clusterID: testClusterID, voters: []int32{0, 1}})
}

func TestTransportFrameRoundTrip(t *testing.T) {
	msgs := []*pb.Message{
		testMessage(),
		{Type: new(pb.MsgHeartbeat), To: new(uint64(3)), From: new(uint64(1))},
		{Type: new(pb.MsgSnap), To: new(uint64(2)), From: new(uint64(1)), Snapshot: &pb.Snapshot{
			Data: bytes.Repeat([]byte("s"), 100000), Metadata: &pb.SnapshotMetadata{Index: new(uint64(50)), Term: new(uint64(2)),
				ConfState: &pb.ConfState{Voters: []uint64{1, 2, 3}}}}},
	}
	var stream []byte
	var err error
	for _, m := range msgs {
		if stream, err = appendMessageFrame(stream, m); err != nil {
			t.Fatal(err)
		}
	}
	r := bytes.NewReader(stream)
	var buf []byte
	for i, want := range msgs {
		got, err := readMessageFrame(r, &buf)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("frame %d: got %v want %v", i, got, want)
		}
	}
	if _, err := readMessageFrame(r, &buf); err != io.EOF {
		t.Fatalf("after last frame: %v", err)
	}
}

// TestTransportRejectsBadInput sends malformed connections to a serving
// node and checks each is closed rather than read further.
func TestTransportRejectsBadInput(t *testing.T) {
	c := newCluster(t, 2, 0, 0)
	frame, _ := appendMessageFrame(nil, testMessage())
	badCRC := bytes.Clone(frame)
	badCRC[len(badCRC)-1] ^= 0xff
	huge := binary.BigEndian.AppendUint32(nil, MaxFrameBytes+1)
	huge = append(huge, 0, 0, 0, 0)
	tests := map[string][]byte{
		"bad magic":       append([]byte("SAMSAXXX"), 0, 0, 0, 1, 0),
		"negative id":     append(append([]byte(nil), HelloMagic[:]...), 0xff, 0xff, 0xff, 0xff, 0),
		"other cluster":   append(appendHello(nil, helloMsg{from: 1, clusterID: "another-cluster", voters: []int32{0, 1}}), frame...),
		"no cluster id":   append(appendHello(nil, helloMsg{from: 1, voters: []int32{0, 1}}), frame...),
		"other voters":    append(appendHello(nil, helloMsg{from: 1, clusterID: testClusterID, voters: []int32{0, 1, 2}}), frame...),
		"voters unsorted": append(appendHello(nil, helloMsg{from: 1, clusterID: testClusterID, voters: []int32{1, 0}}), frame...),
		"unknown node":    append(hello(9), frame...),
		"bad checksum":    append(hello(1), badCRC...),
		"huge frame":      append(hello(1), huge...),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", c.voters[0])
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(b); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
			if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("read after bad input: %v, want EOF (closed)", err)
			}
		})
	}
	// The node still works.
	c.propose("ok")
}

// TestTransportDeadPeerNeverBlocks queues far more than a peer's queue for
// a peer that accepts but never reads: send returns, and the overflow is
// reported to raft as unreachability.
func TestTransportDeadPeerNeverBlocks(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // never read
		}
	}()
	recvc := make(chan *pb.Message, 1)
	reportc := make(chan report, 1)
	tr := newTransport(0, testClusterID, []int32{0}, map[int32]string{1: l.Addr().String()}, recvc, reportc, slog.New(slog.DiscardHandler))
	defer tr.close()
	big := testMessage()
	big.To = new(toRaftID(1))
	big.Entries = []*pb.Entry{testEntry(8, 3, string(bytes.Repeat([]byte("z"), 64<<10)))}
	msgs := make([]*pb.Message, 4*peerQueue)
	for i := range msgs {
		msgs[i] = big
	}
	tr.send(msgs)
	select {
	case r := <-reportc:
		if !r.failed || r.to != toRaftID(1) {
			t.Fatalf("report %+v", r)
		}
	case <-time.After(testTimeout):
		t.Fatal("no unreachable report")
	}
}

func FuzzTransportFrame(f *testing.F) {
	frame, _ := appendMessageFrame(nil, testMessage())
	f.Add(append(hello(1), frame...))
	f.Add(append(hello(1), frame[:len(frame)-2]...))
	f.Add(hello(7))
	f.Add([]byte("SAMSARFT\x00\x00\x00\x01\x00\x02\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x08"))
	f.Add([]byte("SAMSARFT\x00\x00\x00\x01\xffabc"))
	f.Add([]byte("SAMSARFT\x00\x00\x00\x01\x01c\x02\x00\x00\x00\x01\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		h, err := readHello(r)
		if err != nil {
			return
		}
		if re := appendHello(nil, h); !bytes.Equal(re, b[:len(re)]) {
			t.Fatalf("hello round trip: %q vs %q", re, b[:len(re)])
		}
		var buf []byte
		for {
			m, err := readMessageFrame(r, &buf)
			if err != nil {
				return
			}
			re, err := appendMessageFrame(nil, m)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			var buf2 []byte
			m2, err := readMessageFrame(bytes.NewReader(re), &buf2)
			if err != nil || !proto.Equal(m, m2) {
				t.Fatalf("round trip: %v, %v vs %v", err, m, m2)
			}
		}
	})
}
