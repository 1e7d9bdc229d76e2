package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/replica"
	"samsa/internal/storage"
)

func TestAPIErrorCodeMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want *kerr.Error
	}{
		{fmt.Errorf("append: %w", storage.ErrCorruptMessage), kerr.CorruptMessage},
		{fmt.Errorf("append: %w", storage.ErrUnsupportedMagic), kerr.UnsupportedForMessageFormat},
		{fmt.Errorf("append: %w", storage.ErrMessageTooLarge), kerr.MessageTooLarge},
		{fmt.Errorf("append: %w", storage.ErrOutOfOrderSequence), kerr.OutOfOrderSequenceNumber},
		{fmt.Errorf("append: %w", storage.ErrInvalidProducerEpoch), kerr.InvalidProducerEpoch},
		{fmt.Errorf("read: %w", storage.ErrOffsetOutOfRange), kerr.OffsetOutOfRange},
		{fmt.Errorf("read: %w", storage.ErrCorruptLog), kerr.KafkaStorageError},
		{storage.ErrStorage, kerr.KafkaStorageError},
		{storage.ErrClosed, kerr.NotLeaderForPartition},
		{replica.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
		{replica.ErrNotLeader, kerr.NotLeaderForPartition},
		{replica.ErrNotEnoughReplicas, kerr.NotEnoughReplicas},
		{replica.ErrOffline, kerr.KafkaStorageError},
		{fmt.Errorf("delete records: %w", replica.ErrPolicyViolation), kerr.PolicyViolation},
		{fmt.Errorf("x: %w", kerr.FencedLeaderEpoch), kerr.FencedLeaderEpoch},
		{fmt.Errorf("fetch: %w", replica.ErrFencedLeaderEpoch), kerr.FencedLeaderEpoch},
		{fmt.Errorf("fetch: %w", replica.ErrUnknownLeaderEpoch), kerr.UnknownLeaderEpoch},
		{fmt.Errorf("produce: %w", replica.ErrNotEnoughReplicasAfterAppend), kerr.NotEnoughReplicasAfterAppend},
		{fmt.Errorf("produce: %w", replica.ErrRequestTimedOut), kerr.RequestTimedOut},
		{errors.New("something else"), kerr.UnknownServerError},
	} {
		if got := ErrorCode(tc.err); got != tc.want.Code {
			t.Errorf("ErrorCode(%v) = %v, want %v", tc.err, kerr.ErrorForCode(got), tc.want)
		}
	}
	if ErrorCode(nil) != 0 {
		t.Error("ErrorCode(nil) != 0")
	}
}

// TestAPIServedVersionsAreImplemented checks that every advertised key has
// a handler and that no advertised version is beyond what kmsg decodes.
func TestAPIServedVersionsAreImplemented(t *testing.T) {
	h := New(Deps{})
	for _, k := range ServedAPIs() {
		req := kmsg.RequestForKey(k.ApiKey)
		if req == nil {
			t.Fatalf("key %d unknown to kmsg", k.ApiKey)
		}
		if k.MaxVersion > req.MaxVersion() || k.MinVersion < 0 || k.MinVersion > k.MaxVersion {
			t.Errorf("%s: serving v%d-v%d, kmsg knows up to v%d", kmsg.NameForKey(k.ApiKey), k.MinVersion, k.MaxVersion, req.MaxVersion())
		}
		req.SetVersion(k.MaxVersion)
		err := func() (err error) {
			// Empty Deps make real handlers panic; only the dispatch
			// matters here.
			defer func() { recover() }()
			_, err = h.Handle(context.Background(), nil, req)
			return err
		}()
		if err != nil && strings.Contains(err.Error(), "no handler") {
			t.Errorf("%s is advertised but not handled", kmsg.NameForKey(k.ApiKey))
		}
		if lo, hi, ok := h.VersionRange(k.ApiKey); !ok || lo != k.MinVersion || hi != k.MaxVersion {
			t.Errorf("VersionRange(%d) = %d, %d, %v", k.ApiKey, lo, hi, ok)
		}
	}
	if _, _, ok := h.VersionRange(29); ok { // DescribeAcls: no ACLs yet
		t.Error("DescribeAcls reported as served")
	}
}

func TestAPIApiVersionsKIP511(t *testing.T) {
	h := New(Deps{})
	for _, tc := range []struct {
		version  int16
		wantVer  int16
		wantCode int16
	}{
		{0, 0, 0}, {3, 3, 0}, {5, 5, 0}, {6, 0, kerr.UnsupportedVersion.Code}, {42, 0, kerr.UnsupportedVersion.Code},
	} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = tc.version
		resp, err := h.Handle(context.Background(), nil, req)
		if err != nil {
			t.Fatal(err)
		}
		r := resp.(*kmsg.ApiVersionsResponse)
		if r.Version != tc.wantVer || r.ErrorCode != tc.wantCode || len(r.ApiKeys) != len(apiVersionsServed) {
			t.Errorf("v%d: answered v%d code %d with %d keys", tc.version, r.Version, r.ErrorCode, len(r.ApiKeys))
		}
	}
}

func TestAPIMayWaitOnlyLongPollFetch(t *testing.T) {
	h := New(Deps{})
	f := kmsg.NewPtrFetchRequest()
	f.MaxWaitMillis, f.MinBytes = 500, 1
	if !h.MayWait(f) {
		t.Error("long-poll fetch not parked")
	}
	f.MinBytes = 0
	if h.MayWait(f) {
		t.Error("fetch with MinBytes 0 parked")
	}
	if h.MayWait(kmsg.NewPtrProduceRequest()) {
		t.Error("produce parked: pipelined produces must stay in order")
	}
}
