package wasmbin

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// specDir holds the WebAssembly 2.0 spec tests as wast2json output.
func specDir(t testing.TB) string {
	dir := filepath.Join("..", "..", "..", "shared", "conformance", "wasm-spec-v2")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("spec tests not found at %s (CI clones ../shared beside the repository): %v", dir, err)
	}
	return dir
}

// specModules lists the binary modules the spec scripts define as valid.
func specModules(t testing.TB) []string {
	dir := specDir(t)
	scripts, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no spec scripts in %s", dir)
	}
	var out []string
	for _, s := range scripts {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		var script struct {
			Commands []struct {
				Type       string `json:"type"`
				Filename   string `json:"filename"`
				ModuleType string `json:"module_type"`
			} `json:"commands"`
		}
		if err := json.Unmarshal(b, &script); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		for _, c := range script.Commands {
			if c.Type == "module" && filepath.Ext(c.Filename) == ".wasm" {
				out = append(out, filepath.Join(dir, c.Filename))
			}
		}
	}
	return out
}

// Every valid spec module parses, walks, and encodes back to its exact bytes.
func TestSpecModulesRoundTrip(t *testing.T) {
	mods := specModules(t)
	instrs := 0
	for _, path := range mods {
		wasm, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Parse(wasm)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(path), err)
			continue
		}
		if got := m.Encode(); !bytes.Equal(got, wasm) {
			t.Errorf("%s: unedited module does not encode to its input", filepath.Base(path))
		}
		for i, b := range m.Codes {
			if err := Walk(b.Instructions(), func(Instr) error { instrs++; return nil }); err != nil {
				t.Errorf("%s: body %d: %v", filepath.Base(path), i, err)
			}
		}
	}
	t.Logf("%d spec modules, %d instructions", len(mods), instrs)
	if len(mods) < 500 {
		t.Fatalf("only %d spec modules found", len(mods))
	}
}

