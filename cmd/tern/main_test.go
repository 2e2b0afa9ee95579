package main

import (
	"bytes"
	"io"
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
	// Keys that sign images live in the data directory: the tests' own,
	// not the user's.
	os.Setenv("TERN_DATA", filepath.Join(dir, "data"))
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
	return runCommand(t, dir, stdin, append([]string{ternBin}, args...))
}

// runCommand runs argv (a tern binary, possibly behind an emulator) in dir.
func runCommand(t testing.TB, dir string, stdin []byte, argv []string) result {
	t.Helper()
	return runCommandReading(t, dir, bytes.NewReader(stdin), argv)
}

// runCommandReading is runCommand with stdin read from r, through a pipe:
// a reader that waits makes the command wait for its input.
func runCommandReading(t testing.TB, dir string, r io.Reader, argv []string) result {
	t.Helper()
	args := argv[1:]
	cmd := exec.Command(argv[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TERN_TEST=1")
	cmd.Stdin = r
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

// crossTern builds tern for goarch and returns the command line that runs
// it under qemu-user, so tests can exercise tern on foreign architectures
// (s390x is big-endian) on this machine.
func crossTern(t testing.TB, goarch string) []string {
	t.Helper()
	qemu := map[string]string{"s390x": "qemu-s390x", "arm64": "qemu-aarch64", "riscv64": "qemu-riscv64"}[goarch]
	emu, err := exec.LookPath(qemu)
	if err != nil {
		t.Fatalf("%s not found: apt-get install -y qemu-user (.ci/run installs it)", qemu)
	}
	bin := filepath.Join(t.TempDir(), "tern-"+goarch)
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "GOARCH="+goarch, "GOOS=linux", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build tern for %s: %v\n%s", goarch, err, out)
	}
	return []string{emu, bin}
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
