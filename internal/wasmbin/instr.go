package wasmbin

import "fmt"

// Op is an opcode: the byte for single-byte opcodes, prefix<<16 | sub for
// the 0xfc, 0xfd and 0xfe families.
type Op uint32

// Opcodes tern looks for.
const (
	OpUnreachable  Op = 0x00
	OpNop          Op = 0x01
	OpBlock        Op = 0x02
	OpLoop         Op = 0x03
	OpIf           Op = 0x04
	OpElse         Op = 0x05
	OpTry          Op = 0x06
	OpCatch        Op = 0x07
	OpThrow        Op = 0x08
	OpRethrow      Op = 0x09
	OpThrowRef     Op = 0x0a
	OpEnd          Op = 0x0b
	OpBr           Op = 0x0c
	OpBrIf         Op = 0x0d
	OpBrTable      Op = 0x0e
	OpReturn       Op = 0x0f
	OpCall         Op = 0x10
	OpCallIndirect Op = 0x11
	OpReturnCall   Op = 0x12
	OpReturnCallIn Op = 0x13
	OpCallRef      Op = 0x14
	OpReturnCallRf Op = 0x15
	OpDelegate     Op = 0x18
	OpCatchAll     Op = 0x19
	OpDrop         Op = 0x1a
	OpTryTable     Op = 0x1f
	OpLocalGet     Op = 0x20
	OpLocalSet     Op = 0x21
	OpLocalTee     Op = 0x22
	OpGlobalGet    Op = 0x23
	OpGlobalSet    Op = 0x24
	OpTableSet     Op = 0x26
	OpI32Load      Op = 0x28
	OpI32Load16U   Op = 0x2f
	OpMemorySize   Op = 0x3f
	OpMemoryGrow   Op = 0x40
	OpI32Const     Op = 0x41
	OpI64Const     Op = 0x42
	OpI32Eqz       Op = 0x45
	OpI32Sub       Op = 0x6b
	OpRefFunc      Op = 0xd2

	OpTableGrow Op = 0xfc<<16 | 15
	OpTableFill Op = 0xfc<<16 | 17
	OpTableInit Op = 0xfc<<16 | 12
	OpTableCopy Op = 0xfc<<16 | 14
)

// IsStore reports whether op changes linear memory, a table, a global or
// segment state.
func (op Op) IsStore() bool {
	switch {
	case op >= 0x36 && op <= 0x3e, op == OpGlobalSet, op == OpTableSet, op == OpMemoryGrow:
		return true
	case op>>16 == 0xfc && op&0xffff >= 8 && op&0xffff != 16:
		return true
	case op>>16 == 0xfd && (op&0xffff == 11 || (op&0xffff >= 88 && op&0xffff <= 91)):
		return true
	case op>>16 == 0xfe:
		return true
	}
	return false
}

// Instr is one decoded instruction.
type Instr struct {
	Op  Op
	Pos int // offset of the opcode in the code
	End int // offset just after the instruction
	// Imm is the first immediate: the index of call, global.get, br, ...;
	// the memarg offset of loads and stores; the value of constants; the
	// block type of block, loop, if and try (a type index when >= 0).
	Imm int64
	// Imm2 is the second immediate where there is one: the table of
	// call_indirect, the memarg alignment.
	Imm2 int64
}

// Walk decodes code (a function body's instructions, or any expression) and
// calls f for each instruction in order. It stops at the first error.
func Walk(code []byte, f func(Instr) error) error {
	r := &reader{b: code}
	for !r.done() {
		in := Instr{Pos: r.off}
		op := r.byte()
		in.Op = Op(op)
		switch {
		case op == 0x02 || op == 0x03 || op == 0x04 || op == 0x06:
			in.Imm = r.blockType()
		case op == 0x07 || op == 0x08 || op == 0x09 || op == 0x0c || op == 0x0d ||
			op == 0x10 || op == 0x12 || op == 0x14 || op == 0x15 || op == 0x18 ||
			(op >= 0x20 && op <= 0x26) || op == 0xd2:
			in.Imm = int64(r.u32())
		case op == 0x0e:
			for n := r.count(1); n > 0 && r.err == nil; n-- {
				r.u32()
			}
			in.Imm = int64(r.u32())
		case op == 0x11 || op == 0x13:
			in.Imm = int64(r.u32())
			in.Imm2 = int64(r.u32())
		case op == 0x1c:
			for n := r.count(1); n > 0 && r.err == nil; n-- {
				r.valType()
			}
		case op == 0x1f: // try_table
			r.blockType()
			for n := r.count(2); n > 0 && r.err == nil; n-- {
				switch k := r.byte(); k {
				case 0, 1:
					r.u32()
					r.u32()
				case 2, 3:
					r.u32()
				default:
					r.fail("try_table catch kind %d", k)
				}
			}
		case op >= 0x28 && op <= 0x3e:
			in.Imm2, in.Imm = r.memarg()
		case op == 0x3f || op == 0x40:
			in.Imm = int64(r.u32())
		case op == 0x41:
			in.Imm = r.sleb(32)
		case op == 0x42:
			in.Imm = r.sleb(64)
		case op == 0x43:
			r.bytes(4)
		case op == 0x44:
			r.bytes(8)
		case op == 0xd0:
			r.byte()
		case op == 0xfc:
			in.Op, in.Imm, in.Imm2 = r.prefixFC()
		case op == 0xfd:
			in.Op, in.Imm, in.Imm2 = r.prefixFD()
		case op == 0xfe:
			in.Op, in.Imm, in.Imm2 = r.prefixFE()
		case op <= 0x01 || op == 0x05 || op == 0x0a || op == 0x0b || op == 0x0f || op == 0x19 ||
			op == 0x1a || op == 0x1b || (op >= 0x45 && op <= 0xc4) || op == 0xd1:
		default:
			r.fail("unknown opcode %#x at offset %d", op, in.Pos)
		}
		if r.err != nil {
			return r.err
		}
		in.End = r.off
		if err := f(in); err != nil {
			return err
		}
	}
	return r.err
}

