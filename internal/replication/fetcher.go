package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/interbroker"
)

// fetcher copies the partitions this broker follows from one source
// broker that hash to its index (Kafka's ReplicaFetcherThread). Its
// goroutine (run) is owned by the Manager: started by start, stopped by
// stop.
type fetcher struct {
	opts   Options
	key    fetcherKey
	logger *slog.Logger
	// client is this fetcher's own connection to the leader.
	client *interbroker.Client

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	// wake (capacity 1) tells an idle run that partitions were added.
	wake chan struct{}
	// respBuf holds the last fetch response frame (RequestReusing): only
	// run touches it, and nothing it applies keeps a slice of it past
	// the round (the logs copy the batches to their files).
	respBuf []byte

	// maxLag is the largest lag over the partitions (FetcherStats.MaxLag).
	maxLag atomic.Int64
	// requests, failures and bytes count Fetch requests sent, those that
	// got no answer, and record bytes appended (FetcherStats).
	requests, failures, bytes atomic.Int64

	// mu guards the fields below. It is held while a response is
	// applied to the Followers (disk I/O, never network I/O), so that
	// once remove returns no Follower it removed is called again.
	mu sync.Mutex
	// addr is the leader's address.
	addr string
	// parts are the followed partitions.
	parts map[TopicPartition]*partitionState
	// order is the order partitions go into requests: a partition that
	// returned records moves to the end, so under the byte limits the
	// others get their turn (Kafka's PartitionStates.updateAndMoveToEnd).
	// Invariant: the same set as parts.
	order []TopicPartition
	// gen numbers the additions of partitions: an answer for an earlier
	// addition of a partition is ignored.
	gen uint64

	// session is the fetch session with the leader; used by run's
	// goroutine only (buildRequest reads it under mu, which run holds
	// there anyway).
	session fetchSession
}

// partitionState is the fetch state of one partition. Guarded by the
// fetcher's mu.
type partitionState struct {
	f         Follower
	topic     string
	topicID   [16]byte
	partition int32
	gen       uint64
	// delayedUntil: the partition is not fetched before it (zero: ready).
	delayedUntil time.Time
	// lag is the leader's high watermark minus our log end offset at the
	// last fetch; 0 before the first.
	lag int64
	// inSync: the last fetch left the partition caught up with the
	// leader's high watermark (Kafka's PartitionFetchState.
	// isReplicaInSync); false before the first. The follower throttle
	// never holds back an in-sync partition.
	inSync bool
}

func newFetcher(opts Options, k fetcherKey, addr string) *fetcher {
	ctx, cancel := context.WithCancel(context.Background())
	logger := opts.Logger.With("leader", k.leaderID, "fetcher", k.index)
	ft := &fetcher{
		opts: opts, key: k, logger: logger,
		client: interbroker.New(interbroker.Options{
			ClientID:         fmt.Sprintf("%s-fetcher-%d-%d", opts.ClientID, k.leaderID, k.index),
			DialTimeout:      opts.DialTimeout,
			RequestTimeout:   opts.SocketTimeout,
			MaxResponseBytes: opts.MaxResponseBytes,
			Logger:           logger,
		}),
		ctx: ctx, cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}, 1),
		addr: addr, parts: map[TopicPartition]*partitionState{},
	}
	return ft
}

func (ft *fetcher) start() { go ft.run() }

// stop ends run and waits for it: an in-flight request is abandoned
// (the client's close ends it), an append in progress finishes.
func (ft *fetcher) stop() {
	ft.cancel()
	ft.client.Close()
	<-ft.done
}

func (ft *fetcher) setAddr(addr string) {
	ft.mu.Lock()
	ft.addr = addr
	ft.mu.Unlock()
}

func (ft *fetcher) address() string {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.addr
}

func (ft *fetcher) partitionCount() int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return len(ft.parts)
}

func (ft *fetcher) partitionLag(tp TopicPartition) (int64, bool) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ps := ft.parts[tp]
	if ps == nil {
		return 0, false
	}
	return ps.lag, true
}

// follower returns the Follower of a followed partition.
func (ft *fetcher) follower(tp TopicPartition) (Follower, bool) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ps := ft.parts[tp]
	if ps == nil {
		return nil, false
	}
	return ps.f, true
}

