package server

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
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
// first; a single Samsa node formats itself). It returns the cluster id.
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
	if clusterID == "" {
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
