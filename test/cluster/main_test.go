package cluster

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/internal/interbroker"
)

// rawCreateEnv, when set to "addr|topic|timeout_ms", makes the test
// binary send one CreateTopics straight to addr and print its outcome
// instead of running tests: the network-partition test runs it inside a
// node's network namespace (ip netns exec), the only place a cut-off
// node can be reached from, to time the node's answer exactly.
const rawCreateEnv = "SAMSA_TEST_RAW_CREATE"

func TestMain(m *testing.M) {
	if spec := os.Getenv(rawCreateEnv); spec != "" {
		os.Exit(rawCreate(spec))
	}
	os.Exit(m.Run())
}

// rawCreate runs the request rawCreateEnv describes and prints
// "code=N took_ms=N msg=..." (exit 0), or an error (exit 2).
func rawCreate(spec string) int {
	parts := strings.Split(spec, "|")
	if len(parts) != 3 {
		fmt.Fprintf(os.Stderr, "%s=%q: want addr|topic|timeout_ms\n", rawCreateEnv, spec)
		return 2
	}
	timeout, err := strconv.Atoi(parts[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: timeout_ms: %v\n", rawCreateEnv, err)
		return 2
	}
	c := interbroker.New(interbroker.Options{RequestTimeout: 60 * time.Second})
	defer c.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(timeout)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = parts[1], 1, 1
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	began := time.Now()
	r, err := c.Request(ctx, parts[0], req)
	took := time.Since(began)
	if err != nil {
		fmt.Fprintf(os.Stderr, "CreateTopics %s at %s after %v: %v\n", parts[1], parts[0], took, err)
		return 2
	}
	resp := r.(*kmsg.CreateTopicsResponse)
	if len(resp.Topics) != 1 {
		fmt.Fprintf(os.Stderr, "CreateTopics %s: %d topics in the answer\n", parts[1], len(resp.Topics))
		return 2
	}
	msg := ""
	if m := resp.Topics[0].ErrorMessage; m != nil {
		msg = *m
	}
	fmt.Printf("code=%d took_ms=%d msg=%s\n", resp.Topics[0].ErrorCode, took.Milliseconds(), msg)
	return 0
}

// rawCreateInNS sends one CreateTopics with timeoutMillis for topic to
// addr from inside network namespace ns (see rawCreateEnv) and returns
// the topic's error and how long the request took there.
func rawCreateInNS(ns, addr, topic string, timeoutMillis int) (*kerr.Error, time.Duration, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, 0, "", err
	}
	out, err := runInNSEnv(self, ns, 90*time.Second, []string{fmt.Sprintf("%s=%s|%s|%d", rawCreateEnv, addr, topic, timeoutMillis)})
	if err != nil {
		return nil, 0, "", fmt.Errorf("%w: %s", err, out)
	}
	var code, tookMS int
	line := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "code=") {
			line = strings.TrimSpace(l)
		}
	}
	if _, err := fmt.Sscanf(line, "code=%d took_ms=%d", &code, &tookMS); err != nil {
		return nil, 0, "", fmt.Errorf("unexpected output %q: %w", line, err)
	}
	_, msg, _ := strings.Cut(line, " msg=")
	var e *kerr.Error
	if code != 0 {
		e, _ = kerr.ErrorForCode(int16(code)).(*kerr.Error)
	}
	return e, time.Duration(tookMS) * time.Millisecond, msg, nil
}
