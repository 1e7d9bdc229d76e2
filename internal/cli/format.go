package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record formats are kcat-style strings: %-verbs for record fields and
// literal text (with \n, \t, \r, \\ and %% escapes) around them.
//
//	%t topic       %p partition   %o offset      %T timestamp (ms)
//	%k key         %v value (%s is an alias, as in kcat)
//	%h headers as k1=v1,k2=v2     %K key length  %V value length (%S alias)
//
// consume prints any of them; produce parses %k %v %s %h %T %p from its
// input, each verb followed by the literal that ends it.

// fmtToken is a literal (verb == 0) or a verb.
type fmtToken struct {
	lit  string
	verb byte
}

var (
	outputVerbs = "tpoTkvshKVS"
	inputVerbs  = "kvshTp"
)

// parseFormat splits s into tokens, checking verbs against allowed.
func parseFormat(s, allowed string) ([]fmtToken, error) {
	var toks []fmtToken
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			toks = append(toks, fmtToken{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 == len(s) {
				return nil, fmt.Errorf("format %q: trailing backslash", s)
			}
			i++
			switch s[i] {
			case 'n':
				lit.WriteByte('\n')
			case 't':
				lit.WriteByte('\t')
			case 'r':
				lit.WriteByte('\r')
			case '\\':
				lit.WriteByte('\\')
			default:
				return nil, fmt.Errorf("format %q: unknown escape \\%c", s, s[i])
			}
		case '%':
			if i+1 == len(s) {
				return nil, fmt.Errorf("format %q: trailing %%", s)
			}
			i++
			if s[i] == '%' {
				lit.WriteByte('%')
				continue
			}
			if !strings.ContainsRune(allowed, rune(s[i])) {
				return nil, fmt.Errorf("format %q: unsupported verb %%%c (supported: %s)", s, s[i], verbList(allowed))
			}
			flush()
			toks = append(toks, fmtToken{verb: s[i]})
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return toks, nil
}

func verbList(allowed string) string {
	var parts []string
	for _, v := range allowed {
		parts = append(parts, "%"+string(v))
	}
	return strings.Join(parts, " ")
}

// recordFormatter prints records in a kcat-style format.
type recordFormatter []fmtToken

func newRecordFormatter(s string) (recordFormatter, error) {
	toks, err := parseFormat(s, outputVerbs)
	return recordFormatter(toks), err
}

// appendRecord appends r rendered by f to dst.
func (f recordFormatter) appendRecord(dst []byte, r *kgo.Record) []byte {
	for _, t := range f {
		switch t.verb {
		case 0:
			dst = append(dst, t.lit...)
		case 't':
			dst = append(dst, r.Topic...)
		case 'p':
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case 'o':
			dst = strconv.AppendInt(dst, r.Offset, 10)
		case 'T':
			dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		case 'k':
			dst = append(dst, r.Key...)
		case 'v', 's':
			dst = append(dst, r.Value...)
		case 'K':
			dst = strconv.AppendInt(dst, int64(len(r.Key)), 10)
		case 'V', 'S':
			dst = strconv.AppendInt(dst, int64(len(r.Value)), 10)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = append(dst, h.Value...)
			}
		}
	}
	return dst
}

// recordReader parses records from a stream in a kcat-style format. Every
// verb must be followed by a literal that ends it, except a last verb,
// which reads to the end of input (so `-f %v` makes one record of the
// whole input, as in rpk).
type recordReader struct {
	br      *bufio.Reader
	toks    []fmtToken
	scratch []byte // reused to read literals
}

// errFormatMismatch reports input that does not fit the format.
var errFormatMismatch = errors.New("cli: input does not match the format")

func newRecordReader(r io.Reader, format string) (*recordReader, error) {
	toks, err := parseFormat(format, inputVerbs)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("format %q: empty", format)
	}
	for i := 0; i+1 < len(toks); i++ {
		if toks[i].verb != 0 && toks[i+1].verb != 0 {
			return nil, fmt.Errorf("format %q: %%%c must be followed by a delimiter before %%%c", format, toks[i].verb, toks[i+1].verb)
		}
	}
	return &recordReader{br: bufio.NewReaderSize(r, 64<<10), toks: toks}, nil
}

// hasVerb reports whether the format reads verb v.
func (rr *recordReader) hasVerb(v byte) bool {
	for _, t := range rr.toks {
		if t.verb == v {
			return true
		}
	}
	return false
}

// next parses one record. It returns io.EOF at a clean end of input; a
// record missing only its final delimiter (no newline at the end of the
// last line) is accepted.
func (rr *recordReader) next() (*kgo.Record, error) {
	r := &kgo.Record{}
	read := false // whether any byte of this record was consumed
	for i := 0; i < len(rr.toks); i++ {
		t := rr.toks[i]
		if t.verb == 0 {
			if cap(rr.scratch) < len(t.lit) {
				rr.scratch = make([]byte, len(t.lit))
			}
			buf := rr.scratch[:len(t.lit)]
			n, err := io.ReadFull(rr.br, buf)
			if err != nil {
				if !read && n == 0 && errors.Is(err, io.EOF) {
					return nil, io.EOF
				}
				if read && n == 0 && i == len(rr.toks)-1 {
					return r, nil // final delimiter missing at end of input
				}
				return nil, fmt.Errorf("%w: expected %q at end of input", errFormatMismatch, t.lit)
			}
			read = true
			if string(buf) != t.lit {
				return nil, fmt.Errorf("%w: expected %q, got %q", errFormatMismatch, t.lit, buf)
			}
			continue
		}
		var field []byte
		var err error
		last := i == len(rr.toks)-1
		if last {
			field, err = io.ReadAll(rr.br)
			if err == nil && !read && len(field) == 0 {
				return nil, io.EOF
			}
		} else {
			delim := rr.toks[i+1].lit
			var complete bool
			field, complete, err = readUntil(rr.br, delim)
			if err == nil && !complete {
				switch {
				case !read && len(field) == 0:
					return nil, io.EOF
				case i+1 == len(rr.toks)-1:
					// The last delimiter is missing at end of input.
				default:
					return nil, fmt.Errorf("%w: expected %q before end of input", errFormatMismatch, delim)
				}
			}
			i++ // the delimiter is consumed
		}
		if err != nil {
			return nil, err
		}
		read = true
		if err := setField(r, t.verb, field); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// readUntil reads up to and including delim and returns what came before
// it; complete is false when input ended first.
func readUntil(br *bufio.Reader, delim string) (field []byte, complete bool, err error) {
	d := []byte(delim)
	last := d[len(d)-1]
	var buf []byte
	for {
		chunk, err := br.ReadSlice(last)
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			if bytes.HasSuffix(buf, d) {
				return buf[:len(buf)-len(d)], true, nil
			}
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return buf, false, nil
		default:
			return nil, false, err
		}
	}
}

func setField(r *kgo.Record, verb byte, field []byte) error {
	switch verb {
	case 'k':
		r.Key = field
	case 'v', 's':
		r.Value = field
	case 'T':
		ms, err := strconv.ParseInt(string(field), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: timestamp %q is not milliseconds", errFormatMismatch, field)
		}
		r.Timestamp = time.UnixMilli(ms)
	case 'p':
		p, err := strconv.ParseInt(string(field), 10, 32)
		if err != nil || p < 0 {
			return fmt.Errorf("%w: partition %q", errFormatMismatch, field)
		}
		r.Partition = int32(p)
	case 'h':
		if len(field) == 0 {
			return nil
		}
		for _, kv := range strings.Split(string(field), ",") {
			k, v, _ := strings.Cut(kv, "=")
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	return nil
}
