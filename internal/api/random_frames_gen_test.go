package api_test

// This file generates the malformed frames of random_frames_test.go
// (TestRandomFramesKeepBrokerServing and FuzzBrokerFrames): requests
// that are valid to begin with (kmsg encodes them, for every API key and
// version kmsg knows), then mutated the ways a buggy client or an
// attacker would: bit flips, truncation, size prefixes that lie, wrong
// keys and versions, huge or negative array counts and lengths, and
// record batches that are duplicated, garbage, or garbage under a valid
// CRC.
//
// Every request names only the topics, groups and transactional ids
// below (rf-junk-*, rf-absent, rf-g, rf-tx): names of the healthy side
// never appear in a garbage frame, so no mutation can produce them, and
// anything that moves the healthy topics' end offsets is a broker bug.

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"math/rand/v2"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/record"
)

const (
	rfJunk    = "rf-junk-0"   // the topic garbage may legitimately write to
	rfJunkNew = "rf-junk-new" // created and deleted by garbage
	rfAbsent  = "rf-absent"   // never exists
	rfGroup   = "rf-g"
	rfTxnID   = "rf-tx"
)

var rfCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// rfGen makes frames from one seeded source: the same seed gives the same
// frames.
type rfGen struct {
	rng  *rand.Rand
	f    *kmsg.RequestFormatter
	corr int32
}

func newRFGen(seed uint64) *rfGen {
	return &rfGen{
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		f:   kmsg.NewRequestFormatter(kmsg.FormatterClientID("rf-garbage")),
	}
}

// validBatch builds a small magic-v2 batch, sometimes compressed,
// sometimes idempotent.
func (g *rfGen) validBatch() []byte {
	n := 1 + g.rng.IntN(5)
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Timestamp: 1_700_000_000_000 + int64(i), Key: []byte{'k', byte('0' + i)}, Value: g.bytes(g.rng.IntN(64))}
	}
	o := record.BuildOptions{}
	switch g.rng.IntN(6) {
	case 0:
		o.Compression = record.CompressionGzip
	case 1:
		o.Compression = record.CompressionZstd
	case 2:
		o.Compression = record.CompressionLZ4
	case 3:
		o.Compression = record.CompressionSnappy
	}
	if g.rng.IntN(4) == 0 {
		o.Idempotent, o.ProducerID, o.ProducerEpoch, o.BaseSequence = true, g.rng.Int64N(4), 0, g.rng.Int32N(3)
	}
	b, err := record.Build(o, recs)
	if err != nil {
		panic(err) // Build of our own records cannot fail
	}
	return b
}

func (g *rfGen) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return b
}

// fixCRC recomputes the CRC of the batch at the start of b, so garbage
// inside it passes the CRC check and reaches record validation.
func rfFixCRC(b []byte) {
	if len(b) < 21 {
		return
	}
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], rfCastagnoli))
}

// records is the records field of a produce partition: valid, or one of
// the batch-level defects.
func (g *rfGen) records() []byte {
	b := g.validBatch()
	switch g.rng.IntN(10) {
	case 0, 1, 2:
		return b
	case 3: // the same batch twice (more than one batch per partition)
		return append(append([]byte(nil), b...), b...)
	case 4: // garbage
		return g.bytes(g.rng.IntN(200))
	case 5: // bit flips under a fixed CRC
		for range 1 + g.rng.IntN(4) {
			i := 21 + g.rng.IntN(len(b)-21)
			b[i] ^= 1 << g.rng.IntN(8)
		}
		rfFixCRC(b)
	case 6: // record count or last offset delta lies, CRC fixed
		binary.BigEndian.PutUint32(b[57:], uint32(g.interesting32()))
		if g.rng.IntN(2) == 0 {
			binary.BigEndian.PutUint32(b[23:], uint32(g.interesting32()))
		}
		rfFixCRC(b)
	case 7: // truncated batch
		b = b[:g.rng.IntN(len(b))]
	case 8: // magic 0/1 or unknown
		b[16] = byte(g.rng.IntN(4))
	case 9: // a valid batch followed by garbage
		b = append(b, g.bytes(1+g.rng.IntN(40))...)
	}
	return b
}

