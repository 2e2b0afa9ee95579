package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	imagepkg "github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/process"
)

// The freeze/resume tests, end to end through the tern binary.
//
// TestFreezeResume is the property test. Each Go guest under
// testdata/freeze is built in the test, by the oldest Go release tern
// supports and by the installed one, run uninterrupted as the reference,
// then frozen at many random instants and resumed in a separate tern
// process each time: alone, in chains, and in chains alternating engines.
// Every way of cutting the run into segments must add up to the
// reference: the same stdout byte for byte, the same stderr once tern's
// own "frozen" lines are removed, the same exit code and the same files
// left behind.
//
// TestStdlibFreeze freezes standard-library test binaries mid-run;
// TestFreezeOnSignal freezes on SIGINT and SIGTERM; TestFreezeBadInput
// feeds run, resume and inspect what they must refuse; TestInspect reads a
// real image back.

// freezeGuestsDir holds the guests' sources, one module each.
const freezeGuestsDir = "testdata/freeze"

// frozenLine starts the line tern prints on stderr when it froze a process.
const frozenLine = "tern: frozen ("

const (
	// freezeTrials is how many single freezes each guest must survive.
	freezeTrials = 20
	// freezeChain is how many freezes the long chain of each guest has.
	freezeChain = 5
	// freezeEngineChain: freezes in the chain that alternates engines.
	freezeEngineChain = 4
	// interpreterWindow bounds --freeze-after under the interpreter, which
	// runs these guests 50 to 150 times slower than the compiler.
	interpreterWindow = 400 * time.Millisecond
	// freezeTimeout bounds the wait for a safe point. A loop that calls no
	// function cannot be preempted (in wasm no more than by Go's own
	// scheduler), so a freeze waits for it to end: milliseconds on the
	// compiler, seconds on the interpreter, and more on a loaded machine.
	// tern's default (10s) gives up and runs on, and the test's freeze
	// would not happen.
	freezeTimeout = 5 * time.Minute
)

// A goToolchain is a Go release the guests are built by.
type goToolchain struct {
	name    string // subtest name: "go1.26"
	env     string // its GOTOOLCHAIN setting
	version string // the exact version images must report, e.g. "go1.21.13"
}

// go121 is the oldest Go release tern captures (goguest.MinVersion).
const go121 = "go1.21.13"

// installedGo is the Go toolchain on PATH, which the tests run with.
var installedGo = sync.OnceValues(func() (goToolchain, error) {
	cmd := exec.Command("go", "env", "GOVERSION")
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	out, err := cmd.Output()
	if err != nil {
		return goToolchain{}, fmt.Errorf("go env GOVERSION: %v", err)
	}
	v := strings.TrimSpace(string(out))
	m := regexp.MustCompile(`^go1\.\d+`).FindString(v)
	if m == "" {
		return goToolchain{}, fmt.Errorf("go env GOVERSION: %q is not a release", v)
	}
	return goToolchain{name: m, env: "local", version: v}, nil
})

// freezeToolchains are the releases the property test builds guests with:
// the oldest tern supports and the installed one.
func freezeToolchains(t *testing.T) []goToolchain {
	t.Helper()
	local, err := installedGo()
	if err != nil {
		t.Fatal(err)
	}
	return []goToolchain{local, {name: "go1.21", env: go121, version: go121}}
}

// noNetwork matches what the go command says when it cannot reach the
// module proxy at all, as opposed to any other failure to get a toolchain.
var noNetwork = regexp.MustCompile(`(?i)dial tcp|no such host|network is unreachable|connection refused|i/o timeout|` +
	`TLS handshake timeout|temporary failure in name resolution|no route to host|server misbehaving|connection reset`)

// toolchainChecks remembers, per GOTOOLCHAIN value, whether it could be had.
var toolchainChecks sync.Map // string -> func() (skip string, err error)

// requireToolchain makes sure tc can build: the go command downloads a
// toolchain other than the installed one through the module proxy the
// first time. Without a network that is a skip; any other failure fails.
func requireToolchain(t *testing.T, tc goToolchain) {
	t.Helper()
	f, _ := toolchainChecks.LoadOrStore(tc.env, sync.OnceValues(func() (string, error) {
		cmd := exec.Command("go", "env", "GOVERSION")
		cmd.Dir = filepath.Join(freezeGuestsDir, "timers")
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+tc.env, "GOWORK=off")
		out, err := cmd.CombinedOutput()
		got := strings.TrimSpace(string(out))
		switch {
		case err != nil && noNetwork.MatchString(got):
			return fmt.Sprintf("Go toolchain %s is not installed and cannot be downloaded: no network (%v: %s)", tc.version, err, got), nil
		case err != nil:
			return "", fmt.Errorf("GOTOOLCHAIN=%s go env GOVERSION: %v\n%s", tc.env, err, got)
		case got != tc.version:
			return "", fmt.Errorf("GOTOOLCHAIN=%s go env GOVERSION says %q, want %q", tc.env, got, tc.version)
		}
		return "", nil
	}))
	skip, err := f.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	if skip != "" {
		t.Skip(skip)
	}
}

// builtGuests caches the guests built in this run of the tests. They live
// beside the tern binary, which TestMain removes at the end.
var builtGuests sync.Map // key -> func() (string, error)

// buildOncePerRun runs build at most once per key in this test run and returns
// the file it produced.
func buildOncePerRun(t *testing.T, key string, build func(out string) error) string {
	t.Helper()
	f, _ := builtGuests.LoadOrStore(key, sync.OnceValues(func() (string, error) {
		dir := filepath.Join(filepath.Dir(ternBin), "freeze-guests")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		out := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(key)+".wasm")
		return out, build(out)
	}))
	out, err := f.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// buildFreezeGuest builds testdata/freeze/NAME with tc for wasip1.
func buildFreezeGuest(t *testing.T, tc goToolchain, name string) string {
	t.Helper()
	requireToolchain(t, tc)
	return buildOncePerRun(t, tc.version+"/"+name, func(out string) error {
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
		cmd.Dir = filepath.Join(freezeGuestsDir, name)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK=off", "CGO_ENABLED=0", "GOTOOLCHAIN="+tc.env)
		if o, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("GOTOOLCHAIN=%s go build %s: %v\n%s", tc.env, name, err, o)
		}
		return nil
	})
}

