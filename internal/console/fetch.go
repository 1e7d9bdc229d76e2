package console

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Bounds of the message browser and of the lag-in-seconds peeks.
const (
	// defaultBrowseRecords and maxBrowseRecords: records shown per page
	// (the n query parameter is clamped to the maximum).
	defaultBrowseRecords = 20
	maxBrowseRecords     = 100
	// maxBrowseFetchBytes is the byte budget of one browser page: at most
	// this much record data is read from the broker, over at most
	// maxBrowseFetches Fetch requests.
	maxBrowseFetchBytes = 1 << 20
	maxBrowseFetches    = 4
	// maxShownBytes of a key, value or header value are shown; the rest is
	// cut with a note giving the full length.
	maxShownBytes = 1024
	// maxHeadersShown per record.
	maxHeadersShown = 16
	// peekPartitionBytes is the Fetch partition max bytes of a lag peek
	// (the broker still returns a first batch that is larger, KIP-74);
	// peekFetchBytes bounds the whole response; maxPeekPartitions bounds
	// the partitions peeked for one group (those with the largest lag).
	peekPartitionBytes = 16 << 10
	peekFetchBytes     = 1 << 20
	maxPeekPartitions  = 64
)

// fetchTarget is one partition to read from an offset.
type fetchTarget struct {
	topic     string
	topicID   [16]byte
	partition int32
	offset    int64
}

// fetched is one partition of a Fetch response, decoded.
type fetched struct {
	kgo.FetchPartition
	// next is the offset after the last batch read (records, control
	// batches and aborted records included).
	next int64
}

// fetchFrom sends one sessionless, non-waiting Fetch (read_uncommitted) to
// broker leader for targets and decodes the records with kgo's own batch
// parser (decompression included). The result is keyed by partition.
func (c *Console) fetchFrom(ctx context.Context, leader int32, targets []fetchTarget, partitionBytes, totalBytes int32) (map[kadm.Partition]fetched, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = totalBytes
	req.SessionID = 0
	req.SessionEpoch = -1
	byTopic := map[string]int{}
	for _, t := range targets {
		i, ok := byTopic[t.topic]
		if !ok {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = t.topic, t.topicID
			req.Topics = append(req.Topics, rt)
			i = len(req.Topics) - 1
			byTopic[t.topic] = i
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = t.partition, t.offset, partitionBytes
		rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	kresp, err := c.cl.Broker(int(leader)).Request(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	offsets := map[kadm.Partition]int64{}
	names := map[[16]byte]string{}
	for _, t := range targets {
		offsets[kadm.Partition{Topic: t.topic, Partition: t.partition}] = t.offset
		names[t.topicID] = t.topic
	}
	out := map[kadm.Partition]fetched{}
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		name := rt.Topic
		if name == "" {
			name = names[rt.TopicID]
		}
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			key := kadm.Partition{Topic: name, Partition: rp.Partition}
			off, ok := offsets[key]
			if !ok {
				continue
			}
			out[key] = c.decode(rp, name, off)
		}
	}
	return out, nil
}

// decode parses one partition of a Fetch response from offset off with
// kgo's batch parser (CRC checks, decompression bounded by
// maxDecompressedBatchBytes, control batches dropped).
func (c *Console) decode(rp *kmsg.FetchResponseTopicPartition, topic string, off int64) fetched {
	fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
		Offset: off, Topic: topic, Partition: rp.Partition,
	}, rp, c.decompressor, nil)
	return fetched{FetchPartition: fp, next: max(next, off)}
}

// browse reads up to v.N records of one partition from offset from (-1:
// the last v.N below the high watermark) within the byte budget.
func (c *Console) browse(ctx context.Context, v *messagesView, from int64) error {
	md, err := c.adm.Metadata(ctx, v.Topic)
	if err != nil {
		return err
	}
	t, ok := md.Topics[v.Topic]
	if !ok || t.Err != nil {
		return fmt.Errorf("%w: topic %q", ErrNotFound, v.Topic)
	}
	p, ok := t.Partitions[v.Partition]
	if !ok {
		return fmt.Errorf("%w: partition %d of topic %q", ErrNotFound, v.Partition, v.Topic)
	}
	if p.Leader < 0 {
		return fmt.Errorf("partition %d of topic %q has no leader", v.Partition, v.Topic)
	}
	starts, err := c.adm.ListStartOffsets(ctx, v.Topic)
	if err != nil {
		return err
	}
	ends, err := c.adm.ListEndOffsets(ctx, v.Topic)
	if err != nil {
		return err
	}
	s, _ := starts.Lookup(v.Topic, v.Partition)
	e, _ := ends.Lookup(v.Topic, v.Partition)
	if s.Err != nil {
		return s.Err
	}
	if e.Err != nil {
		return e.Err
	}
	v.LogStartOffset, v.HighWatermark = s.Offset, e.Offset
	if from < 0 {
		from = v.HighWatermark - int64(v.N)
	}
	from = max(min(from, v.HighWatermark), v.LogStartOffset)
	v.From = from
	base := url.URL{Path: "/topics/" + url.PathEscape(v.Topic) + "/partitions/" + strconv.Itoa(int(v.Partition))}
	link := func(off int64) string {
		u := base
		u.RawQuery = url.Values{"offset": {strconv.FormatInt(off, 10)}, "n": {strconv.Itoa(v.N)}}.Encode()
		return u.String()
	}
	if from > v.LogStartOffset {
		v.Older = link(max(from-int64(v.N), v.LogStartOffset))
	}

	next, budget := from, int64(maxBrowseFetchBytes)
	for range maxBrowseFetches {
		if len(v.Records) >= v.N || next >= v.HighWatermark || budget <= 0 {
			break
		}
		target := fetchTarget{topic: v.Topic, topicID: t.ID, partition: v.Partition, offset: next}
		res, err := c.fetchFrom(ctx, p.Leader, []fetchTarget{target}, int32(budget), int32(budget))
		if err != nil {
			return err
		}
		fp := res[kadm.Partition{Topic: v.Topic, Partition: v.Partition}]
		if fp.Err != nil {
			return fp.Err
		}
		if fp.next <= next && len(fp.Records) == 0 {
			break // nothing read: the byte budget is too small for the next batch
		}
		stopped := false
		for _, rec := range fp.Records {
			if len(v.Records) >= v.N || rec.Offset >= v.HighWatermark {
				stopped = true
				break
			}
			budget -= int64(len(rec.Key) + len(rec.Value))
			v.Records = append(v.Records, newRecordRow(rec))
			next = rec.Offset + 1
		}
		if !stopped {
			// Past control batches and aborted records too.
			next = max(next, fp.next)
		}
	}
	v.Truncated = len(v.Records) < v.N && next < v.HighWatermark
	if next < v.HighWatermark {
		v.Newer = link(next)
	}
	return nil
}

