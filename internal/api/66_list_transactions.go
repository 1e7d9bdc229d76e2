package api

// ListTransactions (key 66), versions 0-2.
//
// Lists the transactional ids this node coordinates with their producer
// id and state, filtered by state names (an unknown name is echoed in
// UnknownStateFilters), by producer ids, and (v1, KIP-994) by a minimum
// running time: with DurationFilterMillis >= 0 only transactions open for
// at least that long are listed. COORDINATOR_LOAD_IN_PROGRESS while a
// partition of __transaction_state is still loading (the ids of the
// others are listed).
//
// v2 (KIP-1152) filters by a transactional id pattern in RE2 syntax
// (Kafka compiles it with RE2/J; Go's regexp is RE2): null or empty lists
// every id, otherwise an id is listed when the whole id matches, as Java's
// Matcher.matches() does. A pattern that does not compile answers
// INVALID_REGULAR_EXPRESSION.
//
// Versions: v1 duration filter (KIP-994); v2 transactional id pattern
// (KIP-1152).

import (
	"context"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) listTransactions(_ context.Context, _ *network.Conn, req *kmsg.ListTransactionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	resp.UnknownStateFilters = []string{}
	resp.TransactionStates = []kmsg.ListTransactionsResponseTransactionState{}
	if h.d.Txns == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	var idPattern *regexp.Regexp
	if p := req.TransactionalIDPattern; req.Version >= 2 && p != nil && *p != "" {
		re, err := regexp.Compile(`^(?:` + *p + `)$`)
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp, nil
		}
		idPattern = re
	}
	var states []kmsg.TransactionState
	for _, f := range req.StateFilters {
		if s, err := kmsg.ParseTransactionState(f); err == nil && s.String() == f {
			states = append(states, s)
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, f)
		}
	}
	if len(req.StateFilters) > 0 && len(states) == 0 {
		return resp, nil // only unknown states asked for: nothing matches
	}
	all, code := h.d.Txns.List()
	if code != nil {
		resp.ErrorCode = code.Code
	}
	now := time.Now().UnixMilli()
	for _, d := range all {
		if len(states) > 0 && !slices.Contains(states, d.State) {
			continue
		}
		if len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, d.ProducerID) {
			continue
		}
		if idPattern != nil && !idPattern.MatchString(d.TransactionalID) {
			continue
		}
		if req.Version >= 1 && req.DurationFilterMillis >= 0 && (d.StartTimestamp < 0 || now-d.StartTimestamp < req.DurationFilterMillis) {
			continue
		}
		s := kmsg.NewListTransactionsResponseTransactionState()
		s.TransactionalID, s.ProducerID, s.TransactionState = d.TransactionalID, d.ProducerID, d.State.String()
		resp.TransactionStates = append(resp.TransactionStates, s)
	}
	return resp, nil
}
