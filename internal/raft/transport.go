package raft

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// MaxFrameBytes bounds one transport frame (one raft message; a snapshot
// travels as one message). A larger length closes the connection.
const MaxFrameBytes = 256 << 20

// HelloMagic opens every raft connection (see doc.go). A listener shared
// with the Kafka protocol can peek at it to route the connection.
var HelloMagic = [8]byte{'S', 'A', 'M', 'S', 'A', 'R', 'F', 'T'}

const (
	// helloLen is the fixed part of the hello: magic, sender id and the
	// length of the cluster id that follows.
	helloLen = 13
	// maxClusterIDLen bounds the cluster id in the hello (Kafka's are 22
	// characters).
	maxClusterIDLen = 255
	// peerQueue is how many messages wait for one peer; past it messages
	// are dropped and raft retransmits.
	peerQueue    = 1024
	dialTimeout  = 2 * time.Second
	writeTimeout = 5 * time.Second
	helloTimeout = 10 * time.Second
	minBackoff   = 20 * time.Millisecond
	// maxRefusedTracked bounds the refused node ids remembered for log
	// rate limiting (ids come from the network).
	maxRefusedTracked = 1024
	maxBackoff        = time.Second
)

var errFrame = errors.New("raft: bad transport frame")

// report tells the raft goroutine what the transport learned about a peer.
type report struct {
	to       uint64 // raft id
	snapshot bool   // a MsgSnap outcome rather than plain unreachability
	failed   bool
}

// transport moves raft messages between nodes. Sending never blocks the
// raft goroutine: each peer has a bounded queue drained by its own
// goroutine, which dials with backoff and drops what it cannot deliver.
type transport struct {
	self      int32
	clusterID string  // sent in our hellos, required in peers'
	voters    []int32 // sorted voter ids: sent in our hellos, required in peers'
	logger    *slog.Logger
	recvc     chan<- *pb.Message
	reportc   chan<- report

	// drop, when set, discards messages between two nodes (tests simulate
	// partitions with it). Checked on both send and receive.
	drop atomic.Pointer[func(from, to int32) bool]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		// conns are the inbound connections, closed by close, each with
		// the node id its hello named (-1 until the hello is accepted);
		// removePeer closes a removed learner's.
		conns map[net.Conn]int32
		// peers are the nodes this one talks to; voters are fixed at
		// construction, learners are added by setPeer (AddLearner) and
		// removed by removePeer (RemoveLearner).
		peers map[int32]*peer
		// refusedAt is when a refusal of a node (cluster id or voters
		// mismatch, not a member) was last logged at error level (see
		// logRefusal); at most maxRefusedTracked ids.
		refusedAt map[int32]time.Time
		listeners []net.Listener
		closed    bool
	}
}

type peer struct {
	id   int32
	addr atomic.Pointer[string] // read at every dial; a learner's may change
	q    chan *pb.Message
	// ctx ends when the peer is removed (cancel) or the transport
	// closes; its goroutine then returns, closing its connection.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the peer's goroutine has returned
}

func newTransport(self int32, clusterID string, voters []int32, addrs map[int32]string, recvc chan<- *pb.Message, reportc chan<- report, logger *slog.Logger) *transport {
	ctx, cancel := context.WithCancel(context.Background())
	voters = slices.Sorted(slices.Values(voters))
	t := &transport{self: self, clusterID: clusterID, voters: voters, logger: logger, recvc: recvc, reportc: reportc, ctx: ctx, cancel: cancel}
	t.mu.conns = map[net.Conn]int32{}
	t.mu.refusedAt = map[int32]time.Time{}
	t.mu.peers = map[int32]*peer{}
	for id, addr := range addrs {
		t.setPeer(id, addr)
	}
	return t
}