func newRecordRow(rec *kgo.Record) recordRow {
	row := recordRow{Offset: rec.Offset, Timestamp: formatTimestamp(rec.Timestamp), Key: show(rec.Key), Value: show(rec.Value)}
	if rec.Key == nil {
		row.Key.Null = true
	}
	if rec.Value == nil {
		row.Value.Null = true
	}
	for i, h := range rec.Headers {
		if i == maxHeadersShown {
			row.Headers = append(row.Headers, headerRow{Key: fmt.Sprintf("… %d more headers", len(rec.Headers)-i)})
			break
		}
		row.Headers = append(row.Headers, headerRow{Key: cut(h.Key), Value: show(h.Value)})
	}
	return row
}

// shown is a key, value or header value as the browser displays it: text
// when it is printable UTF-8, else hex; at most maxShownBytes of it.
type shown struct {
	Text string
	Hex  bool
	Null bool
	Len  int  // full length in bytes
	Cut  bool // only the first maxShownBytes are shown
}

func show(b []byte) shown {
	s := shown{Len: len(b)}
	if len(b) > maxShownBytes {
		b, s.Cut = b[:maxShownBytes], true
	}
	if printable(b, s.Cut) {
		s.Text = string(b)
		return s
	}
	s.Hex = true
	const digits = "0123456789abcdef"
	out := make([]byte, 0, len(b)*3)
	for i, c := range b {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, digits[c>>4], digits[c&0xf])
	}
	s.Text = string(out)
	return s
}

// printable reports whether b is UTF-8 text without control characters
// other than tab and newlines. When cut, a rune split at the end is
// allowed.
func printable(b []byte, cut bool) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			if cut && !utf8.FullRune(b) {
				return true
			}
			return false
		}
		if r != '\t' && r != '\n' && r != '\r' && !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return false
		}
		b = b[n:]
	}
	return true
}

// cut bounds a header key (a string) to maxShownBytes.
func cut(s string) string {
	if len(s) <= maxShownBytes {
		return s
	}
	return s[:maxShownBytes] + "…"
}

// lagSeconds computes, for each partition of a group that lags, how long
// ago the record at its committed offset was written: one Fetch per
// leader, at most maxPeekPartitions partitions (the largest lags), each
// bounded to peekPartitionBytes. A partition that is caught up has 0.
// Partitions it could not read are absent.
func (c *Console) lagSeconds(ctx context.Context, lag kadm.GroupLag) map[kadm.Partition]time.Duration {
	out := map[kadm.Partition]time.Duration{}
	var lagging []kadm.GroupMemberLag
	var topics []string
	seen := map[string]bool{}
	for _, ml := range lag.Sorted() {
		key := kadm.Partition{Topic: ml.Topic, Partition: ml.Partition}
		switch {
		case ml.Err != nil || ml.Commit.At < 0 || ml.Lag < 0:
		case ml.Lag == 0:
			out[key] = 0
		default:
			lagging = append(lagging, ml)
			if !seen[ml.Topic] {
				seen[ml.Topic] = true
				topics = append(topics, ml.Topic)
			}
		}
	}
	if len(lagging) == 0 {
		return out
	}
	if len(lagging) > maxPeekPartitions {
		sortByLagDesc(lagging)
		lagging = lagging[:maxPeekPartitions]
	}
	md, err := c.adm.Metadata(ctx, topics...)
	if err != nil {
		return out
	}
	byLeader := map[int32][]fetchTarget{}
	for _, ml := range lagging {
		t, ok := md.Topics[ml.Topic]
		if !ok {
			continue
		}
		p, ok := t.Partitions[ml.Partition]
		if !ok || p.Leader < 0 {
			continue
		}
		byLeader[p.Leader] = append(byLeader[p.Leader], fetchTarget{topic: ml.Topic, topicID: t.ID, partition: ml.Partition, offset: ml.Commit.At})
	}
	now := c.opts.Now()
	for leader, targets := range byLeader {
		res, err := c.fetchFrom(ctx, leader, targets, peekPartitionBytes, peekFetchBytes)
		if err != nil {
			continue
		}
		for key, fp := range res {
			if fp.Err != nil || len(fp.Records) == 0 {
				continue
			}
			out[key] = max(now.Sub(fp.Records[0].Timestamp), 0)
		}
	}
	return out
}

func sortByLagDesc(ls []kadm.GroupMemberLag) {
	slices.SortStableFunc(ls, func(a, b kadm.GroupMemberLag) int { return cmp.Compare(b.Lag, a.Lag) })
}
