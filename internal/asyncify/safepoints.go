package asyncify

import (
	"fmt"
	"slices"

	"github.com/ternhq/tern/internal/wasmbin"
)

// Where safepoints go, and in what shape, decides what preparation costs
// a running program: Asyncify instruments every function that can reach an
// unwinding call and guards each such call site with checks of its state,
// and code between such calls with more. A freeze must still come soon at
// any instant; a program runs long only through a loop or a recursion, so
// every loop that iterates gets a safepoint, and so does the entry of a
// function on a cycle of the call graph unless each of its calls that may
// close the cycle sits inside such a loop. Nothing else does.
//
// A loop's safepoint does not call tern.yield inside the loop, which would
// put Asyncify's guards into every iteration. The loop leaves through a
// branch when the flag is up, yields outside, and is entered again at its
// header, where it was (locals are the function's, and the operand stack
// is empty at a loop header):
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
//	    call $tern.yield
//	    br $again
//	  end
//	  unreachable
//	end
//
// An iteration pays a global read and a branch not taken; Asyncify
// guards the loop as a whole, once per entry.

// loopWrap is how many labels the shape above adds around a loop.
const loopWrap = 3

// callGraph is the module's call graph, with indirect calls resolved by
// signature to every function a table may hold: one in an element
// segment or named by ref.func, or, when a table is shared with other
// modules, any exported one.
type callGraph struct {
	m       *wasmbin.Module
	edges   [][]uint32          // callees of each defined function (indices into Codes)
	byType  map[string][]uint32 // defined functions a table may hold, by signature
	scc     []int               // component of each defined function
	onCycle []bool              // the function's component has a cycle
}

