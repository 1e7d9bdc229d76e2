package api

// Fetch (key 1), versions 4-18.
//
// Reads whole record batches below the high watermark; read_committed
// consumers (isolation level 1, KIP-98) only below the last stable offset
// (storage.Log.LastStableOffset: the first offset of the oldest open
// transaction, or the high watermark), and get the aborted transactions
// overlapping the returned batches (storage.Log.AbortedTransactions), so
// they can drop those records; LastStableOffset is answered for both
// levels. Limits follow KIP-74: partitions are read in request order,
// each up to its PartitionMaxBytes and what remains of the response
// budget (MaxBytes capped by the broker's fetch.max.bytes, as Kafka
// does), but the first partition that has data returns at least one
// whole batch even if it is larger than both limits, so a consumer can
// always make progress. A partition listed more than once is read and
// answered once, where it first appears, with the parameters of its last
// mention (Kafka's FetchRequest.fetchData keeps them in a LinkedHashMap).
//
// Long poll: when fewer than MinBytes are available and MaxWaitMillis > 0,
// the request parks (internal/network serves it on its own goroutine so
// the connection keeps reading) on one replica.FetchWaiter registered on
// each of its partitions, until an append, high-watermark move or role
// change on one of them brings MinBytes, the wait times out, or the
// connection closes. A partition error answers at once, as Kafka's
// DelayedFetch completes on errors.
//
// Followers (replica id, or from v15 the replica state, >= 0) read the
// same way through replica.Partition.Fetch, up to the log end offset
// rather than the high watermark; their fetch offset is their log end
// offset, which moves the high watermark and the ISR (internal/replica).
// From v12 a fetcher whose last fetched epoch disagrees with the leader's
// log gets a DivergingEpoch and no records. A throttled partition
// (leader.replication.throttled.replicas, KIP-73) of a follower outside
// the ISR gets no records while the leader's replication quota is
// exceeded, as Kafka's ReplicaManager.readFromLog; its long poll then
// reads again as soon as the quota allows (replica.FetchResult.Throttled)
// rather than at the end of MaxWaitMillis.
//
// Per partition codes: UNKNOWN_TOPIC_OR_PARTITION (v13+:
// UNKNOWN_TOPIC_ID), OFFSET_OUT_OF_RANGE, FENCED_LEADER_EPOCH /
// UNKNOWN_LEADER_EPOCH when CurrentLeaderEpoch (v9+) is older / newer than
// ours, NOT_LEADER_OR_FOLLOWER, KAFKA_STORAGE_ERROR.
//
// Sessions (KIP-227) follow Kafka's FetchManager.newContext: epoch 0 or
// -1 is a full fetch whatever the session id (kafka-go sends id -1, epoch
// -1), closing the session it names; epoch 0 also creates a session
// (fetch_session.go: bounded cache, eviction, incremental answers). Any
// other epoch is an incremental fetch on an existing session.
//
// Follower fetching (KIP-392, v11+): a consumer's fetch carries its rack
// (RackID, client.rack). With replica.selector.class set to Kafka's
// RackAwareReplicaSelector, the leader answers a partition that an
// in-sync follower in the consumer's rack should serve with
// PreferredReadReplica and no records, and answers at once (no long
// poll). Any follower serves a v11+ consumer's fetch up to its own high
// watermark (replica.Partition.Fetch), never naming a preferred replica;
// below v11 consumers read from leaders only.
//
// Versions: v4 isolation level, last stable offset, aborted transactions
// (KIP-98); v5 log start offset; v7 fetch sessions (KIP-227); v9 current
// leader epoch (KIP-320); v10 ZStandard; v11 rack id (KIP-392); v12
// flexible, diverging epoch, last fetched epoch (KIP-595); v13 topic ids
// (KIP-516); v14 no change; v15 replica state (KIP-903); v16 node
// endpoints (KIP-951); v17 replica directory id (KIP-853); v18 high
// watermark in request (KIP-1166).

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
	"samsa/internal/network"
	"samsa/internal/replica"
	"samsa/internal/storage"
)

// noRecords is the empty record set. RecordBatches must never be nil: kmsg
// encodes nil as a null (-1 length) field, which librdkafka and
// kafka-python reject ("invalid MessageSetSize -1"); Kafka always sends
// an empty record set.
var noRecords = []byte{}

