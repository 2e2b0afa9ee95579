package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/asyncify"
	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/wasi"
)

// A C guest whose output says where it is: compute rounds, heap churn and
// a recursion that puts a deep stack under every safepoint of rec.
const cGuestSrc = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long rec(int n, unsigned long s) {
	if (n == 0) {
		for (unsigned i = 0; i < 200000; i++) s = s * 31 + i;
		return s;
	}
	volatile int pad = n;
	return rec(n - 1, s + pad) ^ (unsigned long)n;
}

int main(int argc, char **argv) {
	int depth = argc > 1 ? atoi(argv[1]) : 100;
	unsigned long s = 1;
	for (int r = 0; r < 30; r++) {
		for (unsigned i = 0; i < 3000000; i++) s = s * 6364136223846793005UL + (i ^ r);
		char *p = malloc(1000 + r * 100);
		memset(p, r, 1000 + r * 100);
		s += p[r];
		free(p);
		printf("round %d %lu %lu\n", r, s, rec(depth, s));
	}
	return 0;
}
`

// resumeImage resumes an encoded image on eng and runs it to its end.
func resumeImage(t *testing.T, eng Engine, wasm []byte, enc []byte, out *lockedBuffer) {
	t.Helper()
	_, done := resumeStart(t, eng, wasm, enc, wasi.Stdio{Stdout: out, Stderr: out})
	if err := <-done; err != nil {
		t.Fatalf("resumed run: %v", err)
	}
}

// resumeStart resumes an encoded image on eng in a runtime of its own, in
// the background, with stdio; it returns the process and a channel with
// how Run ended.
func resumeStart(t *testing.T, eng Engine, wasm []byte, enc []byte, stdio wasi.Stdio) (*Process, chan error) {
	t.Helper()
	ctx := context.Background()
	img, st := decodeImage(t, enc)
	r := newTestRuntime(t, eng)
	prog, err := Load(ctx, r, wasm, true)
	if err != nil {
		t.Fatal(err)
	}
	sys, err := wasi.Restore(st, wasi.RestoreOptions{Stdio: stdio})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	p, err := Resume(ctx, r, prog, img, sys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(ctx) })
	return p, runInBackground(p)
}

func TestAsyncifyFreezeStopResume(t *testing.T) {
	wasm := buildC(t, cGuestSrc)
	ref := uninterrupted(t, wasm)
	for _, eng := range []Engine{EngineCompiler, EngineInterpreter} {
		t.Run(string(eng), func(t *testing.T) {
			var out lockedBuffer
			p, done := start(t, wasm, &out)
			time.Sleep(30 * time.Millisecond)
			enc, desc := freezeStop(t, p, done)
			t.Logf("frozen: %s", desc)
			resumeImage(t, eng, wasm, enc, &out)
			if out.String() != ref {
				t.Fatalf("resumed output differs:\n%s\nwant:\n%s", out.String(), ref)
			}
		})
	}
}

// Freezing and continuing in place changes nothing.
func TestAsyncifyFreezeContinue(t *testing.T) {
	wasm := buildC(t, cGuestSrc)
	ref := uninterrupted(t, wasm)
	var out lockedBuffer
	p, done := start(t, wasm, &out)
	n := freezeContinueToEnd(t, p, done, 2*time.Millisecond, func(fz *Frozen) {
		if !strings.Contains(DescribeGuest(fz.Image.Kind, fz.Image.Guest), "stack data") {
			t.Fatal("no stack data")
		}
	})
	if out.String() != ref {
		t.Fatalf("output differs:\n%s\nwant:\n%s", out.String(), ref)
	}
	if n < 5 {
		t.Fatalf("only %d freezes", n)
	}
}

// freezeContinueToEnd freezes p every gap and continues it, checking each
// freeze with check (nil: none), until its run ends without an error. It
// returns how many times it tried to freeze.
func freezeContinueToEnd(t *testing.T, p *Process, done chan error, gap time.Duration, check func(*Frozen)) int {
	t.Helper()
	for n := 0; ; n++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			return n
		default:
		}
		time.Sleep(gap)
		fz, err := p.Freeze(context.Background(), 0)
		if errors.Is(err, ErrNotRunning) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if check != nil {
			check(fz)
		}
		fz.Continue()
	}
}

// buildC compiles a C source with clang and prepares the module.
func buildC(t *testing.T, src string) []byte {
	t.Helper()
	return builtOnce(t, src, func(dir string) ([]byte, error) {
		path := filepath.Join(dir, "g.c")
		os.WriteFile(path, []byte(src), 0o644)
		for _, args := range [][]string{
			{"--target=wasm32-wasi", "-O2", "-c", "-o", filepath.Join(dir, "g.o"), path},
			{"--target=wasm32-wasi", "-o", filepath.Join(dir, "g.wasm"), filepath.Join(dir, "g.o")},
		} {
			if out, err := exec.Command("clang", args...).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("clang (needs clang, wasi-libc): %v\n%s", err, out)
			}
		}
		return prepareFile(filepath.Join(dir, "g.wasm"))
	})
}

// buildWat assembles a text module with wabt's wat2wasm and prepares it.
func buildWat(t *testing.T, src string) []byte {
	t.Helper()
	return builtOnce(t, src, func(dir string) ([]byte, error) {
		path := filepath.Join(dir, "g.wat")
		os.WriteFile(path, []byte(src), 0o644)
		if out, err := exec.Command("wat2wasm", "-o", filepath.Join(dir, "g.wasm"), path).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("wat2wasm (apt-get install wabt): %v\n%s", err, out)
		}
		return prepareFile(filepath.Join(dir, "g.wasm"))
	})
}

// prepareFile prepares a module for capture (needs binaryen).
func prepareFile(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	res, err := asyncify.Prepare(context.Background(), raw, asyncify.Options{})
	if err != nil {
		return nil, err
	}
	return res.Wasm, nil
}

// decodeImage decodes an encoded image and the WASI state it holds.
func decodeImage(t *testing.T, enc []byte) (*image.Image, *wasi.State) {
	t.Helper()
	img, err := image.Decode(bytes.NewReader(enc))
	if err != nil {
		t.Fatal(err)
	}
	var st wasi.State
	if err := st.UnmarshalBinary(img.WASI); err != nil {
		t.Fatal(err)
	}
	return img, &st
}

// startWith runs wasm, prepared for capture, on eng in a runtime of its
// own in the background, with stdin (nil: none); it returns the process
// and a channel with how Run ended.
func startWith(t *testing.T, eng Engine, wasm []byte, stdin *os.File, out *lockedBuffer, args ...string) (*Process, chan error) {
	t.Helper()
	cfg := wasi.Config{Args: append([]string{"guest"}, args...), Stdout: out, Stderr: out}
	if stdin != nil {
		cfg.Stdin = stdin
	}
	return startConfig(t, eng, wasm, cfg)
}

// startConfig is startWith for a WASI configuration of the caller's.
func startConfig(t *testing.T, eng Engine, wasm []byte, cfg wasi.Config) (*Process, chan error) {
	t.Helper()
	r := newTestRuntime(t, eng)
	prog, err := Load(context.Background(), r, wasm, true)
	if err != nil {
		t.Fatal(err)
	}
	sys, err := wasi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	p, err := Start(context.Background(), r, prog, sys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p, runInBackground(p)
}

// runInBackground runs p and sends how Run ended, a non-zero exit being
// an error.
func runInBackground(p *Process) chan error {
	done := make(chan error, 1)
	go func() {
		code, err := p.Run(context.Background())
		if err == nil && code != 0 {
			err = fmt.Errorf("exit code %d", code)
		}
		done <- err
	}()
	return done
}

// freezeStop freezes p, encodes the image and stops p.
func freezeStop(t *testing.T, p *Process, done chan error) ([]byte, string) {
	t.Helper()
	fz, err := p.Freeze(context.Background(), 0)
	if errors.Is(err, ErrNotRunning) {
		t.Fatalf("freeze: %v; the run ended with %v", err, <-done)
	}
	if err != nil {
		t.Fatal(err)
	}
	var enc bytes.Buffer
	if err := image.Encode(&enc, fz.Image); err != nil {
		t.Fatal(err)
	}
	desc := DescribeGuest(fz.Image.Kind, fz.Image.Guest)
	fz.Stop()
	if err := <-done; !errors.Is(err, ErrFrozen) {
		t.Fatalf("Run after Stop: %v", err)
	}
	return enc.Bytes(), desc
}

func waitFor(t *testing.T, out *lockedBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in output:\n%s", s, out.String())
		}
		time.Sleep(time.Millisecond)
	}
}

// A guest waiting for stdin in fd_read, or sleeping in poll_oneoff, is
// frozen there and makes the call again when resumed.
func TestAsyncifyFreezeBlocked(t *testing.T) {
	wasm := buildC(t, `#include <stdio.h>
