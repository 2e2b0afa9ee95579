package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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

const (
	// freezeCTrials is how many single freezes each C guest must survive.
	freezeCTrials = 20
	// freezeCChain is how many freezes the chain of each C guest has.
	freezeCChain = 5
)

// A cFreezeGuest is one C guest of the property test and how to run it.
type cFreezeGuest struct {
	name    string // subtest name
	src     string // file under freezeCGuestsDir
	args    []string
	dataDir bool // preopen a fresh host directory as /data
	// stdin is the guest's whole input, fed through a pipe in chunks
	// with pauses (feedSlowly) so that the guest waits for it.
	stdin []byte
	// compilerOnly: the guest's stack is deeper than the interpreter's
	// call-frame limit (2000), so its chain stays on the compiler.
	compilerOnly bool
	// lendsPages: some image must hold more stack data than the
	// program's whole memory.
	lendsPages bool
	check      func(t *testing.T, ref freezeSegment)
}

// deepRecDepth is the deep guest's recursion depth: its Asyncify stack
// data (56 bytes a frame, over 1 MiB) outgrows its memory (2 pages at the
// start, 8 at the end) for most of the run.
const deepRecDepth = 20000

func cFreezeGuests() []cFreezeGuest {
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
	return []cFreezeGuest{
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
			name: "stdin", src: "stdin.c", stdin: input,
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

// The stdin guest's input arrives in chunks of slowStdinChunk bytes, a
// short pause after each and a long one after every slowStdinEvery-th,
// during which the guest has nothing to read.
const (
	slowStdinChunk = 1000
	slowStdinShort = 2 * time.Millisecond
	slowStdinLong  = 80 * time.Millisecond
	slowStdinEvery = 3
)

// feedSlowly writes data to w in paced chunks, then closes w. It stops
// early when stop closes or the reader is gone.
func feedSlowly(w io.WriteCloser, data []byte, stop <-chan struct{}) {
	defer w.Close()
	for i := 1; len(data) > 0; i++ {
		n := min(len(data), slowStdinChunk)
		if _, err := w.Write(data[:n]); err != nil {
			return // tern froze or ended: the rest goes to the next segment
		}
		data = data[n:]
		pause := slowStdinShort
		if i%slowStdinEvery == 0 {
			pause = slowStdinLong
		}
		select {
		case <-stop:
			return
		case <-time.After(pause):
		}
	}
}

// A cFreezeCase is one C guest with its modules and reference run.
type cFreezeCase struct {
	guest       cFreezeGuest
	wasm        string // the module as clang built it
	originalSum string // hex sha256 of wasm
	preparedSum string // hex sha256 of the module 'tern prepare' makes of it
	ref         freezeSegment
	dur         time.Duration // the prepared module's uninterrupted run, start to end of tern

	mu        sync.Mutex
	freezes   int
	safepoint int
	blocked   map[string]int // freezes waiting in a WASI call, by call
	lent      int            // images with more stack data than memory
	maxStack  int            // the most stack data in one image
	openFile  int            // images with a file open at a non-zero offset
	midInput  int            // images taken with the input partly read
}

// cStackData reads the size of the stack data from an Asyncify image's
// description.
var cStackData = regexp.MustCompile(`, (\d+) bytes of stack data$`)

// runSegment runs one tern process: 'tern run' of the module when image is
// "", else 'tern resume image'; with a checkpoint when s.after > 0.
func (fc *cFreezeCase) runSegment(t *testing.T, s freezeStep, image, dataDir, checkpoint string, stdin []byte) freezeSegment {
	t.Helper()
	cache := cacheDirForTests(t)
	var args []string
	if image == "" {
		args = []string{"run", "--engine", string(s.engine), "--cache-dir", cache}
		if fc.guest.dataDir {
			args = append(args, "--dir", dataDir+":/data")
		}
	} else {
		args = []string{"resume", "--engine", string(s.engine), "--cache-dir", cache}
		if fc.guest.dataDir && s.move {
			args = append(args, "--dir", dataDir+":/data")
		}
	}
	if s.after > 0 {
		args = append(args, "--checkpoint", checkpoint, "--freeze-after", s.after.String(), "--freeze-timeout", freezeTimeout.String())
	}
	if image == "" {
		args = append(append(args, "--", fc.wasm), fc.guest.args...)
	} else {
		args = append(args, image)
	}
	cmdline := "tern " + strings.Join(args, " ")

	cmd := exec.Command(ternBin, args...)
	cmd.Env = append(os.Environ(), "TERN_TEST=1")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	var feeder sync.WaitGroup
	stop := make(chan struct{})
	if fc.guest.stdin != nil {
		// A real pipe, written slowly: tern polls it, and the guest
		// waits in fd_read while it is empty.
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdin = pr
		if err := cmd.Start(); err != nil {
			pr.Close()
			pw.Close()
			t.Fatalf("%s: %v", cmdline, err)
		}
		pr.Close()
		feeder.Add(1)
		go func() {
			defer feeder.Done()
			feedSlowly(pw, stdin, stop)
		}()
	} else if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", cmdline, err)
	}
	err := cmd.Wait()
	close(stop)
	feeder.Wait()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", cmdline, err)
		}
		code = ee.ExitCode()
	}

	seg := freezeSegment{stdout: so.String(), stderr: se.String(), code: code}
	// tern's own line, if it froze, is the last of its stderr.
	if i := strings.LastIndex("\n"+seg.stderr, "\n"+frozenLine); i >= 0 {
		line := seg.stderr[i:]
		seg.stderr = seg.stderr[:i]
		seg.frozen = true
		if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
			t.Errorf("%s: the frozen line is not the last line of stderr:\n%s", cmdline, line)
		}
		if !strings.Contains(line, checkpoint) {
			t.Errorf("%s: the frozen line does not name the image: %s", cmdline, line)
		}
	}
	if i := strings.Index("\n"+seg.stderr, "\ntern:"); i >= 0 {
		// tern failed (a freeze that went wrong kills the process): no
		// point going on with this guest.
		complaint := strings.Split(seg.stderr[i:], "\n")
		if len(complaint) > 8 {
			complaint = append(complaint[:8], "...")
		}
		t.Fatalf("%s: exit %d, tern complained:\n%s\nstdout (last lines):\n%s", cmdline, seg.code, strings.Join(complaint, "\n"), guestLastLines(seg.stdout, 3))
	}
	_, statErr := os.Stat(checkpoint)
	switch {
	case s.after == 0:
		if seg.frozen {
			t.Fatalf("%s: froze without a checkpoint", cmdline)
		}
	case seg.frozen && statErr != nil:
		t.Fatalf("%s: said it froze, but the image is not there: %v", cmdline, statErr)
	case !seg.frozen && statErr == nil:
		t.Fatalf("%s: wrote an image without saying it froze; stderr:\n%s", cmdline, se.String())
	case seg.frozen && seg.code != 0:
		t.Fatalf("%s: froze, then exited %d", cmdline, seg.code)
	}
	if seg.frozen {
		seg.image = checkpoint
		seg.info, _ = inspectJSON(t, checkpoint)
		fc.noteImage(t, seg.info)
	}
	return seg
}