// add starts (or restarts) fetching fs.
func (ft *fetcher) add(fs []Follower) {
	ft.mu.Lock()
	for _, f := range fs {
		topic, id, partition := f.TopicPartition()
		tp := TopicPartition{topic, partition}
		if _, ok := ft.parts[tp]; !ok {
			ft.order = append(ft.order, tp)
		}
		ft.gen++
		ft.parts[tp] = &partitionState{f: f, topic: topic, topicID: id, partition: partition, gen: ft.gen}
	}
	ft.mu.Unlock()
	select {
	case ft.wake <- struct{}{}:
	default:
	}
}

// remove stops fetching tps and returns how many partitions are left.
func (ft *fetcher) remove(tps []TopicPartition) int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	for _, tp := range tps {
		delete(ft.parts, tp)
	}
	kept := ft.order[:0]
	for _, tp := range ft.order {
		if _, ok := ft.parts[tp]; ok {
			kept = append(kept, tp)
		}
	}
	clear(ft.order[len(kept):])
	ft.order = kept
	return len(ft.parts)
}

// sentPartition is what a request asked for one partition.
type sentPartition struct {
	tp                 TopicPartition
	topicID            [16]byte
	gen                uint64
	fetchOffset        int64
	currentLeaderEpoch int32
}

// run is the fetcher's loop (AbstractFetcherThread.doWork).
func (ft *fetcher) run() {
	defer close(ft.done)
	failing := false // the last request failed: log only the first failure of a streak
	for ft.ctx.Err() == nil {
		round, wait := ft.buildRequest(time.Now())
		if round == nil {
			ft.sleep(wait)
			continue
		}
		resp, err := ft.send(round)
		ft.requests.Add(1)
		if err != nil {
			ft.failures.Add(1)
			if ft.ctx.Err() != nil {
				return
			}
			if !failing {
				ft.logger.Warn("replica fetch failed; backing off", "addr", round.addr, "partitions", len(round.sent), "backoff", ft.opts.FetchBackoff, "err", err)
			} else {
				ft.logger.Debug("replica fetch failed again", "addr", round.addr, "err", err)
			}
			failing = true
			ft.session.failed()
			ft.delay(round.sent, time.Now())
			continue
		}
		if failing {
			ft.logger.Info("replica fetch recovered", "addr", round.addr)
			failing = false
		}
		if oor := ft.answer(round, resp); len(oor) > 0 {
			ft.handleOutOfRange(round.addr, oor)
		}
	}
}

// answer applies a response to the session and then to the partitions;
// it returns the partitions answered OFFSET_OUT_OF_RANGE.
func (ft *fetcher) answer(round *fetchRound, resp *kmsg.FetchResponse) []outOfRange {
	if !ft.session.answered(round, resp, ft.logger) {
		return nil // a session error: the next request is a full one
	}
	return ft.process(resp, round.sent)
}

// sleep waits until wait passes, partitions are added, or the fetcher
// stops.
func (ft *fetcher) sleep(wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ft.wake:
	case <-ft.ctx.Done():
	}
}

// fetchRound is one request and what its answer is checked against.
type fetchRound struct {
	req  *kmsg.FetchRequest
	addr string
	// sent holds every partition the answer may carry: with a session,
	// those the leader's session holds after this request, including
	// the ones the request does not repeat.
	sent map[TopicPartition]sentPartition
	// full: the request lists every partition (no session, or one being
	// created).
	full bool
	// params are the partitions' fetch parameters after this request,
	// as the leader's session will hold them.
	params map[TopicPartition]sessionPartition
}