func (g *rfGen) interesting32() int32 {
	v := [...]int32{0, -1, -2, 1, 2, math.MaxInt32, math.MinInt32, 1 << 30, 0x10000, 10_001}
	return v[g.rng.IntN(len(v))]
}

// request is a valid request of a random API key and version (a random
// version kmsg can encode; the broker may not serve it).
func (g *rfGen) request() kmsg.Request {
	var req kmsg.Request
	switch g.rng.IntN(4) {
	case 0: // any key kmsg knows, with default contents
		for req == nil {
			req = kmsg.RequestForKey(int16(g.rng.IntN(kmsg.MaxKey + 1)))
		}
	default:
		req = g.populated()
	}
	req.SetVersion(int16(g.rng.IntN(int(req.MaxVersion()) + 1)))
	return req
}

// populated is a request with contents that reach deep into a handler.
func (g *rfGen) populated() kmsg.Request {
	switch g.rng.IntN(23) {
	case 0, 1, 2, 3:
		r := kmsg.NewPtrProduceRequest()
		r.Acks = [...]int16{-1, 1, 0}[g.rng.IntN(3)]
		r.TimeoutMillis = 1000
		if g.rng.IntN(8) == 0 {
			r.TransactionID = kmsg.StringPtr(rfTxnID)
		}
		t := kmsg.NewProduceRequestTopic()
		t.Topic = rfJunk
		for range 1 + g.rng.IntN(2) {
			p := kmsg.NewProduceRequestTopicPartition()
			p.Partition = int32(g.rng.IntN(2))
			p.Records = g.records()
			t.Partitions = append(t.Partitions, p)
		}
		r.Topics = append(r.Topics, t)
		return r
	case 4, 5:
		r := kmsg.NewPtrFetchRequest()
		r.ReplicaID = -1
		r.MaxWaitMillis = int32(g.rng.IntN(200))
		r.MaxBytes = 1 << 16
		r.SessionID, r.SessionEpoch = [...]int32{0, -1, 1}[g.rng.IntN(3)], [...]int32{0, -1, 1}[g.rng.IntN(3)]
		t := kmsg.NewFetchRequestTopic()
		t.Topic = rfJunk
		for range 1 + g.rng.IntN(3) {
			p := kmsg.NewFetchRequestTopicPartition()
			p.FetchOffset = g.rng.Int64N(20)
			p.PartitionMaxBytes = 1 << 15
			t.Partitions = append(t.Partitions, p)
		}
		r.Topics = append(r.Topics, t)
		return r
	case 6:
		r := kmsg.NewPtrListOffsetsRequest()
		r.ReplicaID = -1
		t := kmsg.NewListOffsetsRequestTopic()
		t.Topic = rfJunk
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Timestamp = [...]int64{-1, -2, -3, 0, 1_700_000_000_000}[g.rng.IntN(5)]
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	case 7:
		r := kmsg.NewPtrMetadataRequest()
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(rfJunk)
		r.Topics = append(r.Topics, t)
		r.AllowAutoTopicCreation = true
		return r
	case 8:
		r := kmsg.NewPtrOffsetCommitRequest()
		r.Group = rfGroup
		r.Generation = -1
		t := kmsg.NewOffsetCommitRequestTopic()
		t.Topic = rfJunk
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		p.Offset = g.rng.Int64N(10)
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	case 9:
		r := kmsg.NewPtrOffsetFetchRequest()
		r.Group = rfGroup
		g2 := kmsg.NewOffsetFetchRequestGroup()
		g2.Group = rfGroup
		r.Groups = append(r.Groups, g2)
		return r
	case 10:
		r := kmsg.NewPtrFindCoordinatorRequest()
		r.CoordinatorKey = rfGroup
		r.CoordinatorKeys = []string{rfGroup, rfTxnID}
		r.CoordinatorType = int8(g.rng.IntN(2))
		return r
	case 11:
		r := kmsg.NewPtrJoinGroupRequest()
		r.Group = rfGroup
		r.SessionTimeoutMillis = 6000
		r.RebalanceTimeoutMillis = 100
		r.ProtocolType = "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = "range"
		p.Metadata = g.bytes(g.rng.IntN(30))
		r.Protocols = append(r.Protocols, p)
		return r
	case 12:
		r := kmsg.NewPtrSyncGroupRequest()
		r.Group = rfGroup
		r.MemberID = "m"
		return r
	case 13:
		r := kmsg.NewPtrHeartbeatRequest()
		r.Group = rfGroup
		r.MemberID = "m"
		return r
	case 14:
		r := kmsg.NewPtrCreateTopicsRequest()
		r.TimeoutMillis = 1000
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic = rfJunkNew
		t.NumPartitions, t.ReplicationFactor = -1, -1
		r.Topics = append(r.Topics, t)
		return r
	case 15:
		r := kmsg.NewPtrDeleteTopicsRequest()
		r.TimeoutMillis = 1000
		r.TopicNames = []string{rfJunkNew}
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.Topic = kmsg.StringPtr(rfJunkNew)
		r.Topics = append(r.Topics, t)
		return r
	case 16:
		r := kmsg.NewPtrDeleteRecordsRequest()
		r.TimeoutMillis = 1000
		t := kmsg.NewDeleteRecordsRequestTopic()
		t.Topic = rfJunk
		p := kmsg.NewDeleteRecordsRequestTopicPartition()
		p.Offset = g.rng.Int64N(3) // keeps the junk log mostly readable
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	case 17:
		r := kmsg.NewPtrInitProducerIDRequest()
		if g.rng.IntN(2) == 0 {
			r.TransactionalID = kmsg.StringPtr(rfTxnID)
		}
		r.TransactionTimeoutMillis = 1000
		r.ProducerID, r.ProducerEpoch = -1, -1
		return r
	case 18:
		r := kmsg.NewPtrAddPartitionsToTxnRequest()
		r.TransactionalID = rfTxnID
		t := kmsg.NewAddPartitionsToTxnRequestTopic()
		t.Topic = rfJunk
		t.Partitions = []int32{0}
		r.Topics = append(r.Topics, t)
		return r
	case 19:
		r := kmsg.NewPtrEndTxnRequest()
		r.TransactionalID = rfTxnID
		r.Commit = g.rng.IntN(2) == 0
		return r
	case 20:
		r := kmsg.NewPtrIncrementalAlterConfigsRequest()
		res := kmsg.NewIncrementalAlterConfigsRequestResource()
		res.ResourceType = kmsg.ConfigResourceTypeTopic
		res.ResourceName = rfJunk
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name = "max.message.bytes"
		c.Value = kmsg.StringPtr("1000000")
		res.Configs = append(res.Configs, c)
		r.Resources = append(r.Resources, res)
		return r
	case 21:
		r := kmsg.NewPtrElectLeadersRequest()
		r.ElectionType = int8(g.rng.IntN(3)) // 2: unknown
		r.TimeoutMillis = 1000
		t := kmsg.NewElectLeadersRequestTopic()
		t.Topic = rfAbsent
		t.Partitions = []int32{0, -1}
		r.Topics = append(r.Topics, t)
		return r
	default:
		r := kmsg.NewPtrCreatePartitionsRequest()
		r.TimeoutMillis = 1000
		t := kmsg.NewCreatePartitionsRequestTopic()
		t.Topic = rfAbsent
		t.Count = 3
		r.Topics = append(r.Topics, t)
		return r
	}
}

