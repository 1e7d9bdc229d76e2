package clients

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// consumerLine is what the seed consumer prints per record.
var consumerLine = regexp.MustCompile(`^Topic: (\S+), Partition: (\d+), Offset: (\d+), Key: (.*), Value: (.*)$`)

func seedScript(t *testing.T) string {
	t.Helper()
	requirePythonModule(t, "kafka")
	script, err := filepath.Abs(filepath.Join("python", "kafka_python_seed.py"))
	if err != nil {
		t.Fatal(err)
	}
	return script
}

// checkSeedConsumerOutput checks that the seed consumer printed exactly the
// records {"str": "resultI"} for I in [from, to) of partition 0 of topic,
// with keys None and offsets equal to I, between its [begin] and [end]
// lines.
func checkSeedConsumerOutput(t *testing.T, stdout, topic string, from, to int) {
	t.Helper()
	if !strings.Contains(stdout, "[begin] get consumer list") || !strings.Contains(stdout, "[end] get consumer list") {
		t.Errorf("consumer output lacks the [begin]/[end] lines")
	}
	i := from
	for _, line := range strings.Split(stdout, "\n") {
		m := consumerLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if m[1] != topic || m[2] != "0" || m[4] != "None" {
			t.Errorf("record line %q: want topic %s, partition 0, key None", line, topic)
		}
		if off, _ := strconv.Atoi(m[3]); off != i {
			t.Errorf("record line %q: offset %d, want %d", line, off, i)
		}
		if want := fmt.Sprintf(`{"str": "result%d"}`, i); m[5] != want {
			t.Errorf("record line %q: value %q, want %q", line, m[5], want)
		}
		i++
	}
	if i != to {
		t.Errorf("consumer printed %d records, want %d", i-from, to-from)
	}
}

// TestKafkaPythonSeedRoundTrip runs our users' starting point unchanged in
// substance: kafka-python's KafkaProducer (gzip, JSON values) sends 100
// records to an auto-created topic, then KafkaConsumer reads them back from
// the earliest offset without a group, once per acks setting.
func TestKafkaPythonSeedRoundTrip(t *testing.T) {
	script := seedScript(t)
	b := startBroker(t)
	for _, acks := range []string{"0", "1", "all"} {
		t.Run("acks="+acks, func(t *testing.T) {
			t.Parallel()
			// The seed writes to "test"; each acks setting gets its own
			// topic so the three runs cannot see each other's records.
			topic := "test"
			if acks != "0" {
				topic = "test-acks-" + acks
			}
			runClient(t, 90*time.Second, nil, pythonPath, script, "produce", b.Addr, topic, acks, "100")
			run := runClient(t, 90*time.Second, nil, pythonPath, script, "consume", b.Addr, topic)
			checkSeedConsumerOutput(t, run.Stdout, topic, 0, 100)

			// Nothing beyond the 100: the log end offset is exactly 100.
			if ends := endOffsets(t, b.Addr, topic); ends[0] != 100 || len(ends) != 1 {
				t.Errorf("end offsets %v, want partition 0 at 100", ends)
			}
			// kafka-python compressed with gzip, and the broker kept the
			// batches as sent. kafka-python sends a batch uncompressed
			// when gzip would not shrink it (a lone small record, such as
			// the first one while the rest wait for metadata), so a few
			// records may be stored uncompressed, never other codecs.
			gzipped := 0
			for _, r := range consumeAll(t, b.Addr, topic) {
				switch c := r.Attrs.CompressionType(); c {
				case 0:
				case 1:
					gzipped++
				default:
					t.Fatalf("record at offset %d stored with %s, want gzip", r.Offset, compressionName(c))
				}
			}
			if gzipped < 90 {
				t.Errorf("%d of 100 records stored gzip-compressed, want at least 90", gzipped)
			}
		})
	}
}

// TestKafkaPythonSeedConsumerGroup runs the seed's consumer exactly as
// written (group_id='my-group', auto commit): the first run reads all 100
// records, a second run of the same group reads only what was produced
// after the first committed.
func TestKafkaPythonSeedConsumerGroup(t *testing.T) {
	script := seedScript(t)
	b := startBroker(t)
	requireGroupCoordinator(t, b.Addr)
	topic := "test"
	runClient(t, 90*time.Second, nil, pythonPath, script, "produce", b.Addr, topic, "1", "100")
	run := runClient(t, 90*time.Second, nil, pythonPath, script, "consume-group", b.Addr, topic, "my-group")
	checkSeedConsumerOutput(t, run.Stdout, topic, 0, 100)

	runClient(t, 90*time.Second, nil, pythonPath, script, "produce", b.Addr, topic, "1", "100")
	run = runClient(t, 90*time.Second, nil, pythonPath, script, "consume-group", b.Addr, topic, "my-group")
	// The second batch of 100 is again result0..result99, at offsets
	// 100..199: the group resumes at its committed offset 100.
	var values []string
	for _, line := range strings.Split(run.Stdout, "\n") {
		if m := consumerLine.FindStringSubmatch(line); m != nil {
			if off, _ := strconv.Atoi(m[3]); off < 100 {
				t.Errorf("second run re-read offset %d: the group's commit was lost", off)
			}
			values = append(values, m[5])
		}
	}
	if len(values) != 100 {
		t.Errorf("second run read %d records, want 100", len(values))
	}
}
