package clients

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestKcatMetadataList checks that `kcat -L` lists the broker at its bound
// address and a topic with its partitions.
func TestKcatMetadataList(t *testing.T) {
	kcat := requireExecutable(t, "kcat")
	b := startBroker(t)
	topic := topicName(t)
	createTopic(t, b.Addr, topic, 3)

	run := runClient(t, 30*time.Second, nil, kcat, "-b", b.Addr, "-L")
	for _, want := range []string{
		"1 brokers:",
		"broker 1 at " + b.Addr,
		fmt.Sprintf("topic %q with 3 partitions:", topic),
		"partition 0, leader 1, replicas: 1, isrs: 1",
		"partition 2, leader 1, replicas: 1, isrs: 1",
	} {
		if !strings.Contains(run.Stdout, want) {
			t.Errorf("kcat -L output lacks %q", want)
		}
	}
}

// TestKcatCompressionRoundTrip produces keyed records with kcat (librdkafka)
// using each codec, reads them back with kcat, and checks with franz-go
// that the stored batches really carry the codec: librdkafka silently sends
// uncompressed batches to a broker that does not advertise what it expects.
func TestKcatCompressionRoundTrip(t *testing.T) {
	kcat := requireExecutable(t, "kcat")
	b := startBroker(t)
	codecs := []struct {
		name string
		code uint8
	}{{"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}}
	for _, codec := range codecs {
		t.Run(codec.name, func(t *testing.T) {
			topic := topicName(t)
			createTopic(t, b.Addr, topic, 1)
			const n = 50
			var in, want strings.Builder
			for i := range n {
				// Repetitive values: librdkafka falls back to sending
				// uncompressed when compression does not shrink a batch.
				v := fmt.Sprintf("value-%d-%s", i, strings.Repeat("samsa", 20))
				fmt.Fprintf(&in, "key-%d:%s\n", i, v)
				fmt.Fprintf(&want, "key-%d=%s\n", i, v)
			}
			runClient(t, 60*time.Second, strings.NewReader(in.String()), kcat,
				"-b", b.Addr, "-P", "-t", topic, "-K:", "-z", codec.name, "-X", "linger.ms=100")
			run := runClient(t, 60*time.Second, nil, kcat,
				"-b", b.Addr, "-C", "-t", topic, "-e", "-o", "beginning", "-f", `%k=%s\n`)
			if run.Stdout != want.String() {
				t.Errorf("kcat -C output differs:\n got: %q\nwant: %q", tail(run.Stdout), tail(want.String()))
			}

			recs := consumeAll(t, b.Addr, topic)
			if len(recs) != n {
				t.Fatalf("franz-go read %d records, want %d", len(recs), n)
			}
			for i, r := range recs {
				if got := r.Attrs.CompressionType(); got != codec.code {
					t.Fatalf("record %d (offset %d) stored with %s, want %s", i, r.Offset, compressionName(got), codec.name)
				}
				if k := fmt.Sprintf("key-%d", i); string(r.Key) != k {
					t.Errorf("record %d: key %q, want %q", i, r.Key, k)
				}
			}
		})
	}
}