func newCallGraph(m *wasmbin.Module) (*callGraph, error) {
	n := m.NumFuncs()
	indirect := map[uint32]bool{}
	for _, e := range m.Elems {
		for _, f := range e.Funcs {
			if f >= 0 && f < int64(n) {
				indirect[uint32(f)] = true
			}
		}
	}
	shared := m.NumImportedTables > 0
	for _, e := range m.Exports {
		shared = shared || e.Kind == wasmbin.KindTable
	}
	if shared {
		for _, e := range m.Exports {
			if e.Kind == wasmbin.KindFunc {
				indirect[e.Index] = true
			}
		}
	}
	for _, g := range m.Globals {
		if err := wasmbin.Walk(g.Init, func(in wasmbin.Instr) error {
			if in.Op == wasmbin.OpRefFunc {
				indirect[uint32(in.Imm)] = true
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	g := &callGraph{m: m, edges: make([][]uint32, len(m.Codes)), byType: map[string][]uint32{}}
	indirectTypes := make([][]int64, len(m.Codes)) // call_indirect type indices per caller
	for i, b := range m.Codes {
		err := wasmbin.Walk(b.Instructions(), func(in wasmbin.Instr) error {
			switch in.Op {
			case wasmbin.OpCall:
				f := uint32(in.Imm)
				if in.Imm >= int64(n) {
					return fmt.Errorf("%w: call of function %d, of %d", wasmbin.ErrMalformed, in.Imm, n)
				}
				if f >= m.NumImportedFuncs {
					g.edges[i] = append(g.edges[i], f-m.NumImportedFuncs)
				}
			case wasmbin.OpCallIndirect:
				indirectTypes[i] = append(indirectTypes[i], in.Imm)
			case wasmbin.OpRefFunc:
				indirect[uint32(in.Imm)] = true
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", m.FuncName(m.NumImportedFuncs+uint32(i)), err)
		}
	}
	for f := range indirect {
		if f < m.NumImportedFuncs {
			continue
		}
		ft, err := m.FuncType(f)
		if err != nil {
			return nil, err
		}
		k := sigKey(ft)
		g.byType[k] = append(g.byType[k], f-m.NumImportedFuncs)
	}
	for i, ts := range indirectTypes {
		seen := map[int64]bool{}
		for _, t := range ts {
			if !seen[t] {
				seen[t] = true
				g.edges[i] = append(g.edges[i], g.indirectTargets(t)...)
			}
		}
	}
	g.scc = make([]int, len(m.Codes))
	g.onCycle = make([]bool, len(m.Codes))
	for c, members := range stronglyConnected(g.edges) {
		cyclic := len(members) > 1 || slices.Contains(g.edges[members[0]], members[0])
		for _, f := range members {
			g.scc[f], g.onCycle[f] = c, cyclic
		}
	}
	return g, nil
}

// indirectTargets are the defined functions a call_indirect of type t may
// reach.
func (g *callGraph) indirectTargets(t int64) []uint32 {
	if t < 0 || t >= int64(len(g.m.Types)) {
		return nil
	}
	return g.byType[sigKey(g.m.Types[t])]
}

// needsEntrySafepoint reports whether defined function i needs a safepoint
// at its entry: it lies on a cycle of the call graph, and some call that
// may close the cycle is not inside a loop of the function, whose
// safepoint every such call would otherwise pass first.
//
// iterates is iteratingLoops(code).
func (g *callGraph) needsEntrySafepoint(i int, code []byte, iterates map[int]bool) (bool, error) {
	if !g.onCycle[i] {
		return false, nil
	}
	inCycle := func(f uint32) bool { return g.scc[f] == g.scc[i] }
	var loops []bool // open constructs: whether each is an iterating loop
	inLoop := 0
	need := false
	err := wasmbin.Walk(code, func(in wasmbin.Instr) error {
		switch in.Op {
		case wasmbin.OpBlock, wasmbin.OpIf:
			loops = append(loops, false)
		case wasmbin.OpLoop:
			loops = append(loops, iterates[in.Pos])
			if iterates[in.Pos] {
				inLoop++
			}
		case wasmbin.OpEnd:
			if n := len(loops); n > 0 {
				if loops[n-1] {
					inLoop--
				}
				loops = loops[:n-1]
			}
		case wasmbin.OpCall:
			if f := uint32(in.Imm); inLoop == 0 && f >= g.m.NumImportedFuncs && inCycle(f-g.m.NumImportedFuncs) {
				need = true
			}
		case wasmbin.OpCallIndirect:
			if inLoop == 0 && slices.ContainsFunc(g.indirectTargets(in.Imm), inCycle) {
				need = true
			}
		}
		return nil
	})
	return need, err
}

func sigKey(ft wasmbin.FuncType) string {
	b := make([]byte, 0, len(ft.Params)+len(ft.Results)+1)
	for _, p := range ft.Params {
		b = append(b, byte(p))
	}
	b = append(b, 0)
	for _, r := range ft.Results {
		b = append(b, byte(r))
	}
	return string(b)
}

// stronglyConnected returns the strongly connected components of the
// graph (Tarjan's algorithm, iterative: call graphs can be deep chains).
func stronglyConnected(edges [][]uint32) [][]uint32 {
	n := len(edges)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []uint32
	var out [][]uint32
	next := 0
	type frame struct {
		v    uint32
		edge int
	}
	for root := range n {
		if index[root] >= 0 {
			continue
		}
		work := []frame{{v: uint32(root)}}
		index[root], low[root] = next, next
		next++
		stack = append(stack, uint32(root))
		onStack[root] = true
		for len(work) > 0 {
			top := &work[len(work)-1]
			v := top.v
			if top.edge < len(edges[v]) {
				w := edges[v][top.edge]
				top.edge++
				if index[w] < 0 {
					index[w], low[w] = next, next
					next++
					stack = append(stack, w)
					onStack[w] = true
					work = append(work, frame{v: w})
				} else if onStack[w] {
					low[v] = min(low[v], index[w])
				}
				continue
			}
			work = work[:len(work)-1]
			if len(work) > 0 {
				u := work[len(work)-1].v
				low[u] = min(low[u], low[v])
			}
			if low[v] == index[v] {
				var scc []uint32
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					scc = append(scc, w)
					if w == v {
						break
					}
				}
				out = append(out, scc)
			}
		}
	}
	return out
}

// bodyRewrite is what instrumentBody needs to know of the module.
type bodyRewrite struct {
	flag, yield, pages, grow uint32
}

// instrumentBody inserts safepoints (at the entry when entry is set, and
// in the shape above at every loop that iterates) and routes memory.size
// and memory.grow through tern.pages. iterates is iteratingLoops(code).
func (rw bodyRewrite) instrumentBody(code []byte, entry bool, iterates map[int]bool) ([]byte, error) {

	out := make([]byte, 0, len(code)+len(code)/8+16)
	if entry {
		out = wasmbin.AppendULEB(append(out, byte(wasmbin.OpGlobalGet)), uint64(rw.flag))
		out = append(out, byte(wasmbin.OpIf), 0x40)
		out = append(wasmbin.AppendULEB(append(out, byte(wasmbin.OpCall)), uint64(rw.yield)), byte(wasmbin.OpEnd))
	}
	// wrapped[i] tells whether open construct i (the function's body is
	// 0) is a loop given the shape above.
	wrapped := []bool{false}
	// relabel moves a branch depth past the labels added between the
	// branch and its target.
	relabel := func(d uint64) uint64 {
		if d >= uint64(len(wrapped)) {
			return d // invalid; left for validation to report
		}
		extra := uint64(0)
		for i := len(wrapped) - 1; i > len(wrapped)-1-int(d); i-- {
			if wrapped[i] {
				extra += loopWrap
			}
		}
		return d + extra
	}
	return wasmbin.Rewrite(code, out, func(out []byte, in wasmbin.Instr, orig []byte) ([]byte, error) {
		switch in.Op {
		case wasmbin.OpBlock, wasmbin.OpIf:
			wrapped = append(wrapped, false)
		case wasmbin.OpLoop:
			if !iterates[in.Pos] {
				wrapped = append(wrapped, false)
				break
			}
			wrapped = append(wrapped, true)
			bt := orig[1:]
			out = append(append(out, byte(wasmbin.OpBlock)), bt...)
			out = append(out, byte(wasmbin.OpLoop), 0x40, byte(wasmbin.OpBlock), 0x40)
			out = append(out, orig...)
			out = wasmbin.AppendULEB(append(out, byte(wasmbin.OpGlobalGet)), uint64(rw.flag))
			return append(out, byte(wasmbin.OpBrIf), 1), nil
		case wasmbin.OpEnd:
			if len(wrapped) == 0 {
				return nil, fmt.Errorf("%w: end without a construct", wasmbin.ErrMalformed)
			}
			w := wrapped[len(wrapped)-1]
			wrapped = wrapped[:len(wrapped)-1]
			if w {
				out = append(out, byte(wasmbin.OpEnd), byte(wasmbin.OpBr), 2, byte(wasmbin.OpEnd))
				out = wasmbin.AppendULEB(append(out, byte(wasmbin.OpCall)), uint64(rw.yield))
				return append(out, byte(wasmbin.OpBr), 0, byte(wasmbin.OpEnd), byte(wasmbin.OpUnreachable), byte(wasmbin.OpEnd)), nil
			}
		case wasmbin.OpBr, wasmbin.OpBrIf:
			return wasmbin.AppendULEB(append(out, byte(in.Op)), relabel(uint64(in.Imm))), nil
		case wasmbin.OpBrTable:
			labels, def, err := wasmbin.BrTable(orig)
			if err != nil {
				return nil, err
			}
			out = wasmbin.AppendULEB(append(out, byte(wasmbin.OpBrTable)), uint64(len(labels)))
			for _, l := range labels {
				out = wasmbin.AppendULEB(out, relabel(uint64(l)))
			}
			return wasmbin.AppendULEB(out, relabel(uint64(def))), nil
		case wasmbin.OpMemorySize:
			return wasmbin.AppendULEB(append(out, byte(wasmbin.OpGlobalGet)), uint64(rw.pages)), nil
		case wasmbin.OpMemoryGrow:
			return wasmbin.AppendULEB(append(out, byte(wasmbin.OpCall)), uint64(rw.grow)), nil
		}
		return append(out, orig...), nil
	})
}

// iteratingLoops returns the code offsets of the loops that some branch
// targets; the others run their body once, like a block, and need no
// safepoint.
func iteratingLoops(code []byte) (map[int]bool, error) {
	type open struct {
		pos  int
		loop bool
	}
	stack := []open{{pos: -1}}
	out := map[int]bool{}
	target := func(d uint64) {
		if d < uint64(len(stack)) {
			if o := stack[len(stack)-1-int(d)]; o.loop {
				out[o.pos] = true
			}
		}
	}
	err := wasmbin.Walk(code, func(in wasmbin.Instr) error {
		switch in.Op {
		case wasmbin.OpBlock, wasmbin.OpIf:
			stack = append(stack, open{pos: in.Pos})
		case wasmbin.OpLoop:
			stack = append(stack, open{pos: in.Pos, loop: true})
		case wasmbin.OpEnd:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case wasmbin.OpBr, wasmbin.OpBrIf:
			target(uint64(in.Imm))
		case wasmbin.OpBrTable:
			labels, def, err := wasmbin.BrTable(code[in.Pos:in.End])
			if err != nil {
				return err
			}
			for _, l := range labels {
				target(uint64(l))
			}
			target(uint64(def))
		}
		return nil
	})
	return out, err
}
