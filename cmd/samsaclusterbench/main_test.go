package main

import (
	"io"
	"os"
	"reflect"
	"testing"
	"time"
)

func TestParseFlagsDefaults(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.nodes != 3 || o.topics != 1000 || o.partitions != 10 || o.startupTopics != 1000 {
		t.Fatalf("defaults: %+v, want 3 nodes, 1000 topics × 10 partitions, 1000 start-up topics", o)
	}
	if !reflect.DeepEqual(o.batches, []int{100}) {
		t.Fatalf("batches = %v, want [100]", o.batches)
	}
	if o.nofile != 65536 || o.timeout != 2*time.Minute {
		t.Fatalf("nofile %d timeout %v", o.nofile, o.timeout)
	}
}

func TestParseFlagsQuickAndBatches(t *testing.T) {
	o, err := parseFlags([]string{"-quick", "-batch", "50, 7", "-nodes", "5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.topics != 10 || o.startupTopics != 10 || o.nodes != 5 || !reflect.DeepEqual(o.batches, []int{50, 7}) {
		t.Fatalf("got %+v", o)
	}
}

func TestParseFlagsRefusesBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"-batch", "0"},
		{"-batch", "10,x"},
		{"-nodes", "0"},
		{"-partitions", "0"},
		{"-produce-every", "0"},
		{"-nofile", "10"},
		{"extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

func TestProcHelpers(t *testing.T) {
	// This process's own limits file has the same layout as a child's.
	lim, err := nofileOf(os.Getpid())
	if err != nil || lim == "unknown" {
		t.Fatalf("nofileOf(self) = %q, %v", lim, err)
	}
	if n := openFDs(os.Getpid()); n < 3 {
		t.Fatalf("openFDs(self) = %d, want at least stdin/stdout/stderr", n)
	}
	if got := topicNames("t", 3); !reflect.DeepEqual(got, []string{"t-00000", "t-00001", "t-00002"}) {
		t.Fatalf("topicNames = %v", got)
	}
}
