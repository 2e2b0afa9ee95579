package asyncify

import (
	"fmt"
	"slices"

	"github.com/ternhq/tern/internal/wasmbin"
)

// tern's own unwind transform, the default preparation. Binaryen's
// Asyncify instruments every function that may unwind so that all of its
// code runs under checks of the unwind state, and that costs a running
// program a third or more of its speed. Here the program's code stays as
// it was, but for:
//
//   - safepoints: a global read at loop headers (and the entry of
//     recursive functions) that, when the host has asked, calls
//     tern.safepoint and, if that says so, starts the unwind;
//   - after each call that may unwind, a read of tern.unwinding that
//     leaves the function for its unwind exit, which hands the frame's
//     locals, function and site to the host (tern.push, tern.frame);
//   - a local.tee after each instruction whose value lives across such
//     a call, so that the frame holds it.
//
// A stack is rebuilt by resume clones: F$resume takes no arguments, reads
// its frame back (tern.pop), and runs F's code with everything before
// the saved site skipped under guards on one local, each skipped piece
// leaving the values that the saved frame holds (or zeros nobody reads).
// At the site it rebuilds the callee's frame the same way, and makes a
// blocking WASI call again. The clone then runs to F's end at nearly F's
// speed: a resumed frame pays a local read per skipped piece.
//
// The host keeps the frames, so nothing of the program's memory is used
// and a stack of any depth unwinds.

// Imports and exports of a module tern's own transform prepared.
const (
	ImportSafepoint = "safepoint" // () -> i32: nonzero starts the unwind
	ImportPush      = "push"      // (i64): a local of the frame being saved
	ImportFrame     = "frame"     // (func i32, site i32): the frame is complete
	ImportPop       = "pop"       // () -> i64: the next value of the stack being rebuilt

	// ExportUnwinding (i32 global) is nonzero while the stack unwinds.
	ExportUnwinding = "tern.unwinding"
)

// RunRewind is the mode of tern.run that rebuilds the stack from the host's
// frames (tern's own transform).
const RunRewind = 3

// Unwind is tern's own preparation. It returns errFallback (wrapped) for a
// module it does not handle.
func Unwind(wasm []byte) (out []byte, tables bool, err error) {
	m, tables, err := unwind(wasm)
	if err != nil {
		return nil, false, err
	}
	return m.Encode(), tables, nil
}

