package storage

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestCheckpointFilesGoldenFormat(t *testing.T) {
	dir := t.TempDir()
	m := openTestManager(t, dir, nil)
	id := [16]byte{0x6a, 0x1f, 0x3c, 0x00, 0xff, 0xee, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0}
	a, _ := m.CreateLog("orders", 0, id, Config{})
	b, _ := m.CreateLog("orders", 1, id, Config{})
	c, _ := m.CreateLog("audit-log", 12, [16]byte{}, Config{})
	mustAppend(t, a, makeBatch(t, batchSpec{n: 5}))
	mustAppend(t, b, makeBatch(t, batchSpec{n: 2}))
	a.SetHighWatermark(3)
	c.SetHighWatermark(0)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{"recovery-point-offset-checkpoint", "0\n3\naudit-log 12 0\norders 0 5\norders 1 2\n"},
		{"replication-offset-checkpoint", "0\n3\naudit-log 12 0\norders 0 3\norders 1 0\n"},
		{"log-start-offset-checkpoint", "0\n3\naudit-log 12 0\norders 0 0\norders 1 0\n"},
		{"orders-0/partition.metadata", "version: 0\ntopic_id: ah88AP_uECAwQFBgcICQoA\n"},
		{".kafka_cleanshutdown", ""},
	} {
		got, err := os.ReadFile(filepath.Join(dir, tc.file))
		if err != nil || string(got) != tc.want {
			t.Errorf("%s = %q (%v), want %q", tc.file, got, err, tc.want)
		}
	}
}

func TestParseOffsetCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want map[TopicPartition]int64
		ok   bool
	}{
		{"empty", "0\n0\n", map[TopicPartition]int64{}, true},
		{"entries", "0\n2\na 0 5\nb-c 3 -1\n", map[TopicPartition]int64{{"a", 0}: 5, {"b-c", 3}: -1}, true},
		{"bad version", "1\n0\n", nil, false},
		{"count mismatch", "0\n2\na 0 5\n", nil, false},
		{"no newline", "0\n1\na 0 5", nil, false},
		{"bad offset", "0\n1\na 0 x\n", nil, false},
		{"extra field", "0\n1\na 0 1 2\n", nil, false},
		{"negative partition", "0\n1\na -1 2\n", nil, false},
		{"empty file", "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseOffsetCheckpoint([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("err %v", err)
			}
			if tc.ok && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if tc.ok && string(EncodeOffsetCheckpoint(got)) != tc.in && tc.name != "entries" {
				t.Fatalf("re-encoded %q", EncodeOffsetCheckpoint(got))
			}
		})
	}
}

func TestParseTopicPartitionDir(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want TopicPartition
		ok   bool
	}{
		{"orders-0", TopicPartition{"orders", 0}, true},
		{"my-topic-12", TopicPartition{"my-topic", 12}, true},
		{"orders-0.abc-delete", TopicPartition{}, false},
		{"orders", TopicPartition{}, false},
		{"-1", TopicPartition{}, false},
		{"orders-", TopicPartition{}, false},
		{"orders-+1", TopicPartition{}, false},
	} {
		got, ok := parseTopicPartitionDir(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%q: %v %v", tc.in, got, ok)
		}
	}
}

func TestLeaderEpochCheckpointRoundTrip(t *testing.T) {
	es := []epochEntry{{0, 0}, {3, 17}, {4, 17}}
	b := encodeLeaderEpochCheckpoint(es)
	if string(b) != "0\n3\n0 0\n3 17\n4 17\n" {
		t.Fatalf("%q", b)
	}
	got, err := parseLeaderEpochCheckpoint(b)
	if err != nil || !reflect.DeepEqual(got, es) {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := parseLeaderEpochCheckpoint([]byte("0\n2\n3 5\n2 9\n")); err == nil {
		t.Fatal("epochs out of order accepted")
	}
}
