package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/process"
)

// guestsDir holds the guest programs' sources. Under testdata, so that
// `go build ./...` and `go vet ./...` leave them alone.
const guestsDir = "testdata/guests"

// A guest is one program built twice from the same source: for WASI, to run
// under tern, and for this host, as the reference it must behave like.
type guest struct {
	name string
	// build writes the WASI module and the native executable into out.
	build func(t *testing.T, out string) (wasm, native string)
	// noDotPreopen: the guest's runtime cannot resolve relative paths
	// against a preopen named "." (Go's wasip1 port joins them onto a cwd
	// that no preopen prefixes, under any WASI host).
	noDotPreopen bool
}

// A dirMode is one way of handing the guest its directory.
type dirMode struct {
	name string
	// flag returns the --dir flag for host directory dir, the ROOT
	// argument the guest is given, and the directory tern runs in.
	flag func(dir string) (dirFlag, guestRoot, cwd string)
	// dot: the guest gets a relative ROOT, found through a preopen named ".".
	dot bool
}

var dirModes = []dirMode{
	{name: "mapped-data", flag: func(d string) (string, string, string) { return d + ":/data", "/data", os.TempDir() }},
	{name: "mapped-root", flag: func(d string) (string, string, string) { return d + ":/", "/", os.TempDir() }},
	{name: "plain-abs", flag: func(d string) (string, string, string) { return d, d, os.TempDir() }},
	{name: "plain-dot", flag: func(d string) (string, string, string) { return ".", ".", d }, dot: true},
}

// Arguments and environment reach the guest unchanged, spaces and UTF-8
// included.
var (
	guestArgs = []string{"alpha", "beta gamma", "ünïcödé"}
	guestEnv  = "FSDEMO_GREETING=hello from the test"
)

func TestGuests(t *testing.T) {
	guests := []guest{
		{name: "c", build: buildCGuest},
		{name: "go", build: buildGoGuest, noDotPreopen: true},
	}
	engines := []process.Engine{process.EngineCompiler, process.EngineInterpreter}
	stdin := guestStdin()
	for _, g := range guests {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			wasm, native := g.build(t, t.TempDir())
			want := runGuestNative(t, native, stdin)
			for _, eng := range engines {
				for _, m := range dirModes {
					if m.dot && g.noDotPreopen {
						continue
					}
					t.Run(string(eng)+"/"+m.name, func(t *testing.T) {
						if eng == process.EngineCompiler && !process.CompilerSupported() {
							t.Skip("wazero has no compiler for this host")
						}
						got := runGuestUnderTern(t, wasm, eng, m, stdin)
						compareGuestRuns(t, want, got)
					})
				}
			}
		})
	}
}

// guestRun is what one run of a guest produced.
type guestRun struct {
	stdout, stderr string
	code           int
	tree           []string // the directory afterwards, see guestTree
	before, after  time.Time
}

// guestStdin is more than a pipe buffer (64 KiB on Linux), so the guest
// reads it in many pieces, with empty and long lines and no final newline.
func guestStdin() []byte {
	var b bytes.Buffer
	words := []string{"wasm", "tern", "freeze", "thaw", "device", "clock", "pipe", "ÿ"}
	for i := 0; i < 3000; i++ {
		if i%97 == 0 {
			b.WriteString("\n")
			continue
		}
		fmt.Fprintf(&b, "line %d:", i)
		for j := 0; j < i%13; j++ {
			b.WriteString(" " + words[(i*7+j)%len(words)])
		}
		if i == 1500 {
			b.WriteString(strings.Repeat("long", 2000))
		}
		b.WriteString("\n")
	}
	b.WriteString("last line without a newline")
	return b.Bytes()
}

// guestSeedDir creates the files a guest expects to find, so each run starts
// from an identical tree that the host, not the guest, wrote.
func guestSeedDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	files := map[string]string{
		"seed.txt":               "seed file\nsecond line\n",
		"pre/existing/notes.txt": "notes\n",
	}
	for name, body := range files {
		p := filepath.Join(d, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func buildCGuest(t *testing.T, out string) (wasm, native string) {
	t.Helper()
	src := filepath.Join(guestsDir, "fsdemo.c")
	wasm = buildWasiC(t, src)
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Fatalf("no host C compiler (cc) to build the native reference: %v", err)
	}
	native = filepath.Join(out, "fsdemo")
	if o, err := exec.Command(cc, "-O2", "-Wall", "-o", native, src).CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, o)
	}
	return wasm, native
}

func buildGoGuest(t *testing.T, out string) (wasm, native string) {
	t.Helper()
	// The guest is its own module so that the tern module's dependencies
	// and go directive do not shape it.
	build := func(dst string, env ...string) {
		cmd := exec.Command("go", "build", "-o", dst, ".")
		cmd.Dir = filepath.Join(guestsDir, "gofsdemo")
		cmd.Env = append(os.Environ(), append([]string{"GOWORK=off"}, env...)...)
		if o, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", env, err, o)
		}
	}
	wasm = filepath.Join(out, "gofsdemo.wasm")
	native = filepath.Join(out, "gofsdemo")
	build(wasm, "GOOS=wasip1", "GOARCH=wasm")
	build(native)
	return wasm, native
}

