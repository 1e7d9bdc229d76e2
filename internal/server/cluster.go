package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/api"
	"samsa/internal/controller"
	"samsa/internal/interbroker"
	"samsa/internal/metadata"
)

// controllerRouter is the api.Controller of a node: its own controller
// while it is the active one, else the forwarder to the active one. A
// broker-only node has no local controller.
type controllerRouter struct {
	local *controller.Controller // nil on a broker-only node
	fwd   *interbroker.Forwarder
}

var _ api.Controller = (*controllerRouter)(nil)

func (r *controllerRouter) pick() api.Controller {
	if r.local != nil && r.local.Active() {
		return r.local
	}
	return r.fwd
}

func (r *controllerRouter) CreateTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	return r.pick().CreateTopics(ctx, req)
}

func (r *controllerRouter) DeleteTopics(ctx context.Context, req *kmsg.DeleteTopicsRequest) *kmsg.DeleteTopicsResponse {
	return r.pick().DeleteTopics(ctx, req)
}

func (r *controllerRouter) CreatePartitions(ctx context.Context, req *kmsg.CreatePartitionsRequest) *kmsg.CreatePartitionsResponse {
	return r.pick().CreatePartitions(ctx, req)
}

func (r *controllerRouter) AlterPartitionReassignments(ctx context.Context, req *kmsg.AlterPartitionAssignmentsRequest) *kmsg.AlterPartitionAssignmentsResponse {
	return r.pick().AlterPartitionReassignments(ctx, req)
}

func (r *controllerRouter) AlterConfigs(ctx context.Context, req *kmsg.AlterConfigsRequest) *kmsg.AlterConfigsResponse {
	return r.pick().AlterConfigs(ctx, req)
}

func (r *controllerRouter) IncrementalAlterConfigs(ctx context.Context, req *kmsg.IncrementalAlterConfigsRequest) *kmsg.IncrementalAlterConfigsResponse {
	return r.pick().IncrementalAlterConfigs(ctx, req)
}

func (r *controllerRouter) AutoCreateTopics(ctx context.Context, topics []string) map[string]int16 {
	return r.pick().AutoCreateTopics(ctx, topics)
}

func (r *controllerRouter) AllocateProducerID(ctx context.Context) (int64, error) {
	return r.pick().AllocateProducerID(ctx)
}

func (r *controllerRouter) ElectLeaders(ctx context.Context, req *kmsg.ElectLeadersRequest) *kmsg.ElectLeadersResponse {
	return r.pick().ElectLeaders(ctx, req)
}

func (r *controllerRouter) UnregisterBroker(ctx context.Context, req *kmsg.UnregisterBrokerRequest) *kmsg.UnregisterBrokerResponse {
	return r.pick().UnregisterBroker(ctx, req)
}

func (r *controllerRouter) CreateInternalTopic(ctx context.Context, name string, partitions int32, rf int16, configs map[string]string) error {
	return r.pick().CreateInternalTopic(ctx, name, partitions, rf, configs)
}

// lifecycle is the broker side of broker liveness (Kafka's
// BrokerLifecycleManager): it registers this broker with the active
// controller (BrokerRegistration), heartbeats it every
// broker.heartbeat.interval.ms (re-registering when the controller no
// longer knows the epoch) and, on Close, does a controlled shutdown. One
// goroutine (run) owns the heartbeats; stop ends it.
type lifecycle struct {
	cs          *interbroker.Controllers
	pub         *metadata.Publisher
	logger      *slog.Logger
	interval    time.Duration // broker.heartbeat.interval.ms
	session     time.Duration // broker.session.timeout.ms
	incarnation [16]byte      // random per process
	// req is the registration (listeners, rack, cluster id); immutable.
	req *kmsg.BrokerRegistrationRequest
	// epoch is the broker epoch of the last registration; -1 before.
	epoch atomic.Int64
	// dirs reports failed log dirs (logdirs.go); nil without storage.
	dirs *dirFailures

	stopOnce sync.Once
	stop     chan struct{} // closed to end run
	done     chan struct{} // closed when run has returned
}

