package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"

	"github.com/pierrec/lz4/v4"
)

// This file decodes the LZ4 frames Kafka batches carry (the LZ4 frame
// format, one frame per batch) for the validator, block by block with
// lz4.UncompressBlock. It checks what Kafka's KafkaLZ4BlockInputStream
// checks (the magic, the descriptor's version and reserved bits, the
// descriptor checksum, block sizes against the declared block maximum and
// block checksums when the frame has them). Like Kafka, it does not check
// the optional content checksum (an xxHash32 of everything decoded, which
// cost over half the validation of an lz4 batch); unlike Kafka, the
// produce path then removes it from the frame (StripContentChecksum),
// because librdkafka and the Go clients check it and would fail on a
// wrong one: what is stored decodes for every consumer.
//
// Frames whose blocks depend on earlier blocks (the linked block mode of
// the reference library) go through lz4.Reader instead: a block may then
// refer back into earlier output, which UncompressBlock cannot see.

const (
	lz4FrameMagic = 0x184D2204
	// lz4BlockUncompressed marks a block stored as is.
	lz4BlockUncompressed = 1 << 31
)

// lz4 descriptor flags (the FLG byte).
const (
	lz4FlagVersionMask   = 0xC0
	lz4FlagVersion       = 0x40
	lz4FlagIndependent   = 1 << 5
	lz4FlagBlockChecksum = 1 << 4
	lz4FlagContentSize   = 1 << 3
	lz4FlagContentSum    = 1 << 2
	lz4FlagReserved      = 1 << 1
	lz4FlagDictID        = 1 << 0
)

var errLZ4Linked = errors.New("lz4 frame with linked blocks")

// lz4Piece is the most of a decoded block nextBlock hands out at once:
// pieces that stay in cache between their decoding and their walk.
const lz4Piece = 32 << 10

// stripLZ4ContentChecksum removes the content checksum from the LZ4
// frame of b, an lz4 batch ValidateRecords accepted (see
// StripContentChecksum): the frame's flag and descriptor checksum are
// rewritten and its last 4 bytes (the checksum, which a validated frame of
// independent blocks ends with) dropped. Frames of linked blocks are left
// alone: the lz4 package decoded them, checking the checksum.
func stripLZ4ContentChecksum(b []byte) []byte {
	f := b[HeaderSize:]
	if len(f) < 7 || binary.LittleEndian.Uint32(f) != lz4FrameMagic {
		return b
	}
	flg := f[4]
	desc := 2
	if flg&lz4FlagContentSize != 0 {
		desc += 8
	}
	// Magic, descriptor, its checksum, the end mark and the checksum.
	if flg&lz4FlagContentSum == 0 || flg&lz4FlagIndependent == 0 || len(f) < 4+desc+1+4+4 {
		return b
	}
	f[4] = flg &^ lz4FlagContentSum
	f[4+desc] = byte(xxh32(f[4:4+desc]) >> 8)
	return dropTail(b, 4)
}

// lz4Reader is a blockSource over one LZ4 frame, decoding one block at a
// time into out (at most the frame's declared block size, 4 MiB).
type lz4Reader struct {
	in       []byte // frame bytes not yet decoded
	flags    byte
	blockMax int
	out      []byte // the current block's bytes; may alias in (stored blocks)
	buf      []byte // decoding buffer, kept across frames (pooled)
	pos      int    // out[pos:] is not yet read
	limit    int64  // most bytes the frame may decode to
	total    int64
	size     int64 // the content size the descriptor declares; -1: none
	done     bool
}

