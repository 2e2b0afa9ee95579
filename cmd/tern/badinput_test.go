package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/wasmbin"
)

// A tiny WebAssembly assembler: enough to build modules with exactly the
// defect a test needs, without depending on wat2wasm.

func uleb(v uint32) []byte { return wasmbin.AppendULEB(nil, uint64(v)) }

func wasmName(s string) []byte { return append(uleb(uint32(len(s))), s...) }

func wasmVec(items ...[]byte) []byte {
	b := uleb(uint32(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

func wasmSection(id byte, payload []byte) []byte {
	return append(append([]byte{id}, uleb(uint32(len(payload)))...), payload...)
}

const (
	valI32 = 0x7f

	secType     = 1
	secImport   = 2
	secFunction = 3
	secExport   = 7
	secCode     = 10
)

// wasmFunc is one defined function: its type index, body instructions
// (without the final end), and a debug name for the name section.
type wasmFunc struct {
	typ  uint32
	body []byte
	name string
}

type wasmImport struct {
	module, name string
	kind         byte   // importFunc, importTable, importMemory or importGlobal
	typ          uint32 // function type index
}

const (
	importFunc   = 0x00
	importTable  = 0x01
	importMemory = 0x02
	importGlobal = 0x03
)

// wasmModule describes a module to assemble. Types are
// (params, results) lists of value types.
type wasmModule struct {
	types   [][2][]byte
	imports []wasmImport
	funcs   []wasmFunc
	exports map[string]uint32 // function exports by index
}

func (m wasmModule) bytes() []byte {
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	var types [][]byte
	for _, t := range m.types {
		types = append(types, append(append([]byte{0x60}, wasmVec(splitBytes(t[0])...)...), wasmVec(splitBytes(t[1])...)...))
	}
	out = append(out, wasmSection(secType, wasmVec(types...))...)
	nImportedFuncs := uint32(0)
	if len(m.imports) > 0 {
		var imps [][]byte
		for _, im := range m.imports {
			b := append(wasmName(im.module), wasmName(im.name)...)
			switch im.kind {
			case importFunc:
				b = append(append(b, importFunc), uleb(im.typ)...)
				nImportedFuncs++
			case importTable:
				b = append(b, importTable, 0x70, 0x00, 0x01) // funcref, min 1
			case importMemory:
				b = append(b, importMemory, 0x00, 0x01) // min 1 page
			case importGlobal:
				b = append(b, importGlobal, valI32, 0x00) // immutable i32
			}
			imps = append(imps, b)
		}
		out = append(out, wasmSection(secImport, wasmVec(imps...))...)
	}
	var fidx, bodies [][]byte
	for _, f := range m.funcs {
		fidx = append(fidx, uleb(f.typ))
		body := append(append([]byte{0}, f.body...), 0x0b) // no locals
		bodies = append(bodies, append(uleb(uint32(len(body))), body...))
	}
	out = append(out, wasmSection(secFunction, wasmVec(fidx...))...)
	var exps [][]byte
	for name, idx := range m.exports {
		exps = append(exps, append(append(wasmName(name), 0x00), uleb(idx)...))
	}
	out = append(out, wasmSection(secExport, wasmVec(exps...))...)
	out = append(out, wasmSection(secCode, wasmVec(bodies...))...)
	// The "name" custom section, so stack traces name our functions.
	var names [][]byte
	for i, f := range m.funcs {
		names = append(names, append(uleb(nImportedFuncs+uint32(i)), wasmName(f.name)...))
	}
	fnNames := wasmVec(names...)
	sub := append(append([]byte{1}, uleb(uint32(len(fnNames)))...), fnNames...)
	out = append(out, wasmSection(0, append(wasmName("name"), sub...))...)
	return out
}

func splitBytes(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

// Instructions used below.
const (
	opUnreachable = 0x00
	opCall        = 0x10
	opDrop        = 0x1a
	opI32Const    = 0x41
	opI32DivS     = 0x6d
)

// Type indices in every module below: 0 is () -> (), 1 is (i32) -> ().
var commonTypes = [][2][]byte{{nil, nil}, {{valI32}, nil}}

// exitModule calls proc_exit(7): a well-formed command, also the base the
// truncation cases cut up.
func exitModule() []byte {
	return wasmModule{
		types:   commonTypes,
		imports: []wasmImport{{module: "wasi_snapshot_preview1", name: "proc_exit", typ: 1}},
		funcs:   []wasmFunc{{typ: 0, name: "_start", body: []byte{opI32Const, 7, opCall, 0}}},
		exports: map[string]uint32{"_start": 1},
	}.bytes()
}

// trapModule's _start calls a function named "explode" that executes
// unreachable, so the stack trace has a frame to name.
func trapModule() []byte {
	return wasmModule{
		types: commonTypes,
		funcs: []wasmFunc{
			{typ: 0, name: "_start", body: []byte{opCall, 1}},
			{typ: 0, name: "explode", body: []byte{opUnreachable}},
		},
		exports: map[string]uint32{"_start": 0},
	}.bytes()
}

func divModule() []byte {
	return wasmModule{
		types: commonTypes,
		funcs: []wasmFunc{{typ: 0, name: "_start", body: []byte{
			opI32Const, 1, opI32Const, 0, opI32DivS, opDrop}}},
		exports: map[string]uint32{"_start": 0},
	}.bytes()
}

// missingImportsModule imports two functions and a memory from "env" and a
// function WASI does not have.
func missingImportsModule() []byte {
	return wasmModule{
		types: commonTypes,
		imports: []wasmImport{
			{module: "env", name: "foo", typ: 0},
			{module: "wasi_snapshot_preview1", name: "fd_write_twice", typ: 0},
			{module: "env", name: "bar", typ: 1},
			{module: "env", name: "memory", kind: importMemory},
			{module: "env", name: "__indirect_function_table", kind: importTable},
			{module: "env", name: "__stack_pointer", kind: importGlobal},
			{module: "wasi_snapshot_preview1", name: "proc_exit", typ: 1},
		},
		funcs:   []wasmFunc{{typ: 0, name: "_start"}},
		exports: map[string]uint32{"_start": 4},
	}.bytes()
}

// mistypedImportModule imports WASI functions that exist, with types they
// do not have.
func mistypedImportModule() []byte {
	return wasmModule{
		types: commonTypes,
		imports: []wasmImport{
			{module: "wasi_snapshot_preview1", name: "fd_write", typ: 0},
			{module: "wasi_snapshot_preview1", name: "proc_exit", typ: 1},
			{module: "wasi_snapshot_preview1", name: "sched_yield", typ: 0},
		},
		funcs:   []wasmFunc{{typ: 0, name: "_start"}},
		exports: map[string]uint32{"_start": 3},
	}.bytes()
}

// startWithParamModule's _start takes an i32, which no WASI host passes.
func startWithParamModule() []byte {
	return wasmModule{
		types:   commonTypes,
		funcs:   []wasmFunc{{typ: 1, name: "_start"}},
		exports: map[string]uint32{"_start": 0},
	}.bytes()
}

func noStartModule() []byte {
	return wasmModule{
		types:   commonTypes,
		funcs:   []wasmFunc{{typ: 0, name: "main"}},
		exports: map[string]uint32{"main": 0},
	}.bytes()
}

// The C guest: real clang output, with libc, traps from named functions.
const crashC = `#include <string.h>
#include <wasi/api.h>

__attribute__((noinline)) void tern_test_crash_here(void) { __builtin_trap(); }

__attribute__((noinline)) int tern_test_divide(int a, int b) { return a / b; }

volatile int zero;

int main(int argc, char **argv) {
	if (argc == 2 && !strcmp(argv[1], "trap"))
		tern_test_crash_here();
	if (argc == 2 && !strcmp(argv[1], "div"))
		return tern_test_divide(1, zero);
	if (argc == 2 && !strcmp(argv[1], "exit"))
		__wasi_proc_exit(7);
	return 3;
}
`

// badCase is one invocation of tern and how it must end.
type badCase struct {
	name string
	args []string // after "run --cache-dir D"; "MODULE" is replaced by module
	// module, when set, is written to a file that replaces "MODULE".
	module []byte
	code   int
	// stderr must contain each of these.
	want []string
	// oneLine: stderr is exactly one line starting "tern: ". Traps print a
	// stack trace after their first line and are checked with trace.
	oneLine bool
	// trace: stderr's first line starts "tern: trap: " and a "wasm stack
	// trace:" section follows that names this function.
	trace string
}

// TestBadInput feeds tern broken modules, broken flags and failing guests:
// each must end in one clear message and the documented exit status, never
// in a Go panic.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	valid := exitModule()
	textFile := filepath.Join(dir, "notes.txt")
	regularFile := filepath.Join(dir, "regular")
	for _, p := range []string{textFile, regularFile} {
		if err := os.WriteFile(p, []byte("hello, this is not wasm\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := func(prefix []byte) []byte {
		b := append([]byte(nil), prefix...)
		for range 200 {
			b = append(b, byte(rng.Uint32()))
		}
		return b
	}
	missingDir := filepath.Join(dir, "no-such-dir")

	cases := []badCase{
		{name: "text file", args: []string{textFile}, code: exitTernError,
			want: []string{textFile, "not a WebAssembly module"}, oneLine: true},
		{name: "empty file", module: []byte{}, code: exitTernError,
			want: []string{"not a WebAssembly module"}, oneLine: true},
		{name: "magic only", module: valid[:4], code: exitTernError,
			want: []string{"invalid WebAssembly module"}, oneLine: true},
		// Magic and version with no sections is a valid, empty module:
		// what is wrong with it is that it has nothing to run.
		{name: "header only", module: valid[:8], code: exitTernError,
			want: []string{"_start"}, oneLine: true},
		{name: "cut at half", module: valid[:len(valid)/2], code: exitTernError,
			want: []string{"invalid WebAssembly module"}, oneLine: true},
		{name: "cut at len-1", module: valid[:len(valid)-1], code: exitTernError,
			want: []string{"invalid WebAssembly module"}, oneLine: true},
		{name: "garbage after magic", module: garbage(valid[:4]), code: exitTernError,
			want: []string{"invalid WebAssembly module"}, oneLine: true},
		{name: "garbage after header", module: garbage(valid[:8]), code: exitTernError,
			want: []string{"invalid WebAssembly module"}, oneLine: true},
		// Tables and globals matter: toolchains import them (Emscripten,
		// wasm-ld --import-table), and tern provides none.
		{name: "missing imports", module: missingImportsModule(), code: exitTernError,
			want: []string{"imports what tern does not provide", "env.foo", "env.bar",
				"wasi_snapshot_preview1.fd_write_twice", "env.memory (memory)",
				"env.__indirect_function_table (table)", "env.__stack_pointer (global)"}, oneLine: true},
		{name: "mistyped WASI imports", module: mistypedImportModule(), code: exitTernError,
			want: []string{"imports what tern does not provide",
				"wasi_snapshot_preview1.fd_write with type () -> ()", "(i32, i32, i32, i32) -> (i32)",
				"wasi_snapshot_preview1.sched_yield with type () -> ()"}, oneLine: true},
		{name: "_start takes a parameter", module: startWithParamModule(), code: exitTernError,
			want: []string{"_start", "(i32) -> ()"}, oneLine: true},
		{name: "no _start", module: noStartModule(), code: exitTernError,
			want: []string{"no _start"}, oneLine: true},
		{name: "nonexistent module", args: []string{filepath.Join(dir, "missing.wasm")}, code: exitTernError,
			want: []string{filepath.Join(dir, "missing.wasm"), "no such file"}, oneLine: true},
		{name: "module is a directory", args: []string{dir}, code: exitTernError,
			want: []string{dir, "is a directory"}, oneLine: true},
		{name: "no module", args: []string{}, code: exitTernError,
			want: []string{"requires at least 1 arg"}, oneLine: true},
		{name: "unknown flag", args: []string{"--bogus", "MODULE"}, module: valid, code: exitTernError,
			want: []string{"unknown flag: --bogus"}, oneLine: true},
		{name: "dir does not exist", args: []string{"--dir", missingDir, "MODULE"}, module: valid, code: exitTernError,
			want: []string{missingDir}, oneLine: true},
		{name: "dir is a regular file", args: []string{"--dir", regularFile + ":/data", "MODULE"}, module: valid, code: exitTernError,
			want: []string{regularFile, "not a directory"}, oneLine: true},
		{name: "dir empty", args: []string{"--dir", "", "MODULE"}, module: valid, code: exitTernError,
			want: []string{"--dir"}, oneLine: true},
		{name: "dir empty host", args: []string{"--dir", ":/data", "MODULE"}, module: valid, code: exitTernError,
			want: []string{"--dir", "HOST[:GUEST]"}, oneLine: true},
		{name: "bogus engine", args: []string{"--engine", "bogus", "MODULE"}, module: valid, code: exitTernError,
			want: []string{"bogus", "compiler or interpreter"}, oneLine: true},
		{name: "env without =", args: []string{"--env", "NOEQUALS", "MODULE"}, module: valid, code: exitTernError,
			want: []string{"--env", "NOEQUALS", "K=V"}, oneLine: true},
		{name: "env empty key", args: []string{"--env", "=value", "MODULE"}, module: valid, code: exitTernError,
			want: []string{"--env", "K=V"}, oneLine: true},
		{name: "proc_exit(7)", module: valid, code: 7},
		{name: "unreachable", module: trapModule(), code: exitTrap,
			want: []string{"unreachable"}, trace: "explode"},
		{name: "divide by zero", module: divModule(), code: exitTrap,
			want: []string{"divide by zero"}, trace: "_start"},
	}

	// The C guest shows the same for code as a toolchain emits it.
	crashSrc := filepath.Join(dir, "crash.c")
	if err := os.WriteFile(crashSrc, []byte(crashC), 0o644); err != nil {
		t.Fatal(err)
	}
	crash := buildWasiC(t, crashSrc)
	cases = append(cases,
		badCase{name: "C trap", args: []string{crash, "trap"}, code: exitTrap,
			want: []string{"unreachable"}, trace: "tern_test_crash_here"},
		badCase{name: "C divide by zero", args: []string{crash, "div"}, code: exitTrap,
			want: []string{"divide by zero"}, trace: "tern_test_divide"},
		badCase{name: "C proc_exit(7)", args: []string{crash, "exit"}, code: 7},
	)
	// A toolchain's module ends in custom sections (debug info, producers)
	// rather than code: cutting those must be caught as well.
	if b, err := os.ReadFile(crash); err != nil {
		t.Fatal(err)
	} else {
		cases = append(cases,
			badCase{name: "C module cut at half", module: b[:len(b)/2], code: exitTernError,
				want: []string{"invalid WebAssembly module"}, oneLine: true},
			badCase{name: "C module cut at len-1", module: b[:len(b)-1], code: exitTernError,
				want: []string{"invalid WebAssembly module"}, oneLine: true},
		)
	}

	cache := cacheDirForTests(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if c.module != nil {
				p := filepath.Join(dir, fmt.Sprintf("case%02d.wasm", i))
				if err := os.WriteFile(p, c.module, 0o644); err != nil {
					t.Fatal(err)
				}
				if args == nil {
					args = []string{"MODULE"}
				}
				args = replaceArg(args, "MODULE", p)
			}
			r := runTern(t, dir, nil, append([]string{"run", "--cache-dir", cache}, args...)...)
			t.Logf("exit %d, stderr:\n%s", r.code, r.stderr)
			if r.code != c.code {
				t.Errorf("exit status %d, want %d", r.code, c.code)
			}
			// A Go panic or fatal error is never an acceptable way to end.
			for _, bad := range []string{"panic:", "goroutine ", "fatal error:"} {
				if strings.Contains(r.stderr, bad) {
					t.Errorf("stderr contains %q", bad)
				}
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not mention %q", w)
				}
			}
			if c.oneLine && (!strings.HasPrefix(r.stderr, "tern: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n")) {
				t.Errorf("stderr is not one line starting \"tern: \": %q", r.stderr)
			}
			if c.trace != "" {
				first, rest, _ := strings.Cut(r.stderr, "\n")
				if !strings.HasPrefix(first, "tern: trap: ") {
					t.Errorf("first line %q, want \"tern: trap: ...\"", first)
				}
				for _, w := range c.want {
					if !strings.Contains(first, w) {
						t.Errorf("first line %q does not say %q", first, w)
					}
				}
				_, trace, found := strings.Cut(rest, "wasm stack trace:\n")
				if !found {
					t.Errorf("no \"wasm stack trace:\" section")
				} else if !strings.Contains(trace, c.trace) {
					t.Errorf("stack trace does not name %s:\n%s", c.trace, trace)
				}
			}
			if c.code == 7 && r.stderr != "" {
				t.Errorf("a guest that exits by choice should leave stderr empty")
			}
		})
	}
}

func replaceArg(args []string, from, to string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == from {
			a = to
		}
		out[i] = a
	}
	return out
}
