package enc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrTruncated is reported when the input ends before a value is complete.
var ErrTruncated = errors.New("truncated input")

// ErrMalformed is reported for values that cannot be valid in any encoding.
var ErrMalformed = errors.New("malformed input")

// Writer appends encoded values to a growing buffer.
type Writer struct {
	buf []byte
}

// Data returns the encoded bytes.
func (w *Writer) Data() []byte { return w.buf }

func (w *Writer) U8(v uint8)          { w.buf = append(w.buf, v) }
func (w *Writer) Uvarint(v uint64)    { w.buf = binary.AppendUvarint(w.buf, v) }
func (w *Writer) Varint(v int64)      { w.buf = binary.AppendVarint(w.buf, v) }
func (w *Writer) U32(v uint32)        { w.buf = binary.BigEndian.AppendUint32(w.buf, v) }
func (w *Writer) U64(v uint64)        { w.buf = binary.BigEndian.AppendUint64(w.buf, v) }
func (w *Writer) Raw(b []byte)        { w.buf = append(w.buf, b...) }
func (w *Writer) Str(s string)        { w.Uvarint(uint64(len(s))); w.buf = append(w.buf, s...) }
func (w *Writer) BytesField(b []byte) { w.Uvarint(uint64(len(b))); w.buf = append(w.buf, b...) }

func (w *Writer) Bool(v bool) {
	if v {
		w.U8(1)
	} else {
		w.U8(0)
	}
}

// Strings writes a count followed by each string.
func (w *Writer) Strings(ss []string) {
	w.Uvarint(uint64(len(ss)))
	for _, s := range ss {
		w.Str(s)
	}
}

// Reader decodes values written by Writer. The first failure is kept in Err
// and every later read returns a zero value.
type Reader struct {
	buf []byte
	off int
	err error
}

// NewReader reads from b.
func NewReader(b []byte) *Reader { return &Reader{buf: b} }

// Err returns the first decoding error.
func (r *Reader) Err() error { return r.err }

// Remaining reports how many bytes are left.
func (r *Reader) Remaining() int { return len(r.buf) - r.off }

// Offset reports how many bytes were consumed.
func (r *Reader) Offset() int { return r.off }

// Fail records err (wrapped with the offset) unless an error is already set.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = fmt.Errorf("at byte %d: %w", r.off, err)
	}
}

func (r *Reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > r.Remaining() {
		r.Fail(ErrTruncated)
		return nil
	}
	b := r.buf[r.off : r.off+n]
	r.off += n
	return b
}

func (r *Reader) U8() uint8 {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *Reader) Bool() bool {
	switch r.U8() {
	case 0:
		return false
	case 1:
		return true
	default:
		r.Fail(fmt.Errorf("%w: boolean is not 0 or 1", ErrMalformed))
		return false
	}
}

func (r *Reader) U32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (r *Reader) U64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf[r.off:])
	switch {
	case n == 0:
		r.Fail(ErrTruncated)
		return 0
	case n < 0:
		r.Fail(fmt.Errorf("%w: varint overflows 64 bits", ErrMalformed))
		return 0
	case n > 1 && r.buf[r.off+n-1] == 0:
		// One value, one encoding: what decodes re-encodes identically.
		r.Fail(fmt.Errorf("%w: varint padded with a zero byte", ErrMalformed))
		return 0
	}
	r.off += n
	return v
}

func (r *Reader) Varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.buf[r.off:])
	switch {
	case n == 0:
		r.Fail(ErrTruncated)
		return 0
	case n < 0:
		r.Fail(fmt.Errorf("%w: varint overflows 64 bits", ErrMalformed))
		return 0
	case n > 1 && r.buf[r.off+n-1] == 0:
		// One value, one encoding: what decodes re-encodes identically.
		r.Fail(fmt.Errorf("%w: varint padded with a zero byte", ErrMalformed))
		return 0
	}
	r.off += n
	return v
}

// Uvarint32 reads a varint that must fit in 32 bits.
func (r *Reader) Uvarint32() uint32 {
	v := r.Uvarint()
	if v > math.MaxUint32 {
		r.Fail(fmt.Errorf("%w: %d does not fit in 32 bits", ErrMalformed, v))
		return 0
	}
	return uint32(v)
}

// Len reads a length prefix and checks that at least min bytes per element
// remain for it, so a hostile count cannot force a huge allocation.
func (r *Reader) Len(minElemSize int) int {
	n := r.Uvarint()
	if r.err != nil {
		return 0
	}
	if minElemSize < 1 {
		minElemSize = 1
	}
	if n > uint64(r.Remaining()/minElemSize) {
		r.Fail(fmt.Errorf("%w: count %d exceeds the %d bytes left", ErrTruncated, n, r.Remaining()))
		return 0
	}
	return int(n)
}

// Raw returns the next n bytes, aliasing the input.
func (r *Reader) Raw(n int) []byte { return r.take(n) }

// BytesField reads a length-prefixed byte string, copied out of the input.
func (r *Reader) BytesField() []byte {
	n := r.Uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(r.Remaining()) {
		r.Fail(ErrTruncated)
		return nil
	}
	return append([]byte(nil), r.take(int(n))...)
}

func (r *Reader) Str() string {
	n := r.Uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(r.Remaining()) {
		r.Fail(ErrTruncated)
		return ""
	}
	return string(r.take(int(n)))
}

func (r *Reader) Strings() []string {
	n := r.Len(1)
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = r.Str()
	}
	return ss
}

// End fails unless all input was consumed.
func (r *Reader) End() {
	if r.err == nil && r.Remaining() != 0 {
		r.Fail(fmt.Errorf("%w: %d trailing bytes", ErrMalformed, r.Remaining()))
	}
}
