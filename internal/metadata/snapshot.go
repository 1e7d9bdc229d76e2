package metadata

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
)

// ApplyEntry returns the image after one entry of the replicated log:
// recs applied as Apply does, with Offset set to offset, the entry's
// index (a raft log commits one Append as one entry).
func (im *Image) ApplyEntry(offset int64, recs []Record) (*Image, error) {
	return im.applyAt(offset, recs, false)
}

// Records returns records that rebuild im from Empty: a KRaft-style
// snapshot is the image written as records. Empty(im.ClusterID).Apply of
// them holds the same state (SameState), whatever records built im.
// The order is deterministic (ids and names sorted).
func (im *Image) Records() []Record {
	var recs []Record
	for _, res := range slices.Sorted(maps.Keys(im.BrokerConfigs)) {
		for _, name := range slices.Sorted(maps.Keys(im.BrokerConfigs[res])) {
			v := im.BrokerConfigs[res][name]
			recs = append(recs, Record{Type: TypeConfig, Config: &ConfigRecord{ResourceType: ResourceBroker, ResourceName: res, Name: name, Value: &v}})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(im.Brokers)) {
		b := im.Brokers[id]
		epoch := b.Epoch
		recs = append(recs, Record{Type: TypeRegisterBroker, RegisterBroker: &RegisterBrokerRecord{
			BrokerID: b.ID, Rack: b.Rack, Endpoints: slices.Clone(b.Endpoints), Fenced: b.Fenced,
			BrokerEpoch: &epoch, InControlledShutdown: b.InControlledShutdown, IncarnationID: b.IncarnationID,
		}})
	}
	topics := slices.SortedFunc(maps.Values(im.Topics), func(a, b *Topic) int { return cmp.Compare(a.Name, b.Name) })
	for _, t := range topics {
		recs = append(recs, Record{Type: TypeTopic, Topic: &TopicRecord{Name: t.Name, TopicID: t.ID}})
		for _, p := range t.Partitions {
			recs = append(recs, Record{Type: TypePartition, Partition: &PartitionRecord{
				TopicID: t.ID, PartitionID: p.ID, Replicas: slices.Clone(p.Replicas), ISR: slices.Clone(p.ISR),
				Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
				AddingReplicas: slices.Clone(p.AddingReplicas), RemovingReplicas: slices.Clone(p.RemovingReplicas),
			}})
		}
		for _, name := range slices.Sorted(maps.Keys(t.Configs)) {
			v := t.Configs[name]
			recs = append(recs, Record{Type: TypeConfig, Config: &ConfigRecord{ResourceType: ResourceTopic, ResourceName: t.Name, Name: name, Value: &v}})
		}
	}
	if im.NextProducerID != 0 {
		recs = append(recs, Record{Type: TypeProducerIDs, ProducerIDs: &ProducerIDsRecord{BrokerID: -1, NextProducerID: im.NextProducerID}})
	}
	return recs
}

// SameState reports whether im and o hold the same metadata, ignoring
// Offset and ControllerID (which say where in the log and under which
// leader an image was built, not what it holds).
func (im *Image) SameState(o *Image) bool {
	a, b := *im, *o
	a.Offset, b.Offset = 0, 0
	a.ControllerID, b.ControllerID = 0, 0
	return reflect.DeepEqual(&a, &b)
}

// sameStateButBrokerEpochs is SameState ignoring the brokers' epochs,
// which depend on how records were grouped into entries (a LocalLog
// imported as one raft entry).
func sameStateButBrokerEpochs(a, b *Image) bool {
	strip := func(im *Image) *Image {
		c := *im
		c.Brokers = maps.Clone(im.Brokers)
		for id, br := range c.Brokers {
			br.Epoch = 0
			c.Brokers[id] = br
		}
		return &c
	}
	return strip(a).SameState(strip(b))
}

// Replicated log payloads. A raft entry's data (inside raft's own
// envelope) is one Append:
//
//	+----------------+----------------------------+
//	| version u8 = 1 | records, a JSON array       |
//	+----------------+----------------------------+
//
// and a snapshot's data is the image written as records:
//
//	+----------------+-------------------+----------------------------+
//	| version u8 = 1 | image offset i64BE | Image.Records, a JSON array |
//	+----------------+-------------------+----------------------------+
//
// JSON as in LocalLog entries; the version byte leaves room for a binary
// record format later. The image offset is the index of the last entry
// applied to the image (at or below the raft snapshot index: raft's own
// empty entries are not applied).
const payloadVersion = 1

// EncodeEntry encodes recs as a replicated log entry.
func EncodeEntry(recs []Record) ([]byte, error) {
	b, err := json.Marshal(recs)
	if err != nil {
		return nil, fmt.Errorf("metadata: encode entry: %w", err)
	}
	return append([]byte{payloadVersion}, b...), nil
}

// DecodeEntry decodes an entry written by EncodeEntry. Damage is
// ErrCorrupt.
func DecodeEntry(b []byte) ([]Record, error) {
	if len(b) < 1 || b[0] != payloadVersion {
		return nil, fmt.Errorf("%w: entry of %d bytes has no version %d header", ErrCorrupt, len(b), payloadVersion)
	}
	var recs []Record
	if err := json.Unmarshal(b[1:], &recs); err != nil {
		return nil, fmt.Errorf("%w: entry: %v", ErrCorrupt, err)
	}
	return recs, nil
}

// EncodeSnapshot writes im as snapshot bytes.
func EncodeSnapshot(im *Image) ([]byte, error) {
	b, err := json.Marshal(im.Records())
	if err != nil {
		return nil, fmt.Errorf("metadata: encode snapshot: %w", err)
	}
	out := make([]byte, 9, 9+len(b))
	out[0] = payloadVersion
	binary.BigEndian.PutUint64(out[1:9], uint64(im.Offset))
	return append(out, b...), nil
}

// DecodeSnapshot rebuilds the image in snapshot bytes for cluster
// clusterID. ControllerID is -1: the caller knows the leader. Damage, or
// records that do not rebuild an image, is ErrCorrupt.
func DecodeSnapshot(clusterID string, b []byte) (*Image, error) {
	if len(b) < 9 || b[0] != payloadVersion {
		return nil, fmt.Errorf("%w: snapshot of %d bytes has no version %d header", ErrCorrupt, len(b), payloadVersion)
	}
	off := int64(binary.BigEndian.Uint64(b[1:9]))
	if off < -1 {
		return nil, fmt.Errorf("%w: snapshot offset %d", ErrCorrupt, off)
	}
	var recs []Record
	if err := json.Unmarshal(b[9:], &recs); err != nil {
		return nil, fmt.Errorf("%w: snapshot: %v", ErrCorrupt, err)
	}
	im, err := Empty(clusterID).ApplyEntry(off, recs)
	if err != nil {
		return nil, fmt.Errorf("%w: snapshot: %v", ErrCorrupt, err)
	}
	return im, nil
}
