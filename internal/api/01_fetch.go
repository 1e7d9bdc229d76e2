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
// each up to its PartitionMaxBytes and what remains of MaxBytes, but the
// first partition that has data returns at least one whole batch even if
// it is larger than both limits, so a consumer can always make progress.
//
// Long poll: when fewer than MinBytes are available and MaxWaitMillis > 0,
// the request parks (internal/network serves it on its own goroutine so
// the connection keeps reading) until an append or high-watermark move on
// one of its partitions (storage.Log.Changed) brings MinBytes, the wait
// times out, or the connection closes. A partition error answers at once,
// as Kafka's DelayedFetch completes on errors.
//
// Per partition codes: UNKNOWN_TOPIC_OR_PARTITION (v13+:
// UNKNOWN_TOPIC_ID), OFFSET_OUT_OF_RANGE, FENCED_LEADER_EPOCH /
// UNKNOWN_LEADER_EPOCH when CurrentLeaderEpoch (v9+) is older / newer than
// ours, NOT_LEADER_OR_FOLLOWER, KAFKA_STORAGE_ERROR.
//
// Differences from Kafka: fetch sessions (KIP-227) are declined: every
// response carries session id 0, which tells the client no session was
// created, so it sends full fetches (SessionID 0, SessionEpoch 0 or -1).
// A request naming a session id answers FETCH_SESSION_ID_NOT_FOUND (we
// never handed one out) and a session-less request with an epoch other
// than 0 or -1 answers INVALID_FETCH_SESSION_EPOCH; forgotten topics are
// ignored. The replica id / replica state (followers) is ignored until
// replication exists; rack-aware preferred read replicas (v11) are never
// chosen.
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
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/metadata"
	"samsa/internal/network"
	"samsa/internal/record"
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

func (h *Handler) fetch(ctx context.Context, _ *network.Conn, req *kmsg.FetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.SessionID = 0
	switch {
	case req.SessionID != 0:
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, nil
	case req.SessionEpoch != 0 && req.SessionEpoch != -1:
		resp.ErrorCode = kerr.InvalidFetchSessionEpoch.Code
		return resp, nil
	}

	var im *metadata.Image
	if req.Version >= 13 {
		im = h.d.Controller.Image()
	}
	parts := make([]fetchPartition, 0, len(req.Topics))
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	hasError := false
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := &resp.Topics[i]
		*st = kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		topic, topicCode := rt.Topic, int16(0)
		if req.Version >= 13 {
			if t := im.TopicsByID[rt.TopicID]; t != nil {
				topic = t.Name
			} else {
				topicCode = kerr.UnknownTopicID.Code
			}
		}
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &st.Partitions[j]
			*sp = kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			fp := fetchPartition{req: rp, resp: sp, code: topicCode}
			if fp.code == 0 {
				p, err := h.d.Replicas.Partition(topic, rp.Partition)
				if err != nil {
					fp.code = h.errorCode(err, "fetch", "topic", topic, "partition", rp.Partition)
				} else if e := rp.CurrentLeaderEpoch; req.Version >= 9 && e >= 0 && e != p.LeaderEpoch() {
					if e < p.LeaderEpoch() {
						fp.code = kerr.FencedLeaderEpoch.Code
					} else {
						fp.code = kerr.UnknownLeaderEpoch.Code
					}
				} else {
					fp.p = p
				}
			}
			if fp.code != 0 {
				hasError = true
			}
			parts = append(parts, fp)
		}
	}

	maxWait := time.Duration(req.MaxWaitMillis) * time.Millisecond
	waiting := maxWait > 0 && req.MinBytes > 0 && !hasError
	var timer *time.Timer
	var cases []reflect.SelectCase
	for armed := false; ; armed = true {
		if armed {
			// Take the change channels before reading, so an append
			// between the read and the wait still wakes us. The first
			// read skips this: usually data is there already.
			cases = cases[:0]
			for i := range parts {
				if parts[i].p != nil {
					cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(parts[i].p.Log().Changed())})
				}
			}
		}
		n, readErr := h.readFetch(req, parts)
		if !waiting || readErr || n >= int(req.MinBytes) || ctx.Err() != nil {
			return resp, nil
		}
		if !armed {
			continue
		}
		if timer == nil {
			timer = time.NewTimer(maxWait)
			defer timer.Stop()
		}
		cases = append(cases,
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)},
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		)
		chosen, _, _ := reflect.Select(cases)
		if chosen >= len(cases)-2 {
			// Timed out or the connection closed: answer with what there is.
			if chosen == len(cases)-2 {
				_, _ = h.readFetch(req, parts)
			}
			return resp, nil
		}
	}
}

// readFetch fills every partition's response from its log and returns the
// bytes of records read and whether a partition answered an error.
func (h *Handler) readFetch(req *kmsg.FetchRequest, parts []fetchPartition) (int, bool) {
	remaining := req.MaxBytes
	if remaining <= 0 {
		remaining = 0
	}
	total := 0
	hasErr := false
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
		l := fp.p.Log()
		hw := l.HighWatermark()
		lso := min(l.LastStableOffset(), hw)
		sp.ErrorCode = 0
		sp.HighWatermark = hw
		sp.LastStableOffset = lso
		sp.LogStartOffset = l.LogStartOffset()
		upper := hw
		if req.IsolationLevel == 1 {
			upper = lso
			sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		} else {
			sp.AbortedTransactions = nil
		}
		limit := min(fp.req.PartitionMaxBytes, remaining)
		if limit < 0 {
			limit = 0
		}
		data, err := l.Read(fp.req.FetchOffset, limit, upper, total == 0)
		if err != nil {
			sp.ErrorCode = h.errorCode(err, "fetch", "topic", l.Topic(), "partition", l.Partition(), "offset", fp.req.FetchOffset)
			releaseRecords(sp)
			sp.RecordBatches = noRecords
			hasErr = true
			continue
		}
		if data == nil {
			data = noRecords
		}
		if req.IsolationLevel == 1 && len(data) > 0 {
			for _, a := range l.AbortedTransactions(fp.req.FetchOffset, endOffset(data)) {
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
				sp.AbortedTransactions = append(sp.AbortedTransactions, at)
			}
		}
		releaseRecords(sp)
		sp.RecordBatches = data
		total += len(data)
		remaining = max(remaining-int32(len(data)), 0)
	}
	return total, hasErr
}

// endOffset returns the offset after the last whole batch of data (the
// exclusive end of a fetched range).
func endOffset(data []byte) int64 {
	end := int64(-1)
	for len(data) > 0 {
		_, h, rest, err := record.Next(data)
		if err != nil {
			break
		}
		end = h.NextOffset()
		data = rest
	}
	return end
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
