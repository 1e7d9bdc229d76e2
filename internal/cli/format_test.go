package cli

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestFormatParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		allowed string
		want    []fmtToken
		err     bool
	}{
		{in: `%v\n`, allowed: inputVerbs, want: []fmtToken{{verb: 'v'}, {lit: "\n"}}},
		{in: `%k:%v\t%%\\x`, allowed: inputVerbs, want: []fmtToken{{verb: 'k'}, {lit: ":"}, {verb: 'v'}, {lit: "\t%\\x"}}},
		{in: `plain`, allowed: inputVerbs, want: []fmtToken{{lit: "plain"}}},
		{in: `%o`, allowed: inputVerbs, err: true},
		{in: `%o`, allowed: outputVerbs, want: []fmtToken{{verb: 'o'}}},
		{in: `%`, allowed: outputVerbs, err: true},
		{in: `\`, allowed: outputVerbs, err: true},
		{in: `\q`, allowed: outputVerbs, err: true},
	} {
		got, err := parseFormat(tc.in, tc.allowed)
		if (err != nil) != tc.err {
			t.Errorf("parseFormat(%q): err = %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if !tc.err && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseFormat(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// rec is the comparable part of a parsed record.
type rec struct {
	Key, Value string
	Partition  int32
	Millis     int64
	Headers    string
}

func toRec(r *kgo.Record) rec {
	var hs []string
	for _, h := range r.Headers {
		hs = append(hs, h.Key+"="+string(h.Value))
	}
	ms := int64(0)
	if !r.Timestamp.IsZero() {
		ms = r.Timestamp.UnixMilli()
	}
	return rec{Key: string(r.Key), Value: string(r.Value), Partition: r.Partition, Millis: ms, Headers: strings.Join(hs, ",")}
}

func TestFormatRecordReader(t *testing.T) {
	for _, tc := range []struct {
		name, format, in string
		want             []rec
		err              bool
	}{
		{name: "lines", format: `%v\n`, in: "a\nb\n", want: []rec{{Value: "a"}, {Value: "b"}}},
		{name: "no final newline", format: `%v\n`, in: "a\nb", want: []rec{{Value: "a"}, {Value: "b"}}},
		{name: "empty line", format: `%v\n`, in: "a\n\nb\n", want: []rec{{Value: "a"}, {Value: ""}, {Value: "b"}}},
		{name: "empty input", format: `%v\n`, in: "", want: nil},
		{name: "key delim", format: `%k:%v\n`, in: "k1:v1\nk2:v:2\n", want: []rec{{Key: "k1", Value: "v1"}, {Key: "k2", Value: "v:2"}}},
		{name: "multi-byte delim", format: `%k::%v\n`, in: "a:b::c\n", want: []rec{{Key: "a:b", Value: "c"}}},
		{name: "whole input", format: `%v`, in: "x\ny\n", want: []rec{{Value: "x\ny\n"}}},
		{name: "leading literal", format: `key=%k value=%v\n`, in: "key=1 value=2\n", want: []rec{{Key: "1", Value: "2"}}},
		{name: "leading literal mismatch", format: `key=%k value=%v\n`, in: "kex=1 value=2\n", err: true},
		{name: "all verbs", format: `%p %T %h %k %v\n`, in: "3 1700000000000 a=1,b=2 k v\n",
			want: []rec{{Partition: 3, Millis: 1700000000000, Headers: "a=1,b=2", Key: "k", Value: "v"}}},
		{name: "bad partition", format: `%p %v\n`, in: "x v\n", err: true},
		{name: "bad timestamp", format: `%T %v\n`, in: "soon v\n", err: true},
		{name: "missing delimiter", format: `%k %v\n`, in: "novalue\n", err: true},
		{name: "crlf", format: `%v\r\n`, in: "a\r\nb\r\n", want: []rec{{Value: "a"}, {Value: "b"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rr, err := newRecordReader(strings.NewReader(tc.in), tc.format)
			if err != nil {
				t.Fatal(err)
			}
			var got []rec
			for {
				r, err := rr.next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					if !tc.err {
						t.Fatalf("next: %v", err)
					}
					return
				}
				got = append(got, toRec(r))
			}
			if tc.err {
				t.Fatalf("no error; records %+v", got)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("records = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestFormatRecordReaderRejectsAdjacentVerbs(t *testing.T) {
	if _, err := newRecordReader(strings.NewReader(""), `%k%v\n`); err == nil {
		t.Error("adjacent verbs accepted")
	}
	if _, err := newRecordReader(strings.NewReader(""), ``); err == nil {
		t.Error("empty format accepted")
	}
}

func TestFormatRecordFormatter(t *testing.T) {
	r := &kgo.Record{
		Topic: "t", Partition: 2, Offset: 41, Timestamp: time.UnixMilli(1700000000123),
		Key: []byte("key"), Value: []byte("value"),
		Headers: []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}},
	}
	for format, want := range map[string]string{
		`%v\n`:                       "value\n",
		`%s`:                         "value",
		`%t/%p@%o %T %k=%v %h %K %V`: "t/2@41 1700000000123 key=value a=1,b=2 3 5",
		`100%% %S\t`:                 "100% 5\t",
	} {
		f, err := newRecordFormatter(format)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(f.appendRecord(nil, r)); got != want {
			t.Errorf("format %q = %q, want %q", format, got, want)
		}
	}
}

func TestConsumeParseOffsetSpec(t *testing.T) {
	for in, want := range map[string]offsetSpec{
		"start": {kind: 's'}, "oldest": {kind: 's'}, "beginning": {kind: 's'},
		"end": {kind: 'e'}, "newest": {kind: 'e'},
		"42": {kind: 'a', value: 42}, "-5": {kind: 'r', value: 5},
		"@1700000000000": {kind: 't', value: 1700000000000},
	} {
		got, err := parseOffsetSpec(in)
		if err != nil || got != want {
			t.Errorf("parseOffsetSpec(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "@", "@-1", "--1", "1.5"} {
		if _, err := parseOffsetSpec(in); err == nil {
			t.Errorf("parseOffsetSpec(%q) accepted", in)
		}
	}
}

// FuzzFormatRecordReader checks the input parser never panics and always
// ends, whatever the format and input.
func FuzzFormatRecordReader(f *testing.F) {
	f.Add(`%v\n`, "a\nb")
	f.Add(`%k:%v\n`, "k:v\n:\n")
	f.Add(`%p %T %h %k %v\n`, "1 2 a=b k v\n")
	f.Add(`x%v`, "xyz")
	f.Fuzz(func(t *testing.T, format, in string) {
		rr, err := newRecordReader(strings.NewReader(in), format)
		if err != nil {
			return
		}
		for i := 0; i <= len(in)+1; i++ {
			if _, err := rr.next(); err != nil {
				return
			}
		}
		t.Fatalf("format %q input %q: more records than input bytes", format, in)
	})
}

func BenchmarkFormatRecordFormatter(b *testing.B) {
	f, err := newRecordFormatter(`%t %p %o %k=%v\n`)
	if err != nil {
		b.Fatal(err)
	}
	r := &kgo.Record{Topic: "orders", Partition: 3, Offset: 123456, Key: []byte("key-1"), Value: make([]byte, 100)}
	b.ReportAllocs()
	b.SetBytes(int64(len(r.Value)))
	var buf []byte
	for b.Loop() {
		buf = f.appendRecord(buf[:0], r)
	}
}

func BenchmarkFormatRecordReader(b *testing.B) {
	line := "key-1:" + strings.Repeat("v", 100) + "\n"
	in := strings.Repeat(line, 1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		rr, err := newRecordReader(strings.NewReader(in), `%k:%v\n`)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := rr.next(); err != nil {
				break
			}
		}
	}
}
