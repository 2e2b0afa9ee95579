package main

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// guestSources are the C guests, one file each. Under testdata so that the
// go command leaves them alone.
//
//go:embed testdata/*.c
var guestSources embed.FS

// toolchainHint is what to install when the guests cannot be built or
// prepared.
const toolchainHint = "apt-get install -y clang wasi-libc libclang-rt-14-dev-wasm32 lld-14 binaryen"

// guest is one benchmark program, testdata/Name.c. Each takes one
// argument, an amount of work, 0 meaning without end, and prints one line
// that depends only on that amount.
type guest struct {
	Name string
	// Work is the argument for a run of roughly 0.3-1 s on the compiler,
	// before scaling; Unit says what it counts.
	Work int
	Unit string
}

var guests = []guest{
	{Name: "matmul", Work: 300, Unit: "96x96 products"},
	{Name: "qsort", Work: 40, Unit: "sorts of 20000"},
	{Name: "crc", Work: 1500, Unit: "64 KiB passes"},
	{Name: "recurse", Work: 3000, Unit: "fib+tak rounds"},
	{Name: "strings", Work: 120, Unit: "rounds of 4000 keys"},
	{Name: "deep", Work: 8000, Unit: "descents of ~200 frames"},
}

// scaled is g's work times scale, at least 1.
func (g guest) scaled(scale float64) int {
	return max(1, int(float64(g.Work)*scale))
}

// buildGuests compiles every guest into a WASI command in dir and returns
// the modules by name. Compiling and linking are separate steps: linking
// with -O would make the clang driver run wasm-opt when it is installed,
// and the modules are to be as clang alone builds them.
func buildGuests(ctx context.Context, dir string) (map[string][]byte, error) {
	clang, err := exec.LookPath("clang")
	if err != nil {
		return nil, fmt.Errorf("clang not found, needed to build the guests; install the WASI C toolchain: %s", toolchainHint)
	}
	out := map[string][]byte{}
	for _, g := range guests {
		src, err := guestSources.ReadFile("testdata/" + g.Name + ".c")
		if err != nil {
			return nil, err
		}
		c, obj, wasm := filepath.Join(dir, g.Name+".c"), filepath.Join(dir, g.Name+".o"), filepath.Join(dir, g.Name+".wasm")
		if err := os.WriteFile(c, src, 0o644); err != nil {
			return nil, err
		}
		for _, args := range [][]string{
			{"--target=wasm32-wasi", "-O2", "-Wall", "-Werror", "-c", "-o", obj, c},
			{"--target=wasm32-wasi", "-o", wasm, obj},
		} {
			cmd := exec.CommandContext(ctx, clang, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				return nil, fmt.Errorf("clang %s: %v\n%s\nif the WASI sysroot, compiler runtime or wasm-ld is missing, install them: %s",
					strings.Join(args, " "), err, strings.TrimSpace(stderr.String()), toolchainHint)
			}
		}
		b, err := os.ReadFile(wasm)
		if err != nil {
			return nil, err
		}
		out[g.Name] = b
	}
	return out, nil
}

// clangVersion is the first line of `clang --version`.
func clangVersion(ctx context.Context) (string, error) {
	clang, err := exec.LookPath("clang")
	if err != nil {
		return "", fmt.Errorf("clang not found, needed to build the guests; install the WASI C toolchain: %s", toolchainHint)
	}
	return toolVersion(ctx, clang)
}

// toolVersion is the first line tool prints for --version.
func toolVersion(ctx context.Context, tool string) (string, error) {
	o, err := exec.CommandContext(ctx, tool, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", tool, err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(o)), "\n")
	return line, nil
}