// setPeer adds node id at addr, or moves it there.
func (t *transport) setPeer(id int32, addr string) {
	if id == t.self {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.mu.peers[id]; p != nil {
		p.addr.Store(&addr)
		return
	}
	if t.mu.closed {
		return
	}
	p := &peer{id: id, q: make(chan *pb.Message, peerQueue), done: make(chan struct{})}
	p.ctx, p.cancel = context.WithCancel(t.ctx)
	p.addr.Store(&addr)
	t.mu.peers[id] = p
	t.wg.Add(1)
	go t.runPeer(p)
}

// removePeer forgets node id (a removed learner): its goroutine ends,
// closing the connection it dialled (a write in progress fails at once),
// and the connections it dialled to us are closed. It does not wait for
// the goroutine (never on the raft goroutine); close still does. Queued
// messages are dropped. A later setPeer starts a new peer.
func (t *transport) removePeer(id int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.mu.peers[id]; p != nil {
		delete(t.mu.peers, id)
		p.cancel()
	}
	// The removed node may still answer what it last received: its
	// refusal in the next minute is expected, logged at debug.
	if len(t.mu.refusedAt) < maxRefusedTracked {
		t.mu.refusedAt[id] = time.Now()
	}
	for c, from := range t.mu.conns {
		if from == id {
			// handleConn's deferred cleanup deletes it from conns.
			c.Close()
		}
	}
}

// peer returns node id's peer, or nil.
func (t *transport) peer(id int32) *peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.peers[id]
}

func (t *transport) dropped(from, to int32) bool {
	f := t.drop.Load()
	return f != nil && (*f)(from, to)
}

// send queues msgs for their peers without blocking.
func (t *transport) send(msgs []*pb.Message) {
	for _, m := range msgs {
		to := fromRaftID(m.GetTo())
		if t.dropped(t.self, to) {
			continue
		}
		p := t.peer(to)
		if p == nil {
			t.logger.Warn("raft: message to unknown node dropped", "to", to, "type", m.GetType().String())
			continue
		}
		select {
		case p.q <- m:
		default:
			t.report(report{to: m.GetTo(), snapshot: m.GetType() == pb.MsgSnap, failed: true})
		}
	}
}

func (t *transport) report(r report) {
	select {
	case t.reportc <- r:
	default: // the raft goroutine is behind; raft recovers via probing
	}
}

// runPeer owns the outbound connection to p until p.ctx ends.
func (t *transport) runPeer(p *peer) {
	defer t.wg.Done()
	defer close(p.done)
	defer p.cancel()
	backoff := minBackoff
	for {
		// Dial only once there is something to send: a node this one
		// never talks to (a learner no leader has added yet) is not
		// bothered with connections it would refuse.
		var first *pb.Message
		select {
		case <-p.ctx.Done():
			return
		case first = <-p.q:
		}
		c, err := t.dial(p)
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			// first is dropped; raft retransmits.
			t.report(report{to: toRaftID(p.id), snapshot: first.GetType() == pb.MsgSnap, failed: true})
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		// A write blocked on a peer that stopped reading ends when the
		// peer is removed, not only at its write deadline.
		stop := context.AfterFunc(p.ctx, func() { c.Close() })
		err = t.writeLoop(p, c, first)
		stop()
		c.Close()
		if p.ctx.Err() != nil {
			return
		}
		t.logger.Debug("raft: connection to peer lost", "peer", p.id, "err", err)
		t.report(report{to: toRaftID(p.id), failed: true})
	}
}

func (t *transport) dial(p *peer) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(p.ctx, "tcp", *p.addr.Load())
	if err != nil {
		return nil, err
	}
	hello := appendHello(nil, helloMsg{from: t.self, clusterID: t.clusterID, voters: t.voters})
	_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.Write(hello); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// writeLoop sends queued messages to p on c until an error or close.
