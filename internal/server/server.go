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
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/api"
	"samsa/internal/config"
	"samsa/internal/console"
	"samsa/internal/controller"
	"samsa/internal/gctune"
	"samsa/internal/group"
	"samsa/internal/interbroker"
	"samsa/internal/metadata"
	"samsa/internal/metrics"
	"samsa/internal/network"
	"samsa/internal/raft"
	"samsa/internal/replica"
	"samsa/internal/replication"
	"samsa/internal/storage"
	"samsa/internal/txn"
)

// Options configure a node.
type Options struct {
	ConfigFile string       // server.properties path; "" for the single-node defaults
	Overrides  []string     // "key=value" (-o), applied after the file
	Logger     *slog.Logger // nil: slog.Default()
	// StartTimeout bounds the wait for the metadata quorum and the
	// broker's registration; 0: 60 s.
	StartTimeout time.Duration
	// Listeners are pre-bound sockets by listener name (tests: bind
	// 127.0.0.1:0 first so controller.quorum.voters can name the ports);
	// a listener not in the map is bound from its configured address.
	// Start takes ownership: Close closes them.
	Listeners map[string]net.Listener
}

// startTimeout bounds how long Start waits for the quorum (a leader, the
// migration of an old metadata log, the first registration).
const startTimeout = 60 * time.Second

