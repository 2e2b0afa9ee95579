package asyncify

import (
	"fmt"
	"slices"

	"github.com/ternhq/tern/internal/wasmbin"
)

// unwindModule is what emitting a function of tern's own unwind transform
// needs of the module.
type unwindModule struct {
	m                               *wasmbin.Module
	flag, unwinding, pages          uint32 // globals
	grow                            uint32
	impSafepoint, impPush, impFrame uint32
	impPop                          uint32
	resumeOf                        map[uint32]uint32 // function → its resume clone
	dispatch                        map[string]uint32 // results key → dispatcher
}

// plan is one function that may unwind.
type plan struct {
	fi        uint32
	sig       wasmbin.FuncType
	declared  []wasmbin.ValType // declared locals (after the params)
	spills    []wasmbin.ValType
	items     []*item
	entrySite int // > 0: the safepoint at the function's entry
}

// numLocals counts params, declared locals and spills: the locals a frame
// saves. The site local follows them.
func (p *plan) numLocals() int { return len(p.sig.Params) + len(p.declared) + len(p.spills) }

func (p *plan) localType(i int) wasmbin.ValType {
	switch {
	case i < len(p.sig.Params):
		return p.sig.Params[i]
	case i < len(p.sig.Params)+len(p.declared):
		return p.declared[i-len(p.sig.Params)]
	}
	return p.spills[i-len(p.sig.Params)-len(p.declared)]
}

// Output labels of a transformed function: the function's own (0), the
// unwind exit's block (1) and the block standing for the original body (2).
const (
	labelUnwind = 1
	labelBody   = 2
)

type emitter struct {
	u      *unwindModule
	resume bool
	out    []byte
	labels []int // output label of each open original construct
	depth  int   // open output labels
	site   uint32
}

func (e *emitter) op(b ...byte)            { e.out = append(e.out, b...) }
func (e *emitter) uleb(v uint64)           { e.out = wasmbin.AppendULEB(e.out, v) }
func (e *emitter) opIdx(op byte, v uint32) { e.op(op); e.uleb(uint64(v)) }
func (e *emitter) i32(v int)               { e.op(0x41); e.out = wasmbin.AppendSLEB(e.out, int64(v)) }
func (e *emitter) getSite()                { e.opIdx(0x20, e.site) }
func (e *emitter) setSite()                { e.opIdx(0x21, e.site) }
func (e *emitter) brTo(label int)          { e.opIdx(0x0c, uint32(e.depth-1-label)) }
func (e *emitter) brIf(label int)          { e.opIdx(0x0d, uint32(e.depth-1-label)) }

// open starts a construct of the output that is not one of the original.
func (e *emitter) open(op byte, params, results []wasmbin.ValType) {
	e.op(op)
	e.blockType(params, results)
	e.depth++
}

func (e *emitter) end() { e.op(0x0b); e.depth-- }

func (e *emitter) blockType(params, results []wasmbin.ValType) {
	switch {
	case len(params) == 0 && len(results) == 0:
		e.op(0x40)
	case len(params) == 0 && len(results) == 1:
		e.op(byte(results[0]))
	default:
		t := e.u.m.AddType(wasmbin.FuncType{Params: slices.Clone(params), Results: slices.Clone(results)})
		e.out = wasmbin.AppendSLEB(e.out, int64(t))
	}
}

func (e *emitter) relabel(d uint64) (uint32, error) {
	if d >= uint64(len(e.labels)) {
		return 0, fmt.Errorf("%w: branch depth %d", wasmbin.ErrMalformed, d)
	}
	return uint32(e.depth - 1 - e.labels[len(e.labels)-1-int(d)]), nil
}

func types(s []slot) []wasmbin.ValType {
	out := make([]wasmbin.ValType, len(s))
	for i, v := range s {
		out[i] = v.t
	}
	return out
}

// pushSlot pushes, in place of code that a resume skips, the value that
// code left: the one saved with the frame if it lives on, else a zero
// nothing reads.
func (e *emitter) pushSlot(s slot) error {
	if s.pusher != nil && s.pusher.spill >= 0 {
		e.opIdx(0x20, uint32(s.pusher.spill))
		return nil
	}
	return e.zero(s.t)
}

func (e *emitter) zero(t wasmbin.ValType) error {
	switch t {
	case wasmbin.I32:
		e.op(0x41, 0)
	case wasmbin.I64:
		e.op(0x42, 0)
	case wasmbin.F32:
		e.op(0x43, 0, 0, 0, 0)
	case wasmbin.F64:
		e.op(0x44, 0, 0, 0, 0, 0, 0, 0, 0)
	case wasmbin.FuncRef, wasmbin.ExternRef:
		e.op(0xd0, byte(t))
	default:
		return fallback("a %s value in code a resume skips", t)
	}
	return nil
}