func (t *transport) writeLoop(p *peer, c net.Conn, first *pb.Message) error {
	bw := bufio.NewWriterSize(c, 64<<10)
	var buf []byte
	for {
		m := first
		first = nil
		if m == nil {
			select {
			case <-p.ctx.Done():
				return p.ctx.Err()
			case m = <-p.q:
			}
		}
		var err error
		buf, err = appendMessageFrame(buf[:0], m)
		if err != nil {
			t.logger.Error("raft: message not sent", "peer", p.id, "err", err)
			if m.GetType() == pb.MsgSnap {
				t.report(report{to: m.GetTo(), snapshot: true, failed: true})
			}
			continue
		}
		// A snapshot may be large: allow it 1 MiB/s on top.
		_ = c.SetWriteDeadline(time.Now().Add(writeTimeout + time.Duration(len(buf)>>20)*time.Second))
		if _, err = bw.Write(buf); err == nil && len(p.q) == 0 {
			err = bw.Flush()
		}
		if err == nil && m.GetType() == pb.MsgSnap {
			if err = bw.Flush(); err == nil {
				t.report(report{to: m.GetTo(), snapshot: true})
			}
		}
		if err != nil {
			if m.GetType() == pb.MsgSnap {
				t.report(report{to: m.GetTo(), snapshot: true, failed: true})
			}
			return err
		}
	}
}

// appendMessageFrame appends m as one transport frame to dst.
func appendMessageFrame(dst []byte, m *pb.Message) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	dst, err := proto.MarshalOptions{}.MarshalAppend(dst, m)
	if err != nil {
		return dst[:start], err
	}
	n := len(dst) - start - 8
	if n > MaxFrameBytes {
		return dst[:start], fmt.Errorf("raft: message of %d bytes exceeds %d", n, MaxFrameBytes)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(n))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+8:], castagnoli))
	return dst, nil
}

// helloMsg is the connection preamble (see doc.go).
type helloMsg struct {
	from      int32
	clusterID string  // at most maxClusterIDLen bytes
	voters    []int32 // sorted; at most maxHelloVoters
}

// maxHelloVoters bounds the voter ids in a hello (one count byte).
const maxHelloVoters = 255

// appendHello appends h to dst. Open checks the bounds.
func appendHello(dst []byte, h helloMsg) []byte {
	dst = append(dst, HelloMagic[:]...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.from))
	dst = append(dst, byte(len(h.clusterID)))
	dst = append(dst, h.clusterID...)
	dst = append(dst, byte(len(h.voters)))
	for _, v := range h.voters {
		dst = binary.BigEndian.AppendUint32(dst, uint32(v))
	}
	return dst
}

// readHello reads and checks the connection preamble.
func readHello(r io.Reader) (helloMsg, error) {
	var fixed [helloLen]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return helloMsg{}, err
	}
	if [8]byte(fixed[:8]) != HelloMagic {
		return helloMsg{}, fmt.Errorf("%w: bad hello", errFrame)
	}
	h := helloMsg{from: int32(binary.BigEndian.Uint32(fixed[8:12]))}
	if h.from < 0 {
		return helloMsg{}, fmt.Errorf("%w: node id %d", errFrame, h.from)
	}
	// Both lengths are one byte: at most 255 + 1 + 255*4 bytes follow.
	cid := make([]byte, int(fixed[12])+1)
	if _, err := io.ReadFull(r, cid); err != nil {
		return helloMsg{}, err
	}
	h.clusterID = string(cid[:len(cid)-1])
	ids := make([]byte, 4*int(cid[len(cid)-1]))
	if _, err := io.ReadFull(r, ids); err != nil {
		return helloMsg{}, err
	}
	for i := 0; i < len(ids); i += 4 {
		v := int32(binary.BigEndian.Uint32(ids[i:]))
		if v < 0 || len(h.voters) > 0 && v <= h.voters[len(h.voters)-1] {
			return helloMsg{}, fmt.Errorf("%w: voter ids not ascending", errFrame)
		}
		h.voters = append(h.voters, v)
	}
	return h, nil
}

// readMessageFrame reads one frame from r into *buf (reused) and decodes
// it. The length is checked before anything is allocated.
func readMessageFrame(r io.Reader, buf *[]byte) (*pb.Message, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[0:4])
	if n > MaxFrameBytes {
		return nil, fmt.Errorf("%w: length %d", errFrame, n)
	}
	if uint32(cap(*buf)) < n {
		*buf = make([]byte, n)
	}
	b := (*buf)[:n]
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	if crc32.Checksum(b, castagnoli) != binary.BigEndian.Uint32(hdr[4:8]) {
		return nil, fmt.Errorf("%w: checksum", errFrame)
	}
	m := &pb.Message{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%w: %v", errFrame, err)
	}
	return m, nil
}

