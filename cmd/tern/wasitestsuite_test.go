package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/process"
)

// testSpec is a wasi-testsuite JSON specification (legacy form; the suite
// here has no operation-based specs, and one that appears fails loudly).
type testSpec struct {
	Args       []string          `json:"args"`
	Dirs       []string          `json:"dirs"`
	Env        map[string]string `json:"env"`
	ExitCode   int               `json:"exit_code"`
	Stdout     *string           `json:"stdout"`
	Stderr     *string           `json:"stderr"`
	Operations json.RawMessage   `json:"operations"`
}

// loadExceptions reads an exceptions file in testdata: one test a line
// ("suite/name: reason"); those tests are reported, not failed.
func loadExceptions(t *testing.T, file string) map[string]string {
	ex := map[string]string{}
	if file == "" {
		return ex
	}
	f, err := os.Open(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, reason, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("exceptions: %q: want NAME: REASON", line)
		}
		ex[strings.TrimSpace(name)] = strings.TrimSpace(reason)
	}
	return ex
}

// copyTree copies the suite so tests that write files write to a temp dir;
// the originals are read-only.
func copyTree(t *testing.T, src, dst string) {
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// wasiProg is one program of the suite, in the test's copy of it.
type wasiProg struct {
	name    string // suite/.../base, as in exceptions files
	dir     string // its directory in the copy
	base    string // file name without .wasm
	spec    testSpec
	specErr error
}

// loadWASIProgs copies the suite into a temp dir and reads every
// program's spec.
func loadWASIProgs(t *testing.T) (root string, progs []wasiProg) {
	t.Helper()
	src := filepath.Join(sharedDir(t), "conformance", "wasi-testsuite", "tests")
	root = t.TempDir()
	copyTree(t, src, root)
	var wasms []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".wasm") {
			wasms = append(wasms, p)
		}
		return nil
	})
	sort.Strings(wasms)
	if len(wasms) < 70 {
		t.Fatalf("found only %d test programs under %s", len(wasms), src)
	}
	for _, wasm := range wasms {
		rel, _ := filepath.Rel(root, wasm)
		p := wasiProg{
			name: strings.TrimSuffix(filepath.ToSlash(rel), ".wasm"),
			dir:  filepath.Dir(wasm),
			base: strings.TrimSuffix(filepath.Base(wasm), ".wasm"),
		}
		if b, err := os.ReadFile(filepath.Join(p.dir, p.base+".json")); err == nil {
			p.specErr = json.Unmarshal(b, &p.spec)
		}
		if p.specErr == nil && p.spec.Operations != nil {
			p.specErr = fmt.Errorf("operation-based spec not supported by this runner")
		}
		progs = append(progs, p)
	}
	return root, progs
}

// runFlags are the spec's --dir and --env flags. hostDir maps a spec dir
// (relative to the program's directory) to the host directory to give.
func (p *wasiProg) runFlags(hostDir func(string) string) []string {
	var args []string
	for _, d := range p.spec.Dirs {
		if h := hostDir(d); h != d {
			args = append(args, "--dir", h+":"+d)
		} else {
			args = append(args, "--dir", d)
		}
	}
	keys := make([]string, 0, len(p.spec.Env))
	for k := range p.spec.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--env", k+"="+p.spec.Env[k])
	}
	return args
}

// mismatches says how an outcome differs from the spec. Like the suite's
// own runner, it checks output only where the spec states it: some tests
// print diagnostics.
func (p *wasiProg) mismatches(code int, stdout, stderr string) []string {
	var bad []string
	if code != p.spec.ExitCode {
		bad = append(bad, fmt.Sprintf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, p.spec.ExitCode, stdout, stderr))
	}
	if p.spec.Stdout != nil && stdout != *p.spec.Stdout {
		bad = append(bad, fmt.Sprintf("stdout %q, want %q", stdout, *p.spec.Stdout))
	}
	if p.spec.Stderr != nil && stderr != *p.spec.Stderr {
		bad = append(bad, fmt.Sprintf("stderr %q, want %q", stderr, *p.spec.Stderr))
	}
	return bad
}

