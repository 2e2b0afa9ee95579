package process

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/asyncify"
	"github.com/ternhq/tern/internal/wasi"
)

// shapesWat puts unwind points wherever tern's own transform has a case
// of its own: values of every number type below calls that unwind, block,
// loop and if results holding such calls, both arms of an if, the cases
// of a br_table, call_indirect of two result types (one target that never
// unwinds), a multi-value callee, select, recursion with a value below
// the recursive call, a local read below such a call and written before
// it, and trunc_sat. Its output is a running hash.
const shapesWat = `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (type $t_i64 (func (param i32) (result i64)))
  (type $t_f64 (func (param i32) (result f64)))
  (table 4 funcref)
  (elem (i32.const 0) $ind_a $ind_b $ind_c $ind_d)
  (global $g (mut i64) (i64.const 7))
  (data (i32.const 0) "0123456789abcdef")

  (func $spin (param $n i32) (result i64) (local $h i64)
    (local.set $h (i64.const 1469598103934665603))
    (block $out
      (loop $l
        (br_if $out (i32.eqz (local.get $n)))
        (local.set $h (i64.mul (i64.xor (local.get $h) (i64.extend_i32_u (local.get $n))) (i64.const 1099511628211)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
    (local.get $h))

  (func $rec (param $n i32) (result i64)
    (if (result i64) (i32.eqz (local.get $n))
      (then (call $spin (i32.const 200)))
      (else
        (i64.add
          (i64.extend_i32_u (local.get $n))
          (i64.rotl (call $rec (i32.sub (local.get $n) (i32.const 1))) (i64.const 5))))))

  (func $ind_a (type $t_i64) (call $spin (local.get 0)))
  (func $ind_b (type $t_i64) (i64.mul (call $spin (i32.add (local.get 0) (i32.const 3))) (i64.const 3)))
  (func $ind_c (type $t_f64) (f64.add (f64.const 0.25) (f64.convert_i64_u (call $spin (local.get 0)))))
  (func $ind_d (type $t_f64) (f64.mul (f64.const 1.5) (f64.convert_i32_u (local.get 0))))

  (func $pair (param $x i32) (result i32 i32)
    (i32.wrap_i64 (call $spin (local.get $x)))
    (i32.add (local.get $x) (i32.const 1)))

  (func $work (param $round i32) (result i64)
    (local $acc i64) (local $f f64) (local $i i32) (local $k i32) (local $s f32)
    (local.set $acc
      (i64.xor (global.get $g)
        (block (result i64)
          (br_if 0 (call $spin (i32.const 100)) (i32.eqz (i32.and (local.get $round) (i32.const 1))))
          (drop)
          (call $rec (i32.const 12)))))
    (local.set $f
      (f64.add (f64.convert_i64_s (local.get $acc))
        (if (result f64) (i32.and (local.get $round) (i32.const 2))
          (then (call_indirect (type $t_f64) (i32.const 120) (i32.const 2)))
          (else (f64.add (f64.const 2.5) (call_indirect (type $t_f64) (i32.const 100) (i32.const 3)))))))
    (local.set $s
      (f32.add (f32.const 0.5) (f32.convert_i64_u (call $spin (i32.const 30)))))
    (local.set $i (i32.const 0))
    (loop $cases
      (block $c2 (block $c1 (block $c0
        (br_table $c0 $c1 $c2 (i32.rem_u (i32.add (local.get $i) (local.get $round)) (i32.const 3))))
        (local.set $acc (i64.add (local.get $acc) (call_indirect (type $t_i64) (local.get $i) (i32.and (local.get $i) (i32.const 1)))))
        (br $c2))
        (local.set $acc (i64.sub (local.get $acc) (i64.extend_i32_u (i32.add (call $pair (local.get $i))))))
        (br $c2))
      (local.set $acc (i64.rotl (local.get $acc) (i64.extend_i32_u (local.get $i))))
      (br_if $cases (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 6))))
    (local.set $acc
      (i64.add
        (select (local.get $acc) (i64.const 99) (i32.and (local.get $round) (i32.const 4)))
        (call $spin (i32.const 50))))
    ;; A local read below a call that may unwind, written before the call:
    ;; the value read, not the local, must come back.
    (local.set $acc (i64.add (local.get $acc)
      (block (result i64)
        (local.set $acc (i64.const 1))
        (call $spin (i32.const 20)))))
    (local.set $k (i32.const 0))
    (local.set $acc (i64.add (local.get $acc)
      (loop $lr (result i64)
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br_if $lr (i32.lt_u (local.get $k) (i32.const 3)))
        (call $spin (i32.const 40)))))
    (global.set $g (i64.add (global.get $g) (i64.const 1)))
    (i64.add (i64.add (local.get $acc) (i64.trunc_sat_f64_s (local.get $f)))
      (i64.trunc_sat_f32_s (local.get $s))))

  (func $print (param $v i64) (local $i i32)
    (local.set $i (i32.const 16))
    (loop $d
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i32.store8 offset=16 (local.get $i)
        (i32.load8_u (i32.wrap_i64 (i64.and (local.get $v) (i64.const 15)))))
      (local.set $v (i64.shr_u (local.get $v) (i64.const 4)))
      (br_if $d (local.get $i)))
    (i32.store8 offset=32 (i32.const 0) (i32.const 10))
    (i32.store (i32.const 40) (i32.const 16))
    (i32.store (i32.const 44) (i32.const 17))
    (drop (call $fd_write (i32.const 1) (i32.const 40) (i32.const 1) (i32.const 48))))

  (func (export "_start") (local $r i32) (local $sum i64)
    (loop $rounds
      ;; Not idempotent: a loop body that ran twice shows in the output.
      (global.set $g (i64.add (global.get $g) (i64.const 3)))
      (local.set $sum (i64.add (i64.rotl (local.get $sum) (i64.const 1)) (call $work (local.get $r))))
      (if (i32.eqz (i32.rem_u (local.get $r) (i32.const 5000))) (then (call $print (local.get $sum))))
      (br_if $rounds (i32.lt_u (local.tee $r (i32.add (local.get $r) (i32.const 1))) (i32.const 200000))))
    (call $print (local.get $sum))))
`

