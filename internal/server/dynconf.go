package server

// Dynamic broker configs (KIP-226) that components read at run time
// rather than per topic. The replica manager applies the log.* topic
// defaults itself (replica.Manager.Apply); this listener applies the
// connection limits (max.connections, max.connections.per.ip and its
// overrides) to the listeners' shared network.Limits and
// num.replica.fetchers to the follower fetchers. Every consumer takes
// the effective configuration from config.WithDynamic over the image's
// BrokerConfigs for this node, so they agree on the precedence.

import (
	"log/slog"
	"maps"
	"net/netip"

	"samsa/internal/config"
	"samsa/internal/metadata"
	"samsa/internal/network"
	"samsa/internal/replication"
)

// dynamicConfigs is a metadata listener that applies the connection
// limits of each image's effective broker configuration.
type dynamicConfigs struct {
	static *config.Config
	self   int32
	limits *network.Limits
	// fetchers are the follower fetchers (num.replica.fetchers).
	fetchers *replication.Manager
	logger   *slog.Logger

	// last* are the limits applied last; only apply touches them (the
	// publisher runs listeners one image at a time).
	lastMax, lastPerIP int
	lastOverrides      map[netip.Addr]int
	lastFetchers       int
}

// apply is the metadata listener.
func (d *dynamicConfigs) apply(_, next *metadata.Image) {
	eff, err := d.static.WithDynamic(next.DynamicBrokerConfigs(d.self))
	if err != nil {
		d.logger.Debug("dynamic broker configs", "err", err)
	}
	if n := eff.NumReplicaFetchers; n != d.lastFetchers {
		d.lastFetchers = n
		d.fetchers.SetNumFetchers(n)
		d.logger.Info("follower fetchers per source broker", "num.replica.fetchers", n)
	}
	if eff.MaxConnections == d.lastMax && eff.MaxConnectionsPerIP == d.lastPerIP && maps.Equal(eff.MaxConnectionsPerIPOverrides, d.lastOverrides) {
		return
	}
	d.lastMax, d.lastPerIP, d.lastOverrides = eff.MaxConnections, eff.MaxConnectionsPerIP, eff.MaxConnectionsPerIPOverrides
	d.limits.SetConnectionLimits(eff.MaxConnections, eff.MaxConnectionsPerIP, eff.MaxConnectionsPerIPOverrides)
	d.logger.Info("connection limits", "max.connections", eff.MaxConnections, "max.connections.per.ip", eff.MaxConnectionsPerIP,
		"max.connections.per.ip.overrides", len(eff.MaxConnectionsPerIPOverrides))
}
