package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigNetworkLimitsDefaults(t *testing.T) {
	c, err := FromMap(map[string]string{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.QueuedMaxRequestBytes != 128<<20 || c.ConnectionsMaxIdle != 10*time.Minute || c.MaxConnections != 10000 ||
		c.MaxConnectionsPerIP != 1000 || len(c.MaxConnectionsPerIPOverrides) != 0 || c.SocketRequestReadTimeout != 30*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	// Kafka's -1 (unbounded) means Samsa's bounded default.
	c, err = FromMap(map[string]string{"queued.max.request.bytes": "-1"}, nil)
	if err != nil || c.QueuedMaxRequestBytes != 128<<20 {
		t.Fatalf("-1: %v %d", err, c.QueuedMaxRequestBytes)
	}
}

func TestConfigNetworkLimitsParse(t *testing.T) {
	c, err := FromMap(map[string]string{
		"max.connections.per.ip.overrides": "127.0.0.1:5, [::1]:7,10.0.0.1:0",
		"connections.max.idle.ms":          "1500",
		"socket.request.read.timeout.ms":   "2500",
		"queued.max.request.bytes":         "104857600",
		"max.connections":                  "20",
		"max.connections.per.ip":           "3",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]int{netip.MustParseAddr("127.0.0.1"): 5, netip.MustParseAddr("::1"): 7, netip.MustParseAddr("10.0.0.1"): 0}
	if len(c.MaxConnectionsPerIPOverrides) != len(want) {
		t.Fatalf("overrides %v", c.MaxConnectionsPerIPOverrides)
	}
	for k, v := range want {
		if c.MaxConnectionsPerIPOverrides[k] != v {
			t.Fatalf("overrides %v, want %v", c.MaxConnectionsPerIPOverrides, want)
		}
	}
	if c.ConnectionsMaxIdle != 1500*time.Millisecond || c.SocketRequestReadTimeout != 2500*time.Millisecond ||
		c.QueuedMaxRequestBytes != 104857600 || c.MaxConnections != 20 || c.MaxConnectionsPerIP != 3 {
		t.Fatalf("parsed %+v", c)
	}
}

func TestConfigNetworkLimitsInvalid(t *testing.T) {
	for _, tc := range []struct {
		raw  map[string]string
		want string
	}{
		{map[string]string{"queued.max.request.bytes": "1000"}, "socket.request.max.bytes"},
		{map[string]string{"queued.max.request.bytes": "0"}, "queued.max.request.bytes must be > 0"},
		{map[string]string{"queued.max.request.bytes": "-2"}, "queued.max.request.bytes must be > 0"},
		{map[string]string{"socket.request.max.bytes": "200000000"}, "must be >= socket.request.max.bytes"},
		{map[string]string{"connections.max.idle.ms": "0"}, "connections.max.idle.ms"},
		{map[string]string{"socket.request.read.timeout.ms": "-1"}, "socket.request.read.timeout.ms"},
		{map[string]string{"max.connections": "0"}, "max.connections must"},
		{map[string]string{"max.connections.per.ip": "0"}, "max.connections.per.ip must"},
		{map[string]string{"max.connections.per.ip.overrides": "localhost:5"}, "not an IP address"},
		{map[string]string{"max.connections.per.ip.overrides": "127.0.0.1"}, "is not ip:count"},
		{map[string]string{"max.connections.per.ip.overrides": "127.0.0.1:x"}, "bad count"},
	} {
		_, err := FromMap(tc.raw, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want one mentioning %q", tc.raw, err, tc.want)
		}
	}
}