#include <unistd.h>
int main(void) {
	char line[100];
	while (fgets(line, sizeof line, stdin)) {
		printf("got %s", line);
		fflush(stdout);
		usleep(1000);
	}
	usleep(300000);
	printf("slept\n");
	return 0;
}
`)
	for _, eng := range []Engine{EngineCompiler, EngineInterpreter} {
		t.Run(string(eng), func(t *testing.T) {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			var out lockedBuffer
			p, done := startWith(t, EngineCompiler, wasm, pr, &out)
			pw.WriteString("one\n")
			waitFor(t, &out, "got one\n")
			time.Sleep(20 * time.Millisecond) // now waiting for the next line
			enc, desc := freezeStop(t, p, done)
			if !strings.Contains(desc, "fd_read") {
				t.Errorf("frozen %s, want waiting in fd_read", desc)
			}
			p2, done2 := resumeStart(t, eng, wasm, enc, wasi.Stdio{Stdin: pr, Stdout: &out, Stderr: &out})
			pw.WriteString("two\n")
			pw.Close()
			waitFor(t, &out, "got two\n")
			time.Sleep(50 * time.Millisecond) // into the long sleep
			enc2, desc2 := freezeStop(t, p2, done2)
			if !strings.Contains(desc2, "poll_oneoff") {
				t.Errorf("frozen %s, want waiting in poll_oneoff", desc2)
			}
			resumeImage(t, eng, wasm, enc2, &out)
			if want := "got one\ngot two\nslept\n"; out.String() != want {
				t.Fatalf("output %q, want %q", out.String(), want)
			}
		})
	}
}

// A recursion whose stack data is larger than the program's memory is
// unwound into pages lent beyond it, which the program never sees.
func TestAsyncifyDeepStack(t *testing.T) {
	wasm := buildC(t, `#include <stdio.h>
