package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// ternBin is the tern binary under test, built once by TestMain so that
// every test runs tern the way a user does: as a separate OS process.
var ternBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tern-test-bin")
	if err != nil {
		panic(err)
	}
	ternBin = filepath.Join(dir, "tern")
	if runtime.GOOS == "windows" {
		ternBin += ".exe"
	}
	out, err := exec.Command("go", "build", "-o", ternBin, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is how one tern invocation ended.
type result struct {
	stdout, stderr string
	code           int
}

// runTern runs the tern binary in dir with stdin, returning its output and
// exit status.
func runTern(t testing.TB, dir string, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(ternBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TERN_TEST=1")
	cmd.Stdin = bytes.NewReader(stdin)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("tern %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: so.String(), stderr: se.String(), code: code}
}

// sharedDir locates ../shared beside the repository.
func sharedDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("TERN_SHARED"); d != "" {
		return d
	}
	d, err := filepath.Abs("../../../shared")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d); err != nil {
		t.Fatalf("shared data not found at %s (set TERN_SHARED): %v", d, err)
	}
	return d
}
