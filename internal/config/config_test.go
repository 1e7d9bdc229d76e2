package config

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestConfigParsePropertiesForms(t *testing.T) {
	in := "# comment\n! also comment\n\na=1\nb : two\nc three\nd=x\\\n  y\n  e = spaced  \n"
	got, err := ParseProperties(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "1", "b": "two", "c": "three", "d": "xy", "e": "spaced"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d keys %v, want %d", len(got), got, len(want))
	}
}

func TestConfigDefaultsAreSingleNode(t *testing.T) {
	c, err := Load("", nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeID != 1 || !c.HasRole("broker") || !c.HasRole("controller") {
		t.Fatalf("node %d roles %v", c.NodeID, c.ProcessRoles)
	}
	bl := c.BrokerListeners()
	if len(bl) != 1 || bl[0].Name != "PLAINTEXT" || bl[0].Host != "127.0.0.1" || bl[0].Port != 9092 {
		t.Fatalf("broker listeners %+v", bl)
	}
	if c.LogDirs[0] != "./samsa-data" || c.MetadataLogDir != "./samsa-data" {
		t.Fatalf("log dirs %v meta %s", c.LogDirs, c.MetadataLogDir)
	}
	if c.NumPartitions != 1 || c.DefaultReplicationFactor != 1 || !c.AutoCreateTopicsEnable || c.MessageMaxBytes != 1048588 || c.SocketRequestMaxBytes != 104857600 {
		t.Fatalf("defaults %+v", c)
	}
}

func TestConfigKRaftCombinedFile(t *testing.T) {
	file := `process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:19093
listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:19092
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kraft-combined-logs
num.partitions=3
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
`
	p := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(p, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p, []string{"num.partitions=5", "log.dirs=/tmp/other"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if c.NumPartitions != 5 || c.LogDirs[0] != "/tmp/other" {
		t.Fatalf("overrides not applied: %d %v", c.NumPartitions, c.LogDirs)
	}
	if len(c.BrokerListeners()) != 1 || !c.IsControllerListener("CONTROLLER") {
		t.Fatalf("listeners %+v", c.Listeners)
	}
	if c.AdvertisedListeners[0].Host != "localhost" {
		t.Fatalf("advertised %+v", c.AdvertisedListeners)
	}
	if got := c.TopicValue(nil, "retention.ms"); got != "604800000" {
		t.Fatalf("retention.ms from log.retention.hours = %s", got)
	}
}

// TestConfigSingleNodeInternalTopicDefaults: without
// controller.quorum.voters (the no-config single node) the internal
// topics default to one replica (min ISR 1), unless set.
func TestConfigSingleNodeInternalTopicDefaults(t *testing.T) {
	c, err := Load("", nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if c.OffsetsTopicReplicationFactor != 1 || c.TransactionStateLogReplicationFactor != 1 || c.TransactionStateLogMinISR != 1 {
		t.Fatalf("single-node defaults: offsets rf %d, txn rf %d, txn min isr %d", c.OffsetsTopicReplicationFactor, c.TransactionStateLogReplicationFactor, c.TransactionStateLogMinISR)
	}
	if c.DefaultReplicationFactor != 1 {
		t.Fatalf("default.replication.factor %d", c.DefaultReplicationFactor)
	}
	c, err = Load("", []string{"offsets.topic.replication.factor=2"}, quiet)
	if err != nil || c.OffsetsTopicReplicationFactor != 2 || c.TransactionStateLogReplicationFactor != 1 {
		t.Fatalf("explicit value: %v %+v", err, c)
	}
}

func TestConfigTransactionDefaults(t *testing.T) {
	c, err := Load("", []string{"controller.quorum.voters=1@127.0.0.1:9093"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if c.TransactionStateLogNumPartitions != 50 || c.TransactionStateLogReplicationFactor != 3 ||
		c.TransactionStateLogSegmentBytes != 104857600 || c.TransactionStateLogMinISR != 2 ||
		c.TransactionMaxTimeout != 15*time.Minute || c.TransactionalIDExpiration != 7*24*time.Hour ||
		c.TransactionAbortTimedOutInterval != 10*time.Second || c.TransactionRemoveExpiredInterval != time.Hour {
		t.Fatalf("transaction defaults %+v", c)
	}
	if c.OffsetsTopicReplicationFactor != 3 {
		t.Fatalf("offsets.topic.replication.factor %d, want 3", c.OffsetsTopicReplicationFactor)
	}
	c, err = Load("", []string{"transaction.max.timeout.ms=60000", "transaction.state.log.num.partitions=3"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if c.TransactionMaxTimeout != time.Minute || c.TransactionStateLogNumPartitions != 3 {
		t.Fatalf("overrides: %v %d", c.TransactionMaxTimeout, c.TransactionStateLogNumPartitions)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		override, wantInErr string
	}{
		{"num.partitions=abc", "num.partitions"},
		{"auto.create.topics.enable=maybe", "auto.create.topics.enable"},
		{"listeners=localhost:9092", "listeners"},
		{"num.partitions=0", "num.partitions"},
		{"process.roles=observer", "process.roles"},
		{"message.max.bytes=99999999999", "message.max.bytes"},
		{"listeners=SSL://127.0.0.1:0", "SSL"},
		{"transaction.max.timeout.ms=0", "transaction.max.timeout.ms"},
		{"transaction.state.log.num.partitions=0", "transaction.state.log.num.partitions"},
		{"transaction.state.log.min.isr=0", "transaction.state.log.min.isr"},
		{"log.cleaner.min.cleanable.ratio=NaN", "log.cleaner.min.cleanable.ratio"},
		{"fetch.max.bytes=100", "fetch.max.bytes"},
	} {
		_, err := Load("", []string{tc.override}, quiet)
		if err == nil || !strings.Contains(err.Error(), tc.wantInErr) {
			t.Errorf("%s: err %v, want one naming %s", tc.override, err, tc.wantInErr)
		}
	}
}

func TestConfigUnknownKeyWarnsOnly(t *testing.T) {
	var buf strings.Builder
	l := slog.New(slog.NewTextHandler(&buf, nil))
	if _, err := Load("", []string{"no.such.key=1"}, l); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "no.such.key") {
		t.Fatalf("no warning logged: %q", buf.String())
	}
}

func TestConfigTopicSources(t *testing.T) {
	c, err := Load("", []string{"log.segment.bytes=1000000", "log.roll.hours=1"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Entry{}
	for _, e := range c.Topic(map[string]string{"cleanup.policy": "compact"}) {
		got[e.Name] = e
	}
	for _, tc := range []struct {
		name, value string
		src         Source
	}{
		{"segment.bytes", "1000000", SourceStaticBroker},
		{"segment.ms", "3600000", SourceStaticBroker},
		{"cleanup.policy", "compact", SourceDynamicTopic},
		{"max.message.bytes", "1048588", SourceDefault},
	} {
		e := got[tc.name]
		if e.Value == nil || *e.Value != tc.value || e.Source != tc.src {
			t.Errorf("%s = %v source %d, want %s source %d", tc.name, e.Value, e.Source, tc.value, tc.src)
		}
	}
}

// TestConfigRetentionPrecedence: the retention.ms default comes from the
// most precise log.retention.* key set, as in Kafka (ms, then minutes,
// then hours); a negative value means forever (-1).
func TestConfigRetentionPrecedence(t *testing.T) {
	for _, tc := range []struct {
		keys []string
		want string
	}{
		{nil, "604800000"},
		{[]string{"log.retention.hours=1"}, "3600000"},
		{[]string{"log.retention.hours=1", "log.retention.minutes=2"}, "120000"},
		{[]string{"log.retention.hours=1", "log.retention.minutes=2", "log.retention.ms=5"}, "5"},
		{[]string{"log.retention.minutes=2", "log.retention.ms=-1"}, "-1"},
		{[]string{"log.retention.hours=-1"}, "-1"},
	} {
		c, err := Load("", tc.keys, quiet)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.TopicValue(nil, "retention.ms"); got != tc.want {
			t.Errorf("%v: retention.ms %s, want %s", tc.keys, got, tc.want)
		}
	}
}

func TestConfigValidateTopicConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg map[string]string
		ok  bool
	}{
		{map[string]string{"cleanup.policy": "compact,delete"}, true},
		{map[string]string{"cleanup.policy": "shred"}, false},
		{map[string]string{"retention.ms": "-1"}, true},
		{map[string]string{"retention.ms": "-2"}, false},
		{map[string]string{"segment.bytes": "x"}, false},
		{map[string]string{"not.a.topic.config": "1"}, false},
		{map[string]string{"message.timestamp.type": "LogAppendTime"}, true},
		{map[string]string{"min.cleanable.dirty.ratio": "1.5"}, false},
		{map[string]string{"min.cleanable.dirty.ratio": "NaN"}, false},
		{map[string]string{"min.cleanable.dirty.ratio": "nan"}, false},
		{map[string]string{"min.cleanable.dirty.ratio": "+Inf"}, false},
		{map[string]string{"min.cleanable.dirty.ratio": "-Infinity"}, false},
		{map[string]string{"min.cleanable.dirty.ratio": "0.25"}, true},
	} {
		err := ValidateTopicConfig(tc.cfg)
		if (err == nil) != tc.ok {
			t.Errorf("%v: err %v, want ok=%v", tc.cfg, err, tc.ok)
		}
	}
}

func FuzzConfigParseProperties(f *testing.F) {
	f.Add("a=b\nc: d\\\n e\n#x\n")
	f.Add("\\")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseProperties(strings.NewReader(s))
		if err == nil {
			_, _ = FromMap(m, quiet)
		}
	})
}

// TestConfigSegmentJitterFromBroker: segment.jitter.ms defaults to
// log.roll.jitter.ms, else log.roll.jitter.hours, as in Kafka.
func TestConfigSegmentJitterFromBroker(t *testing.T) {
	for _, tc := range []struct {
		keys []string
		want string
	}{
		{nil, "0"},
		{[]string{"log.roll.jitter.hours=2"}, "7200000"},
		{[]string{"log.roll.jitter.hours=2", "log.roll.jitter.ms=1500"}, "1500"},
	} {
		c, err := Load("", tc.keys, quiet)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.TopicValue(nil, "segment.jitter.ms"); got != tc.want {
			t.Errorf("%v: segment.jitter.ms = %s, want %s", tc.keys, got, tc.want)
		}
		if got := c.TopicValue(map[string]string{"segment.jitter.ms": "5"}, "segment.jitter.ms"); got != "5" {
			t.Errorf("%v: topic override gives %s", tc.keys, got)
		}
	}
}
