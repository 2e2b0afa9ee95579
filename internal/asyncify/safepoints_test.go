package asyncify

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/ternhq/tern/internal/wasmbin"
)

// safepointsWat has one function per placement rule; env.arm raises the
// flag (in the instrumented module) so that safepoints further on yield.
const safepointsWat = `(module
  (import "env" "arm" (func $arm))
  (type $i2i (func (param i32) (result i32)))
  (table funcref (elem $even $odd))
  (memory 1)
  ;; A leaf loop: one loop safepoint, no entry safepoint. The code after
  ;; each loop, never reached, catches a branch that lands short of its
  ;; label.
  (func $leaf (export "leaf") (param $n i32) (result i32) (local $s i32)
    (block $out
      (loop $l
        (br_if $out (i32.eqz (local.get $n)))
        (local.set $s (i32.add (local.get $s) (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l))
      (unreachable))
    (local.get $s))
  ;; A loop nothing branches back to runs once: no safepoint.
  (func $once (export "once") (param i32) (result i32)
    (loop $l (result i32) (i32.add (local.get 0) (i32.const 7))))
  ;; Recursion outside any loop: an entry safepoint.
  (func $fact (export "fact") (param i32) (result i32)
    (if (result i32) (i32.le_u (local.get 0) (i32.const 1))
      (then (i32.const 1))
      (else (i32.mul (local.get 0) (call $fact (i32.sub (local.get 0) (i32.const 1)))))))
  ;; Recursion only inside a loop, whose safepoint it passes first: no
  ;; entry safepoint.
  (func $fib (export "fib") (param $n i32) (result i32) (local $acc i32)
    (if (i32.lt_u (local.get $n) (i32.const 2)) (then (return (local.get $n))))
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (call $fib (i32.sub (local.get $n) (i32.const 1)))))
      (local.set $n (i32.sub (local.get $n) (i32.const 2)))
      (br_if $l (i32.gt_u (local.get $n) (i32.const 1))))
    (i32.add (local.get $acc) (local.get $n)))
  ;; Mutual recursion through the table: entry safepoints in both.
  (func $even (export "even") (type $i2i)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 1))
      (else (call_indirect (type $i2i) (i32.sub (local.get 0) (i32.const 1)) (i32.const 1)))))
  (func $odd (export "odd") (type $i2i)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (call_indirect (type $i2i) (i32.sub (local.get 0) (i32.const 1)) (i32.const 0)))))
  ;; Calls, but on no cycle: no entry safepoint.
  (func $caller (export "caller") (param i32) (result i32)
    (i32.add (call $leaf (local.get 0)) (call $once (local.get 0))))
  ;; Nested loops, a loop with a result, and branches out of the inner
  ;; loop (br_table, a br_if carrying a value) to labels outside it.
  (func $nest (export "nest") (param $n i32) (result i32) (local $i i32) (local $j i32) (local $s i32)
    (block $done
      (loop $outer
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $j (i32.const 0))
        (local.set $s (i32.add (local.get $s)
          (block $skip (result i32)
            (loop $inner (result i32)
              (if (i32.eqz (i32.rem_u (i32.add (local.get $i) (local.get $j)) (i32.const 4)))
                (then (call $arm)))
              (local.set $j (i32.add (local.get $j) (i32.const 1)))
              (block $c
                (block $b
                  (block $a
                    (br_table $a $b $inner $c
                      (select (i32.const 3) (i32.rem_u (local.get $j) (i32.const 3))
                        (i32.ge_u (local.get $j) (i32.add (local.get $i) (i32.const 9))))))
                  (local.set $s (i32.add (local.get $s) (local.get $j)))
                  (br $inner))
                (br_if $skip (i32.const 100) (i32.gt_u (local.get $j) (i32.add (local.get $i) (i32.const 5))))
                (br_if $done (i32.gt_u (local.get $s) (i32.const 3000)))
                (br $inner))
              (i32.mul (local.get $j) (i32.const 2)))
            (i32.const 1)
            (i32.add))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer))
      (unreachable))
    (local.get $s)))`

