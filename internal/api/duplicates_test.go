package api_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAPIDuplicatesAnsweredOnce: requests that list one partition, group,
// resource or id many times get one answer for it, so a small request
// cannot multiply the response (ListOffsets answers a duplicated
// partition INVALID_REQUEST, as Kafka).
func TestAPIDuplicatesAnsweredOnce(t *testing.T) {
	n := startNode(t)
	n.createTopic("dups", 2, nil)
	c := n.raw()
	c.do(produceReq(9, "dups", 0, batch(t, 3, "d", time.Now().UnixMilli())))
	const times = 2000

	t.Run("ListOffsets", func(t *testing.T) {
		c.t = t
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = 7
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "dups"
		for i := 0; i < times; i++ {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = 0, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		once := kmsg.NewListOffsetsRequestTopicPartition()
		once.Partition, once.Timestamp = 1, -1
		rt.Partitions = append(rt.Partitions, once)
		req.Topics = append(req.Topics, rt)
		resp := c.do(req).(*kmsg.ListOffsetsResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
			t.Fatalf("%d topics answered (want 1 with 2 partitions)", len(resp.Topics))
		}
		p0, p1 := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
		if p0.Partition != 0 || p0.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("duplicated partition: %d %v", p0.Partition, kerr.ErrorForCode(p0.ErrorCode))
		}
		if p1.Partition != 1 || p1.ErrorCode != 0 || p1.Offset != 0 {
			t.Fatalf("single partition: %d %v offset %d", p1.Partition, kerr.ErrorForCode(p1.ErrorCode), p1.Offset)
		}
	})

	t.Run("DescribeConfigs", func(t *testing.T) {
		c.t = t
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Version = 4
		req.IncludeDocumentation = true
		for i := 0; i < times; i++ {
			r := kmsg.NewDescribeConfigsRequestResource()
			r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "dups"
			req.Resources = append(req.Resources, r)
		}
		last := kmsg.NewDescribeConfigsRequestResource()
		last.ResourceType, last.ResourceName = kmsg.ConfigResourceTypeTopic, "dups"
		last.ConfigNames = []string{"retention.ms"}
		req.Resources = append(req.Resources, last)
		resp := c.do(req).(*kmsg.DescribeConfigsResponse)
		if len(resp.Resources) != 1 || len(resp.Resources[0].Configs) != 1 || resp.Resources[0].Configs[0].Name != "retention.ms" {
			t.Fatalf("%d resources answered (want 1, with the last mention's one config)", len(resp.Resources))
		}
	})

	t.Run("OffsetFetch", func(t *testing.T) {
		c.t = t
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.Version = 3
		fc.CoordinatorKey = "g"
		if r := c.do(fc).(*kmsg.FindCoordinatorResponse); r.ErrorCode != 0 {
			t.Fatalf("find coordinator: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		for _, version := range []int16{7, 8} {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Version = version
			parts := make([]int32, times)
			if version < 8 {
				req.Group = "g"
				for i := 0; i < 2; i++ {
					rt := kmsg.NewOffsetFetchRequestTopic()
					rt.Topic, rt.Partitions = "dups", parts
					req.Topics = append(req.Topics, rt)
				}
			} else {
				for i := 0; i < 3; i++ {
					g := kmsg.NewOffsetFetchRequestGroup()
					g.Group = "g"
					rt := kmsg.NewOffsetFetchRequestGroupTopic()
					rt.Topic, rt.Partitions = "dups", parts
					g.Topics = append(g.Topics, rt)
					req.Groups = append(req.Groups, g)
				}
			}
			resp := c.do(req).(*kmsg.OffsetFetchResponse)
			topics := resp.Topics
			if version >= 8 {
				if len(resp.Groups) != 1 {
					t.Fatalf("v%d: %d groups answered", version, len(resp.Groups))
				}
				if resp.Groups[0].ErrorCode != 0 || len(resp.Groups[0].Topics) != 1 || len(resp.Groups[0].Topics[0].Partitions) != 1 {
					t.Fatalf("v%d: %+v", version, resp.Groups[0])
				}
				continue
			}
			if resp.ErrorCode != 0 || len(topics) != 1 || len(topics[0].Partitions) != 1 {
				t.Fatalf("v%d: error %v, %d topics", version, kerr.ErrorForCode(resp.ErrorCode), len(topics))
			}
		}
	})

	t.Run("DescribeGroups", func(t *testing.T) {
		c.t = t
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Version = 5
		for i := 0; i < times; i++ {
			req.Groups = append(req.Groups, "g")
		}
		resp := c.do(req).(*kmsg.DescribeGroupsResponse)
		if len(resp.Groups) != 1 {
			t.Fatalf("%d groups answered", len(resp.Groups))
		}
	})
}