// blockType reads a block type: a type index (>= 0), or a negative value
// for the empty type (-64) or a single value type.
func (r *reader) blockType() int64 {
	c := r.byte()
	switch {
	case c == 0x40, c >= 0x7b && c <= 0x7f, c == 0x70, c == 0x6f:
		return int64(c) - 0x80
	default:
		r.off--
		v := r.sleb(33)
		if v < 0 {
			r.fail("block type")
		}
		return v
	}
}

// memarg returns alignment and offset, skipping a memory index when the
// multi-memory bit is set.
func (r *reader) memarg() (align, offset int64) {
	a := r.u32()
	if a&0x40 != 0 {
		r.u32()
		a &^= 0x40
	}
	return int64(a), int64(r.uleb(64))
}

func (r *reader) prefixFC() (Op, int64, int64) {
	sub := r.u32()
	op := Op(0xfc<<16 | sub)
	switch {
	case sub <= 7:
		return op, 0, 0
	case sub == 8: // memory.init
		d := r.u32()
		r.u32()
		return op, int64(d), 0
	case sub == 9 || sub == 13 || sub == 15 || sub == 16 || sub == 17:
		return op, int64(r.u32()), 0
	case sub == 10 || sub == 12 || sub == 14:
		a := r.u32()
		return op, int64(a), int64(r.u32())
	case sub == 11:
		return op, int64(r.u32()), 0
	}
	r.fail("unknown opcode 0xfc %d", sub)
	return op, 0, 0
}

func (r *reader) prefixFD() (Op, int64, int64) {
	sub := r.u32()
	op := Op(0xfd<<16 | sub)
	switch {
	case sub <= 11 || sub == 92 || sub == 93:
		a, o := r.memarg()
		return op, o, a
	case sub == 12 || sub == 13:
		r.bytes(16)
	case sub >= 21 && sub <= 34:
		return op, int64(r.byte()), 0
	case sub >= 84 && sub <= 91:
		a, o := r.memarg()
		r.byte()
		return op, o, a
	case sub <= 0x113:
	default:
		r.fail("unknown opcode 0xfd %d", sub)
	}
	return op, 0, 0
}

func (r *reader) prefixFE() (Op, int64, int64) {
	sub := r.u32()
	op := Op(0xfe<<16 | sub)
	if sub == 3 { // atomic.fence
		r.byte()
		return op, 0, 0
	}
	if sub > 0x4e {
		r.fail("unknown opcode 0xfe %d", sub)
		return op, 0, 0
	}
	a, o := r.memarg()
	return op, o, a
}

// Calls returns, for each function index, the defined functions that call
// it directly.
func (m *Module) Calls() (map[uint32][]uint32, error) {
	callers := map[uint32][]uint32{}
	for i, b := range m.Codes {
		fi := m.NumImportedFuncs + uint32(i)
		err := Walk(b.Instructions(), func(in Instr) error {
			if in.Op == OpCall {
				callers[uint32(in.Imm)] = append(callers[uint32(in.Imm)], fi)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", m.FuncName(fi), err)
		}
	}
	return callers, nil
}

// BrTable decodes the labels and the default of a br_table instruction,
// given its bytes (code[in.Pos:in.End] of a Walk).
func BrTable(b []byte) (labels []uint32, def uint32, err error) {
	r := &reader{b: b}
	if op := r.byte(); op != byte(OpBrTable) {
		return nil, 0, fmt.Errorf("%w: opcode %#x is not br_table", ErrMalformed, op)
	}
	n := r.count(1)
	labels = make([]uint32, 0, n)
	for ; n > 0 && r.err == nil; n-- {
		labels = append(labels, r.u32())
	}
	def = r.u32()
	return labels, def, r.err
}
