package cli

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTxnLive opens a transaction on a real node and looks at it with the
// three `txn` verbs, then commits it and checks the state moved on. It
// runs against Samsa and kfake; the golden files hold Samsa's output.
func TestTxnLive(t *testing.T) {
	forEachGroupTarget(t, testTxnLive)
}

func testTxnLive(t *testing.T, c *cluster) {
	samsa := strings.HasSuffix(t.Name(), "/samsa")
	samsaGolden := func(t *testing.T, name, got string) {
		t.Helper()
		if samsa {
			golden(t, name, got)
		}
	}
	c.mustRun(t, "", "topic", "create", "pay", "-p", "2", "-r", "1")

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.TransactionalID("tx-1"), kgo.DefaultProduceTopic("pay"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("a"), Partition: 0}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	samsaGolden(t, "txn_list", c.mustRun(t, "", "txn", "list"))
	samsaGolden(t, "txn_describe", maskMillis(c.mustRun(t, "", "txn", "describe", "tx-1")))
	samsaGolden(t, "txn_producers", maskMillis(c.mustRun(t, "", "txn", "producers", "pay")))

	var listed []txnListEntry
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "txn", "list", "--format", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].TransactionalID != "tx-1" || listed[0].State != "Ongoing" {
		t.Errorf("txn list = %+v", listed)
	}
	if out := c.mustRun(t, "", "txn", "list"); !strings.Contains(out, "TRANSACTIONAL-ID") || !strings.Contains(out, "tx-1") {
		t.Errorf("txn list text:\n%s", out)
	}

	var ds []txnDescription
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "txn", "describe", "tx-1", "--format", "json")), &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].State != "Ongoing" || ds[0].StartTimeMs <= 0 || len(ds[0].TopicPartitions) == 0 {
		t.Errorf("txn describe = %+v", ds)
	}

	var ps []txnProducer
	if err := json.Unmarshal([]byte(c.mustRun(t, "", "txn", "producers", "pay", "--format", "json")), &ps); err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Partition != 0 || ps[0].ProducerID != listed[0].ProducerID || ps[0].CurrentTransactionStartOffset != 0 {
		t.Errorf("txn producers = %+v", ps)
	}

	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds = nil
		if err := json.Unmarshal([]byte(c.mustRun(t, "", "txn", "describe", "tx-1", "--format", "json")), &ds); err != nil {
			t.Fatal(err)
		}
		if (ds[0].State != "Ongoing" && ds[0].State != "PrepareCommit") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Kafka (and Samsa) keep CompleteCommit; kfake goes straight to Empty.
	if st := ds[0].State; st != "CompleteCommit" && (samsa || st != "Empty") {
		t.Errorf("after commit state = %q", ds[0].State)
	}

	out, _, err := c.run(t, "", "txn", "describe", "nope", "tx-1")
	if !errors.Is(err, errReported) {
		t.Errorf("unknown id: err = %v", err)
	}
	samsaGolden(t, "txn_describe_unknown", maskMillis(out))
}

// millis matches wall-clock milliseconds (13 digits), which change per
// run; they are masked with as many characters to keep the columns.
var millis = regexp.MustCompile(`\b\d{13}\b`)

func maskMillis(s string) string { return millis.ReplaceAllString(s, "NNNNNNNNNNNNN") }
