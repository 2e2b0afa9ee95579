package asyncify

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/ternhq/tern/internal/wasmbin"
)

// Errors callers branch on.
var (
	// ErrUnsupported: the module uses something capture cannot handle
	// (threads, exceptions, tail calls, 64-bit or imported memory).
	ErrUnsupported = errors.New("module cannot be prepared for capture")
	// ErrWasmOpt: binaryen's wasm-opt is missing or failed.
	ErrWasmOpt = errors.New("wasm-opt")
)

// Names a prepared module imports and exports.
const (
	ImportModule = "tern"
	ImportYield  = "yield" // tern.yield: () -> (), the safepoint

	ExportFlag  = "tern.flag"  // i32 global: nonzero asks safepoints to call tern.safepoint (tern.yield under binaryen)
	ExportPages = "tern.pages" // i32 global: the memory size the program sees, in pages
	ExportStart = "tern.start" // the module's start function, run before _start
	// ExportRun (mode i32) is the entry tern calls: mode 1 runs the start
	// function, 2 _start.
	ExportRun = "tern.run"
	// ExportGlobal + "N" is mutable global N of the original module.
	ExportGlobal = "tern.global."
	// ExportFuncRef (i32) -> funcref returns function N of the original
	// index space (present when tables are captured).
	ExportFuncRef = "tern.funcref"
	// ExportTable + "N." + size/get/set/grow access table N (present when
	// the program changes its tables).
	ExportTable = "tern.table."

	// The Asyncify pass's exports.
	ExportStartUnwind = "asyncify_start_unwind"
	ExportStopUnwind  = "asyncify_stop_unwind"
	ExportStartRewind = "asyncify_start_rewind"
	ExportStopRewind  = "asyncify_stop_rewind"

	// Section is the custom section that marks a prepared module.
	Section = "tern.asyncify"
)

// UnwindImports are the imports the stack can unwind at: the safepoint and
// the WASI calls a program may wait in for long.
var UnwindImports = []string{
	ImportModule + "." + ImportYield,
	"wasi_snapshot_preview1.poll_oneoff",
	"wasi_snapshot_preview1.fd_read",
}

// maxPages is the largest memory wazero allows (4 GiB).
const maxPages = 65536

// Instrument is tern's rewrite for binaryen's Asyncify, the first step of
// preparation by it (the safepoints call tern.yield, which Asyncify makes
// an unwind point). It
// reports whether the program changes its tables (and helpers to capture
// them were added).
func Instrument(wasm []byte) (out []byte, tables bool, err error) {
	m, tables, err := parseToPrepare(wasm)
	if err != nil {
		return nil, false, err
	}
	void := m.AddType(wasmbin.FuncType{})
	yield, err := m.AddFuncImport(ImportModule, ImportYield, void)
	if err != nil {
		return nil, false, err
	}
	numFuncs := m.NumFuncs() // the index space capture names tables in

	pages, grow := addMemoryView(m)
	flag := addFlag(m)
	calls, err := newCallGraph(m)
	if err != nil {
		return nil, false, err
	}
	rw := bodyRewrite{flag: flag, yield: yield, pages: pages, grow: grow}
	for i := range m.Codes {
		fi := m.NumImportedFuncs + uint32(i)
		if fi == grow {
			continue
		}
		b := m.Codes[i]
		iterates, err := iteratingLoops(b.Instructions())
		if err != nil {
			return nil, false, fmt.Errorf("function %s: %w", m.FuncName(fi), err)
		}
		entry, err := calls.needsEntrySafepoint(i, b.Instructions(), iterates)
		if err != nil {
			return nil, false, fmt.Errorf("function %s: %w", m.FuncName(fi), err)
		}
		code, err := rw.instrumentBody(b.Instructions(), entry, iterates)
		if err != nil {
			return nil, false, fmt.Errorf("function %s: %w", m.FuncName(fi), err)
		}
		if err := m.SetBody(fi, wasmbin.Body{Raw: append(b.Raw[:b.Code:b.Code], code...), Code: b.Code}); err != nil {
			return nil, false, err
		}
	}

	if err := exportGlobals(m, pages, flag); err != nil {
		return nil, false, err
	}
	if err := addEntry(m, tables, numFuncs, runBody); err != nil {
		return nil, false, err
	}
	return m.Encode(), tables, nil
}

