package network_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

// TestDivertTakesOverByFirstBytes: a connection whose first bytes match
// the Divert hook (here "SAMS", the raft hello's start, a size prefix far
// above socket.request.max.bytes) is served by the hook, which sees
// every byte already read; other connections speak Kafka as usual.
func TestDivertTakesOverByFirstBytes(t *testing.T) {
	diverted := make(chan []byte, 1)
	s, err := network.Listen("127.0.0.1:0", newFakeHandler(), network.Options{
		Listener: "CONTROLLER", Logger: quiet,
		Divert: func(peeked []byte, c net.Conn) bool {
			if !bytes.HasPrefix(peeked, []byte("SAMS")) {
				return false
			}
			rest := make([]byte, 8-len(peeked))
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(c, rest); err != nil {
				diverted <- nil
				return true
			}
			got := append(append([]byte(nil), peeked...), rest...)
			_, _ = c.Write([]byte("ok"))
			diverted <- got
			return true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte("SAMSARFT")); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-diverted:
		if string(got) != "SAMSARFT" {
			t.Fatalf("diverted connection saw %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("connection not diverted")
	}
	buf := make([]byte, 2)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("diverted reply %q %v", buf, err)
	}

	// A Kafka client on the same listener is served normally.
	c := dial(t, s)
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 1
	c.send(req, 7)
	resp := kmsg.NewPtrMetadataResponse()
	resp.Version = 1
	if corr, err := c.recv(resp); err != nil || corr != 7 {
		t.Fatalf("kafka response: corr %d, %v", corr, err)
	}
}
