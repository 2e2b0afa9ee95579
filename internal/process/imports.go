package process

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/ternhq/tern/internal/wasmbin"
)

// Every import tern cannot satisfy must be refused before the module is
// instantiated: wazero reports a failed link from InstantiateModule, where it
// is indistinguishable from a trap and names no import ("module[env] not
// instantiated").

// tableAndGlobalImports names the table and global imports of wasm, which
// tern never provides. wazero's CompiledModule lists only function and memory
// imports, so the import section is read here; wasm has already been
// validated by wazero.
func tableAndGlobalImports(wasm []byte) []string {
	m, err := wasmbin.Parse(wasm)
	if err != nil {
		return nil
	}
	var out []string
	for _, im := range m.Imports {
		switch im.Kind {
		case wasmbin.KindTable:
			out = append(out, im.Module+"."+im.Name+" (table)")
		case wasmbin.KindGlobal:
			out = append(out, im.Module+"."+im.Name+" (global)")
		}
	}
	return out
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
