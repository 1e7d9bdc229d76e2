// Package console is Samsa's built-in web console: server-rendered HTML
// pages (html/template, embedded with go:embed) that show the cluster,
// its topics and partitions, consumer groups with their lag in offsets and
// seconds (with a plot of recent samples), and the last records of a
// partition.
//
// The console is a Kafka client of the cluster, like the CLI: it talks to
// the bootstrap address it is given with franz-go kgo/kadm and imports no
// broker internals, so it shows what any client would see. It is read-only:
// it serves GET and HEAD only and has no action that changes the cluster.
//
// Everything is bounded: each page's cluster calls share one deadline
// (Options.Timeout, a few seconds; an unreachable cluster gives an error
// page, promptly), the message browser reads at most maxBrowseRecords
// records and maxBrowseFetchBytes bytes and shows at most maxShownBytes of
// a key, value or header, the lag history keeps lagSamples samples for at
// most maxSampledGroups groups. html/template escapes every value (topic
// and group names, keys, values, headers), and a Content-Security-Policy
// forbids scripts, so a hostile record cannot run in the browser.
// docs/console.md describes the pages.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultTimeout bounds the cluster calls of one page (and of one lag
// sample) when Options.Timeout is zero.
const DefaultTimeout = 3 * time.Second

// DefaultSampleInterval is how often consumer group lag is sampled for the
// plots when Options.SampleInterval is zero.
const DefaultSampleInterval = 5 * time.Second

// maxDecompressedBatchBytes bounds what one fetched batch may inflate to;
// a larger one is shown as an error rather than decoded.
const maxDecompressedBatchBytes = 16 << 20

// maxConcurrentPages bounds the pages served at once; a request beyond it
// waits (up to Options.Timeout) for one to finish, then gets 503.
const maxConcurrentPages = 4

// ErrNotFound is returned for a topic, partition or group the cluster does
// not know; the page answers 404.
var ErrNotFound = errors.New("console: not found")

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure a console.
type Options struct {
	// Bootstrap is the host:port of a Kafka listener of the cluster
	// (a node passes its own).
	Bootstrap string
	// Logger receives sampling errors at debug level. Nil: slog.Default().
	Logger *slog.Logger
	// Timeout bounds all cluster calls of one page. Zero: DefaultTimeout.
	Timeout time.Duration
	// SampleInterval is the period of the lag sampler. Zero:
	// DefaultSampleInterval.
	SampleInterval time.Duration
	// ClientOpts are extra kgo options (tests pin versions for kfake).
	ClientOpts []kgo.Opt
	// Now is the clock (tests fix it for golden pages). Nil: time.Now.
	Now func() time.Time
}