// reset parses the frame descriptor of data. It returns errLZ4Linked for
// a frame of linked blocks, and an error for anything that is not a frame
// Kafka would read.
func (r *lz4Reader) reset(data []byte, limit int64) error {
	*r = lz4Reader{buf: r.buf, limit: limit}
	if len(data) < 7 {
		return errors.New("lz4: frame header truncated")
	}
	if binary.LittleEndian.Uint32(data) != lz4FrameMagic {
		return errors.New("lz4: not an LZ4 frame (bad magic)")
	}
	flg, bd := data[4], data[5]
	if flg&lz4FlagVersionMask != lz4FlagVersion {
		return fmt.Errorf("lz4: unsupported frame version %d", flg>>6)
	}
	if flg&(lz4FlagReserved|lz4FlagDictID) != 0 || bd&0x8F != 0 {
		return errors.New("lz4: reserved descriptor bits set")
	}
	switch bd >> 4 & 7 {
	case 4:
		r.blockMax = 64 << 10
	case 5:
		r.blockMax = 256 << 10
	case 6:
		r.blockMax = 1 << 20
	case 7:
		r.blockMax = 4 << 20
	default:
		return fmt.Errorf("lz4: invalid block maximum size code %d", bd>>4&7)
	}
	desc := 2
	if flg&lz4FlagContentSize != 0 {
		desc += 8
	}
	if len(data) < 4+desc+1 {
		return errors.New("lz4: frame header truncated")
	}
	if byte(xxh32(data[4:4+desc])>>8) != data[4+desc] {
		return errors.New("lz4: frame descriptor checksum mismatch")
	}
	if flg&lz4FlagIndependent == 0 {
		return errLZ4Linked
	}
	r.flags = flg
	r.in = data[4+desc+1:]
	r.size = -1
	if flg&lz4FlagContentSize != 0 {
		// Checked at the end, as the lz4 libraries of librdkafka and the
		// Go clients check it (Kafka's Java reader skips it).
		r.size = int64(min(binary.LittleEndian.Uint64(data[6:14]), math.MaxInt64))
	}
	return nil
}

func (r *lz4Reader) nextBlock() ([]byte, error) {
	for r.pos == len(r.out) {
		if r.done {
			return nil, io.EOF
		}
		if err := r.next(); err != nil {
			return nil, err
		}
	}
	b := r.out[r.pos:min(len(r.out), r.pos+lz4Piece)]
	r.pos += len(b)
	return b, nil
}

// next decodes the next block into out, or ends the frame.
func (r *lz4Reader) next() error {
	blk, stored, err := r.block()
	if err != nil || r.done {
		r.out, r.pos = nil, 0
		return err
	}
	if stored {
		r.out = blk
	} else {
		if cap(r.buf) < r.blockMax {
			r.buf = make([]byte, r.blockMax)
		}
		m, err := lz4.UncompressBlock(blk, r.buf[:r.blockMax])
		if err != nil {
			return fmt.Errorf("lz4: %v", err)
		}
		r.out = r.buf[:m]
	}
	r.pos = 0
	if r.total += int64(len(r.out)); r.total > r.limit {
		return ErrDecompressedTooLarge
	}
	return nil
}

// decodeAll decodes the rest of the frame into dst[len(dst):cap(dst)]
// and returns dst with it. ok is false when the frame does not fit there
// or anything is wrong with it: the caller then validates it through
// nextBlock, which says what.
func (r *lz4Reader) decodeAll(dst []byte) (_ []byte, ok bool) {
	for {
		blk, stored, err := r.block()
		switch {
		case err != nil:
			return nil, false
		case r.done:
			return dst, true
		}
		room := dst[len(dst):cap(dst)]
		var m int
		if stored {
			if len(blk) > len(room) {
				return nil, false
			}
			m = copy(room, blk)
		} else if m, err = lz4.UncompressBlock(blk, room); err != nil {
			return nil, false // corrupt, or more than the room
		}
		dst = dst[:len(dst)+m]
		if r.total += int64(m); r.total > r.limit {
			return nil, false
		}
	}
}

// block reads the next block and returns its bytes (stored: as is, else
// compressed), or, at the end mark, checks the frame's end and sets done.
func (r *lz4Reader) block() (blk []byte, stored bool, err error) {
	if len(r.in) < 4 {
		return nil, false, errors.New("lz4: block size truncated")
	}
	word := binary.LittleEndian.Uint32(r.in)
	r.in = r.in[4:]
	if word == 0 { // end mark
		r.done = true
		if r.flags&lz4FlagContentSum != 0 {
			// Not checked (see the top of the file), but it must be there:
			// stripLZ4ContentChecksum counts on the frame ending with it.
			if len(r.in) < 4 {
				return nil, false, errors.New("lz4: content checksum truncated")
			}
			r.in = r.in[4:]
		}
		if len(r.in) != 0 {
			return nil, false, fmt.Errorf("lz4: %d bytes after the frame's end", len(r.in))
		}
		if r.size >= 0 && r.size != r.total {
			return nil, false, fmt.Errorf("lz4: the frame declares %d bytes of content and decodes to %d", r.size, r.total)
		}
		return nil, false, nil
	}
	n := int(word &^ lz4BlockUncompressed)
	if n > r.blockMax {
		return nil, false, fmt.Errorf("lz4: block of %d bytes exceeds the frame's maximum %d", n, r.blockMax)
	}
	tail := 0
	if r.flags&lz4FlagBlockChecksum != 0 {
		tail = 4
	}
	if len(r.in) < n+tail {
		return nil, false, errors.New("lz4: block truncated")
	}
	blk = r.in[:n]
	if tail != 0 && xxh32(blk) != binary.LittleEndian.Uint32(r.in[n:]) {
		return nil, false, errors.New("lz4: block checksum mismatch")
	}
	r.in = r.in[n+tail:]
	return blk, word&lz4BlockUncompressed != 0, nil
}

