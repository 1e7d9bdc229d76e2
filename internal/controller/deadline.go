package controller

import (
	"context"
	"fmt"
)

// checkDeadline refuses to commit once the request's deadline has passed
// (ctx carries it: the admin request's timeout_ms from its arrival, or
// the time a forwarding broker has left) or its caller is gone. Kafka's
// QuorumController fails an operation still queued at its deadline with
// a TimeoutException (REQUEST_TIMED_OUT) and writes nothing for it;
// waiting for the controller's mutex is Samsa's queue. commitErr maps
// the error to REQUEST_TIMED_OUT.
func checkDeadline(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("controller: not committed, the request's deadline passed: %w", err)
	}
	return nil
}
