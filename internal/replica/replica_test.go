package replica

import (
	"errors"
	"testing"

	"samsa/internal/record"
	"samsa/internal/storage"
)

func TestReplicaHasCleanupPolicy(t *testing.T) {
	for _, tc := range []struct {
		value, policy string
		want          bool
	}{
		{"delete", "delete", true},
		{"compact", "delete", false},
		{"compact, delete", "delete", true},
		{"compact,delete", "compact", true},
		{"", "delete", false},
	} {
		if got := HasCleanupPolicy(tc.value, tc.policy); got != tc.want {
			t.Errorf("HasCleanupPolicy(%q, %q) = %v", tc.value, tc.policy, got)
		}
	}
}

// TestReplicaCheckKeys: a keyless record in any batch, compressed or
// not, is INVALID_RECORD; an empty key is a key; control batches and
// undecodable bytes are left to the storage engine.
func TestReplicaCheckKeys(t *testing.T) {
	build := func(o record.BuildOptions, keys ...[]byte) []byte {
		t.Helper()
		recs := make([]record.Record, len(keys))
		for i, k := range keys {
			recs[i] = record.Record{Key: k, Value: []byte("v")}
		}
		b, err := record.Build(o, recs)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	keyed := build(record.BuildOptions{}, []byte("a"), []byte{})
	keyless := build(record.BuildOptions{Compression: record.CompressionZstd}, []byte("a"), nil)
	control := build(record.BuildOptions{Control: true, Transactional: true}, []byte{0, 0, 0, 1})
	for _, tc := range []struct {
		name    string
		records []byte
		bad     bool
	}{
		{"keyed", keyed, false},
		{"keyed then keyless", append(append([]byte{}, keyed...), keyless...), true},
		{"control", control, false},
		{"garbage", []byte{1, 2, 3}, false},
	} {
		err := checkKeys(tc.records)
		if tc.bad != errors.Is(err, storage.ErrInvalidRecord) || (!tc.bad && err != nil) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
