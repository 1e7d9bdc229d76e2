package console_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"samsa/internal/console"
	"samsa/internal/server"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startNode starts a real single Samsa node (no HTTP listener of its own)
// and returns its Kafka address.
func startNode(t *testing.T) string {
	t.Helper()
	s, err := server.Start(context.Background(), server.Options{
		Overrides: []string{
			"listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
			"log.dirs=" + t.TempDir(), "http.listener=",
			"group.initial.rebalance.delay.ms=0",
		},
		Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.KafkaAddr()
}

// startConsole serves a console of the cluster at addr over a real socket.
func startConsole(t *testing.T, addr string, opts console.Options) string {
	t.Helper()
	opts.Bootstrap, opts.Logger = addr, quiet
	c, err := console.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(c)
	t.Cleanup(func() { hs.Close(); c.Close() })
	return hs.URL
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	hc := &http.Client{Timeout: 20 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// mustGet fetches a page that must answer 200 and contain every want.
func mustGet(t *testing.T, url string, want ...string) string {
	t.Helper()
	code, body := get(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", url, code, body)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("GET %s: no %q in\n%s", url, w, body)
		}
	}
	return body
}

func newClient(t *testing.T, addr string) (*kgo.Client, *kadm.Client) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("orders"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

func produce(t *testing.T, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func createTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
}

func commit(t *testing.T, adm *kadm.Client, group, topic string, partition int32, at int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var os kadm.Offsets
	os.AddOffset(topic, partition, at, -1)
	if err := adm.CommitAllOffsets(ctx, group, os); err != nil {
		t.Fatal(err)
	}
}

func TestConsolePagesShowRealTopicsGroupsAndRecords(t *testing.T) {
	addr := startNode(t)
	cl, adm := newClient(t, addr)
	retention := "86400000"
	createTopic(t, adm, "orders", 3, map[string]*string{"retention.ms": &retention})
	old := time.Now().Add(-90 * time.Second)
	for i := range 10 {
		produce(t, cl, &kgo.Record{Partition: 0, Key: []byte("order-" + string(rune('0'+i))), Value: []byte(`{"id":` + string(rune('0'+i)) + `}`), Timestamp: old,
			Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t-1")}}})
	}
	commit(t, adm, "billing", "orders", 0, 4)
	url := startConsole(t, addr, console.Options{Timeout: 10 * time.Second, SampleInterval: 50 * time.Millisecond})

	_, port, _ := net.SplitHostPort(addr)
	mustGet(t, url+"/", "Cluster id", ">1<", ">"+port+"<", "controller", ">1</a> (and")
	mustGet(t, url+"/topics", `href="/topics/orders"`, ">3<", ">10<", "__consumer_offsets")
	mustGet(t, url+"/topics/orders",
		`href="/topics/orders/partitions/0"`, "LOG-END-OFFSET", ">10<",
		"<strong>retention.ms</strong>", "86400000", "DYNAMIC_TOPIC_CONFIG", "segment.bytes")
	body := mustGet(t, url+"/topics/orders/partitions/0?n=3", "order-7", "order-8", "order-9", `{&#34;id&#34;:9}`, "trace=t-1", "← older")
	if strings.Contains(body, "order-6") {
		t.Errorf("n=3 showed more than the last 3 records:\n%s", body)
	}
	mustGet(t, url+"/topics/orders/partitions/0?offset=0&n=2", "order-0", "order-1", "newer →")
	mustGet(t, url+"/groups", `href="/groups/billing"`, "Empty", ">6<")
	body = mustGet(t, url+"/groups/billing", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG-SECONDS", ">4<", ">10<", ">6<")
	// The record at the committed offset (4) was written 90 s ago.
	i := strings.Index(body, "oldest unconsumed record written ")
	if i < 0 {
		t.Fatalf("no lag in seconds on the group page:\n%s", body)
	}
	var secs float64
	if _, err := fmt.Sscan(body[i+len("oldest unconsumed record written "):], &secs); err != nil || secs < 89 || secs > 600 {
		t.Errorf("lag seconds = %v (%v), want about 90", secs, err)
	}

	// The sampler (started by the first page) fills the plots.
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, body = get(t, url+"/groups/billing")
		if strings.Contains(body, "<polyline points=") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no lag plot after 15 s:\n%s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	body = mustGet(t, url+"/groups", `<svg class="spark"`, "LAG-SECONDS*")
	m := regexp.MustCompile(`<td class="num">([0-9.]+)</td><td><svg class="spark"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no sampled lag seconds on the groups page:\n%s", body)
	}
	if secs, err := strconv.ParseFloat(m[1], 64); err != nil || secs < 89 || secs > 600 {
		t.Errorf("sampled lag seconds %q, want about 90", m[1])
	}
}

func TestConsoleEscapesHostileRecordsAndNames(t *testing.T) {
	addr := startNode(t)
	cl, adm := newClient(t, addr)
	createTopic(t, adm, "orders", 1, nil)
	produce(t, cl,
		&kgo.Record{Key: []byte("<script>alert(1)</script>"), Value: []byte(`"><img src=x onerror=alert(2)>`),
			Headers: []kgo.RecordHeader{{Key: "<b>h</b>", Value: []byte("<i>v</i>")}}},
		&kgo.Record{Key: []byte{0, 1, 0xfe, 0xff}, Value: make([]byte, 5000)},
	)
	hostileGroup := `<script>alert("g")</script>`
	commit(t, adm, hostileGroup, "orders", 0, 1)
	url := startConsole(t, addr, console.Options{Timeout: 10 * time.Second})

	body := mustGet(t, url+"/topics/orders/partitions/0",
		"&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;",
		"&lt;b&gt;h&lt;/b&gt;=&lt;i&gt;v&lt;/i&gt;",
		"00 01 fe ff", "(5000 bytes)")
	for _, raw := range []string{"<script>", "<img", "<b>h", "<i>v"} {
		if strings.Contains(body, raw) {
			t.Errorf("record page contains raw %q", raw)
		}
	}
	body = mustGet(t, url+"/groups", "&lt;script&gt;alert(&#34;g&#34;)&lt;/script&gt;", `href="/groups/%3Cscript%3Ealert%28%22g%22%29%3C%2Fscript%3E"`)
	if strings.Contains(body, "<script>") {
		t.Errorf("groups page contains a raw <script>:\n%s", body)
	}
	body = mustGet(t, url+"/groups/%3Cscript%3Ealert%28%22g%22%29%3C%2Fscript%3E", "CURRENT-OFFSET")
	if strings.Contains(body, "<script>") {
		t.Errorf("group page contains a raw <script>:\n%s", body)
	}
	resp, err := http.Get(url + "/topics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
}

func TestConsoleIsReadOnly(t *testing.T) {
	url := startConsole(t, startNode(t), console.Options{})
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, url+"/topics", strings.NewReader("x"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /topics: %d, want 405", m, resp.StatusCode)
		}
	}
}

func TestConsoleUnknownTopicAndGroupAre404(t *testing.T) {
	url := startConsole(t, startNode(t), console.Options{Timeout: 10 * time.Second})
	for _, p := range []string{"/topics/nope", "/topics/nope/partitions/0", "/groups/nope", "/topics/x/partitions/abc", "/nothing"} {
		if code, body := get(t, url+p); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404\n%s", p, code, body)
		}
	}
}

func TestConsoleUnreachableClusterAnswersPromptly(t *testing.T) {
	// A port that was just free: nothing listens there (connection
	// refused).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	// A listener that accepts and never answers: only the deadline ends
	// the page's calls.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 64)
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			select {
			case held <- c:
			default:
				c.Close()
			}
		}
	}()
	t.Cleanup(func() {
		silent.Close()
		<-acceptDone
		close(held)
		for c := range held {
			c.Close()
		}
	})

	const timeout = 500 * time.Millisecond
	for _, addr := range []string{refused, silent.Addr().String()} {
		url := startConsole(t, addr, console.Options{Timeout: timeout})
		for _, p := range []string{"/", "/topics", "/topics/orders", "/groups", "/groups/g", "/topics/orders/partitions/0"} {
			began := time.Now()
			code, body := get(t, url+p)
			took := time.Since(began)
			if code != http.StatusServiceUnavailable && code != http.StatusBadGateway {
				t.Errorf("%s: GET %s: %d, want 502 or 503", addr, p, code)
			}
			if !strings.Contains(body, `class="error"`) {
				t.Errorf("%s: GET %s: no error shown:\n%s", addr, p, body)
			}
			if took > 4*timeout {
				t.Errorf("%s: GET %s took %v with a %v timeout", addr, p, took, timeout)
			}
			if testing.Verbose() && p == "/" {
				i := strings.Index(body, `class="error"`)
				t.Logf("%s: GET / %d in %v: %.200s", addr, code, took, body[max(i, 0):])
			}
		}
	}
}

// TestConsoleGroupWithMembersAndCompressedRecords reads records that a
// producer compressed (the browser decompresses every codec) and a group
// with a live member.
func TestConsoleGroupWithMembersAndCompressedRecords(t *testing.T) {
	addr := startNode(t)
	_, adm := newClient(t, addr)
	codecs := map[string]kgo.CompressionCodec{
		"gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		createTopic(t, adm, "c-"+name, 1, nil)
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerBatchCompression(codec))
		if err != nil {
			t.Fatal(err)
		}
		produce(t, cl, &kgo.Record{Topic: "c-" + name, Value: []byte(strings.Repeat(name+"-value ", 50))}, &kgo.Record{Topic: "c-" + name, Value: []byte(name + "-last")})
		cl.Close()
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("live"), kgo.ConsumeTopics("c-zstd"),
		kgo.ClientID("live-consumer"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(consumer.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := 0
	for got < 2 {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	url := startConsole(t, addr, console.Options{Timeout: 10 * time.Second})
	for name := range codecs {
		mustGet(t, url+"/topics/c-"+name+"/partitions/0", name+"-value "+name+"-value", name+"-last")
	}
	// The member is there once the group has synced; it commits nothing
	// (auto-commit off): no CURRENT-OFFSET, and kadm counts the lag from
	// the log start offset.
	mustGet(t, url+"/groups/live", "Stable", "live-consumer", "c-zstd: 0",
		`<td class="num">0</td><td class="num">-</td><td class="num">2</td><td class="num">2</td><td class="num">-</td><td>live-consumer</td>`)
}

// TestConsoleAgainstKfake runs the console against franz-go's in-memory
// kfake: the console is a plain Kafka client and works with any broker.
func TestConsoleAgainstKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "fake-topic"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	// kfake closes the connection on the ApiVersions v5 franz-go sends.
	pin := kgo.MaxVersions(kversion.V4_0_0())
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), pin, kgo.DefaultProduceTopic("fake-topic"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	produce(t, cl, &kgo.Record{Key: []byte("fk"), Value: []byte("from-kfake")})
	url := startConsole(t, addr, console.Options{Timeout: 10 * time.Second, ClientOpts: []kgo.Opt{pin}})
	mustGet(t, url+"/", "Cluster id")
	mustGet(t, url+"/topics", `href="/topics/fake-topic"`)
	mustGet(t, url+"/topics/fake-topic/partitions/0", "from-kfake")
}
