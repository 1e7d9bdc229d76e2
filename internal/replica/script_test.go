package replica

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/internal/metadata"
)

// TestReplicationScripts runs the scripted leader scenarios of
// testdata/*.txt against broker 1's manager in a three-broker cluster
// (see newCluster). One command per line, '#' starts a comment:
//
//	image leader=L epoch=E pepoch=P isr=1,2,3 [replicas=1,2,3]  publish partition 0
//	produce N [acks=A]          append N one-record batches as leader
//	fetch ID OFFSET             follower ID fetches at OFFSET in the current epoch
//	advance DURATION            move the injected clock (Go duration)
//	check                       run the ISR check (MaybeShrinkISRs)
//	alter ISR                   expect an AlterPartition proposing ISR (1,2)
//	no-alter                    expect none pending
//	commit [image-first]        commit the last AlterPartition
//	answer ERROR                answer the last AlterPartition with a kerr name
//	expect k=v ...              hw=, leo=, isr=, maximal=, leader=, pepoch=
//
// Each failed expectation names the script line.
func TestReplicationScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runScript(t, f) })
	}
}

func runScript(t *testing.T, path string) {
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	c := newCluster(t, map[string]string{"min.insync.replicas": "2"})
	var last alterCall
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("%s:%d: %s: %s", path, n, strings.TrimSpace(line), fmt.Sprintf(format, args...))
		}
		kv := map[string]string{}
		var args []string
		for _, f := range fields[1:] {
			if k, v, ok := strings.Cut(f, "="); ok {
				kv[k] = v
			} else {
				args = append(args, f)
			}
		}
		num := func(s string) int64 {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				fail("bad number %q", s)
			}
			return v
		}
		ids := func(s string) []int32 {
			var out []int32
			for _, x := range strings.Split(s, ",") {
				if x != "" {
					out = append(out, int32(num(x)))
				}
			}
			return out
		}
		switch fields[0] {
		case "image":
			replicas := "1,2,3"
			if r, ok := kv["replicas"]; ok {
				replicas = r
			}
			c.set(metadata.Partition{Replicas: ids(replicas), ISR: ids(kv["isr"]), Leader: int32(num(kv["leader"])),
				LeaderEpoch: int32(num(kv["epoch"])), PartitionEpoch: int32(num(kv["pepoch"]))})
		case "produce":
			acks := int16(1)
			if a, ok := kv["acks"]; ok {
				acks = int16(num(a))
			}
			produce(t, c.part(0), int(num(args[0])), acks)
		case "fetch":
			p := c.part(0)
			res, err := p.Fetch(context.Background(), FetchParams{ReplicaID: int32(num(args[0])), ReplicaEpoch: -1, FetchOffset: num(args[1]),
				CurrentLeaderEpoch: p.LeaderEpoch(), LastFetchedEpoch: -1, MaxBytes: 1 << 20, MinOneMessage: true})
			if err != nil {
				fail("%v", err)
			}
			release(res)
		case "advance":
			d, err := time.ParseDuration(args[0])
			if err != nil {
				fail("%v", err)
			}
			c.clock.advance(d)
		case "check":
			c.m.MaybeShrinkISRs()
		case "alter":
			select {
			case last = <-c.ctl.calls:
			case <-time.After(10 * time.Second):
				fail("no AlterPartition")
			}
			if got := memberIDs(last.req.NewISR); !slices.Equal(got, ids(args[0])) {
				fail("proposed ISR %v", got)
			}
		case "no-alter":
			select {
			case call := <-c.ctl.calls:
				fail("unexpected AlterPartition %v", memberIDs(call.req.NewISR))
			default:
			}
		case "commit":
			c.commit(last, len(args) > 0 && args[0] == "image-first")
		case "answer":
			code, ok := kerrCode(args[0])
			if !ok {
				fail("unknown error %q", args[0])
			}
			c.answer(last, AlterISRResult{ErrorCode: code}, nil)
		case "expect":
			p := c.part(0)
			for k, v := range kv {
				var got string
				switch k {
				case "hw":
					got = strconv.FormatInt(p.HighWatermark(), 10)
				case "leo":
					got = strconv.FormatInt(p.LogEndOffset(), 10)
				case "isr":
					got = joinIDs(p.ISR())
				case "maximal":
					got = joinIDs(p.MaximalISR())
				case "leader":
					got = strconv.Itoa(int(p.Leader()))
				case "pepoch":
					got = strconv.Itoa(int(p.PartitionEpoch()))
				default:
					fail("unknown expectation %q", k)
				}
				if got != v {
					fail("%s = %s", k, got)
				}
			}
		default:
			fail("unknown command")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// kerrCode is the code of a Kafka error name (INVALID_UPDATE_VERSION).
func kerrCode(name string) (int16, bool) {
	for code := int16(-1); code < 200; code++ {
		if e := kerr.ErrorForCode(code); e != nil {
			var ke *kerr.Error
			if errors.As(e, &ke) && ke.Message == name {
				return code, true
			}
		}
	}
	return 0, false
}

func joinIDs(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}
