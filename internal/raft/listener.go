package raft

import (
	"net"
)

// Sharing the CONTROLLER listener. controller.quorum.voters names
// controller-listener addresses, so raft connections arrive where Kafka
// clients (and, later, brokers' controller RPCs) do. Every raft connection
// opens with HelloMagic, whose first four bytes read as a Kafka size prefix
// are 0x53414D53 (1.4 GB): far above any socket.request.max.bytes, so no
// Kafka request starts with them. The network layer reads the 4-byte size
// of the first frame as usual and asks Divert whether it is raft's.

// IsRaftPrefix reports whether peeked, the first bytes read from a
// connection (at least 4), start a raft hello.
func IsRaftPrefix(peeked []byte) bool {
	return len(peeked) >= 4 && [4]byte(peeked[:4]) == [4]byte(HelloMagic[:4])
}

// NewReplayConn returns c with peeked read back first: for a listener
// that consumed bytes to route a connection and hands it on.
func NewReplayConn(c net.Conn, peeked []byte) net.Conn {
	if len(peeked) == 0 {
		return c
	}
	return &replayConn{Conn: c, peeked: append([]byte(nil), peeked...)}
}

// replayConn reads peeked before reading from Conn. Read is called by one
// goroutine at a time (as for any net.Conn reader), so peeked needs no lock.
type replayConn struct {
	net.Conn
	peeked []byte // not yet returned by Read
}

func (c *replayConn) Read(b []byte) (int, error) {
	if len(c.peeked) > 0 {
		n := copy(b, c.peeked)
		c.peeked = c.peeked[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// Divert serves c as a raft connection if peeked (the bytes already read
// from it, at least the first 4, e.g. the Kafka size prefix plus whatever
// the reader buffered) start a raft hello. It then returns true once the
// connection ends: call it on the connection's own goroutine. It returns
// false at once for anything else, and the caller serves c as Kafka.
func (n *Node) Divert(peeked []byte, c net.Conn) bool {
	if !IsRaftPrefix(peeked) {
		return false
	}
	n.HandleConn(NewReplayConn(c, peeked))
	return true
}
