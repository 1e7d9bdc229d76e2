// Package server is the composition root: it turns a configuration into
// running components (storage, metadata, controller, replica manager,
// listeners) and starts and stops them in order.
//
// Start order: config → format/verify log dirs → storage recovery →
// metadata log replay → controller and replica manager (the replica
// manager applies the replayed image, opening partition logs) → listeners
// → broker registration with the bound addresses → HTTP. Close runs it
// backwards, so no request is in flight when storage closes.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"samsa/internal/api"
	"samsa/internal/config"
	"samsa/internal/console"
	"samsa/internal/controller"
	"samsa/internal/group"
	"samsa/internal/metadata"
	"samsa/internal/metrics"
	"samsa/internal/network"
	"samsa/internal/replica"
	"samsa/internal/storage"
	"samsa/internal/txn"
)

// Options configure a node.
type Options struct {
	ConfigFile string       // server.properties path; "" for the single-node defaults
	Overrides  []string     // "key=value" (-o), applied after the file
	Logger     *slog.Logger // nil: slog.Default()
}

// Server is a running node.
type Server struct {
	cfg       *config.Config
	logger    *slog.Logger
	clusterID string

	logs       *storage.Manager
	metaLog    *metadata.LocalLog
	pub        *metadata.Publisher
	controller *controller.Controller
	replicas   *replica.Manager
	groups     *group.Coordinator
	txns       *txn.Coordinator
	listeners  []*network.Server
	kafkaAddr  string
	http       *http.Server
	httpAddr   string
	httpDone   chan struct{}
	// console is the web console served at "/" on the HTTP listener, a
	// Kafka client of kafkaAddr; nil when there is no HTTP listener.
	console *console.Console
	// registry holds this node's metrics: its own, so that several nodes
	// in one process (tests) do not collide in the default registry.
	registry *prometheus.Registry
}

// Start formats (first start) or recovers the data directories and starts
// every component. Each bound listener is logged as
// `msg="listener bound" listener=NAME addr=HOST:PORT`.
func Start(ctx context.Context, opts Options) (*Server, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	began := time.Now()
	cfg, err := config.Load(opts.ConfigFile, opts.Overrides, logger)
	if err != nil {
		return nil, err
	}
	if err := checkSupportedTopology(cfg); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, logger: logger}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	if s.clusterID, err = ensureFormatted(cfg); err != nil {
		return nil, err
	}
	if s.logs, err = storage.OpenManager(managerOptions(cfg, logger)); err != nil {
		return nil, fmt.Errorf("server: open logs: %w", err)
	}
	if s.metaLog, err = metadata.OpenLocalLog(cfg.MetadataLogDir); err != nil {
		return nil, err
	}
	var recs []metadata.Record
	if err := s.metaLog.Replay(func(_ int64, r metadata.Record) error { recs = append(recs, r); return nil }); err != nil {
		return nil, fmt.Errorf("server: replay metadata log: %w", err)
	}
	im := metadata.Empty(s.clusterID)
	im.ControllerID = cfg.NodeID
	if im, err = im.Apply(recs); err != nil {
		return nil, fmt.Errorf("server: replay metadata log: %w", err)
	}
	s.pub = metadata.NewPublisher(im)
	s.controller = controller.New(s.metaLog, s.pub, cfg, logger)
	s.replicas = replica.New(cfg.NodeID, s.logs, cfg, logger)
	s.pub.Subscribe(s.replicas.Apply)
	s.replicas.RemoveStrayLogs()
	s.groups = newGroupCoordinator(s)
	loader := &groupLoader{self: cfg.NodeID, replicas: s.replicas, groups: s.groups, loaded: map[int32]*replica.Partition{}}
	s.pub.Subscribe(loader.apply)
	s.txns = newTxnCoordinator(s, api.LocalMarkers{Replicas: s.replicas, Groups: s.groups})
	tl := &txnLoader{self: cfg.NodeID, replicas: s.replicas, txns: s.txns, loaded: map[int32]txnLoaded{}}
	s.pub.Subscribe(tl.apply)

	handler := api.New(api.Deps{
		Config: cfg, ClusterID: s.clusterID, NodeID: cfg.NodeID,
		Controller: s.controller, Replicas: s.replicas, Groups: s.groups, Txns: s.txns, Logger: logger,
	})
	s.registry = newRegistry(s)
	netMetrics := metrics.NewNetwork(s.registry)
	// One set of limits for every listener: max.connections and
	// queued.max.request.bytes are broker-wide, as in Kafka.
	limits := network.NewLimits(network.LimitsConfig{
		QueuedMaxRequestBytes: cfg.QueuedMaxRequestBytes, MaxConnections: cfg.MaxConnections,
		MaxConnectionsPerIP: cfg.MaxConnectionsPerIP, MaxConnectionsPerIPOverrides: cfg.MaxConnectionsPerIPOverrides,
		Metrics: netMetrics,
	})
	bound := map[string]int{}
	for _, l := range cfg.Listeners {
		ln, err := network.Bind(net.JoinHostPort(l.Host, strconv.Itoa(l.Port)), handler, network.Options{
			Listener: l.Name, MaxRequestBytes: cfg.SocketRequestMaxBytes, Logger: logger, Metrics: netMetrics,
			Limits: limits, IdleTimeout: cfg.ConnectionsMaxIdle, RequestReadTimeout: cfg.SocketRequestReadTimeout,
		})
		if err != nil {
			return nil, fmt.Errorf("server: listener %s: %w", l.Name, err)
		}
		s.listeners = append(s.listeners, ln)
		bound[l.Name] = ln.Addr().(*net.TCPAddr).Port
		if s.kafkaAddr == "" && !cfg.IsControllerListener(l.Name) {
			s.kafkaAddr = ln.Addr().String()
		}
	}
	if err := s.controller.RegisterBroker(cfg.NodeID, "", advertisedEndpoints(cfg, bound)); err != nil {
		return nil, fmt.Errorf("server: register broker: %w", err)
	}
	// Served and logged only after registration: the first request (or a
	// client that learns the address from this line) finds the broker in
	// Metadata.
	for i, l := range cfg.Listeners {
		s.listeners[i].Serve()
		logger.Info("listener bound", "listener", l.Name, "addr", s.listeners[i].Addr().String())
	}
	s.startHTTP()
	ok = true
	logger.Info("samsa started", "node.id", cfg.NodeID, "cluster.id", s.clusterID,
		"log.dirs", strings.Join(cfg.LogDirs, ","), "topics", len(s.pub.Image().Topics), "startup", time.Since(began).Round(time.Microsecond))
	return s, nil
}

