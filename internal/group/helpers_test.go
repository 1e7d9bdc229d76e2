package group

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/coordinator/coordtest"
	"samsa/internal/record"
	"samsa/internal/storage"
)

// testBroker is one "broker": a storage manager over dir and a coordinator
// that leads __consumer_offsets partition 0 (the only one).
type testBroker struct {
	t    *testing.T
	dir  string
	mgr  *storage.Manager
	part *coordtest.LogPartition
	c    *Coordinator
	cfg  Config
}

func testConfig() Config {
	return Config{
		NumPartitions:     1,
		MinSessionTimeout: 10 * time.Millisecond,
		MaxSessionTimeout: time.Minute,
		Logger:            testLogger(),
	}
}

func newTestBroker(t *testing.T, cfg Config) *testBroker {
	t.Helper()
	b := &testBroker{t: t, dir: t.TempDir(), cfg: cfg}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *testBroker) start() {
	b.t.Helper()
	mgr := coordtest.OpenManager(b.t, b.dir)
	l, err := mgr.CreateLog("__consumer_offsets", 0, [16]byte{1}, storage.DefaultConfig())
	if err != nil {
		b.t.Fatal(err)
	}
	b.mgr = mgr
	b.part = coordtest.NewLogPartition(l)
	b.c = New(b.cfg)
	b.c.Load(0, b.part)
	waitLoaded(b.t, b.c, "any")
}

func (b *testBroker) stop() {
	if b.c != nil {
		b.c.Close()
		b.c = nil
	}
	coordtest.CloseManager(b.t, &b.mgr)
}

// restart simulates a broker restart: a new coordinator replays the same log.
func (b *testBroker) restart() {
	b.t.Helper()
	b.stop()
	b.start()
}

// logBatches returns every batch of the partition below its high
// watermark, decoded, in log order (keys and values copied).
func logBatches(t *testing.T, p Partition) []record.Batch {
	t.Helper()
	var out []record.Batch
	off := p.LogStartOffset()
	for off < p.LogEndOffset() {
		buf, err := p.Read(off, 1<<20)
		if err != nil || len(buf) == 0 {
			t.Fatalf("read at %d: %v", off, err)
		}
		for len(buf) > 0 {
			batch, h, rest, err := record.Next(buf)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := record.DecodeBatch(batch)
			if err != nil {
				t.Fatal(err)
			}
			for i := range dec.Records {
				r := &dec.Records[i]
				r.Key, r.Value = bytes.Clone(r.Key), bytes.Clone(r.Value)
			}
			out = append(out, dec)
			off, buf = h.NextOffset(), rest
		}
	}
	return out
}

// logRecords returns every record of the partition below its high
// watermark, in log order.
func logRecords(t *testing.T, p Partition) []record.Record {
	t.Helper()
	var out []record.Record
	for _, b := range logBatches(t, p) {
		out = append(out, b.Records...)
	}
	return out
}

// lastRecordOf returns the value of the last record with key, and whether
// there is one (a tombstone has a nil value).
func lastRecordOf(recs []record.Record, key []byte) (value []byte, found bool) {
	for _, r := range recs {
		if bytes.Equal(r.Key, key) {
			value, found = r.Value, true
		}
	}
	return value, found
}