// fetchPartition is one partition of a fetch request, resolved once.
type fetchPartition struct {
	req  *kmsg.FetchRequestTopicPartition
	resp *kmsg.FetchResponseTopicPartition
	p    *replica.Partition // nil when code != 0
	code int16              // error found while resolving
}

// fetchKey names one partition of a fetch request: by topic name before
// v13, by topic id from v13 on (the name may be unknown then).
type fetchKey struct {
	topic     string
	topicID   [16]byte
	partition int32
}

// fetchMaxBytes is the response budget: the request's MaxBytes capped by
// the broker's fetch.max.bytes (Kafka's KafkaApis.handleFetchRequest
// takes the smaller of the two).
func (h *Handler) fetchMaxBytes(req *kmsg.FetchRequest) int32 {
	limit := req.MaxBytes
	if h.d.Config != nil && h.d.Config.FetchMaxBytes > 0 && limit > h.d.Config.FetchMaxBytes {
		limit = h.d.Config.FetchMaxBytes
	}
	return max(limit, 0)
}

// fetchEntry is one partition to read: from the request (full fetch) or
// from the fetch session (incremental fetch).
type fetchEntry struct {
	key     fetchKey
	topic   string   // as the client names it (before v13)
	topicID [16]byte // v13+
	req     *kmsg.FetchRequestTopicPartition
}

// requestEntries returns the partitions of a request, collapsing those
// listed more than once as Kafka's FetchRequest.fetchData does (a
// LinkedHashMap keyed by partition): one answer per partition, at the
// place of its first mention, with the parameters of its last one.
// Without this a request repeating one partition 10,000 times read (and
// answered) its data 10,000 times.
func requestEntries(req *kmsg.FetchRequest) []fetchEntry {
	var entries []fetchEntry
	index := map[fetchKey]int{}
	for i := range req.Topics {
		rt := &req.Topics[i]
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			k := keyOf(req.Version, rt.Topic, rt.TopicID, rp.Partition)
			e := fetchEntry{key: k, topic: rt.Topic, topicID: rt.TopicID, req: rp}
			if at, ok := index[k]; ok {
				entries[at] = e
				continue
			}
			index[k] = len(entries)
			entries = append(entries, e)
		}
	}
	return entries
}

func (h *Handler) fetch(ctx context.Context, c *network.Conn, req *kmsg.FetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.SessionID = 0
	// KIP-227, as Kafka's FetchManager.newContext: epoch 0 (INITIAL) or
	// -1 (FINAL) is a full fetch whatever the session id; it closes the
	// session it names, and epoch 0 asks for a new one. Any other epoch
	// is an incremental fetch on an existing session.
	var inc *incremental
	var entries []fetchEntry
	if req.SessionEpoch == 0 || req.SessionEpoch == -1 {
		if req.SessionID > 0 {
			h.sessions.remove(req.SessionID)
		}
		entries = requestEntries(req)
	} else {
		var code int16
		inc, entries, code = h.sessions.beginIncremental(req)
		if code != 0 {
			resp.ErrorCode = code
			return resp, nil
		}
		if inc == nil {
			// Every partition was forgotten: the session is closed
			// and the request served without one.
			entries = requestEntries(req)
		}
	}
	parts, hasError := h.resolveFetch(req, entries, resp)
	listener := ""
	if c != nil {
		listener = c.Listener()
	}
	h.waitFetch(ctx, req, parts, hasError, listener)
	switch {
	case inc != nil:
		h.finishIncremental(inc, resp, parts, entries)
	case req.SessionEpoch == 0 && ctx.Err() == nil:
		resp.SessionID = h.sessions.create(req, entries, parts)
	}
	if hasError && c != nil {
		h.fetchLeaderHints(resp, c.Listener())
	}
	return resp, nil
}

