package api

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/internal/metadata"
	"samsa/internal/replica"
	"samsa/internal/storage"
)

// errorCodes maps the errors of the lower layers to Kafka error codes. The
// first match wins, so more specific errors come first.
var errorCodes = []struct {
	err  error
	code *kerr.Error
}{
	{replica.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
	{replica.ErrNotLeader, kerr.NotLeaderForPartition},
	{replica.ErrNotEnoughReplicas, kerr.NotEnoughReplicas},
	{replica.ErrOffline, kerr.KafkaStorageError},
	{replica.ErrPolicyViolation, kerr.PolicyViolation},
	{replica.ErrNotEnoughReplicasAfterAppend, kerr.NotEnoughReplicasAfterAppend},
	{replica.ErrRequestTimedOut, kerr.RequestTimedOut},
	{replica.ErrFencedLeaderEpoch, kerr.FencedLeaderEpoch},
	{replica.ErrUnknownLeaderEpoch, kerr.UnknownLeaderEpoch},
	{replica.ErrInvalidTimestamp, kerr.InvalidRequest},

	{storage.ErrCorruptMessage, kerr.CorruptMessage},
	{storage.ErrUnsupportedMagic, kerr.UnsupportedForMessageFormat},
	{storage.ErrMessageTooLarge, kerr.MessageTooLarge},
	{storage.ErrInvalidRecord, kerr.InvalidRecord},
	{storage.ErrInvalidTimestamp, kerr.InvalidTimestamp},
	{storage.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
	{storage.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
	{storage.ErrUnknownProducerID, kerr.UnknownProducerID},
	{storage.ErrInvalidTxnState, kerr.InvalidTxnState},
	{storage.ErrTransactionCoordinatorFenced, kerr.TransactionCoordinatorFenced},
	{storage.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{storage.ErrStorage, kerr.KafkaStorageError},
	{storage.ErrCorruptLog, kerr.KafkaStorageError},
	{storage.ErrLogNotFound, kerr.UnknownTopicOrPartition},
	// A log closed under a request: the partition moved or the broker is
	// stopping; the client refreshes metadata and retries elsewhere.
	{storage.ErrClosed, kerr.NotLeaderForPartition},

	// The quorum has no active controller here (or lost it): clients
	// look for the controller again.
	{metadata.ErrNotController, kerr.NotController},
	{metadata.ErrClosed, kerr.NotController},

	{context.DeadlineExceeded, kerr.RequestTimedOut},
	{context.Canceled, kerr.RequestTimedOut},
}

// ErrorCode returns the Kafka error code for err: 0 for nil, the mapped
// code for a known error, UNKNOWN_SERVER_ERROR otherwise. It is the one
// mapping of Go errors to Kafka codes; callers that have a logger use
// Handler.errorCode, which logs the unknown ones.
func ErrorCode(err error) int16 {
	code, _ := lookupCode(err)
	return code
}

func lookupCode(err error) (int16, bool) {
	if err == nil {
		return 0, true
	}
	for _, m := range errorCodes {
		if errors.Is(err, m.err) {
			return m.code.Code, true
		}
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code, true
	}
	return kerr.UnknownServerError.Code, false
}

// errorCode is ErrorCode that logs errors it does not know (they are bugs
// or unexpected failures worth seeing).
func (h *Handler) errorCode(err error, op string, args ...any) int16 {
	code, known := lookupCode(err)
	if !known {
		h.logger.Error(op, append(args, "err", err)...)
	}
	return code
}

// errorMessage returns err's text for the ErrorMessage fields of newer
// versions (nil for no error).
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