// appendRaw appends records to the partition as one batch, as another
// broker (or an older Kafka) may have written them.
func appendRaw(t *testing.T, p Partition, recs ...record.Record) {
	t.Helper()
	b, err := record.Build(record.BuildOptions{}, recs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func waitLoaded(t *testing.T, c *Coordinator, group string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		loaded, _ := c.Owns(group)
		if loaded {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("partition not loaded in time")
		}
		time.Sleep(time.Millisecond)
	}
}

func subscription(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

func joinReq(group, memberID string, version int16, session time.Duration) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = version
	r.Group = group
	r.MemberID = memberID
	r.SessionTimeoutMillis = int32(session / time.Millisecond)
	r.RebalanceTimeoutMillis = int32(session / time.Millisecond)
	r.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	p.Metadata = subscription("t")
	r.Protocols = []kmsg.JoinGroupRequestProtocol{p}
	return r
}

func errOf(code int16) error { return kerr.ErrorForCode(code) }

// client is a test consumer-group member that behaves like a real client:
// it joins (handling MEMBER_ID_REQUIRED), syncs (as leader it assigns each
// member "a:<member id>") and retries on rebalance errors.
type client struct {
	c        *Coordinator
	group    string
	clientID string
	instance *string
	session  time.Duration
	version  int16
	topics   []string
	// protocolType is the group's protocol type; "" means "consumer".
	protocolType string

	memberID   string
	generation int32
	leader     bool
	members    int // members the leader assigned to
	assignment []byte
}

func newClient(c *Coordinator, group, clientID string) *client {
	return &client{c: c, group: group, clientID: clientID, session: 10 * time.Second, version: 9, topics: []string{"t"}}
}

// joinAndSync runs join+sync until the member is in a stable generation.
func (cl *client) joinAndSync(ctx context.Context) error {
	for attempt := 0; attempt < 50; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		jr := joinReq(cl.group, cl.memberID, cl.version, cl.session)
		jr.InstanceID = cl.instance
		jr.Protocols[0].Metadata = subscription(cl.topics...)
		if cl.protocolType != "" {
			jr.ProtocolType = cl.protocolType
		}
		resp := cl.c.JoinGroup(WithClient(ctx, cl.clientID, "127.0.0.1"), jr)
		switch err := errOf(resp.ErrorCode); {
		case errors.Is(err, kerr.MemberIDRequired):
			cl.memberID = resp.MemberID
			continue
		case errors.Is(err, kerr.UnknownMemberID):
			cl.memberID = ""
			continue
		case errors.Is(err, kerr.RebalanceInProgress):
			continue
		case err != nil:
			return fmt.Errorf("join: %w", err)
		}
		cl.memberID = resp.MemberID
		cl.generation = resp.Generation
		cl.leader = resp.LeaderID == resp.MemberID
		sr := kmsg.NewPtrSyncGroupRequest()
		sr.Version = 5
		sr.Group = cl.group
		sr.Generation = resp.Generation
		sr.MemberID = cl.memberID
		sr.InstanceID = cl.instance
		sr.ProtocolType = resp.ProtocolType
		sr.Protocol = resp.Protocol
		if cl.leader && !resp.SkipAssignment {
			cl.members = len(resp.Members)
			for _, m := range resp.Members {
				a := kmsg.NewSyncGroupRequestGroupAssignment()
				a.MemberID = m.MemberID
				a.MemberAssignment = []byte("a:" + m.MemberID)
				sr.GroupAssignment = append(sr.GroupAssignment, a)
			}
		}
		sresp := cl.c.SyncGroup(ctx, sr)
		switch err := errOf(sresp.ErrorCode); {
		case errors.Is(err, kerr.RebalanceInProgress), errors.Is(err, kerr.IllegalGeneration):
			continue
		case errors.Is(err, kerr.UnknownMemberID):
			cl.memberID = ""
			continue
		case err != nil:
			return fmt.Errorf("sync: %w", err)
		}
		cl.assignment = sresp.MemberAssignment
		return nil
	}
	return errors.New("no stable generation after 50 attempts")
}

func (cl *client) heartbeat() error {
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = 4
	r.Group = cl.group
	r.Generation = cl.generation
	r.MemberID = cl.memberID
	r.InstanceID = cl.instance
	return errOf(cl.c.Heartbeat(context.Background(), r).ErrorCode)
}

func (cl *client) commit(topic string, partition int32, offset int64) error {
	return commitAs(cl.c, cl.group, cl.memberID, cl.generation, cl.instance, topic, partition, offset)
}

