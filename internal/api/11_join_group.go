package api

// JoinGroup (key 11), versions 0-9: served by internal/group's classic
// coordinator (Kafka's ClassicGroup state machine). The request parks
// until the group's rebalance completes, so it is served on its own
// goroutine (MayWait) and returns when the connection closes.
//
// Versions: v1 rebalance timeout; v2 throttle; v4 MEMBER_ID_REQUIRED on a
// first join (KIP-394); v5 group.instance.id (KIP-345); v6 flexible; v7
// protocol type/name in the response (KIP-559); v8 reason (KIP-800); v9
// skip assignment (KIP-814, for the server-side assignor: always false here).

import (
	"context"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/group"
	"samsa/internal/network"
)

func (h *Handler) joinGroup(ctx context.Context, c *network.Conn, req *kmsg.JoinGroupRequest) (kmsg.Response, error) {
	host := ""
	if tcp, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		host = "/" + tcp.IP.String() // Kafka's InetAddress.toString form
	}
	return h.d.Groups.JoinGroup(group.WithClient(ctx, c.ClientID(), host), req), nil
}