// Every shape above, frozen and continued at many instants, then frozen,
// stopped and resumed on the other engine again and again, prints what an
// uninterrupted run prints.
func TestUnwindShapes(t *testing.T) {
	wasm := buildWat(t, shapesWat)
	if info, _, err := asyncify.ReadInfo(wasm); err != nil || !info.Own {
		t.Fatalf("not prepared by tern's own transform (err %v)", err)
	}
	ref := uninterrupted(t, wasm)

	var out lockedBuffer
	p, done := start(t, wasm, &out)
	n := freezeContinueToEnd(t, p, done, 500*time.Microsecond, nil)
	if out.String() != ref {
		t.Fatalf("output after %d freezes differs:\n%s\nwant:\n%s", n, out.String(), ref)
	}
	if n < 20 {
		t.Fatalf("only %d freezes", n)
	}
	t.Logf("%d freezes continued", n)

	// A chain: each link frozen a little after it resumed, on the other
	// engine.
	var chain lockedBuffer
	p, done = start(t, wasm, &chain)
	engines := []Engine{EngineInterpreter, EngineCompiler}
	for i := range 12 {
		// Every other link is frozen at once, while its stack may still
		// be rebuilding.
		time.Sleep(time.Duration(i%2*(3+i)) * time.Millisecond)
		enc, _ := freezeStop(t, p, done)
		p, done = resumeStart(t, engines[i%2], wasm, enc, wasi.Stdio{Stdout: &chain, Stderr: &chain})
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if chain.String() != ref {
		t.Fatalf("output after a chain of 12 differs:\n%s\nwant:\n%s", chain.String(), ref)
	}
}

// An image whose stack data does not fit the module (signed images make
// this a bug, not an attack) fails its run with a clear error: data that
// does not decode, a frame of another function, data that runs out before
// the stack is rebuilt.
func TestUnwindBadStackData(t *testing.T) {
	wasm := buildWat(t, shapesWat)
	var out lockedBuffer
	p, done := start(t, wasm, &out)
	time.Sleep(20 * time.Millisecond)
	enc, _ := freezeStop(t, p, done)
	img, st := decodeImage(t, enc)
	g, err := decodeAsyncGuest(img.Guest)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := decodeFrames(g.Stack)
	if err != nil || len(frames) < 2 {
		t.Fatalf("%d frames, %v", len(frames), err)
	}
	innermostFirst := func(fs [][]uint64) [][]uint64 {
		r := slices.Clone(fs)
		slices.Reverse(r)
		return r
	}
	otherFunc := slices.Clone(frames)
	otherFunc[0] = slices.Clone(otherFunc[0])
	otherFunc[0][0] += 1000
	for _, c := range []struct {
		name  string
		stack []byte
		want  string
	}{
		{"undecodable", []byte{0xff}, "stack data"},
		{"other function", encodeFrames(innermostFirst(otherFunc)), "unreachable"},
		{"runs out", encodeFrames(innermostFirst(frames[:len(frames)-1])), "stack data ran out"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := *img
			g2 := g
			g2.Stack = c.stack
			bad.Guest = encodeAsyncGuest(g2)
			ctx := context.Background()
			r := newTestRuntime(t, EngineCompiler)
			prog, err := Load(ctx, r, wasm, true)
			if err != nil {
				t.Fatal(err)
			}
			sys, err := wasi.Restore(st, wasi.RestoreOptions{Stdio: wasi.Stdio{Stdout: &out, Stderr: &out}})
			if err != nil {
				t.Fatal(err)
			}
			defer sys.Close()
			rp, err := Resume(ctx, r, prog, &bad, sys)
			if err == nil {
				defer rp.Close(ctx)
				_, err = rp.Run(ctx)
			}
			t.Logf("%v", err)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error saying %q", err, c.want)
			}
		})
	}
}