// Server is a running node.
type Server struct {
	cfg       *config.Config
	logger    *slog.Logger
	clusterID string
	// gcStop releases this server's share of the process's GC tuner
	// (gc.min.heap.bytes); nil before Start succeeded.
	gcStop func()

	logs *storage.Manager
	// quorum is this node's member of the metadata quorum (a voter, or a
	// learner on a broker-only node); its publisher is pub.
	quorum *raft.MetadataLog
	pub    *metadata.Publisher
	// controller is the local controller; nil on a broker-only node.
	controller *controller.Controller
	// ctrl is how handlers reach the active controller: local when this
	// node is active, forwarded otherwise.
	ctrl api.Controller
	// voters are the quorum's voters, id -> controller listener address
	// (controller.quorum.voters, or this node alone).
	voters map[int32]string
	// client is the inter-broker client (forwarding, transaction
	// markers and verification); lifeClient carries registration and
	// heartbeats only.
	client, lifeClient *interbroker.Client
	// life registers and heartbeats this broker; nil on a
	// controller-only node.
	life *lifecycle
	// lifeRef is life for readers on other goroutines (broker epoch of
	// fetches and ISR changes); nil before registration.
	lifeRef atomic.Pointer[lifecycle]
	// expiryStop ends the session expiry goroutine (controller role);
	// expiryDone is closed when it has returned.
	expiryStop, expiryDone chan struct{}
	replicas               *replica.Manager
	fetchers               *replication.Manager // the follower fetchers
	groups                 *group.Coordinator
	txns                   *txn.Coordinator
	listeners              []*network.Server
	kafkaAddr              string
	http                   *http.Server
	httpAddr               string
	httpDone               chan struct{}
	// console is the web console served at "/" on the HTTP listener, a
	// Kafka client of kafkaAddr; nil when there is no HTTP listener.
	console *console.Console
	// socks are bound sockets not yet handed to a network.Server (nil
	// entries are); Close closes them.
	socks []net.Listener
	// registry holds this node's metrics: its own, so that several nodes
	// in one process (tests) do not collide in the default registry.
	registry *prometheus.Registry
	// rebalancer runs the automatic preferred leader elections
	// (auto.leader.rebalance.enable; controller role); nil otherwise.
	rebalancer *controller.LeaderRebalancer
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
		for _, l := range opts.Listeners {
			l.Close()
		}
		return nil, err
	}
	s := &Server{cfg: cfg, logger: logger}
	ok := false
	pre := opts.Listeners
	defer func() {
		if !ok {
			for _, l := range pre {
				l.Close()
			}
			s.Close()
		}
	}()
	if err := checkSupportedTopology(cfg); err != nil {
		return nil, err
	}
	if s.clusterID, err = ensureFormatted(cfg); err != nil {
		return nil, err
	}
	if s.logs, err = storage.OpenManager(managerOptions(cfg, logger)); err != nil {
		return nil, fmt.Errorf("server: open logs: %w", err)
	}
	// Moves resumed at open copy at the static rate until the first
	// metadata image brings the dynamic one (dynconf.go).
	s.logs.SetLogDirMoveRate(moveRate(cfg))

	// Sockets are bound first: a one-voter quorum learns its own
	// controller address from them.
	socks := make([]net.Listener, len(cfg.Listeners))
	s.socks = socks
	bound := map[string]int{}
	for i, l := range cfg.Listeners {
		if nl, ok := pre[l.Name]; ok {
			delete(pre, l.Name)
			socks[i] = nl
		} else if socks[i], err = net.Listen("tcp", net.JoinHostPort(l.Host, strconv.Itoa(l.Port))); err != nil {
			return nil, fmt.Errorf("server: listener %s: %w", l.Name, err)
		}
		bound[l.Name] = socks[i].Addr().(*net.TCPAddr).Port
	}
	if err := s.openQuorum(bound); err != nil {
		return nil, err
	}
	s.pub = s.quorum.Publisher()
	s.client = interbroker.New(interbroker.Options{ClientID: fmt.Sprintf("samsa-broker-%d", cfg.NodeID), Logger: logger})
	controllers := interbroker.NewControllers(s.client, s.voters, func() int32 { return s.pub.Image().ControllerID })
	var life *lifecycle // set below; the forwarder reads its epoch
	router := &controllerRouter{fwd: interbroker.NewForwarder(controllers, s.pub, cfg.NodeID, func() int64 {
		if life == nil {
			return -1
		}
		return life.epoch.Load()
	})}
	var local api.LocalController
	if cfg.HasRole("controller") {
		s.controller = controller.New(s.quorum, cfg, logger)
		node := s.quorum.Node()
		s.controller.SetAddLearner(slices.Collect(maps.Keys(s.voters)), node.AddLearner)
		s.controller.SetRemoveLearner(node.Learners, node.RemoveLearner)
		router.local = s.controller
		local = s.controller
	}
	s.ctrl = router
	s.replicas = replica.New(cfg.NodeID, s.logs, cfg, logger)
	brokerEpoch := func() int64 {
		if l := s.lifeRef.Load(); l != nil {
			return l.epoch.Load()
		}
		return -1
	}
	ropts := replicationOptions(cfg, brokerEpoch, logger)
	ropts.Quota = s.replicas.FollowerQuota()
	if s.fetchers, err = replication.NewManager(ropts); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.replicas.SetReplication(replica.ReplicationOptions{
		ISRUpdater:   &isrUpdater{local: s.controller, controllers: controllers},
		BrokerEpoch:  brokerEpoch,
		FollowerHook: s.followerHook,
	})
	s.pub.Subscribe(s.replicas.Apply)
	s.replicas.Start()
	s.groups = newGroupCoordinator(s)
	loader := &groupLoader{self: cfg.NodeID, replicas: s.replicas, groups: s.groups, loaded: map[int32]ledPartition{}}
	s.pub.Subscribe(loader.apply)
	s.txns = newTxnCoordinator(s, &interbroker.Markers{
		Client: s.client, Local: localMarkers{replicas: s.replicas, groups: s.groups},
		Metadata: s.pub, Self: cfg.NodeID, Listener: interBrokerListener(cfg).Name,
	})
	tl := &txnLoader{self: cfg.NodeID, replicas: s.replicas, txns: s.txns, loaded: map[int32]ledPartition{}}
	s.pub.Subscribe(tl.apply)

	handler := api.New(api.Deps{
		Config: cfg, ClusterID: s.clusterID, NodeID: cfg.NodeID,
		Controller: s.ctrl, LocalController: local, Metadata: s.pub,
		QuorumStatus: s.quorum.Node().Status, Voters: s.voters,
		ForwardToController: func(ctx context.Context, req kmsg.Request, notController func(kmsg.Response) bool) (kmsg.Response, error) {
			r, _, err := controllers.Do(ctx, req, notController)
			return r, err
		},
		VerifyTxnRemote: (&interbroker.TxnVerifier{
			Client: s.client, Metadata: s.pub, Listener: interBrokerListener(cfg).Name,
		}).Verify,
		LocalMarkers: localMarkers{replicas: s.replicas, groups: s.groups},
		Replicas:     s.replicas, Groups: s.groups, Txns: s.txns, Logger: logger,
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
	// Dynamic max.connections / max.connections.per.ip (dynconf.go).
	s.pub.Subscribe((&dynamicConfigs{static: cfg, self: cfg.NodeID, limits: limits, fetchers: s.fetchers, logs: s.logs, logger: logger,
		lastMax: cfg.MaxConnections, lastPerIP: cfg.MaxConnectionsPerIP, lastOverrides: cfg.MaxConnectionsPerIPOverrides,
		lastFetchers: cfg.NumReplicaFetchers, lastMoveRate: moveRate(cfg)}).apply)
	raftListener := raftListenerName(cfg)
	for i, l := range cfg.Listeners {
		nopts := network.Options{
			Listener: l.Name, MaxRequestBytes: cfg.SocketRequestMaxBytes, Logger: logger, Metrics: netMetrics,
			Limits: limits, IdleTimeout: cfg.ConnectionsMaxIdle, RequestReadTimeout: cfg.SocketRequestReadTimeout,
		}
		if l.Name == raftListener {
			nopts.Divert = s.quorum.Node().Divert
		}
		ln, err := network.NewServer(socks[i], handler, nopts)
		if err != nil {
			return nil, fmt.Errorf("server: listener %s: %w", l.Name, err)
		}
		socks[i] = nil // owned by ln
		s.listeners = append(s.listeners, ln)
		if s.kafkaAddr == "" && !cfg.IsControllerListener(l.Name) {
			s.kafkaAddr = ln.Addr().String()
		}
	}
	// Controller listeners serve first: the quorum talks over them.
	for i, l := range cfg.Listeners {
		if l.Name == raftListener || cfg.IsControllerListener(l.Name) {
			s.listeners[i].Serve()
			logger.Info("listener bound", "listener", l.Name, "addr", s.listeners[i].Addr().String())
		}
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = startTimeout
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.joinQuorum(sctx); err != nil {
		return nil, err
	}
	if cfg.HasRole("broker") {
		// Heartbeats have their own connections: a forwarded admin
		// request waiting on the controller must not delay them past
		// broker.session.timeout.ms.
		s.lifeClient = interbroker.New(interbroker.Options{ClientID: fmt.Sprintf("samsa-broker-%d-lifecycle", cfg.NodeID), Logger: logger})
		lifeControllers := interbroker.NewControllers(s.lifeClient, s.voters, func() int32 { return s.pub.Image().ControllerID })
		life = newLifecycle(s, lifeControllers, advertisedEndpoints(cfg, bound))
		s.lifeRef.Store(life)
		if err := life.register(sctx); err != nil {
			return nil, err
		}
		s.life = life
		go life.run()
	}
	if s.controller != nil {
		s.expiryStop, s.expiryDone = make(chan struct{}), make(chan struct{})
		go s.expireSessions()
		s.rebalancer = s.controller.StartLeaderRebalance()
	}
	// Only now is the image complete up to this broker's registration:
	// logs of no partition of it belong to deleted topics.
	s.replicas.RemoveStrayLogs()
	// Served and logged only after registration: the first request (or a
	// client that learns the address from this line) finds the broker in
	// Metadata.
	for i, l := range cfg.Listeners {
		if l.Name != raftListener && !cfg.IsControllerListener(l.Name) {
			s.listeners[i].Serve()
			logger.Info("listener bound", "listener", l.Name, "addr", s.listeners[i].Addr().String())
		}
	}
	s.startHTTP()
	s.gcStop = gctune.Start(cfg.GCMinHeapBytes)
	ok = true
	logger.Info("samsa started", "node.id", cfg.NodeID, "cluster.id", s.clusterID,
		"log.dirs", strings.Join(cfg.LogDirs, ","), "topics", len(s.pub.Image().Topics), "startup", time.Since(began).Round(time.Microsecond))
	return s, nil
}

// raftListenerName is the listener the metadata quorum's raft transport
// shares: the first of controller.listener.names this node binds, or on
// a broker-only node the inter-broker listener (the address it
// registers as its raft address).
func raftListenerName(cfg *config.Config) string {
	for _, l := range cfg.Listeners {
		if cfg.IsControllerListener(l.Name) {
			return l.Name
		}
	}
	return interBrokerListener(cfg).Name
}

// interBrokerListener is inter.broker.listener.name's listener, or the
// first broker listener.
func interBrokerListener(cfg *config.Config) config.Listener {
	for _, l := range cfg.BrokerListeners() {
		if l.Name == cfg.InterBrokerListenerName {
			return l
		}
	}
	if bl := cfg.BrokerListeners(); len(bl) > 0 {
		return bl[0]
	}
	return config.Listener{}
}

// openQuorum opens this node's member of the metadata quorum: voters
// from controller.quorum.voters, or this node alone (its controller
// listener's bound address) when the key is empty.
func (s *Server) openQuorum(bound map[string]int) error {
	cfg := s.cfg
	voters := maps.Clone(cfg.Cluster.Voters)
	if len(voters) > 0 {
		for id, addr := range voters {
			host, port, _ := net.SplitHostPort(addr)
			if port != "0" {
				continue
			}
			if id != cfg.NodeID {
				return fmt.Errorf("server: controller.quorum.voters: node %d has port 0", id)
			}
			voters[id] = net.JoinHostPort(host, strconv.Itoa(bound[raftListenerName(cfg)]))
		}
	} else {
		name := raftListenerName(cfg)
		host := "127.0.0.1"
		for _, l := range cfg.Listeners {
			if l.Name == name && l.Host != "" && l.Host != "0.0.0.0" && l.Host != "::" {
				host = l.Host
			}
		}
		voters = map[int32]string{cfg.NodeID: net.JoinHostPort(host, strconv.Itoa(bound[name]))}
	}
	s.voters = voters
	tick := cfg.Cluster.ElectionTimeout / electionTicks
	q, err := raft.OpenMetadataLog(raft.Config{
		NodeID: cfg.NodeID, Voters: voters, Learner: !cfg.HasRole("controller"), ClusterID: s.clusterID,
		Dir: filepath.Join(cfg.MetadataLogDir, metadata.LocalLogDir), Logger: s.logger,
		TickInterval: tick, ElectionTicks: electionTicks, HeartbeatTicks: 1,
		SnapshotBytes: cfg.Cluster.SnapshotBytes, SnapshotInterval: cfg.Cluster.SnapshotInterval,
	})
	if err != nil {
		return fmt.Errorf("server: open metadata quorum: %w", err)
	}
	s.quorum = q
	return nil
}

// electionTicks is the raft election timeout in ticks: a tick is a tenth
// of controller.quorum.election.timeout.ms.
const electionTicks = 10

// oldLocalLog is the metadata log file of releases before the raft
// quorum (metadata.LocalLog), imported by a one-voter start.
const oldLocalLog = "00000000000000000000.metadata"

// joinQuorum waits until the quorum has a leader this node follows (a
// one-voter quorum: until it is active, then it imports a metadata log
// written by an earlier release).
func (s *Server) joinQuorum(ctx context.Context) error {
	cfg := s.cfg
	single := len(cfg.Cluster.Voters) <= 1 && cfg.HasRole("controller")
	if single {
		if _, err := metadata.WaitActive(ctx, s.quorum); err != nil {
			return fmt.Errorf("server: the one-voter metadata quorum did not become active: %w", err)
		}
		imported, err := metadata.MigrateLocalLog(ctx, s.quorum, cfg.MetadataLogDir)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		if imported {
			s.logger.Info("imported the metadata log of an earlier release", "dir", cfg.MetadataLogDir,
				"topics", len(s.pub.Image().Topics))
		}
		return nil
	}
	old := filepath.Join(cfg.MetadataLogDir, metadata.LocalLogDir, oldLocalLog)
	if !cfg.HasRole("controller") {
		// A learner hears from the leader once the controller has
		// added it, on registration: it waits for its registration's
		// metadata instead (lifecycle.register).
		if _, err := os.Stat(old); err == nil {
			return fmt.Errorf("server: %s is the metadata log of an earlier single-node release; a process.roles=broker node cannot import it", old)
		}
		return nil
	}
	if _, err := os.Stat(old); err == nil {
		return fmt.Errorf("server: %s is the metadata log of an earlier single-node release: start this node once with controller.quorum.voters naming only itself to import it, or move it away", old)
	}
	if _, err := s.quorum.Node().WaitLeader(ctx); err != nil {
		return fmt.Errorf("server: no leader of the metadata quorum reachable (controller.quorum.voters=%s): %w", cfg.ControllerQuorumVoters, err)
	}
	return nil
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

// expireSessions fences brokers whose heartbeat session expired, and
// removes the quorum learners of unregistered brokers
// (controller.ReconcileLearners), every half heartbeat interval, until
// expiryStop is closed.
func (s *Server) expireSessions() {
	defer close(s.expiryDone)
	t := time.NewTicker(max(s.cfg.Cluster.HeartbeatInterval/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.expiryStop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Cluster.SessionTimeout)
		s.controller.ExpireSessions(ctx)
		s.controller.ReconcileLearners(ctx)
		cancel()
	}
}

// checkSupportedTopology rejects configurations the quorum cannot run:
// several voters need a controller listener on every voter, and a
// process.roles=broker node needs a broker listener (checked by config).
func checkSupportedTopology(cfg *config.Config) error {
	hasCtl := false
	for _, l := range cfg.Listeners {
		if cfg.IsControllerListener(l.Name) {
			hasCtl = true
		}
	}
	if cfg.HasRole("controller") && len(cfg.Cluster.Voters) > 1 && !hasCtl {
		return fmt.Errorf("server: controller.quorum.voters lists %d voters but listeners has none of controller.listener.names (%s)",
			len(cfg.Cluster.Voters), strings.Join(cfg.ControllerListenerNames, ","))
	}
	if !cfg.HasRole("broker") && !hasCtl {
		return fmt.Errorf("server: process.roles=controller needs a listener named in controller.listener.names (%s)", strings.Join(cfg.ControllerListenerNames, ","))
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
	if s.gcStop != nil {
		s.gcStop()
		s.gcStop = nil
	}
	if s.life != nil {
		// Controlled shutdown first, while this node still serves (a
		// one-node cluster's controller is this node).
		s.life.shutdown(min(s.cfg.Cluster.SessionTimeout, 5*time.Second))
		s.life = nil
	}
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
	for _, l := range s.socks {
		if l != nil {
			l.Close()
		}
	}
	s.socks = nil
	s.rebalancer.Close()
	s.rebalancer = nil
	if s.expiryStop != nil {
		close(s.expiryStop)
		<-s.expiryDone
		s.expiryStop = nil
	}
	if s.client != nil {
		s.client.Close()
		s.client = nil
	}
	if s.lifeClient != nil {
		s.lifeClient.Close()
		s.lifeClient = nil
	}
	// The quorum closes once no request is served: it stops raft, then
	// publishes what was applied (the replica manager still has its
	// storage) and stops the publishing goroutine.
	if s.quorum != nil {
		errs = append(errs, s.quorum.Close())
		s.quorum = nil
	}
	// No image is applied any more: the fetchers and the replica
	// manager's ISR checks stop before the logs close.
	if s.fetchers != nil {
		s.fetchers.Close()
		s.fetchers = nil
	}
	if s.replicas != nil {
		s.replicas.Close()
	}
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
