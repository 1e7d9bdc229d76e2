package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kerr"
)

// table writes aligned columns the way rpk does: two spaces between
// columns, upper-case Kafka header names.
type table struct {
	w   io.Writer
	buf bytes.Buffer
	tw  *tabwriter.Writer // writes to buf
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{w: w}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	if len(header) > 0 {
		t.row(toAny(header)...)
	}
	return t
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (t *table) row(cells ...any) {
	parts := make([]string, len(cells))
	for i, c := range cells {
		parts[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(t.tw, strings.Join(parts, "\t"))
}

// flush writes the aligned rows without the padding tabwriter leaves
// after an empty last cell.
func (t *table) flush() {
	_ = t.tw.Flush()
	for _, line := range strings.SplitAfter(t.buf.String(), "\n") {
		if line == "" {
			continue
		}
		fmt.Fprintln(t.w, strings.TrimRight(line, " \n"))
	}
	t.buf.Reset()
}

// section prints an rpk-style section header.
func section(w io.Writer, name string) {
	fmt.Fprintf(w, "%s\n%s\n", name, strings.Repeat("=", len(name)))
}

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// kafkaError renders err by its Kafka name (TOPIC_ALREADY_EXISTS) plus the
// broker's message when it sent one; "" for nil.
func kafkaError(err error, brokerMessage string) string {
	if err == nil {
		return ""
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		if brokerMessage != "" {
			return ke.Message + ": " + brokerMessage
		}
		return ke.Message
	}
	if brokerMessage != "" {
		return err.Error() + ": " + brokerMessage
	}
	return err.Error()
}

// status is "OK" or the error, for STATUS columns.
func status(errText string) string {
	if errText == "" {
		return "OK"
	}
	return errText
}

// int32List renders replica lists as Kafka tools do: [1,2,3].
func int32List(ns []int32) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprint(n)
	}
	return "[" + strings.Join(parts, ",") + "]"
}
