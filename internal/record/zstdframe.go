package record

import "encoding/binary"

// This file reads the headers of the zstd frame a Kafka batch carries
// (RFC 8878 §3.1.1) without decoding it: enough to know whether a batch's
// records are exactly one frame that ends with a content checksum. The
// validator decodes such a frame without checking that checksum (an
// xxHash64 of everything decoded, which cost more than the decoding itself
// on batches of repetitive records), and the produce path then removes it
// from the frame (StripContentChecksum), as it does lz4's: what is stored
// has no checksum a consumer could find wrong. Any other zstd data
// (several frames, skippable frames, a frame without checksum) is decoded
// with the checksum checked, as before.

const (
	zstdFrameMagic = 0xFD2FB528

	// Frame header descriptor bits.
	zstdFlagSingleSegment = 1 << 5
	zstdFlagReserved      = 1 << 3
	zstdFlagContentSum    = 1 << 2

	// Block types (block header bits 1-2).
	zstdBlockRLE      = 1
	zstdBlockReserved = 3
)

// zstdHeader reads the frame header at the start of data: its
// descriptor, its length and the content size it declares (-1: none).
// ok is false when data does not start with a frame header.
func zstdHeader(data []byte) (fhd byte, n int, size int64, ok bool) {
	if len(data) < 5 || binary.LittleEndian.Uint32(data) != zstdFrameMagic {
		return 0, 0, -1, false
	}
	fhd = data[4]
	n = 5
	if fhd&zstdFlagSingleSegment == 0 {
		n++ // the window descriptor
	}
	n += [4]int{0, 1, 2, 4}[fhd&3] // the dictionary id
	fcs := [4]int{0, 2, 4, 8}[fhd>>6]
	if fcs == 0 && fhd&zstdFlagSingleSegment != 0 {
		fcs = 1
	}
	if len(data) < n+fcs {
		return 0, 0, -1, false
	}
	f := data[n:]
	n += fcs
	switch fcs {
	case 0:
		return fhd, n, -1, true
	case 1:
		size = int64(f[0])
	case 2:
		size = int64(binary.LittleEndian.Uint16(f)) + 256
	case 4:
		size = int64(binary.LittleEndian.Uint32(f))
	default:
		size = int64(binary.LittleEndian.Uint64(f) & (1<<63 - 1))
	}
	return fhd, n, size, true
}

// zstdSumFrame says whether data is, by its headers, exactly one zstd
// frame whose descriptor sets the content checksum flag: the frame's last
// block is followed by the 4 bytes of the checksum and nothing else. It
// walks the block headers only; whether the blocks decode is the
// decoder's to say. size is the content size the frame declares (-1:
// none).
func zstdSumFrame(data []byte) (size int64, ok bool) {
	fhd, pos, size, ok := zstdHeader(data)
	if !ok || fhd&zstdFlagContentSum == 0 || fhd&zstdFlagReserved != 0 {
		return -1, false
	}
	for { // every round moves pos on by 3 bytes at least
		if len(data)-pos < 3 {
			return -1, false
		}
		bh := uint32(data[pos]) | uint32(data[pos+1])<<8 | uint32(data[pos+2])<<16
		pos += 3
		n := int(bh >> 3)
		switch bh >> 1 & 3 {
		case zstdBlockRLE:
			n = 1 // one byte, repeated n times
		case zstdBlockReserved:
			return -1, false
		}
		if n > len(data)-pos {
			return -1, false
		}
		pos += n
		if bh&1 != 0 { // the last block
			return size, len(data)-pos == 4
		}
	}
}
