package goguest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/ternhq/tern/internal/wasmbin"
)

// Errors callers branch on.
var (
	// ErrNotGo: the module was not built by Go for wasip1.
	ErrNotGo = errors.New("not a Go (GOOS=wasip1) module")
	// ErrVersion: built by a Go version whose runtime layout tern does not know.
	ErrVersion = errors.New("unsupported Go version")
	// ErrLayout: built by Go, but the runtime code does not have the shape
	// capture depends on; resuming it could go wrong silently.
	ErrLayout = errors.New("Go runtime code not recognized")
)

// The Go versions whose runtime layout tern knows.
const (
	MinMinor   = 21
	MaxMinor   = 26
	MinVersion = "go1.21"
	MaxVersion = "go1.26"
)

// Names Prepare adds to the module's exports.
const (
	ExportLoop   = "tern.go.loop"   // wasm_pc_f_loop, () -> ()
	ExportFreeze = "tern.go.freeze" // i32 flag: 1 asks the loop to return, which sets it to 2
	ExportCaller = "tern.go.caller" // i64: resume PC of the wrapper around the last blocking import called
	// ExportGlobal + "N" is Go's mutable global N (0 SP, 1 CTXT, 2 g,
	// 3-6 RET0-RET3, 7 PAUSE).
	ExportGlobal = "tern.go.global."
)

// Flag values of ExportFreeze.
const (
	FreezeNone      = 0
	FreezeRequested = 1
	FreezeStopped   = 2
)

// NumGlobals is how many globals make up a Go guest's register state.
const NumGlobals = 8

// Go's globals, in the order the linker defines them.
const (
	GlobalSP    = 0
	GlobalG     = 2
	GlobalPause = 7
)

var globalTypes = []wasmbin.ValType{wasmbin.I32, wasmbin.I64, wasmbin.I64, wasmbin.I64, wasmbin.I64, wasmbin.I64, wasmbin.I64, wasmbin.I32}

// BlockingImports are the WASI calls a guest may wait in for long. A freeze
// requested while a guest waits in one captures it there, and the resumed
// guest calls it again from the start.
var BlockingImports = []string{"poll_oneoff", "fd_read"}

// Module is a Go guest prepared for capture.
type Module struct {
	Version string // as the toolchain wrote it, e.g. "go1.26.8"
	Minor   int    // 26 for go1.26.8
	Wasm    []byte // the rewritten module
	// Reissuable lists the wrapper functions whose blocking import calls
	// can be captured and re-issued, by name (or func[N] if stripped).
	Reissuable []string
}

// Prepare checks that wasm is a Go wasip1 command of a supported version
// and rewrites it for capture. Function indices, the table and data are
// unchanged, so memory captured under one rewrite resumes under another.
func Prepare(wasm []byte) (*Module, error) {
	m, err := wasmbin.Parse(wasm)
	if err != nil {
		return nil, err
	}
	version, ok := goVersion(m)
	if !ok {
		if _, isGo := m.ExportedFunc("_start"); isGo && looksLikeGo(m) {
			return nil, fmt.Errorf("%w: built by Go, but its producers section, which names the Go version, was stripped", ErrVersion)
		}
		return nil, ErrNotGo
	}
	minor, err := minorVersion(version)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrVersion, err)
	}
	if minor < MinMinor || minor > MaxMinor {
		return nil, fmt.Errorf("%w: built by %s; tern captures Go guests built by %s through %s", ErrVersion, version, MinVersion, MaxVersion)
	}
	out := &Module{Version: version, Minor: minor}
	if err := checkGlobals(m); err != nil {
		return nil, err
	}
	loop, err := findLoop(m)
	if err != nil {
		return nil, err
	}
	freeze := m.AddGlobal(wasmbin.Global{GlobalType: wasmbin.GlobalType{Type: wasmbin.I32, Mutable: true}, Init: wasmbin.ConstI32(0)})
	caller := m.AddGlobal(wasmbin.Global{GlobalType: wasmbin.GlobalType{Type: wasmbin.I64, Mutable: true}, Init: wasmbin.ConstI64(0)})
	if err := patchLoop(m, loop, freeze); err != nil {
		return nil, err
	}
	if out.Reissuable, err = markBlockingCalls(m, caller); err != nil {
		return nil, err
	}
	exports := []wasmbin.Export{
		{Name: ExportLoop, Kind: wasmbin.KindFunc, Index: loop},
		{Name: ExportFreeze, Kind: wasmbin.KindGlobal, Index: freeze},
		{Name: ExportCaller, Kind: wasmbin.KindGlobal, Index: caller},
	}
	for i := range NumGlobals {
		exports = append(exports, wasmbin.Export{Name: fmt.Sprint(ExportGlobal, i), Kind: wasmbin.KindGlobal, Index: uint32(i)})
	}
	for _, e := range exports {
		if err := m.AddExport(e); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrLayout, err)
		}
	}
	out.Wasm = m.Encode()
	return out, nil
}