// resolveFetch builds the response skeleton for entries and resolves each
// partition; hasError reports a partition that already has an error.
func (h *Handler) resolveFetch(req *kmsg.FetchRequest, entries []fetchEntry, resp *kmsg.FetchResponse) (parts []fetchPartition, hasError bool) {
	var im *metadata.Image
	if req.Version >= 13 {
		im = h.image()
	}
	// Response topics group consecutive partitions of one topic, as
	// Kafka's FetchResponse.of does.
	topicOf := make([]int, len(entries)) // response topic index per entry
	for i, e := range entries {
		n := len(resp.Topics)
		if n > 0 && resp.Topics[n-1].Topic == e.topic && resp.Topics[n-1].TopicID == e.topicID {
			topicOf[i] = n - 1
			continue
		}
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = e.topic, e.topicID
		resp.Topics = append(resp.Topics, st)
		topicOf[i] = n
	}
	for i, e := range entries {
		st := &resp.Topics[topicOf[i]]
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.Partition = e.req.Partition
		st.Partitions = append(st.Partitions, sp)
	}

	parts = make([]fetchPartition, len(entries))
	next := make([]int, len(resp.Topics)) // next partition per response topic
	for i, e := range entries {
		ti := topicOf[i]
		fp := fetchPartition{req: e.req, resp: &resp.Topics[ti].Partitions[next[ti]]}
		next[ti]++
		topic := e.topic
		if req.Version >= 13 {
			if t := im.TopicsByID[e.topicID]; t != nil {
				topic = t.Name
			} else {
				fp.code = kerr.UnknownTopicID.Code
			}
		}
		if fp.code == 0 {
			// Any replica: the partition's Fetch checks epochs first and
			// then that this broker leads (Kafka's order of errors).
			rp := e.req
			p, err := h.d.Replicas.Replica(topic, rp.Partition)
			if err != nil {
				fp.code = h.errorCode(err, "fetch", "topic", topic, "partition", rp.Partition)
			} else {
				fp.p = p
			}
		}
		if fp.code != 0 {
			hasError = true
		}
		parts[i] = fp
	}
	return parts, hasError
}

// waitFetch reads the partitions into the response, and for a long poll
// waits until MinBytes are there, the wait times out or ctx ends. The wait
// is one replica.FetchWaiter registered on every partition of the request
// (Kafka's DelayedFetch), woken by appends, high-watermark moves and role
// changes. listener is the connection's, for follower fetching ("" any).
func (h *Handler) waitFetch(ctx context.Context, req *kmsg.FetchRequest, parts []fetchPartition, hasError bool, listener string) {
	maxWait := time.Duration(req.MaxWaitMillis) * time.Millisecond
	waiting := maxWait > 0 && req.MinBytes > 0 && !hasError
	var w *replica.FetchWaiter
	var wctx context.Context
	for {
		n, done, throttled := h.readFetch(ctx, req, parts, listener)
		if !waiting || done || n >= int(req.MinBytes) || ctx.Err() != nil {
			return
		}
		if w == nil {
			// Register, then read again: a change between the first
			// read and the registration still wakes us. The first
			// read skips this: usually data is there already.
			w = replica.NewFetchWaiter()
			defer w.Close()
			for i := range parts {
				if parts[i].p != nil {
					w.Watch(parts[i].p)
				}
			}
			var cancel context.CancelFunc
			wctx, cancel = context.WithTimeout(ctx, maxWait)
			defer cancel()
			continue
		}
		waitCtx, cancelWait := wctx, context.CancelFunc(func() {})
		if throttled > 0 {
			// The replication throttle holds records back: read again
			// once it lets them through, within the request's wait.
			waitCtx, cancelWait = context.WithTimeout(wctx, throttled)
		}
		err := w.Wait(waitCtx)
		cancelWait()
		if err == nil || wctx.Err() == nil {
			continue // woken, or the throttle's wait ended first
		}
		// Timed out or the connection closed: answer with what there is.
		if ctx.Err() == nil {
			_, _, _ = h.readFetch(ctx, req, parts, listener)
		}
		return
	}
}

// replicaOf returns the fetching replica's broker id and epoch: the
// replica state (v15+, KIP-903) or the replica id; -1 for a consumer.
func replicaOf(req *kmsg.FetchRequest) (int32, int64) {
	if req.Version >= 15 {
		return req.ReplicaState.ID, req.ReplicaState.Epoch
	}
	return req.ReplicaID, -1
}