// unwind is Unwind, its module not yet encoded.
func unwind(wasm []byte) (m *wasmbin.Module, tables bool, err error) {
	m, tables, err = parseToPrepare(wasm)
	if err != nil {
		return nil, false, err
	}
	u := &unwindModule{m: m, resumeOf: map[uint32]uint32{}, dispatch: map[string]uint32{}}
	i32, i64 := wasmbin.I32, wasmbin.I64
	imports := []struct {
		name string
		ft   wasmbin.FuncType
		idx  *uint32
	}{
		{ImportSafepoint, wasmbin.FuncType{Results: []wasmbin.ValType{i32}}, &u.impSafepoint},
		{ImportPush, wasmbin.FuncType{Params: []wasmbin.ValType{i64}}, &u.impPush},
		{ImportFrame, wasmbin.FuncType{Params: []wasmbin.ValType{i32, i32}}, &u.impFrame},
		{ImportPop, wasmbin.FuncType{Results: []wasmbin.ValType{i64}}, &u.impPop},
	}
	for _, im := range imports {
		if _, err := m.AddFuncImport(ImportModule, im.name, m.AddType(im.ft)); err != nil {
			return nil, false, err
		}
	}
	// Each import shifted the ones before it.
	for _, im := range imports {
		fi, ok := m.FuncIndex(ImportModule, im.name)
		if !ok {
			return nil, false, fmt.Errorf("import %s.%s went missing", ImportModule, im.name)
		}
		*im.idx = fi
	}
	numFuncs := m.NumFuncs()
	u.pages, u.grow = addMemoryView(m)
	u.flag = addFlag(m)
	u.unwinding = addFlag(m)

	blocking := map[uint32]bool{}
	for _, name := range UnwindImports {
		if name == ImportModule+"."+ImportYield {
			continue
		}
		for i := range len(name) {
			if name[i] == '.' {
				if fi, ok := m.FuncIndex(name[:i], name[i+1:]); ok {
					blocking[fi] = true
				}
				break
			}
		}
	}
	calls, err := newCallGraph(m)
	if err != nil {
		return nil, false, err
	}
	n := len(m.Codes)
	base := m.NumImportedFuncs
	growAt := int(u.grow - base)
	iterates := make([]map[int]bool, n)
	entry := make([]bool, n)
	may := make([]bool, n)
	callers := make([][]uint32, n)
	var work []int
	for i, b := range m.Codes {
		if i == growAt {
			continue
		}
		if iterates[i], err = iteratingLoops(b.Instructions()); err != nil {
			return nil, false, fmt.Errorf("function %s: %w", m.FuncName(base+uint32(i)), err)
		}
		if entry[i], err = calls.needsEntrySafepoint(i, b.Instructions(), iterates[i]); err != nil {
			return nil, false, fmt.Errorf("function %s: %w", m.FuncName(base+uint32(i)), err)
		}
		for _, c := range calls.edges[i] {
			callers[c] = append(callers[c], uint32(i))
		}
		seed := entry[i] || len(iterates[i]) > 0
		if !seed {
			err := wasmbin.Walk(b.Instructions(), func(in wasmbin.Instr) error {
				seed = seed || in.Op == wasmbin.OpCall && blocking[uint32(in.Imm)]
				return nil
			})
			if err != nil {
				return nil, false, err
			}
		}
		if seed {
			may[i] = true
			work = append(work, i)
		}
	}
	for len(work) > 0 {
		f := work[len(work)-1]
		work = work[:len(work)-1]
		for _, c := range callers[f] {
			if !may[c] {
				may[c] = true
				work = append(work, int(c))
			}
		}
	}
	mayUnwind := func(f uint32) bool { return f >= base && int(f-base) < n && may[f-base] }
	mt := newModuleTypes(m)
	var plans []*plan
	for i, b := range m.Codes {
		fi := base + uint32(i)
		if i == growAt {
			continue
		}
		if !may[i] {
			// Nothing unwinds here: only memory.size and memory.grow change.
			code, err := bodyRewrite{pages: u.pages, grow: u.grow}.instrumentBody(b.Instructions(), false, nil)
			if err != nil {
				return nil, false, fmt.Errorf("function %s: %w", m.FuncName(fi), err)
			}
			if err := m.SetBody(fi, wasmbin.Body{Raw: append(b.Raw[:b.Code:b.Code], code...), Code: b.Code}); err != nil {
				return nil, false, err
			}
			continue
		}
		p, err := planFunc(mt, fi, b, iterates[i], entry[i], mayUnwind, blocking, calls)
		if err != nil {
			return nil, false, fmt.Errorf("function %s: %w", m.FuncName(fi), err)
		}
		plans = append(plans, p)
	}

	// Indices of what is added: resume clones, then dispatchers.
	next := m.NumFuncs()
	for _, p := range plans {
		u.resumeOf[p.fi] = next
		next++
	}
	byResults := map[string][]uint32{"": nil}
	for _, p := range plans {
		k := resultsKey(p.sig.Results)
		byResults[k] = append(byResults[k], p.fi)
	}
	keys := []string{""}
	for _, p := range plans {
		walkItems(p.items, func(it *item) {
			if it.site > 0 && it.kind == siteIndirect {
				if k := resultsKey(it.sig.Results); !slices.Contains(keys, k) {
					keys = append(keys, k)
				}
			}
		})
	}
	for _, k := range keys {
		u.dispatch[k] = next
		next++
	}

	for _, p := range plans {
		body, err := u.function(p, false)
		if err != nil {
			return nil, false, fmt.Errorf("function %s: %w", m.FuncName(p.fi), err)
		}
		if err := m.SetBody(p.fi, body); err != nil {
			return nil, false, err
		}
	}
	for _, p := range plans {
		body, err := u.function(p, true)
		if err != nil {
			return nil, false, fmt.Errorf("function %s: %w", m.FuncName(p.fi), err)
		}
		fi := m.AddFunc(m.AddType(wasmbin.FuncType{Results: p.sig.Results}), body)
		if fi != u.resumeOf[p.fi] {
			return nil, false, fmt.Errorf("resume clone of %s took index %d, not %d", m.FuncName(p.fi), fi, u.resumeOf[p.fi])
		}
		m.SetFuncName(fi, m.FuncName(p.fi)+"$resume")
	}
	for _, k := range keys {
		results := make([]wasmbin.ValType, len(k))
		for i := range k {
			results[i] = wasmbin.ValType(k[i])
		}
		fi := m.AddFunc(m.AddType(wasmbin.FuncType{Results: results}), u.dispatcher(byResults[k]))
		if fi != u.dispatch[k] {
			return nil, false, fmt.Errorf("dispatcher took index %d, not %d", fi, u.dispatch[k])
		}
		m.SetFuncName(fi, "tern.resume")
	}

	if err := exportGlobals(m, u.pages, u.flag); err != nil {
		return nil, false, err
	}
	if err := m.AddExport(wasmbin.Export{Name: ExportUnwinding, Kind: wasmbin.KindGlobal, Index: u.unwinding}); err != nil {
		return nil, false, err
	}
	rewind := u.dispatch[""]
	err = addEntry(m, tables, numFuncs, func(start uint32, hasStart bool, main uint32, hasMain bool) wasmbin.Body {
		b := runBody(start, hasStart, main, hasMain)
		// (if (i32.eq (local.get $mode) (i32.const 3)) (then (call $rewind) (return)))
		pre := []byte{0x20, 0, 0x41, RunRewind, 0x46, 0x04, 0x40, 0x10}
		pre = append(wasmbin.AppendULEB(pre, uint64(rewind)), 0x0f, 0x0b)
		return wasmbin.Body{Raw: append(append(b.Raw[:b.Code:b.Code], pre...), b.Raw[b.Code:]...), Code: b.Code}
	})
	if err != nil {
		return nil, false, err
	}
	return m, tables, nil
}

