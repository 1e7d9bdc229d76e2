package api

// TxnOffsetCommit (key 28), versions 0-4: offsets committed as part of a
// producer's transaction (KIP-98). Served by internal/group: the offsets
// are written to __consumer_offsets as one transactional batch with the
// request's producer id and epoch, and stay pending (invisible to
// OffsetFetch; UNSTABLE_OFFSET_COMMIT with RequireStable) until the
// transaction's marker commits or aborts them. Partitions of topics that
// do not exist answer UNKNOWN_TOPIC_OR_PARTITION; an empty group id
// INVALID_GROUP_ID; a fenced producer epoch INVALID_PRODUCER_EPOCH.
//
// Versions: v1 throttle after response; v2 leader epoch (KIP-320); v3
// flexible, generation, member id and group.instance.id validated like
// OffsetCommit (KIP-447: ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID; no REBALANCE_IN_PROGRESS); v4 TRANSACTION_ABORTABLE
// allowed (KIP-890 part 1).
//
// Differences from Kafka: the group coordinator does not ask the
// transaction coordinator whether the transaction is ongoing (KIP-890 part
// 1 verification), so v4 never answers TRANSACTION_ABORTABLE. v5 (KIP-890
// part 2: the commit adds the group to the transaction itself) and v6
// (topic ids) are not served; clients without transaction.version 2 use
// at most v4, as against Kafka.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

func (h *Handler) txnOffsetCommit(ctx context.Context, _ *network.Conn, req *kmsg.TxnOffsetCommitRequest) (kmsg.Response, error) {
	return h.d.Groups.TxnOffsetCommit(ctx, req), nil
}