// looksLikeGo reports whether m has Go's register globals.
func looksLikeGo(m *wasmbin.Module) bool { return checkGlobals(m) == nil }

func checkGlobals(m *wasmbin.Module) error {
	if m.NumImportedGlobals != 0 || len(m.Globals) < NumGlobals {
		return fmt.Errorf("%w: want %d defined globals, found %d (and %d imported)", ErrLayout, NumGlobals, len(m.Globals), m.NumImportedGlobals)
	}
	for i, t := range globalTypes {
		g := m.Globals[i]
		if g.Type != t || !g.Mutable {
			return fmt.Errorf("%w: global %d is %v (mutable %v), want mutable %v", ErrLayout, i, g.Type, g.Mutable, t)
		}
	}
	return nil
}

// findLoop returns wasm_pc_f_loop: the last call in _start's body. Names
// are not used, so stripped modules work the same.
func findLoop(m *wasmbin.Module) (uint32, error) {
	start, ok := m.ExportedFunc("_start")
	if !ok {
		return 0, fmt.Errorf("%w: no _start export", ErrLayout)
	}
	body, err := m.Body(start)
	if err != nil {
		return 0, fmt.Errorf("%w: _start: %w", ErrLayout, err)
	}
	var last int64 = -1
	if err := wasmbin.Walk(body.Instructions(), func(in wasmbin.Instr) error {
		if in.Op == wasmbin.OpCall {
			last = in.Imm
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("%w: _start: %w", ErrLayout, err)
	}
	if last < int64(m.NumImportedFuncs) {
		return 0, fmt.Errorf("%w: _start does not end by calling the runtime loop", ErrLayout)
	}
	ft, err := m.FuncType(uint32(last))
	if err != nil || len(ft.Params) != 0 || len(ft.Results) != 0 {
		return 0, fmt.Errorf("%w: the last call in _start (%s) is not of type () -> ()", ErrLayout, m.FuncName(uint32(last)))
	}
	return uint32(last), nil
}

// loopShape is wasm_pc_f_loop's body in Go 1.21-1.26: while PAUSE == 0,
// load PC_B and PC_F from -8(SP) and call_indirect PC_F. Go 1.26 loads PC_F
// with i32.load instead of i32.load16_u.
var loopShape = []wasmbin.Op{
	wasmbin.OpGlobalGet, wasmbin.OpI32Eqz, wasmbin.OpIf, wasmbin.OpLoop,
	wasmbin.OpGlobalGet, wasmbin.OpI32Const, wasmbin.OpI32Sub, wasmbin.OpI32Load16U,
	wasmbin.OpGlobalGet, wasmbin.OpI32Const, wasmbin.OpI32Sub, wasmbin.OpI32Load,
	wasmbin.OpCallIndirect, wasmbin.OpDrop,
	wasmbin.OpGlobalGet, wasmbin.OpI32Eqz, wasmbin.OpBrIf, wasmbin.OpEnd, wasmbin.OpEnd,
	wasmbin.OpI32Const, wasmbin.OpGlobalSet, wasmbin.OpReturn,
}

// patchLoop inserts at the loop head
//
//	if freeze { freeze = 2; return }
//
// Returning there leaves no wasm frame that matters: _start returns right
// after the loop, and resuming calls the loop again.
func patchLoop(m *wasmbin.Module, loop, freeze uint32) error {
	body, err := m.Body(loop)
	if err != nil {
		return fmt.Errorf("%w: runtime loop: %w", ErrLayout, err)
	}
	code := body.Instructions()
	var ins []wasmbin.Instr
	if err := wasmbin.Walk(code, func(in wasmbin.Instr) error {
		ins = append(ins, in)
		return nil
	}); err != nil {
		return fmt.Errorf("%w: runtime loop: %w", ErrLayout, err)
	}
	bad := len(ins) < len(loopShape)
	for i := 0; !bad && i < len(loopShape); i++ {
		want, got := loopShape[i], ins[i].Op
		switch {
		case i == 11 && (got == wasmbin.OpI32Load16U || got == wasmbin.OpI32Load):
		case got != want:
			bad = true
		}
	}
	if !bad {
		// PAUSE is global 7 and SP global 0; the PC sits 8 bytes below SP.
		bad = ins[0].Imm != GlobalPause || ins[4].Imm != GlobalSP || ins[5].Imm != 8 ||
			ins[8].Imm != GlobalSP || ins[9].Imm != 8 || ins[14].Imm != GlobalPause || ins[20].Imm != GlobalPause
	}
	if bad {
		return fmt.Errorf("%w: %s does not have the shape of wasm_pc_f_loop", ErrLayout, m.FuncName(loop))
	}
	at := body.Code + ins[3].End // just inside the loop
	var check []byte
	check = append(check, byte(wasmbin.OpGlobalGet))
	check = wasmbin.AppendULEB(check, uint64(freeze))
	check = append(check, byte(wasmbin.OpIf), 0x40, byte(wasmbin.OpI32Const), FreezeStopped, byte(wasmbin.OpGlobalSet))
	check = wasmbin.AppendULEB(check, uint64(freeze))
	check = append(check, byte(wasmbin.OpReturn), byte(wasmbin.OpEnd))
	raw := slices.Concat(body.Raw[:at], check, body.Raw[at:])
	return m.SetBody(loop, wasmbin.Body{Raw: raw, Code: body.Code})
}

// markBlockingCalls makes every call to a blocking import first store, in
// the caller global, the PC that re-runs the calling function from its
// entry: (table slot << 16) | block 0. Go's wrappers around
// //go:wasmimport functions are frameless and only load their arguments
// from the Go stack before the call, so running one again from the start
// repeats the call exactly. A caller that is not such a wrapper stores 0,
// which tells the host not to capture inside that call.
func markBlockingCalls(m *wasmbin.Module, caller uint32) ([]string, error) {
	slots := m.TableSlots()
	var reissuable []string
	targets := map[uint32]bool{}
	for _, name := range BlockingImports {
		if fi, ok := m.FuncIndex("wasi_snapshot_preview1", name); ok {
			targets[fi] = true
		}
	}
	if len(targets) == 0 {
		return nil, nil
	}
	// The marker is only right if every call to a blocking import is a
	// direct call we mark: one through the table would leave a stale PC.
	for _, e := range m.Elems {
		for _, f := range e.Funcs {
			if f >= 0 && targets[uint32(f)] {
				return nil, fmt.Errorf("%w: a blocking WASI import is in a table", ErrLayout)
			}
		}
	}
	for i, b := range m.Codes {
		fi := m.NumImportedFuncs + uint32(i)
		code := b.Instructions()
		if !mayCall(code, targets) {
			continue
		}
		var at []int // call offsets in code
		clean := true
		if err := wasmbin.Walk(code, func(in wasmbin.Instr) error {
			if in.Op == wasmbin.OpCall && targets[uint32(in.Imm)] {
				at = append(at, in.Pos)
				return nil
			}
			if len(at) == 0 && (in.Op.IsStore() || in.Op == wasmbin.OpCall || in.Op == wasmbin.OpCallIndirect) {
				clean = false
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("%s: %w", m.FuncName(fi), err)
		}
		if len(at) == 0 {
			continue
		}
		var pc int64
		if s := slots[fi]; clean && len(at) == 1 && len(s) > 0 {
			pc = int64(s[0]) << 16
			reissuable = append(reissuable, m.FuncName(fi))
		}
		mark := append([]byte{byte(wasmbin.OpI64Const)}, wasmbin.AppendSLEB(nil, pc)...)
		mark = append(mark, byte(wasmbin.OpGlobalSet))
		mark = wasmbin.AppendULEB(mark, uint64(caller))
		raw := make([]byte, 0, len(b.Raw)+len(at)*len(mark))
		raw = append(raw, b.Raw[:b.Code]...)
		prev := 0
		for _, off := range at {
			raw = append(raw, code[prev:off]...)
			raw = append(raw, mark...)
			prev = off
		}
		raw = append(raw, code[prev:]...)
		if err := m.SetBody(fi, wasmbin.Body{Raw: raw, Code: b.Code}); err != nil {
			return nil, err
		}
	}
	return reissuable, nil
}

// mayCall reports whether code could hold a call to one of targets: a call
// opcode byte followed by a LEB128 (padded or not) naming one. It is a cheap
// filter before decoding whole bodies; false positives only cost a walk.
func mayCall(code []byte, targets map[uint32]bool) bool {
	for i := 0; ; {
		j := bytes.IndexByte(code[i:], byte(wasmbin.OpCall))
		if j < 0 {
			return false
		}
		i += j + 1
		var v uint64
		for shift, k := uint(0), i; k < len(code) && shift < 35; k, shift = k+1, shift+7 {
			v |= uint64(code[k]&0x7f) << shift
			if code[k] < 0x80 {
				if v <= 0xffffffff && targets[uint32(v)] {
					return true
				}
				break
			}
		}
	}
}