// inspectedImage is the part of 'tern inspect -o json' the tests read.
type inspectedImage struct {
	File         string    `json:"file"`
	FileSize     int       `json:"file_size"`
	Version      int       `json:"format_version"`
	Kind         string    `json:"kind"`
	Guest        string    `json:"guest"`
	Created      time.Time `json:"created"`
	Producer     string    `json:"producer"`
	ModuleSHA256 string    `json:"module_sha256"`
	ModuleSize   int       `json:"module_size"`
	MemoryPages  int       `json:"memory_pages"`
	ZeroPages    int       `json:"zero_pages"`
	StoredBytes  int       `json:"memory_stored_bytes"`
	Args         []string  `json:"args"`
	Env          []string  `json:"env"`
	Preopens     []struct {
		HostDir, GuestPath string
	} `json:"preopens"`
	FDs         []inspectedFD `json:"fds"`
	MonotonicNS uint64        `json:"monotonic_ns"`
	StdinRead   uint64        `json:"stdin_bytes_read"`
}

// inspectedFD is one open descriptor in an inspected image.
type inspectedFD struct {
	FD     int    `json:"fd"`
	Kind   string `json:"kind"`
	Path   string `json:"path"`
	Offset int64  `json:"offset"`
}

// inspectJSON runs 'tern inspect -o json' on an image.
func inspectJSON(t *testing.T, img string) (inspectedImage, map[string]any) {
	t.Helper()
	r := runTern(t, "", nil, "inspect", "-o", "json", img)
	if r.code != 0 {
		t.Fatalf("tern inspect -o json %s: exit %d\n%s", img, r.code, r.stderr)
	}
	var info inspectedImage
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatalf("tern inspect -o json %s: %v\n%s", img, err, r.stdout)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatal(err)
	}
	return info, raw
}

// A freezeGuest is one guest program of a property test and how to run it.
type freezeGuest struct {
	name string
	// src is a C guest's source file under freezeCGuestsDir; a Go guest
	// is the module freezeGuestsDir/NAME.
	src string
	// args are the guest's arguments after the module.
	args []string
	// dataDir: run with a fresh host directory preopened as /data.
	dataDir bool
	// stdin is the guest's whole input.
	stdin []byte
	// slowStdin: feed stdin through a pipe in paced chunks (slowReader),
	// so that the guest waits for it.
	slowStdin bool
	// compilerOnly: the guest's stack is deeper than the interpreter's
	// call-frame limit (2000), so its chain stays on the compiler.
	compilerOnly bool
	// lendsPages: some image must hold more stack data than the
	// program's whole memory (Asyncify images only).
	lendsPages bool
	// check holds the reference run to facts known without running it,
	// so that the comparisons cannot pass on identical wrong runs.
	check func(t *testing.T, ref freezeSegment)
}

func freezeGuests() []freezeGuest {
	input := freezeStdin()
	return []freezeGuest{
		{
			name: "timers",
			check: func(t *testing.T, ref freezeSegment) {
				wantRefLines(t, ref.stdout, 400, "round 39: 3 ticks\n", "round 0: near timer first\n",
					"round 17: timed out, released 1017\n", "round 39: stopped timer (active true) silent, reset timer fired\n", "\ntotal ")
				wantRefExit(t, ref, 0, "timers: done\n")
			},
		},
		{
			name: "gcheavy",
			check: func(t *testing.T, ref freezeSegment) {
				wantRefLines(t, ref.stdout, 250, "iter 239: gc\n", "finalizers run: 200 of 200\n", "\ntotal ")
				wantRefExit(t, ref, 3, "gcheavy: done, exiting 3\n")
			},
		},
		{
			name:    "files",
			args:    []string{"/data"},
			dataDir: true,
			check: func(t *testing.T, ref freezeSegment) {
				wantRefLines(t, ref.stdout, 300, "step 149: grid@513 <0149>\n", "removed 24 files: ", "\njournal: ", "\nold.txt ")
				wantRefExit(t, ref, 0, "files: done\n")
				want := []string{"appended.txt", "archive/", "archive/batch-6/", "archive/batch-7/", "grid.bin", "journal.log", "old.txt"}
				for _, w := range want {
					if !slices.ContainsFunc(ref.tree, func(l string) bool { return strings.HasPrefix(l, w+" ") }) {
						t.Errorf("reference run left no %s: %q", w, ref.tree)
					}
				}
			},
		},
		{
			name:  "stdin",
			stdin: input,
			check: func(t *testing.T, ref freezeSegment) {
				lines := bytes.Count(input, []byte("\n")) + 1 // the last has no newline
				words := len(strings.Fields(string(input)))
				wantRefLines(t, ref.stdout, 400, fmt.Sprintf("\nlines %d words %d bytes %d\n", lines, words, len(input)+1))
				wantRefExit(t, ref, lines%7, "stdin: done\n")
			},
		},
	}
}

// freezeStdin is the stdin guest's input: several times the guest's
// 256-byte scanner buffer, so it reads in many pieces; empty lines, UTF-8,
// one line long enough to make the scanner grow its buffer, and no final
// newline.
func freezeStdin() []byte {
	var b bytes.Buffer
	words := []string{"wasm", "tern", "freeze", "thaw", "device", "clock", "pipe", "ÿ", "日本"}
	for i := 0; i < 450; i++ {
		if i%53 == 0 {
			b.WriteString("\n")
			continue
		}
		fmt.Fprintf(&b, "line %d:", i)
		for j := 0; j < i%11; j++ {
			b.WriteString(" " + words[(i*7+j)%len(words)])
		}
		if i == 200 {
			b.WriteString(strings.Repeat("long", 1500))
		}
		b.WriteString("\n")
	}
	b.WriteString("last line without a newline")
	return b.Bytes()
}

// A slowReader gives its data in chunks of slowStdinChunk bytes, with a
// short pause after each and a long one after every slowStdinEvery-th,
// during which a guest reading it through a pipe has nothing to read.
type slowReader struct {
	data   []byte
	chunks int // given so far
}

const (
	slowStdinChunk = 1000
	slowStdinShort = 2 * time.Millisecond
	slowStdinLong  = 80 * time.Millisecond
	slowStdinEvery = 3
)

func (r *slowReader) Read(p []byte) (int, error) {
	if r.chunks > 0 {
		pause := slowStdinShort
		if r.chunks%slowStdinEvery == 0 {
			pause = slowStdinLong
		}
		time.Sleep(pause)
	}
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data[:min(len(r.data), slowStdinChunk)])
	r.data = r.data[n:]
	r.chunks++
	return n, nil
}

func wantRefLines(t *testing.T, out string, min int, substrings ...string) {
	t.Helper()
	if n := strings.Count(out, "\n"); n < min {
		t.Errorf("reference stdout has %d lines, want at least %d", n, min)
	}
	for _, s := range substrings {
		if !strings.Contains(out, s) {
			t.Errorf("reference stdout lacks %q", s)
		}
	}
}

