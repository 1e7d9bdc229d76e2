package interbroker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
)

// Forwarder is the controller of a node that is not the active one: it
// sends admin requests to the active controller's controller listener
// (Kafka 4 forwards them there too, wrapped in an Envelope; Samsa sends
// the request itself) and waits, bounded, until this node's metadata
// shows the change, so a client that creates a topic here and then
// produces here finds it. Producer ids come in blocks from the
// controller (AllocateProducerIds, 67), as Kafka brokers get them.
type Forwarder struct {
	cs *Controllers
	// pub is this node's metadata (waits and live brokers).
	pub *metadata.Publisher
	// nodeID and brokerEpoch identify this broker to AllocateProducerIds.
	nodeID      int32
	brokerEpoch func() int64

	pidMu sync.Mutex
	// next..limit are producer ids of the current block not handed out;
	// guarded by pidMu.
	next, limit int64
}

// NewForwarder returns a Forwarder over cs. brokerEpoch returns this
// broker's current epoch (its registration), -1 before.
func NewForwarder(cs *Controllers, pub *metadata.Publisher, nodeID int32, brokerEpoch func() int64) *Forwarder {
	return &Forwarder{cs: cs, pub: pub, nodeID: nodeID, brokerEpoch: brokerEpoch}
}

// forwardTimeout bounds a forwarded request, the search for the active
// controller included (Kafka's request.timeout.ms, which bounds a
// broker's forwarding to the controller): this broker's own bound, on
// top of the request's timeout.
const forwardTimeout = 30 * time.Second

// do forwards req to the active controller until ctx's deadline (the
// client's, set from the request's timeout) or forwardTimeout, whichever
// is first; the controller gets the time left as the request's timeout,
// so it commits nothing after this node stopped waiting. The
// interbroker client sets req's version to what the controller serves;
// do gives req back the version it came with and sets the response to
// it, so callers answer in the version their client asked for.
func (f *Forwarder) do(ctx context.Context, req kmsg.Request, notController func(kmsg.Response) bool) (kmsg.Response, int32, error) {
	version := req.GetVersion()
	defer req.SetVersion(version)
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	resp, id, err := f.cs.Do(ctx, req, notController)
	if resp != nil {
		resp.SetVersion(version)
	}
	return resp, id, err
}

// timedOut is the answer to an admin request the active controller did
// not answer in time: REQUEST_TIMED_OUT (as Kafka's ForwardingManager
// answers when forwarding times out), never NOT_CONTROLLER, whose
// clients retry at once against the same broker.
func timedOut(err error) (int16, *string) {
	msg := fmt.Sprintf("no answer from the active controller within the request's timeout (at most %v): %v", forwardTimeout, err)
	return kerr.RequestTimedOut.Code, &msg
}

// imageWaitMax bounds how long a forwarded change waits to show in this
// node's metadata when ctx has no deadline (internal callers).
const imageWaitMax = forwardTimeout

// waitImage waits until ok holds for this node's image, until ctx ends
// (at most imageWaitMax), and reports whether it holds; the change is
// committed either way.
func (f *Forwarder) waitImage(ctx context.Context, ok func(*metadata.Image) bool) bool {
	ctx, cancel := context.WithTimeout(ctx, imageWaitMax)
	defer cancel()
	for {
		ch := f.pub.Changed()
		if ok(f.pub.Image()) {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ok(f.pub.Image())
		}
	}
}

// notVisibleMessage explains REQUEST_TIMED_OUT for a change committed by
// the controller that this node's metadata did not show in time (what
// Kafka answers when a change has not propagated before the timeout).
func notVisibleMessage(node int32, what string) *string {
	msg := fmt.Sprintf("%s committed by the controller, but not yet in the metadata of broker %d within the request's timeout", what, node)
	return &msg
}

// waitApplied waits (within ctx) until this broker's image shows the
// change of every item the controller answered with success (done), and
// answers the items it still does not show REQUEST_TIMED_OUT: the change
// was made but this broker cannot vouch for it yet. fields points at an
// item's error code and message; what names the change for the message.
func waitApplied[T any](f *Forwarder, ctx context.Context, items []T, fields func(*T) (*int16, **string), done func(*metadata.Image, *T) bool, what func(*T) string) {
	pending := func(im *metadata.Image, t *T) bool {
		code, _ := fields(t)
		return *code == 0 && !done(im, t)
	}
	if f.waitImage(ctx, func(im *metadata.Image) bool {
		for i := range items {
			if pending(im, &items[i]) {
				return false
			}
		}
		return true
	}) {
		return
	}
	im := f.pub.Image()
	for i := range items {
		if t := &items[i]; pending(im, t) {
			code, msg := fields(t)
			*code, *msg = kerr.RequestTimedOut.Code, notVisibleMessage(f.nodeID, what(t))
		}
	}
}