// parseToPrepare parses a module preparation may take, and reports
// whether the program changes its tables.
func parseToPrepare(wasm []byte) (*wasmbin.Module, bool, error) {
	m, err := wasmbin.Parse(wasm)
	if err != nil {
		return nil, false, err
	}
	if _, ok := m.Custom(Section); ok {
		return nil, false, fmt.Errorf("%w: already prepared", ErrUnsupported)
	}
	if err := check(m); err != nil {
		return nil, false, err
	}
	tables, err := mutatesTables(m)
	return m, tables, err
}

// addMemoryView makes the program see its memory's size in a global
// (tern.pages) and grow it through a function, so that the engine's memory
// may be larger while the host borrows pages beyond it.
func addMemoryView(m *wasmbin.Module) (pages, grow uint32) {
	if len(m.Memories) == 0 {
		m.AddMemory(wasmbin.Limits{})
	}
	mem := m.Memories[0]
	limit := uint64(maxPages)
	if mem.HasMax && mem.Max < limit {
		limit = mem.Max
	}
	// Room beyond the program's maximum for pages the host borrows, unless
	// other modules see the memory's type.
	exported := false
	for _, e := range m.Exports {
		exported = exported || e.Kind == wasmbin.KindMemory
	}
	if !exported {
		m.SetMemory(0, wasmbin.Limits{Min: mem.Min, Max: maxPages, HasMax: true})
	}
	pages = m.AddGlobal(wasmbin.Global{GlobalType: wasmbin.GlobalType{Type: wasmbin.I32, Mutable: true}, Init: wasmbin.ConstI32(int32(mem.Min))})
	grow = m.AddFunc(m.AddType(wasmbin.FuncType{Params: []wasmbin.ValType{wasmbin.I32}, Results: []wasmbin.ValType{wasmbin.I32}}), growBody(pages, uint32(limit)))
	return pages, grow
}

// addFlag adds the global whose nonzero value asks safepoints to stop.
func addFlag(m *wasmbin.Module) uint32 {
	return m.AddGlobal(wasmbin.Global{GlobalType: wasmbin.GlobalType{Type: wasmbin.I32, Mutable: true}, Init: wasmbin.ConstI32(0)})
}

// addEntry turns the start function into an export, adds tern.run (whose
// body run gives) and, when tables are captured, their helpers.
func addEntry(m *wasmbin.Module, tables bool, numFuncs uint32, run func(start uint32, hasStart bool, main uint32, hasMain bool) wasmbin.Body) error {
	start, hasStart := m.RemoveStart()
	if hasStart {
		if err := m.AddExport(wasmbin.Export{Name: ExportStart, Kind: wasmbin.KindFunc, Index: start}); err != nil {
			return err
		}
	}
	main, hasMain := m.ExportedFunc("_start")
	fi := m.AddFunc(m.AddType(wasmbin.FuncType{Params: []wasmbin.ValType{wasmbin.I32}}), run(start, hasStart, main, hasMain))
	if err := m.AddExport(wasmbin.Export{Name: ExportRun, Kind: wasmbin.KindFunc, Index: fi}); err != nil {
		return err
	}
	// Named, so that wasm-opt can be told to leave it uninstrumented.
	m.SetFuncName(fi, FuncRun)
	if tables {
		return addTableHelpers(m, numFuncs)
	}
	return nil
}

