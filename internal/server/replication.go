package server

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/config"
	"samsa/internal/controller"
	"samsa/internal/interbroker"
	"samsa/internal/replica"
	"samsa/internal/replication"
)

// This file connects the replica manager to the cluster: its ISR changes
// go to the active controller as AlterPartition, and the partitions it
// follows are fetched by internal/replication from their leaders'
// inter-broker listeners.

// isrUpdater sends a leader's ISR changes (replica.ISRUpdater) to the
// active controller: the local one when it is active, else over the
// controller listener.
type isrUpdater struct {
	local       *controller.Controller // nil on broker-only nodes
	controllers *interbroker.Controllers
}

func (u *isrUpdater) AlterPartition(ctx context.Context, r replica.AlterISR) (replica.AlterISRResult, error) {
	req := r.Request()
	var resp *kmsg.AlterPartitionResponse
	if u.local != nil && u.local.Active() {
		resp = u.local.AlterPartition(ctx, req)
	} else {
		notController := func(r kmsg.Response) bool {
			return r.(*kmsg.AlterPartitionResponse).ErrorCode == kerr.NotController.Code
		}
		raw, _, err := u.controllers.Do(ctx, req, notController)
		if err != nil {
			return replica.AlterISRResult{}, err
		}
		resp = raw.(*kmsg.AlterPartitionResponse)
	}
	if resp.ErrorCode == kerr.NotController.Code {
		return replica.AlterISRResult{}, fmt.Errorf("server: AlterPartition: %w", kerr.NotController)
	}
	if res, ok := r.Result(resp); ok {
		return res, nil
	}
	return replica.AlterISRResult{}, fmt.Errorf("server: AlterPartition answer without %s-%d", r.Topic, r.Partition)
}

// replicationOptions reads the follower fetchers' keys (Kafka's names and
// defaults, docs/config.md).
func replicationOptions(cfg *config.Config, epoch func() int64, logger *slog.Logger) replication.Options {
	i := func(k string) int {
		v, _ := cfg.Get(k)
		n, _ := strconv.Atoi(v)
		return n
	}
	ms := func(k string) time.Duration { return time.Duration(i(k)) * time.Millisecond }
	return replication.Options{
		BrokerID: cfg.NodeID, BrokerEpoch: epoch,
		NumFetchers:           i("num.replica.fetchers"),
		FetchWaitMax:          ms("replica.fetch.wait.max.ms"),
		FetchMinBytes:         int32(i("replica.fetch.min.bytes")),
		FetchMaxBytes:         int32(i("replica.fetch.max.bytes")),
		FetchResponseMaxBytes: int32(i("replica.fetch.response.max.bytes")),
		FetchBackoff:          ms("replica.fetch.backoff.ms"),
		SocketTimeout:         ms("replica.socket.timeout.ms"),
		Logger:                logger,
	}
}

// followerHook starts and stops fetching as the replica manager's roles
// change (replica.ReplicationOptions.FollowerHook). It runs from the
// replica manager's Apply, when the publisher's image is the one applied.
func (s *Server) followerHook(follow, unfollow []*replica.Partition) {
	if len(unfollow) > 0 {
		tps := make([]replication.TopicPartition, 0, len(unfollow))
		for _, p := range unfollow {
			topic, _, partition := p.TopicPartition()
			tps = append(tps, replication.TopicPartition{Topic: topic, Partition: partition})
		}
		s.fetchers.RemovePartitions(tps)
	}
	if len(follow) == 0 {
		return
	}
	im := s.pub.Image()
	byLeader := map[int32][]replication.Follower{}
	for _, p := range follow {
		byLeader[p.Leader()] = append(byLeader[p.Leader()], p)
	}
	listener := interBrokerListener(s.cfg).Name
	for leader, fs := range byLeader {
		addr := im.Brokers[leader].Addr(listener)
		if addr == "" {
			s.logger.Error("follow partitions: leader has no address on the inter-broker listener", "leader", leader, "listener", listener, "partitions", len(fs))
			continue
		}
		if err := s.fetchers.AddPartitions(leader, addr, fs); err != nil {
			s.logger.Error("follow partitions", "leader", leader, "err", err)
		}
	}
}
