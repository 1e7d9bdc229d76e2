package api

// ApiVersions (key 18), versions 0-5.
//
// Answers with exactly the keys and versions this package implements
// (apiVersionsServed); the same table tells internal/network which
// requests to decode, so a key or version we do not advertise never
// reaches a handler.
//
// A version newer than we serve (KIP-511) is answered in the v0 format
// with UNSUPPORTED_VERSION and our ranges; internal/network hands such a
// request on with its body undecoded. Clients then retry with the highest
// version we listed. The response header is always v0, also for flexible
// versions (internal/network handles that).
//
// Differences from Kafka: no supported/finalized features are listed (no
// feature-gated behaviour is implemented yet), and the client software
// name/version of v3+ are not validated.
//
// Versions: v1 throttle; v2 throttle after response; v3 flexible, client
// software name/version (KIP-511); v4 no change (KIP-848 preparation);
// v5 cluster id and node id in the request (KIP-1082).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/network"
)

// apiVersionsServed lists every API key served with its version range, in
// key order. Produce starts at v0 because librdkafka 2.0.2 disables
// compression unless Produce v0 is advertised (magic 0/1 message sets are
// answered UNSUPPORTED_FOR_MESSAGE_FORMAT); Fetch starts at v4 because
// older versions need the legacy message format, which we never serve.
// Each maximum is the newest version kmsg v1.15.0 knows, except where a
// newer version needs transaction version 2 (KIP-890 part 2).
var apiVersionsServed = []kmsg.ApiVersionsResponseApiKey{
	{ApiKey: 0, MinVersion: 0, MaxVersion: 13}, // Produce
	{ApiKey: 1, MinVersion: 4, MaxVersion: 18}, // Fetch
	{ApiKey: 2, MinVersion: 0, MaxVersion: 11}, // ListOffsets
	{ApiKey: 3, MinVersion: 0, MaxVersion: 13}, // Metadata
	{ApiKey: 8, MinVersion: 0, MaxVersion: 10}, // OffsetCommit
	{ApiKey: 9, MinVersion: 0, MaxVersion: 10}, // OffsetFetch
	{ApiKey: 10, MinVersion: 0, MaxVersion: 6}, // FindCoordinator
	{ApiKey: 11, MinVersion: 0, MaxVersion: 9}, // JoinGroup
	{ApiKey: 12, MinVersion: 0, MaxVersion: 4}, // Heartbeat
	{ApiKey: 13, MinVersion: 0, MaxVersion: 5}, // LeaveGroup
	{ApiKey: 14, MinVersion: 0, MaxVersion: 5}, // SyncGroup
	{ApiKey: 15, MinVersion: 0, MaxVersion: 6}, // DescribeGroups
	{ApiKey: 16, MinVersion: 0, MaxVersion: 5}, // ListGroups
	{ApiKey: 18, MinVersion: 0, MaxVersion: 5}, // ApiVersions
	{ApiKey: 19, MinVersion: 0, MaxVersion: 7}, // CreateTopics
	{ApiKey: 20, MinVersion: 0, MaxVersion: 6}, // DeleteTopics
	{ApiKey: 21, MinVersion: 0, MaxVersion: 2}, // DeleteRecords
	{ApiKey: 22, MinVersion: 0, MaxVersion: 5}, // InitProducerID
	{ApiKey: 23, MinVersion: 0, MaxVersion: 4}, // OffsetForLeaderEpoch
	{ApiKey: 24, MinVersion: 0, MaxVersion: 4}, // AddPartitionsToTxn
	{ApiKey: 25, MinVersion: 0, MaxVersion: 4}, // AddOffsetsToTxn
	{ApiKey: 26, MinVersion: 0, MaxVersion: 4}, // EndTxn
	{ApiKey: 27, MinVersion: 0, MaxVersion: 1}, // WriteTxnMarkers
	{ApiKey: 28, MinVersion: 0, MaxVersion: 4}, // TxnOffsetCommit (v5+ need KIP-890 part 2)
	{ApiKey: 32, MinVersion: 0, MaxVersion: 4}, // DescribeConfigs
	{ApiKey: 33, MinVersion: 0, MaxVersion: 2}, // AlterConfigs
	{ApiKey: 34, MinVersion: 0, MaxVersion: 2}, // AlterReplicaLogDirs
	{ApiKey: 35, MinVersion: 0, MaxVersion: 4}, // DescribeLogDirs
	{ApiKey: 37, MinVersion: 0, MaxVersion: 3}, // CreatePartitions
	{ApiKey: 42, MinVersion: 0, MaxVersion: 3}, // DeleteGroups
	{ApiKey: 43, MinVersion: 0, MaxVersion: 2}, // ElectLeaders
	{ApiKey: 44, MinVersion: 0, MaxVersion: 1}, // IncrementalAlterConfigs
	{ApiKey: 45, MinVersion: 0, MaxVersion: 1}, // AlterPartitionReassignments
	{ApiKey: 46, MinVersion: 0, MaxVersion: 0}, // ListPartitionReassignments
	{ApiKey: 47, MinVersion: 0, MaxVersion: 0}, // OffsetDelete
	{ApiKey: 55, MinVersion: 0, MaxVersion: 2}, // DescribeQuorum
	{ApiKey: 56, MinVersion: 0, MaxVersion: 3}, // AlterPartition (controller RPC)
	{ApiKey: 60, MinVersion: 0, MaxVersion: 2}, // DescribeCluster
	{ApiKey: 61, MinVersion: 0, MaxVersion: 0}, // DescribeProducers
	{ApiKey: 62, MinVersion: 0, MaxVersion: 4}, // BrokerRegistration (controller RPC)
	{ApiKey: 63, MinVersion: 0, MaxVersion: 2}, // BrokerHeartbeat (controller RPC)
	{ApiKey: 64, MinVersion: 0, MaxVersion: 0}, // UnregisterBroker
	{ApiKey: 65, MinVersion: 0, MaxVersion: 0}, // DescribeTransactions
	{ApiKey: 66, MinVersion: 0, MaxVersion: 2}, // ListTransactions
	{ApiKey: 67, MinVersion: 0, MaxVersion: 0}, // AllocateProducerIds (controller RPC)
	{ApiKey: 73, MinVersion: 0, MaxVersion: 0}, // AssignReplicasToDirs (controller RPC)
}

// servedByKey indexes apiVersionsServed by key.
var servedByKey = func() map[int16]kmsg.ApiVersionsResponseApiKey {
	m := make(map[int16]kmsg.ApiVersionsResponseApiKey, len(apiVersionsServed))
	for _, k := range apiVersionsServed {
		m[k.ApiKey] = k
	}
	return m
}()

// servedRange returns the versions of key served.
func servedRange(key int16) (minVersion, maxVersion int16, ok bool) {
	k, ok := servedByKey[key]
	return k.MinVersion, k.MaxVersion, ok
}

// ServedAPIs returns the keys and version ranges served, in key order
// (for docs and tests).
func ServedAPIs() []kmsg.ApiVersionsResponseApiKey {
	return append([]kmsg.ApiVersionsResponseApiKey(nil), apiVersionsServed...)
}

func (h *Handler) apiVersions(_ context.Context, _ *network.Conn, req *kmsg.ApiVersionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = apiVersionsServed
	if _, hi, _ := servedRange(18); req.Version > hi {
		resp.Version = 0
		resp.ErrorCode = kerr.UnsupportedVersion.Code
	}
	return resp, nil
}