// xxHash32 with seed 0, for the frame's descriptor and block checksums.
const (
	xxPrime1 uint32 = 2654435761
	xxPrime2 uint32 = 2246822519
	xxPrime3 uint32 = 3266489917
	xxPrime4 uint32 = 668265263
	xxPrime5 uint32 = 374761393
)

// xxh32 hashes b in one call.
func xxh32(b []byte) uint32 {
	var d xxh32Digest
	d.reset()
	d.write(b)
	return d.sum()
}

// xxh32Digest is a streaming xxHash32 (seed 0).
type xxh32Digest struct {
	v     [4]uint32
	buf   [16]byte
	n     int    // bytes in buf
	total uint64 // bytes written
}

func (d *xxh32Digest) reset() {
	p1, p2 := xxPrime1, xxPrime2 // variables: the sums wrap
	*d = xxh32Digest{v: [4]uint32{p1 + p2, p2, 0, -p1}}
}

func (d *xxh32Digest) write(b []byte) {
	d.total += uint64(len(b))
	if d.n > 0 {
		k := copy(d.buf[d.n:], b)
		d.n += k
		b = b[k:]
		if d.n < 16 {
			return
		}
		d.stripes(d.buf[:])
		d.n = 0
	}
	if full := len(b) &^ 15; full > 0 {
		d.stripes(b[:full])
		b = b[full:]
	}
	d.n = copy(d.buf[:], b)
}

// stripes consumes b, a multiple of 16 bytes.
func (d *xxh32Digest) stripes(b []byte) {
	v1, v2, v3, v4 := d.v[0], d.v[1], d.v[2], d.v[3]
	// Indexes into one slice that does not move, with one bounds check
	// per stripe: re-slicing b each round cost a third of the loop.
	n := len(b) &^ 15
	for i := 0; i < n; i += 16 {
		s := b[i : i+16 : i+16]
		v1 = xxRound(v1, binary.LittleEndian.Uint32(s[0:4]))
		v2 = xxRound(v2, binary.LittleEndian.Uint32(s[4:8]))
		v3 = xxRound(v3, binary.LittleEndian.Uint32(s[8:12]))
		v4 = xxRound(v4, binary.LittleEndian.Uint32(s[12:16]))
	}
	d.v = [4]uint32{v1, v2, v3, v4}
}

func (d *xxh32Digest) sum() uint32 {
	var h uint32
	if d.total >= 16 {
		h = bits.RotateLeft32(d.v[0], 1) + bits.RotateLeft32(d.v[1], 7) + bits.RotateLeft32(d.v[2], 12) + bits.RotateLeft32(d.v[3], 18)
	} else {
		h = xxPrime5
	}
	h += uint32(d.total)
	b := d.buf[:d.n]
	for ; len(b) >= 4; b = b[4:] {
		h += binary.LittleEndian.Uint32(b) * xxPrime3
		h = bits.RotateLeft32(h, 17) * xxPrime4
	}
	for _, c := range b {
		h += uint32(c) * xxPrime5
		h = bits.RotateLeft32(h, 11) * xxPrime1
	}
	h ^= h >> 15
	h *= xxPrime2
	h ^= h >> 13
	h *= xxPrime3
	h ^= h >> 16
	return h
}

func xxRound(acc, in uint32) uint32 {
	acc += in * xxPrime2
	return bits.RotateLeft32(acc, 13) * xxPrime1
}
