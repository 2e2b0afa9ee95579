package process

import (
	"reflect"
	"testing"
)

// module assembles a wasm binary from raw sections (id, contents).
func module(sections ...[]byte) []byte {
	b := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	for _, s := range sections {
		b = append(b, s[0], byte(len(s)-1))
		b = append(b, s[1:]...)
	}
	return b
}

func TestTableAndGlobalImports(t *testing.T) {
	imports := []byte{2, // import section
		3,                                                // three imports
		3, 'e', 'n', 'v', 1, 't', 0x01, 0x70, 0x00, 0x01, // env.t: table funcref min 1
		3, 'e', 'n', 'v', 1, 'g', 0x03, 0x7f, 0x00, // env.g: global i32 const
		3, 'e', 'n', 'v', 1, 'm', 0x02, 0x00, 0x01, // env.m: memory min 1 (named elsewhere)
	}
	got := tableAndGlobalImports(module(imports))
	want := []string{"env.t (table)", "env.g (global)"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := tableAndGlobalImports(module()); got != nil {
		t.Fatalf("module without imports: %q", got)
	}
}

func FuzzTableAndGlobalImports(f *testing.F) {
	f.Add(module([]byte{2, 1, 3, 'e', 'n', 'v', 1, 'g', 0x03, 0x7f, 0x00}))
	f.Add([]byte{0, 'a', 's', 'm', 1, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, wasm []byte) {
		// Untrusted bytes: any input must end the scan without a panic.
		tableAndGlobalImports(wasm)
	})
}