func newLifecycle(s *Server, cs *interbroker.Controllers, endpoints []metadata.Endpoint) *lifecycle {
	cfg := s.cfg
	l := &lifecycle{
		cs: cs, pub: s.pub, logger: s.logger,
		interval: cfg.Cluster.HeartbeatInterval, session: cfg.Cluster.SessionTimeout,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	_, _ = rand.Read(l.incarnation[:])
	l.epoch.Store(-1)
	if s.logs != nil && s.replicas != nil {
		l.dirs = newDirFailures(s.logs, s.replicas, cfg.LogDirs)
	}
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID, req.ClusterID, req.IncarnationID = cfg.NodeID, s.clusterID, l.incarnation
	if cfg.Cluster.Rack != "" {
		rack := cfg.Cluster.Rack
		req.Rack = &rack
	}
	for _, e := range endpoints {
		rl := kmsg.NewBrokerRegistrationRequestListener()
		rl.Name, rl.Host, rl.Port, rl.SecurityProtocol = e.Listener, e.Host, uint16(e.Port), 0
		req.Listeners = append(req.Listeners, rl)
	}
	l.req = req
	return l
}

// errFatalRegistration marks registration answers that retrying cannot
// change.
var errFatalRegistration = errors.New("server: broker registration refused")

// register registers with the active controller, retrying retriable
// answers until ctx ends, and waits until this node's metadata holds the
// registration (so every earlier change is applied too).
func (l *lifecycle) register(ctx context.Context) error {
	// refused is the last refusal; a duplicate registration is retried
	// (a node restarted right after a crash waits for its old session
	// to expire), and reported if it lasts until ctx ends.
	var refused error
	for {
		r, ctrl, err := l.cs.Do(ctx, l.req, nil)
		if err != nil {
			if refused != nil {
				return refused
			}
			return fmt.Errorf("server: register broker %d: %w", l.req.BrokerID, err)
		}
		resp := r.(*kmsg.BrokerRegistrationResponse)
		switch resp.ErrorCode {
		case 0:
			l.epoch.Store(resp.BrokerEpoch)
			if err := l.pub.WaitOffset(ctx, resp.BrokerEpoch); err != nil {
				return fmt.Errorf("server: broker %d registered but its metadata did not catch up: %w", l.req.BrokerID, err)
			}
			return nil
		case kerr.DuplicateBrokerRegistration.Code:
			refused = fmt.Errorf("%w: node.id %d is already registered by another running process (controller %d, DUPLICATE_BROKER_REGISTRATION; a crashed process's registration expires after broker.session.timeout.ms): node.id must be unique", errFatalRegistration, l.req.BrokerID, ctrl)
		case kerr.InconsistentClusterID.Code:
			return fmt.Errorf("%w: the cluster id %s in this node's meta.properties differs from the cluster's (controller %d)", errFatalRegistration, l.req.ClusterID, ctrl)
		default:
			l.logger.Debug("broker registration", "controller", ctrl, "err", kerr.ErrorForCode(resp.ErrorCode))
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if refused != nil {
				return refused
			}
			return fmt.Errorf("server: register broker %d: %w", l.req.BrokerID, ctx.Err())
		}
	}
}

// run heartbeats until stop is closed.
func (l *lifecycle) run() {
	defer close(l.done)
	t := time.NewTicker(l.interval)
	defer t.Stop()
	var dirFailed <-chan struct{}
	if l.dirs != nil {
		dirFailed = l.dirs.logs.DirFailed()
	}
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		case <-dirFailed: // report a failed log dir at once
		}
		// One heartbeat may take two intervals at most (never more
		// than the session): one stuck on a controller that stopped
		// answering (SIGSTOP, a cut) must give way soon enough for the
		// next one to reach the new controller (the image's controller
		// is tried first) before the session the new controller granted
		// at its takeover runs out.
		ctx, cancel := context.WithTimeout(context.Background(), min(l.session, 2*l.interval))
		go func() { // ends with ctx: stop cuts a heartbeat short
			select {
			case <-l.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		_, _ = l.heartbeat(ctx, false)
		cancel()
	}
}

// heartbeat sends one heartbeat; a controller that does not know this
// broker's epoch (a re-registration elsewhere, a lost registration) gets
// a new registration.
func (l *lifecycle) heartbeat(ctx context.Context, shutdown bool) (*kmsg.BrokerHeartbeatResponse, error) {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch = l.req.BrokerID, l.epoch.Load()
	req.CurrentMetadataOffset = l.pub.Image().Offset
	req.WantShutdown = shutdown
	l.reportFailedDirs(ctx, req)
	r, _, err := l.cs.Do(ctx, req, nil)
	if err != nil {
		l.logger.Warn("broker heartbeat", "err", err)
		return nil, err
	}
	resp := r.(*kmsg.BrokerHeartbeatResponse)
	switch resp.ErrorCode {
	case 0:
	case kerr.StaleBrokerEpoch.Code, kerr.BrokerIDNotRegistered.Code:
		if shutdown {
			return resp, nil
		}
		l.logger.Info("re-registering with the controller", "reason", kerr.ErrorForCode(resp.ErrorCode))
		if err := l.register(ctx); err != nil {
			l.logger.Warn("broker re-registration", "err", err)
		}
	default:
		l.logger.Debug("broker heartbeat", "err", kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp, nil
}

// stopHeartbeats ends run and waits for it.
func (l *lifecycle) stopHeartbeats() {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
}

// shutdown stops the heartbeats and does a controlled shutdown: it asks
// the controller to fence this broker (WantShutdown) until told it may
// stop, at most timeout.
func (l *lifecycle) shutdown(timeout time.Duration) {
	l.stopHeartbeats()
	if l.epoch.Load() < 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for ctx.Err() == nil {
		resp, err := l.heartbeat(ctx, true)
		if err == nil && (resp.ShouldShutdown || resp.ErrorCode != 0 && resp.ErrorCode != kerr.NotController.Code) {
			l.logger.Info("controlled shutdown: fenced by the controller")
			return
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	l.logger.Warn("controlled shutdown: the controller did not answer; stopping anyway", "timeout", timeout)
}
