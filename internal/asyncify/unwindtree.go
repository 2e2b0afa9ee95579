package asyncify

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ternhq/tern/internal/wasmbin"
)

// errFallback: tern's own unwind transform cannot handle the module (SIMD,
// reference-typed locals, a value it cannot spill); Prepare then uses
// binaryen's Asyncify instead.
var errFallback = errors.New("tern's unwind transform does not handle it")

func fallback(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errFallback}, args...)...)
}

// item is one instruction of a function body, constructs holding theirs.
type item struct {
	in   wasmbin.Instr
	raw  []byte // the instruction's bytes; for constructs, the opcode and block type
	body []*item
	els  []*item // an if's else arm
	// hasElse: the if has an else arm (possibly empty).
	hasElse bool
	dead    bool // after an unconditional branch: never runs

	// Site ids (tern's unwind points) are numbered in the order of the
	// code, so that a construct's are a range: [lo, hi), an if's then arm
	// holding [lo, mid).
	site     int // > 0: a call that may unwind
	loopSite int // > 0: the safepoint at this loop's header
	lo, hi   int
	mid      int

	kind   siteKind // of a call site
	sig    wasmbin.FuncType
	before []slot // this level's operand stack before the item
	after  []slot // and after it
	spill  int32  // >= 0: local the item's top result is teed into
}

type siteKind int

const (
	siteDirect   siteKind = iota // call of a defined function
	siteIndirect                 // call_indirect
	siteImport                   // call of a blocking WASI import, made again on resume
)

// hasSites reports whether the item is, or holds, an unwind point.
func (it *item) hasSites() bool { return it.hi > it.lo }

// slot is one operand stack value: its type and the item that pushed it.
type slot struct {
	t      wasmbin.ValType // 0 where unknown (unreachable code)
	pusher *item
	top    bool // the pusher's last result
}

// buildTree turns a body's instructions into items.
func buildTree(code []byte) ([]*item, error) {
	root := &item{}
	open := []*item{root}
	inElse := []bool{false}
	add := func(it *item) {
		top := open[len(open)-1]
		if inElse[len(inElse)-1] {
			top.els = append(top.els, it)
		} else {
			top.body = append(top.body, it)
		}
	}
	done := false
	err := wasmbin.Walk(code, func(in wasmbin.Instr) error {
		if done {
			return fmt.Errorf("%w: code after the function's end", wasmbin.ErrMalformed)
		}
		it := &item{in: in, raw: code[in.Pos:in.End], spill: -1}
		switch in.Op {
		case wasmbin.OpBlock, wasmbin.OpLoop, wasmbin.OpIf:
			add(it)
			open = append(open, it)
			inElse = append(inElse, false)
		case wasmbin.OpElse:
			top := open[len(open)-1]
			if top.in.Op != wasmbin.OpIf || inElse[len(inElse)-1] {
				return fmt.Errorf("%w: else outside an if", wasmbin.ErrMalformed)
			}
			top.hasElse = true
			inElse[len(inElse)-1] = true
		case wasmbin.OpEnd:
			if len(open) == 1 {
				done = true
				return nil
			}
			open, inElse = open[:len(open)-1], inElse[:len(inElse)-1]
		default:
			add(it)
		}
		return nil
	})
	if err == nil && !done {
		err = fmt.Errorf("%w: function without an end", wasmbin.ErrMalformed)
	}
	return root.body, err
}

// moduleTypes is what typing a body needs of its module.
type moduleTypes struct {
	m       *wasmbin.Module
	globals []wasmbin.ValType
	tables  []wasmbin.ValType
}

func newModuleTypes(m *wasmbin.Module) *moduleTypes {
	mt := &moduleTypes{m: m}
	for _, im := range m.Imports {
		switch im.Kind {
		case wasmbin.KindGlobal:
			mt.globals = append(mt.globals, im.Global.Type)
		case wasmbin.KindTable:
			mt.tables = append(mt.tables, im.Table.Elem)
		}
	}
	for _, g := range m.Globals {
		mt.globals = append(mt.globals, g.Type)
	}
	for _, t := range m.Tables {
		mt.tables = append(mt.tables, t.Elem)
	}
	return mt
}