func wantRefExit(t *testing.T, ref freezeSegment, code int, stderrSuffix string) {
	t.Helper()
	if ref.code != code {
		t.Errorf("reference run exited %d, want %d", ref.code, code)
	}
	if !strings.HasSuffix(ref.stderr, stderrSuffix) {
		t.Errorf("reference stderr does not end with %q:\n%s", stderrSuffix, ref.stderr)
	}
}

// A freezeSegment is one tern process's share of a guest's run, or (as a
// reference or the sum of a chain) a whole run.
type freezeSegment struct {
	stdout string
	stderr string // tern's frozen line removed
	code   int
	tree   []string // the data directory afterwards (whole runs only)
	log    []string // what each segment of a chain did
	frozen bool     // the segment ended in a freeze, into image
	image  string
	info   inspectedImage // what inspect says of image
}

// A freezeStep is how to run one segment: which engine, and when to freeze
// (after 0: not at all, run to the end).
type freezeStep struct {
	engine process.Engine
	after  time.Duration
	// move: before resuming, move the guest's data directory elsewhere on
	// the host and tell resume with --dir.
	move bool
}

// A freezeCase is one guest module with its reference run, and what the
// images of its freezes showed.
type freezeCase struct {
	name  string // in the test's summary: go1.N/GUEST, or the C guest's
	guest freezeGuest
	wasm  string // the module 'tern run' is given
	// What inspect must say of every image: its kind, how its guest
	// description starts, the sha256 of the module it embeds, and how it
	// says the guest was frozen outside any WASI call.
	kind, guestPrefix, moduleSum, safepoint string

	ref freezeSegment
	dur time.Duration // how long the run prepared for capture, never frozen, took: start to end of tern

	mu          sync.Mutex
	freezes     int
	atSafepoint int            // images frozen outside any WASI call
	blocked     map[string]int // images frozen waiting in a WASI call, by call
	openFile    int            // images with a file open at a non-zero offset
	midInput    int            // images taken with the input partly read
	lent        int            // Asyncify images with more stack data than memory
	maxStack    int            // the most stack data in one Asyncify image
	done        bool           // test ran to its end
}

// asyncifyStackData reads the size of the stack data from an Asyncify
// image's description.
var asyncifyStackData = regexp.MustCompile(`, (\d+) bytes of stack data$`)