func (e *emitter) drops(n int) {
	for range n {
		e.op(0x1a)
	}
}

// skip emits the stand-in for code a resume skips: it drops what the code
// would consume and pushes what it would leave.
func (e *emitter) skip(consumed int, left []slot) error {
	e.drops(consumed)
	for _, s := range left {
		if err := e.pushSlot(s); err != nil {
			return err
		}
	}
	return nil
}

// level emits one level of items. In a resume clone, everything before the
// item holding the site being resumed is skipped: runs of items without
// sites under a guard on the site local, items with sites by their range.
func (e *emitter) level(items []*item) error {
	last := -1
	if e.resume {
		for i, it := range items {
			if !it.dead && it.hasSites() {
				last = i
			}
		}
	}
	for i := 0; i < len(items); {
		if i < last && !items[i].hasSites() {
			j := i
			for j < last && !items[j].hasSites() {
				j++
			}
			if err := e.guardRun(items[i:j]); err != nil {
				return err
			}
			i = j
			continue
		}
		if err := e.item(items[i]); err != nil {
			return err
		}
		i++
	}
	return nil
}

// commonPrefix is how much of the stack an item leaves untouched.
func commonPrefix(before, after []slot) int {
	n := 0
	for n < len(before) && n < len(after) && before[n] == after[n] {
		n++
	}
	return n
}

func (e *emitter) guardRun(run []*item) error {
	lastIt := run[len(run)-1]
	m := len(run[0].before)
	for _, it := range run {
		m = min(m, commonPrefix(it.before, it.after))
	}
	params, results := run[0].before[m:], lastIt.after[m:]
	e.getSite()
	e.open(0x04, types(params), types(results))
	if err := e.skip(len(params), results); err != nil {
		return err
	}
	e.op(0x05)
	for _, it := range run {
		if err := e.item(it); err != nil {
			return err
		}
	}
	e.end()
	return nil
}

// safepoint emits the check at a function's entry, site k.
func (e *emitter) safepoint(k int) {
	if e.resume {
		e.arrived(k)
	}
	e.flagUp()
	e.open(0x04, nil, nil)
	e.opIdx(0x10, e.u.impSafepoint)
	e.open(0x04, nil, nil)
	e.i32(k)
	e.setSite()
	e.brTo(labelUnwind)
	e.end()
	e.end()
}

func (e *emitter) item(it *item) error {
	switch op := it.in.Op; {
	case op == wasmbin.OpBlock || op == wasmbin.OpLoop || op == wasmbin.OpIf:
		guarded := e.resume && !it.dead && it.hasSites()
		if guarded {
			var params []wasmbin.ValType
			if op == wasmbin.OpIf {
				params = []wasmbin.ValType{wasmbin.I32}
			}
			res := it.after[len(it.after)-len(it.sig.Results):]
			e.getSite()
			e.i32(it.hi)
			e.op(0x4f) // i32.ge_u: the site is past this construct
			e.open(0x04, params, types(res))
			if err := e.skip(len(params), res); err != nil {
				return err
			}
			e.op(0x05)
			if op == wasmbin.OpIf {
				// The condition was skipped: the arm holding the site is taken.
				i32 := []wasmbin.ValType{wasmbin.I32}
				e.getSite()
				e.open(0x04, i32, i32)
				e.op(0x1a)
				e.getSite()
				e.i32(it.mid)
				e.op(0x49) // i32.lt_u
				e.end()
			}
		}
		if it.loopSite > 0 {
			if err := e.loop(it); err != nil {
				return err
			}
		} else if err := e.construct(it); err != nil {
			return err
		}
		if guarded {
			e.end()
		}
	case it.site > 0 && !it.dead:
		if err := e.call(it); err != nil {
			return err
		}
	default:
		if err := e.plainInstr(it); err != nil {
			return err
		}
	}
	if it.spill >= 0 {
		e.opIdx(0x22, uint32(it.spill)) // local.tee
	}
	return nil
}

// construct emits an original block, loop or if and what it holds.
func (e *emitter) construct(it *item) error {
	e.op(it.raw...)
	e.labels = append(e.labels, e.depth)
	e.depth++
	if err := e.level(it.body); err != nil {
		return err
	}
	if it.hasElse {
		e.op(0x05)
		if err := e.level(it.els); err != nil {
			return err
		}
	}
	e.op(0x0b)
	e.depth--
	e.labels = e.labels[:len(e.labels)-1]
	return nil
}

