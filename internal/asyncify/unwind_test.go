package asyncify

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/wasmbin"
)

// Prepare takes tern's own transform where it applies, needing no
// wasm-opt, and binaryen's Asyncify, with the reason, where it does not.
func TestPrepareMeans(t *testing.T) {
	const spin = `(func $spin (param $n i32) (result i32)
    (loop $l (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $n))`
	missing := filepath.Join(t.TempDir(), "no-wasm-opt")
	for _, c := range []struct {
		name, wat string
		binaryen  bool
		why       string // "" for tern's own transform
	}{
		{"loop", `(module ` + spin + ` (func (export "_start") (drop (call $spin (i32.const 9)))))`, false, ""},
		{"binaryen asked for", `(module ` + spin + ` (func (export "_start") (drop (call $spin (i32.const 9)))))`, true, ""},
		{"simd", `(module (func (export "_start") (local $v v128) (local $n i32)
		  (loop $l (local.set $v (i32x4.add (local.get $v) (local.get $v)))
		    (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))`, false, "v128"},
		{"funcref local", `(module (table 1 funcref) (func $f (export "_start") (local $r funcref) (local $n i32)
		  (local.set $r (ref.func $f))
		  (loop $l (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))`, false, "funcref"},
		{"multi-value below a call", `(module ` + spin + `
		  (func $pair (result i32 i32) (i32.const 1) (i32.const 2))
		  (func (export "_start") (call $pair) (call $spin) (i32.add) (drop)))`, false, "not the last result"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wasm := watToWasm(t, c.wat)
			own := c.why == "" && !c.binaryen
			// Without wasm-opt: only tern's own transform succeeds.
			res, err := Prepare(context.Background(), wasm, Options{WasmOpt: missing, Binaryen: c.binaryen})
			switch {
			case own && err != nil:
				t.Fatalf("without wasm-opt: %v", err)
			case own:
				if !res.Info.Own || res.Fallback != "" || res.WasmOpt != "" {
					t.Fatalf("without wasm-opt: own %v, fallback %q, wasm-opt %q", res.Info.Own, res.Fallback, res.WasmOpt)
				}
				m, err := wasmbin.Parse(res.Wasm)
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := m.ExportedFunc(ExportStartUnwind); ok {
					t.Error("tern's own transform left binaryen's exports")
				}
				if info, ok, err := InfoOf(m); err != nil || !ok || !info.Own {
					t.Errorf("marker: %+v, %v, %v", info, ok, err)
				}
				return
			case err == nil:
				t.Fatalf("without wasm-opt: prepared (own %v)", res.Info.Own)
			case !errors.Is(err, ErrWasmOpt) || !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), c.why):
				t.Fatalf("without wasm-opt: %v; want wasm-opt not found, and why: %q", err, c.why)
			}
			res, err = Prepare(context.Background(), wasm, Options{Binaryen: c.binaryen})
			if err != nil {
				t.Fatal(err)
			}
			if res.Info.Own || !strings.Contains(res.Fallback, c.why) || res.WasmOpt == "" {
				t.Fatalf("own %v, fallback %q (want %q), wasm-opt %q", res.Info.Own, res.Fallback, c.why, res.WasmOpt)
			}
		})
	}
}