// managerOptions maps the broker's log.* settings to the storage engine's
// options.
func managerOptions(cfg *config.Config, logger *slog.Logger) storage.ManagerOptions {
	ms := func(k string) time.Duration {
		v, _ := cfg.Get(k)
		n, _ := strconv.ParseInt(v, 10, 64)
		return time.Duration(n) * time.Millisecond
	}
	enable, _ := cfg.Get("log.cleaner.enable")
	rv, _ := cfg.Get("log.dir.full.resume.bytes")
	resume, _ := strconv.ParseInt(rv, 10, 64)
	return storage.ManagerOptions{
		Dirs: cfg.LogDirs, Logger: logger, DefaultConfig: replica.StorageConfig(cfg, nil),
		CheckpointInterval:     ms("log.flush.offset.checkpoint.interval.ms"),
		RetentionCheckInterval: ms("log.retention.check.interval.ms"),
		CleanerDisabled:        !strings.EqualFold(enable, "true"),
		CleanerBackoff:         ms("log.cleaner.backoff.ms"),
		DiskFullCheckInterval:  ms("log.dir.full.check.interval.ms"),
		DiskFullResumeBytes:    resume,
	}
}

// checkSupportedTopology rejects configurations that need a multi-node
// quorum, which this version does not have yet.
func checkSupportedTopology(cfg *config.Config) error {
	if !cfg.HasRole("controller") || !cfg.HasRole("broker") {
		return fmt.Errorf("server: process.roles=%s: only combined broker,controller nodes are supported so far", strings.Join(cfg.ProcessRoles, ","))
	}
	for _, v := range strings.Split(cfg.ControllerQuorumVoters, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		id, _, _ := strings.Cut(v, "@")
		if id != strconv.Itoa(int(cfg.NodeID)) {
			return fmt.Errorf("server: controller.quorum.voters lists node %s: only a single-voter quorum (this node) is supported so far", id)
		}
	}
	return nil
}