// loop emits a loop with a safepoint. Its header only reads the flag and
// leaves the loop when it is up: a call inside the loop, even one not
// taken, would cost every iteration. The safepoint is outside, and the
// loop is entered again at its header, where it was (its operand stack
// is empty there):
//
//	block $done (bt)
//	  loop $again
//	    block $yield
//	      loop $L (bt)
//	        global.get $flag
//	        br_if $yield
//	        ...the loop...
//	      end
//	      br $done
//	    end
//	    call $tern.safepoint
//	    if  (site k: unwind)  end
//	    br $again
//	  end
//	  unreachable
//	end
func (e *emitter) loop(it *item) error {
	e.op(0x02)
	e.op(it.raw[1:]...)
	e.depth++
	done := e.depth - 1
	e.open(0x03, nil, nil)
	again := e.depth - 1
	e.open(0x02, nil, nil)
	yield := e.depth - 1
	e.op(it.raw...)
	e.labels = append(e.labels, e.depth)
	e.depth++
	e.flagUp()
	e.brIf(yield)
	if e.resume {
		e.arrived(it.loopSite)
	}
	if err := e.level(it.body); err != nil {
		return err
	}
	e.op(0x0b)
	e.depth--
	e.labels = e.labels[:len(e.labels)-1]
	e.brTo(done)
	e.end()
	e.opIdx(0x10, e.u.impSafepoint)
	e.open(0x04, nil, nil)
	e.i32(it.loopSite)
	e.setSite()
	e.brTo(labelUnwind)
	e.end()
	e.brTo(again)
	e.end()
	e.op(0x00)
	e.end()
	return nil
}

// flagUp pushes whether a safepoint is to call in. In a resume clone not
// while the frame is still on its way to its saved site: stopping there
// would save a site the frame has not reached, and code between them
// would run twice.
func (e *emitter) flagUp() {
	e.opIdx(0x23, e.u.flag)
	if e.resume {
		e.getSite()
		e.op(0x45, 0x71) // i32.eqz, i32.and
	}
}

// arrived ends a resume that has reached safepoint k.
func (e *emitter) arrived(k int) {
	e.getSite()
	e.open(0x04, nil, nil)
	e.getSite()
	e.i32(k)
	e.op(0x46) // i32.eq
	e.open(0x04, nil, nil)
	e.i32(0)
	e.setSite()
	e.end()
	e.end()
}

func (e *emitter) call(it *item) error {
	n := len(it.sig.Params)
	if it.kind == siteIndirect {
		n++
	}
	args := it.before[len(it.before)-n:]
	res := it.after[len(it.after)-len(it.sig.Results):]
	if e.resume {
		e.getSite()
		e.open(0x04, types(args), it.sig.Results)
		e.getSite()
		e.i32(it.site)
		e.op(0x46) // i32.eq
		e.open(0x04, types(args), it.sig.Results)
		// Resuming here: rebuild the callee's frame.
		e.drops(n)
		e.i32(0)
		e.setSite()
		switch it.kind {
		case siteDirect:
			callee := uint32(it.in.Imm)
			e.opIdx(0x10, e.u.impPop)
			e.op(0x42)
			e.out = wasmbin.AppendSLEB(e.out, int64(callee))
			e.op(0x52) // i64.ne
			e.open(0x04, nil, nil)
			e.op(0x00)
			e.end()
			e.opIdx(0x10, e.u.resumeOf[callee])
		case siteIndirect:
			e.opIdx(0x10, e.u.dispatch[resultsKey(it.sig.Results)])
		case siteImport:
			for _, a := range args {
				if err := e.pushSlot(a); err != nil {
					return err
				}
			}
			e.op(it.raw...)
		}
		e.op(0x05)
		if err := e.skip(n, res); err != nil {
			return err
		}
		e.end()
		e.op(0x05)
		e.op(it.raw...)
		e.end()
	} else {
		e.op(it.raw...)
	}
	e.opIdx(0x23, e.u.unwinding)
	e.open(0x04, nil, nil)
	e.i32(it.site)
	e.setSite()
	e.brTo(labelUnwind)
	e.end()
	return nil
}

func (e *emitter) plainInstr(it *item) error {
	switch it.in.Op {
	case wasmbin.OpBr, wasmbin.OpBrIf:
		d, err := e.relabel(uint64(it.in.Imm))
		if err != nil {
			return err
		}
		e.opIdx(byte(it.in.Op), d)
	case wasmbin.OpBrTable:
		labels, def, err := wasmbin.BrTable(it.raw)
		if err != nil {
			return err
		}
		e.opIdx(byte(wasmbin.OpBrTable), uint32(len(labels)))
		for _, l := range append(labels, def) {
			d, err := e.relabel(uint64(l))
			if err != nil {
				return err
			}
			e.uleb(uint64(d))
		}
	case wasmbin.OpMemorySize:
		e.opIdx(0x23, e.u.pages)
	case wasmbin.OpMemoryGrow:
		e.opIdx(0x10, e.u.grow)
	case wasmbin.OpBlock, wasmbin.OpLoop, wasmbin.OpIf:
		return fmt.Errorf("construct as a plain instruction")
	default:
		e.op(it.raw...)
	}
	return nil
}

