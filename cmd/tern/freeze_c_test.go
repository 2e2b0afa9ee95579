package main

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/process"
)

// TestFreezeResumeC is the freeze/resume property test for modules that
// are not Go: C guests under testdata/freezec, built with clang for
// wasm32-wasi in the test and prepared for capture by tern (Asyncify).
// Each is run uninterrupted as the reference, then frozen at many random
// instants and resumed in a separate tern process each time, and frozen in
// a chain of consecutive freezes alternating the compiler and the
// interpreter. Every way of cutting the run into segments must add up to
// the reference: the same stdout byte for byte, the same stderr once tern's
// own "frozen" lines are removed, the same exit code and the same files
// left behind.
//
// The guests are chosen for what a prepared module keeps where tern cannot
// see it: a deep call stack (unwound into linear memory by Asyncify; the
// deepest one's stack data is larger than all of the program's memory, so
// tern must lend it pages beyond), a churning heap, output sitting in
// stdio's buffers, files open in a preopened directory, and input read
// from a pipe that delivers it slowly, so that freezes also land while
// the guest waits in fd_read or sleeps in poll_oneoff.
//
// The random instants' seed is logged; TERN_FREEZE_SEED repeats it.

// freezeCGuestsDir holds the C guests' sources.
const freezeCGuestsDir = "testdata/freezec"

// freezeCChain is how many freezes the chain of each C guest has.
const freezeCChain = 5

// deepRecDepth is the deep guest's recursion depth: its Asyncify stack
// data (56 bytes a frame, over 1 MiB) outgrows its memory (2 pages at the
// start, 8 at the end) for most of the run.
const deepRecDepth = 20000

func cFreezeGuests() []freezeGuest {
	input := freezeCStdin()
	deeprec := func(depth, rounds int) func(t *testing.T, ref freezeSegment) {
		return func(t *testing.T, ref freezeSegment) {
			wantRefLines(t, ref.stdout, rounds+1, fmt.Sprintf("\ndepth %d reached %d times, total ", depth, rounds),
				fmt.Sprintf("round %d: walk ", rounds-1))
			if n, want := strings.Count(ref.stdout, ": 0 non-zero bytes, filled, "), (rounds+3)/4; n != want {
				t.Errorf("reference run: %d pages grown found zeroed, want %d", n, want)
			}
			wantRefExit(t, ref, 0, "deeprec: done\n")
		}
	}
	return []freezeGuest{
		{
			name: "deeprec-1200", src: "deeprec.c", args: []string{"1200", "24"},
			check: deeprec(1200, 24),
		},
		{
			name: fmt.Sprintf("deeprec-%d", deepRecDepth), src: "deeprec.c", args: []string{strconv.Itoa(deepRecDepth), "24"},
			compilerOnly: true, lendsPages: true,
			check: deeprec(deepRecDepth, 24),
		},
		{
			name: "heap", src: "heap.c", args: []string{"30000"},
			check: func(t *testing.T, ref freezeSegment) {
				wantRefLines(t, ref.stdout, 31, "step 30000: ", "\ndone: 30000 steps, peak ")
				wantRefExit(t, ref, 0, "heap: done\n")
			},
		},
		{
			name: "stdio", src: "stdio.c", args: []string{"20000"},
			check: func(t *testing.T, ref freezeSegment) {
				wantRefLines(t, ref.stdout, 20000, "\n-- flushed by hand after line 20000\ntotal ", "\nputc 19998 ", "\n 20000 printf ")
				if len(ref.stdout) < 4*192<<10 {
					t.Errorf("reference stdout has %d bytes, want several times the guest's 192 KiB buffer", len(ref.stdout))
				}
				wantRefExit(t, ref, 0, "\nstdio: 20000 lines, 919243 bytes\nstdio: done\n")
			},
		},
		{
			name: "files", src: "files.c", args: []string{"/data", "500"}, dataDir: true,
			check: func(t *testing.T, ref freezeSegment) {
				wantRefLines(t, ref.stdout, 500, "\nstep 499: slot ", "\nls batch-11 (", "\nkept 167, removed 333, 12 batches\n")
				wantRefExit(t, ref, 0, "files: done\n")
				for _, w := range []string{"batch-10/", "batch-11/", "grid.bin", "input.done", "journal.log", "keep/", "keep/k-498.txt"} {
					if !slices.ContainsFunc(ref.tree, func(l string) bool { return strings.HasPrefix(l, w+" ") }) {
						t.Errorf("reference run left no %s: %q", w, ref.tree)
					}
				}
				for _, l := range ref.tree {
					if strings.HasPrefix(l, "tmp/") || strings.HasPrefix(l, "batch-9/") || strings.HasPrefix(l, "input.txt ") {
						t.Errorf("reference run left %s behind", l)
					}
				}
			},
		},
		{
			name: "stdin", src: "stdin.c", stdin: input, slowStdin: true,
			check: func(t *testing.T, ref freezeSegment) {
				header, rest, _ := bytes.Cut(input, []byte("\n"))
				lines := bytes.Count(rest, []byte("\n")) + 1 // the last has no newline
				words := len(strings.Fields(string(rest)))
				wantRefLines(t, ref.stdout, lines+2, fmt.Sprintf("header %q\n", header),
					fmt.Sprintf("\nlines %d words %d bytes %d longest ", lines, words, len(rest)))
				wantRefExit(t, ref, lines%7, "stdin: done\n")
			},
		},
	}
}

