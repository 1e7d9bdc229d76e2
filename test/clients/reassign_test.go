package clients

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafka "github.com/segmentio/kafka-go"
)

// TestReassignmentAdminClients: sarama's and kafka-go's
// AlterPartitionReassignments and ListPartitionReassignments against one
// broker (a multi-broker move is tested in internal/server with kadm):
// a target equal to the current replicas is accepted and completes at
// once (nothing listed), an unknown broker answers
// INVALID_REPLICA_ASSIGNMENT, a cancel with nothing moving
// NO_REASSIGNMENT_IN_PROGRESS; sarama's DescribeLogDirs lists the
// partitions.
func TestReassignmentAdminClients(t *testing.T) {
	b := startBroker(t)
	topic := topicName(t)
	createTopic(t, b.Addr, topic, 2)

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = "samsa-sarama-test"
	cfg.Net.DialTimeout = 5 * time.Second
	ca, err := sarama.NewClusterAdmin([]string{b.Addr}, cfg)
	if err != nil {
		t.Fatalf("NewClusterAdmin: %v", err)
	}
	defer ca.Close()
	if err := ca.AlterPartitionReassignments(topic, [][]int32{{1}, {1}}); err != nil {
		t.Fatalf("sarama: reassign to the current replicas: %v", err)
	}
	st, err := ca.ListPartitionReassignments(topic, []int32{0, 1})
	if err != nil || len(st[topic]) != 0 {
		t.Fatalf("sarama: list: %v %v", st, err)
	}
	if err := ca.AlterPartitionReassignments(topic, [][]int32{{9}}); !errors.Is(err, sarama.ErrInvalidReplicaAssignment) {
		t.Fatalf("sarama: reassign to an unknown broker: %v", err)
	}
	if err := ca.AlterPartitionReassignments(topic, [][]int32{nil}); !errors.Is(err, sarama.ErrNoReassignmentInProgress) {
		t.Fatalf("sarama: cancel with nothing moving: %v", err)
	}
	dirs, err := ca.DescribeLogDirs([]int32{1})
	if err != nil {
		t.Fatalf("sarama: DescribeLogDirs: %v", err)
	}
	found := 0
	for _, d := range dirs[1] {
		for _, tp := range d.Topics {
			if tp.Topic == topic {
				found += len(tp.Partitions)
			}
		}
	}
	if found != 2 {
		t.Fatalf("sarama: DescribeLogDirs lists %d partitions of %s: %+v", found, topic, dirs)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, err := net.ResolveTCPAddr("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	kc := &kafka.Client{Addr: addr, Timeout: 10 * time.Second}
	resp, err := kc.AlterPartitionReassignments(ctx, &kafka.AlterPartitionReassignmentsRequest{
		Topic: topic,
		Assignments: []kafka.AlterPartitionReassignmentsRequestAssignment{
			{PartitionID: 0, BrokerIDs: []int{1}},
			{PartitionID: 1, BrokerIDs: []int{7}},
		},
		Timeout: 10 * time.Second,
	})
	if err != nil || resp.Error != nil || len(resp.PartitionResults) != 2 {
		t.Fatalf("kafka-go: reassign: %+v %v", resp, err)
	}
	for _, r := range resp.PartitionResults {
		switch {
		case r.PartitionID == 0 && r.Error != nil:
			t.Errorf("kafka-go: partition 0: %v", r.Error)
		case r.PartitionID == 1 && !errors.Is(r.Error, kafka.InvalidReplicaAssignment):
			t.Errorf("kafka-go: partition 1 to an unknown broker: %v", r.Error)
		}
	}
	lr, err := kc.ListPartitionReassignments(ctx, &kafka.ListPartitionReassignmentsRequest{
		Topics:  map[string]kafka.ListPartitionReassignmentsRequestTopic{topic: {PartitionIndexes: []int{0, 1}}},
		Timeout: 10 * time.Second,
	})
	if err != nil || lr.Error != nil || len(lr.Topics[topic].Partitions) != 0 {
		t.Fatalf("kafka-go: list: %+v %v", lr, err)
	}
}
