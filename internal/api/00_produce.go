package api

// Produce (key 0), versions 0-13.
//
// Each partition's records go to replica.Partition.Append with the
// request's acks; errors are per partition (one bad partition does not fail
// the others) and nothing of a rejected partition is stored: every batch
// and every record in it is validated (magic, length, CRC-32C,
// max.message.bytes, header offsets and count, each record's varints,
// lengths and offset delta, timestamps, keys on compacted topics, producer
// sequence) before any is written, compressed batches through a bounded
// streaming decompressor (replica/validate.go, record/validate.go). A
// duplicate of one of the producer's last five batches answers the
// original base offset with no error, as Kafka does.
//
// Per partition codes: UNKNOWN_TOPIC_OR_PARTITION (v13+: UNKNOWN_TOPIC_ID),
// INVALID_TOPIC_EXCEPTION for a name Kafka would never accept;
// CORRUPT_MESSAGE for bytes that are not a batch or do not decompress
// (bad CRC, unknown codec, a codec flag on other bytes); INVALID_RECORD
// for records that break the format (count, lengths, varints, offset
// deltas, trailing bytes), a keyless record on a compacted topic, a
// control batch, a batch inflating beyond message.max.decompressed.bytes
// and, from v3 (Kafka's ProduceRequest.validateRecords), a magic 0/1
// message set or more than one batch per partition;
// UNSUPPORTED_FOR_MESSAGE_FORMAT for magic 0/1 message sets in v0-v2;
// UNSUPPORTED_COMPRESSION_TYPE for zstd before v7; INVALID_TIMESTAMP for
// a CreateTime record outside message.timestamp.before/after.max.ms or a
// producer batch claiming LogAppendTime; MESSAGE_TOO_LARGE,
// OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH,
// UNKNOWN_PRODUCER_ID, NOT_ENOUGH_REPLICAS, KAFKA_STORAGE_ERROR,
// NOT_LEADER_OR_FOLLOWER; INVALID_REQUIRED_ACKS for acks outside -1/0/1.
//
// A topic whose compression.type names a codec (not producer) stores
// batches recompressed in it, keeping offsets, timestamps and producer
// fields (Kafka's LogValidator does the same).
//
// Differences from Kafka in validation: record offset deltas must be
// 0..count-1 (Kafka rewrites a compressed batch with other deltas and does
// not look at an uncompressed one's); a batch whose codec Kafka fails to
// open answers CORRUPT_MESSAGE where Kafka answers UNKNOWN_SERVER_ERROR;
// trailing bytes after the last complete batch are refused, not trimmed.
//
// acks=0 gets no response at all; if any partition failed, the connection
// is closed instead so the client refreshes its metadata (Kafka's
// KafkaApis.handleProduceRequest does the same).
//
// Transactions (KIP-98): a transactional batch in a request with a
// transactional id is first checked against the transaction coordinator
// (KIP-890 part 1 verification; on one node a direct call to
// internal/txn.Coordinator.VerifyPartition): a partition not added to the
// producer's ongoing transaction answers INVALID_TXN_STATE, a stale epoch
// INVALID_PRODUCER_EPOCH, and a coordinator that cannot answer now
// (NOT_COORDINATOR, loading, CONCURRENT_TRANSACTIONS) NOT_ENOUGH_REPLICAS,
// which every client retries, as Kafka's ReplicaManager maps them. The
// append then opens the transaction in the partition's log.
//
// acks=all (-1): after the append the response waits until the high
// watermark passes the records (every ISR member has them), at most the
// request's TimeoutMillis (REQUEST_TIMED_OUT after; the records stay in
// the leader's log, as in Kafka); NOT_ENOUGH_REPLICAS before the append
// when the ISR is below min.insync.replicas, NOT_ENOUGH_REPLICAS_AFTER_APPEND
// when it shrank below it meanwhile, NOT_LEADER_OR_FOLLOWER when the
// leadership moved meanwhile. The wait runs off the connection's reading
// goroutine (network.Conn.Defer): the connection's next requests are
// appended meanwhile, in order, and the responses leave in order.
//
// Differences from Kafka: topics are never auto-created by Produce (modern
// Kafka only does it through Metadata).
//
// Versions: v1 throttle; v2 log append time (magic 1); v3 transactional
// id, record batch v2 (KIP-98); v5 log start offset; v7 ZStandard
// (KIP-110); v8 record errors (KIP-467); v9 flexible; v10 current leader
// and brokers on NOT_LEADER_OR_FOLLOWER (KIP-951); v11 no change; v12
// KIP-890 server-side defense; v13 topic ids instead of names (KIP-516).

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/controller"
	"samsa/internal/metadata"
	"samsa/internal/network"
	"samsa/internal/record"
	"samsa/internal/replica"
	"samsa/internal/storage"
	"samsa/internal/txn"
)

// errAcksZeroFailed closes the connection after a failed acks=0 produce.
var errAcksZeroFailed = errors.New("api: produce with acks=0 failed; closing the connection so the client refreshes metadata")