// handleConn serves one inbound raft connection until it fails or the
// transport closes.
func (t *transport) handleConn(c net.Conn) {
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		c.Close()
		return
	}
	t.mu.conns[c] = -1
	t.wg.Add(1)
	t.mu.Unlock()
	defer func() {
		c.Close()
		t.mu.Lock()
		delete(t.mu.conns, c)
		t.mu.Unlock()
		t.wg.Done()
	}()
	_ = c.SetReadDeadline(time.Now().Add(helloTimeout))
	br := bufio.NewReaderSize(c, 64<<10)
	h, err := readHello(br)
	if err != nil {
		t.logger.Debug("raft: inbound connection rejected", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	from := h.from
	// The membership check and the tagging of c are one step, so a
	// removePeer cannot slip between them and miss c.
	t.mu.Lock()
	_, member := t.mu.peers[from]
	if member {
		t.mu.conns[c] = from
	}
	t.mu.Unlock()
	if !member {
		t.logRefusal(from, "raft: connection from a node outside the quorum rejected (a learner not added yet, or a wrong node.id)",
			"from", from, "remote", c.RemoteAddr().String())
		return
	}
	switch {
	case h.clusterID != t.clusterID:
		t.logRefusal(from, "raft: connection refused: the peer belongs to another cluster (check meta.properties and controller.quorum.voters)",
			"from", from, "peer_cluster_id", h.clusterID, "our_cluster_id", t.clusterID, "remote", c.RemoteAddr().String())
		return
	case !slices.Equal(h.voters, t.voters):
		// Two nodes with different voter sets could each count a
		// different majority: never let them talk.
		t.logRefusal(from, "raft: connection refused: controller.quorum.voters differs between the nodes",
			"from", from, "peer_voters", fmt.Sprint(h.voters), "our_voters", fmt.Sprint(t.voters), "remote", c.RemoteAddr().String())
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var buf []byte
	for {
		m, err := readMessageFrame(br, &buf)
		if err != nil {
			if t.ctx.Err() == nil && !errors.Is(err, io.EOF) {
				t.logger.Debug("raft: inbound connection closed", "from", from, "err", err)
			}
			return
		}
		if fromRaftID(m.GetFrom()) != from || fromRaftID(m.GetTo()) != t.self {
			t.logger.Warn("raft: misaddressed message dropped", "conn_from", from, "from", fromRaftID(m.GetFrom()), "to", fromRaftID(m.GetTo()))
			continue
		}
		if t.dropped(from, t.self) {
			continue
		}
		select {
		case t.recvc <- m:
		case <-t.ctx.Done():
			return
		}
	}
}

// logRefusal logs a refused peer at error level, or at debug when the
// same node was refused less than a minute ago (a misconfigured peer
// redials every second).
func (t *transport) logRefusal(from int32, msg string, args ...any) {
	level := slog.LevelError
	t.mu.Lock()
	if at, ok := t.mu.refusedAt[from]; ok && time.Since(at) < time.Minute || !ok && len(t.mu.refusedAt) >= maxRefusedTracked {
		level = slog.LevelDebug
	} else {
		t.mu.refusedAt[from] = time.Now()
	}
	t.mu.Unlock()
	t.logger.Log(t.ctx, level, msg, args...)
}

// serve accepts raft connections on l until it is closed.
func (t *transport) serve(l net.Listener) error {
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		l.Close()
		return net.ErrClosed
	}
	t.mu.listeners = append(t.mu.listeners, l)
	t.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			if t.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		go t.handleConn(c)
	}
}

func (t *transport) close() {
	t.mu.Lock()
	t.mu.closed = true
	t.cancel()
	for _, l := range t.mu.listeners {
		l.Close()
	}
	for c := range t.mu.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}
