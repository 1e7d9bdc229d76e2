// Package raft is the metadata quorum: it replicates the cluster metadata
// log among controller nodes with go.etcd.io/raft/v3 (no home-made
// consensus) and feeds broker-only nodes, which are Raft learners. A single
// node runs a one-voter quorum through the same code.
//
// The package owns the raft driver (one goroutine around a RawNode), the
// durable storage of entries, hard state and snapshots, and the TCP
// transport between nodes. The Node knows nothing about metadata records:
// entry payloads are opaque bytes and snapshots come from the caller's
// Config.Snapshot and go back through Config.Restore; MetadataLog is the
// adapter that puts the metadata image on it.
//
// # Files in Config.Dir
//
// raft.wal holds entries and hard states as frames, appended and fsynced
// before raft may act on them (before messages are sent and Advance is
// called):
//
//	+-----------+-----------+---------+--------------------------------+
//	| len u32BE | crc u32BE | type u8 | payload (len-1 bytes, protobuf) |
//	+-----------+-----------+---------+--------------------------------+
//
// len counts type and payload; crc is CRC-32C over type and payload. Type 1
// is a raftpb.Entry, type 2 a raftpb.HardState. On open the frames are
// replayed in order: a later entry at an index at or below the last one
// replaces the log from that index on (raft overwrote an uncommitted tail),
// the last hard state wins. The first frame that is short or fails its CRC
// starts a torn tail, which is truncated. A frame whose CRC holds but whose
// payload does not decode, or an entry that leaves a gap, is ErrCorrupt.
//
// raft.snap holds the newest snapshot as one frame of the same shape with
// type 3 (a raftpb.Snapshot: index, term, ConfState and data). Its data
// carries the learners' addresses (a ConfState holds ids only) before the
// caller's bytes:
//
//	+----------------+---------+-------------------------------------+----------------+
//	| version u8 = 1 | n u16BE | n × (id i32BE | len u8 | address)     | caller's bytes |
//	+----------------+---------+-------------------------------------+----------------+
//
// It is replaced atomically (write raft.snap.tmp, fsync, rename, fsync the
// directory). After a snapshot the WAL is rewritten the same way
// (raft.wal.tmp) with only the hard state and the entries after the
// snapshot: that is log compaction. A crash between the two renames leaves
// an old WAL beside a new snapshot, and entries at or below the snapshot
// index are ignored on open.
//
// # Transport
//
// A node dials every peer it sends to and writes only on that connection;
// what it receives arrives on connections the peers dialled. A connection
// opens with a hello
//
//	+------------------+------------+------+---------------------+------+-----------------+
//	| magic "SAMSARFT" | from i32BE | n u8 | cluster id, n bytes | m u8 | m voter ids i32BE |
//	+------------------+------------+------+---------------------+------+-----------------+
//
// (voter ids ascending: the sender's controller.quorum.voters). A hello
// naming another cluster id or another voter set closes the connection:
// nodes that disagree on the voters could count different majorities.
// and then carries messages as frames
//
//	+-----------+-----------+--------------------------+
//	| len u32BE | crc u32BE | raftpb.Message, protobuf |
//	+-----------+-----------+--------------------------+
//
// with crc the CRC-32C of the message bytes and len at most MaxFrameBytes.
// The magic read as a Kafka size prefix is 0x53414D53 (1.4 GB), far above
// socket.request.max.bytes, so a listener can peek 4 bytes and tell a raft
// connection from a Kafka one (see Divert).
//
// # Metadata
//
// MetadataLog makes a Node the cluster's metadata.Quorum: entry payloads
// are metadata.EncodeEntry bytes and snapshots metadata.EncodeSnapshot
// bytes (the image written as records); see internal/metadata.
package raft
