package wasmbin

import (
	"fmt"
	"math"
)

// reader decodes LEB128 and vectors with a sticky error, so a decoder reads
// straight through and checks once.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	r.off = len(r.b)
}

func (r *reader) done() bool { return r.err != nil || r.off >= len(r.b) }

func (r *reader) byte() byte {
	if r.off >= len(r.b) {
		r.fail("unexpected end at offset %d", r.off)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)-r.off) {
		r.fail("%d bytes wanted at offset %d, %d left", n, r.off, len(r.b)-r.off)
		return nil
	}
	s := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return s
}

// uleb reads an unsigned LEB128 of at most bits bits.
func (r *reader) uleb(bits uint) uint64 {
	var v uint64
	var shift uint
	for {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if shift >= bits || (bits-shift < 7 && c&0x7f>>(bits-shift) != 0) {
			r.fail("integer too long at offset %d", r.off-1)
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
		shift += 7
	}
}

func (r *reader) u32() uint32 { return uint32(r.uleb(32)) }

// sleb reads a signed LEB128 of at most bits bits.
func (r *reader) sleb(bits uint) int64 {
	var v int64
	var shift uint
	for {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if shift >= bits {
			r.fail("integer too long at offset %d", r.off-1)
			return 0
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
	}
}

// count reads a vector length, refusing one that cannot fit in what is left
// given each element takes at least minSize bytes.
func (r *reader) count(minSize int) int {
	n := r.u32()
	if minSize > 0 && uint64(n)*uint64(minSize) > uint64(len(r.b)-r.off) {
		r.fail("vector of %d elements at offset %d exceeds its section", n, r.off)
		return 0
	}
	if n > math.MaxInt32 {
		r.fail("vector too long")
		return 0
	}
	return int(n)
}

func (r *reader) name() string { return string(r.bytes(uint64(r.u32()))) }

func (r *reader) valType() ValType {
	t := ValType(r.byte())
	switch t {
	case I32, I64, F32, F64, V128, FuncRef, ExternRef:
	default:
		r.fail("unknown value type %#x at offset %d", byte(t), r.off-1)
	}
	return t
}

func (r *reader) limits() Limits {
	flags := r.byte()
	if flags > 7 {
		r.fail("limits flags %#x", flags)
		return Limits{}
	}
	l := Limits{HasMax: flags&1 != 0, Shared: flags&2 != 0, Mem64: flags&4 != 0}
	bits := uint(32)
	if l.Mem64 {
		bits = 64
	}
	l.Min = r.uleb(bits)
	if l.HasMax {
		l.Max = r.uleb(bits)
	}
	return l
}

// constExpr reads a constant expression up to and including its end, and
// its value when it is a single i32.const or i64.const.
func (r *reader) constExpr() (raw []byte, value int64, known bool) {
	start := r.off
	first := true
	for !r.done() {
		op := r.byte()
		switch op {
		case 0x0b:
			return r.b[start:r.off], value, known
		case 0x41:
			value, known = r.sleb(32), first
		case 0x42:
			value, known = r.sleb(64), first
		case 0x43:
			r.bytes(4)
			known = false
		case 0x44:
			r.bytes(8)
			known = false
		case 0x23, 0xd2: // global.get, ref.func
			r.u32()
			known = false
		case 0xd0:
			r.byte()
			known = false
		case 0xfd: // v128.const
			if r.u32() != 12 {
				r.fail("unsupported constant expression at offset %d", start)
			}
			r.bytes(16)
			known = false
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended-const arithmetic
			known = false
		default:
			r.fail("unsupported constant expression opcode %#x at offset %d", op, r.off-1)
		}
		first = false
	}
	r.fail("unterminated constant expression at offset %d", start)
	return nil, 0, false
}