// blockSig is the signature of a block type.
func (mt *moduleTypes) blockSig(bt int64) (wasmbin.FuncType, error) {
	switch {
	case bt == -64:
		return wasmbin.FuncType{}, nil
	case bt < 0:
		return wasmbin.FuncType{Results: []wasmbin.ValType{wasmbin.ValType(bt + 0x80)}}, nil
	case bt < int64(len(mt.m.Types)):
		return mt.m.Types[bt], nil
	}
	return wasmbin.FuncType{}, fmt.Errorf("%w: block type %d", wasmbin.ErrMalformed, bt)
}

// analysis types one function body and finds its unwind points.
type analysis struct {
	mt     *moduleTypes
	locals []wasmbin.ValType // params, then declared locals
	// mayUnwind tells, by function index, whether a call can unwind;
	// indirect whether a call_indirect of a type index can.
	mayUnwind func(f uint32) bool
	indirect  func(t int64) bool
	blocking  func(f uint32) bool
	iterates  map[int]bool
	next      int // next site id
	spills    []wasmbin.ValType
}

type label struct{ types []wasmbin.ValType }

// seq types one level of items, whose operand stack starts empty.
func (a *analysis) seq(items []*item, labels []label) error {
	var stack []slot
	unreachable := false
	pop := func(n int) ([]slot, error) {
		if len(stack) < n {
			if unreachable {
				out := make([]slot, n)
				copy(out[n-len(stack):], stack)
				stack = stack[:0]
				return out, nil
			}
			return nil, fmt.Errorf("%w: operand stack underflow", wasmbin.ErrMalformed)
		}
		out := slices.Clone(stack[len(stack)-n:])
		stack = stack[:len(stack)-n]
		return out, nil
	}
	push := func(it *item, ts ...wasmbin.ValType) {
		for i, t := range ts {
			stack = append(stack, slot{t: t, pusher: it, top: i == len(ts)-1})
		}
	}
	for _, it := range items {
		it.before = slices.Clone(stack)
		if unreachable {
			it.dead = true
			continue
		}
		op := it.in.Op
		switch op {
		case wasmbin.OpBlock, wasmbin.OpLoop, wasmbin.OpIf:
			sig, err := a.mt.blockSig(it.in.Imm)
			if err != nil {
				return err
			}
			if len(sig.Params) > 0 {
				return fallback("block parameters")
			}
			it.sig = sig
			if op == wasmbin.OpIf {
				if _, err := pop(1); err != nil {
					return err
				}
			}
			it.lo = a.next
			inner := label{sig.Results}
			if op == wasmbin.OpLoop {
				inner = label{sig.Params}
				if a.iterates[it.in.Pos] {
					it.loopSite = a.next
					a.next++
				}
			}
			lbls := append(slices.Clip(labels), inner)
			if err := a.seq(it.body, lbls); err != nil {
				return err
			}
			it.mid = a.next
			if err := a.seq(it.els, lbls); err != nil {
				return err
			}
			it.hi = a.next
			if it.hasSites() {
				// Values below a construct that unwinds live across it.
				if err := a.spillAll(stack); err != nil {
					return err
				}
			}
			push(it, sig.Results...)
		default:
			if err := a.plain(it, &stack, pop, push, labels, &unreachable); err != nil {
				return err
			}
		}
		it.after = slices.Clone(stack)
	}
	return nil
}

// spillAll gives every value of stack a local its pusher tees it into.
func (a *analysis) spillAll(stack []slot) error {
	for _, s := range stack {
		if s.pusher == nil {
			return fallback("a value of unknown origin lives across a call that may unwind")
		}
		if !s.top {
			return fallback("a value that is not the last result of its instruction lives across a call that may unwind")
		}
		if s.pusher.spill >= 0 {
			continue
		}
		switch s.t {
		case wasmbin.I32, wasmbin.I64, wasmbin.F32, wasmbin.F64:
		default:
			return fallback("a %s value lives across a call that may unwind", s.t)
		}
		s.pusher.spill = int32(len(a.locals) + len(a.spills))
		a.spills = append(a.spills, s.t)
	}
	return nil
}