// buildRequest returns the next request for the ready partitions (at
// most MaxPartitionsPerFetch, in order), or nil and how long to wait for
// a partition to become ready.
func (ft *fetcher) buildRequest(now time.Time) (*fetchRound, time.Duration) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	wait := ft.opts.FetchBackoff
	round := &fetchRound{addr: ft.addr, sent: map[TopicPartition]sentPartition{}, params: map[TopicPartition]sessionPartition{}}
	var ready []TopicPartition
	// The follower throttle, asked at most once per request: 0 not yet,
	// 1 under the limit, 2 over it (throttleWait: for how long).
	throttle := 0
	var throttleWait time.Duration
	for _, tp := range ft.order {
		if len(ready) >= ft.opts.MaxPartitionsPerFetch {
			break
		}
		ps := ft.parts[tp]
		if d := ps.delayedUntil.Sub(now); d > 0 {
			wait = min(wait, d)
			continue
		}
		if q := ft.opts.Quota; q != nil && !ps.inSync && q.Throttled(ps.topic, ps.partition) {
			// Kafka's ReplicaFetcherThread.shouldFollowerThrottle: left
			// out of this request (a session forgets it) while the rate
			// is over the limit.
			if throttle == 0 {
				throttle = 1
				if over, d := q.Exceeded(); over {
					throttle, throttleWait = 2, max(d, time.Millisecond)
				}
			}
			if throttle == 2 {
				wait = min(wait, throttleWait)
				continue
			}
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = ps.partition
		rp.CurrentLeaderEpoch = ps.f.LeaderEpoch()
		rp.FetchOffset = ps.f.LogEndOffset()
		rp.LastFetchedEpoch = ps.f.LatestEpoch()
		rp.LogStartOffset = ps.f.LogStartOffset()
		rp.PartitionMaxBytes = ft.opts.FetchMaxBytes
		ready = append(ready, tp)
		round.params[tp] = sessionPartition{topic: ps.topic, topicID: ps.topicID, req: rp}
		round.sent[tp] = sentPartition{
			tp: tp, topicID: ps.topicID, gen: ps.gen, fetchOffset: rp.FetchOffset, currentLeaderEpoch: rp.CurrentLeaderEpoch,
		}
	}
	if len(ready) == 0 {
		return nil, max(wait, time.Millisecond)
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = ft.opts.BrokerID
	req.ReplicaState.ID = ft.opts.BrokerID
	req.ReplicaState.Epoch = ft.opts.BrokerEpoch()
	req.MaxWaitMillis = int32(min(ft.opts.FetchWaitMax.Milliseconds(), 1<<31-1))
	req.MinBytes = ft.opts.FetchMinBytes
	req.MaxBytes = ft.opts.FetchResponseMaxBytes
	req.IsolationLevel = 0
	round.req = req
	ft.session.build(round, ready, !ft.opts.DisableFetchSessions)
	return round, 0
}

// cappedRequest caps the version the interbroker client negotiates.
type cappedRequest struct {
	kmsg.Request
	max int16
}

func (r cappedRequest) MaxVersion() int16 { return min(r.max, r.Request.MaxVersion()) }

// send sends the round's request to the leader, bounded by
// replica.socket.timeout.ms. Unless every partition of the round (hence
// of the session) has a topic id, Fetch stays below v13 (which names
// topics by id only), as Kafka's FetchRequest.Builder does.
func (ft *fetcher) send(round *fetchRound) (*kmsg.FetchResponse, error) {
	ctx, cancel := context.WithTimeout(ft.ctx, ft.opts.SocketTimeout)
	defer cancel()
	var r kmsg.Request = round.req
	for _, p := range round.params {
		if p.topicID == ([16]byte{}) {
			r = cappedRequest{Request: round.req, max: 12}
			break
		}
	}
	resp, err := ft.client.RequestReusing(ctx, round.addr, r, &ft.respBuf)
	if err != nil {
		return nil, err
	}
	fr, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return nil, fmt.Errorf("replication: fetch answered with %T", resp)
	}
	return fr, nil
}

// delay keeps the sent partitions still in their sent state out of
// requests for replica.fetch.backoff.ms (AbstractFetcherThread.
// delayPartitions; an already delayed partition keeps its delay).
func (ft *fetcher) delay(sent map[TopicPartition]sentPartition, now time.Time) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	for _, s := range sent {
		if ps := ft.parts[s.tp]; ps != nil && ps.gen == s.gen {
			ft.delayLocked(ps, now)
		}
	}
}

func (ft *fetcher) delayLocked(ps *partitionState, now time.Time) {
	ft.delayForLocked(ps, now, ft.opts.FetchBackoff)
}

// delayForLocked makes ps wait d from now unless it waits already.
func (ft *fetcher) delayForLocked(ps *partitionState, now time.Time, d time.Duration) {
	if !ps.delayedUntil.After(now) {
		ps.delayedUntil = now.Add(d)
	}
}