func commitAs(c *Coordinator, group, memberID string, gen int32, instance *string, topic string, partition int32, offset int64) error {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = 9
	r.Group = group
	r.Generation = gen
	r.MemberID = memberID
	r.InstanceID = instance
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = topic
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition = partition
	p.Offset = offset
	p.LeaderEpoch = 7
	md := fmt.Sprintf("md-%d", offset)
	p.Metadata = &md
	t.Partitions = append(t.Partitions, p)
	r.Topics = append(r.Topics, t)
	resp := c.OffsetCommit(context.Background(), r)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return fmt.Errorf("bad commit response shape: %+v", resp)
	}
	return errOf(resp.Topics[0].Partitions[0].ErrorCode)
}

// fetchOffset returns the committed offset of one partition (v9 request).
func fetchOffset(t *testing.T, c *Coordinator, group, topic string, partition int32) (int64, string) {
	t.Helper()
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 9
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = group
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic = topic
	rt.Partitions = []int32{partition}
	g.Topics = append(g.Topics, rt)
	r.Groups = append(r.Groups, g)
	resp := c.OffsetFetch(context.Background(), r)
	if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
		t.Fatalf("fetch: %+v", resp)
	}
	p := resp.Groups[0].Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("fetch partition error: %v", errOf(p.ErrorCode))
	}
	md := ""
	if p.Metadata != nil {
		md = *p.Metadata
	}
	return p.Offset, md
}

func describe(t *testing.T, c *Coordinator, group string) kmsg.DescribeGroupsResponseGroup {
	t.Helper()
	r := kmsg.NewPtrDescribeGroupsRequest()
	r.Version = 5
	r.Groups = []string{group}
	resp := c.DescribeGroups(context.Background(), r)
	if len(resp.Groups) != 1 {
		t.Fatalf("describe: %+v", resp)
	}
	return resp.Groups[0]
}

func leave(c *Coordinator, group, memberID string) error {
	r := kmsg.NewPtrLeaveGroupRequest()
	r.Version = 0
	r.Group = group
	r.MemberID = memberID
	return errOf(c.LeaveGroup(context.Background(), r).ErrorCode)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// runUntilStable runs the clients like real consumers, each on its own
// goroutine: join and sync, then heartbeat every few milliseconds, rejoining
// when told to. It returns once every client heartbeats successfully in one
// generation twice in a row.
func runUntilStable(t *testing.T, ctx context.Context, clients []*client) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	type state struct {
		gen  int32
		ok   bool
		err  error
		seen int
	}
	var mu sync.Mutex
	states := make([]state, len(clients))
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			join := true
			for ctx.Err() == nil {
				if join {
					if err := cl.joinAndSync(ctx); err != nil {
						if ctx.Err() == nil {
							mu.Lock()
							states[i].err = err
							mu.Unlock()
						}
						return
					}
					join = false
				}
				err := cl.heartbeat()
				mu.Lock()
				states[i].gen, states[i].ok = cl.generation, err == nil
				states[i].seen++
				mu.Unlock()
				join = err != nil
				select {
				case <-ctx.Done():
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()
	}
	stableRounds := 0
	lastSeen := make([]int, len(clients))
	for stableRounds < 2 {
		select {
		case <-ctx.Done():
			cancel()
			wg.Wait()
			t.Fatal("group did not become stable")
		case <-time.After(10 * time.Millisecond):
		}
		mu.Lock()
		stable := true
		for i, s := range states {
			if s.err != nil {
				mu.Unlock()
				cancel()
				wg.Wait()
				t.Fatal(s.err)
			}
			// Each client must have heartbeated since the last round.
			stable = stable && s.ok && s.gen == states[0].gen && s.seen > lastSeen[i]
			lastSeen[i] = s.seen
		}
		mu.Unlock()
		if stable {
			stableRounds++
		} else {
			stableRounds = 0
		}
	}
	cancel()
	wg.Wait()
}
