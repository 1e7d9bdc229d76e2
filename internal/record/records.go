package record

import (
	"encoding/binary"
	"fmt"
)

// RecordHeader is one header of a record. A nil Value is a null value.
type RecordHeader struct {
	Key   string
	Value []byte
}

// Record is one decoded record. Offset and Timestamp are absolute.
// Key and Value are nil when null; they alias the decoded buffer.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Offset         int64 // baseOffset + OffsetDelta
	Timestamp      int64 // ms; for LogAppendTime batches the batch's MaxTimestamp
	Key            []byte
	Value          []byte
	Headers        []RecordHeader
}

// Batch is a decoded batch: its header and its records.
type Batch struct {
	Header
	Records []Record
}

// DecodeBatch validates b (exactly one batch, see Validate), decompresses
// its records and decodes them.
func DecodeBatch(b []byte) (Batch, error) {
	h, err := Validate(b)
	if err != nil {
		return Batch{Header: h}, err
	}
	data, err := decompress(h.Compression(), b[HeaderSize:])
	if err != nil {
		return Batch{Header: h}, fmt.Errorf("%w: %s: %v", ErrCorrupt, h.Compression(), err)
	}
	recs, err := decodeRecords(&h, data)
	return Batch{Header: h, Records: recs}, err
}

// ForEachRecord decodes the records of the batch b and calls fn with each;
// it stops at fn's first error.
func ForEachRecord(b []byte, fn func(h *Header, r *Record) error) error {
	bt, err := DecodeBatch(b)
	if err != nil {
		return err
	}
	for i := range bt.Records {
		if err := fn(&bt.Header, &bt.Records[i]); err != nil {
			return err
		}
	}
	return nil
}

func decodeRecords(h *Header, data []byte) ([]Record, error) {
	n := int(h.RecordCount)
	if maxN := len(data)/minEncodedRecordLen + 1; n > maxN {
		return nil, fmt.Errorf("%w: %d records in %d bytes", ErrCorrupt, h.RecordCount, len(data))
	}
	recs := make([]Record, 0, min(n, maxRecordsPreAlloc))
	d := decoder{b: data}
	for i := 0; i < n; i++ {
		length := d.varint()
		if d.err != nil || length < 0 || int64(length) > int64(len(d.b)) {
			return recs, fmt.Errorf("%w: record %d: bad length", ErrCorrupt, i)
		}
		rd := decoder{b: d.b[:length]}
		d.b = d.b[length:]
		var r Record
		r.Attributes = int8(rd.byte())
		r.TimestampDelta = rd.varlong()
		r.OffsetDelta = int32(rd.varint())
		r.Key = rd.bytes()
		r.Value = rd.bytes()
		nh := rd.varint()
		if rd.err == nil && (nh < 0 || int64(nh) > int64(len(rd.b))/2) {
			return recs, fmt.Errorf("%w: record %d: %d headers", ErrCorrupt, i, nh)
		}
		if nh > 0 {
			r.Headers = make([]RecordHeader, 0, nh)
		}
		for j := 0; j < int(nh) && rd.err == nil; j++ {
			k := rd.bytes()
			v := rd.bytes()
			r.Headers = append(r.Headers, RecordHeader{Key: string(k), Value: v})
		}
		if rd.err != nil {
			return recs, fmt.Errorf("%w: record %d: %v", ErrCorrupt, i, rd.err)
		}
		if len(rd.b) != 0 {
			return recs, fmt.Errorf("%w: record %d: %d trailing bytes", ErrCorrupt, i, len(rd.b))
		}
		r.Offset = h.BaseOffset + int64(r.OffsetDelta)
		if h.LogAppendTime() {
			r.Timestamp = h.MaxTimestamp
		} else {
			r.Timestamp = h.BaseTimestamp + r.TimestampDelta
		}
		recs = append(recs, r)
	}
	if len(d.b) != 0 {
		return recs, fmt.Errorf("%w: %d bytes after the last record", ErrCorrupt, len(d.b))
	}
	return recs, nil
}

// decoder reads zig-zag varints and length-prefixed bytes; the first
// error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("bad %s", what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("attributes")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) varlong() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int32 {
	v := d.varlong()
	if v != int64(int32(v)) {
		d.fail("varint")
		return 0
	}
	return int32(v)
}

// bytes reads a varint length and that many bytes; -1 is null (nil).
func (d *decoder) bytes() []byte {
	n := d.varint()
	if d.err != nil {
		return nil
	}
	if n < 0 {
		if n != -1 {
			d.fail("length")
		}
		return nil
	}
	if int(n) > len(d.b) {
		d.fail("length")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// Control record types (the key of a record in a control batch).
const (
	ControlAbort  int16 = 0
	ControlCommit int16 = 1
)

// ControlType decodes the key of a control record (version int16, type
// int16) and returns the type: ControlAbort or ControlCommit.
func ControlType(r *Record) (int16, error) {
	if len(r.Key) < 4 {
		return 0, fmt.Errorf("%w: control record key of %d bytes", ErrCorrupt, len(r.Key))
	}
	return int16(binary.BigEndian.Uint16(r.Key[2:])), nil
}
