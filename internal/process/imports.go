package process

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Every import tern cannot satisfy must be refused before the module is
// instantiated: wazero reports a failed link from InstantiateModule, where it
// is indistinguishable from a trap and names no import ("module[env] not
// instantiated").

// tableAndGlobalImports names the table and global imports of wasm, which
// tern never provides. wazero's CompiledModule lists only function and memory
// imports, so the import section is read here; wasm has already been
// validated by wazero, and anything unexpected ends the scan.
func tableAndGlobalImports(wasm []byte) []string {
	if len(wasm) < 8 {
		return nil
	}
	r := wasmReader{b: wasm[8:]} // after magic and version
	for !r.bad && len(r.b) > 0 {
		id := r.byte()
		size := r.uleb()
		if r.bad || uint64(len(r.b)) < size {
			return nil
		}
		sec := wasmReader{b: r.b[:size]}
		r.b = r.b[size:]
		if id != 2 { // import section
			continue
		}
		var out []string
		for n := sec.uleb(); n > 0 && !sec.bad; n-- {
			mod, name := sec.name(), sec.name()
			switch sec.byte() {
			case 0x00: // function: type index
				sec.uleb()
			case 0x01: // table: reference type, limits
				sec.byte()
				sec.limits()
				out = append(out, mod+"."+name+" (table)")
			case 0x02: // memory: limits
				sec.limits()
			case 0x03: // global: value type, mutability
				sec.byte()
				sec.byte()
				out = append(out, mod+"."+name+" (global)")
			default:
				return out
			}
		}
		return out
	}
	return nil
}

type wasmReader struct {
	b   []byte
	bad bool
}

func (r *wasmReader) byte() byte {
	if len(r.b) == 0 {
		r.bad = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *wasmReader) uleb() uint64 {
	var v uint64
	for shift := 0; shift < 64 && !r.bad; shift += 7 {
		c := r.byte()
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	r.bad = true
	return 0
}

func (r *wasmReader) name() string {
	n := r.uleb()
	if r.bad || uint64(len(r.b)) < n {
		r.bad = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *wasmReader) limits() {
	if r.byte()&1 != 0 {
		r.uleb()
	}
	r.uleb()
}

// checkImportTypes refuses WASI functions imported with a type other than
// the one tern's host module defines.
func checkImportTypes(cm wazero.CompiledModule, host api.Module) error {
	defs := host.ExportedFunctionDefinitions()
	var bad []string
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		d, ok := defs[name]
		if !ok {
			continue // checkImports has refused it already
		}
		if !slices.Equal(f.ParamTypes(), d.ParamTypes()) || !slices.Equal(f.ResultTypes(), d.ResultTypes()) {
			bad = append(bad, fmt.Sprintf("%s.%s with type %s (tern's has type %s)", mod, name, funcType(f), funcType(d)))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingImports, strings.Join(bad, ", "))
	}
	return nil
}

// funcType formats a function type as "(i32, i64) -> (i32)".
func funcType(f api.FunctionDefinition) string {
	list := func(ts []api.ValueType) string {
		names := make([]string, len(ts))
		for i, t := range ts {
			names[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(names, ", ") + ")"
	}
	return list(f.ParamTypes()) + " -> " + list(f.ResultTypes())
}
