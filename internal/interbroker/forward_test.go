package interbroker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
	"samsa/internal/network"
)

// voterHandler is a voter's controller listener reduced to CreateTopics:
// it records each TimeoutMillis it receives and answers every topic with
// code (NOT_CONTROLLER: a voter that is not the active controller).
type voterHandler struct {
	code int16

	mu sync.Mutex
	// timeouts are the TimeoutMillis received, in order; guarded by mu.
	timeouts []int32
}

func (h *voterHandler) Handle(_ context.Context, _ *network.Conn, req kmsg.Request) (kmsg.Response, error) {
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
		for _, k := range []int16{18, 19} {
			_, max, _ := h.VersionRange(k)
			ak := kmsg.NewApiVersionsResponseApiKey()
			ak.ApiKey, ak.MaxVersion = k, max
			resp.ApiKeys = append(resp.ApiKeys, ak)
		}
		return resp, nil
	case *kmsg.CreateTopicsRequest:
		h.mu.Lock()
		h.timeouts = append(h.timeouts, r.TimeoutMillis)
		h.mu.Unlock()
		resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = t.Topic, h.code
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	return nil, context.Canceled // closes the connection
}

func (h *voterHandler) VersionRange(key int16) (int16, int16, bool) {
	switch key {
	case 18:
		return 0, 3, true
	case 19:
		return 0, 7, true
	}
	return 0, 0, false
}

func (h *voterHandler) received() []int32 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int32(nil), h.timeouts...)
}

func startVoter(t *testing.T, h *voterHandler) string {
	t.Helper()
	srv, err := network.Bind("127.0.0.1:0", h, network.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() { srv.Close() })
	return srv.Addr().String()
}

func createReq(timeoutMillis int32) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version, req.TimeoutMillis = 5, timeoutMillis
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = "t", 1, 1
	req.Topics = append(req.Topics, t)
	return req
}

// TestControllersSendTimeLeft: a forwarded request carries the time left
// until the forwarder's deadline as its TimeoutMillis (so the controller
// enforces the same deadline), lowered, never raised, and the caller's
// request keeps its own value.
func TestControllersSendTimeLeft(t *testing.T) {
	h := &voterHandler{}
	addr := startVoter(t, h)
	c := New(Options{Logger: quiet, RequestTimeout: 5 * time.Second})
	defer c.Close()
	cs := NewControllers(c, map[int32]string{1: addr}, nil)

	for _, tc := range []struct {
		own      int32
		deadline time.Duration // 0: none
		min, max int32
	}{
		{own: 60000, deadline: 2 * time.Second, min: 1000, max: 2000},
		{own: 0, deadline: 2 * time.Second, min: 1000, max: 2000}, // "do not wait": the controller still gets a deadline
		{own: -1, deadline: 2 * time.Second, min: 1000, max: 2000},
		{own: 500, deadline: 2 * time.Second, min: 500, max: 500}, // shorter than the time left: kept
		{own: 60000, min: 60000, max: 60000},                      // no deadline: kept
	} {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if tc.deadline > 0 {
			ctx, cancel = context.WithTimeout(ctx, tc.deadline)
		}
		req := createReq(tc.own)
		_, _, err := cs.Do(ctx, req, nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		got := h.received()
		sent := got[len(got)-1]
		if sent < tc.min || sent > tc.max {
			t.Errorf("own timeout %d, deadline %v: the controller got %d ms, want %d..%d", tc.own, tc.deadline, sent, tc.min, tc.max)
		}
		if req.TimeoutMillis != tc.own {
			t.Errorf("own timeout %d changed to %d", tc.own, req.TimeoutMillis)
		}
	}
}

// TestForwarderStopsAtDeadline: when no voter answers as the active
// controller (a node cut off from the quorum), a forwarded CreateTopics
// ends at its deadline, not after the forwarder's own 30 s, and answers
// REQUEST_TIMED_OUT (NOT_CONTROLLER would send the client straight back
// to the same node); each retry carries less time left.
func TestForwarderStopsAtDeadline(t *testing.T) {
	h := &voterHandler{code: kerr.NotController.Code}
	addr := startVoter(t, h)
	c := New(Options{Logger: quiet, RequestTimeout: 5 * time.Second})
	defer c.Close()
	cs := NewControllers(c, map[int32]string{1: addr}, nil)
	f := NewForwarder(cs, metadata.NewPublisher(&metadata.Image{Offset: -1}), 2, func() int64 { return -1 })

	const timeout = 600 * time.Millisecond
	req := createReq(int32(timeout / time.Millisecond))
	// The handler bounds ctx by the request's timeout (adminDeadline).
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	began := time.Now()
	resp := f.CreateTopics(ctx, req)
	took := time.Since(began)
	if took > timeout+time.Second {
		t.Fatalf("answered after %v with a %v timeout", took, timeout)
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("response %+v, want REQUEST_TIMED_OUT", resp.Topics)
	}
	got := h.received()
	if len(got) < 2 {
		t.Fatalf("the controller was asked %d times in %v", len(got), took)
	}
	for i, ms := range got {
		if ms > int32(timeout/time.Millisecond) || (i > 0 && ms > got[i-1]) {
			t.Fatalf("timeouts sent %v: not the time left", got)
		}
	}
	if req.TimeoutMillis != int32(timeout/time.Millisecond) || req.Version != 5 {
		t.Fatalf("request left with timeout %d, version %d", req.TimeoutMillis, req.Version)
	}
	t.Logf("REQUEST_TIMED_OUT after %v (%d attempts, timeouts sent %v)", took.Round(time.Millisecond), len(got), got)
}

// TestForwarderTimeoutZeroDoesNotWait: with timeout_ms 0 the forwarder
// does not wait for its own metadata to show the topic (its image never
// will here) and answers at once with the controller's result.
func TestForwarderTimeoutZeroDoesNotWait(t *testing.T) {
	h := &voterHandler{}
	addr := startVoter(t, h)
	c := New(Options{Logger: quiet, RequestTimeout: 5 * time.Second})
	defer c.Close()
	cs := NewControllers(c, map[int32]string{1: addr}, nil)
	f := NewForwarder(cs, metadata.NewPublisher(&metadata.Image{Offset: -1}), 2, func() int64 { return -1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	began := time.Now()
	resp := f.CreateTopics(ctx, createReq(0))
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("timeout 0 waited %v", took)
	}
	if resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("response %+v", resp.Topics)
	}
	// With a timeout, a topic its image does not show in time answers
	// REQUEST_TIMED_OUT (created, not yet visible here).
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	resp = f.CreateTopics(ctx2, createReq(300))
	if resp.Topics[0].ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("not visible locally: %+v, want REQUEST_TIMED_OUT", resp.Topics)
	}
}
