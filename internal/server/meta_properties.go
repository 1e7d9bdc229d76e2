package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"samsa/internal/config"
)

// metaProperties is a log dir's meta.properties (Kafka's KRaft v1 format):
//
//	version=1
//	cluster.id=<22-char base64url uuid>
//	node.id=<id>
//	directory.id=<22-char base64url uuid>
type metaProperties struct {
	ClusterID   string
	NodeID      int32
	DirectoryID string
}

const metaPropertiesFile = "meta.properties"

func newUUIDString() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// votersClusterID derives a cluster id from controller.quorum.voters
// (sorted id@host:port entries): every node that lists the same voters
// formats itself with the same id.
func votersClusterID(voters map[int32]string) string {
	ids := make([]int32, 0, len(voters))
	for id := range voters {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	h := sha256.New()
	h.Write([]byte("samsa cluster of voters"))
	for _, id := range ids {
		fmt.Fprintf(h, "|%d@%s", id, voters[id])
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

func readMetaProperties(dir string) (*metaProperties, error) {
	f, err := os.Open(filepath.Join(dir, metaPropertiesFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	props, err := config.ParseProperties(f)
	if err != nil {
		return nil, fmt.Errorf("server: %s: %w", f.Name(), err)
	}
	id, err := strconv.ParseInt(props["node.id"], 10, 32)
	if err != nil {
		return nil, fmt.Errorf("server: %s: bad node.id %q", f.Name(), props["node.id"])
	}
	if props["cluster.id"] == "" {
		return nil, fmt.Errorf("server: %s: no cluster.id", f.Name())
	}
	return &metaProperties{ClusterID: props["cluster.id"], NodeID: int32(id), DirectoryID: props["directory.id"]}, nil
}

func writeMetaProperties(dir string, mp *metaProperties) error {
	var b strings.Builder
	b.WriteString("#\n#Written by samsa; do not edit.\n")
	fmt.Fprintf(&b, "cluster.id=%s\ndirectory.id=%s\nnode.id=%d\nversion=1\n", mp.ClusterID, mp.DirectoryID, mp.NodeID)
	tmp := filepath.Join(dir, metaPropertiesFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, metaPropertiesFile))
}

// ensureFormatted makes every log dir (and the metadata dir) exist and
// carry a meta.properties with one cluster id and this node id,
// formatting the unformatted ones (Kafka needs `kafka-storage format`
// first; a Samsa node formats itself). The cluster id of a new format is
// cluster.id when set, else derived from controller.quorum.voters when
// they are several (or this node is broker-only), else random. It
// returns the cluster id.
func ensureFormatted(cfg *config.Config) (string, error) {
	dirs := append([]string{}, cfg.LogDirs...)
	if !contains(dirs, cfg.MetadataLogDir) {
		dirs = append(dirs, cfg.MetadataLogDir)
	}
	clusterID := ""
	var missing []string
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", fmt.Errorf("server: create log dir: %w", err)
		}
		mp, err := readMetaProperties(d)
		if os.IsNotExist(err) {
			missing = append(missing, d)
			continue
		}
		if err != nil {
			return "", err
		}
		if mp.NodeID != cfg.NodeID {
			return "", fmt.Errorf("server: %s belongs to node.id %d, but this node is node.id %d", d, mp.NodeID, cfg.NodeID)
		}
		if clusterID != "" && clusterID != mp.ClusterID {
			return "", fmt.Errorf("server: log dirs belong to different clusters (%s, %s)", clusterID, mp.ClusterID)
		}
		clusterID = mp.ClusterID
	}
	want, _ := cfg.Get("cluster.id")
	switch {
	case want != "" && clusterID != "" && want != clusterID:
		return "", fmt.Errorf("server: cluster.id=%s, but the log dirs are formatted for cluster %s (meta.properties)", want, clusterID)
	case clusterID != "":
	case want != "":
		if b, err := base64.RawURLEncoding.DecodeString(want); err != nil || len(b) != 16 {
			return "", fmt.Errorf("server: cluster.id=%s is not a 22-character base64url uuid (as kafka-storage random-uuid prints)", want)
		}
		clusterID = want
	case len(cfg.Cluster.Voters) > 1 || !cfg.HasRole("controller"):
		// Nodes of one cluster formatted without a cluster.id agree
		// on it: it is derived from the voters they all list.
		clusterID = votersClusterID(cfg.Cluster.Voters)
	default:
		clusterID = newUUIDString()
	}
	for _, d := range missing {
		if err := writeMetaProperties(d, &metaProperties{ClusterID: clusterID, NodeID: cfg.NodeID, DirectoryID: newUUIDString()}); err != nil {
			return "", fmt.Errorf("server: format %s: %w", d, err)
		}
	}
	return clusterID, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