// runSegment runs one tern process: 'tern run' of the module when image is
// "", else 'tern resume image'; with a checkpoint when s.after > 0.
func (fc *freezeCase) runSegment(t *testing.T, s freezeStep, image, dataDir, checkpoint string, stdin []byte) freezeSegment {
	t.Helper()
	var args []string
	if image == "" {
		args = []string{"run", "--engine", string(s.engine), "--cache-dir", cacheDirForTests(t)}
		if fc.guest.dataDir {
			args = append(args, "--dir", dataDir+":/data")
		}
	} else {
		args = []string{"resume", "--engine", string(s.engine), "--cache-dir", cacheDirForTests(t)}
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
	var in io.Reader = bytes.NewReader(stdin)
	if fc.guest.slowStdin {
		in = &slowReader{data: stdin}
	}
	r := runCommandReading(t, "", in, append([]string{ternBin}, args...))
	seg := freezeSegment{stdout: r.stdout, stderr: r.stderr, code: r.code}
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
	if i := strings.Index(seg.stderr, "tern:"); i >= 0 {
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
		t.Fatalf("%s: wrote an image without saying it froze; stderr:\n%s", cmdline, r.stderr)
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
func (fc *freezeCase) noteImage(t *testing.T, info inspectedImage) {
	t.Helper()
	if info.Kind != fc.kind {
		t.Errorf("%s: kind %q, want %s", info.File, info.Kind, fc.kind)
	}
	if !strings.HasPrefix(info.Guest, fc.guestPrefix) {
		t.Errorf("%s: guest %q, want it to start %q", info.File, info.Guest, fc.guestPrefix)
	}
	if info.ModuleSHA256 != fc.moduleSum {
		t.Errorf("%s: module sha256 %s, want %s", info.File, info.ModuleSHA256, fc.moduleSum)
	}
	if info.StdinRead > uint64(len(fc.guest.stdin)) {
		t.Errorf("%s: stdin_bytes_read %d, but the input has %d bytes", info.File, info.StdinRead, len(fc.guest.stdin))
	}
	if want := append([]string{fc.wasm}, fc.guest.args...); !slices.Equal(info.Args, want) {
		t.Errorf("%s: args %q, want %q", info.File, info.Args, want)
	}
	stack := -1
	if fc.kind == "asyncify" {
		if m := asyncifyStackData.FindStringSubmatch(info.Guest); m != nil {
			stack, _ = strconv.Atoi(m[1])
		} else {
			t.Errorf("%s: guest %q does not say how much stack data it holds", info.File, info.Guest)
		}
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
	case strings.Contains(info.Guest, ", frozen "+fc.safepoint):
		fc.atSafepoint++
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
func (fc *freezeCase) runChain(t *testing.T, steps []freezeStep) (freezeSegment, int) {
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
		// The guest's monotonic clock goes on from image to image.
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
func (fc *freezeCase) compare(t *testing.T, what string, got freezeSegment) bool {
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

// freezeDiff is firstDiff between an uninterrupted run and its segments.
func freezeDiff(a, b []string) string { return firstDiff(a, b, "uninterrupted", "in segments") }

// randomBetween draws a duration in (0, max), to the microsecond.
func randomBetween(r *rand.Rand, max time.Duration) time.Duration {
	us := int64(max / time.Microsecond)
	if us < 2 {
		return time.Microsecond
	}
	return time.Duration(1+r.Int63n(us-1)) * time.Microsecond
}

// freezeSeed is the seed of the test's random instants: TERN_FREEZE_SEED
// repeats a run.
func freezeSeed(t *testing.T) int64 {
	t.Helper()
	if s := os.Getenv("TERN_FREEZE_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("TERN_FREEZE_SEED=%q: %v", s, err)
		}
		return v
	}
	return time.Now().UnixNano()
}

// subSeed derives an independent seed for one subtest, so that parallel
// subtests draw from their own sources whatever order they run in.
func subSeed(seed int64, name string) int64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", seed, name)
	return int64(h.Sum64() >> 1)
}

// summary says where the freezes of this case landed.
func (fc *freezeCase) summary() string {
	s := fmt.Sprintf("%s: %d freezes: %d %s, waiting in WASI calls %v; ", fc.name, fc.freezes, fc.atSafepoint, fc.safepoint, fc.blocked)
	if fc.kind == "asyncify" {
		s += fmt.Sprintf("%d with more stack data than memory (at most %d bytes); ", fc.lent, fc.maxStack)
	}
	return s + fmt.Sprintf("%d with a file open, %d with input partly read; uninterrupted run %v", fc.openFile, fc.midInput, fc.dur.Round(time.Millisecond))
}

// A chainKind is a chain of freezes a guest must survive, each segment
// resumed by the next process.
type chainKind struct {
	name    string // in messages: "chain", "chain across engines"
	freezes int
	// engines run the segments in turn; the last segment, which runs to
	// the end, runs on the first.
	engines []process.Engine
	// move: every other resume, and the last, find the data directory
	// moved.
	move bool
	// The instants are drawn below the uninterrupted duration / windowDiv,
	// a window that shrinks after each chain that ended before its last
	// freeze, for at most attempts chains.
	windowDiv, attempts int
}

// runChains runs chains of kind c until one has all its freezes. Each
// must add up to the reference.
func (fc *freezeCase) runChains(t *testing.T, r *rand.Rand, c chainKind) {
	t.Helper()
	window := fc.dur / time.Duration(c.windowDiv)
	for attempt := 0; ; attempt++ {
		if attempt == c.attempts {
			t.Fatalf("no %s of %d freezes in %d attempts (window %v)", c.name, c.freezes, attempt, window)
		}
		steps := make([]freezeStep, c.freezes+1)
		for i := range steps[:c.freezes] {
			engine, w := c.engines[i%len(c.engines)], window
			if engine == process.EngineInterpreter {
				w = min(w, interpreterWindow)
			}
			steps[i] = freezeStep{engine: engine, after: randomBetween(r, w), move: c.move && i%2 == 1}
		}
		steps[c.freezes] = freezeStep{engine: c.engines[0], move: c.move}
		got, n := fc.runChain(t, steps)
		if !fc.compare(t, fmt.Sprintf("%s %v", c.name, steps), got) {
			t.FailNow()
		}
		if n == c.freezes {
			t.Logf("%s of %d freezes: %v", c.name, n, steps)
			return
		}
		window = window * 2 / 3
	}
}

// goFreezeChains are the chains every Go guest must survive.
var goFreezeChains = []chainKind{
	{name: "chain", freezes: freezeChain, engines: []process.Engine{process.EngineCompiler}, move: true, windowDiv: 8, attempts: 10},
	// The interpreter is never faster than the compiler, so no segment
	// gets further than a window of the uninterrupted duration would on
	// the compiler; a guest that mostly waits (files) is hardly slower
	// interpreted.
	{name: "chain across engines", freezes: freezeEngineChain, engines: []process.Engine{process.EngineCompiler, process.EngineInterpreter},
		windowDiv: freezeEngineChain + 2, attempts: 5},
}

// TestFreezeResume is the freeze/resume property test: for each Go guest,
// built by the oldest and the newest Go release tern supports, freezing
// at random instants and resuming in another process, alone, in chains,
// across engines, and with the guest's directory moved on the host, is
// indistinguishable from never having frozen.
//
// Per guest and release: freezeTrials single freezes that landed (an
// instant after the guest's end is drawn again), and the goFreezeChains.
// Subtests are go1.N/GUEST; the random instants' seed is logged, and
// TERN_FREEZE_SEED repeats it.
func TestFreezeResume(t *testing.T) {
	if !process.CompilerSupported() {
		t.Skip("the property test measures durations on the compiler, which wazero lacks for this host")
	}
	seed := freezeSeed(t)
	t.Logf("seed %d (TERN_FREEZE_SEED=%d repeats this run's random instants)", seed, seed)
	var (
		mu    sync.Mutex
		cases []*freezeCase
	)
	t.Cleanup(func() {
		// Runs after every parallel subtest: a summary of where freezes landed.
		for _, fc := range cases {
			if fc.wasm == "" {
				continue // filtered out, or skipped
			}
			t.Log(fc.summary())
		}
	})
	for _, tc := range freezeToolchains(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			requireToolchain(t, tc)
			// Both capture paths must be exercised: a freeze inside a
			// blocking WASI call and one at the scheduler loop, by the
			// guests made to have both (timers and stdin).
			var guestCases []*freezeCase
			t.Cleanup(func() {
				for _, fc := range guestCases {
					if fc.guest.name != "timers" && fc.guest.name != "stdin" || !fc.done {
						continue
					}
					if fc.atSafepoint == 0 {
						t.Errorf("%s: none of %d images was frozen at the scheduler loop", fc.guest.name, fc.freezes)
					}
					if len(fc.blocked) == 0 {
						t.Errorf("%s: none of %d images was frozen waiting in a WASI call", fc.guest.name, fc.freezes)
					}
				}
			})
			for _, g := range freezeGuests() {
				fc := &freezeCase{name: tc.name + "/" + g.name, guest: g, kind: "go", guestPrefix: "Go " + tc.version + ",",
					safepoint: "at the scheduler loop", blocked: map[string]int{}}
				mu.Lock()
				cases = append(cases, fc)
				mu.Unlock()
				guestCases = append(guestCases, fc)
				t.Run(g.name, func(t *testing.T) {
					t.Parallel()
					fc.wasm = buildFreezeGuest(t, tc, g.name)
					fc.moduleSum = fileSHA256(t, fc.wasm)
					fc.test(t, rand.New(rand.NewSource(subSeed(seed, t.Name()))), goFreezeChains)
				})
			}
		})
	}
}

// fileSHA256 is the hex sha256 of a file's contents.
func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// test runs the guest uninterrupted for the reference, then freezes it at
// random instants: freezeTrials times once, and in chains of each kind.
// Every run must add up to the reference, and the images must have caught
// the guest in the states it was written to be caught in.
func (fc *freezeCase) test(t *testing.T, r *rand.Rand, chains []chainKind) {
	compiler := process.EngineCompiler

	// The reference: uninterrupted, once as a plain run (of a C module as
	// built) and once prepared for capture but never frozen. Both must
	// agree, or the guest is not deterministic and nothing below would
	// mean anything.
	plain, _ := fc.runChain(t, []freezeStep{{engine: compiler}})
	fc.guest.check(t, plain)
	if t.Failed() {
		t.Fatalf("the uninterrupted run is not what the guest is known to print: the guest or tern is broken\nstdout (last lines):\n%s\nstderr (last lines):\n%s",
			guestLastLines(plain.stdout, 10), guestLastLines(plain.stderr, 10))
	}
	fc.ref = plain
	start := time.Now()
	prepared, freezes := fc.runChain(t, []freezeStep{{engine: compiler, after: time.Hour}, {engine: compiler}})
	fc.dur = time.Since(start)
	if freezes != 0 {
		t.Fatalf("froze %d times with --freeze-after 1h", freezes)
	}
	if !fc.compare(t, "a run prepared for capture, never frozen", prepared) {
		t.FailNow()
	}
	t.Logf("uninterrupted: %v, %d lines of stdout, exit %d", fc.dur.Round(time.Millisecond), strings.Count(fc.ref.stdout, "\n"), fc.ref.code)

	// Single freezes at random instants, each resumed by another process.
	window := fc.dur
	trials := 0
	for attempt := 0; trials < freezeTrials; attempt++ {
		if attempt == 4*freezeTrials {
			t.Fatalf("only %d of %d attempts froze the guest before it ended (last window %v)", trials, attempt, window)
		}
		after := randomBetween(r, window)
		// Every other resume finds the files guest's directory moved.
		got, n := fc.runChain(t, []freezeStep{{engine: compiler, after: after}, {engine: compiler, move: trials%2 == 1}})
		if n == 0 {
			// The guest ended first: that run must still be right, but it
			// does not count. Draw again, below this instant: the guest
			// ran for less (the measured duration includes tern's start,
			// and a first compilation when the cache was cold), so the
			// window still covers its whole run.
			fc.compare(t, fmt.Sprintf("run with --freeze-after %v that ended first", after), got)
			window = after
			continue
		}
		trials++
		if !fc.compare(t, fmt.Sprintf("frozen after %v, resumed", after), got) {
			t.FailNow()
		}
	}

	for _, c := range chains {
		fc.runChains(t, r, c)
	}

	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.guest.dataDir && fc.openFile == 0 {
		t.Errorf("none of %d images has a file open at a non-zero offset", fc.freezes)
	}
	if len(fc.guest.stdin) > 0 && fc.midInput == 0 {
		t.Errorf("none of %d images was taken with the input partly read", fc.freezes)
	}
	fc.done = true
}

func (s freezeStep) String() string {
	str := fmt.Sprintf("%s %v", s.engine, s.after)
	if s.after == 0 {
		str = string(s.engine) + " to the end"
	}
	if s.move {
		str += " (moved)"
	}
	return str
}

// stdlibTests are standard-library test binaries that need no testdata
// files and run for a second or so with -test.short.
var stdlibTests = []string{"strconv", "bytes", "strings"}

// Each test binary is frozen stdlibFreezes times mid-run, in each of
// stdlibChains runs.
const (
	stdlibFreezes = 3
	stdlibChains  = 2
)

// testVerdictLine is a test's (or subtest's) success line in -test.v output; the
// duration in parentheses is left out.
var testVerdictLine = regexp.MustCompile(`(?m)^\s*--- (PASS|SKIP): (\S+) \(`)

// testVerdicts lists the tests that passed or were skipped, sorted.
func testVerdicts(out string) []string {
	var v []string
	for _, m := range testVerdictLine.FindAllStringSubmatch(out, -1) {
		v = append(v, m[1]+" "+m[2])
	}
	slices.Sort(v)
	return v
}

// TestStdlibFreeze freezes standard-library test binaries several times in
// mid-run: they must still pass, running the same tests as uninterrupted.
func TestStdlibFreeze(t *testing.T) {
	if !process.CompilerSupported() {
		t.Skip("wazero has no compiler for this host")
	}
	local, err := installedGo()
	if err != nil {
		t.Fatal(err)
	}
	seed := freezeSeed(t)
	t.Logf("seed %d (TERN_FREEZE_SEED=%d repeats this run's random instants)", seed, seed)
	for _, pkg := range stdlibTests {
		t.Run(pkg, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewSource(subSeed(seed, t.Name())))
			wasm := buildOncePerRun(t, local.version+"/test/"+pkg, func(out string) error {
				cmd := exec.Command("go", "test", "-c", "-trimpath", "-o", out, pkg)
				cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK=off", "CGO_ENABLED=0", "GOTOOLCHAIN=local")
				if o, err := cmd.CombinedOutput(); err != nil {
					return fmt.Errorf("go test -c %s: %v\n%s", pkg, err, o)
				}
				return nil
			})
			// The tests write temporary files (examples capture their
			// output in os.TempDir) and look for testdata relative to the
			// working directory, "/" under wasip1: give them an empty
			// root with a /tmp.
			newRoot := func() string {
				root := t.TempDir()
				if err := os.Mkdir(filepath.Join(root, "tmp"), 0o755); err != nil {
					t.Fatal(err)
				}
				return root
			}
			guestArgs := []string{"--", wasm, "-test.v", "-test.short"}
			run := func(root string, freeze []string) result {
				args := append([]string{"run", "--cache-dir", cacheDirForTests(t), "--dir", root + ":/"}, freeze...)
				return runTern(t, "", nil, append(args, guestArgs...)...)
			}

			start := time.Now()
			ref := run(newRoot(), nil)
			dur := time.Since(start)
			want := testVerdicts(ref.stdout)
			if ref.code != 0 || !strings.HasSuffix(ref.stdout, "\nPASS\n") || len(want) < 20 {
				t.Fatalf("uninterrupted: exit %d, %d tests passed or skipped; stdout (last lines):\n%s\nstderr:\n%s",
					ref.code, len(want), guestLastLines(ref.stdout, 15), ref.stderr)
			}
			t.Logf("uninterrupted: %v, %d tests passed or skipped", dur.Round(time.Millisecond), len(want))

			window := dur / (stdlibFreezes + 1)
			for chains, attempt := 0, 0; chains < stdlibChains; attempt++ {
				if attempt == 10 {
					t.Fatalf("no chain of %d freezes in %d attempts", stdlibFreezes, attempt)
				}
				dir, root := t.TempDir(), newRoot()
				var stdout, stderr string
				var code int
				var afters []time.Duration
				var where []string // where each freeze caught the guest
				image, freezes := "", 0
				for i := 0; ; i++ {
					var res result
					checkpoint := filepath.Join(dir, fmt.Sprintf("image-%d", i))
					var freeze []string
					if i < stdlibFreezes {
						after := randomBetween(r, window)
						afters = append(afters, after)
						freeze = []string{"--checkpoint", checkpoint, "--freeze-after", after.String(), "--freeze-timeout", freezeTimeout.String()}
					}
					if image == "" {
						res = run(root, freeze)
					} else {
						res = runTern(t, "", nil, append(append([]string{"resume", "--cache-dir", cacheDirForTests(t)}, freeze...), image)...)
					}
					stdout += res.stdout
					code = res.code
					before, line, frozen := strings.Cut(res.stderr, frozenLine)
					stderr += before
					if !frozen {
						break
					}
					if res.code != 0 || strings.Count(line, "\n") != 1 {
						t.Fatalf("segment %d: froze, exit %d, stderr:\n%s", i, res.code, res.stderr)
					}
					if _, err := os.Stat(checkpoint); err != nil {
						t.Fatalf("segment %d: said it froze, but: %v", i, err)
					}
					image = checkpoint
					freezes++
					info, _ := inspectJSON(t, image)
					if info.Kind != "go" || !strings.HasPrefix(info.Guest, "Go "+local.version+", frozen ") {
						t.Errorf("%s: kind %q, guest %q", image, info.Kind, info.Guest)
					}
					_, w, _ := strings.Cut(info.Guest, ", frozen ")
					where = append(where, strings.TrimSuffix(w, " (re-issued on resume)"))
				}
				what := fmt.Sprintf("frozen after %v (%s)", afters, strings.Join(where, "; "))
				if code != 0 || stderr != ref.stderr || !strings.HasSuffix(stdout, "\nPASS\n") || strings.Contains(stdout, "--- FAIL") {
					t.Fatalf("%s: exit %d; stdout (last lines):\n%s\nstderr:\n%s", what, code, guestLastLines(stdout, 15), stderr)
				}
				if d := freezeDiff(want, testVerdicts(stdout)); d != "" {
					t.Fatalf("%s: the tests that passed differ (- uninterrupted, + frozen):\n%s", what, d)
				}
				if freezes == stdlibFreezes {
					t.Logf("%s: %d tests passed or skipped, as uninterrupted", what, len(want))
					chains++
					continue
				}
				// Ended before the last freeze: it must still have been
				// right, but it does not count.
				window = window * 2 / 3
			}
		})
	}
}

// frozenImage freezes the files guest (built by the installed Go) early in
// its run, with files open, and returns the image, the module and the
// directory preopened as /data.
func frozenImage(t *testing.T) (image, wasm, dataDir string) {
	t.Helper()
	local, err := installedGo()
	if err != nil {
		t.Fatal(err)
	}
	wasm = buildFreezeGuest(t, local, "files")
	dir := t.TempDir()
	after := 150 * time.Millisecond
	for attempt := 0; attempt < 8; attempt++ {
		dataDir = filepath.Join(dir, fmt.Sprintf("data-%d", attempt))
		image = filepath.Join(dir, fmt.Sprintf("image-%d", attempt))
		if err := os.Mkdir(dataDir, 0o755); err != nil {
			t.Fatal(err)
		}
		r := runTern(t, "", nil, "run", "--cache-dir", cacheDirForTests(t), "--dir", dataDir+":/data",
			"--checkpoint", image, "--freeze-after", after.String(), "--", wasm, "/data")
		if r.code == 0 && strings.Contains(r.stderr, frozenLine) {
			info, _ := inspectJSON(t, image)
			if slices.ContainsFunc(info.FDs, func(f inspectedFD) bool { return f.Kind == "file" && f.Offset > 0 }) {
				return image, wasm, dataDir
			}
		}
		after = after * 2 / 3
	}
	t.Fatalf("could not freeze the files guest with files open")
	return
}

// TestFreezeBadInput gives freeze, resume and inspect what they cannot
// use: each must refuse it with exit 125 and one line that says what is
// wrong, run nothing and write no image.
func TestFreezeBadInput(t *testing.T) {
	good, wasm, dataDir := frozenImage(t)
	in := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(in, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	img, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	truncated := write("truncated.img", img[:len(img)/2])
	header := write("header.img", img[:24])
	flipped := bytes.Clone(img)
	flipped[len(flipped)/2] ^= 0x40
	corrupt := write("corrupt.img", flipped)
	// Changed after it was signed, with the checksum made good again: only
	// the signature tells. The byte is in the creation time, which still
	// parses.
	tampered := bytes.Clone(img)
	tampered[26] ^= 0x01
	sum := sha256.Sum256(tampered[:len(tampered)-sha256.Size])
	copy(tampered[len(tampered)-sha256.Size:], sum[:])
	resealed := write("tampered.img", tampered)
	dec, err := imagepkg.Decode(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	if err := imagepkg.Encode(&plain, dec); err != nil {
		t.Fatal(err)
	}
	unsigned := write("unsigned.img", plain.Bytes())
	elsewhere := t.TempDir() // another device's data directory
	noise := make([]byte, 64<<10)
	rand.New(rand.NewSource(1)).Read(noise)
	random := write("random.img", noise)
	empty := write("empty.img", nil)
	local, _ := installedGo()
	other := buildFreezeGuest(t, local, "timers")
	cModule := buildWasiC(t, filepath.Join(guestsDir, "fsdemo.c"))
	// An image whose preopen directory, or an open file in it, is gone.
	goneDir, _, goneData := frozenImage(t)
	if err := os.RemoveAll(goneData); err != nil {
		t.Fatal(err)
	}
	goneFile, _, goneFileData := frozenImage(t)
	if err := os.Remove(filepath.Join(goneFileData, "journal.log")); err != nil {
		t.Fatal(err)
	}

	out := t.TempDir() // where images must not appear
	ck := filepath.Join(out, "out.img")
	cases := []struct {
		name string
		args []string
		want []string // substrings of the message
	}{
		{"resume/missing", []string{"resume", "--checkpoint", ck, filepath.Join(in, "missing.img")}, []string{"missing.img", "no such file"}},
		{"resume/module", []string{"resume", "--checkpoint", ck, wasm}, []string{"not a tern image", "WebAssembly module"}},
		{"resume/truncated", []string{"resume", "--checkpoint", ck, truncated}, []string{"truncated.img", "corrupt image", "truncated"}},
		{"resume/header-only", []string{"resume", "--checkpoint", ck, header}, []string{"header.img", "corrupt image", "truncated"}},
		{"resume/corrupted", []string{"resume", "--checkpoint", ck, corrupt}, []string{"corrupt.img", "corrupt image", "checksum"}},
		{"resume/random", []string{"resume", "--checkpoint", ck, random}, []string{"random.img", "not a tern image"}},
		{"resume/empty", []string{"resume", "--checkpoint", ck, empty}, []string{"empty.img", "not a tern image", "empty"}},
		{"resume/wrong-module", []string{"resume", "--checkpoint", ck, "--module", other, good}, []string{"--module", "is not the module", "sha256"}},
		{"resume/missing-module", []string{"resume", "--checkpoint", ck, "--module", filepath.Join(in, "nope.wasm"), good}, []string{"nope.wasm", "no such file"}},
		{"resume/unknown-preopen", []string{"resume", "--checkpoint", ck, "--dir", dataDir + ":/elsewhere", good}, []string{"no preopen", "/elsewhere"}},
		{"resume/preopen-gone", []string{"resume", "--checkpoint", ck, goneDir}, []string{"preopen", goneData, "no such file"}},
		{"resume/file-gone", []string{"resume", "--checkpoint", ck, goneFile}, []string{"journal.log", "no such file"}},
		{"resume/tampered", []string{"resume", "--checkpoint", ck, resealed}, []string{"tampered.img", "bad image signature", "changed after it was signed"}},
		{"inspect/tampered", []string{"inspect", resealed}, []string{"tampered.img", "bad image signature"}},
		{"resume/unsigned", []string{"resume", "--checkpoint", ck, unsigned}, []string{"unsigned.img", "unsigned"}},
		{"resume/other-device", []string{"resume", "--checkpoint", ck, "--data", elsewhere, good}, []string{"refused", "not trusted here", "tern device"}},
		{"resume/freeze-after-alone", []string{"resume", "--freeze-after", "1s", good}, []string{"--freeze-after", "--checkpoint"}},
		{"prepare/no-wasm-opt", []string{"prepare", "--binaryen", "--cache-dir", "-", "--wasm-opt", filepath.Join(in, "no-wasm-opt"), "-o", filepath.Join(out, "p.wasm"), cModule}, []string{"wasm-opt", "not found", "binaryen"}},
		{"prepare/go-module", []string{"prepare", "-o", filepath.Join(out, "p.wasm"), wasm}, []string{"Go (GOOS=wasip1) module", "without preparation"}},
		{"prepare/not-wasm", []string{"prepare", "-o", filepath.Join(out, "p.wasm"), random}, []string{"not a WebAssembly module"}},
		{"run/freeze-after-alone", []string{"run", "--freeze-after", "1s", "--", wasm, "/data"}, []string{"--freeze-after", "needs --checkpoint"}},
		{"run/freeze-after-negative", []string{"run", "--checkpoint", ck, "--freeze-after", "-1s", "--", wasm, "/data"}, []string{"--freeze-after", "negative"}},
		{"run/checkpoint-no-dir", []string{"run", "--checkpoint", filepath.Join(out, "no", "such", "dir", "x.img"), "--", wasm, "/data"}, []string{"--checkpoint", "does not exist"}},
		{"run/checkpoint-is-dir", []string{"run", "--checkpoint", out, "--", wasm, "/data"}, []string{"--checkpoint", "is a directory"}},
		{"resume/checkpoint-no-dir", []string{"resume", "--checkpoint", filepath.Join(out, "no", "x.img"), good}, []string{"--checkpoint", "does not exist"}},
		{"inspect/corrupted", []string{"inspect", corrupt}, []string{"corrupt.img", "corrupt image", "checksum"}},
		{"inspect/corrupted-json", []string{"inspect", "-o", "json", corrupt}, []string{"corrupt.img", "corrupt image", "checksum"}},
		{"inspect/truncated", []string{"inspect", truncated}, []string{"truncated.img", "truncated"}},
		{"inspect/module", []string{"inspect", wasm}, []string{"not a tern image", "WebAssembly module"}},
		{"inspect/random", []string{"inspect", random}, []string{"not a tern image"}},
		{"inspect/missing", []string{"inspect", filepath.Join(in, "missing.img")}, []string{"missing.img", "no such file"}},
		{"inspect/format", []string{"inspect", "-o", "yaml", good}, []string{"yaml", "text or json"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runTern(t, out, nil, c.args...)
			msg := strings.TrimSuffix(r.stderr, "\n")
			if r.code != exitTernError || strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "tern: ") {
				t.Errorf("tern %s: exit %d, stderr %q; want exit %d and one line from tern", strings.Join(c.args, " "), r.code, r.stderr, exitTernError)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("tern %s: message %q lacks %q", strings.Join(c.args, " "), msg, w)
				}
			}
			if r.stdout != "" {
				t.Errorf("tern %s: the guest ran: stdout %q", strings.Join(c.args, " "), guestLastLines(r.stdout, 5))
			}
			ents, err := os.ReadDir(out)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				t.Errorf("tern %s: left %s behind", strings.Join(c.args, " "), e.Name())
				os.RemoveAll(filepath.Join(out, e.Name()))
			}
		})
	}
	// The good image, which all the bad ones came from, does resume.
	r := runTern(t, "", nil, "resume", good)
	if r.code != 0 || !strings.HasSuffix(r.stderr, "files: done\n") {
		t.Errorf("tern resume of the good image: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// TestInspect reads a real image back with 'tern inspect', as text and as
// JSON, and checks what it says against what is known of the process.
func TestInspect(t *testing.T) {
	image, wasm, dataDir := frozenImage(t)
	local, _ := installedGo()
	mod, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	modSum := sha256.Sum256(mod)
	st, err := os.Stat(image)
	if err != nil {
		t.Fatal(err)
	}
	info, raw := inspectJSON(t, image)
	for _, k := range []string{"file", "file_size", "format_version", "kind", "guest", "created", "producer", "module_sha256",
		"module_size", "globals", "memory_pages", "zero_pages", "memory_stored_bytes", "args", "env", "preopens", "fds",
		"monotonic_ns", "stdin_bytes_read"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("inspect -o json: no %q field", k)
		}
	}
	check := func(what string, ok bool, got any) {
		t.Helper()
		if !ok {
			t.Errorf("inspect -o json: %s: got %v", what, got)
		}
	}
	check("file is the image", info.File == image, info.File)
	check("file_size is the image's", info.FileSize == int(st.Size()), info.FileSize)
	check("format_version >= 1", info.Version >= 1, info.Version)
	check("kind go", info.Kind == "go", info.Kind)
	check("guest names the Go release", strings.HasPrefix(info.Guest, "Go "+local.version+", frozen ") &&
		regexp.MustCompile(`go1\.2\d`).MatchString(info.Guest), info.Guest)
	check("guest says where it was frozen", strings.Contains(info.Guest, "scheduler loop") || strings.Contains(info.Guest, "waiting in"), info.Guest)
	check("created set", !info.Created.IsZero(), info.Created)
	check("producer is tern", strings.HasPrefix(info.Producer, "tern ") && strings.Contains(info.Producer, "compiler"), info.Producer)
	check("module_sha256 is the module's", info.ModuleSHA256 == hex.EncodeToString(modSum[:]), info.ModuleSHA256)
	check("module_size is the module's (embedded)", info.ModuleSize == len(mod), info.ModuleSize)
	check("memory_pages > 0", info.MemoryPages > 0, info.MemoryPages)
	check("zero_pages <= memory_pages", info.ZeroPages >= 0 && info.ZeroPages <= info.MemoryPages, info.ZeroPages)
	check("memory_stored_bytes within the file", info.StoredBytes > 0 && info.StoredBytes < info.FileSize, info.StoredBytes)
	check("args are the module and /data", slices.Equal(info.Args, []string{wasm, "/data"}), info.Args)
	check("one preopen, /data", len(info.Preopens) == 1 && info.Preopens[0].GuestPath == "/data" && info.Preopens[0].HostDir == dataDir, info.Preopens)
	check("monotonic clock running", info.MonotonicNS > 0, info.MonotonicNS)
	check("no stdin read", info.StdinRead == 0, info.StdinRead)
	fds := map[int]string{}
	for _, f := range info.FDs {
		fds[f.FD] = fmt.Sprintf("%s %s %d", f.Kind, f.Path, f.Offset)
	}
	check("stdio", fds[0] == "stdin  0" && fds[1] == "stdout  0" && fds[2] == "stderr  0", fds)
	check("the preopen", fds[3] == "dir /data 0", fds)
	check("input.txt open for reading at a multiple of 29", regexp.MustCompile(`^file /data/input\.txt \d+$`).MatchString(fds[4]), fds)
	check("the journal open", strings.HasPrefix(fds[5], "file /data/journal.log "), fds)
	check("the grid open", strings.HasPrefix(fds[6], "file /data/grid.bin "), fds)

	r := runTern(t, "", nil, "inspect", image)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("tern inspect: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{
		fmt.Sprintf("image      %s (%d bytes, format %d)\n", image, info.FileSize, info.Version),
		fmt.Sprintf("kind       go: %s\n", info.Guest),
		fmt.Sprintf("by %s\n", info.Producer),
		fmt.Sprintf("module     sha256 %s, %d bytes, embedded\n", info.ModuleSHA256, len(mod)),
		fmt.Sprintf("memory     %d pages (%d KiB): %d zero, %d stored in %d bytes\n",
			info.MemoryPages, info.MemoryPages*64, info.ZeroPages, info.MemoryPages-info.ZeroPages, info.StoredBytes),
		fmt.Sprintf("args       [%q \"/data\"]\n", wasm),
		fmt.Sprintf("preopen    /data -> host %s\n", dataDir),
		"fd 3       dir /data\n",
		"fd 4       file /data/input.txt at offset ",
		"fd 5       file /data/journal.log at offset ",
		"clock      monotonic ",
		"stdin      0 bytes read\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("tern inspect: output lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestFreezeOnSignal freezes on SIGINT and on SIGTERM, sent once the guest
// has printed part of its output, and resumes.
func TestFreezeOnSignal(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT or SIGTERM to send on Windows")
	}
	local, err := installedGo()
	if err != nil {
		t.Fatal(err)
	}
	wasm := buildFreezeGuest(t, local, "timers")
	cache := cacheDirForTests(t)
	ref := runTern(t, "", nil, "run", "--cache-dir", cache, "--", wasm)
	if ref.code != 0 {
		t.Fatalf("uninterrupted: exit %d\n%s", ref.code, ref.stderr)
	}
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "image")
			cmd := exec.Command(ternBin, "run", "--cache-dir", cache, "--checkpoint", img, "--", wasm)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			pipe, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Signal once a quarter of the output is out.
			var stdout bytes.Buffer
			br := bufio.NewReader(pipe)
			for lines := 0; lines < strings.Count(ref.stdout, "\n")/4; lines++ {
				l, err := br.ReadString('\n')
				stdout.WriteString(l)
				if err != nil {
					t.Fatalf("the guest ended before the signal: %v; stderr:\n%s", err, stderr.String())
				}
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			rest, err := io.ReadAll(br)
			if err != nil {
				t.Fatal(err)
			}
			stdout.Write(rest)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("tern run, sent %v: %v; stderr:\n%s", sig, err, stderr.String())
			}
			want := fmt.Sprintf("tern: frozen (%v) into %s", sig, img)
			if !strings.Contains(stderr.String(), want) {
				t.Fatalf("stderr lacks %q:\n%s", want, stderr.String())
			}
			res := runTern(t, "", nil, "resume", "--cache-dir", cache, img)
			if res.code != 0 {
				t.Fatalf("resume: exit %d\n%s", res.code, res.stderr)
			}
			if got := stdout.String() + res.stdout; got != ref.stdout {
				t.Errorf("stdout differs from the uninterrupted run's (- uninterrupted, + frozen):\n%s",
					freezeDiff(strings.Split(ref.stdout, "\n"), strings.Split(got, "\n")))
			}
			before, _, _ := strings.Cut(stderr.String(), "tern: frozen (")
			if got := before + res.stderr; got != ref.stderr {
				t.Errorf("stderr %q, uninterrupted %q", got, ref.stderr)
			}
		})
	}
}

