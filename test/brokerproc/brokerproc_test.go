package brokerproc

import (
	"strings"
	"testing"
)

func TestParseListenerBound(t *testing.T) {
	tests := []struct {
		name, line, listener, want string
		ok                         bool
	}{
		{"plaintext", `time=2025-01-01T00:00:00.000Z level=INFO msg="listener bound" listener=PLAINTEXT addr=127.0.0.1:40123`, "PLAINTEXT", "127.0.0.1:40123", true},
		{"quoted values", `level=INFO msg="listener bound" listener="PLAINTEXT" addr="127.0.0.1:1"`, "PLAINTEXT", "127.0.0.1:1", true},
		{"other listener", `level=INFO msg="listener bound" listener=CONTROLLER addr=127.0.0.1:9093`, "PLAINTEXT", "", false},
		{"http listener", `level=INFO msg="listener bound" listener=HTTP addr=127.0.0.1:8080`, "PLAINTEXT", "", false},
		{"other message", `level=INFO msg="samsa started" listener=PLAINTEXT addr=127.0.0.1:1`, "PLAINTEXT", "", false},
		{"no addr", `level=INFO msg="listener bound" listener=PLAINTEXT`, "PLAINTEXT", "", false},
		{"empty", ``, "PLAINTEXT", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseListenerBound(tt.line, tt.listener)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ParseListenerBound(%q) = %q, %v; want %q, %v", tt.line, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	tb := &tailBuffer{max: 100}
	for i := range 1000 {
		tb.Write([]byte(strings.Repeat("x", i%7) + "line\n"))
	}
	tb.Write([]byte("last line\n"))
	s := tb.String()
	if !strings.HasPrefix(s, "[...]\n") {
		t.Errorf("truncated tail does not start with a marker: %q", s)
	}
	if !strings.HasSuffix(s, "last line\n") {
		t.Errorf("tail lost the last line: %q", s)
	}
	if body := strings.TrimPrefix(s, "[...]\n"); len(body) > 100 {
		t.Errorf("tail holds %d bytes, want <= 100", len(body))
	}

	small := &tailBuffer{max: 100}
	small.Write([]byte("only\n"))
	if got := small.String(); got != "only\n" {
		t.Errorf("short output changed: %q", got)
	}
}