// runGuestNative runs the host build: the reference every tern run must match.
func runGuestNative(t *testing.T, exe string, stdin []byte) guestRun {
	t.Helper()
	dir := guestSeedDir(t)
	cmd := exec.Command(exe, append([]string{dir}, guestArgs...)...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), guestEnv)
	cmd.Stdin = bytes.NewReader(stdin)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	r := guestRun{before: time.Now()}
	err := cmd.Run()
	r.after = time.Now()
	r.stdout, r.stderr = so.String(), se.String()
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		r.code = ee.ExitCode()
	}
	r.tree = dirTree(t, dir, false)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("native reference run failed (exit %d): the guest program or this host is broken, not tern\nstderr:\n%s\nstdout:\n%s", r.code, r.stderr, r.stdout)
	}
	checkGuestOutput(t, "native", r, stdin)
	return r
}

func runGuestUnderTern(t *testing.T, wasm string, eng process.Engine, m dirMode, stdin []byte) guestRun {
	t.Helper()
	dir := guestSeedDir(t)
	dirFlag, root, cwd := m.flag(dir)
	args := []string{"run", "--engine", string(eng), "--cache-dir", cacheDirForTests(t),
		"--dir", dirFlag, "--env", guestEnv, "--", wasm, root}
	args = append(args, guestArgs...)
	before := time.Now()
	res := runTern(t, cwd, stdin, args...)
	r := guestRun{stdout: res.stdout, stderr: res.stderr, code: res.code, before: before, after: time.Now()}
	r.tree = dirTree(t, dir, false)
	if r.code != 0 {
		t.Fatalf("tern %s: exit %d\nstderr:\n%s\nstdout (last lines):\n%s", strings.Join(args, " "), r.code, r.stderr, guestLastLines(r.stdout, 15))
	}
	checkGuestOutput(t, "tern", r, stdin)
	return r
}

// checkGuestOutput holds both builds to facts known without running
// either, so that the comparison cannot pass on two identical wrong runs.
func checkGuestOutput(t *testing.T, who string, r guestRun, stdin []byte) {
	t.Helper()
	n := bytes.Count(stdin, []byte("\n"))
	if len(stdin) > 0 && stdin[len(stdin)-1] != '\n' {
		n++
	}
	for _, want := range []string{
		fmt.Sprintf("stdin: lines=%d bytes=%d ", n, len(stdin)),
		"\nmonotonic ok\n",
		"\nenv FSDEMO_GREETING: hello from the test\n",
		"\narg 2: beta gamma\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("%s: stdout lacks %q", who, want)
		}
	}
	if !strings.HasSuffix(r.stdout, "\ndone\n") {
		t.Errorf("%s: stdout does not end with done:\n%s", who, guestLastLines(r.stdout, 10))
	}
	if c := strings.Count(r.stdout, "\nsleep "); c < 4 {
		t.Errorf("%s: %d sleep checks reported, want at least 4", who, c)
	}
	// The guest's wall clock must be this host's: read during the run.
	const slack = 2 * time.Second
	for _, line := range strings.Split(r.stdout, "\n") {
		v, ok := strings.CutPrefix(line, "time: realtime_ns=")
		if !ok {
			continue
		}
		ns, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", who, line, err)
		}
		rt := time.Unix(0, ns)
		if rt.Before(r.before.Add(-slack)) || rt.After(r.after.Add(slack)) {
			t.Errorf("%s: guest realtime %v outside the run [%v, %v]", who, rt, r.before, r.after)
		}
		return
	}
	t.Errorf("%s: no realtime line in stdout", who)
}

// compareGuestRuns requires tern's run to match the native one: same exit
// status and streams, except "time:" lines, which report measurements, and
// the same tree left behind.
func compareGuestRuns(t *testing.T, native, tern guestRun) {
	t.Helper()
	if tern.code != native.code {
		t.Errorf("exit %d, native %d", tern.code, native.code)
	}
	if tern.stderr != native.stderr {
		t.Errorf("stderr %q, native %q", tern.stderr, native.stderr)
	}
	if d := firstDiff(guestStableLines(native.stdout), guestStableLines(tern.stdout), "native", "under tern"); d != "" {
		t.Errorf("stdout differs from the native build's (- native, + tern):\n%s", d)
	}
	if d := firstDiff(native.tree, tern.tree, "native", "under tern"); d != "" {
		t.Errorf("directory left behind differs from the native build's (- native, + tern):\n%s", d)
	}
}

func guestStableLines(out string) []string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "time:") {
			keep = append(keep, l)
		}
	}
	return keep
}

// dirTree describes everything under dir: each path with its type and its
// content (files) or target (links), and with modes its permission bits.
// Times are always left out: the clock chose them.
func dirTree(t *testing.T, dir string, modes bool) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		mode := ""
		if modes {
			info, err := d.Info()
			if err != nil {
				return err
			}
			mode = " " + info.Mode().String()
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("%s -> %s", rel, target))
		case d.IsDir():
			out = append(out, rel+"/"+mode)
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("%s%s %d bytes sha256 %x", rel, mode, len(b), sha256.Sum256(b)))
		default:
			out = append(out, fmt.Sprintf("%s %v", rel, d.Type()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// firstDiff shows where two line lists first part, with some context, or
// returns "" when they are equal. aName and bName say what a and b are.
func firstDiff(a, b []string, aName, bName string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	if i == len(a) && i == len(b) {
		return ""
	}
	var s strings.Builder
	for j := max(0, i-3); j < i; j++ {
		fmt.Fprintf(&s, "  %s\n", a[j])
	}
	for j := i; j < min(len(a), i+5); j++ {
		fmt.Fprintf(&s, "- %s\n", a[j])
	}
	for j := i; j < min(len(b), i+5); j++ {
		fmt.Fprintf(&s, "+ %s\n", b[j])
	}
	fmt.Fprintf(&s, "(line %d; %d lines %s, %d %s)", i+1, len(a), aName, len(b), bName)
	return s.String()
}

func guestLastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}
