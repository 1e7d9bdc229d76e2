// Package replication is the follower side of Kafka's ISR replication:
// this broker's replicas of partitions led elsewhere copy their leaders by
// sending Fetch requests with this broker's replica id, as Kafka's
// ReplicaFetcherManager, ReplicaFetcherThread and AbstractFetcherThread do.
//
// A Manager (one per broker) owns the fetchers. A fetcher copies every
// partition this broker follows from one source (leader) broker whose
// (topic, partition) hashes to its index (num.replica.fetchers per source
// broker); it has its own interbroker.Client, hence its own connection,
// never shared with forwarding or transaction markers.
//
// A fetcher's loop: build one Fetch request for its ready partitions
// (fetch offset = the follower's log end offset, last fetched epoch
// (KIP-320), current leader epoch, log start offset, per-partition and
// response byte bounds), send it (a long poll of replica.fetch.wait.max.ms),
// then per partition: append the batches byte-for-byte with the leader's
// high watermark and log start offset; on a diverging epoch (KIP-595's
// truncation on fetch) truncate and fetch again; on OFFSET_OUT_OF_RANGE
// ask the leader for its end or start offset (ListOffsets with our
// replica id) and truncate as AbstractFetcherThread.fetchOffsetAndTruncate
// does; on a leadership error delay the partition for
// replica.fetch.backoff.ms until the metadata image moves it. A failed
// request delays every partition it carried and the connection is dialled
// again by the next request.
//
// The package knows nothing of replica.Partition: it drives the Follower
// interface, which the replica manager implements over its logs.
//
// docs/replication.md describes the behaviour, the bounds and the lock
// order.
package replication