func (a *analysis) plain(it *item, stackp *[]slot, pop func(int) ([]slot, error), push func(*item, ...wasmbin.ValType), labels []label, unreachable *bool) error {
	op := it.in.Op
	i32, i64, f32, f64 := wasmbin.I32, wasmbin.I64, wasmbin.F32, wasmbin.F64
	// un/bin: pop n of one type and push one of another.
	popPush := func(n int, out ...wasmbin.ValType) error {
		if _, err := pop(n); err != nil {
			return err
		}
		push(it, out...)
		return nil
	}
	switch {
	case op == wasmbin.OpUnreachable, op == wasmbin.OpReturn, op == wasmbin.OpBr, op == wasmbin.OpBrTable:
		*unreachable = true
		*stackp = (*stackp)[:0]
		return nil
	case op == wasmbin.OpNop:
		return nil
	case op == wasmbin.OpBrIf:
		_, err := pop(1)
		return err
	case op == wasmbin.OpCall || op == wasmbin.OpCallIndirect:
		var sig wasmbin.FuncType
		var err error
		n := 0
		if op == wasmbin.OpCall {
			sig, err = a.mt.m.FuncType(uint32(it.in.Imm))
		} else {
			if it.in.Imm < 0 || it.in.Imm >= int64(len(a.mt.m.Types)) {
				return fmt.Errorf("%w: type %d", wasmbin.ErrMalformed, it.in.Imm)
			}
			sig, n = a.mt.m.Types[it.in.Imm], 1
		}
		if err != nil {
			return err
		}
		n += len(sig.Params)
		unwinds := false
		switch {
		case op == wasmbin.OpCallIndirect:
			unwinds, it.kind = a.indirect(it.in.Imm), siteIndirect
		case a.blocking(uint32(it.in.Imm)):
			unwinds, it.kind = true, siteImport
		default:
			unwinds, it.kind = a.mayUnwind(uint32(it.in.Imm)), siteDirect
		}
		if unwinds {
			st := *stackp
			if len(st) < n {
				return fmt.Errorf("%w: operand stack underflow", wasmbin.ErrMalformed)
			}
			it.site, it.lo, it.hi = a.next, a.next, a.next+1
			a.next++
			it.sig = sig
			live := st[:len(st)-n]
			if it.kind == siteImport {
				live = st // the arguments too: the call is made again
			}
			if err := a.spillAll(live); err != nil {
				return err
			}
		}
		return popPush(n, sig.Results...)
	case op == wasmbin.OpDrop:
		_, err := pop(1)
		return err
	case op == 0x1b || op == 0x1c: // select
		v, err := pop(3)
		if err != nil {
			return err
		}
		t := v[0].t
		if t == 0 {
			t = v[1].t
		}
		if op == 0x1c && len(it.raw) >= 3 {
			t = wasmbin.ValType(it.raw[2])
		}
		push(it, t)
		return nil
	case op == wasmbin.OpLocalGet || op == wasmbin.OpLocalSet || op == wasmbin.OpLocalTee:
		if it.in.Imm >= int64(len(a.locals)) {
			return fmt.Errorf("%w: local %d", wasmbin.ErrMalformed, it.in.Imm)
		}
		t := a.locals[it.in.Imm]
		switch op {
		case wasmbin.OpLocalGet:
			push(it, t)
			return nil
		case wasmbin.OpLocalSet:
			_, err := pop(1)
			return err
		}
		return popPush(1, t)
	case op == wasmbin.OpGlobalGet || op == wasmbin.OpGlobalSet:
		if it.in.Imm >= int64(len(a.mt.globals)) {
			return fmt.Errorf("%w: global %d", wasmbin.ErrMalformed, it.in.Imm)
		}
		if op == wasmbin.OpGlobalGet {
			push(it, a.mt.globals[it.in.Imm])
			return nil
		}
		_, err := pop(1)
		return err
	case op == 0x25 || op == wasmbin.OpTableSet: // table.get, table.set
		if it.in.Imm >= int64(len(a.mt.tables)) {
			return fmt.Errorf("%w: table %d", wasmbin.ErrMalformed, it.in.Imm)
		}
		if op == 0x25 {
			return popPush(1, a.mt.tables[it.in.Imm])
		}
		_, err := pop(2)
		return err
	case op >= 0x28 && op <= 0x35: // loads
		t := i32
		switch {
		case op == 0x29 || op >= 0x30:
			t = i64
		case op == 0x2a:
			t = f32
		case op == 0x2b:
			t = f64
		}
		return popPush(1, t)
	case op >= 0x36 && op <= 0x3e: // stores
		_, err := pop(2)
		return err
	case op == wasmbin.OpMemorySize:
		push(it, i32)
		return nil
	case op == wasmbin.OpMemoryGrow:
		return popPush(1, i32)
	case op >= 0x41 && op <= 0x44:
		push(it, [...]wasmbin.ValType{i32, i64, f32, f64}[op-0x41])
		return nil
	case op == 0x45:
		return popPush(1, i32)
	case op >= 0x46 && op <= 0x4f:
		return popPush(2, i32)
	case op == 0x50:
		return popPush(1, i32)
	case op >= 0x51 && op <= 0x66:
		return popPush(2, i32)
	case op >= 0x67 && op <= 0x69:
		return popPush(1, i32)
	case op >= 0x6a && op <= 0x78:
		return popPush(2, i32)
	case op >= 0x79 && op <= 0x7b:
		return popPush(1, i64)
	case op >= 0x7c && op <= 0x8a:
		return popPush(2, i64)
	case op >= 0x8b && op <= 0x91:
		return popPush(1, f32)
	case op >= 0x92 && op <= 0x98:
		return popPush(2, f32)
	case op >= 0x99 && op <= 0x9f:
		return popPush(1, f64)
	case op >= 0xa0 && op <= 0xa6:
		return popPush(2, f64)
	case op >= 0xa7 && op <= 0xbf: // conversions
		out := [...]wasmbin.ValType{
			i32, i32, i32, i32, i32, // wrap, trunc f32 s/u, trunc f64 s/u
			i64, i64, i64, i64, i64, i64, // extend i32 s/u, trunc f32 s/u, trunc f64 s/u
			f32, f32, f32, f32, f32, // convert i32 s/u, i64 s/u, demote
			f64, f64, f64, f64, f64, // convert i32 s/u, i64 s/u, promote
			i32, i64, f32, f64, // reinterpret
		}[op-0xa7]
		return popPush(1, out)
	case op >= 0xc0 && op <= 0xc1:
		return popPush(1, i32)
	case op >= 0xc2 && op <= 0xc4:
		return popPush(1, i64)
	case op == 0xd0: // ref.null t
		if len(it.raw) < 2 {
			return fmt.Errorf("%w: ref.null", wasmbin.ErrMalformed)
		}
		push(it, wasmbin.ValType(it.raw[1]))
		return nil
	case op == 0xd1: // ref.is_null
		return popPush(1, i32)
	case op == wasmbin.OpRefFunc:
		push(it, wasmbin.FuncRef)
		return nil
	case op>>16 == 0xfc:
		switch sub := op & 0xffff; {
		case sub <= 3:
			return popPush(1, i32)
		case sub <= 7:
			return popPush(1, i64)
		case sub == 8, sub == 10, sub == 11, sub == 12, sub == 14:
			_, err := pop(3)
			return err
		case sub == 9, sub == 13:
			return nil
		case sub == 15: // table.grow
			return popPush(2, i32)
		case sub == 16: // table.size
			push(it, i32)
			return nil
		case sub == 17: // table.fill
			_, err := pop(3)
			return err
		}
	case op>>16 == 0xfd:
		return fallback("SIMD instructions")
	}
	return fallback("instruction %#x", uint32(op))
}