// A module with no sections gains globals, exports and code where the
// format puts them, and the result parses back to the same content.
func TestEditsInsertMissingSections(t *testing.T) {
	// (module (type (func)) (func) ) with a custom section at the end.
	wasm := []byte{0, 'a', 's', 'm', 1, 0, 0, 0,
		1, 4, 1, 0x60, 0, 0, // type section
		3, 2, 1, 0, // function section
		10, 4, 1, 2, 0, 0x0b, // code: one body, no locals, end
		0, 4, 3, 'a', 'b', 'c', // custom "abc"
	}
	m, err := Parse(wasm)
	if err != nil {
		t.Fatal(err)
	}
	g := m.AddGlobal(Global{GlobalType: GlobalType{Type: I64, Mutable: true}, Init: ConstI64(-5)})
	if err := m.AddExport(Export{Name: "g", Kind: KindGlobal, Index: g}); err != nil {
		t.Fatal(err)
	}
	if err := m.AddExport(Export{Name: "g", Kind: KindGlobal, Index: g}); err == nil {
		t.Fatal("duplicate export accepted")
	}
	if err := m.SetBody(0, Body{Raw: []byte{0, 0x01, 0x0b}, Code: 1}); err != nil {
		t.Fatal(err)
	}
	out := m.Encode()
	m2, err := Parse(out)
	if err != nil {
		t.Fatalf("edited module does not parse: %v", err)
	}
	if len(m2.Globals) != 1 || !bytes.Equal(m2.Globals[0].Init, ConstI64(-5)) || !m2.Globals[0].Mutable {
		t.Errorf("globals: %+v", m2.Globals)
	}
	if len(m2.Exports) != 1 || m2.Exports[0] != (Export{Name: "g", Kind: KindGlobal, Index: 0}) {
		t.Errorf("exports: %+v", m2.Exports)
	}
	if !bytes.Equal(m2.Codes[0].Instructions(), []byte{0x01, 0x0b}) {
		t.Errorf("body: %x", m2.Codes[0].Raw)
	}
	var ids []byte
	for _, s := range m2.Sections {
		ids = append(ids, s.ID)
	}
	if !bytes.Equal(ids, []byte{SecType, SecFunction, SecGlobal, SecExport, SecCode, SecCustom}) {
		t.Errorf("section order %v", ids)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		wasm []byte
	}{
		{"empty", nil},
		{"not wasm", []byte("hello world!")},
		{"version 2", []byte{0, 'a', 's', 'm', 2, 0, 0, 0}},
		{"section overruns", []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 1, 9, 1}},
		{"unknown section", []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 99, 0}},
		{"sections out of order", []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 3, 1, 0, 1, 1, 0}},
		{"leb too long", []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}},
		{"huge vector", []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 1, 5, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"bodies without functions", []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 10, 4, 1, 2, 0, 0x0b}},
		{"trailing bytes in section", []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 1, 2, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(tt.wasm); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestWalkImmediates(t *testing.T) {
	code := []byte{
		0x41, 0x7f, // i32.const -1
		0x42, 0x80, 0x01, // i64.const 128
		0x10, 0x05, // call 5
		0x11, 0x02, 0x00, // call_indirect type 2 table 0
		0x28, 0x02, 0x10, // i32.load align 2 offset 16
		0xfc, 0x0b, 0x00, // memory.fill
		0xfd, 0x0c, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, // v128.const
		0x0e, 0x02, 0x00, 0x01, 0x02, // br_table 0 1 default 2
		0x0b,
	}
	var got []Instr
	if err := Walk(code, func(in Instr) error { got = append(got, in); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []Instr{
		{Op: OpI32Const, Pos: 0, End: 2, Imm: -1},
		{Op: OpI64Const, Pos: 2, End: 5, Imm: 128},
		{Op: OpCall, Pos: 5, End: 7, Imm: 5},
		{Op: OpCallIndirect, Pos: 7, End: 10, Imm: 2, Imm2: 0},
		{Op: OpI32Load, Pos: 10, End: 13, Imm: 16, Imm2: 2},
		{Op: 0xfc<<16 | 11, Pos: 13, End: 16},
		{Op: 0xfd<<16 | 12, Pos: 16, End: 34},
		{Op: OpBrTable, Pos: 34, End: 39, Imm: 2},
		{Op: OpEnd, Pos: 39, End: 40},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d instructions, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("instruction %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if err := Walk([]byte{0xff}, func(Instr) error { return nil }); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown opcode: %v", err)
	}
	if err := Walk([]byte{0x41}, func(Instr) error { return nil }); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated immediate: %v", err)
	}
}

func TestLEB(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 63, 64, -64, -65, 127, 128, 1 << 40, -1 << 40, 1<<63 - 1, -1 << 63} {
		r := &reader{b: AppendSLEB(nil, v)}
		if got := r.sleb(64); got != v || r.err != nil || r.off != len(r.b) {
			t.Errorf("sleb %d: got %d (%v)", v, got, r.err)
		}
		if v >= 0 {
			r := &reader{b: AppendULEB(nil, uint64(v))}
			if got := r.uleb(64); got != uint64(v) || r.err != nil {
				t.Errorf("uleb %d: got %d (%v)", v, got, r.err)
			}
		}
	}
}

// FuzzParse: any bytes either fail to parse with ErrMalformed or parse into
// a module that encodes back to the same bytes and whose bodies walk
// without panicking.
func FuzzParse(f *testing.F) {
	for i, path := range specModules(f) {
		if i%40 != 0 {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0, 'a', 's', 'm', 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if !bytes.Equal(m.Encode(), b) {
			t.Fatal("round trip changed the bytes")
		}
		for _, c := range m.Codes {
			_ = Walk(c.Instructions(), func(Instr) error { return nil })
		}
		_, _ = m.Calls()
		_ = m.TableSlots()
		for _, s := range m.Sections {
			if s.ID == SecCustom && s.Name == "producers" {
				_, _ = Producers(s.Data)
			}
		}
	})
}

// Adding a function import renumbers every defined function: each spec
// module gains tern.yield, and its exports, start, element segments and
// calls all point one further, while nothing else changes.
func TestSpecModulesAddFuncImport(t *testing.T) {
	for _, path := range specModules(t) {
		wasm, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		orig, err := Parse(wasm)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := Parse(wasm)
		idx, err := m.AddFuncImport("tern", "yield", m.AddType(FuncType{}))
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(path), err)
			continue
		}
		got, err := Parse(m.Encode())
		if err != nil {
			t.Errorf("%s: edited module does not parse: %v", filepath.Base(path), err)
			continue
		}
		shift := func(f int64) int64 {
			if f >= int64(idx) {
				return f + 1
			}
			return f
		}
		name := filepath.Base(path)
		if got.NumImportedFuncs != orig.NumImportedFuncs+1 || len(got.Funcs) != len(orig.Funcs) {
			t.Errorf("%s: %d imported, %d defined functions", name, got.NumImportedFuncs, len(got.Funcs))
			continue
		}
		if im, ok := got.ImportedFunc(idx); !ok || im.Module != "tern" || im.Name != "yield" {
			t.Errorf("%s: function %d is %+v", name, idx, im)
		}
		for i, e := range orig.Exports {
			want := e
			if e.Kind == KindFunc {
				want.Index = uint32(shift(int64(e.Index)))
			}
			if got.Exports[i] != want {
				t.Errorf("%s: export %d = %+v, want %+v", name, i, got.Exports[i], want)
			}
		}
		if (orig.Start == nil) != (got.Start == nil) || orig.Start != nil && uint32(shift(int64(*orig.Start))) != *got.Start {
			t.Errorf("%s: start moved wrongly", name)
		}
		for i, e := range orig.Elems {
			for k, f := range e.Funcs {
				if f >= 0 && got.Elems[i].Funcs[k] != shift(f) {
					t.Errorf("%s: element %d[%d] = %d, want %d", name, i, k, got.Elems[i].Funcs[k], shift(f))
				}
			}
		}
		for i := range orig.Codes {
			a, b := calls(t, orig.Codes[i]), calls(t, got.Codes[i])
			if len(a) != len(b) {
				t.Fatalf("%s: body %d: %d calls became %d", name, i, len(a), len(b))
			}
			for k := range a {
				if shift(a[k]) != b[k] {
					t.Errorf("%s: body %d: call %d to %d, want %d", name, i, k, b[k], shift(a[k]))
				}
			}
		}
	}
}

func calls(t *testing.T, b Body) []int64 {
	var out []int64
	err := Walk(b.Instructions(), func(in Instr) error {
		switch in.Op {
		case OpCall, OpRefFunc, OpReturnCall:
			out = append(out, in.Imm)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A body's local declarations decode to their groups.
func TestBodyLocals(t *testing.T) {
	b := Body{Raw: []byte{2, 3, byte(I32), 1, byte(F64), 0x0b}, Code: 5}
	got := b.Locals()
	want := []Local{{3, I32}, {1, F64}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("locals %+v, want %+v", got, want)
	}
	if l := (Body{Raw: []byte{0, 0x0b}, Code: 1}).Locals(); len(l) != 0 {
		t.Fatalf("no declarations decoded as %+v", l)
	}
}
