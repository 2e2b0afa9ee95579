package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	src := filepath.Join(sharedDir(t), "conformance", "wasi-testsuite", "tests")
	root := t.TempDir()
	copyTree(t, src, root)
	exceptions := loadExceptions(t, exceptionsFile)

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
	passed, failed, excepted := 0, 0, 0
	for _, engine := range engines {
		for _, wasm := range wasms {
			dir := filepath.Dir(wasm)
			base := strings.TrimSuffix(filepath.Base(wasm), ".wasm")
			rel, _ := filepath.Rel(root, wasm)
			name := strings.TrimSuffix(filepath.ToSlash(rel), ".wasm")
			ran := false
			ok := t.Run(engine+"/"+name, func(t *testing.T) {
				ran = true
				if reason, ok := exceptions[name]; ok {
					t.Skipf("listed exception: %s", reason)
				}
				spec := testSpec{}
				if b, err := os.ReadFile(filepath.Join(dir, base+".json")); err == nil {
					if err := json.Unmarshal(b, &spec); err != nil {
						t.Fatalf("spec: %v", err)
					}
				}
				if spec.Operations != nil {
					t.Fatalf("operation-based spec not supported by this runner")
				}
				// Remove artifacts of earlier tests, as the suite's runner does.
				removeCleanups(t, dir)
				args := []string{"run", "--engine", engine, "--cache-dir", cacheDirForTests(t)}
				for _, d := range spec.Dirs {
					args = append(args, "--dir", d)
				}
				keys := make([]string, 0, len(spec.Env))
				for k := range spec.Env {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					args = append(args, "--env", k+"="+spec.Env[k])
				}
				args = append(args, "--", base+".wasm")
				args = append(args, spec.Args...)
				r := runCommand(t, dir, nil, append(append([]string(nil), tern...), args...))
				if r.code != spec.ExitCode {
					t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, spec.ExitCode, r.stdout, r.stderr)
				}
				// Like the suite's own runner, output is checked only where the
				// spec states it: some tests print diagnostics.
				if spec.Stdout != nil && r.stdout != *spec.Stdout {
					t.Errorf("stdout %q, want %q", r.stdout, *spec.Stdout)
				}
				if spec.Stderr != nil && r.stderr != *spec.Stderr {
					t.Errorf("stderr %q, want %q", r.stderr, *spec.Stderr)
				}
			})
			switch _, ex := exceptions[name]; {
			case !ran:
			case ex:
				excepted++
			case ok:
				passed++
			default:
				failed++
			}
		}
	}
	fmt.Printf("%s: %d passed, %d failed, %d skipped\n", t.Name(), passed, failed, excepted)
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
