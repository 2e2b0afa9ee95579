package main

import (
	"context"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ternhq/tern/bench/internal/guestbench"
)

// guestSources are the C guests, one file each. Under testdata so that the
// go command leaves them alone.
//
//go:embed testdata/*.c
var guestSources embed.FS

// toolchainHint is what to install when the guests cannot be built or
// prepared.
const toolchainHint = "apt-get install -y clang wasi-libc libclang-rt-14-dev-wasm32 lld-14 binaryen"

// guests are the benchmark programs, testdata/Name.c, each with the work
// for a run of roughly 0.3-1 s on the compiler.
var guests = []guestbench.Guest{
	{Name: "matmul", Work: 300, Unit: "96x96 products"},
	{Name: "qsort", Work: 40, Unit: "sorts of 20000"},
	{Name: "crc", Work: 1500, Unit: "64 KiB passes"},
	{Name: "recurse", Work: 3000, Unit: "fib+tak rounds"},
	{Name: "strings", Work: 120, Unit: "rounds of 4000 keys"},
	{Name: "deep", Work: 8000, Unit: "descents of ~200 frames"},
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
	return guestbench.Build(guests, func(g guestbench.Guest) (string, error) {
		src, err := guestSources.ReadFile("testdata/" + g.Name + ".c")
		if err != nil {
			return "", err
		}
		c, obj, wasm := filepath.Join(dir, g.Name+".c"), filepath.Join(dir, g.Name+".o"), filepath.Join(dir, g.Name+".wasm")
		if err := os.WriteFile(c, src, 0o644); err != nil {
			return "", err
		}
		for _, args := range [][]string{
			{"--target=wasm32-wasi", "-O2", "-Wall", "-Werror", "-c", "-o", obj, c},
			{"--target=wasm32-wasi", "-o", wasm, obj},
		} {
			if err := guestbench.RunTool(ctx, "", nil, clang, args...); err != nil {
				return "", fmt.Errorf("%w\nif the WASI sysroot, compiler runtime or wasm-ld is missing, install them: %s", err, toolchainHint)
			}
		}
		return wasm, nil
	})
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
