package clients

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfluentKafkaPythonAlterConfigs drives librdkafka's AdminClient:
// alter_configs with validate_only, for real (replacing the overrides, as
// AlterConfigs does) and with a bad value, checked by describe_configs.
func TestConfluentKafkaPythonAlterConfigs(t *testing.T) {
	requirePythonModule(t, "confluent_kafka")
	script, err := filepath.Abs(filepath.Join("python", "confluent_admin_configs.py"))
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t)
	topic := topicName(t)
	run := runClient(t, 90*time.Second, nil, pythonPath, script, b.Addr, topic)
	want := []string{
		"created retention.ms=604800000(DEFAULT_CONFIG) cleanup.policy=delete(DEFAULT_CONFIG)",
		"validated retention.ms=604800000(DEFAULT_CONFIG) cleanup.policy=delete(DEFAULT_CONFIG)",
		"altered retention.ms=3600000(DYNAMIC_TOPIC_CONFIG) cleanup.policy=compact,delete(DYNAMIC_TOPIC_CONFIG)",
		"refused INVALID_CONFIG",
		"after-refusal retention.ms=3600000(DYNAMIC_TOPIC_CONFIG) cleanup.policy=compact,delete(DYNAMIC_TOPIC_CONFIG)",
	}
	got := strings.Split(strings.TrimSpace(run.Stdout), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("confluent admin output:\n%s\nwant:\n%s", run.Stdout, strings.Join(want, "\n"))
	}
}

// TestKafkaJSAdminConfigsAndDeleteRecords drives kafkajs's admin:
// alterConfigs (validateOnly, then for real), describeConfigs and
// deleteTopicRecords, whose effect fetchTopicOffsets and franz-go see.
func TestKafkaJSAdminConfigsAndDeleteRecords(t *testing.T) {
	node := requireNodeModules(t)
	script, err := filepath.Abs(filepath.Join("node", "kafkajs_client.js"))
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t)
	topic := topicName(t)
	const n = 20
	run := runClient(t, 90*time.Second, nil, node, script, "admin", b.Addr, topic, fmt.Sprint(n))
	type step struct {
		Step      string `json:"step"`
		ErrorCode int16  `json:"errorCode"`
		Name      string `json:"name"`
		Value     string `json:"value"`
		IsDefault bool   `json:"isDefault"`
		Offsets   []struct {
			Partition int32  `json:"partition"`
			High      string `json:"high"`
			Low       string `json:"low"`
		} `json:"offsets"`
	}
	steps := map[string]step{}
	for _, line := range strings.Split(strings.TrimSpace(run.Stdout), "\n") {
		var s step
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("unparsable kafkajs line %q: %v", line, err)
		}
		steps[s.Step] = s
	}
	if s := steps["alterConfigsValidateOnly"]; s.Step == "" || s.ErrorCode != 0 {
		t.Errorf("alterConfigs validateOnly: %+v", s)
	}
	if s := steps["describeAfterValidateOnly"]; s.Value != "604800000" || !s.IsDefault {
		t.Errorf("after validateOnly: %+v, want the default retention.ms", s)
	}
	if s := steps["alterConfigs"]; s.Step == "" || s.ErrorCode != 0 {
		t.Errorf("alterConfigs: %+v", s)
	}
	if s := steps["describeAfterAlter"]; s.Value != "3600000" || s.IsDefault {
		t.Errorf("after alterConfigs: %+v, want retention.ms=3600000", s)
	}
	offs := steps["deleteTopicRecords"].Offsets
	if len(offs) != 1 || offs[0].Low != fmt.Sprint(n/2) || offs[0].High != fmt.Sprint(n) {
		t.Errorf("offsets after deleteTopicRecords: %+v, want low %d high %d", offs, n/2, n)
	}
	recs := consumeAll(t, b.Addr, topic)
	if len(recs) != n/2 || recs[0].Offset != n/2 {
		t.Fatalf("consumed %d records, want %d from offset %d", len(recs), n/2, n/2)
	}
}