#include <stdlib.h>
static unsigned spins;
__attribute__((noinline)) static unsigned long spin(unsigned long s) {
	volatile unsigned long v = s; // one memory round trip an iteration: no closed form
	for (unsigned i = 0; i < spins; i++) v = v * 31 + i;
	return v;
}
__attribute__((noinline)) static unsigned long rec(int n, unsigned long a, unsigned long b, unsigned long c) {
	if (n == 0) {
		fputs("bottom\n", stdout); // tells the test the stack is deep now
		fflush(stdout);
		return spin(a ^ b ^ c);
	}
	unsigned long r = rec(n - 1, a * 3 + n, b ^ a, c + b);
	return (r ^ (r >> 3)) + (unsigned long)n * a;
}
int main(int argc, char **argv) {
	int n = atoi(argv[1]);
	spins = atoi(argv[2]);
	printf("deep %lu\n", rec(n, 1, 2, 3));
	printf("pages %lu\n", (unsigned long)__builtin_wasm_memory_size(0));
	return 0;
}
`)
	ref := func(eng Engine, n, spins string) string {
		var out lockedBuffer
		_, done := startWith(t, eng, wasm, nil, &out, n, spins)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	for _, c := range []struct {
		eng          Engine
		depth, spins string
	}{{EngineCompiler, "30000", "1000000000"}, {EngineInterpreter, "1500", "4000000"}} {
		t.Run(string(c.eng), func(t *testing.T) {
			want := ref(c.eng, c.depth, c.spins)
			// A collection started by this test's polling while the
			// guest spins stalls the test until the guest next calls
			// the host, which it does only after the deep stack is
			// gone; tern itself does not allocate while a guest runs.
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			var out lockedBuffer
			p, done := startWith(t, c.eng, wasm, nil, &out, c.depth, c.spins)
			waitFor(t, &out, "bottom\n")
			enc, desc := freezeStop(t, p, done)
			t.Logf("%s", desc)
			img, _ := decodeImage(t, enc)
			if c.eng == EngineCompiler {
				g, _ := decodeAsyncGuest(img.Guest)
				if len(g.Stack) <= len(img.Memory) {
					t.Errorf("stack data %d bytes, memory %d: the test should unwind more than memory holds", len(g.Stack), len(img.Memory))
				}
			}
			resumeImage(t, c.eng, wasm, enc, &out)
			if out.String() != want {
				t.Fatalf("output %q, want %q", out.String(), want)
			}
		})
	}
}

// A start function is run by tern, not by instantiation, so a freeze
// inside it resumes there and the start function does not run twice.
func TestAsyncifyStartFunction(t *testing.T) {
	wasm := buildWat(t, `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  (global $runs (mut i32) (i32.const 0))
  (data (i32.const 100) "S")
  (data (i32.const 101) "M")
  (func $print (param $at i32)
    (i32.store (i32.const 0) (local.get $at))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $start (local $i i32)
    (global.set $runs (i32.add (global.get $runs) (i32.const 1)))
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 100000000))))
    (call $print (i32.const 100)))
  (start $start)
  (func (export "_start")
    (if (i32.ne (global.get $runs) (i32.const 1)) (then unreachable))
    (call $print (i32.const 101))))
