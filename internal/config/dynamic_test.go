package config

import (
	"errors"
	"testing"
)

func entryOf(t *testing.T, es []Entry, name string) Entry {
	t.Helper()
	for _, e := range es {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("no entry %s", name)
	return Entry{}
}

// TestDynamicPrecedence: per broker over cluster default over static over
// Kafka's default, a level hiding the synonyms below it, in the values
// consumers read and in DescribeConfigs' sources and synonyms.
func TestDynamicPrecedence(t *testing.T) {
	static, err := FromMap(map[string]string{"log.retention.hours": "5", "log.segment.bytes": "2048", "max.connections.per.ip": "10"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	def := map[string]string{"log.retention.ms": "60000", "log.segment.bytes": "4096", "log.cleanup.policy": "compact"}
	brk := map[string]string{"log.segment.bytes": "8192", "max.connections.per.ip": "3"}
	eff, err := static.WithDynamic(def, brk)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ topic, want string }{
		{"retention.ms", "60000"}, // the default's .ms hides the static .hours
		{"segment.bytes", "8192"},
		{"cleanup.policy", "compact"},
		{"retention.bytes", "-1"},
	} {
		if got := eff.TopicValue(nil, tc.topic); got != tc.want {
			t.Errorf("%s = %s, want %s", tc.topic, got, tc.want)
		}
	}
	if eff.MaxConnectionsPerIP != 3 || static.MaxConnectionsPerIP != 10 {
		t.Errorf("max.connections.per.ip: effective %d static %d", eff.MaxConnectionsPerIP, static.MaxConnectionsPerIP)
	}
	if got := static.TopicValue(nil, "retention.ms"); got != "18000000" {
		t.Errorf("static changed: retention.ms %s", got)
	}
	b := eff.Broker()
	for _, tc := range []struct {
		name, value string
		src         Source
		synonyms    int
	}{
		{"log.segment.bytes", "8192", SourceDynamicBroker, 4},
		{"log.retention.ms", "60000", SourceDynamicDefault, 3}, // then static and default .hours
		{"log.retention.hours", "5", SourceStaticBroker, 2},
		{"log.cleanup.policy", "compact", SourceDynamicDefault, 2},
		{"max.connections.per.ip", "3", SourceDynamicBroker, 3},
		{"num.partitions", "1", SourceDefault, 1},
	} {
		e := entryOf(t, b, tc.name)
		if e.Value == nil || *e.Value != tc.value || e.Source != tc.src || len(e.Synonyms) != tc.synonyms {
			t.Errorf("%s: %v %v synonyms %v, want %s %v %d", tc.name, e.Value, e.Source, e.Synonyms, tc.value, tc.src, tc.synonyms)
		}
	}
	if e := entryOf(t, b, "num.partitions"); !e.ReadOnly {
		t.Errorf("num.partitions is not read-only")
	}
	if e := entryOf(t, b, "log.retention.ms"); e.ReadOnly {
		t.Errorf("log.retention.ms is read-only")
	}
	top := eff.Topic(map[string]string{"segment.bytes": "100"})
	if e := entryOf(t, top, "segment.bytes"); *e.Value != "100" || e.Source != SourceDynamicTopic || e.Synonyms[1].Source != SourceDynamicBroker {
		t.Errorf("segment.bytes: %v %v %v", *e.Value, e.Source, e.Synonyms)
	}
	if e := entryOf(t, top, "retention.ms"); *e.Value != "60000" || e.Source != SourceDynamicDefault {
		t.Errorf("retention.ms: %v %v", *e.Value, e.Source)
	}
	dd := eff.DynamicDefaults()
	if len(dd) != 3 || dd[0].Source != SourceDynamicDefault {
		t.Errorf("dynamic defaults %v", dd)
	}
	// Cached: the same maps give the same Config.
	if again, _ := static.WithDynamic(def, brk); again != eff {
		t.Errorf("not cached")
	}
	if s, _ := eff.WithDynamic(nil, nil); s != static {
		t.Errorf("no dynamic configs is not the static config")
	}
}

// TestDynamicInvalidValuesLeftOut: a dynamic value that is not valid
// (written before a check existed, or not dynamic) is left out, the rest
// applies.
func TestDynamicInvalidValuesLeftOut(t *testing.T) {
	static, _ := FromMap(nil, nil)
	eff, err := static.WithDynamic(map[string]string{"log.dirs": "/x", "log.segment.bytes": "abc", "log.retention.bytes": "77"}, nil)
	if err == nil {
		t.Fatal("no error for ignored keys")
	}
	if eff.TopicValue(nil, "retention.bytes") != "77" || eff.TopicValue(nil, "segment.bytes") != "1073741824" || len(eff.LogDirs) != 1 || eff.LogDirs[0] != "./samsa-data" {
		t.Fatalf("effective %v %v %v", eff.TopicValue(nil, "retention.bytes"), eff.TopicValue(nil, "segment.bytes"), eff.LogDirs)
	}
}

func TestDynamicValidate(t *testing.T) {
	static, _ := FromMap(nil, nil)
	for _, tc := range []struct {
		props map[string]string
		per   bool
		want  error
	}{
		{map[string]string{"log.retention.ms": "1"}, false, nil},
		{map[string]string{"max.connections.per.ip.overrides": "127.0.0.1:5"}, true, nil},
		{map[string]string{"max.connections.per.ip.overrides": "nohost"}, true, ErrInvalidValue},
		{map[string]string{"listeners": "PLAINTEXT://:1"}, true, ErrNotDynamic},
		{map[string]string{"log.retention.hours": "1"}, false, ErrNotDynamic},
		{map[string]string{"bogus": "1"}, false, ErrUnknownKey},
		{map[string]string{"min.insync.replicas": "0"}, false, ErrInvalidValue},
		{map[string]string{"unclean.leader.election.enable": "yes"}, false, ErrInvalidValue},
	} {
		var def, brk map[string]string
		if tc.per {
			brk = tc.props
		} else {
			def = tc.props
		}
		err := static.ValidateDynamic(def, brk, tc.per)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%v: %v, want %v", tc.props, err, tc.want)
		}
	} // A stored default the checks now refuse does not block a change of
	// a broker's own configs.
	if err := static.ValidateDynamic(map[string]string{"log.dirs": "/x"}, map[string]string{"log.retention.ms": "5"}, true); err != nil {
		t.Errorf("per-broker change blocked by a stored default: %v", err)
	}
}

// FuzzConfigDynamic: any key and value from a request (validated) or
// from the metadata log (applied) never panics, and what validates
// applies without error.
func FuzzConfigDynamic(f *testing.F) {
	f.Add("log.retention.ms", "60000", false)
	f.Add("max.connections.per.ip.overrides", "[::1]:5,127.0.0.1:x", true)
	f.Add("log.cleaner.min.cleanable.ratio", "NaN", false)
	f.Add("log.segment.bytes", "-9", true)
	static, err := FromMap(nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, k, v string, perBroker bool) {
		props := map[string]string{k: v}
		var def, brk map[string]string
		if perBroker {
			brk = props
		} else {
			def = props
		}
		verr := static.ValidateDynamic(def, brk, perBroker)
		eff, err := static.WithDynamic(def, brk)
		if eff == nil {
			t.Fatal("nil config")
		}
		if verr == nil && err != nil {
			t.Fatalf("%s=%q validated but does not apply: %v", k, v, err)
		}
		_ = eff.Broker()
		_ = eff.Topic(nil)
		_ = eff.DynamicDefaults()
	})
}