// metadataRetryBackoff is how soon a partition is fetched again after a
// leader answered that it is behind this follower's metadata
// (UNKNOWN_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER): brokers apply a
// metadata change within milliseconds of each other, so this bounds the
// failover delay it adds; at most 20 retries a second per partition
// while it lasts.
const metadataRetryBackoff = 50 * time.Millisecond

// outOfRange is a partition the leader answered OFFSET_OUT_OF_RANGE.
type outOfRange struct {
	sentPartition
	topic     string
	partition int32
	leaderEnd int64 // the leader's end offset, once asked
}

// process applies a response (AbstractFetcherThread.processFetchRequest)
// and returns the partitions answered OFFSET_OUT_OF_RANGE, which need
// requests to the leader (made without mu).
func (ft *fetcher) process(resp *kmsg.FetchResponse, sent map[TopicPartition]sentPartition) []outOfRange {
	now := time.Now()
	if resp.ErrorCode != 0 {
		ft.logger.Warn("replica fetch answered an error", "err", kerr.ErrorForCode(resp.ErrorCode))
		ft.delay(sent, now)
		return nil
	}
	// From v13 on the response names topics by id only.
	var names map[[16]byte]string
	if resp.GetVersion() >= 13 {
		names = make(map[[16]byte]string, len(sent))
		for tp, s := range sent {
			names[s.topicID] = tp.Topic
		}
	}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	var oor []outOfRange
	var withData []TopicPartition
	answered := make(map[TopicPartition]bool, len(sent))
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		topic := rt.Topic
		if names != nil {
			topic = names[rt.TopicID]
		}
		for j := range rt.Partitions {
			sp := &rt.Partitions[j]
			tp := TopicPartition{topic, sp.Partition}
			s, ok := sent[tp]
			if !ok || answered[tp] || (names != nil && topic == "") {
				continue // not asked, or answered twice
			}
			answered[tp] = true
			ps := ft.parts[s.tp]
			// The partition may have been removed and added again, or
			// truncated, while the request was out: answer only the
			// state we asked for.
			if ps == nil || ps.gen != s.gen || ps.f.LogEndOffset() != s.fetchOffset {
				continue
			}
			switch err := kerr.ErrorForCode(sp.ErrorCode); {
			case err == nil:
				if ft.applyLocked(ps, s, sp, now) {
					withData = append(withData, s.tp)
				}
			case errors.Is(err, kerr.OffsetOutOfRange):
				oor = append(oor, outOfRange{sentPartition: s, topic: ps.topic, partition: ps.partition})
			case errors.Is(err, kerr.NotLeaderForPartition), errors.Is(err, kerr.UnknownLeaderEpoch),
				errors.Is(err, kerr.FencedLeaderEpoch):
				// The leader moved, or one of us has not seen the
				// latest image yet: wait for it (the replica manager
				// moves the partition, which resets its delay). A
				// leader behind us (UNKNOWN_LEADER_EPOCH, or not yet
				// leading: NOT_LEADER_OR_FOLLOWER) applies the image
				// within milliseconds, and until this follower has
				// fetched from it no acks=all produce completes there:
				// retry after metadataRetryBackoff, not the whole
				// replica.fetch.backoff.ms (Kafka waits the latter).
				ft.logger.Debug("replica fetch: partition waits for the metadata image", "topic", ps.topic, "partition", ps.partition, "leader_epoch", s.currentLeaderEpoch, "err", err)
				if errors.Is(err, kerr.FencedLeaderEpoch) {
					ft.delayLocked(ps, now)
				} else {
					ft.delayForLocked(ps, now, min(ft.opts.FetchBackoff, metadataRetryBackoff))
				}
			case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID), errors.Is(err, kerr.InconsistentTopicID):
				ft.logger.Warn("replica fetch: the leader does not know the partition (transient while it is created or deleted)", "topic", ps.topic, "partition", ps.partition, "err", err)
				ft.delayLocked(ps, now)
			default:
				ft.logger.Error("replica fetch: partition error", "topic", ps.topic, "partition", ps.partition, "offset", s.fetchOffset, "err", err)
				ft.delayLocked(ps, now)
			}
		}
	}
	// A partition missing from the answer (a session answers only
	// partitions with news) is asked again next round.
	ft.moveToEndLocked(withData)
	ft.updateMaxLagLocked()
	return oor
}
