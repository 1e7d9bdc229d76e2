package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// defaultQueuedMaxRequestBytes is queued.max.request.bytes when unset or
// -1. Kafka's -1 leaves request memory unbounded; Samsa always bounds it,
// with room above socket.request.max.bytes (100 MiB) so that small
// requests are served while a largest-size frame is read.
const defaultQueuedMaxRequestBytes = 128 << 20

// deriveNetwork fills the connection and request memory limits.
func (c *Config) deriveNetwork() error {
	c.QueuedMaxRequestBytes = c.int64Of("queued.max.request.bytes")
	if c.QueuedMaxRequestBytes == -1 {
		c.QueuedMaxRequestBytes = defaultQueuedMaxRequestBytes
	}
	ms := func(k string) time.Duration { return time.Duration(c.int64Of(k)) * time.Millisecond }
	c.ConnectionsMaxIdle = ms("connections.max.idle.ms")
	c.SocketRequestReadTimeout = ms("socket.request.read.timeout.ms")
	c.MaxConnections = int(c.int64Of("max.connections"))
	c.MaxConnectionsPerIP = int(c.int64Of("max.connections.per.ip"))
	switch {
	case c.QueuedMaxRequestBytes <= 0:
		return fmt.Errorf("config: queued.max.request.bytes must be > 0 (or -1 for the default %d)", defaultQueuedMaxRequestBytes)
	case c.QueuedMaxRequestBytes < int64(c.SocketRequestMaxBytes):
		return fmt.Errorf("config: queued.max.request.bytes (%d) must be >= socket.request.max.bytes (%d): a frame larger than the budget could never be read", c.QueuedMaxRequestBytes, c.SocketRequestMaxBytes)
	case c.ConnectionsMaxIdle < time.Millisecond:
		return fmt.Errorf("config: connections.max.idle.ms must be >= 1")
	case c.SocketRequestReadTimeout < time.Millisecond:
		return fmt.Errorf("config: socket.request.read.timeout.ms must be >= 1")
	case c.MaxConnections < 1:
		return fmt.Errorf("config: max.connections must be >= 1")
	case c.MaxConnectionsPerIP < 1:
		return fmt.Errorf("config: max.connections.per.ip must be >= 1")
	}
	ov, _ := c.Get("max.connections.per.ip.overrides")
	overrides, err := parseConnectionOverrides(ov)
	if err != nil {
		return fmt.Errorf("config: max.connections.per.ip.overrides: %w", err)
	}
	c.MaxConnectionsPerIPOverrides = overrides
	return nil
}

// parseConnectionOverrides parses "ip:count,ip:count" (an IPv6 address in
// brackets or bare: the count follows the last colon). Kafka also takes
// host names and resolves them once; Samsa takes addresses only.
func parseConnectionOverrides(s string) (map[netip.Addr]int, error) {
	out := map[netip.Addr]int{}
	for _, e := range splitList(s) {
		i := strings.LastIndexByte(e, ':')
		if i < 0 {
			return nil, fmt.Errorf("%q is not ip:count", e)
		}
		host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(e[:i]), "["), "]")
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("%q: not an IP address (host names are not resolved)", e)
		}
		n, err := strconv.Atoi(strings.TrimSpace(e[i+1:]))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q: bad count", e)
		}
		out[ip.Unmap()] = n
	}
	return out, nil
}