func (h *Handler) produce(ctx context.Context, c *network.Conn, req *kmsg.ProduceRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	resp.Topics = make([]kmsg.ProduceResponseTopic, 0, len(req.Topics))
	var im *metadata.Image
	if req.Version >= 13 {
		im = h.image()
	}
	failed := false
	// Partitions to append, run after the response skeleton is built:
	// spread over the CPUs when the request is large (appendJobs).
	var jobs []produceJob
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))

		// topicCode, when not 0, answers every partition of the topic.
		var topicCode int16
		topic := rt.Topic
		switch {
		case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
			topicCode = kerr.InvalidRequiredAcks.Code
		case req.Version >= 13:
			if t := im.TopicsByID[rt.TopicID]; t != nil {
				topic = t.Name
			} else {
				topicCode = kerr.UnknownTopicID.Code
			}
		case controller.ValidateTopicName(rt.Topic) != nil:
			topicCode = kerr.InvalidTopicException.Code
		}

		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &st.Partitions[j]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			if topicCode != 0 {
				sp.ErrorCode = topicCode
				failed = true
				continue
			}
			jobs = append(jobs, produceJob{topic: topic, rp: rp, sp: sp})
		}
		resp.Topics = append(resp.Topics, st)
	}
	// jobs point into the partitions' backing arrays, which the topics
	// appended to resp share.
	h.appendJobs(ctx, req, jobs)
	for i := range jobs {
		if jobs[i].sp.ErrorCode != 0 {
			failed = true
		}
	}
	if req.Acks == 0 {
		if failed {
			return nil, errAcksZeroFailed
		}
		return nil, nil
	}
	answer := func() (kmsg.Response, error) {
		if failed && c != nil {
			h.produceLeaderHints(resp, c.Listener())
		}
		return resp, nil
	}
	// acks=all: the response waits until every ISR member has the
	// records (replica.Partition.WaitReplicated, Kafka's DelayedProduce),
	// off the connection's reading goroutine so its next requests are
	// appended meanwhile, in order.
	var waits []*produceJob
	for i := range jobs {
		if j := &jobs[i]; req.Acks == -1 && j.p != nil && j.sp.ErrorCode == 0 && j.p.HighWatermark() < j.end {
			waits = append(waits, j)
		}
	}
	if len(waits) == 0 {
		return answer()
	}
	finish := func() (kmsg.Response, error) {
		if h.waitReplicated(ctx, req, waits) {
			failed = true
		}
		return answer()
	}
	if c == nil {
		return finish()
	}
	c.Defer(finish)
	return nil, nil
}

// waitReplicated waits, up to the request's timeout, until the high
// watermark of each partition in waits passes its records, and answers
// the partitions that did not get there. It reports whether one failed.
func (h *Handler) waitReplicated(ctx context.Context, req *kmsg.ProduceRequest, waits []*produceJob) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(max(req.TimeoutMillis, 0))*time.Millisecond)
	defer cancel()
	failed := false
	for _, j := range waits {
		if err := j.p.WaitReplicated(ctx, j.end); err != nil {
			j.sp.ErrorCode = h.errorCode(err, "produce", "topic", j.topic, "partition", j.rp.Partition)
			if req.Version >= 8 {
				j.sp.ErrorMessage = errorMessage(err)
			}
			j.sp.BaseOffset = -1
			failed = true
		}
	}
	return failed
}

// produceJob is one partition of a Produce request to validate and
// append; the outcome goes into sp.
type produceJob struct {
	topic string
	rp    *kmsg.ProduceRequestTopicPartition
	sp    *kmsg.ProduceResponseTopicPartition
	// Set by a successful append: the partition and the offset after the
	// records (what an acks=all produce waits for).
	p   *replica.Partition
	end int64
}

// Large requests are appended by several goroutines, one partition each at
// a time: validating and writing 8 partitions of 1 MiB takes milliseconds
// of CPU, and a producer with one request in flight (acks=1 without
// idempotence) waits for all of it. Below parallelBytes of estimated work
// (record.WorkEstimate: a compressed batch counts as several times its
// size, since its records are inflated and walked), or with a
// partition listed twice (its appends must keep the request's order), the
// partitions go one by one on the connection's goroutine.
const parallelBytes = 256 << 10

func (h *Handler) appendJobs(ctx context.Context, req *kmsg.ProduceRequest, jobs []produceJob) {
	workers := min(runtime.GOMAXPROCS(0), len(jobs))
	if workers > 1 {
		total := 0
		for i := range jobs {
			total += record.WorkEstimate(jobs[i].rp.Records)
		}
		if total < parallelBytes || !distinctPartitions(jobs) {
			workers = 1
		}
	}
	if workers <= 1 {
		for i := range jobs {
			h.produceOne(ctx, req, &jobs[i])
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(jobs)); i = next.Add(1) - 1 {
				h.produceOne(ctx, req, &jobs[i])
			}
		})
	}
	for i := next.Add(1) - 1; i < int64(len(jobs)); i = next.Add(1) - 1 {
		h.produceOne(ctx, req, &jobs[i])
	}
	wg.Wait()
}

