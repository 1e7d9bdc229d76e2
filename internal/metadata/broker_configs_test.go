package metadata

import (
	"maps"
	"testing"
)

// TestImageBrokerConfigs: broker ConfigRecords land in the map of their
// resource ("" the cluster default, "N" broker N) without touching the
// previous image; removing a resource's last key removes the resource;
// a snapshot (Records) rebuilds the same state.
func TestImageBrokerConfigs(t *testing.T) {
	v := func(s string) *string { return &s }
	rec := func(res, name string, val *string) Record {
		return Record{Type: TypeConfig, Config: &ConfigRecord{ResourceType: ResourceBroker, ResourceName: res, Name: name, Value: val}}
	}
	im0 := Empty("c")
	im1, err := im0.Apply([]Record{rec("", "log.retention.ms", v("1000")), rec("2", "log.segment.bytes", v("4096")), rec("2", "max.connections", v("9"))})
	if err != nil {
		t.Fatal(err)
	}
	if len(im0.BrokerConfigs) != 0 {
		t.Fatalf("previous image changed: %v", im0.BrokerConfigs)
	}
	def, brk := im1.DynamicBrokerConfigs(2)
	if !maps.Equal(def, map[string]string{"log.retention.ms": "1000"}) || !maps.Equal(brk, map[string]string{"log.segment.bytes": "4096", "max.connections": "9"}) {
		t.Fatalf("default %v broker 2 %v", def, brk)
	}
	if _, other := im1.DynamicBrokerConfigs(3); other != nil {
		t.Fatalf("broker 3: %v", other)
	}
	im2, err := im1.Apply([]Record{rec("2", "log.segment.bytes", nil), rec("2", "max.connections", nil), rec("", "log.retention.ms", v("2000"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := im2.BrokerConfigs["2"]; ok {
		t.Fatalf("empty resource kept: %v", im2.BrokerConfigs)
	}
	if im1.BrokerConfigs[""]["log.retention.ms"] != "1000" || im1.BrokerConfigs["2"]["max.connections"] != "9" {
		t.Fatalf("previous image changed: %v", im1.BrokerConfigs)
	}
	for _, im := range []*Image{im1, im2} {
		back, err := Empty("c").Apply(im.Records())
		if err != nil {
			t.Fatal(err)
		}
		if !back.SameState(im) {
			t.Fatalf("snapshot of %v rebuilt %v", im.BrokerConfigs, back.BrokerConfigs)
		}
	}
}
