package asyncify

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/ternhq/tern/internal/wasmbin"
)

// FuzzReadInfo feeds arbitrary bytes, and arbitrary tern.asyncify
// sections in a module, to ReadInfo: a module is untrusted input, and its
// marker must be refused cleanly, never panic.
func FuzzReadInfo(f *testing.F) {
	empty := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	f.Add(empty, encodeInfo(Info{Version: Version, Tables: true}))
	f.Add(empty, []byte{Version})
	f.Add([]byte("not wasm"), []byte{})
	f.Fuzz(func(t *testing.T, wasm, section []byte) {
		ReadInfo(wasm)
		m, err := wasmbin.Parse(empty)
		if err != nil {
			t.Fatal(err)
		}
		m.SetCustom(Section, section)
		info, ok, err := ReadInfo(m.Encode())
		if err == nil && ok && string(encodeInfo(info)) != string(section) {
			t.Fatalf("marker %x read as %+v, which encodes to %x", section, info, encodeInfo(info))
		}
	})
}

// FuzzUnwind feeds arbitrary modules to tern's own transform: it must
// refuse what it cannot handle with an error, never panic, and what it
// makes of a module wazero accepts, wazero must accept too.
func FuzzUnwind(f *testing.F) {
	const spin = `(func $spin (param $n i32) (result i32)
    (loop $l (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $n))`
	for _, src := range []string{
		safepointsWat,
		`(module ` + spin + ` (func (export "_start") (drop (i32.add (i32.const 1) (call $spin (i32.const 9))))))`,
		`(module ` + spin + ` (func (export "f") (result i64) (local f64)
		  (i64.add (i64.const 2) (block (result i64) (if (result i64) (call $spin (i32.const 3))
		    (then (i64.extend_i32_u (call $spin (i32.const 1)))) (else (i64.const 5)))))))`,
	} {
		f.Add(watToWasm(f, src))
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	f.Cleanup(func() { rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, _, err := Unwind(wasm)
		if err != nil {
			return
		}
		cm, err := rt.CompileModule(ctx, wasm)
		if err != nil {
			return
		}
		cm.Close(ctx)
		cm, err = rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("wazero accepts the module but not what Unwind made of it: %v", err)
		}
		cm.Close(ctx)
	})
}
