package replication

import (
	"errors"
	"log/slog"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchSession is the follower's side of a KIP-227 fetch session with
// the leader (Kafka's FetchSessionHandler): the first request is full
// and asks for a session (epoch 0); the leader answers its id; then each
// request carries the next epoch and only the partitions whose fetch
// parameters changed, plus the partitions to forget, and the leader
// answers only partitions with news (records, an error, a moved high
// watermark or log start offset). A failed request or a session error
// makes the next request full again.
type fetchSession struct {
	// id is the leader's session id; 0: none.
	id int32
	// epoch is the next request's epoch; 0: the next request is full
	// (and closes session id, if any, creating a new one).
	epoch int32
	// parts are the partitions the leader's session holds, with the
	// parameters last sent for them.
	parts map[TopicPartition]sessionPartition
}

// sessionPartition is one partition of a session.
type sessionPartition struct {
	topic   string
	topicID [16]byte
	req     kmsg.FetchRequestTopicPartition
}

// sameParams reports whether the leader's session already holds p's
// parameters.
func sameParams(a, b kmsg.FetchRequestTopicPartition) bool {
	return a.FetchOffset == b.FetchOffset && a.CurrentLeaderEpoch == b.CurrentLeaderEpoch &&
		a.LastFetchedEpoch == b.LastFetchedEpoch && a.LogStartOffset == b.LogStartOffset &&
		a.PartitionMaxBytes == b.PartitionMaxBytes
}

// build fills round.req's session fields and partitions: every ready
// partition in a full request, only the changed ones (and the forgotten)
// in an incremental one.
func (s *fetchSession) build(round *fetchRound, ready []TopicPartition, sessions bool) {
	req := round.req
	incremental := sessions && s.id != 0 && s.epoch > 0
	switch {
	case !sessions:
		req.SessionID, req.SessionEpoch = 0, -1 // FINAL: no session
	case incremental:
		req.SessionID, req.SessionEpoch = s.id, s.epoch
	default:
		req.SessionID, req.SessionEpoch = s.id, 0 // INITIAL: full, closes s.id
	}
	round.full = !incremental
	for _, tp := range ready {
		p := round.params[tp]
		if incremental {
			if old, ok := s.parts[tp]; ok && old.topicID == p.topicID && sameParams(old.req, p.req) {
				continue
			}
		}
		n := len(req.Topics)
		if n == 0 || req.Topics[n-1].Topic != p.topic {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = p.topic, p.topicID
			req.Topics = append(req.Topics, rt)
			n++
		}
		req.Topics[n-1].Partitions = append(req.Topics[n-1].Partitions, p.req)
	}
	if !incremental {
		return
	}
	forgotten := map[TopicPartition]int{} // topic -> index in ForgottenTopics, keyed by name
	for tp, old := range s.parts {
		if _, ok := round.params[tp]; ok {
			continue
		}
		k := TopicPartition{Topic: tp.Topic}
		i, ok := forgotten[k]
		if !ok {
			i = len(req.ForgottenTopics)
			forgotten[k] = i
			ft := kmsg.NewFetchRequestForgottenTopic()
			ft.Topic, ft.TopicID = old.topic, old.topicID
			req.ForgottenTopics = append(req.ForgottenTopics, ft)
		}
		req.ForgottenTopics[i].Partitions = append(req.ForgottenTopics[i].Partitions, tp.Partition)
	}
}

// failed: the request got no answer; the next one is full, closing the
// session (FetchSessionHandler.handleError).
func (s *fetchSession) failed() { s.epoch = 0 }

// answered moves the session on with a response to round; false when the
// response is a session error (the partitions are then not processed and
// the next request is full, as FetchSessionHandler.handleResponse).
func (s *fetchSession) answered(round *fetchRound, resp *kmsg.FetchResponse, logger *slog.Logger) bool {
	if round.req.SessionEpoch == -1 {
		return true // sessions off
	}
	switch err := kerr.ErrorForCode(resp.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.FetchSessionIDNotFound):
		logger.Debug("replica fetch session lost; starting a new one", "session", round.req.SessionID, "err", err)
		s.id, s.epoch, s.parts = 0, 0, nil
		return false
	case errors.Is(err, kerr.InvalidFetchSessionEpoch), errors.Is(err, kerr.FetchSessionTopicIDError):
		logger.Info("replica fetch session refused; starting a new one", "session", round.req.SessionID, "epoch", round.req.SessionEpoch, "err", err)
		s.epoch, s.parts = 0, nil
		return false
	default:
		s.epoch = 0
		return true // process reports it
	}
	if round.full {
		if resp.SessionID != 0 && resp.SessionID != s.id {
			logger.Debug("replica fetch session created", "session", resp.SessionID, "partitions", len(round.params))
		}
		s.id = resp.SessionID
		s.epoch = 0
		if s.id != 0 {
			s.epoch = 1
		}
	} else if s.epoch == math.MaxInt32 {
		s.epoch = 1 // FetchMetadata.nextEpoch wraps to 1
	} else {
		s.epoch++
	}
	s.parts = round.params
	return true
}
