package metadata_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"samsa/internal/metadata"
	"samsa/internal/metadata/quorumtest"
)

// localDeployment is one LocalQuorum.
type localDeployment struct {
	dir string
	q   *metadata.LocalQuorum
}

func openLocal(t *testing.T) quorumtest.Deployment {
	d := &localDeployment{dir: t.TempDir()}
	d.open(t)
	t.Cleanup(func() { d.q.Close() })
	return d
}

func (d *localDeployment) open(t *testing.T) {
	q, err := metadata.OpenLocalQuorum(d.dir, "local-cluster", 1)
	if err != nil {
		t.Fatal(err)
	}
	d.q = q
}

func (d *localDeployment) Members() []metadata.Quorum { return []metadata.Quorum{d.q} }

func (d *localDeployment) Restart(t *testing.T) {
	if err := d.q.Close(); err != nil {
		t.Fatal(err)
	}
	d.open(t)
}

func TestLocalQuorumContract(t *testing.T) { quorumtest.Run(t, openLocal) }

// TestLocalQuorumReadsLocalLog: LocalQuorum serves a file written through
// the old Log API, and LocalLog replays what LocalQuorum appended.
func TestLocalQuorumReadsLocalLog(t *testing.T) {
	dir := t.TempDir()
	l, err := metadata.OpenLocalLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(quorumtest.TopicRecords("old", 2)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	q, err := metadata.OpenLocalQuorum(dir, "c", 1)
	if err != nil {
		t.Fatal(err)
	}
	im := q.Publisher().Image()
	if _, ok := im.Topic("old"); !ok || im.Offset != 2 || im.ControllerID != 1 {
		t.Fatalf("image %+v", im)
	}
	off, err := q.Append(context.Background(), quorumtest.TopicRecords("new", 1))
	if err != nil || off != 4 {
		t.Fatalf("append: %d %v", off, err)
	}
	q.Close()
	l, _ = metadata.OpenLocalLog(dir)
	defer l.Close()
	n := 0
	l.Replay(func(int64, metadata.Record) error { n++; return nil })
	if n != 5 {
		t.Fatalf("replayed %d records, want 5", n)
	}
}

func TestMigrateLocalLog(t *testing.T) {
	ctx := context.Background()
	writeOld := func(t *testing.T) string {
		dir := t.TempDir()
		l, err := metadata.OpenLocalLog(dir)
		if err != nil {
			t.Fatal(err)
		}
		l.Append(quorumtest.TopicRecords("a", 2))
		l.Append(quorumtest.TopicRecords("b", 1))
		l.Close()
		return dir
	}
	oldFile := func(dir string) string {
		return filepath.Join(dir, metadata.LocalLogDir, "00000000000000000000.metadata")
	}
	target := func(t *testing.T) *metadata.LocalQuorum {
		q, err := metadata.OpenLocalQuorum(t.TempDir(), "c", 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	}
	t.Run("imports once", func(t *testing.T) {
		dir, q := writeOld(t), target(t)
		if ok, err := metadata.MigrateLocalLog(ctx, q, dir); !ok || err != nil {
			t.Fatalf("migrate: %v %v", ok, err)
		}
		if im := q.Publisher().Image(); len(im.Topics) != 2 || im.Offset != 4 {
			t.Fatalf("imported image: %d topics at offset %d, want 4 (one Append of 5 records)", len(im.Topics), im.Offset)
		}
		if _, err := os.Stat(oldFile(dir) + ".migrated"); err != nil {
			t.Fatal(err)
		}
		if ok, err := metadata.MigrateLocalLog(ctx, q, dir); ok || err != nil {
			t.Fatalf("second migrate: %v %v", ok, err)
		}
	})
	t.Run("interrupted after commit", func(t *testing.T) {
		dir, q := writeOld(t), target(t)
		recs := append(quorumtest.TopicRecords("a", 2), quorumtest.TopicRecords("b", 1)...)
		if _, err := q.Append(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if ok, err := metadata.MigrateLocalLog(ctx, q, dir); ok || err != nil {
			t.Fatalf("migrate after an interrupted one: %v %v", ok, err)
		}
		if _, err := os.Stat(oldFile(dir)); !os.IsNotExist(err) {
			t.Fatalf("old file still there: %v", err)
		}
	})
	t.Run("conflicting state refused", func(t *testing.T) {
		dir, q := writeOld(t), target(t)
		if _, err := q.Append(ctx, quorumtest.TopicRecords("other", 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := metadata.MigrateLocalLog(ctx, q, dir); err == nil {
			t.Fatal("migrated into a log holding other metadata")
		}
		if _, err := os.Stat(oldFile(dir)); err != nil {
			t.Fatalf("old file moved after a refused migration: %v", err)
		}
	})
	t.Run("nothing to migrate", func(t *testing.T) {
		if ok, err := metadata.MigrateLocalLog(ctx, target(t), t.TempDir()); ok || err != nil {
			t.Fatalf("%v %v", ok, err)
		}
	})
}