// runOriginal runs the unprepared program on engine, in its directory, as
// the suite's own runner does; tern is the command line of a tern binary,
// maybe behind an emulator.
func (p *wasiProg) runOriginal(t *testing.T, tern []string, engine string) result {
	t.Helper()
	// Remove artifacts of earlier tests, as the suite's runner does.
	removeCleanups(t, p.dir)
	args := append(slices.Clone(tern), "run", "--engine", engine, "--cache-dir", cacheDirForTests(t))
	args = append(args, p.runFlags(func(d string) string { return d })...)
	args = append(append(args, "--", p.base+".wasm"), p.spec.Args...)
	return runCommand(t, p.dir, nil, args)
}

func TestWASITestsuite(t *testing.T) {
	engines := []string{"interpreter"}
	if process.CompilerSupported() {
		engines = []string{"compiler", "interpreter"}
	}
	// Both engines: a process image must resume on either, so both must
	// run the suite identically.
	runWASITestsuite(t, []string{ternBin}, engines, "")
}

// TestWASITestsuiteBigEndian runs the suite through tern built for s390x, a
// big-endian machine, under qemu: the WASI layer must not assume the host's
// byte order anywhere.
func TestWASITestsuiteBigEndian(t *testing.T) {
	if testing.Short() {
		t.Skip("emulated run; skipped with -short")
	}
	runWASITestsuite(t, crossTern(t, "s390x"), []string{"interpreter"}, "wasi-testsuite-exceptions-qemu-s390x.txt")
}

func runWASITestsuite(t *testing.T, tern []string, engines []string, exceptionsFile string) {
	_, progs := loadWASIProgs(t)
	exceptions := loadExceptions(t, exceptionsFile)
	passed, failed, excepted := runWASIProgs(t, progs, engines, exceptions, func(t *testing.T, p *wasiProg, engine string) {
		r := p.runOriginal(t, tern, engine)
		for _, b := range p.mismatches(r.code, r.stdout, r.stderr) {
			t.Error(b)
		}
	})
	fmt.Printf("%s: %d passed, %d failed, %d skipped\n", t.Name(), passed, failed, excepted)
}

// runWASIProgs runs test on every program on every engine, as subtests
// ENGINE/NAME, and counts how they went. The listed exceptions are
// skipped and counted apart, a program whose spec cannot be used fails,
// and a program that test skips counts as neither passed nor failed.
func runWASIProgs(t *testing.T, progs []wasiProg, engines []string, exceptions map[string]string,
	test func(t *testing.T, p *wasiProg, engine string)) (passed, failed, excepted int) {
	for _, engine := range engines {
		for i := range progs {
			p := &progs[i]
			ran, skipped := false, false
			ok := t.Run(engine+"/"+p.name, func(t *testing.T) {
				ran = true
				defer func() { skipped = t.Skipped() }()
				if reason, ok := exceptions[p.name]; ok {
					t.Skipf("listed exception: %s", reason)
				}
				if p.specErr != nil {
					t.Fatalf("spec: %v", p.specErr)
				}
				test(t, p, engine)
			})
			_, ex := exceptions[p.name]
			switch {
			case !ran:
			case ex:
				excepted++
			case skipped:
			case ok:
				passed++
			default:
				failed++
			}
		}
	}
	return passed, failed, excepted
}

// removeCleanups deletes the *.cleanup artifacts earlier tests left
// anywhere below dir, as the suite's specification asks.
func removeCleanups(t *testing.T, dir string) {
	var found []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".cleanup") {
			found = append(found, p)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	for _, p := range found {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
}

// cacheDirForTests shares one compilation cache between the test's runs.
func cacheDirForTests(t *testing.T) string {
	d := filepath.Join(os.TempDir(), "tern-test-cache")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}
