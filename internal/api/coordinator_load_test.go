package api_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAPICoordinatorServesRightAfterCreate: the FindCoordinator that
// creates __consumer_offsets (or __transaction_state) is followed at once
// by requests the coordinator serves: a new, empty partition has nothing
// to load, and kafka-go does not retry COORDINATOR_LOAD_IN_PROGRESS.
func TestAPICoordinatorServesRightAfterCreate(t *testing.T) {
	for round := 0; round < 3; round++ {
		n := startNode(t)
		c := n.raw()
		group := fmt.Sprintf("fresh-group-%d", round)
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.Version = 3
		fc.CoordinatorKey = group
		if r := c.do(fc).(*kmsg.FindCoordinatorResponse); r.ErrorCode != 0 {
			t.Fatalf("find group coordinator: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		jg := kmsg.NewPtrJoinGroupRequest()
		jg.Version = 5
		jg.Group = group
		jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis = 10000, 10000
		jg.ProtocolType = "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{0, 0}
		jg.Protocols = append(jg.Protocols, p)
		if r := c.do(jg).(*kmsg.JoinGroupResponse); r.ErrorCode != kerr.MemberIDRequired.Code {
			t.Fatalf("round %d: join right after find coordinator: %v, want MEMBER_ID_REQUIRED", round, kerr.ErrorForCode(r.ErrorCode))
		}

		fc = kmsg.NewPtrFindCoordinatorRequest()
		fc.Version = 3
		fc.CoordinatorType = 1
		fc.CoordinatorKey = group + "-txn"
		if r := c.do(fc).(*kmsg.FindCoordinatorResponse); r.ErrorCode != 0 {
			t.Fatalf("find txn coordinator: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		ip := kmsg.NewPtrInitProducerIDRequest()
		ip.Version = 4
		ip.TransactionalID = kmsg.StringPtr(group + "-txn")
		ip.TransactionTimeoutMillis = 10000
		if r := c.do(ip).(*kmsg.InitProducerIDResponse); r.ErrorCode != 0 {
			t.Fatalf("round %d: InitProducerID right after find coordinator: %v", round, kerr.ErrorForCode(r.ErrorCode))
		}
	}
}
