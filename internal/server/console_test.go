package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestServerHTTPServesConsole checks that the HTTP listener serves the web
// console next to /metrics and /healthz, and that the console is a client
// of this node.
func TestServerHTTPServesConsole(t *testing.T) {
	s := start(t, t.TempDir(), "http.listener=127.0.0.1:0")
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(client(t, s)).CreateTopic(ctx, 2, 1, nil, "shown-in-console"); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 20 * time.Second}
	for path, want := range map[string]string{
		"/":                        "Cluster id",
		"/topics":                  `href="/topics/shown-in-console"`,
		"/topics/shown-in-console": "LOG-END-OFFSET",
		"/groups":                  "No consumer groups",
		"/healthz":                 "ok",
		"/metrics":                 "samsa_requests_total",
	} {
		resp, err := hc.Get("http://" + s.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %s, want 200 with %q:\n%.2000s", path, resp.Status, want, body)
		}
	}
}
