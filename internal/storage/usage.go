package storage

import "syscall"

// DirUsage returns the size of the file system holding dir and the bytes
// this process may still write there (statfs(2)), as Kafka's
// DescribeLogDirs v4 reports them (KIP-827: FileStore.getTotalSpace and
// getUsableSpace). usable counts the blocks available to unprivileged
// users, or all free blocks for root (see freeBytes).
func DirUsage(dir string) (total, usable int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1, -1, err
	}
	free, err := freeBytes(dir)
	if err != nil {
		return -1, -1, err
	}
	return int64(st.Blocks) * int64(st.Bsize), free, nil
}