// advertisedEndpoints are the broker listeners clients are told about:
// advertised.listeners when set, else listeners; a port of 0 becomes the
// bound port and an empty or wildcard host this machine's name.
func advertisedEndpoints(cfg *config.Config, bound map[string]int) []metadata.Endpoint {
	src := cfg.AdvertisedListeners
	if len(src) == 0 {
		src = cfg.Listeners
	}
	var out []metadata.Endpoint
	for _, l := range src {
		if cfg.IsControllerListener(l.Name) {
			continue
		}
		port := l.Port
		if port == 0 {
			port = bound[l.Name]
		}
		host := l.Host
		if host == "" || host == "0.0.0.0" || host == "::" {
			if h, err := os.Hostname(); err == nil {
				host = h
			}
		}
		out = append(out, metadata.Endpoint{
			Listener: l.Name, Host: host, Port: int32(port), SecurityProtocol: cfg.ListenerSecurityProtocolMap[l.Name],
		})
	}
	return out
}

// startHTTP serves /metrics, /healthz and the web console (every other
// path; internal/console, a Kafka client of this node's first broker
// listener). A busy port is a warning, not an error: the Kafka listener
// matters more.
func (s *Server) startHTTP() {
	if s.cfg.HTTPListener == "" {
		return
	}
	ln, err := net.Listen("tcp", s.cfg.HTTPListener)
	if err != nil {
		s.logger.Warn("http listener not started", "addr", s.cfg.HTTPListener, "err", err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("/healthz", s.healthz)
	if s.kafkaAddr != "" {
		if c, err := console.New(console.Options{Bootstrap: s.kafkaAddr, Logger: s.logger}); err != nil {
			s.logger.Warn("console not started", "err", err)
		} else {
			s.console = c
			mux.Handle("/", c)
		}
	}
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.httpAddr = ln.Addr().String()
	s.httpDone = make(chan struct{})
	go func() {
		defer close(s.httpDone)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("http server", "err", err)
		}
	}()
	s.logger.Info("listener bound", "listener", "HTTP", "addr", ln.Addr().String())
}

// healthz answers 200 while the node serves, with "ok" on the first line
// when every log dir is online and no partition is offline, "degraded"
// otherwise, then one line per log dir:
//
//	log.dir <path> <online|full> offline_partitions=<n>
//
// A full disk is back-pressure (appends refused, reads served, resumes by
// itself), not an outage, so it does not fail the check: a liveness probe
// restarting the node would stop the reads too. Alert on the body or on
// samsa_log_dir_state instead.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	dirs := s.logs.LogDirs()
	status := "ok"
	for _, d := range dirs {
		if d.State != storage.LogDirOnline || d.OfflinePartitions > 0 {
			status = "degraded"
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, status)
	for _, d := range dirs {
		fmt.Fprintf(w, "log.dir %s %s offline_partitions=%d\n", d.Dir, d.State, d.OfflinePartitions)
	}
}

// HTTPAddr is the bound address of the HTTP listener (console, /metrics,
// /healthz), "" when http.listener is empty or could not be bound.
func (s *Server) HTTPAddr() string { return s.httpAddr }

// KafkaAddr is the bound address of the first broker listener.
func (s *Server) KafkaAddr() string { return s.kafkaAddr }

// Close shuts down cleanly: stop listeners, flush, checkpoints,
// clean-shutdown marker.
func (s *Server) Close() error {
	var errs []error
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, s.http.Shutdown(ctx))
		cancel()
		<-s.httpDone
		s.http = nil
	}
	if s.console != nil {
		s.console.Close()
		s.console = nil
	}
	for _, l := range s.listeners {
		errs = append(errs, l.Close())
	}
	s.listeners = nil
	// The transaction coordinator stops first: its marker writers write
	// to __consumer_offsets through the group coordinator.
	if s.txns != nil {
		s.txns.Close()
		s.txns = nil
	}
	if s.groups != nil {
		s.groups.Close()
		s.groups = nil
	}
	if s.logs != nil {
		errs = append(errs, s.logs.Close())
		s.logs = nil
	}
	if s.metaLog != nil {
		errs = append(errs, s.metaLog.Close())
		s.metaLog = nil
	}
	err := errors.Join(errs...)
	if err != nil {
		s.logger.Error("shutdown", "err", err)
	} else {
		s.logger.Info("samsa stopped cleanly")
	}
	return err
}

// Run starts a node and blocks until ctx is done, then closes it.
func Run(ctx context.Context, opts Options) error {
	s, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}
