package metadata

import (
	"fmt"
	"maps"
	"slices"
)

// Empty returns the image before any record.
func Empty(clusterID string) *Image {
	return &Image{
		ClusterID:     clusterID,
		Offset:        -1,
		ControllerID:  -1,
		Brokers:       map[int32]Broker{},
		Topics:        map[string]*Topic{},
		TopicsByID:    map[UUID]*Topic{},
		BrokerConfigs: map[string]map[string]string{},
	}
}

// Apply returns the image after recs, the first of which is at offset
// im.Offset+1. im is not modified. An inconsistent record (a partition of
// an unknown topic, ...) is an error: the log is corrupt.
func (im *Image) Apply(recs []Record) (*Image, error) {
	return im.applyAt(im.Offset+int64(len(recs)), recs, false)
}

// applyAt applies recs, which end at offset end (the image's Offset
// afterwards). A registration among them gets broker epoch end (one
// entry), or its own offset when recordOffsets (a LocalLog replay, one
// offset per record: the controller commits a registration alone, so
// both agree).
func (im *Image) applyAt(end int64, recs []Record, recordOffsets bool) (*Image, error) {
	next := *im
	b := builder{Image: &next, end: end}
	for i := range recs {
		if recordOffsets {
			b.end = im.Offset + 1 + int64(i)
		}
		if err := b.apply(&recs[i]); err != nil {
			return nil, fmt.Errorf("metadata: apply record %d (%s): %w", im.Offset+1+int64(i), recs[i].Type, err)
		}
	}
	next.Offset = end
	return &next, nil
}

// builder copies a map or topic of the image the first time it changes.
type builder struct {
	*Image
	// end is the offset the applied records end at (the broker epoch of
	// a registration).
	end                                        int64
	brokersCopied, topicsCopied, configsCopied bool
	topicCopied                                map[UUID]bool
	// resourceCopied marks the BrokerConfigs resources already copied.
	resourceCopied map[string]bool
}

func (b *builder) cowBrokers() {
	if !b.brokersCopied {
		b.Brokers = maps.Clone(b.Brokers)
		b.brokersCopied = true
	}
}

func (b *builder) cowTopics() {
	if !b.topicsCopied {
		b.Topics = maps.Clone(b.Topics)
		b.TopicsByID = maps.Clone(b.TopicsByID)
		b.topicsCopied = true
		b.topicCopied = map[UUID]bool{}
	}
}

// topic returns a private copy of topic id.
func (b *builder) topic(id UUID) (*Topic, error) {
	b.cowTopics()
	t, ok := b.TopicsByID[id]
	if !ok {
		return nil, fmt.Errorf("unknown topic id %x", id)
	}
	if !b.topicCopied[id] {
		c := *t
		c.Partitions = slices.Clone(t.Partitions)
		c.Configs = maps.Clone(t.Configs)
		t = &c
		b.TopicsByID[id] = t
		b.Topics[t.Name] = t
		b.topicCopied[id] = true
	}
	return t, nil
}

