package server

// Dynamic broker configs (KIP-226) that components read at run time
// rather than per topic. The replica manager applies the log.* topic
// defaults itself (replica.Manager.Apply); this listener applies the
// connection limits (max.connections, max.connections.per.ip and its
// overrides) to the listeners' shared network.Limits and
// num.replica.fetchers to the follower fetchers and
// replica.alter.log.dirs.io.max.bytes.per.second to the log dir mover
// (storage.Manager.SetLogDirMoveRate). Every consumer takes
// the effective configuration from config.WithDynamic over the image's
// BrokerConfigs for this node, so they agree on the precedence.

import (
	"log/slog"
	"maps"
	"math"
	"net/netip"
	"strconv"

	"samsa/internal/config"
	"samsa/internal/metadata"
	"samsa/internal/network"
	"samsa/internal/replication"
	"samsa/internal/storage"
)

// dynamicConfigs is a metadata listener that applies the connection
// limits of each image's effective broker configuration.
type dynamicConfigs struct {
	static *config.Config
	self   int32
	limits *network.Limits
	// fetchers are the follower fetchers (num.replica.fetchers).
	fetchers *replication.Manager
	// logs takes the rate of moves between log dirs.
	logs   *storage.Manager
	logger *slog.Logger

	// last* are the limits applied last; only apply touches them (the
	// publisher runs listeners one image at a time).
	lastMax, lastPerIP int
	lastOverrides      map[netip.Addr]int
	lastFetchers       int
	lastMoveRate       int64
}

// moveRate reads replica.alter.log.dirs.io.max.bytes.per.second (bytes/s);
// unset or invalid: unlimited (Kafka's default, Long.MAX_VALUE).
func moveRate(cfg *config.Config) int64 {
	v, ok := cfg.Get("replica.alter.log.dirs.io.max.bytes.per.second")
	if !ok {
		return math.MaxInt64
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return math.MaxInt64
	}
	return n
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
	if r := moveRate(eff); r != d.lastMoveRate {
		d.lastMoveRate = r
		d.logs.SetLogDirMoveRate(r)
		d.logger.Info("log dir move rate", "replica.alter.log.dirs.io.max.bytes.per.second", r)
	}
	if eff.MaxConnections == d.lastMax && eff.MaxConnectionsPerIP == d.lastPerIP && maps.Equal(eff.MaxConnectionsPerIPOverrides, d.lastOverrides) {
		return
	}
	d.lastMax, d.lastPerIP, d.lastOverrides = eff.MaxConnections, eff.MaxConnectionsPerIP, eff.MaxConnectionsPerIPOverrides
	d.limits.SetConnectionLimits(eff.MaxConnections, eff.MaxConnectionsPerIP, eff.MaxConnectionsPerIPOverrides)
	d.logger.Info("connection limits", "max.connections", eff.MaxConnections, "max.connections.per.ip", eff.MaxConnectionsPerIP,
		"max.connections.per.ip.overrides", len(eff.MaxConnectionsPerIPOverrides))
}
