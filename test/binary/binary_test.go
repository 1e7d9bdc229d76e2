package binary

import (
	"context"
	"debug/elf"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"samsa/test/brokerproc"
)

// TestBinaryIsStaticallyLinked reads the ELF program headers: a dynamically
// linked executable has a PT_INTERP header naming its loader
// (/lib64/ld-linux-x86-64.so.2) and DT_NEEDED entries naming libc.
func TestBinaryIsStaticallyLinked(t *testing.T) {
	bin, err := brokerproc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(io.LimitReader(p.Open(), 256))
			t.Errorf("%s is dynamically linked: program interpreter %q (build it with CGO_ENABLED=0, as make build does)", bin, strings.TrimRight(string(interp), "\x00"))
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", bin, libs)
	}
}

// TestBinaryServesConsole starts `samsa start` and reads the pages its HTTP
// listener serves.
func TestBinaryServesConsole(t *testing.T) {
	b := brokerproc.Start(t, brokerproc.Options{})
	brokerproc.CreateTopic(t, b.Addr, "console-topic", 2)
	var httpAddr string
	for _, line := range strings.Split(b.Output(), "\n") {
		if a, ok := brokerproc.ParseListenerBound(line, "HTTP"); ok {
			httpAddr = a
		}
	}
	if httpAddr == "" {
		t.Fatalf("no HTTP listener in the broker's log:\n%s", b.Output())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for path, want := range map[string]string{
		"/":                                  "Cluster id",
		"/topics":                            `href="/topics/console-topic"`,
		"/topics/console-topic":              "LOG-START-OFFSET",
		"/topics/console-topic/partitions/1": "high watermark 0",
		"/groups":                            "No consumer groups",
		"/static/console.css":                "font",
		"/healthz":                           "ok",
		"/metrics":                           "samsa_requests_total",
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %s, want 200 with %q:\n%.2000s", path, resp.Status, want, body)
		}
	}
}
