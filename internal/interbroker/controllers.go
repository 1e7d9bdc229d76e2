package interbroker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrNoController: no voter of controller.quorum.voters answered as the
// active controller before the request's deadline.
var ErrNoController = errors.New("interbroker: no active controller reachable")

// Controllers sends requests to the active controller of the quorum:
// the voter the local metadata names first (Hint), then every voter in
// id order; a voter that answers NOT_CONTROLLER, or cannot be reached, is
// skipped, and the round repeats with a backoff until ctx ends. Requests
// go to the voters' controller listeners (controller.quorum.voters).
type Controllers struct {
	client *Client
	// voters are id -> host:port (controller.quorum.voters); immutable.
	voters map[int32]string
	ids    []int32
	// hint returns the active controller the local metadata knows, or
	// -1; nil: none.
	hint func() int32

	mu sync.Mutex
	// last is the voter that last answered as the controller; guarded
	// by mu.
	last int32
}

// NewControllers returns a Controllers over client.
func NewControllers(client *Client, voters map[int32]string, hint func() int32) *Controllers {
	ids := slices.Sorted(maps.Keys(voters))
	return &Controllers{client: client, voters: maps.Clone(voters), ids: ids, hint: hint, last: -1}
}

// Backoff between two rounds over the voters.
const (
	roundBackoffMin = 50 * time.Millisecond
	roundBackoffMax = 500 * time.Millisecond
)

// Do sends req to the active controller and returns its response and the
// controller's id. notController reports whether a response says the
// peer is not the active controller (nil: a top-level NOT_CONTROLLER
// error code, for requests with one). Do returns an error only when ctx
// ends (ErrNoController, wrapping ctx's error).
//
// A request with a timeout field (CreateTopics, DeleteTopics,
// CreatePartitions, ...) carries at each attempt the time left until
// ctx's deadline, when that is shorter than its own (or its own is <= 0),
// so the controller enforces the deadline of whoever is waiting here;
// req's own timeout is restored before Do returns.
func (cs *Controllers) Do(ctx context.Context, req kmsg.Request, notController func(kmsg.Response) bool) (kmsg.Response, int32, error) {
	if notController == nil {
		notController = topLevelNotController
	}
	if tr, ok := req.(timeoutRequest); ok {
		defer tr.SetTimeout(tr.Timeout())
	}
	backoff := roundBackoffMin
	var lastErr error
	for {
		for _, id := range cs.order() {
			if ctx.Err() != nil {
				return nil, -1, fmt.Errorf("%w (controller.quorum.voters): %w: %v", ErrNoController, ctx.Err(), lastErr)
			}
			setRemaining(ctx, req)
			resp, err := cs.client.Request(ctx, cs.voters[id], req)
			if err != nil {
				lastErr = err
				if ctx.Err() != nil {
					return nil, -1, fmt.Errorf("%w (controller.quorum.voters): %w: %v", ErrNoController, ctx.Err(), lastErr)
				}
				continue
			}
			if notController(resp) {
				lastErr = fmt.Errorf("node %d is not the active controller", id)
				continue
			}
			cs.mu.Lock()
			cs.last = id
			cs.mu.Unlock()
			return resp, id, nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, -1, fmt.Errorf("%w (controller.quorum.voters): %w: %v", ErrNoController, ctx.Err(), lastErr)
		}
		backoff = min(2*backoff, roundBackoffMax)
	}
}

// timeoutRequest is a request with a timeout field (kmsg's
// TimeoutRequest and SetTimeoutRequest).
type timeoutRequest interface {
	kmsg.TimeoutRequest
	kmsg.SetTimeoutRequest
}

// setRemaining sets the timeout of a request with one to the whole
// milliseconds left until ctx's deadline (at least 1) when that is
// shorter than the request's timeout or the request's timeout is <= 0
// ("do not wait" at the client: the controller still gets a deadline,
// so it never commits after this node stopped waiting).
func setRemaining(ctx context.Context, req kmsg.Request) {
	tr, ok := req.(timeoutRequest)
	if !ok {
		return
	}
	d, ok := ctx.Deadline()
	if !ok {
		return
	}
	left := time.Until(d).Milliseconds()
	left = max(left, 1)
	if own := tr.Timeout(); own <= 0 || int64(own) > left {
		tr.SetTimeout(int32(min(left, 1<<31-1)))
	}
}

// order is the voters to try: the hinted controller, the last one that
// answered, then the rest in id order.
func (cs *Controllers) order() []int32 {
	out := make([]int32, 0, len(cs.ids)+2)
	add := func(id int32) {
		if _, ok := cs.voters[id]; ok && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if cs.hint != nil {
		add(cs.hint())
	}
	cs.mu.Lock()
	add(cs.last)
	cs.mu.Unlock()
	for _, id := range cs.ids {
		add(id)
	}
	return out
}

// topLevelNotController reads the top-level error code of the
// controller RPCs.
func topLevelNotController(resp kmsg.Response) bool {
	var code int16
	switch r := resp.(type) {
	case *kmsg.BrokerRegistrationResponse:
		code = r.ErrorCode
	case *kmsg.BrokerHeartbeatResponse:
		code = r.ErrorCode
	case *kmsg.AllocateProducerIDsResponse:
		code = r.ErrorCode
	case *kmsg.DescribeQuorumResponse:
		code = r.ErrorCode
	}
	return code == kerr.NotController.Code
}