// freezeCStdin is the stdin guest's input: a header line, then the Go
// stdin guest's input (empty lines, UTF-8, one long line, no final
// newline).
func freezeCStdin() []byte {
	return append([]byte("freeze the C stdin guest\n"), freezeStdin()...)
}

// TestFreezeResumeC: per C guest, freezeTrials single freezes that
// landed (an instant after the guest's end is drawn again) and one chain
// of freezeCChain freezes across engines; subtests run two at a time.
func TestFreezeResumeC(t *testing.T) {
	if !process.CompilerSupported() {
		t.Skip("the property test measures durations on the compiler, which wazero lacks for this host")
	}
	if _, err := exec.LookPath("wasm-opt"); err != nil && os.Getenv("TERN_WASM_OPT") == "" {
		t.Fatalf("wasm-opt not found (%v): preparing C modules for capture needs binaryen (apt-get install -y binaryen)", err)
	}
	seed := freezeSeed(t)
	t.Logf("seed %d (TERN_FREEZE_SEED=%d repeats this run's random instants)", seed, seed)
	var cases []*freezeCase
	t.Cleanup(func() {
		// Runs after every parallel subtest: where the freezes landed.
		total, safepoint, blocked := 0, 0, map[string]int{}
		for _, fc := range cases {
			if fc.wasm == "" {
				continue // filtered out
			}
			t.Log(fc.summary())
			total += fc.freezes
			safepoint += fc.atSafepoint
			for call, n := range fc.blocked {
				blocked[call] += n
			}
		}
		t.Logf("all C guests: %d freezes: %d at a safepoint, waiting in WASI calls %v", total, safepoint, blocked)
	})
	for _, g := range cFreezeGuests() {
		fc := &freezeCase{name: g.name, guest: g, kind: "asyncify", safepoint: "at a safepoint", blocked: map[string]int{}}
		cases = append(cases, fc)
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			fc.testC(t, rand.New(rand.NewSource(subSeed(seed, t.Name()))))
		})
	}
}

// testC builds the C guest and prepares it, runs freezeCase.test with one
// chain across engines, and requires the images to hold what only a
// prepared module's do.
func (fc *freezeCase) testC(t *testing.T, r *rand.Rand) {
	g := fc.guest
	fc.wasm = buildWasiC(t, filepath.Join(freezeCGuestsDir, g.src))
	fc.guestPrefix = "prepared module (original " + fileSHA256(t, fc.wasm)[:12] + "), frozen "
	// The module 'tern prepare' makes is the one 'tern run --checkpoint'
	// runs and embeds in its images: both go through the shared cache.
	prepared := filepath.Join(t.TempDir(), "prepared.wasm")
	if res := runTern(t, "", nil, "prepare", "--cache-dir", cacheDirForTests(t), "-o", prepared, fc.wasm); res.code != 0 {
		t.Fatalf("tern prepare %s: exit %d\n%s", fc.wasm, res.code, res.stderr)
	}
	fc.moduleSum = fileSHA256(t, prepared)

	// The chain alternates compiler and interpreter (a guest too deep for
	// the interpreter stays on the compiler), ending on the compiler. The
	// interpreter gets no further in a window than the compiler would.
	engines := []process.Engine{process.EngineCompiler, process.EngineInterpreter}
	if g.compilerOnly {
		engines = engines[:1]
	}
	fc.test(t, r, []chainKind{{name: "chain", freezes: freezeCChain, engines: engines, move: true, windowDiv: freezeCChain + 2, attempts: 6}})

	fc.mu.Lock()
	defer fc.mu.Unlock()
	if g.lendsPages && fc.lent == 0 {
		t.Errorf("none of %d images holds more stack data than the program's memory (at most %d bytes)", fc.freezes, fc.maxStack)
	}
	if g.stdin != nil {
		if fc.atSafepoint == 0 {
			t.Errorf("none of %d images was frozen at a safepoint", fc.freezes)
		}
		// Which WASI call a random instant lands in depends on timing
		// (the guest sleeps between lines and waits for input); a freeze
		// in fd_read itself is tested deterministically by
		// internal/process's TestAsyncifyFreezeBlocked.
		if fc.blocked["fd_read"]+fc.blocked["poll_oneoff"] == 0 {
			t.Errorf("none of %d images was frozen waiting in a WASI call (%v)", fc.freezes, fc.blocked)
		}
	}
}
