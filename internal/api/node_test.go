package api_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/record"
	"samsa/internal/server"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// node is a running single-node cluster for one test.
type node struct {
	t    *testing.T
	s    *server.Server
	addr string
	// sentinels counts consumeValues calls (txn_test.go).
	sentinels int
}

func startNode(t *testing.T, extra ...string) *node {
	t.Helper()
	ov := append([]string{
		"listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"log.dirs=" + t.TempDir(),
		"http.listener=",
	}, extra...)
	s, err := server.Start(context.Background(), server.Options{Overrides: ov, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &node{t: t, s: s, addr: s.KafkaAddr()}
}

func (n *node) client(opts ...kgo.Opt) *kgo.Client {
	n.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.addr)}, opts...)...)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(cl.Close)
	return cl
}

func (n *node) admin() *kadm.Client { return kadm.NewClient(n.client()) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (n *node) createTopic(name string, partitions int32, configs map[string]*string) {
	n.t.Helper()
	resp, err := n.admin().CreateTopic(ctxT(n.t), partitions, 1, configs, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		n.t.Fatalf("create topic %s: %v", name, err)
	}
}

// endOffset is the high watermark of a partition (ListOffsets -1).
func (n *node) endOffset(topic string, partition int32) int64 {
	n.t.Helper()
	offs, err := n.admin().ListEndOffsets(ctxT(n.t), topic)
	if err != nil {
		n.t.Fatal(err)
	}
	o, ok := offs.Lookup(topic, partition)
	if !ok || o.Err != nil {
		n.t.Fatalf("end offset of %s-%d: %+v", topic, partition, o)
	}
	return o.Offset
}

// rawConn speaks the protocol by hand for malformed and exact requests.
type rawConn struct {
	t    *testing.T
	nc   net.Conn
	br   *bufio.Reader
	f    *kmsg.RequestFormatter
	corr int32
}

func (n *node) raw() *rawConn {
	n.t.Helper()
	nc, err := net.Dial("tcp", n.addr)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: n.t, nc: nc, br: bufio.NewReader(nc), f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw"))}
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) send(req kmsg.Request) int32 {
	c.t.Helper()
	c.corr++
	c.write(c.f.AppendRequest(nil, req, c.corr))
	return c.corr
}

func (c *rawConn) recv(resp kmsg.Response) (int32, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		return 0, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.br, body); err != nil {
		return 0, err
	}
	r := kbin.Reader{Src: body}
	corr := r.Int32()
	if resp.IsFlexible() && resp.Key() != 18 {
		kmsg.SkipTags(&r)
	}
	return corr, resp.ReadFrom(r.Src)
}

// do sends req and reads its response.
func (c *rawConn) do(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	corr := c.send(req)
	resp := req.ResponseKind()
	got, err := c.recv(resp)
	if err != nil {
		c.t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	if got != corr {
		c.t.Fatalf("%s: correlation id %d, want %d", kmsg.NameForKey(req.Key()), got, corr)
	}
	return resp
}

func (c *rawConn) expectClosed() {
	c.t.Helper()
	var b [1]byte
	_, err := c.br.Read(b[:])
	if err == nil {
		c.t.Fatal("connection still open")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("connection not closed: %v", err)
	}
}

// batch builds one magic-v2 batch of n records with values prefix-i.
func batch(t *testing.T, n int, prefix string, ts int64) []byte {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Timestamp: ts, Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
	}
	b, err := record.Build(record.BuildOptions{}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func produceReq(version int16, topic string, partition int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = version
	req.Acks = -1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func fetchReq(version int16, topic string, partition int32, offset int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	req.ReplicaID = -1
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}