// distinctPartitions reports whether no partition appears twice in jobs.
func distinctPartitions(jobs []produceJob) bool {
	type tp struct {
		topic     string
		partition int32
	}
	seen := make(map[tp]struct{}, len(jobs))
	for i := range jobs {
		k := tp{jobs[i].topic, jobs[i].rp.Partition}
		if _, dup := seen[k]; dup {
			return false
		}
		seen[k] = struct{}{}
	}
	return true
}

// produceOne validates and appends one partition and records the outcome
// in j.sp.
func (h *Handler) produceOne(ctx context.Context, req *kmsg.ProduceRequest, j *produceJob) {
	rp, sp := j.rp, j.sp
	err := checkProduceRecords(req.Version, rp.Records)
	if err == nil {
		err = h.verifyTxn(ctx, req.TransactionID, j.topic, rp)
	}
	if err == nil {
		err = h.appendPartition(j, req.Acks)
	}
	if err != nil {
		sp.ErrorCode = h.errorCode(err, "produce", "topic", j.topic, "partition", rp.Partition)
		if req.Version >= 8 {
			sp.ErrorMessage = errorMessage(err)
		}
	}
}

// checkProduceRecords applies Kafka's ProduceRequest.validateRecords to
// one partition's records: from v3 on, exactly one batch, of magic 2
// (INVALID_RECORD otherwise), and zstd only from v7
// (UNSUPPORTED_COMPRESSION_TYPE). v0-v2 are left to the append, which
// answers UNSUPPORTED_FOR_MESSAGE_FORMAT for magic 0/1 message sets.
func checkProduceRecords(version int16, records []byte) error {
	if version < 3 {
		return nil
	}
	_, h, rest, err := record.Next(records)
	switch {
	case errors.Is(err, record.ErrUnsupportedMagic):
		return fmt.Errorf("%w: produce requests v%d only carry record batches of magic 2: %v", storage.ErrInvalidRecord, version, err)
	case len(records) == 0 || errors.Is(err, record.ErrTruncated):
		return fmt.Errorf("%w: produce requests v%d must have one complete record batch per partition", storage.ErrInvalidRecord, version)
	case err != nil:
		return fmt.Errorf("%w: %v", storage.ErrCorruptMessage, err)
	case version < 7 && h.Compression() == record.CompressionZstd:
		return fmt.Errorf("%w: produce requests v%d cannot use zstd", kerr.UnsupportedCompressionType, version)
	case len(rest) > 0:
		return fmt.Errorf("%w: produce requests v%d must have exactly one record batch per partition", storage.ErrInvalidRecord, version)
	}
	return nil
}

// verifyTxn checks a transactional batch against the coordinator's state
// of its transaction (see the header). A non-transactional batch, or a
// request without transactional id, passes.
func (h *Handler) verifyTxn(ctx context.Context, id *string, topic string, rp *kmsg.ProduceRequestTopicPartition) error {
	if id == nil {
		return nil
	}
	hdr, err := record.ParseHeader(rp.Records)
	if err != nil || !hdr.Transactional() || hdr.Control() {
		return nil // not ours to judge: storage validates the bytes
	}
	if h.d.Txns == nil {
		return kerr.NotEnoughReplicas
	}
	tp := txn.TopicPartition{Topic: topic, Partition: rp.Partition}
	code := h.d.Txns.VerifyPartition(*id, hdr.ProducerID, hdr.ProducerEpoch, tp)
	if code == kerr.NotCoordinator && h.d.VerifyTxnRemote != nil {
		// The transaction's coordinator is another broker: ask it
		// (AddPartitionsToTxn v4 VerifyOnly, as Kafka's leaders do).
		code = h.d.VerifyTxnRemote(ctx, *id, hdr.ProducerID, hdr.ProducerEpoch, tp)
	}
	switch code {
	case nil:
		return nil
	case kerr.InvalidProducerEpoch, kerr.InvalidTxnState:
		return code
	case kerr.InvalidProducerIDMapping:
		return kerr.InvalidTxnState
	default:
		return kerr.NotEnoughReplicas
	}
}

// appendPartition appends one partition's records and fills in the
// offsets of j.sp.
func (h *Handler) appendPartition(j *produceJob, acks int16) error {
	p, err := h.d.Replicas.Partition(j.topic, j.rp.Partition)
	if err != nil {
		return err
	}
	info, err := p.Append(j.rp.Records, acks)
	if err != nil {
		return fmt.Errorf("append to %s-%d: %w", j.topic, j.rp.Partition, err)
	}
	j.sp.BaseOffset = info.FirstOffset
	j.sp.LogAppendTime = info.LogAppendTime
	j.sp.LogStartOffset = info.LogStartOffset
	j.p, j.end = p, info.LastOffset+1
	return nil
}