// rfMutation names what mutate did to a frame.
type rfMutation int

const (
	rfValid     rfMutation = iota
	rfBitFlip              // body bits flipped, size kept
	rfTruncate             // body cut, size prefix fixed
	rfShort                // body cut, size prefix left: it lies
	rfSizeLie              // size prefix replaced (larger, smaller, 0, negative, huge)
	rfVersion              // api version replaced
	rfKey                  // api key replaced
	rfCount                // an int16/int32/uvarint count or length replaced
	rfInsert               // random bytes inserted or appended, size fixed
	rfRandom               // a frame of random bytes
	rfClientID             // client id length replaced
	rfMutations            // number of kinds
)

// frame is one frame as sent on the wire (size prefix included) and the
// mutations applied to it.
func (g *rfGen) frame() ([]byte, []rfMutation) {
	g.corr++
	b := g.f.AppendRequest(nil, g.request(), g.corr)
	var muts []rfMutation
	if g.rng.IntN(4) == 0 { // some valid frames, so garbage also stores data
		return b, []rfMutation{rfValid}
	}
	for range 1 + g.rng.IntN(3) {
		m := rfMutation(1 + g.rng.IntN(int(rfMutations)-1))
		b = g.mutate(b, m)
		muts = append(muts, m)
	}
	return b, muts
}