// readFetch fills every partition's response through its
// replica.Partition.Fetch and returns the bytes of records read, whether
// the answer must go at once (a partition answered an error or a
// preferred read replica: Kafka's ReplicaManager.fetchMessages does not
// delay those), and the shortest time the replication throttle holds a
// partition's records back (0 none).
func (h *Handler) readFetch(ctx context.Context, req *kmsg.FetchRequest, parts []fetchPartition, listener string) (int, bool, time.Duration) {
	remaining := h.fetchMaxBytes(req)
	// What every partition's read shares: who fetches, and how.
	base := replica.FetchParams{
		ReplicaID: -1, ReplicaEpoch: -1, CurrentLeaderEpoch: -1, LastFetchedEpoch: -1, LogStartOffset: -1,
		Isolation: req.IsolationLevel,
	}
	if id, epoch := replicaOf(req); id >= 0 {
		base.ReplicaID, base.ReplicaEpoch, base.Isolation = id, epoch, replica.ReadUncommitted
	} else if req.Version >= 11 {
		base.ClientMetadata, base.ClientRack, base.Listener = true, req.Rack, listener
	}
	total := 0
	hasErr := false
	var throttled time.Duration
	for i := range parts {
		fp := &parts[i]
		sp := fp.resp
		if fp.code != 0 {
			sp.ErrorCode = fp.code
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.RecordBatches = noRecords
			hasErr = true
			continue
		}
		params := base
		params.FetchOffset = fp.req.FetchOffset
		params.MaxBytes = max(min(fp.req.PartitionMaxBytes, remaining), 0)
		params.MinOneMessage = total == 0
		if params.ReplicaID >= 0 {
			params.LogStartOffset = fp.req.LogStartOffset
		}
		if req.Version >= 9 {
			params.CurrentLeaderEpoch = fp.req.CurrentLeaderEpoch
		}
		if req.Version >= 12 {
			params.LastFetchedEpoch = fp.req.LastFetchedEpoch
		}
		res, err := fp.p.Fetch(ctx, params)
		releaseRecords(sp)
		if err != nil {
			sp.ErrorCode = h.errorCode(err, "fetch", "topic", fp.topic(), "partition", fp.req.Partition, "offset", fp.req.FetchOffset)
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			if errors.Is(err, storage.ErrOffsetOutOfRange) {
				// The offsets were read before the refused read: they
				// tell the client where the log is now.
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = res.HighWatermark, res.LastStableOffset, res.LogStartOffset
			}
			sp.AbortedTransactions = nil
			hasErr = true
			continue
		}
		if res.Throttled > 0 && (throttled == 0 || res.Throttled < throttled) {
			throttled = res.Throttled
		}
		sp.ErrorCode = 0
		sp.HighWatermark = res.HighWatermark
		sp.LastStableOffset = res.LastStableOffset
		sp.LogStartOffset = res.LogStartOffset
		sp.PreferredReadReplica = res.PreferredReadReplica
		if res.PreferredReadReplica >= 0 {
			hasErr = true // answer now
		}
		sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = res.DivergingEpoch.Epoch, res.DivergingEpoch.EndOffset
		sp.AbortedTransactions = nil
		if res.AbortedTransactions != nil {
			sp.AbortedTransactions = make([]kmsg.FetchResponseTopicPartitionAbortedTransaction, 0, len(res.AbortedTransactions))
			for _, a := range res.AbortedTransactions {
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
				sp.AbortedTransactions = append(sp.AbortedTransactions, at)
			}
		}
		data := res.Records
		if data == nil {
			data = noRecords
		}
		sp.RecordBatches = data
		total += len(data)
		remaining = max(remaining-int32(len(data)), 0)
	}
	return total, hasErr, throttled
}

// releaseRecords hands a partition's record buffer back to the storage
// pool (a long poll re-reads into a fresh one).
func releaseRecords(sp *kmsg.FetchResponseTopicPartition) {
	if len(sp.RecordBatches) > 0 {
		storage.ReleaseBuffer(sp.RecordBatches)
	}
	sp.RecordBatches = noRecords
}

// Release is called by internal/network once resp is written (or
// dropped): the record buffers of a fetch response go back to the
// storage pool. Nothing may use resp afterwards.
func (h *Handler) Release(resp kmsg.Response) {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return
	}
	for i := range f.Topics {
		for j := range f.Topics[i].Partitions {
			releaseRecords(&f.Topics[i].Partitions[j])
		}
	}
}

// topic is the partition's topic name (for logs).
func (fp *fetchPartition) topic() string {
	t, _, _ := fp.p.TopicPartition()
	return t
}