func (b *builder) apply(r *Record) error {
	switch r.Type {
	case TypeRegisterBroker:
		x := r.RegisterBroker
		if x == nil {
			return errMissing
		}
		b.cowBrokers()
		epoch := b.end
		if x.BrokerEpoch != nil {
			epoch = *x.BrokerEpoch
		}
		b.Brokers[x.BrokerID] = Broker{ID: x.BrokerID, Rack: x.Rack, Endpoints: slices.Clone(x.Endpoints), Fenced: x.Fenced,
			Epoch: epoch, InControlledShutdown: x.InControlledShutdown, IncarnationID: x.IncarnationID}
	case TypeBrokerChange:
		x := r.BrokerChange
		if x == nil {
			return errMissing
		}
		br, ok := b.Brokers[x.BrokerID]
		if !ok {
			return fmt.Errorf("change of unregistered broker %d", x.BrokerID)
		}
		b.cowBrokers()
		if x.Fenced != nil {
			br.Fenced = *x.Fenced
		}
		if x.InControlledShutdown != nil {
			br.InControlledShutdown = *x.InControlledShutdown
		}
		b.Brokers[x.BrokerID] = br
	case TypeUnregisterBroker:
		x := r.UnregisterBroker
		if x == nil {
			return errMissing
		}
		br, ok := b.Brokers[x.BrokerID]
		if !ok {
			return fmt.Errorf("unregistration of unregistered broker %d", x.BrokerID)
		}
		if br.Epoch != x.BrokerEpoch {
			return fmt.Errorf("unregistration of broker %d at epoch %d, registered at %d", x.BrokerID, x.BrokerEpoch, br.Epoch)
		}
		b.cowBrokers()
		delete(b.Brokers, x.BrokerID)
	case TypeTopic:
		x := r.Topic
		if x == nil {
			return errMissing
		}
		b.cowTopics()
		if _, ok := b.Topics[x.Name]; ok {
			return fmt.Errorf("topic %q exists", x.Name)
		}
		t := &Topic{Name: x.Name, ID: x.TopicID, Configs: map[string]string{}}
		b.Topics[x.Name] = t
		b.TopicsByID[x.TopicID] = t
		b.topicCopied[x.TopicID] = true
	case TypePartition:
		x := r.Partition
		if x == nil {
			return errMissing
		}
		t, err := b.topic(x.TopicID)
		if err != nil {
			return err
		}
		if int(x.PartitionID) != len(t.Partitions) {
			return fmt.Errorf("partition %d of %s out of sequence", x.PartitionID, t.Name)
		}
		t.Partitions = append(t.Partitions, Partition{
			ID: x.PartitionID, Replicas: slices.Clone(x.Replicas), ISR: slices.Clone(x.ISR),
			Leader: x.Leader, LeaderEpoch: x.LeaderEpoch, PartitionEpoch: x.PartitionEpoch,
			AddingReplicas: nonEmpty(x.AddingReplicas), RemovingReplicas: nonEmpty(x.RemovingReplicas),
		})
	case TypePartitionChange:
		x := r.PartitionChange
		if x == nil {
			return errMissing
		}
		t, err := b.topic(x.TopicID)
		if err != nil {
			return err
		}
		if x.PartitionID < 0 || int(x.PartitionID) >= len(t.Partitions) {
			return fmt.Errorf("unknown partition %d of %s", x.PartitionID, t.Name)
		}
		if x.ISR != nil && len(x.ISR) == 0 {
			return fmt.Errorf("empty ISR for partition %d of %s", x.PartitionID, t.Name)
		}
		p := &t.Partitions[x.PartitionID]
		if x.Leader != nil && *x.Leader != p.Leader {
			p.Leader = *x.Leader
			p.LeaderEpoch++
		}
		if x.ISR != nil {
			p.ISR = slices.Clone(x.ISR)
		}
		if x.Replicas != nil {
			p.Replicas = slices.Clone(x.Replicas)
		}
		if x.AddingReplicas != nil {
			p.AddingReplicas = nonEmpty(*x.AddingReplicas)
		}
		if x.RemovingReplicas != nil {
			p.RemovingReplicas = nonEmpty(*x.RemovingReplicas)
		}
		p.PartitionEpoch++
	case TypeConfig:
		x := r.Config
		if x == nil {
			return errMissing
		}
		switch x.ResourceType {
		case ResourceTopic:
			b.cowTopics()
			old, ok := b.Topics[x.ResourceName]
			if !ok {
				return fmt.Errorf("config for unknown topic %q", x.ResourceName)
			}
			t, _ := b.topic(old.ID)
			setOrDelete(t.Configs, x.Name, x.Value)
		case ResourceBroker:
			if !b.configsCopied {
				b.BrokerConfigs = maps.Clone(b.BrokerConfigs)
				b.configsCopied = true
				b.resourceCopied = map[string]bool{}
			}
			if !b.resourceCopied[x.ResourceName] {
				m := maps.Clone(b.BrokerConfigs[x.ResourceName])
				if m == nil {
					m = map[string]string{}
				}
				b.BrokerConfigs[x.ResourceName] = m
				b.resourceCopied[x.ResourceName] = true
			}
			setOrDelete(b.BrokerConfigs[x.ResourceName], x.Name, x.Value)
			if len(b.BrokerConfigs[x.ResourceName]) == 0 {
				delete(b.BrokerConfigs, x.ResourceName)
				delete(b.resourceCopied, x.ResourceName)
			}
		default:
			return fmt.Errorf("unknown config resource type %d", x.ResourceType)
		}
	case TypeRemoveTopic:
		x := r.RemoveTopic
		if x == nil {
			return errMissing
		}
		b.cowTopics()
		t, ok := b.TopicsByID[x.TopicID]
		if !ok {
			return fmt.Errorf("unknown topic id %x", x.TopicID)
		}
		delete(b.TopicsByID, x.TopicID)
		delete(b.Topics, t.Name)
	case TypeProducerIDs:
		x := r.ProducerIDs
		if x == nil {
			return errMissing
		}
		if x.NextProducerID < b.NextProducerID {
			return fmt.Errorf("producer ids go backwards: %d < %d", x.NextProducerID, b.NextProducerID)
		}
		b.NextProducerID = x.NextProducerID
	default:
		return fmt.Errorf("unknown record type %q", r.Type)
	}
	return nil
}

var errMissing = fmt.Errorf("record body missing")

// nonEmpty is a copy of s, nil when s is empty: an image holds no empty
// reassignment lists, so images built by other record sequences compare
// equal (SameState).
func nonEmpty(s []int32) []int32 {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func setOrDelete(m map[string]string, k string, v *string) {
	if v == nil {
		delete(m, k)
	} else {
		m[k] = *v
	}
}
