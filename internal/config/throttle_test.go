package config

import "testing"

func TestParseThrottledReplicas(t *testing.T) {
	for _, c := range []struct {
		in, out string
		all     bool
		bad     bool
	}{
		{in: "*", out: "*", all: true},
		{in: " * ", out: "*", all: true},
		{in: "", out: ""},
		{in: "0:101,0:102, 1:102 ", out: "0:101,0:102,1:102"},
		{in: "0:1,", out: "0:1"},
		{in: "0", bad: true},
		{in: "0:x", bad: true},
		{in: "-1:2", bad: true},
		{in: "*,0:1", bad: true},
		{in: "0:1:2", bad: true},
	} {
		got, err := ParseThrottledReplicas(c.in)
		if (err != nil) != c.bad {
			t.Errorf("%q: err %v, want bad=%v", c.in, err, c.bad)
			continue
		}
		if c.bad {
			continue
		}
		if got.All != c.all || got.String() != c.out {
			t.Errorf("%q: got %+v (%q), want %q", c.in, got, got.String(), c.out)
		}
	}
	tr, _ := ParseThrottledReplicas("0:101,0:102,1:102")
	if all, parts := tr.PartitionsOf(102); all || len(parts) != 2 || !parts[0] || !parts[1] {
		t.Errorf("PartitionsOf(102) = %v %v", all, parts)
	}
	if _, parts := tr.PartitionsOf(103); parts != nil {
		t.Errorf("PartitionsOf(103) = %v", parts)
	}
	if err := ValidateTopicConfig(map[string]string{"leader.replication.throttled.replicas": "0:1,1"}); err == nil {
		t.Error("ValidateTopicConfig accepted a bad throttled replicas list")
	}
	if err := ValidateTopicConfig(map[string]string{"follower.replication.throttled.replicas": "0:1,1:2"}); err != nil {
		t.Errorf("ValidateTopicConfig: %v", err)
	}
}

func FuzzParseThrottledReplicas(f *testing.F) {
	for _, s := range []string{"*", "", "0:1,2:3", "0:", ":1", "1:2,*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := ParseThrottledReplicas(s)
		if err != nil {
			return
		}
		again, err := ParseThrottledReplicas(tr.String())
		if err != nil || again.String() != tr.String() {
			t.Fatalf("%q -> %q does not parse back: %v", s, tr.String(), err)
		}
	})
}