func (g *rfGen) mutate(b []byte, m rfMutation) []byte {
	setSize := func() { binary.BigEndian.PutUint32(b, uint32(len(b)-4)) }
	body := len(b) - 4
	switch m {
	case rfBitFlip:
		if body > 0 {
			for range 1 + g.rng.IntN(8) {
				b[4+g.rng.IntN(body)] ^= 1 << g.rng.IntN(8)
			}
		}
	case rfTruncate, rfShort:
		if body > 0 {
			b = b[:4+g.rng.IntN(body)]
		}
		if m == rfTruncate {
			setSize()
		}
	case rfSizeLie:
		sizes := [...]int32{int32(body) + 1 + g.rng.Int32N(64), int32(body) - 1 - g.rng.Int32N(8), 0, -1, math.MinInt32, math.MaxInt32, 1 << 20, 100 << 20}
		binary.BigEndian.PutUint32(b, uint32(sizes[g.rng.IntN(len(sizes))]))
	case rfVersion:
		if len(b) >= 8 {
			v := [...]int16{-1, math.MaxInt16, math.MinInt16, int16(g.rng.IntN(20)), int16(g.rng.Uint32())}
			binary.BigEndian.PutUint16(b[6:], uint16(v[g.rng.IntN(len(v))]))
		}
	case rfKey:
		if len(b) >= 6 {
			v := [...]int16{-1, kmsg.MaxKey + 1, math.MaxInt16, int16(g.rng.IntN(kmsg.MaxKey + 1))}
			binary.BigEndian.PutUint16(b[4:], uint16(v[g.rng.IntN(len(v))]))
		}
	case rfCount:
		if body > 14 {
			pos := 4 + 10 + g.rng.IntN(body-10) // past key, version, correlation id and client id length
			var v []byte
			switch g.rng.IntN(4) {
			case 0:
				v = binary.BigEndian.AppendUint32(nil, uint32(g.interesting32()))
			case 1:
				v = binary.BigEndian.AppendUint16(nil, uint16([...]int16{-1, -2, math.MaxInt16, math.MinInt16}[g.rng.IntN(4)]))
			case 2: // a huge compact-array or compact-string length
				v = []byte{0xff, 0xff, 0xff, 0xff, 0x0f}
			default: // a varint that never ends
				v = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
			}
			copy(b[pos:], v)
		}
	case rfInsert:
		pos := 4 + g.rng.IntN(body+1)
		ins := g.bytes(1 + g.rng.IntN(32))
		b = append(b[:pos:pos], append(ins, b[pos:]...)...)
		setSize()
	case rfRandom:
		b = g.bytes(4 + g.rng.IntN(64))
		if g.rng.IntN(2) == 0 {
			setSize()
		}
	case rfClientID:
		if len(b) >= 14 {
			binary.BigEndian.PutUint16(b[12:], uint16([...]int16{-1, -2, math.MaxInt16, int16(body)}[g.rng.IntN(4)]))
		}
	}
	return b
}