// check refuses what capture cannot handle.
func check(m *wasmbin.Module) error {
	for _, s := range m.Sections {
		if s.ID == wasmbin.SecTag {
			return fmt.Errorf("%w: it uses exceptions (tag section)", ErrUnsupported)
		}
	}
	for _, im := range m.Imports {
		switch im.Kind {
		case wasmbin.KindMemory:
			return fmt.Errorf("%w: it imports its memory (%s.%s)", ErrUnsupported, im.Module, im.Name)
		case wasmbin.KindTag:
			return fmt.Errorf("%w: it uses exceptions (imports tag %s.%s)", ErrUnsupported, im.Module, im.Name)
		case wasmbin.KindFunc:
			if im.Module == ImportModule {
				return fmt.Errorf("%w: it already imports from %q, tern's own module", ErrUnsupported, ImportModule)
			}
		}
	}
	if main, ok := m.ExportedFunc("_start"); ok {
		if ft, err := m.FuncType(main); err != nil || len(ft.Params) > 0 || len(ft.Results) > 0 {
			return fmt.Errorf("%w: its _start takes parameters or returns results", ErrUnsupported)
		}
	}
	if len(m.Memories) > 1 {
		return fmt.Errorf("%w: it has %d memories", ErrUnsupported, len(m.Memories))
	}
	if len(m.Memories) == 1 {
		switch l := m.Memories[0]; {
		case l.Shared:
			return fmt.Errorf("%w: it uses threads (shared memory)", ErrUnsupported)
		case l.Mem64:
			return fmt.Errorf("%w: it uses 64-bit memory", ErrUnsupported)
		}
	}
	for _, e := range m.Exports {
		if len(e.Name) >= 5 && e.Name[:5] == "tern." || len(e.Name) >= 9 && e.Name[:9] == "asyncify_" {
			return fmt.Errorf("%w: it already exports %q, a name tern's preparation uses", ErrUnsupported, e.Name)
		}
	}
	for i, b := range m.Codes {
		err := wasmbin.Walk(b.Instructions(), func(in wasmbin.Instr) error {
			switch op := in.Op; {
			case (op == wasmbin.OpBlock || op == wasmbin.OpLoop || op == wasmbin.OpIf) && in.Imm >= 0 &&
				int(in.Imm) < len(m.Types) && len(m.Types[in.Imm].Params) > 0:
				// Binaryen cannot represent block parameters: it rejects
				// some such modules and silently miscompiles others.
				return fmt.Errorf("%w: it uses blocks with parameters (multi-value), which wasm-opt cannot handle", ErrUnsupported)
			case op == wasmbin.OpTry || op == wasmbin.OpCatch || op == wasmbin.OpThrow || op == wasmbin.OpRethrow ||
				op == wasmbin.OpThrowRef || op == wasmbin.OpDelegate || op == wasmbin.OpCatchAll || op == wasmbin.OpTryTable:
				return fmt.Errorf("%w: it uses exceptions", ErrUnsupported)
			case op == wasmbin.OpReturnCall || op == wasmbin.OpReturnCallIn || op == wasmbin.OpReturnCallRf:
				return fmt.Errorf("%w: it uses tail calls", ErrUnsupported)
			case op == wasmbin.OpCallRef:
				return fmt.Errorf("%w: it uses typed function references", ErrUnsupported)
			case op>>16 == 0xfe:
				return fmt.Errorf("%w: it uses threads (atomic instructions)", ErrUnsupported)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("function %s: %w", m.FuncName(m.NumImportedFuncs+uint32(i)), err)
		}
	}
	return nil
}

// mutatesTables reports whether any code changes a table's contents or
// size; tables initialized by element segments and never changed are
// rebuilt by instantiation and need no capture.
func mutatesTables(m *wasmbin.Module) (bool, error) {
	found := false
	for _, b := range m.Codes {
		err := wasmbin.Walk(b.Instructions(), func(in wasmbin.Instr) error {
			switch in.Op {
			case wasmbin.OpTableSet, wasmbin.OpTableGrow, wasmbin.OpTableFill, wasmbin.OpTableCopy, wasmbin.OpTableInit:
				found = true
			}
			return nil
		})
		if err != nil || found {
			return found, err
		}
	}
	return false, nil
}

// growBody is memory.grow as the program sees it: pages beyond tern.pages
// that the engine already has (the host borrowed them, and zeroed them when
// it gave them back) are handed out first, and the limit is the module's
// own maximum.
//
//	(func (param $n i32) (result i32) (local $old i32) (local $new i32)
//	  (local.set $old (global.get $pages))
//	  (if (i32.gt_u (local.get $n) (i32.sub (i32.const limit) (local.get $old)))
//	    (then (return (i32.const -1))))
//	  (local.set $new (i32.add (local.get $old) (local.get $n)))
//	  (if (i32.gt_u (local.get $new) (memory.size))
//	    (then (if (i32.eq (memory.grow (i32.sub (local.get $new) (memory.size))) (i32.const -1))
//	      (then (return (i32.const -1))))))
//	  (global.set $pages (local.get $new))
//	  (local.get $old))
func growBody(pages, limit uint32) wasmbin.Body {
	b := []byte{1, 2, byte(wasmbin.I32)} // locals: 2 × i32
	code := len(b)
	gp := wasmbin.AppendULEB(nil, uint64(pages))
	b = append(append(b, 0x23), gp...)                                     // global.get $pages
	b = append(b, 0x21, 1)                                                 // local.set $old
	b = append(b, 0x20, 0)                                                 // local.get $n
	b = append(wasmbin.AppendSLEB(append(b, 0x41), int64(limit)), 0x20, 1) // i32.const limit; local.get $old
	b = append(b, 0x6b, 0x4b, 0x04, 0x40, 0x41, 0x7f, 0x0f, 0x0b)          // i32.sub; i32.gt_u; if; i32.const -1; return; end
	b = append(b, 0x20, 1, 0x20, 0, 0x6a, 0x21, 2)                         // $new = $old + $n
	b = append(b, 0x20, 2, 0x3f, 0, 0x4b, 0x04, 0x40)                      // if $new > memory.size
	b = append(b, 0x20, 2, 0x3f, 0, 0x6b, 0x40, 0)                         //   memory.grow($new - memory.size)
	b = append(b, 0x41, 0x7f, 0x46, 0x04, 0x40, 0x41, 0x7f, 0x0f, 0x0b)    //   == -1: return -1
	b = append(b, 0x0b)                                                    // end
	b = append(append(append(b, 0x20, 2), 0x24), gp...)                    // global.set $pages $new
	b = append(b, 0x20, 1, 0x0b)                                           // local.get $old; end
	return wasmbin.Body{Raw: b, Code: code}
}

// exportGlobals exports every mutable global under ExportGlobal+index,
// and tern's own flag and page count.
func exportGlobals(m *wasmbin.Module, pages, flag uint32) error {
	mutable := func(gi uint32) bool {
		if gi < m.NumImportedGlobals {
			n := uint32(0)
			for _, im := range m.Imports {
				if im.Kind == wasmbin.KindGlobal {
					if n == gi {
						return im.Global.Mutable
					}
					n++
				}
			}
			return false
		}
		return m.Globals[gi-m.NumImportedGlobals].Mutable
	}
	for gi := range m.NumGlobals() {
		if gi == flag || !mutable(gi) {
			continue
		}
		if err := m.AddExport(wasmbin.Export{Name: ExportGlobal + strconv.Itoa(int(gi)), Kind: wasmbin.KindGlobal, Index: gi}); err != nil {
			return err
		}
	}
	if err := m.AddExport(wasmbin.Export{Name: ExportPages, Kind: wasmbin.KindGlobal, Index: pages}); err != nil {
		return err
	}
	return m.AddExport(wasmbin.Export{Name: ExportFlag, Kind: wasmbin.KindGlobal, Index: flag})
}

// addTableHelpers adds what the host needs to capture and restore tables
// whose contents the program changes. Function references are opaque to
// the host, so functions are named by their index in a table of every
// function (tern.funcref), which stays valid when wasm-opt renumbers them.
func addTableHelpers(m *wasmbin.Module, numFuncs uint32) error {
	funcs := m.AddTable(wasmbin.Table{Elem: wasmbin.FuncRef, Limits: wasmbin.Limits{Min: uint64(numFuncs), Max: uint64(numFuncs), HasMax: true}})
	all := make([]int64, numFuncs)
	for i := range all {
		all[i] = int64(i)
	}
	m.AddElem(wasmbin.Elem{Active: true, Table: funcs, Flags: 2, Kind: 0, OffsetExpr: wasmbin.ConstI32(0), Offset: 0, OffsetKnown: true, Funcs: all})
	i32 := wasmbin.I32
	body := func(code ...byte) wasmbin.Body { return wasmbin.Body{Raw: append([]byte{0}, code...), Code: 1} }
	uleb := func(v uint32) []byte { return wasmbin.AppendULEB(nil, uint64(v)) }
	add := func(name string, ft wasmbin.FuncType, b wasmbin.Body) error {
		fi := m.AddFunc(m.AddType(ft), b)
		return m.AddExport(wasmbin.Export{Name: name, Kind: wasmbin.KindFunc, Index: fi})
	}
	code := append(append([]byte{0x20, 0, 0x25}, uleb(funcs)...), 0x0b) // local.get 0; table.get $funcs
	if err := add(ExportFuncRef, wasmbin.FuncType{Params: []wasmbin.ValType{i32}, Results: []wasmbin.ValType{wasmbin.FuncRef}}, body(code...)); err != nil {
		return err
	}
	var types []wasmbin.ValType
	for _, im := range m.Imports {
		if im.Kind == wasmbin.KindTable {
			types = append(types, im.Table.Elem)
		}
	}
	for _, t := range m.Tables[:len(m.Tables)-1] { // not tern's own
		types = append(types, t.Elem)
	}
	for ti, rt := range types {
		p := ExportTable + strconv.Itoa(ti) + "."
		t := uleb(uint32(ti))
		helpers := []struct {
			name string
			ft   wasmbin.FuncType
			code []byte
		}{
			{"size", wasmbin.FuncType{Results: []wasmbin.ValType{i32}}, append([]byte{0xfc, 16}, t...)},
			{"get", wasmbin.FuncType{Params: []wasmbin.ValType{i32}, Results: []wasmbin.ValType{rt}}, append([]byte{0x20, 0, 0x25}, t...)},
			{"set", wasmbin.FuncType{Params: []wasmbin.ValType{i32, rt}}, append([]byte{0x20, 0, 0x20, 1, 0x26}, t...)},
			{"grow", wasmbin.FuncType{Params: []wasmbin.ValType{i32}, Results: []wasmbin.ValType{i32}}, append([]byte{0xd0, byte(rt), 0x20, 0, 0xfc, 15}, t...)},
		}
		for _, h := range helpers {
			if err := add(p+h.name, h.ft, body(append(h.code, 0x0b)...)); err != nil {
				return err
			}
		}
	}
	return nil
}

// FuncRun names tern.run, which Asyncify must not instrument: the host
// starts every call, and every rewind, there.
const FuncRun = "tern.run"

// runBody is tern.run, the one entry tern calls: stacks then always start
// in the same function, whatever part of the program runs.
//
//	(func $run (param $mode i32)
//	  (if (i32.eq (local.get $mode) (i32.const 1)) (then (call $start) (return)))
//	  (call $_start))
func runBody(start uint32, hasStart bool, main uint32, hasMain bool) wasmbin.Body {
	b := []byte{0}
	if hasStart {
		b = append(b, 0x20, 0, 0x41, 1, 0x46, 0x04, 0x40, 0x10)
		b = wasmbin.AppendULEB(b, uint64(start))
		b = append(b, 0x0f, 0x0b)
	}
	if hasMain {
		b = wasmbin.AppendULEB(append(b, 0x10), uint64(main))
	} else {
		b = append(b, 0x00) // unreachable: nothing to run
	}
	b = append(b, 0x0b)
	return wasmbin.Body{Raw: b, Code: 1}
}
