package api_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/record"
	"samsa/internal/server"
)

// Issue 9, Tests: a bounded random client drives an in-process broker with
// malformed frames (random_frames_gen_test.go) over several raw
// connections while a healthy franz-go client produces known records;
// afterwards every healthy record is where it was acknowledged, the
// topics garbage cannot name did not move, every batch stored in the
// topic garbage may write to decodes, the broker still answers, and its
// goroutines came back down.
//
// Seeded: the seed is logged; SAMSA_RANDOM_FRAMES_SEED replays it (each
// connection's frames are then the same; their interleaving with the
// healthy client is not). SAMSA_RANDOM_FRAMES_N sets the frame count.
func TestRandomFramesKeepBrokerServing(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SAMSA_RANDOM_FRAMES_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SAMSA_RANDOM_FRAMES_SEED: %v", err)
		}
		seed = v
	}
	frames := 20000
	if s := os.Getenv("SAMSA_RANDOM_FRAMES_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			t.Fatalf("SAMSA_RANDOM_FRAMES_N=%q", s)
		}
		frames = v
	}
	t.Logf("seed %d (replay with SAMSA_RANDOM_FRAMES_SEED=%d), %d frames", seed, seed, frames)

	start := time.Now()
	n := startNode(t)
	n.createTopic("rf-healthy", 3, nil)
	n.createTopic("rf-guard", 2, nil)
	n.createTopic(rfJunk, 2, nil)

	// The guard topic is filled once before the garbage and only read.
	cl := n.client(kgo.DefaultProduceTopic("rf-healthy"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	guard := make(map[rfPos]rfKV)
	for i := range 40 {
		r := &kgo.Record{Topic: "rf-guard", Partition: int32(i % 2), Key: []byte(fmt.Sprintf("g%d", i)), Value: []byte(fmt.Sprintf("guard-%d", i))}
		if err := cl.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		guard[rfPos{r.Partition, r.Offset}] = rfKV{string(r.Key), string(r.Value)}
	}
	guardEnds := rfEndOffsets(t, n, "rf-guard", 2)

	// The group and transaction coordinators load their partitions (and
	// start a goroutine per partition) on first use: use them first.
	rc := n.raw()
	for _, typ := range []int8{0, 1} {
		for i := 0; ; i++ {
			fc := kmsg.NewPtrFindCoordinatorRequest()
			fc.Version, fc.CoordinatorKey, fc.CoordinatorType = 3, "rf-warm", typ
			resp := rc.do(fc).(*kmsg.FindCoordinatorResponse)
			if resp.ErrorCode == 0 {
				break
			}
			if i == 100 {
				t.Fatalf("FindCoordinator type %d: %v", typ, kerr.ErrorForCode(resp.ErrorCode))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Every goroutine the broker needs at rest exists now (the healthy
	// client is connected, the coordinators loaded); what the garbage
	// starts must end with it.
	goroutinesBefore := runtime.NumGoroutine()
	t.Logf("%v: node up, coordinators loaded, %d goroutines", time.Since(start).Round(time.Millisecond), goroutinesBefore)

	// The healthy producer runs while the garbage flows.
	healthy := make(map[rfPos]rfKV)
	var healthyErr error
	stopHealthy := make(chan struct{})
	healthyDone := make(chan struct{})
	go func() {
		defer close(healthyDone)
		for i := 0; ; i++ {
			select {
			case <-stopHealthy:
				if i >= 30 {
					return
				}
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			r := &kgo.Record{Partition: int32(i % 3), Key: []byte(fmt.Sprintf("h%d", i)), Value: []byte(fmt.Sprintf("healthy-%d", i))}
			err := cl.ProduceSync(ctx, r).FirstErr()
			cancel()
			if err != nil {
				healthyErr = fmt.Errorf("healthy record %d: %w", i, err)
				return
			}
			healthy[rfPos{r.Partition, r.Offset}] = rfKV{string(r.Key), string(r.Value)}
		}
	}()

	const conns = 4
	var wg sync.WaitGroup
	stats := make([]rfStats, conns)
	deadline := time.Now().Add(90 * time.Second) // the bound of the garbage phase
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := newRFGen(seed + uint64(c))
			stats[c] = rfSendGarbage(n.addr, g, frames/conns, deadline)
		}()
	}
	wg.Wait()
	close(stopHealthy)
	<-healthyDone
	if healthyErr != nil {
		t.Fatalf("the healthy client was not served during the garbage: %v", healthyErr)
	}
	var total rfStats
	for _, s := range stats {
		total.sent += s.sent
		total.dials += s.dials
		total.writeErrs += s.writeErrs
		for k, v := range s.byMutation {
			total.byMutation[k] += v
		}
	}
	t.Logf("%v: sent %d frames over %d connections (%d writes failed: connection closed by the broker), mutations %v, %d healthy records",
		time.Since(start).Round(time.Millisecond), total.sent, total.dials, total.writeErrs, total.byMutation, len(healthy))
	if total.sent < frames/2 {
		t.Fatalf("only %d of %d frames sent before the deadline", total.sent, frames)
	}

	// The broker still answers a fresh raw connection.
	rc = n.raw()
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "rf", "1"
	if resp := rc.do(av).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions after garbage: %v", kerr.ErrorForCode(resp.ErrorCode))
	}

	// No frame is still being decoded now that every garbage connection
	// is closed: decoding is bounded by the frame's bytes, so a decoder
	// still running seconds later spins on a count it cannot have read
	// (a CPU denial of service by one small frame).
	if stuck := rfStuckDecoders(10 * time.Second); stuck != "" {
		t.Fatalf("a frame is still being decoded 10 s after its connection closed:\n%s", stuck)
	}

	// No goroutine leak: what the garbage connections started ends (with
	// room for what a long-poll or a coordinator timer still holds).
	const slack = 40
	var now int
	for end := time.Now().Add(15 * time.Second); ; {
		now = runtime.NumGoroutine()
		if now <= goroutinesBefore+slack || time.Now().After(end) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if now > goroutinesBefore+slack {
		t.Fatalf("goroutines: %d before the garbage, %d after (bound +%d)\n%s", goroutinesBefore, now, slack, rfStacks())
	}

	t.Logf("%v: %d goroutines", time.Since(start).Round(time.Millisecond), now)

	// The topics garbage cannot name: data intact, end offsets unmoved.
	rfCheckTopic(t, n, "rf-healthy", 3, healthy)
	rfCheckTopic(t, n, "rf-guard", 2, guard)
	if got := rfEndOffsets(t, n, "rf-guard", 2); fmt.Sprint(got) != fmt.Sprint(guardEnds) {
		t.Fatalf("rf-guard end offsets moved: %v, were %v", got, guardEnds)
	}

	t.Logf("%v: healthy and guard topics intact", time.Since(start).Round(time.Millisecond))

	// What garbage did store in its own topic is readable: every batch up
	// to the high watermark is whole and decodes. The topic may have been
	// deleted and auto-created again with fewer partitions: a frame whose
	// API key was mutated can be a valid DeleteTopics of it (a Metadata
	// body for rf-junk-0 read as DeleteTopics v0-3 is one).
	md, err := kadm.NewClient(cl).Metadata(ctxT(t), rfJunk)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(len(md.Topics[rfJunk].Partitions)) {
		rfCheckDecodable(t, rc, rfJunk, p)
	}

	t.Logf("%v: %s decodes", time.Since(start).Round(time.Millisecond), rfJunk)

	// And the healthy client still produces after it all.
	r := &kgo.Record{Partition: 0, Key: []byte("after"), Value: []byte("after")}
	if err := cl.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
		t.Fatalf("produce after the garbage: %v", err)
	}
}

// rfStacks is every goroutine's stack.
func rfStacks() string {
	buf := make([]byte, 4<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// rfStuckDecoders waits up to d for no goroutine to be decoding a request
// frame (network.parseRequest) and returns the stacks of those that still
// are then ("" when none).
func rfStuckDecoders(d time.Duration) string {
	for end := time.Now().Add(d); ; {
		var stuck []string
		for _, g := range strings.Split(rfStacks(), "\n\n") {
			if strings.Contains(g, "samsa/internal/network.parseRequest(") {
				stuck = append(stuck, g)
			}
		}
		if len(stuck) == 0 {
			return ""
		}
		if time.Now().After(end) {
			return strings.Join(stuck, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type rfPos struct {
	partition int32
	offset    int64
}

type rfKV struct{ key, value string }

type rfStats struct {
	sent, dials, writeErrs int
	byMutation             [rfMutations]int
}

// rfSendGarbage writes count generated frames to addr, redialling
// whenever the broker closed the connection (as it must after a frame it
// cannot decode) and sometimes on its own, until deadline. A reader
// drains each connection's responses.
func rfSendGarbage(addr string, g *rfGen, count int, deadline time.Time) rfStats {
	var st rfStats
	var nc net.Conn
	var drained chan struct{}
	hangUp := func() {
		if nc != nil {
			nc.Close()
			<-drained
			nc = nil
		}
	}
	defer hangUp()
	for st.sent < count && time.Now().Before(deadline) {
		if nc == nil {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				// The broker must keep accepting: a failed dial is counted
				// as a failed write and retried.
				st.writeErrs++
				time.Sleep(10 * time.Millisecond)
				continue
			}
			st.dials++
			nc = c
			drained = make(chan struct{})
			go func() {
				defer close(drained)
				_, _ = io.Copy(io.Discard, c)
			}()
		}
		b, muts := g.frame()
		for _, m := range muts {
			st.byMutation[m]++
		}
		st.sent++
		_ = nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := nc.Write(b); err != nil {
			st.writeErrs++
			hangUp()
			continue
		}
		lie := false
		for _, m := range muts {
			lie = lie || m == rfSizeLie || m == rfShort
		}
		// A frame whose size lies leaves the broker waiting for bytes that
		// never come (or reading the next frame as its tail): hang up
		// after some of them, keep going after others.
		if (lie && g.rng.IntN(2) == 0) || g.rng.IntN(10) == 0 {
			hangUp()
		}
	}
	return st
}

func rfEndOffsets(t *testing.T, n *node, topic string, partitions int32) []int64 {
	t.Helper()
	out := make([]int64, partitions)
	for p := range partitions {
		out[p] = n.endOffset(topic, p)
	}
	return out
}

// rfCheckTopic consumes topic from the start and checks it holds exactly
// want (offset, key and value of every record).
func rfCheckTopic(t *testing.T, n *node, topic string, partitions int32, want map[rfPos]rfKV) {
	t.Helper()
	ends := rfEndOffsets(t, n, topic, partitions)
	var total int64
	offsets := make(map[int32]kgo.Offset)
	for p := range partitions {
		total += ends[p]
		offsets[p] = kgo.NewOffset().AtStart()
	}
	if total != int64(len(want)) {
		t.Fatalf("%s: end offsets %v hold %d records, want %d", topic, ends, total, len(want))
	}
	cl := n.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	ctx := ctxT(t)
	got := make(map[rfPos]rfKV)
	for int64(len(got)) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: read %d of %d records before the timeout", topic, len(got), total)
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s: fetch: %v", topic, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			got[rfPos{r.Partition, r.Offset}] = rfKV{string(r.Key), string(r.Value)}
		})
	}
	for pos, kv := range want {
		if got[pos] != kv {
			t.Errorf("%s-%d offset %d: %+v, want %+v", topic, pos.partition, pos.offset, got[pos], kv)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d records read, want %d", topic, len(got), len(want))
	}
}

// rfCheckDecodable fetches topic-partition from its log start offset to
// its high watermark and decodes every batch: what the broker stored from
// garbage must not poison the partition for consumers.
func rfCheckDecodable(t *testing.T, rc *rawConn, topic string, partition int32) {
	t.Helper()
	offset := int64(-1)
	batches := 0
	for range 10_000 {
		if offset < 0 {
			lo := kmsg.NewPtrListOffsetsRequest()
			lo.Version, lo.ReplicaID = 4, -1
			lt := kmsg.NewListOffsetsRequestTopic()
			lt.Topic = topic
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Partition, lp.Timestamp = partition, -2
			lt.Partitions = append(lt.Partitions, lp)
			lo.Topics = append(lo.Topics, lt)
			resp := rc.do(lo).(*kmsg.ListOffsetsResponse)
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
				t.Fatalf("%s-%d: log start offset: %+v", topic, partition, resp)
			}
			offset = resp.Topics[0].Partitions[0].Offset
		}
		resp := rc.do(fetchReq(11, topic, partition, offset)).(*kmsg.FetchResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("%s-%d: fetch at %d: %+v", topic, partition, offset, resp)
		}
		fp := resp.Topics[0].Partitions[0]
		if fp.ErrorCode == kerr.OffsetOutOfRange.Code {
			offset = -1 // garbage DeleteRecords moved the start meanwhile
			continue
		}
		if fp.ErrorCode != 0 {
			t.Fatalf("%s-%d: fetch at %d: %v", topic, partition, offset, kerr.ErrorForCode(fp.ErrorCode))
		}
		if offset >= fp.HighWatermark {
			t.Logf("%s-%d: %d stored batches decode, up to the high watermark %d", topic, partition, batches, fp.HighWatermark)
			return
		}
		b := fp.RecordBatches
		if len(b) == 0 {
			t.Fatalf("%s-%d: fetch at %d below the high watermark %d returned nothing", topic, partition, offset, fp.HighWatermark)
		}
		for len(b) > 0 {
			batch, _, rest, err := record.Next(b)
			if errors.Is(err, record.ErrTruncated) {
				break // the fetch cut the last batch: fetch again from it
			}
			if err != nil {
				t.Fatalf("%s-%d: stored batch at %d: %v", topic, partition, offset, err)
			}
			bt, err := record.DecodeBatch(batch)
			if err != nil {
				t.Fatalf("%s-%d: stored batch at %d does not decode: %v", topic, partition, offset, err)
			}
			if bt.Header.BaseOffset < offset && bt.Header.NextOffset() <= offset {
				t.Fatalf("%s-%d: fetch at %d returned the batch %d..%d", topic, partition, offset, bt.Header.BaseOffset, bt.Header.LastOffset())
			}
			offset = bt.Header.NextOffset()
			batches++
			b = rest
		}
	}
	t.Fatalf("%s-%d: not at the high watermark after 10,000 fetches (at %d)", topic, partition, offset)
}

// FuzzBrokerFrames sends one frame per input to a broker shared by all
// inputs of the process, then checks with a healthy connection that the
// broker still serves: an ApiVersions and a produce whose offset follows
// the previous one (nothing else writes to fz-healthy). The seeds are
// frames of random_frames_gen_test.go, valid and mutated.
func FuzzBrokerFrames(f *testing.F) {
	g := newRFGen(1)
	for range 64 {
		fr, _ := g.frame()
		f.Add(fr)
	}
	for range 16 {
		g.corr++
		f.Add(g.f.AppendRequest(nil, g.request(), g.corr))
	}

	s, err := server.Start(context.Background(), server.Options{
		Overrides: []string{"listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0", "log.dirs=" + f.TempDir(), "http.listener="},
		Logger:    quiet,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	addr := s.KafkaAddr()

	hc, err := net.Dial("tcp", addr)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { hc.Close() })
	healthy := &rawConn{nc: hc, br: bufio.NewReader(hc), f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("fz-healthy"))}
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version, ct.TimeoutMillis = 4, 5000
	tt := kmsg.NewCreateTopicsRequestTopic()
	tt.Topic, tt.NumPartitions, tt.ReplicationFactor = "fz-healthy", 1, 1
	ct.Topics = append(ct.Topics, tt)
	_ = hc.SetDeadline(time.Now().Add(20 * time.Second))
	healthy.corr++
	healthy.nc.Write(healthy.f.AppendRequest(nil, ct, healthy.corr))
	if _, err := healthy.recv(ct.ResponseKind()); err != nil {
		f.Fatal(err)
	}
	rec, err := record.Build(record.BuildOptions{}, []record.Record{{Timestamp: time.Now().UnixMilli(), Value: []byte("fz")}})
	if err != nil {
		f.Fatal(err)
	}
	next := int64(0)

	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) > 1<<20 {
			return
		}
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := nc.Write(frame); err == nil {
			// Half-close and read to the end: the broker handled the frame
			// (or gave up on it) when it closes its side. A long-poll
			// request may keep it open until the deadline: that is fine.
			_ = nc.(*net.TCPConn).CloseWrite()
			_, _ = io.Copy(io.Discard, nc)
		}
		nc.Close()
		// Decoding one frame is bounded by its bytes: a decoder still at
		// it seconds later spins (see TestRandomFramesKeepBrokerServing).
		if stuck := rfStuckDecoders(3 * time.Second); stuck != "" {
			t.Fatalf("the frame is still being decoded 3 s after its connection closed:\n%s", stuck)
		}

		healthy.t = t
		_ = hc.SetDeadline(time.Now().Add(10 * time.Second))
		av := kmsg.NewPtrApiVersionsRequest()
		av.Version = 3
		av.ClientSoftwareName, av.ClientSoftwareVersion = "fz", "1"
		if resp := healthy.do(av).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
			t.Fatalf("ApiVersions: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		resp := healthy.do(produceReq(9, "fz-healthy", 0, append([]byte(nil), rec...))).(*kmsg.ProduceResponse)
		p := resp.Topics[0].Partitions[0]
		// Only an input that names fz-healthy (improbable) writes there too.
		if p.ErrorCode != 0 || p.BaseOffset < next {
			t.Fatalf("healthy produce: offset %d error %v, want offset %d or more", p.BaseOffset, kerr.ErrorForCode(p.ErrorCode), next)
		}
		next = p.BaseOffset + 1
	})
}