func walkItems(items []*item, f func(*item)) {
	for _, it := range items {
		f(it)
		walkItems(it.body, f)
		walkItems(it.els, f)
	}
}

// planFunc types function fi and finds its unwind points.
func planFunc(mt *moduleTypes, fi uint32, b wasmbin.Body, iterates map[int]bool, entry bool,
	mayUnwind func(uint32) bool, blocking map[uint32]bool, calls *callGraph) (*plan, error) {
	sig, err := mt.m.FuncType(fi)
	if err != nil {
		return nil, err
	}
	p := &plan{fi: fi, sig: sig}
	for _, l := range b.Locals() {
		for range l.Count {
			p.declared = append(p.declared, l.Type)
		}
	}
	for _, t := range append(slices.Clone(sig.Params), p.declared...) {
		switch t {
		case wasmbin.I32, wasmbin.I64, wasmbin.F32, wasmbin.F64:
		default:
			return nil, fallback("a local of type %s", t)
		}
	}
	items, err := buildTree(b.Instructions())
	if err != nil {
		return nil, err
	}
	a := &analysis{
		mt:        mt,
		locals:    append(slices.Clone(sig.Params), p.declared...),
		mayUnwind: mayUnwind,
		indirect: func(t int64) bool {
			return slices.ContainsFunc(calls.indirectTargets(t), func(f uint32) bool { return mayUnwind(f + mt.m.NumImportedFuncs) })
		},
		blocking: func(f uint32) bool { return blocking[f] },
		iterates: iterates,
		next:     1,
	}
	if entry {
		p.entrySite = a.next
		a.next++
	}
	if err := a.seq(items, []label{{sig.Results}}); err != nil {
		return nil, err
	}
	p.items, p.spills = items, a.spills
	return p, nil
}