func resultsKey(ts []wasmbin.ValType) string {
	b := make([]byte, len(ts))
	for i, t := range ts {
		b[i] = byte(t)
	}
	return string(b)
}

// function emits a transformed function: the fast one, which the program
// runs, or its resume clone, which takes no parameters, reads the frame
// back and carries on from its site.
func (u *unwindModule) function(p *plan, resume bool) (wasmbin.Body, error) {
	e := &emitter{u: u, resume: resume, depth: 1, site: uint32(p.numLocals())}
	var decl []wasmbin.ValType
	if resume {
		decl = append(decl, p.sig.Params...)
	}
	decl = append(append(append(decl, p.declared...), p.spills...), wasmbin.I32)
	raw := encodeLocals(decl)
	code := len(raw)

	if resume {
		e.opIdx(0x10, u.impPop)
		e.op(0xa7) // i32.wrap_i64
		e.setSite()
		for i := range p.numLocals() {
			e.opIdx(0x10, u.impPop)
			fromI64(e, p.localType(i))
			e.opIdx(0x21, uint32(i))
		}
	}
	e.open(0x02, nil, nil) // the unwind exit
	e.open(0x02, nil, p.sig.Results)
	e.labels = []int{labelBody}
	if p.entrySite > 0 {
		e.safepoint(p.entrySite)
	}
	if err := e.level(p.items); err != nil {
		return wasmbin.Body{}, err
	}
	e.end()
	e.op(0x0f) // return
	e.end()
	// Unwinding: save the frame for the host, innermost first.
	for i := range p.numLocals() {
		e.opIdx(0x20, uint32(i))
		toI64(e, p.localType(i))
		e.opIdx(0x10, u.impPush)
	}
	e.i32(int(p.fi))
	e.getSite()
	e.opIdx(0x10, u.impFrame)
	for _, t := range p.sig.Results {
		if err := e.zero(t); err != nil {
			return wasmbin.Body{}, err
		}
	}
	e.op(0x0b)
	return wasmbin.Body{Raw: append(raw, e.out...), Code: code}, nil
}

func toI64(e *emitter, t wasmbin.ValType) {
	switch t {
	case wasmbin.I32:
		e.op(0xad) // i64.extend_i32_u
	case wasmbin.F32:
		e.op(0xbc, 0xad) // i32.reinterpret_f32, i64.extend_i32_u
	case wasmbin.F64:
		e.op(0xbd) // i64.reinterpret_f64
	}
}

func fromI64(e *emitter, t wasmbin.ValType) {
	switch t {
	case wasmbin.I32:
		e.op(0xa7) // i32.wrap_i64
	case wasmbin.F32:
		e.op(0xa7, 0xbe) // i32.wrap_i64, f32.reinterpret_i32
	case wasmbin.F64:
		e.op(0xbf) // f64.reinterpret_i64
	}
}

func encodeLocals(ts []wasmbin.ValType) []byte {
	type group struct {
		n uint32
		t wasmbin.ValType
	}
	var gs []group
	for _, t := range ts {
		if len(gs) > 0 && gs[len(gs)-1].t == t {
			gs[len(gs)-1].n++
			continue
		}
		gs = append(gs, group{1, t})
	}
	b := wasmbin.AppendULEB(nil, uint64(len(gs)))
	for _, g := range gs {
		b = append(wasmbin.AppendULEB(b, uint64(g.n)), byte(g.t))
	}
	return b
}

// dispatcher pops a function index and resumes that function, one of
// cands (all returning the same results).
func (u *unwindModule) dispatcher(cands []uint32) wasmbin.Body {
	e := &emitter{u: u}
	e.opIdx(0x10, u.impPop)
	e.op(0xa7)
	e.op(0x21, 0)
	if len(cands) == 0 {
		e.op(0x00, 0x0b)
		return wasmbin.Body{Raw: append([]byte{1, 1, byte(wasmbin.I32)}, e.out...), Code: 3}
	}
	for range len(cands) + 1 {
		e.op(0x02, 0x40)
	}
	maxID := slices.Max(cands)
	index := make(map[uint32]int, len(cands))
	for c, f := range cands {
		index[f] = c
	}
	e.op(0x20, 0)
	e.opIdx(0x0e, maxID+1)
	for id := range maxID + 1 {
		c, ok := index[id]
		if !ok {
			c = len(cands)
		}
		e.uleb(uint64(c))
	}
	e.uleb(uint64(len(cands)))
	for _, f := range cands {
		e.op(0x0b)
		e.opIdx(0x10, u.resumeOf[f])
		e.op(0x0f)
	}
	e.op(0x0b, 0x00, 0x0b)
	return wasmbin.Body{Raw: append([]byte{1, 1, byte(wasmbin.I32)}, e.out...), Code: 3}
}