// Console is an http.Handler serving the console pages. Close stops its
// lag sampler and closes its Kafka client.
type Console struct {
	opts  Options
	log   *slog.Logger
	cl    *kgo.Client
	adm   *kadm.Client
	mux   *http.ServeMux
	pages map[string]*template.Template
	lag   *lagHistory
	// decompressor inflates fetched batches, at most
	// maxDecompressedBatchBytes each.
	decompressor kgo.Decompressor
	// busy holds a token per page being served: at most
	// maxConcurrentPages pages read from the cluster at once, which bounds
	// the memory of fetched and inflated batches.
	busy chan struct{}

	// samplerOnce starts the lag sampler at the first page request, so a
	// node whose console is never opened does no sampling work.
	samplerOnce sync.Once
	// ctx is cancelled by Close; the sampler goroutine selects on it and
	// wg waits for it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds a console for the cluster at opts.Bootstrap. It does not
// connect: the first page does.
func New(opts Options) (*Console, error) {
	if opts.Bootstrap == "" {
		return nil, errors.New("console: no bootstrap address")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.SampleInterval <= 0 {
		opts.SampleInterval = DefaultSampleInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	kopts := append([]kgo.Opt{
		kgo.SeedBrokers(opts.Bootstrap),
		kgo.ClientID("samsa-console"),
		kgo.DialTimeout(opts.Timeout),
		// kgo waits for a new connection's ApiVersions without looking at
		// the request's context, for this long: a cluster that accepts
		// and never answers must not hold a page past its timeout.
		kgo.RequestTimeoutOverhead(opts.Timeout),
		kgo.RetryTimeout(opts.Timeout),
		kgo.MetadataMinAge(time.Second),
		kgo.MaxDecompressBatchBytes(maxDecompressedBatchBytes),
	}, opts.ClientOpts...)
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("console: kafka client: %w", err)
	}
	pages, err := parsePages()
	if err != nil {
		cl.Close()
		return nil, err
	}
	// The client's own decompressor is bounded by MaxDecompressBatchBytes
	// (kgo.DefaultDecompressor is not): the console decodes the Fetch
	// responses it sends by hand with it.
	dec, _ := cl.OptValue(kgo.WithDecompressor).(kgo.Decompressor)
	if dec == nil {
		cl.Close()
		return nil, errors.New("console: kafka client has no decompressor")
	}
	c := &Console{
		opts: opts, log: log, cl: cl, adm: kadm.NewClient(cl), pages: pages,
		lag: newLagHistory(), decompressor: dec, busy: make(chan struct{}, maxConcurrentPages),
	}
	c.adm.SetTimeoutMillis(int32(opts.Timeout / time.Millisecond))
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.routes()
	return c, nil
}

// Close stops the lag sampler, waits for it and closes the client.
func (c *Console) Close() {
	c.cancel()
	c.wg.Wait()
	c.cl.Close()
}

// ServeHTTP serves the console. Only GET and HEAD are allowed: the console
// is read-only.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the console is read-only", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	// No script, no frame, no foreign resource: even a value that
	// escaped escaping could not run.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	c.samplerOnce.Do(c.startSampler)
	timer := time.NewTimer(c.opts.Timeout)
	defer timer.Stop()
	select {
	case c.busy <- struct{}{}:
		defer func() { <-c.busy }()
	case <-timer.C:
		http.Error(w, "the console is busy: too many pages at once", http.StatusServiceUnavailable)
		return
	case <-r.Context().Done():
		return
	}
	c.mux.ServeHTTP(w, r)
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /{$}", c.overviewPage)
	m.HandleFunc("GET /topics", c.topicsPage)
	m.HandleFunc("GET /topics/{topic}", c.topicPage)
	m.HandleFunc("GET /topics/{topic}/partitions/{partition}", c.messagesPage)
	m.HandleFunc("GET /groups", c.groupsPage)
	m.HandleFunc("GET /groups/{group}", c.groupPage)
	c.mux = m
}

// page is what the layout template renders; Data is the page's own view.
type page struct {
	Title string
	// Nav is the active navigation entry: overview, topics or groups.
	Nav string
	// Refresh is the auto-refresh period in seconds (0: off), from the
	// refresh query parameter, clamped to [minRefresh, maxRefresh].
	Refresh    int
	RefreshOn  string // this page's URL with refresh=5
	RefreshOff string // this page's URL without refresh
	Err        string
	Now        string
	Timeout    string
	Data       any
}

const (
	minRefresh = 2
	maxRefresh = 300
)

// render writes a page; err, when not nil, is shown above the content
// and sets the status (404 for ErrNotFound, 503 for a cluster that did
// not answer in time, 502 otherwise).
func (c *Console) render(w http.ResponseWriter, r *http.Request, name string, p page, err error) {
	p.Now = c.opts.Now().UTC().Format("2006-01-02 15:04:05 UTC")
	p.Timeout = c.opts.Timeout.String()
	p.Refresh, p.RefreshOn, p.RefreshOff = refreshLinks(r)
	status := http.StatusOK
	if err != nil {
		p.Err = err.Error()
		switch {
		case errors.Is(err, ErrNotFound):
			status = http.StatusNotFound
		case errors.Is(err, context.DeadlineExceeded):
			status = http.StatusServiceUnavailable
			p.Err = fmt.Sprintf("the cluster did not answer within %v (%v)", c.opts.Timeout, err)
		default:
			status = http.StatusBadGateway
		}
	}
	t := c.pages[name]
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout", p); err != nil {
		c.log.Warn("console: render", "page", name, "err", err)
	}
}

// refreshLinks reads ?refresh=N and builds the links that turn
// auto-refresh on and off, keeping the page's other query parameters.
func refreshLinks(r *http.Request) (secs int, on, off string) {
	q := r.URL.Query()
	if v := q.Get("refresh"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			secs = min(max(n, minRefresh), maxRefresh)
		}
	}
	q.Del("refresh")
	// RawPath keeps an escaped "/" inside a group name escaped.
	offURL := url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: q.Encode()}
	q.Set("refresh", "5")
	onURL := url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: q.Encode()}
	return secs, onURL.String(), offURL.String()
}

// call returns a context bounded by the console's timeout for one page.
func (c *Console) call(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), c.opts.Timeout)
}

func parsePages() (map[string]*template.Template, error) {
	names := []string{"overview", "topics", "topic", "groups", "group", "messages"}
	pages := make(map[string]*template.Template, len(names))
	for _, n := range names {
		t, err := template.New(n).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		pages[n] = t
	}
	return pages, nil
}

// funcs are the template helpers. None returns template.HTML: every value
// goes through html/template's contextual escaping.
var funcs = template.FuncMap{
	"pathesc": url.PathEscape,
	"join":    joinInt32s,
}

func joinInt32s(xs []int32) string {
	var b []byte
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(x), 10)
	}
	return string(b)
}