// noteImage checks what inspect says of an image of this case and counts
// where the guest was frozen.
func (fc *cFreezeCase) noteImage(t *testing.T, info inspectedImage) {
	t.Helper()
	if info.Kind != "asyncify" {
		t.Errorf("%s: kind %q, want asyncify", info.File, info.Kind)
	}
	if want := "prepared module (original " + fc.originalSum[:12] + "), frozen "; !strings.HasPrefix(info.Guest, want) {
		t.Errorf("%s: guest %q, want it to start %q", info.File, info.Guest, want)
	}
	if info.ModuleSHA256 != fc.preparedSum {
		t.Errorf("%s: module sha256 %s, want the prepared module's %s", info.File, info.ModuleSHA256, fc.preparedSum)
	}
	if info.StdinRead > uint64(len(fc.guest.stdin)) {
		t.Errorf("%s: stdin_bytes_read %d, but the input has %d bytes", info.File, info.StdinRead, len(fc.guest.stdin))
	}
	if want := append([]string{fc.wasm}, fc.guest.args...); !slices.Equal(info.Args, want) {
		t.Errorf("%s: args %q, want %q", info.File, info.Args, want)
	}
	stack := -1
	if m := cStackData.FindStringSubmatch(info.Guest); m != nil {
		stack, _ = strconv.Atoi(m[1])
	} else {
		t.Errorf("%s: guest %q does not say how much stack data it holds", info.File, info.Guest)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.freezes++
	fc.maxStack = max(fc.maxStack, stack)
	if stack > info.MemoryPages*64<<10 {
		fc.lent++
	}
	if slices.ContainsFunc(info.FDs, func(f inspectedFD) bool { return f.Kind == "file" && f.Offset > 0 }) {
		fc.openFile++
	}
	if info.StdinRead > 0 && info.StdinRead < uint64(len(fc.guest.stdin)) {
		fc.midInput++
	}
	switch {
	case strings.Contains(info.Guest, ", frozen at a safepoint"):
		fc.safepoint++
	case strings.Contains(info.Guest, ", frozen waiting in "):
		call, _, _ := strings.Cut(strings.SplitN(info.Guest, ", frozen waiting in ", 2)[1], " ")
		fc.blocked[call]++
	default:
		t.Errorf("%s: guest %q says neither where nor how it was frozen", info.File, info.Guest)
	}
}

// runChain runs the guest from its start through one segment per step,
// each resuming the image the one before froze into, with the input the
// guest had not yet consumed, until a segment ends without freezing. It
// returns the segments' sum and how many freezes there were.
func (fc *cFreezeCase) runChain(t *testing.T, steps []freezeStep) (freezeSegment, int) {
	t.Helper()
	dir := t.TempDir()
	var dataDir string
	if fc.guest.dataDir {
		dataDir = filepath.Join(dir, "data")
		if err := os.Mkdir(dataDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var sum freezeSegment
	var image string
	consumed, monotonic := uint64(0), uint64(0)
	freezes := 0
	for i, s := range steps {
		if dataDir != "" && s.move && i > 0 {
			moved := filepath.Join(dir, fmt.Sprintf("data-moved-%d", i))
			if err := os.Rename(dataDir, moved); err != nil {
				t.Fatal(err)
			}
			dataDir = moved
		}
		checkpoint := filepath.Join(dir, fmt.Sprintf("image-%d", i))
		seg := fc.runSegment(t, s, image, dataDir, checkpoint, fc.guest.stdin[consumed:])
		sum.stdout += seg.stdout
		sum.stderr += seg.stderr
		sum.code = seg.code
		note := fmt.Sprintf("segment %d (%v, stdin from byte %d): %d bytes of stdout", i, s, consumed, len(seg.stdout))
		if n := strings.LastIndex(strings.TrimSuffix(seg.stdout, "\n"), "\n"); len(seg.stdout) > 0 {
			note += fmt.Sprintf(" ending %q", seg.stdout[n+1:])
		}
		if !seg.frozen {
			sum.log = append(sum.log, note+fmt.Sprintf(", exit %d", seg.code))
			break
		}
		sum.log = append(sum.log, note+fmt.Sprintf(", frozen: %s; stdin read %d", seg.info.Guest, seg.info.StdinRead))
		if i == len(steps)-1 {
			t.Fatalf("the last step of a chain must run to the end, not freeze")
		}
		freezes++
		if seg.info.StdinRead < consumed {
			t.Errorf("%s: stdin_bytes_read went back from %d to %d", seg.image, consumed, seg.info.StdinRead)
		} else {
			consumed = seg.info.StdinRead
		}
		if seg.info.MonotonicNS <= monotonic {
			t.Errorf("%s: monotonic clock %v, not after the previous image's %v", seg.image, seg.info.MonotonicNS, monotonic)
		}
		monotonic = seg.info.MonotonicNS
		image = seg.image
	}
	if fc.guest.dataDir {
		sum.tree = dirTree(t, dataDir, true)
	}
	return sum, freezes
}

// compare requires a run cut into segments to add up to the reference.
func (fc *cFreezeCase) compare(t *testing.T, what string, got freezeSegment) bool {
	t.Helper()
	ok := true
	if got.code != fc.ref.code {
		t.Errorf("%s: exit %d, uninterrupted %d", what, got.code, fc.ref.code)
		ok = false
	}
	if got.stdout != fc.ref.stdout {
		t.Errorf("%s: stdout differs from the uninterrupted run's (- uninterrupted, + segments):\n%s",
			what, freezeDiff(strings.Split(fc.ref.stdout, "\n"), strings.Split(got.stdout, "\n")))
		ok = false
	}
	if got.stderr != fc.ref.stderr {
		t.Errorf("%s: stderr differs from the uninterrupted run's (- uninterrupted, + segments):\n%s",
			what, freezeDiff(strings.Split(fc.ref.stderr, "\n"), strings.Split(got.stderr, "\n")))
		ok = false
	}
	if d := freezeDiff(fc.ref.tree, got.tree); d != "" {
		t.Errorf("%s: the directory left behind differs from the uninterrupted run's (- uninterrupted, + segments):\n%s", what, d)
		ok = false
	}
	if !ok {
		t.Logf("%s, segment by segment:\n%s", what, strings.Join(got.log, "\n"))
	}
	return ok
}

// TestFreezeResumeC: per C guest, freezeCTrials single freezes that
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
	var cases []*cFreezeCase
	t.Cleanup(func() {
		// Runs after every parallel subtest: where the freezes landed.
		total, safepoint, blocked := 0, 0, map[string]int{}
		for _, fc := range cases {
			if fc.wasm == "" {
				continue // filtered out
			}
			t.Logf("%s: %d freezes: %d at a safepoint, waiting in WASI calls %v; %d with more stack data than memory (at most %d bytes); %d with a file open, %d with input partly read; uninterrupted run %v",
				fc.guest.name, fc.freezes, fc.safepoint, fc.blocked, fc.lent, fc.maxStack, fc.openFile, fc.midInput, fc.dur.Round(time.Millisecond))
			total += fc.freezes
			safepoint += fc.safepoint
			for call, n := range fc.blocked {
				blocked[call] += n
			}
		}
		t.Logf("all C guests: %d freezes: %d at a safepoint, waiting in WASI calls %v", total, safepoint, blocked)
	})
	for _, g := range cFreezeGuests() {
		fc := &cFreezeCase{guest: g, blocked: map[string]int{}}
		cases = append(cases, fc)
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			fc.test(t, rand.New(rand.NewSource(subSeed(seed, t.Name()))))
		})
	}
}

