package api

// AlterReplicaLogDirs (key 34), versions 0-2.
//
// Moves this broker's replicas to other log dirs (KIP-113): for each
// partition the log is copied into a future log
// "<topic>-<partition>.<id>-future" in the destination dir in the
// background, then swapped in (storage/future.go; DescribeLogDirs lists
// the future replica with IsFuture and its lag meanwhile). The response
// only says the move was accepted. Per partition, as Kafka's
// ReplicaManager.alterReplicaLogDirs:
//
//   - a topic name too long for the future dir's name (over 255 bytes):
//     INVALID_TOPIC_EXCEPTION;
//   - a dir that is not one of log.dirs: LOG_DIR_NOT_FOUND;
//   - a partition in the metadata without a replica here:
//     REPLICA_NOT_AVAILABLE, and the dir is remembered for when the
//     replica is created; a partition not in the metadata:
//     UNKNOWN_TOPIC_OR_PARTITION;
//   - an offline replica: KAFKA_STORAGE_ERROR;
//   - the dir the replica is in: NONE (a move elsewhere is cancelled);
//     another dir while a move runs: that move is cancelled and a new
//     one starts.
//
// Differences from Kafka: no authorization (ALTER on the cluster). The
// copy is throttled by replica.alter.log.dirs.io.max.bytes.per.second
// (storage.Manager.SetLogDirMoveRate, set by internal/server/dynconf.go).
//
// Versions: v1 no change; v2 flexible.

import (
	"context"
	"errors"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
	"samsa/internal/storage"
)

// maxLogDirNameLen is the longest file name (Kafka's KAFKA-4893 check).
const maxLogDirNameLen = 255

func (h *Handler) alterReplicaLogDirs(_ context.Context, _ *network.Conn, req *kmsg.AlterReplicaLogDirsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterReplicaLogDirsResponse)
	type tp struct {
		topic     string
		partition int32
	}
	// Kafka keeps the last dir given for a partition listed twice.
	dest := map[tp]string{}
	var order []tp
	for _, d := range req.Dirs {
		for _, t := range d.Topics {
			for _, p := range t.Partitions {
				k := tp{t.Topic, p}
				if _, seen := dest[k]; !seen {
					order = append(order, k)
				}
				dest[k] = d.Dir
			}
		}
	}
	byTopic := map[string]int{}
	for _, k := range order {
		code := h.alterReplicaLogDir(k.topic, k.partition, dest[k])
		i, ok := byTopic[k.topic]
		if !ok {
			rt := kmsg.NewAlterReplicaLogDirsResponseTopic()
			rt.Topic = k.topic
			resp.Topics = append(resp.Topics, rt)
			i = len(resp.Topics) - 1
			byTopic[k.topic] = i
		}
		rp := kmsg.NewAlterReplicaLogDirsResponseTopicPartition()
		rp.Partition, rp.ErrorCode = k.partition, code
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
	}
	return resp, nil
}

func (h *Handler) alterReplicaLogDir(topic string, partition int32, dir string) int16 {
	// "<topic>-<partition>.<32 hex>-future"
	if len(topic)+1+len(strconv.Itoa(int(partition)))+1+32+len("-future") > maxLogDirNameLen {
		return kerr.InvalidTopicException.Code
	}
	if h.d.Replicas == nil {
		return kerr.KafkaStorageError.Code
	}
	err := h.d.Replicas.AlterLogDir(topic, partition, dir)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, storage.ErrLogDirNotFound):
		return kerr.LogDirNotFound.Code
	case errors.Is(err, storage.ErrLogNotFound):
		if h.d.Metadata != nil {
			if t, ok := h.image().Topic(topic); ok && partition >= 0 && int(partition) < len(t.Partitions) {
				return kerr.ReplicaNotAvailable.Code
			}
		}
		return kerr.UnknownTopicOrPartition.Code
	}
	return h.errorCode(err, "alter replica log dir", "topic", topic, "partition", partition)
}
