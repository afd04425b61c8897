// Package wire is the little binary format of the project's hand-written
// Beam coders: unsigned varints, length-prefixed strings, little-endian
// 64-bit words and time.Time's binary form, appended to a byte slice and
// read back by a Reader whose first error sticks.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrShort is the error of a Reader whose input ended early.
var ErrShort = errors.New("input ends early")

// AppendUvarint appends v as an unsigned varint.
func AppendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// AppendVarint appends v as a signed (zig-zag) varint.
func AppendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// AppendString appends s, prefixed by its length.
func AppendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// AppendBytes appends p, prefixed by its length.
func AppendBytes(b, p []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(p))), p...)
}

// AppendUint64 appends v in 8 little-endian bytes.
func AppendUint64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

// AppendFloat64 appends v's IEEE 754 bits in 8 little-endian bytes.
func AppendFloat64(b []byte, v float64) []byte { return AppendUint64(b, math.Float64bits(v)) }

// AppendTime appends t's binary form (its instant and zone offset).
func AppendTime(b []byte, t time.Time) ([]byte, error) {
	out, err := t.AppendBinary(b)
	if err != nil {
		return b, fmt.Errorf("time %v: %w", t, err)
	}
	return out, nil
}

// Reader reads what the Append functions appended. After the first error
// every read returns a zero value; Err reports the error.
type Reader struct {
	b   []byte
	err error
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err is the first error, or an error when input is left over; nil when
// everything was read.
func (r *Reader) Err() error {
	if r.err == nil && len(r.b) > 0 {
		return fmt.Errorf("%d bytes left over", len(r.b))
	}
	return r.err
}

func (r *Reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = ErrShort
		return nil
	}
	out := r.b[:n:n] // an append to it must not overwrite what follows
	r.b = r.b[n:]
	return out
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 { return readVarint(r, binary.Uvarint) }

// Varint reads a signed varint.
func (r *Reader) Varint() int64 { return readVarint(r, binary.Varint) }

// readVarint reads a varint with decode (binary.Uvarint or binary.Varint).
func readVarint[T uint64 | int64](r *Reader, decode func([]byte) (T, int)) T {
	if r.err != nil {
		return 0
	}
	v, n := decode(r.b)
	if n <= 0 {
		r.err = ErrShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Count reads a number of items that follow, each taking a byte at least,
// so that a corrupt count fails instead of allocating.
func (r *Reader) Count() int {
	n := r.Uvarint()
	if n > uint64(len(r.b)) {
		if r.err == nil {
			r.err = ErrShort
		}
		return 0
	}
	return int(n)
}

// Bytes reads what AppendBytes appended; the result shares the input's
// memory.
func (r *Reader) Bytes() []byte {
	return r.take(r.Count())
}

// String reads a length-prefixed string.
func (r *Reader) String() string {
	return string(r.take(r.Count()))
}

// StringMap reads a count and as many pairs of strings, key then value (nil
// for a count of 0), as a map encodes with AppendUvarint(len) and
// AppendString of each key and value.
func (r *Reader) StringMap() map[string]string {
	n := r.Count()
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := r.String()
		m[k] = r.String()
	}
	return m
}

// Uint64 reads 8 little-endian bytes.
func (r *Reader) Uint64() uint64 {
	if b := r.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// Float64 reads what AppendFloat64 appended.
func (r *Reader) Float64() float64 { return math.Float64frombits(r.Uint64()) }

// Time reads what AppendTime appended: 15 bytes, 16 when the zone offset
// has seconds (the form's version byte says which).
func (r *Reader) Time() time.Time {
	if r.err != nil {
		return time.Time{}
	}
	if len(r.b) == 0 {
		r.err = ErrShort
		return time.Time{}
	}
	n := 15
	if r.b[0] == 2 {
		n = 16
	}
	var t time.Time
	if b := r.take(n); b != nil {
		if err := t.UnmarshalBinary(b); err != nil {
			r.err = err
		}
	}
	return t
}