func TestSafepointPlacement(t *testing.T) {
	wasm := watToWasm(t, safepointsWat)
	out, _, err := Instrument(wasm)
	if err != nil {
		t.Fatal(err)
	}
	m, err := wasmbin.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	yield, flag := uint32(0), uint32(0)
	for i, im := range m.Imports {
		if im.Module == ImportModule && im.Name == ImportYield {
			yield = uint32(i)
		}
	}
	for _, e := range m.Exports {
		if e.Name == ExportFlag {
			flag = e.Index
		}
	}
	cases := []struct {
		fn    string
		entry bool
		loops int
	}{
		{"leaf", false, 1},
		{"once", false, 0},
		{"fact", true, 0},
		{"fib", false, 1},
		{"even", true, 0},
		{"odd", true, 0},
		{"caller", false, 0},
		{"nest", false, 2},
	}
	for _, c := range cases {
		fi, ok := m.ExportedFunc(c.fn)
		if !ok {
			t.Fatalf("no export %s", c.fn)
		}
		code := m.Codes[fi-m.NumImportedFuncs].Instructions()
		yields, first := 0, wasmbin.Instr{Op: wasmbin.OpNop}
		n := 0
		if err := wasmbin.Walk(code, func(in wasmbin.Instr) error {
			if n == 0 {
				first = in
			}
			n++
			if in.Op == wasmbin.OpCall && uint32(in.Imm) == yield {
				yields++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		entry := first.Op == wasmbin.OpGlobalGet && uint32(first.Imm) == flag
		if entry != c.entry || yields != c.loops+map[bool]int{true: 1}[c.entry] {
			t.Errorf("%s: entry safepoint %v, %d calls of tern.yield; want entry %v and %d loop safepoints", c.fn, entry, yields, c.entry, c.loops)
		}
	}

	// The instrumented module computes what the original does, with
	// safepoints yielding wherever env.arm raised the flag.
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	var flagOf func() api.MutableGlobal
	arms := 0
	if _, err := rt.NewHostModuleBuilder("env").NewFunctionBuilder().WithFunc(func(ctx context.Context) {
		if flagOf != nil {
			arms++
			flagOf().Set(1)
		}
	}).Export("arm").Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	yields := 0
	if _, err := rt.NewHostModuleBuilder(ImportModule).NewFunctionBuilder().WithFunc(func(ctx context.Context, mod api.Module) {
		yields++
		mod.ExportedGlobal(ExportFlag).(api.MutableGlobal).Set(0)
	}).Export(ImportYield).Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	orig, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("orig"))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := rt.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithName("inst").WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	flagG := inst.ExportedGlobal(ExportFlag).(api.MutableGlobal)
	for _, c := range []struct {
		fn   string
		arg  uint64
		want int // yields at least
	}{
		{"leaf", 1000, 1}, {"once", 5, 0}, {"fact", 10, 1}, {"fib", 15, 1},
		{"even", 41, 1}, {"odd", 41, 1}, {"caller", 30, 1}, {"nest", 40, 20},
	} {
		flagOf = nil
		want, err := orig.ExportedFunction(c.fn).Call(ctx, c.arg)
		if err != nil {
			t.Fatalf("original %s: %v", c.fn, err)
		}
		flagOf = func() api.MutableGlobal { return flagG }
		flagG.Set(1) // the first safepoint reached yields
		yields, arms = 0, 0
		got, err := inst.ExportedFunction(c.fn).Call(ctx, c.arg)
		if err != nil {
			t.Fatalf("instrumented %s: %v", c.fn, err)
		}
		if got[0] != want[0] {
			t.Errorf("%s(%d) = %d instrumented, %d original", c.fn, c.arg, got[0], want[0])
		}
		if yields < c.want {
			t.Errorf("%s(%d): %d yields (flag raised %d times), want at least %d", c.fn, c.arg, yields, arms, c.want)
		}
		t.Logf("%s(%d) = %d; %d yields, flag raised %d times", c.fn, c.arg, got[0], yields, arms)
		flagG.Set(0)
	}
}

func watToWasm(t testing.TB, src string) []byte {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "m.wat")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("wat2wasm", "-o", filepath.Join(dir, "m.wasm"), path).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm (apt-get install wabt): %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "m.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
