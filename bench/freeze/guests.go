package main

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// guestSources holds one directory per guest, each a single main.go. Under
// testdata so that `go build ./...` and `go vet ./...` leave them alone.
//
//go:embed testdata/guests
var guestSources embed.FS

// guestGoMod is the go.mod each guest is built with: its own module, so
// the tern module's requirements do not shape it. 1.22 for range over
// integers.
const guestGoMod = "module %s\n\ngo 1.22\n"

// guestKind says what a guest is for.
type guestKind int

const (
	// busy guests compute, allocate or switch goroutines all the time;
	// they are timed prepared against unmodified.
	busy guestKind = iota
	// idle guests sleep most of the time; timing them says nothing about
	// the rewrite, but freezing them exercises a guest blocked in WASI.
	idle
)

// guest is one benchmark program. Each takes one argument, an amount of
// work; 0 runs until the process is stopped.
type guest struct {
	Name string
	Kind guestKind
	// Work is the argument for a run of roughly 100-300 ms on the
	// compiler, before scaling; Unit says what it counts.
	Work int
	Unit string
}

var guests = []guest{
	{Name: "pingpong", Kind: busy, Work: 20000, Unit: "round trips x 4 pairs"},
	{Name: "alloc", Kind: busy, Work: 150, Unit: "trees of 8191 nodes"},
	{Name: "compute", Kind: busy, Work: 1500, Unit: "x 1000 n-body steps"},
	{Name: "sleeper", Kind: idle, Work: 60, Unit: "naps x 4 goroutines"},
}

// scaled is g's work times scale, at least 1.
func (g guest) scaled(scale float64) int {
	return max(1, int(float64(g.Work)*scale))
}

// buildGuests compiles every guest with GOOS=wasip1 GOARCH=wasm into dir
// and returns the modules by name.
func buildGuests(ctx context.Context, dir string) (map[string][]byte, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("the go command is needed to build the guests: %w", err)
	}
	out := map[string][]byte{}
	for _, g := range guests {
		src, err := guestSources.ReadFile(path.Join("testdata/guests", g.Name, "main.go"))
		if err != nil {
			return nil, err
		}
		gdir := filepath.Join(dir, g.Name)
		if err := os.MkdirAll(gdir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(gdir, "main.go"), src, 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(gdir, "go.mod"), fmt.Appendf(nil, guestGoMod, g.Name), 0o644); err != nil {
			return nil, err
		}
		wasm := filepath.Join(dir, g.Name+".wasm")
		cmd := exec.CommandContext(ctx, goTool, "build", "-o", wasm, ".")
		cmd.Dir = gdir
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK=off")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("build guest %s: %v\n%s", g.Name, err, strings.TrimSpace(stderr.String()))
		}
		b, err := os.ReadFile(wasm)
		if err != nil {
			return nil, err
		}
		out[g.Name] = b
	}
	return out, nil
}
