package console

import (
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden pages in testdata/")

// TestConsoleGroupPageGolden renders the group page from a fixed view (two
// members, three partitions, a lag history) and compares it with
// testdata/group.golden.html; -update rewrites it.
func TestConsoleGroupPageGolden(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c, err := New(Options{Bootstrap: "127.0.0.1:1", Now: func() time.Time { return at }, SampleInterval: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var samples []lagSample
	for i := range 5 {
		samples = append(samples, lagSample{At: at.Add(time.Duration(i-4) * 5 * time.Second), Offsets: int64(100 - 20*i), Seconds: float64(40 - 8*i)})
	}
	v := groupView{
		Name: "billing", State: "Stable", ProtocolType: "consumer", Protocol: "cooperative-sticky", Coordinator: 1,
		Lag: 20, LagSeconds: 8.25, Sampling: "5s",
		Members: []memberRow{
			{MemberID: "m-1", ClientID: "billing-a", ClientHost: "/10.0.0.1", Assigned: []string{"orders: 0,1"}},
			{MemberID: "m-2", InstanceID: "pod-2", ClientID: "billing-b", ClientHost: "/10.0.0.2", Assigned: []string{"orders: 2"}},
		},
		Partitions: []groupPartitionRow{
			{Topic: "orders", Partition: 0, CurrentOffset: 90, LogEndOffset: 100, Lag: 10, LagSeconds: 8.25, ClientID: "billing-a"},
			{Topic: "orders", Partition: 1, CurrentOffset: 50, LogEndOffset: 60, Lag: 10, LagSeconds: 3, ClientID: "billing-a"},
			{Topic: "orders", Partition: 2, CurrentOffset: -1, LogEndOffset: 7, Lag: -1, LagSeconds: -1, ClientID: "billing-b"},
		},
		OffsetsPlot: newPlot(samples, sampleOffsets, 480, 80),
		SecondsPlot: newPlot(samples, sampleSeconds, 480, 80),
	}
	rec := httptest.NewRecorder()
	c.render(rec, httptest.NewRequest("GET", "/groups/billing", nil), "group", page{Title: "Consumer group billing", Nav: "groups", Data: v}, nil)
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	golden := filepath.Join("testdata", "group.golden.html")
	if *update {
		if err := os.WriteFile(golden, rec.Body.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.Body.String(); got != string(want) {
		t.Errorf("group page differs from %s (rerun with -update to accept):\n%s", golden, got)
	}
}

func TestConsolePlotScalesToTheBox(t *testing.T) {
	at := time.Unix(1000, 0)
	p := newPlot([]lagSample{{At: at, Offsets: 0}, {At: at.Add(time.Second), Offsets: 50}, {At: at.Add(2 * time.Second), Offsets: 100}}, sampleOffsets, 100, 22)
	if want := "0.0,21.0 50.0,11.0 100.0,1.0"; p.Points != want {
		t.Errorf("points %q, want %q", p.Points, want)
	}
	if p.Max != "100" || p.Last != "100" || p.Span != "2s" || p.N != 3 {
		t.Errorf("plot labels %+v", p)
	}
	if p := newPlot([]lagSample{{At: at, Offsets: 3}}, sampleOffsets, 100, 22); p.Points != "" || p.Last != "3" {
		t.Errorf("one sample: %+v, want no line", p)
	}
	if p := newPlot([]lagSample{{At: at, Seconds: -1}, {At: at.Add(time.Second), Seconds: -1}}, sampleSeconds, 10, 10); p.Last != "?" || strings.Contains(p.Points, "NaN") {
		t.Errorf("unknown seconds: %+v", p)
	}
}

func TestConsoleLagHistoryIsBounded(t *testing.T) {
	h := newLagHistory()
	at := time.Unix(0, 0)
	for i := range lagSamples + 25 {
		h.add(map[string]lagSample{"a": {At: at.Add(time.Duration(i) * time.Second), Offsets: int64(i)}, "b": {}})
	}
	s := h.samples("a")
	if len(s) != lagSamples || s[0].Offsets != 25 || s[len(s)-1].Offsets != lagSamples+24 {
		t.Fatalf("%d samples from %d to %d, want %d from 25", len(s), s[0].Offsets, s[len(s)-1].Offsets, lagSamples)
	}
	if c := cap(h.groups["a"]); c > 2*lagSamples {
		t.Errorf("ring capacity grew to %d", c)
	}
	h.add(map[string]lagSample{"a": {}})
	if len(h.samples("b")) != 0 {
		t.Error("a group no longer listed keeps its samples")
	}
}

func TestConsoleShowTextOrHex(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		text string
		hex  bool
		cut  bool
	}{
		{[]byte("héllo\tworld\n"), "héllo\tworld\n", false, false},
		{[]byte{0, 1, 0xab}, "00 01 ab", true, false},
		{[]byte("a\x1bb"), "61 1b 62", true, false},
		{[]byte(strings.Repeat("x", maxShownBytes+1)), strings.Repeat("x", maxShownBytes), false, true},
		// A rune split by the cut is still text.
		{[]byte(strings.Repeat("x", maxShownBytes-1) + "é"), strings.Repeat("x", maxShownBytes-1) + "\xc3", false, true},
	} {
		s := show(tc.in)
		if s.Text != tc.text || s.Hex != tc.hex || s.Cut != tc.cut || s.Len != len(tc.in) {
			t.Errorf("show(%q) = %+v", tc.in, s)
		}
	}
}

// FuzzConsoleShow checks that any record bytes display without a panic,
// within the bound, as hex or as a prefix of the input.
func FuzzConsoleShow(f *testing.F) {
	f.Add([]byte("<script>alert(1)</script>"))
	f.Add([]byte{0xff, 0xfe, 0})
	f.Add([]byte(strings.Repeat("é", 600)))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := show(b)
		if s.Len != len(b) || s.Cut != (len(b) > maxShownBytes) {
			t.Fatalf("len %d cut %v for %d bytes", s.Len, s.Cut, len(b))
		}
		if s.Hex {
			if len(s.Text) > 3*maxShownBytes || !utf8.ValidString(s.Text) {
				t.Fatalf("hex text of %d bytes", len(s.Text))
			}
			return
		}
		if len(s.Text) > maxShownBytes || !strings.HasPrefix(string(b), s.Text) {
			t.Fatalf("text %q is not a bounded prefix of the input", s.Text)
		}
	})
}