func (fc *cFreezeCase) test(t *testing.T, r *rand.Rand) {
	g := fc.guest
	fc.wasm = buildWasiC(t, filepath.Join(freezeCGuestsDir, g.src))
	b, err := os.ReadFile(fc.wasm)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	fc.originalSum = hex.EncodeToString(sum[:])
	compiler, interpreter := process.EngineCompiler, process.EngineInterpreter

	// The module 'tern prepare' makes is the one 'tern run --checkpoint'
	// runs and embeds in its images: both go through the shared cache.
	prepared := filepath.Join(t.TempDir(), "prepared.wasm")
	if res := runTern(t, "", nil, "prepare", "--cache-dir", cacheDirForTests(t), "-o", prepared, fc.wasm); res.code != 0 {
		t.Fatalf("tern prepare %s: exit %d\n%s", fc.wasm, res.code, res.stderr)
	}
	if b, err = os.ReadFile(prepared); err != nil {
		t.Fatal(err)
	}
	sum = sha256.Sum256(b)
	fc.preparedSum = hex.EncodeToString(sum[:])

	// The reference: the module as built, uninterrupted, under tern. A
	// run of the prepared module with a checkpoint but never frozen must
	// agree with it, or nothing below would mean anything.
	plain, _ := fc.runChain(t, []freezeStep{{engine: compiler}})
	g.check(t, plain)
	if t.Failed() {
		t.Fatalf("the uninterrupted run is not what the guest is known to print: the guest or tern is broken\nstdout (last lines):\n%s\nstderr (last lines):\n%s",
			guestLastLines(plain.stdout, 10), guestLastLines(plain.stderr, 10))
	}
	fc.ref = plain
	start := time.Now()
	never, freezes := fc.runChain(t, []freezeStep{{engine: compiler, after: time.Hour}, {engine: compiler}})
	fc.dur = time.Since(start)
	if freezes != 0 {
		t.Fatalf("froze %d times with --freeze-after 1h", freezes)
	}
	if !fc.compare(t, "a run prepared for capture, never frozen", never) {
		t.FailNow()
	}
	t.Logf("uninterrupted: %v, %d lines of stdout, exit %d", fc.dur.Round(time.Millisecond), strings.Count(fc.ref.stdout, "\n"), fc.ref.code)

	// Single freezes at random instants, each resumed by another process.
	window := fc.dur
	trials := 0
	for attempt := 0; trials < freezeCTrials; attempt++ {
		if attempt == 4*freezeCTrials {
			t.Fatalf("only %d of %d attempts froze the guest before it ended (last window %v)", trials, attempt, window)
		}
		after := randomBetween(r, window)
		// Every other resume finds the files guest's directory moved.
		got, n := fc.runChain(t, []freezeStep{{engine: compiler, after: after}, {engine: compiler, move: trials%2 == 1}})
		if n == 0 {
			// The guest ended first: that run must still be right, but it
			// does not count. Draw again, below this instant.
			fc.compare(t, fmt.Sprintf("run with --freeze-after %v that ended first", after), got)
			window = after
			continue
		}
		trials++
		if !fc.compare(t, fmt.Sprintf("frozen after %v, resumed", after), got) {
			t.FailNow()
		}
	}

	// A chain of consecutive freezes, each segment resumed by the next
	// process, alternating compiler and interpreter (a guest too deep for
	// the interpreter stays on the compiler), ending on the compiler. The
	// interpreter gets no further in a window than the compiler would.
	chainWindow := fc.dur / (freezeCChain + 2)
	for attempt := 0; ; attempt++ {
		if attempt == 6 {
			t.Fatalf("no chain of %d freezes in %d attempts (window %v)", freezeCChain, attempt, chainWindow)
		}
		steps := make([]freezeStep, freezeCChain+1)
		for i := range steps[:freezeCChain] {
			if i%2 == 1 && !g.compilerOnly {
				steps[i] = freezeStep{engine: interpreter, after: randomBetween(r, min(chainWindow, interpreterWindow)), move: true}
			} else {
				steps[i] = freezeStep{engine: compiler, after: randomBetween(r, chainWindow)}
			}
		}
		steps[freezeCChain] = freezeStep{engine: compiler, move: true}
		got, n := fc.runChain(t, steps)
		if !fc.compare(t, fmt.Sprintf("chain %v", steps), got) {
			t.FailNow()
		}
		if n == freezeCChain {
			t.Logf("chain of %d freezes: %v", n, steps)
			break
		}
		chainWindow = chainWindow * 2 / 3
	}

	// The freezes must have caught the guest in the states it was
	// written to be caught in.
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if g.lendsPages && fc.lent == 0 {
		t.Errorf("none of %d images holds more stack data than the program's memory (at most %d bytes)", fc.freezes, fc.maxStack)
	}
	if g.dataDir && fc.openFile == 0 {
		t.Errorf("none of %d images has a file open at a non-zero offset", fc.freezes)
	}
	if g.stdin != nil {
		if fc.midInput == 0 {
			t.Errorf("none of %d images was taken with the input partly read", fc.freezes)
		}
		if fc.safepoint == 0 {
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