// A freeze asked for while the process cannot be captured (a removed file
// is open) leaves it running, says so once, and lands when the file is
// closed; resumed, the run is the uninterrupted one.
func TestFreezeRetriesUncapturable(t *testing.T) {
	local, err := installedGo()
	if err != nil {
		t.Fatal(err)
	}
	wasm := buildFreezeGuest(t, local, "dangling")
	cache := cacheDirForTests(t)
	run := func(args ...string) result {
		data := t.TempDir()
		return runTern(t, "", nil, append([]string{"run", "--cache-dir", cache, "--dir", data + ":/data"}, args...)...)
	}
	const hold = "400ms"
	ref := run("--", wasm, "/data", hold)
	if ref.code != 0 || !strings.Contains(ref.stdout, "closed it after true\nstep 0 0\n") || !strings.Contains(ref.stdout, "step 999 499500\n") {
		t.Fatalf("uninterrupted: exit %d\nstdout:\n%s\nstderr:\n%s", ref.code, ref.stdout, ref.stderr)
	}
	img := filepath.Join(t.TempDir(), "image")
	first := run("--checkpoint", img, "--freeze-after", "50ms", "--", wasm, "/data", hold)
	if first.code != 0 {
		t.Fatalf("run: exit %d\n%s", first.code, first.stderr)
	}
	for _, want := range []string{"state cannot be captured", "scratch", "the process keeps running and tern tries again", frozenLine + "after 50ms)"} {
		if !strings.Contains(first.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, first.stderr)
		}
	}
	if n := strings.Count(first.stderr, "cannot be captured"); n != 1 {
		t.Errorf("said %d times that the state cannot be captured, want once:\n%s", n, first.stderr)
	}
	if !strings.Contains(first.stdout, "closed it after true\n") {
		t.Fatalf("frozen before the file was closed:\n%s", first.stdout)
	}
	res := runTern(t, "", nil, "resume", "--cache-dir", cache, img)
	if res.code != 0 {
		t.Fatalf("resume: exit %d\n%s", res.code, res.stderr)
	}
	if got := first.stdout + res.stdout; got != ref.stdout {
		t.Errorf("stdout differs from the uninterrupted run's (- uninterrupted, + frozen):\n%s",
			freezeDiff(strings.Split(ref.stdout, "\n"), strings.Split(got, "\n")))
	}
}
