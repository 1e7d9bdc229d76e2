// Package network serves the Kafka wire protocol over TCP: it accepts
// connections, splits the byte stream into request frames, decodes the
// request header and body with franz-go's kmsg, hands each request to a
// Handler and writes the responses back in request order.
//
// # Frames
//
// Every request and response is one size-prefixed frame. All integers are
// big-endian.
//
//	request frame
//	+-----------+---------+-------------+----------------+-----------------------+-------------+------+
//	| size i32  | key i16 | version i16 | correlation i32| client id (i16 len,   | tags        | body |
//	| (bytes    |         |             |                | -1 = null; not        | (flexible   |      |
//	| after it) |         |             |                | compact, even in v2)  | versions)   |      |
//	+-----------+---------+-------------+----------------+-----------------------+-------------+------+
//	             \__________ request header v1 (v2 adds the tag section) ____________/
//
//	response frame
//	+-----------+-----------------+--------------------------------------+------+
//	| size i32  | correlation i32 | tags (uvarint 0) when the response   | body |
//	|           |                 | is flexible, except ApiVersions      |      |
//	+-----------+-----------------+--------------------------------------+------+
//	             \____ response header v0 (v1 adds the tag section) ____/
//
// The size is checked against Options.MaxRequestBytes
// (socket.request.max.bytes) before any buffer is allocated: a negative or
// larger size closes the connection, as Kafka's NetworkReceive does.
//
// # Limits
//
// Every listener of a broker shares one Limits (limits.go):
//
//   - a request Budget (queued.max.request.bytes): a frame's declared size
//     is taken from it before the body is read and given back once the
//     request has been served, so the frames alive at once add up to at
//     most the budget. Reading waits when it is spent. Whole frames are
//     reserved, never parts, so no two frames can each hold part of what
//     the other needs (no deadlock). Frames of up to 64 KiB pass waiting
//     large ones and the last eighth of the budget is kept for them;
//   - the body is read into a buffer that starts at 64 KiB and doubles as
//     bytes arrive, so memory follows bytes received, not bytes declared;
//     it must arrive within Options.RequestReadTimeout of the size
//     (socket.request.read.timeout.ms), budget wait included, or the
//     connection is closed as stalled;
//   - a connection with no request read, no response pending and nothing
//     written for Options.IdleTimeout (connections.max.idle.ms) is closed;
//     the read deadline that detects it is re-armed only when it moved by
//     more than a sixteenth of the timeout, so a busy connection pays no
//     deadline call per request. A write that makes no progress for as
//     long (a client that stopped reading) closes the connection too, so
//     such a client cannot pin its queued responses;
//   - max.connections: the accept loop takes a slot before accepting, so at
//     the limit new clients wait in the kernel's backlog (Kafka's acceptor
//     waits likewise); max.connections.per.ip: a connection over it is
//     closed right after accept (Kafka's TooManyConnectionsException).
//
// A failed accept never ends the accept loop (only a closed listener
// does): it backs off from 5 ms doubling to 1 s, like net/http's
// Server.Serve, logs at most one line per 5 s with the count held back, and
// counts every failure in samsa_network_accept_errors_total. Out of file
// descriptors (EMFILE), the pending connections stay in the backlog until
// descriptors are free again.
//
// # Requests the connection does not pass on
//
//   - an API key kmsg does not know, or one the Handler does not serve:
//     the connection is closed (Kafka cannot even parse the header then);
//   - a version outside what the Handler serves: the connection is closed,
//     except for ApiVersions, whose body is then left undecoded and the
//     request handed on with its version so the Handler answers in the v0
//     format with UNSUPPORTED_VERSION and its ranges (KIP-511);
//   - a header or body that does not decode: the connection is closed.
//
// # Concurrency
//
// Each connection has one goroutine reading frames and one writing
// responses. Requests are served one at a time, in order, on the reading
// goroutine, so that pipelined produce requests append in the order they
// were sent; a request the Handler says may wait (Waiter, e.g. a long-poll
// fetch) is served on its own goroutine so reading continues while it is
// parked. The writer sends responses strictly in request order whatever
// order they complete in.
package network