`)
	var out lockedBuffer
	p, done := startWith(t, EngineCompiler, wasm, nil, &out)
	time.Sleep(30 * time.Millisecond)
	enc, desc := freezeStop(t, p, done)
	if !strings.Contains(desc, "start function") {
		t.Errorf("frozen %s, want in the start function", desc)
	}
	resumeImage(t, EngineInterpreter, wasm, enc, &out)
	if out.String() != "SM" {
		t.Fatalf("output %q, want SM", out.String())
	}
}

// Tables the program changes are captured: slots set and grown before
// the freeze call the same functions after the resume.
func TestAsyncifyTables(t *testing.T) {
	wasm := buildWat(t, `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  (type $t (func (result i32)))
  (table $tab 2 funcref)
  (elem (table $tab) (i32.const 0) func $a $a)
  (elem declare func $b $c)
  (func $a (result i32) (i32.const 65))
  (func $b (result i32) (i32.const 66))
  (func $c (result i32) (i32.const 67))
  (func $print (param $c i32)
    (i32.store8 (i32.const 100) (local.get $c))
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start") (local $i i32)
    (table.set $tab (i32.const 1) (ref.func $b))
    (drop (table.grow $tab (ref.func $c) (i32.const 3)))
    (table.set $tab (i32.const 3) (ref.null func))
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 100000000))))
    (call $print (call_indirect $tab (type $t) (i32.const 0)))
    (call $print (call_indirect $tab (type $t) (i32.const 1)))
    (call $print (call_indirect $tab (type $t) (i32.const 4)))
    (call $print (i32.add (i32.const 48) (table.size $tab)))
    (call $print (i32.add (i32.const 48) (ref.is_null (table.get $tab (i32.const 3)))))))
`)
	var out lockedBuffer
	p, done := startWith(t, EngineCompiler, wasm, nil, &out)
	time.Sleep(30 * time.Millisecond)
	enc, _ := freezeStop(t, p, done)
	img, _ := decodeImage(t, enc)
	if len(img.Tables) != 1 || len(img.Tables[0].Elems) != 5 {
		t.Fatalf("captured tables %+v, want one of 5 slots", img.Tables)
	}
	resumeImage(t, EngineInterpreter, wasm, enc, &out)
	if out.String() != "ABC51" {
		t.Fatalf("output %q, want ABC51", out.String())
	}
}

// A freeze that finds state it cannot capture (here a file open with no
// path left) fails with wasi.ErrUncapturable and costs the guest nothing:
// it rewinds and runs on, and a freeze once the file is closed lands.
func TestAsyncifyFreezeUncapturable(t *testing.T) {
	wasm := buildC(t, `#include <stdio.h>
#include <unistd.h>
int main(void) {
	FILE *f = fopen("/data/scratch", "w");
	if (!f || unlink("/data/scratch") != 0) { perror("scratch"); return 1; }
	unsigned long s = 1;
	for (int r = 0; r < 40; r++) {
		for (unsigned i = 0; i < 2000000; i++) s = s * 6364136223846793005UL + i;
		fprintf(f, "%lu\n", s);
		printf("held %d %lu\n", r, s);
		fflush(stdout);
	}
	fclose(f);
	printf("closed\n");
	fflush(stdout);
	for (int r = 0; r < 40; r++) {
		for (unsigned i = 0; i < 2000000; i++) s = s * 6364136223846793005UL + i;
		printf("free %d %lu\n", r, s);
	}
	return 0;
}
`)
	run := func(out *lockedBuffer) (*Process, chan error) {
		return startConfig(t, EngineAuto, wasm, wasi.Config{
			Args: []string{"guest"}, Stdout: out, Stderr: out,
			Preopens: []wasi.Preopen{{HostDir: t.TempDir(), GuestPath: "/data"}},
		})
	}
	var refOut lockedBuffer
	if _, done := run(&refOut); <-done != nil {
		t.Fatalf("uninterrupted run failed:\n%s", refOut.String())
	}
	ref := refOut.String()

	var out lockedBuffer
	p, done := run(&out)
	waitFor(t, &out, "held 0 ")
	refused := 0
	for ; !strings.Contains(out.String(), "held 30 "); refused++ {
		_, err := p.Freeze(context.Background(), 0)
		if !errors.Is(err, wasi.ErrUncapturable) {
			t.Fatalf("freeze with a removed file open: %v, want %v", err, wasi.ErrUncapturable)
		}
		time.Sleep(time.Millisecond)
	}
	waitFor(t, &out, "closed\n")
	enc, desc := freezeStop(t, p, done)
	if !strings.Contains(desc, "stack data") {
		t.Errorf("frozen %s, want with stack data", desc)
	}
	resumeImage(t, EngineInterpreter, wasm, enc, &out)
	if out.String() != ref {
		t.Fatalf("after %d refused freezes, output differs:\n%s\nwant:\n%s", refused, out.String(), ref)
	}
	t.Logf("%d freezes refused while the removed file was open; then frozen %s", refused, desc)
}