// allNotController reports whether every item of a per-item response
// carries NOT_CONTROLLER.
func allNotController[T any](items []T, code func(*T) int16) bool {
	for i := range items {
		if code(&items[i]) != kerr.NotController.Code {
			return false
		}
	}
	return len(items) > 0
}

// CreateTopics forwards to the controller and, unless the request is
// validate-only or has a timeout <= 0 (do not wait), waits until this
// node's metadata holds each created topic under the id the controller
// gave it (a topic of the same name deleted meanwhile does not count).
func (f *Forwarder) CreateTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	r, _, err := f.do(ctx, req, func(resp kmsg.Response) bool {
		return allNotController(resp.(*kmsg.CreateTopicsResponse).Topics, func(t *kmsg.CreateTopicsResponseTopic) int16 { return t.ErrorCode })
	})
	if err != nil {
		resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		code, msg := timedOut(err)
		for _, t := range req.Topics {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t.Topic, -1, -1
			rt.ErrorCode, rt.ErrorMessage = code, msg
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	resp := r.(*kmsg.CreateTopicsResponse)
	if req.ValidateOnly || req.TimeoutMillis <= 0 {
		return resp
	}
	visible := func(im *metadata.Image, t *kmsg.CreateTopicsResponseTopic) bool {
		top := im.Topics[t.Topic]
		return top != nil && (t.TopicID == [16]byte{} || top.ID == metadata.UUID(t.TopicID))
	}
	waitApplied(f, ctx, resp.Topics, func(t *kmsg.CreateTopicsResponseTopic) (*int16, **string) { return &t.ErrorCode, &t.ErrorMessage },
		visible, func(t *kmsg.CreateTopicsResponseTopic) string { return "topic " + t.Topic })
	return resp
}

// DeleteTopics forwards to the controller and, unless the request's
// timeout is <= 0, waits until this node's metadata no longer holds the
// deleted topics.
func (f *Forwarder) DeleteTopics(ctx context.Context, req *kmsg.DeleteTopicsRequest) *kmsg.DeleteTopicsResponse {
	r, _, err := f.do(ctx, req, func(resp kmsg.Response) bool {
		return allNotController(resp.(*kmsg.DeleteTopicsResponse).Topics, func(t *kmsg.DeleteTopicsResponseTopic) int16 { return t.ErrorCode })
	})
	if err != nil {
		resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
		code, msg := timedOut(err)
		for i := range req.TopicNames {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.ErrorCode, rt.ErrorMessage = &req.TopicNames[i], code, msg
			resp.Topics = append(resp.Topics, rt)
		}
		for _, t := range req.Topics {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.TopicID, rt.ErrorCode, rt.ErrorMessage = t.Topic, t.TopicID, code, msg
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	resp := r.(*kmsg.DeleteTopicsResponse)
	if req.TimeoutMillis <= 0 {
		return resp
	}
	gone := func(im *metadata.Image, t *kmsg.DeleteTopicsResponseTopic) bool {
		return im.TopicsByID[metadata.UUID(t.TopicID)] == nil
	}
	waitApplied(f, ctx, resp.Topics, func(t *kmsg.DeleteTopicsResponseTopic) (*int16, **string) { return &t.ErrorCode, &t.ErrorMessage },
		gone, func(t *kmsg.DeleteTopicsResponseTopic) string {
			if t.Topic != nil {
				return "deletion of topic " + *t.Topic
			}
			return "deletion of topic"
		})
	return resp
}

// CreatePartitions forwards to the controller and, unless the request is
// validate-only or has a timeout <= 0, waits until this node's metadata
// holds the new partitions.
func (f *Forwarder) CreatePartitions(ctx context.Context, req *kmsg.CreatePartitionsRequest) *kmsg.CreatePartitionsResponse {
	r, _, err := f.do(ctx, req, func(resp kmsg.Response) bool {
		return allNotController(resp.(*kmsg.CreatePartitionsResponse).Topics, func(t *kmsg.CreatePartitionsResponseTopic) int16 { return t.ErrorCode })
	})
	if err != nil {
		resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
		code, msg := timedOut(err)
		for _, t := range req.Topics {
			rt := kmsg.NewCreatePartitionsResponseTopic()
			rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, code, msg
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	resp := r.(*kmsg.CreatePartitionsResponse)
	if req.ValidateOnly || req.TimeoutMillis <= 0 {
		return resp
	}
	want := map[string]int32{}
	for _, t := range req.Topics {
		want[t.Topic] = t.Count
	}
	visible := func(im *metadata.Image, t *kmsg.CreatePartitionsResponseTopic) bool {
		top := im.Topics[t.Topic]
		return top != nil && int32(len(top.Partitions)) >= want[t.Topic]
	}
	waitApplied(f, ctx, resp.Topics, func(t *kmsg.CreatePartitionsResponseTopic) (*int16, **string) { return &t.ErrorCode, &t.ErrorMessage },
		visible, func(t *kmsg.CreatePartitionsResponseTopic) string { return "new partitions of topic " + t.Topic })
	return resp
}

// AlterConfigs forwards to the controller.
func (f *Forwarder) AlterConfigs(ctx context.Context, req *kmsg.AlterConfigsRequest) *kmsg.AlterConfigsResponse {
	r, _, err := f.do(ctx, req, func(resp kmsg.Response) bool {
		return allNotController(resp.(*kmsg.AlterConfigsResponse).Resources, func(t *kmsg.AlterConfigsResponseResource) int16 { return t.ErrorCode })
	})
	if err != nil {
		resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
		code, msg := timedOut(err)
		for _, rr := range req.Resources {
			x := kmsg.NewAlterConfigsResponseResource()
			x.ResourceType, x.ResourceName, x.ErrorCode, x.ErrorMessage = rr.ResourceType, rr.ResourceName, code, msg
			resp.Resources = append(resp.Resources, x)
		}
		return resp
	}
	resp := r.(*kmsg.AlterConfigsResponse)
	return resp
}

// IncrementalAlterConfigs forwards to the controller.
func (f *Forwarder) IncrementalAlterConfigs(ctx context.Context, req *kmsg.IncrementalAlterConfigsRequest) *kmsg.IncrementalAlterConfigsResponse {
	r, _, err := f.do(ctx, req, func(resp kmsg.Response) bool {
		return allNotController(resp.(*kmsg.IncrementalAlterConfigsResponse).Resources, func(t *kmsg.IncrementalAlterConfigsResponseResource) int16 { return t.ErrorCode })
	})
	if err != nil {
		resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
		code, msg := timedOut(err)
		for _, rr := range req.Resources {
			x := kmsg.NewIncrementalAlterConfigsResponseResource()
			x.ResourceType, x.ResourceName, x.ErrorCode, x.ErrorMessage = rr.ResourceType, rr.ResourceName, code, msg
			resp.Resources = append(resp.Resources, x)
		}
		return resp
	}
	resp := r.(*kmsg.IncrementalAlterConfigsResponse)
	return resp
}

// AutoCreateTopics sends one CreateTopics with the broker defaults (-1)
// for the topics, as Kafka's AutoTopicCreationManager does.
func (f *Forwarder) AutoCreateTopics(ctx context.Context, topics []string) map[string]int16 {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = req.MaxVersion()
	req.TimeoutMillis = 30000
	for _, name := range topics {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = name, -1, -1
		req.Topics = append(req.Topics, t)
	}
	resp := f.CreateTopics(ctx, req)
	out := make(map[string]int16, len(resp.Topics))
	for _, rt := range resp.Topics {
		out[rt.Topic] = rt.ErrorCode
	}
	return out
}

// CreateInternalTopic creates name with partitions partitions unless it
// exists, with replication factor rf (min.insync.replicas capped by it).
// The controller refuses a factor above the active brokers
// (INVALID_REPLICATION_FACTOR): the coordinator then answers
// COORDINATOR_NOT_AVAILABLE until enough brokers registered, as Kafka.
func (f *Forwarder) CreateInternalTopic(ctx context.Context, name string, partitions int32, rf int16, configs map[string]string) error {
	im := f.pub.Image()
	if im.Topics[name] != nil {
		return nil
	}
	if rf <= 0 {
		return fmt.Errorf("interbroker: create %s: replication factor %d", name, rf)
	}
	if v, ok := configs["min.insync.replicas"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n > int(rf) {
			configs = maps.Clone(configs)
			configs["min.insync.replicas"] = strconv.Itoa(int(rf))
		}
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = req.MaxVersion()
	req.TimeoutMillis = 30000
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = name, partitions, rf
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, &v
		t.Configs = append(t.Configs, c)
	}
	req.Topics = append(req.Topics, t)
	resp := f.CreateTopics(ctx, req)
	rt := resp.Topics[0]
	if rt.ErrorCode != 0 && rt.ErrorCode != kerr.TopicAlreadyExists.Code {
		err := kerr.ErrorForCode(rt.ErrorCode)
		if rt.ErrorMessage != nil {
			return fmt.Errorf("interbroker: create %s: %w: %s", name, err, *rt.ErrorMessage)
		}
		return fmt.Errorf("interbroker: create %s: %w", name, err)
	}
	if rt.ErrorCode != 0 {
		f.waitImage(ctx, func(im *metadata.Image) bool { return im.Topics[name] != nil })
	}
	return nil
}

// AllocateProducerID hands out the next id of this broker's block,
// asking the controller for a new block (AllocateProducerIds) when it is
// used up.
func (f *Forwarder) AllocateProducerID(ctx context.Context) (int64, error) {
	f.pidMu.Lock()
	defer f.pidMu.Unlock()
	if f.next >= f.limit {
		req := kmsg.NewPtrAllocateProducerIDsRequest()
		req.BrokerID, req.BrokerEpoch = f.nodeID, f.brokerEpoch()
		r, _, err := f.do(ctx, req, nil)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", metadata.ErrNotController, err)
		}
		resp := r.(*kmsg.AllocateProducerIDsResponse)
		if resp.ErrorCode != 0 {
			return 0, fmt.Errorf("interbroker: allocate producer ids: %w", kerr.ErrorForCode(resp.ErrorCode))
		}
		if resp.ProducerIDLen <= 0 {
			return 0, errors.New("interbroker: allocate producer ids: empty block")
		}
		f.next, f.limit = resp.ProducerIDStart, resp.ProducerIDStart+int64(resp.ProducerIDLen)
	}
	id := f.next
	f.next++
	return id, nil
}

// ElectLeaders forwards to the controller and waits until this node's
// metadata shows a new leader epoch for every partition elected (the
// leader epoch before is taken from this node's image before the
// request is sent); one not shown before the request's deadline answers
// REQUEST_TIMED_OUT (the election was made).
func (f *Forwarder) ElectLeaders(ctx context.Context, req *kmsg.ElectLeadersRequest) *kmsg.ElectLeadersResponse {
	before := map[string][]int32{}
	for name, t := range f.pub.Image().Topics {
		eps := make([]int32, len(t.Partitions))
		for i := range t.Partitions {
			eps[i] = t.Partitions[i].LeaderEpoch
		}
		before[name] = eps
	}
	r, _, err := f.do(ctx, req, func(resp kmsg.Response) bool {
		return resp.(*kmsg.ElectLeadersResponse).ErrorCode == kerr.NotController.Code
	})
	if err != nil {
		resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
		code, msg := timedOut(err)
		resp.ErrorCode = code
		for _, t := range req.Topics {
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewElectLeadersResponseTopicPartition()
				rp.Partition, rp.ErrorCode, rp.ErrorMessage = p, code, msg
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	resp := r.(*kmsg.ElectLeadersResponse)
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		elected := func(im *metadata.Image, p *kmsg.ElectLeadersResponseTopicPartition) bool {
			t := im.Topics[rt.Topic]
			if t == nil || int(p.Partition) >= len(t.Partitions) || p.Partition < 0 {
				return true // deleted meanwhile: nothing to wait for
			}
			eps := before[rt.Topic]
			return int(p.Partition) >= len(eps) || t.Partitions[p.Partition].LeaderEpoch > eps[p.Partition]
		}
		waitApplied(f, ctx, rt.Partitions,
			func(p *kmsg.ElectLeadersResponseTopicPartition) (*int16, **string) {
				return &p.ErrorCode, &p.ErrorMessage
			},
			elected, func(p *kmsg.ElectLeadersResponseTopicPartition) string {
				return "leader election of " + rt.Topic + "-" + strconv.Itoa(int(p.Partition))
			})
	}
	return resp
}

// AlterPartitionReassignments forwards to the controller and, unless the
// request's timeout is <= 0, waits until this node's metadata shows each
// accepted partition's change (a cancel: no move in progress; a move:
// every target replica among the replicas), so a ListPartitionReassignments
// sent here next sees it.
func (f *Forwarder) AlterPartitionReassignments(ctx context.Context, req *kmsg.AlterPartitionAssignmentsRequest) *kmsg.AlterPartitionAssignmentsResponse {
	r, _, err := f.do(ctx, req, func(resp kmsg.Response) bool {
		return resp.(*kmsg.AlterPartitionAssignmentsResponse).ErrorCode == kerr.NotController.Code
	})
	if err != nil {
		resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
		resp.ErrorCode, resp.ErrorMessage = timedOut(err)
		for _, rt := range req.Topics {
			out := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			out.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				op := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
				op.Partition, op.ErrorCode, op.ErrorMessage = rp.Partition, resp.ErrorCode, resp.ErrorMessage
				out.Partitions = append(out.Partitions, op)
			}
			resp.Topics = append(resp.Topics, out)
		}
		return resp
	}
	resp := r.(*kmsg.AlterPartitionAssignmentsResponse)
	if req.TimeoutMillis <= 0 || resp.ErrorCode != 0 {
		return resp
	}
	// The target of each partition of the request, by topic and index
	// (nil: a cancel).
	type key struct {
		topic string
		part  int32
	}
	targets := map[key][]int32{}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			targets[key{rt.Topic, rp.Partition}] = rp.Replicas
		}
	}
	for ti := range resp.Topics {
		rt := &resp.Topics[ti]
		shown := func(im *metadata.Image, op *kmsg.AlterPartitionAssignmentsResponseTopicPartition) bool {
			t := im.Topics[rt.Topic]
			if t == nil || op.Partition < 0 || int(op.Partition) >= len(t.Partitions) {
				return true // deleted meanwhile: nothing to wait for
			}
			p := &t.Partitions[op.Partition]
			target := targets[key{rt.Topic, op.Partition}]
			if target == nil {
				return !p.Reassigning()
			}
			for _, b := range target {
				if !slices.Contains(p.Replicas, b) {
					return false
				}
			}
			return true
		}
		waitApplied(f, ctx, rt.Partitions, func(op *kmsg.AlterPartitionAssignmentsResponseTopicPartition) (*int16, **string) {
			return &op.ErrorCode, &op.ErrorMessage
		}, shown, func(op *kmsg.AlterPartitionAssignmentsResponseTopicPartition) string {
			return fmt.Sprintf("reassignment of %s-%d", rt.Topic, op.Partition)
		})
	}
	return resp
}

// UnregisterBroker forwards to the controller and, when it succeeded,
// waits until this node's metadata no longer holds the broker, so a
// Metadata sent here next does not list it; not shown in time:
// REQUEST_TIMED_OUT (the broker is unregistered).
func (f *Forwarder) UnregisterBroker(ctx context.Context, req *kmsg.UnregisterBrokerRequest) *kmsg.UnregisterBrokerResponse {
	r, _, err := f.do(ctx, req, func(resp kmsg.Response) bool {
		return resp.(*kmsg.UnregisterBrokerResponse).ErrorCode == kerr.NotController.Code
	})
	if err != nil {
		resp := req.ResponseKind().(*kmsg.UnregisterBrokerResponse)
		resp.ErrorCode, resp.ErrorMessage = timedOut(err)
		return resp
	}
	resp := r.(*kmsg.UnregisterBrokerResponse)
	if resp.ErrorCode != 0 {
		return resp
	}
	if !f.waitImage(ctx, func(im *metadata.Image) bool { _, ok := im.Brokers[req.BrokerID]; return !ok }) {
		resp.ErrorCode = kerr.RequestTimedOut.Code
		resp.ErrorMessage = notVisibleMessage(f.nodeID, "unregistration of broker "+strconv.Itoa(int(req.BrokerID)))
	}
	return resp
}
